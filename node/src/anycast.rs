//! Application-layer anycast between processes: the authoritative resolver (`esm resolver`), a
//! conference member's server side (it registers its QUIC address under `GROUP%DOMAIN`, answers
//! probes and pushes how busy it is, signed with its key), and lookups (`esm resolve`, and a
//! member joining by name). All of it runs the `anycast-resolver` protocols over the same QUIC
//! runtime and admission (the group's secret) as the conference.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anycast_resolver::{
    AnycastName, AnycastServer, LocalCommand, LocalConfig, LocalEvent, LocalResolver, PushConfig,
    Resolver, ResolverConfig, ResolverEvent, ServerCommand,
};
use overlay_core::NodeId;
use tokio::sync::{mpsc, oneshot};

use crate::admission::GroupSecret;
use crate::connect::{Connector, TransportSettings};
use crate::identity::Identity;
use crate::runtime::{self, Control, RuntimeHandle};
use crate::signing::{Ed25519Signer, Ed25519Verifier};

/// The domain conference groups are registered under unless told otherwise.
pub const DEFAULT_DOMAIN: &str = "esm.local";

/// The smallest processing delay a member reports: the resolver refuses figures under 100 µs
/// as unbelievable, and a member's queue on an idle machine is shorter than that.
const MIN_REPORTED: Duration = Duration::from_micros(200);

fn wildcard_for(addr: SocketAddr) -> SocketAddr {
    if addr.is_ipv4() {
        SocketAddr::from(([0, 0, 0, 0], 0))
    } else {
        SocketAddr::from(([0u16; 8], 0))
    }
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
    ) -> Result<Self, String> {
        let id = identity.id();
        let connector = Connector::bind(listen, identity, admission, TransportSettings::default())
            .map_err(|e| e.to_string())?;
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

/// How long `busy`'s driver takes to read a request (at least [`MIN_REPORTED`]); `None` once
/// it stopped.
async fn time_to_read<C>(busy: &mpsc::Sender<Control<C>>) -> Option<Duration> {
    let (tx, rx) = oneshot::channel();
    let start = Instant::now();
    busy.send(Control::Ping(tx)).await.ok()?;
    rx.await.ok()?;
    Some(start.elapsed().max(MIN_REPORTED))
}

/// A member's registration as a server of its group's anycast name.
#[derive(Debug)]
pub struct AnycastEntry {
    tasks: Vec<tokio::task::JoinHandle<()>>,
    control: mpsc::Sender<Control<ServerCommand>>,
}

impl AnycastEntry {
    /// Registers `serve` (the member's QUIC address) under `name` with the resolver at
    /// `resolver` (retried with backoff until it answers), and every second reports how long
    /// `busy` (the member's own runtime) takes to read a request.
    pub fn start<C: Send + 'static>(
        identity: &Identity,
        admission: GroupSecret,
        resolver: SocketAddr,
        name: AnycastName,
        serve: SocketAddr,
        busy: mpsc::Sender<Control<C>>,
    ) -> Result<Self, String> {
        let signer = Ed25519Signer::new(identity)?;
        let connector = Connector::bind(
            wildcard_for(resolver),
            identity.clone(),
            admission,
            TransportSettings::default(),
        )
        .map_err(|e| e.to_string())?;
        let server = AnycastServer::new(identity.id(), PushConfig::default(), Box::new(signer));
        let handle = runtime::start(server, connector, None);
        let control = handle.control.clone();
        let first_busy = busy.clone();
        let register = tokio::spawn(async move {
            // A first figure before registering, so the resolver's first probe calibrates.
            if let Some(tufr) = time_to_read(&first_busy).await {
                let _ = handle
                    .control
                    .send(Control::Command(ServerCommand::Served { tufr }))
                    .await;
            }
            let mut backoff = Duration::from_millis(500);
            let resolver_id = loop {
                match runtime::dial(&handle.control, resolver).await {
                    Ok(id) => break id,
                    Err(why) => {
                        tracing::warn!(%resolver, %why, retry_in = ?backoff, "resolver unreachable");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(8));
                    }
                }
            };
            let join = ServerCommand::Join {
                name,
                address: serve,
                resolver: resolver_id,
            };
            let _ = handle.control.send(Control::Command(join)).await;
            // Keep the handle (its control sender keeps the server running).
            let mut events = handle.events;
            while events.recv().await.is_some() {}
        });
        let report_to = control.clone();
        let report = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                let Some(tufr) = time_to_read(&busy).await else {
                    return;
                };
                if report_to
                    .send(Control::Command(ServerCommand::Served { tufr }))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        });
        Ok(Self {
            tasks: vec![register, report],
            control,
        })
    }

    /// Stops serving.
    pub async fn stop(self) {
        let _ = self.control.send(Control::Shutdown).await;
        for t in self.tasks {
            t.abort();
        }
    }
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
) -> Result<(Connector, NodeId), String> {
    let connector = Connector::bind(
        wildcard_for(resolver),
        identity.clone(),
        admission,
        TransportSettings::default(),
    )
    .map_err(|e| e.to_string())?;
    let first = connector
        .dial(resolver, None)
        .await
        .map_err(|e| e.to_string())?;
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
) -> Result<Lookup, String> {
    let (connector, resolver_id) = client_endpoint(identity, admission, resolver).await?;
    let config = LocalConfig {
        authorities: BTreeMap::from([(name.domain().to_owned(), resolver_id)]),
        ..LocalConfig::default()
    };
    let local = LocalResolver::new(identity.id(), config);
    let mut handle = runtime::start(local, connector, None);
    runtime::dial(&handle.control, resolver).await?;
    handle
        .control
        .send(Control::Command(LocalCommand::Resolve {
            token: 1,
            name: name.clone(),
        }))
        .await
        .map_err(|_| "the runtime stopped".to_owned())?;
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
        Err("the runtime stopped".to_owned())
    })
    .await
    .map_err(|_| format!("no answer from the resolver at {resolver} within 5 s"))?;
    let _ = handle.control.send(Control::Shutdown).await;
    answer
}

/// Asks the authoritative resolver for every server of a name with its estimate: what a
/// broadcast root feeds its redirect choice with.
#[derive(Debug)]
pub struct EstimateFetcher {
    id: NodeId,
    resolver: NodeId,
    name: AnycastName,
    next_query: u64,
    outbox: overlay_core::Outbox<anycast_resolver::Message, Vec<anycast_resolver::ServerRecord>>,
}

impl EstimateFetcher {
    /// A fetcher `id` asking `resolver` about `name`.
    pub fn new(id: NodeId, resolver: NodeId, name: AnycastName) -> Self {
        Self {
            id,
            resolver,
            name,
            next_query: 0,
            outbox: overlay_core::Outbox::default(),
        }
    }
}

impl overlay_core::Protocol for EstimateFetcher {
    type Message = anycast_resolver::Message;
    /// Ask now.
    type Command = ();
    /// The servers the resolver listed, with its estimates.
    type Event = Vec<anycast_resolver::ServerRecord>;

    fn id(&self) -> NodeId {
        self.id
    }

    fn handle_message(&mut self, _: overlay_core::Time, from: NodeId, msg: Self::Message) {
        if let anycast_resolver::Message::Answer { id, servers, .. } = msg
            && from == self.resolver
            && id + 1 == self.next_query
        {
            self.outbox.emit(servers);
        }
    }

    fn handle_command(&mut self, _: overlay_core::Time, (): ()) {
        let id = self.next_query;
        self.next_query += 1;
        self.outbox.send(
            self.resolver,
            anycast_resolver::Message::Query {
                id,
                name: self.name.clone(),
            },
        );
    }

    fn handle_measurement(
        &mut self,
        _: overlay_core::Time,
        _: NodeId,
        _: overlay_core::LinkMetrics,
    ) {
    }
    fn handle_link(&mut self, _: overlay_core::Time, _: NodeId, _: overlay_core::LinkEvent) {}
    fn handle_timeout(&mut self, _: overlay_core::Time) {}

    fn poll_output(
        &mut self,
    ) -> Option<overlay_core::Output<Self::Message, Vec<anycast_resolver::ServerRecord>>> {
        self.outbox.pop()
    }

    fn poll_timeout(&self) -> Option<overlay_core::Time> {
        None
    }
}

/// Keeps `into` filled with the resolver's response-time estimates for the servers of `name`
/// (asked every two seconds; ids without an estimate are left out); a failure is logged and
/// retried with backoff, for as long as the node runs.
pub async fn follow_estimates(
    admission: GroupSecret,
    resolver: SocketAddr,
    name: AnycastName,
    into: std::sync::Arc<std::sync::Mutex<BTreeMap<NodeId, Duration>>>,
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
    into: &std::sync::Arc<std::sync::Mutex<BTreeMap<NodeId, Duration>>>,
) -> String {
    match follow(identity, admission, resolver, name, into).await {
        Ok(()) => "the runtime stopped".to_owned(),
        Err(e) => e,
    }
}

async fn follow(
    identity: &Identity,
    admission: GroupSecret,
    resolver: SocketAddr,
    name: &AnycastName,
    into: &std::sync::Arc<std::sync::Mutex<BTreeMap<NodeId, Duration>>>,
) -> Result<(), String> {
    let (connector, resolver_id) = client_endpoint(identity, admission, resolver).await?;
    let fetcher = EstimateFetcher::new(identity.id(), resolver_id, name.clone());
    let mut handle = runtime::start(fetcher, connector, None);
    runtime::dial(&handle.control, resolver).await?;
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if handle.control.send(Control::Command(())).await.is_err() {
                    return Err("the runtime stopped".into());
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
