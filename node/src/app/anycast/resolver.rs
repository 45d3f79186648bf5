//! The authoritative resolver as a process: `esm resolver`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anycast_resolver::{Resolver, ResolverConfig, ResolverEvent};
use overlay_core::NodeId;

use super::{AnycastError, DEFAULT_DOMAIN};
use crate::runtime::{self, RuntimeHandle};
use crate::transport::admission::GroupSecret;
use crate::transport::connect::{Connector, TransportSettings};
use crate::transport::identity::Identity;
use crate::transport::invite::{Invite, credentials};
use crate::transport::signing::Ed25519Verifier;

/// The flags of `esm resolver`.
#[derive(Debug, clap::Args)]
pub struct ResolverArgs {
    /// The group whose members register (admission uses its secret).
    #[arg(long)]
    pub group: String,
    /// Where to listen (UDP).
    #[arg(long)]
    pub listen: SocketAddr,
    /// The domain this resolver is authoritative for.
    #[arg(long, default_value = DEFAULT_DOMAIN)]
    pub domain: String,
    /// The resolver's key file (created on first start); default `.esm/resolver-PORT.key`.
    #[arg(long)]
    pub key: Option<PathBuf>,
    /// A file holding the group secret (else the ESM_SECRET variable).
    #[arg(long)]
    pub secret_file: Option<PathBuf>,
    /// An invite from `esm invite` (token, or a file only its owner may read; else the
    /// ESM_INVITE variable) whose secret admits the group's members.
    #[arg(long, value_name = "TOKEN|FILE")]
    pub invite: Option<String>,
}

/// `esm resolver`: runs the resolver until interrupted.
pub async fn run(a: ResolverArgs) -> Result<(), AnycastError> {
    let invite = Invite::from_arg_or_env(a.invite.as_deref())?;
    let (admission, _) = credentials(&a.group, invite.as_ref(), a.secret_file.as_deref())?;
    anycast_resolver::AnycastName::new(&a.group, &a.domain).map_err(|source| {
        AnycastError::Domain {
            domain: a.domain.clone(),
            source,
        }
    })?;
    let key = a
        .key
        .unwrap_or_else(|| PathBuf::from(format!(".esm/resolver-{}.key", a.listen.port())));
    let identity = Identity::load_or_create(&key)?;
    let r = ResolverProcess::start(a.listen, identity, admission, &a.domain)?;
    println!("ready id={} quic={} http=-", r.id.to_hex(), r.listen);
    eprintln!(
        "anycast resolver {} for {} listening on {}",
        r.id, a.domain, r.listen
    );
    tokio::select! {
        () = r.run() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(())
}

/// A running authoritative resolver.
#[derive(Debug)]
pub struct ResolverProcess {
    /// Its id.
    pub id: NodeId,
    /// Where it listens.
    pub listen: SocketAddr,
    handle: RuntimeHandle<(), ResolverEvent>,
}

impl ResolverProcess {
    /// Starts the resolver for `domain` on `listen`.
    pub fn start(
        listen: SocketAddr,
        identity: Identity,
        admission: GroupSecret,
        domain: &str,
    ) -> Result<Self, AnycastError> {
        let id = identity.id();
        let connector = Connector::bind(listen, identity, admission, TransportSettings::default())?;
        let config = ResolverConfig {
            domain: domain.to_owned(),
            probe_interval: Duration::from_secs(10),
            probe_timeout: Duration::from_secs(3),
            ..ResolverConfig::default()
        };
        let resolver = Resolver::new(id, config, Box::new(Ed25519Verifier));
        let listen = connector.local_addr();
        let handle = runtime::start(resolver, connector, None);
        Ok(Self { id, listen, handle })
    }

    /// Logs registrations until the resolver stops.
    pub async fn run(mut self) {
        while let Some(event) = self.handle.events.recv().await {
            match event {
                ResolverEvent::Registered { server, name } => {
                    tracing::info!(%server, %name, "server registered");
                }
            }
        }
    }
}
