//! Lookups at the authoritative resolver: `esm resolve`, a member joining by name, and a
//! broadcast root following every node's estimate.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anycast_resolver::{
    AnycastName, EstimateFetcher, LocalCommand, LocalConfig, LocalEvent, LocalResolver,
};
use overlay_core::NodeId;

use super::forwarder::Forwarder;
use super::{AnycastError, endpoint_towards, serve_dns};
use crate::runtime::{self, Control};
use crate::transport::admission::GroupSecret;
use crate::transport::connect::Connector;
use crate::transport::identity::Identity;
use crate::transport::invite::{Invite, credentials};
use anycast_dns::DnsFrontEnd;

/// The flags of `esm resolve`.
#[derive(Debug, clap::Args)]
pub struct ResolveArgs {
    /// The anycast name, GROUP%DOMAIN (not with --serve).
    #[arg(required_unless_present = "serve", conflicts_with = "serve")]
    pub name: Option<String>,
    /// The authoritative resolver's address.
    #[arg(long)]
    pub resolver: SocketAddr,
    /// The group whose secret admits this lookup (default: the name's group; needed with
    /// --serve).
    #[arg(long)]
    pub group: Option<String>,
    /// Instead of one lookup, serve DNS here (UDP) as a local caching forwarder, for programs
    /// that cannot be changed: point the machine's resolver at it (port 53 for
    /// /etc/resolv.conf) and `SERVICE._anycast.DOMAIN` resolves to the member picked here.
    #[arg(long, value_name = "ADDR", requires = "group")]
    pub serve: Option<SocketAddr>,
    /// The domain the resolver is authoritative for (with --serve).
    #[arg(long, default_value = super::DEFAULT_DOMAIN)]
    pub domain: String,
    /// Seconds the forwarder's DNS answers may be cached (with --serve).
    #[arg(long, default_value_t = super::resolver::DEFAULT_TTL_SECS)]
    pub ttl: u32,
    /// A file holding the group secret (else the ESM_SECRET variable).
    #[arg(long)]
    pub secret_file: Option<PathBuf>,
    /// An invite from `esm invite` (token, or a file only its owner may read; else the
    /// ESM_INVITE variable) whose secret admits the lookup.
    #[arg(long, value_name = "TOKEN|FILE")]
    pub invite: Option<String>,
}

/// `esm resolve`: looks the name up and prints `NAME ADDRESS ID`, or with `--serve` answers
/// DNS as a local caching forwarder until interrupted.
pub async fn run(a: ResolveArgs) -> Result<(), AnycastError> {
    if let (Some(at), Some(group)) = (a.serve, a.group.as_deref()) {
        return serve(&a, at, group).await;
    }
    let text = a.name.clone().unwrap_or_default();
    let name: AnycastName = text.parse().map_err(|source| AnycastError::NotAName {
        text: text.clone(),
        source,
    })?;
    let group = a.group.unwrap_or_else(|| name.service().to_owned());
    let invite = Invite::from_arg_or_env(a.invite.as_deref())?;
    let (admission, _) = credentials(&group, invite.as_ref(), a.secret_file.as_deref())?;
    let identity = Identity::generate()?;
    match resolve(&identity, admission, a.resolver, &name).await? {
        Lookup::Found { server, address } => {
            println!("{name} {address} {}", server.to_hex());
            Ok(())
        }
        Lookup::Nobody(why) => Err(AnycastError::Nobody { name, why }),
    }
}

/// `esm resolve --serve AT`: the local resolver over QUIC towards the authoritative one, and a
/// DNS front end on `at` answering from it.
async fn serve(a: &ResolveArgs, at: SocketAddr, group: &str) -> Result<(), AnycastError> {
    let invite = Invite::from_arg_or_env(a.invite.as_deref())?;
    let (admission, _) = credentials(group, invite.as_ref(), a.secret_file.as_deref())?;
    let identity = Identity::generate()?;
    let (connector, resolver_id) = client_endpoint(&identity, admission, a.resolver).await?;
    let quic = connector.local_addr();
    let config = LocalConfig {
        authorities: BTreeMap::from([(a.domain.to_ascii_lowercase(), resolver_id)]),
        ..LocalConfig::default()
    };
    let handle = runtime::start(LocalResolver::new(identity.id(), config), connector, None);
    runtime::dial(&handle.control, a.resolver, Some(resolver_id)).await?;
    let ttl = Duration::from_secs(a.ttl.into());
    let forwarder = Forwarder::new(handle.control.clone(), handle.events, ttl);
    let (bound, mut server) = serve_dns(at, DnsFrontEnd::new(forwarder, a.ttl)).await?;
    println!(
        "ready id={} quic={quic} http=- dns={bound}",
        identity.id().to_hex()
    );
    eprintln!(
        "forwarding DNS for *._anycast.{} on {bound} to the resolver at {}",
        a.domain, a.resolver
    );
    tokio::select! {
        _ = &mut server => {}
        _ = tokio::signal::ctrl_c() => server.abort(),
    }
    Ok(())
}

/// What a lookup found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// Use this member.
    Found {
        /// Its id.
        server: NodeId,
        /// Its address.
        address: SocketAddr,
    },
    /// The resolver knows no such group, or it has no reachable server.
    Nobody(String),
}

/// A client's own endpoint towards the resolver at `resolver`, and the resolver's id (learned
/// by one admitted dial: the client protocols are configured with it).
async fn client_endpoint(
    identity: &Identity,
    admission: GroupSecret,
    resolver: SocketAddr,
) -> Result<(Connector, NodeId), AnycastError> {
    let connector = endpoint_towards(resolver, identity, admission)?;
    let first = connector.dial(resolver, None).await?;
    first.conn.close(0u32.into(), b"learned the id");
    Ok((connector, first.peer))
}

/// Looks up `name` at the authoritative resolver at `resolver`, as a local resolver and client
/// in one (its own endpoint, the group's admission).
pub async fn resolve(
    identity: &Identity,
    admission: GroupSecret,
    resolver: SocketAddr,
    name: &AnycastName,
) -> Result<Lookup, AnycastError> {
    let (connector, resolver_id) = client_endpoint(identity, admission, resolver).await?;
    let config = LocalConfig {
        authorities: BTreeMap::from([(name.domain().to_owned(), resolver_id)]),
        ..LocalConfig::default()
    };
    let local = LocalResolver::new(identity.id(), config);
    let mut handle = runtime::start(local, connector, None);
    runtime::dial(&handle.control, resolver, None).await?;
    handle
        .control
        .send(Control::Command(LocalCommand::Resolve {
            token: 1,
            name: name.clone(),
        }))
        .await
        .map_err(|_| AnycastError::Stopped)?;
    let answer = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(event) = handle.events.recv().await {
            match event {
                LocalEvent::Resolved {
                    server, address, ..
                } => return Ok(Lookup::Found { server, address }),
                LocalEvent::Failed { reason, .. } => return Ok(Lookup::Nobody(reason.to_string())),
                LocalEvent::Advised { .. } => {}
            }
        }
        Err(AnycastError::Stopped)
    })
    .await
    .map_err(|_| AnycastError::NoAnswer { resolver })?;
    let _ = handle.control.send(Control::Shutdown).await;
    answer
}

/// Keeps `into` filled with the resolver's response-time estimates for the servers of `name`
/// (asked every two seconds; ids without an estimate are left out); a failure is logged and
/// retried with backoff, for as long as the node runs.
pub async fn follow_estimates(
    admission: GroupSecret,
    resolver: SocketAddr,
    name: AnycastName,
    into: Arc<Mutex<BTreeMap<NodeId, Duration>>>,
) {
    // The fetcher is a client with an id of its own: the member's id already names its server
    // endpoint at the resolver, and a second endpoint with that id would take its messages.
    let identity = match Identity::generate() {
        Ok(i) => i,
        Err(e) => {
            tracing::error!(%e, "no identity for the estimate fetcher");
            return;
        }
    };
    let mut backoff = Duration::from_millis(500);
    loop {
        let started = Instant::now();
        let why = follow_once(&identity, admission.clone(), resolver, &name, &into).await;
        tracing::warn!(%resolver, %why, retry_in = ?backoff, "lost the anycast resolver's estimates");
        if started.elapsed() > Duration::from_secs(30) {
            backoff = Duration::from_millis(500);
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(8));
    }
}

async fn follow_once(
    identity: &Identity,
    admission: GroupSecret,
    resolver: SocketAddr,
    name: &AnycastName,
    into: &Arc<Mutex<BTreeMap<NodeId, Duration>>>,
) -> AnycastError {
    match follow(identity, admission, resolver, name, into).await {
        Ok(()) => AnycastError::Stopped,
        Err(e) => e,
    }
}

async fn follow(
    identity: &Identity,
    admission: GroupSecret,
    resolver: SocketAddr,
    name: &AnycastName,
    into: &Arc<Mutex<BTreeMap<NodeId, Duration>>>,
) -> Result<(), AnycastError> {
    let (connector, resolver_id) = client_endpoint(identity, admission, resolver).await?;
    let fetcher = EstimateFetcher::new(identity.id(), resolver_id, name.clone());
    let mut handle = runtime::start(fetcher, connector, None);
    runtime::dial(&handle.control, resolver, None).await?;
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if handle.control.send(Control::Command(())).await.is_err() {
                    return Err(AnycastError::Stopped);
                }
            }
            answer = handle.events.recv() => {
                let Some(servers) = answer else {
                    return Ok(());
                };
                let estimates: BTreeMap<NodeId, Duration> = servers
                    .iter()
                    .filter_map(|s| Some((s.server, Duration::from_micros(s.estimate_us?))))
                    .collect();
                if let Ok(mut slot) = into.lock() {
                    *slot = estimates;
                }
            }
        }
    }
}
