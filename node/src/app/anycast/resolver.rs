//! The authoritative resolver as a process: `esm resolver`. Members register over QUIC; local
//! resolvers (`esm resolve`) ask over QUIC; with `--dns`, anything that speaks DNS asks too,
//! answered from the same live table (the protocol is shared between the runtime that drives
//! it and the DNS front end, [`crate::runtime::shared`]).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anycast_dns::{DnsFrontEnd, LiveResolver};
use anycast_resolver::{Pipeline, Resolver, ResolverConfig, ResolverEvent};
use overlay_core::NodeId;

use super::{AnycastError, DEFAULT_DOMAIN, serve_dns};
use crate::runtime::shared::Shared;
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
    /// Also answer DNS (UDP) here: `SERVICE._anycast.DOMAIN` A/AAAA gives the member picked
    /// for each query, SRV its port (members may share a host).
    #[arg(long, value_name = "ADDR")]
    pub dns: Option<SocketAddr>,
    /// How long an answer may be cached, in seconds (DNS TTL, and local resolvers' cache).
    #[arg(long, default_value_t = DEFAULT_TTL_SECS, value_parser = clap::value_parser!(u32).range(0..=3600))]
    pub ttl: u32,
}

/// The answers' TTL unless told otherwise: short, since the best member changes with load and
/// a member that died must leave clients' caches soon.
pub const DEFAULT_TTL_SECS: u32 = 5;

/// How the resolver serves.
#[derive(Clone, Copy, Debug)]
pub struct ResolverOptions {
    /// Where to answer DNS, if anywhere.
    pub dns: Option<SocketAddr>,
    /// Seconds an answer may be cached.
    pub ttl: u32,
}

impl Default for ResolverOptions {
    fn default() -> Self {
        Self {
            dns: None,
            ttl: DEFAULT_TTL_SECS,
        }
    }
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
    let options = ResolverOptions {
        dns: a.dns,
        ttl: a.ttl,
    };
    let r = ResolverProcess::start(a.listen, identity, admission, &a.domain, options).await?;
    let dns = r.dns.map_or_else(|| "-".to_owned(), |d| d.to_string());
    println!(
        "ready id={} quic={} http=- dns={dns}",
        r.id.to_hex(),
        r.listen
    );
    eprintln!(
        "anycast resolver {} for {} listening on {} (QUIC), DNS on {dns}",
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
    /// Where it answers DNS, if it does.
    pub dns: Option<SocketAddr>,
    handle: RuntimeHandle<(), ResolverEvent>,
    /// The DNS server's task (stopped with the resolver).
    dns_task: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for ResolverProcess {
    fn drop(&mut self) {
        if let Some(task) = &self.dns_task {
            task.abort();
        }
    }
}

impl ResolverProcess {
    /// Starts the resolver for `domain` on `listen` (and DNS as `options` say).
    pub async fn start(
        listen: SocketAddr,
        identity: Identity,
        admission: GroupSecret,
        domain: &str,
        options: ResolverOptions,
    ) -> Result<Self, AnycastError> {
        let id = identity.id();
        let connector = Connector::bind(listen, identity, admission, TransportSettings::default())?;
        let config = ResolverConfig {
            domain: domain.to_owned(),
            probe_interval: Duration::from_secs(10),
            probe_timeout: Duration::from_secs(3),
            answer_ttl: Duration::from_secs(options.ttl.into()),
            ..ResolverConfig::default()
        };
        let resolver = Arc::new(Mutex::new(Resolver::new(
            id,
            config,
            Box::new(Ed25519Verifier),
        )));
        let (dns, dns_task) = match options.dns {
            None => (None, None),
            Some(at) => {
                // The paper's choice for a final pick: the servers within half again of the
                // best estimate, then a draw weighted by the spare capacity each states.
                let source =
                    LiveResolver::new(resolver.clone(), Pipeline::anycast(0.5), runtime::wall_now);
                let (bound, task) = serve_dns(at, DnsFrontEnd::new(source, options.ttl)).await?;
                (Some(bound), Some(task))
            }
        };
        let listen = connector.local_addr();
        let handle = runtime::start(Shared(resolver), connector, None);
        Ok(Self {
            id,
            listen,
            dns,
            handle,
            dns_task,
        })
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
