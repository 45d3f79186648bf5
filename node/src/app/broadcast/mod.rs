//! Broadcasting: Overcast over QUIC. The root (`esm broadcast`) reads MPEG-TS from a file
//! (paced by the stream's own clock unless `--fast`) or stdin (forwarded as it arrives) and
//! publishes it into the tree; relays (`esm relay`) join through the root, run tree building and
//! the up/down protocol, keep what they receive in a store file, and serve it over HTTP. The
//! root answers `GET /channels/NAME` with a redirect to the best live node (Overcast's redirect
//! choice over its table of every live node); a node answers with the stream as `video/mp2t`,
//! from the live edge or, with `?from=start`, from the beginning. Each HTTP client reads the
//! store at its own pace, so a slow one never slows the tree or the others. Overcast's content
//! is a byte stream delivered in order by offset, so the runtime carries it on the control
//! stream, not in datagrams.
//!
//! Modules: [`config`] (flags and settings), [`ingest`] (the root's MPEG-TS input, paced by its
//! PCR), [`ts`] (MPEG-TS packets), [`store`] (segment files bounded by a retention),
//! [`serving`] (what viewers and status pages read, and where the root redirects them),
//! [`vouch`] (the root redirects only to HTTP addresses it checked), [`hls`] (the HLS routes),
//! [`http`] (the routes), [`idle`] (when a stream that stopped growing counts as ended: the
//! idle time restarts at every change of parent, so a repair is a pause); the live edge a
//! viewer starts at is found once per growth of the store (`live_edge`). HTTP goes through
//! [`crate::edge::http_server`] with the timeouts and caps of the config.

pub mod config;
pub mod hls;
pub mod http;
pub mod idle;
pub mod ingest;
mod live_edge;
pub mod serving;
pub mod store;
pub mod ts;
pub mod vouch;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use overcast::certificate::NodeInfo;
use overcast::{Command, Overcast, OvercastConfig};
use overlay_core::NodeId;
use tokio::sync::mpsc;

use idle::ParentChanges;

pub use config::{BroadcastArgs, BroadcastCommon, BroadcastConfig, RelayArgs};
pub use serving::{BroadcastStatus, ClientGuard, Delivery, LiveNode, Shared};

use crate::app::anycast::{AnycastEntry, AnycastError, DEFAULT_DOMAIN, follow_estimates};
use crate::edge::http_server::{self, RESERVED_DESCRIPTORS};
use crate::edge::operator::OperatorGate;
use crate::runtime::{self, Control, DialError, RuntimeOptions};
use crate::transport::admission::{AdmissionError, GroupSecret, check_group};
use crate::transport::connect::{ConnectError, Connector, TransportSettings};
use crate::transport::identity::{Identity, IdentityError};
use crate::transport::signing::{Ed25519Signer, Ed25519Verifier, SigningError};
use ingest::publish_input;
use serving::View;

/// Why a broadcast node could not start.
#[derive(Debug, thiserror::Error)]
pub enum BroadcastError {
    /// The channel name or its secret.
    #[error(transparent)]
    Admission(#[from] AdmissionError),
    /// The invite.
    #[error(transparent)]
    Invite(#[from] crate::transport::invite::InviteError),
    /// A relay with no root to join through.
    #[error("no root to join through: give --root ADDR, or --invite with the root as a member")]
    NoRoot,
    /// The node's identity.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// The HTTP listener.
    #[error("cannot serve HTTP on {addr}: {source}")]
    Http {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The QUIC endpoint.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// A root could not be reached or refused the node.
    #[error("the root at {addr}: {source}")]
    Root {
        /// The root's address.
        addr: SocketAddr,
        /// Why.
        source: DialError,
    },
    /// The node's key cannot sign certificates.
    #[error(transparent)]
    Signing(#[from] SigningError),
    /// The store could not be opened.
    #[error("store {}: {source}", dir.display())]
    Store {
        /// Its folder.
        dir: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The channel makes no anycast name.
    #[error("anycast name for channel {channel}: {source}")]
    AnycastName {
        /// The channel.
        channel: String,
        /// Why.
        source: anycast_resolver::NameError,
    },
    /// The anycast registration.
    #[error(transparent)]
    Anycast(#[from] AnycastError),
    /// The system's randomness failed (a new stream needs a number).
    #[error("the system's random number generator failed")]
    Random,
}

/// Bytes per store segment file.
const SEGMENT_BYTES: u64 = 4 << 20;

/// A running root or relay.
#[derive(Debug)]
pub struct BroadcastNode {
    /// Its id.
    pub id: NodeId,
    /// Its QUIC address.
    pub listen: SocketAddr,
    /// Its HTTP address.
    pub http: SocketAddr,
    /// What HTTP serves from.
    pub shared: Arc<Shared>,
    control: mpsc::Sender<Control<Command>>,
    anycast: Option<AnycastEntry>,
}

impl BroadcastNode {
    /// Starts a root (no `root` in the config) or a relay.
    pub async fn start(
        config: &BroadcastConfig,
        identity: Identity,
        admission: GroupSecret,
    ) -> Result<Self, BroadcastError> {
        let id = identity.id();
        let store_dir = config.store.join(&config.channel);
        let http_error = |source| BroadcastError::Http {
            addr: config.http,
            source,
        };
        let listener = http_server::bind(config.http).map_err(http_error)?;
        let http = listener.local_addr().map_err(http_error)?;
        let mut connector = Connector::bind(
            config.listen,
            identity.clone(),
            admission.clone(),
            TransportSettings::default(),
        )?;
        connector.advertise_http(http);
        if let Some(ip) = config.advertise {
            connector.advertise(ip);
        }
        let mut root_ids = Vec::new();
        for &root in &config.roots {
            let a = connector
                .dial(root, None)
                .await
                .map_err(|e| BroadcastError::Root {
                    addr: root,
                    source: e.into(),
                })?;
            a.conn.close(0u32.into(), b"learned the id");
            root_ids.push(a.peer);
        }
        if config.roots.is_empty() || config.standby {
            root_ids.push(id);
        }
        // The store: segment files written in offset order, bounded by the retention. A relay
        // keeps what it held (it resumes its stream from there); a root starts a new stream.
        let is_root = config.roots.is_empty();
        let (store, store_writer) = store::open(
            &store_dir,
            config.retention,
            SEGMENT_BYTES.min(config.retention.max(1)),
            !is_root,
        )
        .map_err(|source| BroadcastError::Store {
            dir: store_dir.clone(),
            source,
        })?;
        let held = store.extent();
        let resume = store.resumed_stream().map(|stream| (stream, held.end));
        if let Some((stream, end)) = resume {
            tracing::info!(
                stream,
                from = held.first,
                to = end,
                "resuming the stream from the store"
            );
        }
        let overcast_config = OvercastConfig {
            roots: root_ids,
            store_limit: config.memory_limit,
            seed: u64::from_le_bytes(id.as_bytes()[..8].try_into().unwrap_or_default()),
            // A root's stream differs from every earlier one's, so relays that held another
            // (this root before a restart) start afresh instead of resuming into it.
            stream: if is_root { new_stream_number()? } else { 0 },
            resume,
            ..OvercastConfig::default()
        };
        let signer = Ed25519Signer::new(&identity)?;
        let node = Overcast::new(
            id,
            overcast_config,
            Box::new(signer),
            Box::new(Ed25519Verifier),
        );
        let view = Arc::new(Mutex::new(View::default()));
        let observer_view = view.clone();
        let channel = config.channel.clone();
        // What the store has been offered: it advances only by what its queue took, so a slow
        // or full disk is caught up from memory later and never holds up the tree.
        let mut stored_stream = resume.map_or(0, |(stream, _)| stream);
        let mut stored_end = held.end;
        let mut last_view = Instant::now() - Duration::from_secs(1);
        let mut parents = ParentChanges::new();
        let idle = parents.clock(config.idle_end);
        let observer: runtime::Observer<Overcast> = Box::new(move |n: &Overcast| {
            parents.observe(n.parent());
            let end = n.content_end();
            if n.stream() != stored_stream && n.stream() != 0 {
                // Another stream than the store holds: it starts afresh where this node's does.
                stored_stream = n.stream();
                stored_end = n.content_first();
                store_writer.restart(stored_stream, stored_end);
            }
            // Bytes this node's memory no longer holds are gone for the store too.
            stored_end = stored_end.max(n.content_first());
            while stored_end < end && store_writer.has_room() {
                let Some((offset, bytes)) = n.content_chunk(stored_end, 1 << 20) else {
                    break;
                };
                let next = offset + bytes.len() as u64;
                if !store_writer.offer(offset, bytes) {
                    break;
                }
                stored_end = next;
            }
            if last_view.elapsed() >= Duration::from_millis(200) {
                last_view = Instant::now();
                let candidates: Vec<(NodeId, NodeInfo)> =
                    n.table().live().map(|(id, e)| (*id, e.info)).collect();
                if let Ok(mut v) = observer_view.lock() {
                    v.status.id = id.to_hex();
                    v.status.channel = channel.clone();
                    v.status.is_root = n.is_root();
                    v.status.parent = n.parent().map(|p| p.to_hex());
                    v.status.children = n.children().map(NodeId::to_hex).collect();
                    v.status.content_end = end;
                    v.status.content_first = n.content_first();
                    v.status.stream = n.stream();
                    let stats = n.stats();
                    v.status.delivery = Delivery {
                        gaps: stats.gaps,
                        resends: stats.resends,
                        child_skips: stats.child_skips,
                        bytes_skipped: stats.bytes_skipped,
                    };
                    v.candidates = candidates;
                }
            }
        });
        let options = RuntimeOptions {
            datagrams: false,
            observe_every_input: true,
            ..RuntimeOptions::default()
        };
        let handle = runtime::start_with(node, connector, Some(observer), options);
        let listen = handle.local_addr;
        let control = handle.control.clone();
        for &root in &config.roots {
            runtime::dial(&control, root, None)
                .await
                .map_err(|source| BroadcastError::Root { addr: root, source })?;
        }
        let _ = control.send(Control::Command(Command::Start)).await;
        tokio::spawn(report_store(store.clone(), control.clone()));
        let shared = Arc::new(
            Shared::new(
                config.channel.clone(),
                store,
                view,
                handle.snapshot.clone(),
                idle,
                id,
            )
            .with_max_viewers(config.max_viewers),
        );
        tokio::spawn(shared.clone().vouch_for_live_nodes(config.standby));
        let mut anycast = None;
        if let Some(resolver) = config.resolver {
            let name = anycast_resolver::AnycastName::new(&config.channel, DEFAULT_DOMAIN)
                .map_err(|source| BroadcastError::AnycastName {
                    channel: config.channel.clone(),
                    source,
                })?;
            let entry = AnycastEntry::start(
                &identity,
                admission.clone(),
                resolver,
                name.clone(),
                http,
                control.clone(),
            )?;
            anycast = Some(entry);
            tokio::spawn(follow_estimates(
                admission.clone(),
                resolver,
                name,
                shared.estimates(),
            ));
        }
        tokio::spawn(async move {
            let mut events = handle.events;
            while let Some(e) = events.recv().await {
                tracing::info!(?e, "overcast");
            }
        });
        if config.roots.is_empty()
            && let Some(input) = config.input.clone()
        {
            tokio::spawn(publish_input(
                input,
                config.fast,
                control.clone(),
                shared.input_state(),
            ));
        }
        let gate = {
            let admission = admission.clone();
            let me = id;
            OperatorGate::new(move |token| admission.verify_status_token(me, token))
        };
        let app = http::router(shared.clone(), gate);
        // Each viewer also holds a store file open while it reads.
        let reserved = RESERVED_DESCRIPTORS.saturating_add(config.max_viewers as u64);
        let limits = config.http_limits.fit_descriptors(reserved);
        tokio::spawn(http_server::serve(
            listener,
            app,
            limits,
            shared.http_counters(),
        ));
        Ok(Self {
            id,
            listen,
            http,
            shared,
            control,
            anycast,
        })
    }

    /// Stops the node.
    pub async fn stop(self) {
        if let Some(a) = self.anycast {
            a.stop().await;
        }
        let _ = self.control.send(Control::Shutdown).await;
    }
}

/// How far the store's first byte moves before the root hears of it: a store retires a segment
/// every few megabytes, and the root needs to know only roughly what a node keeps.
const STORE_REPORT_STEP: u64 = 16 << 20;

/// Tells the protocol what the store holds and whether it can take the stream, when that
/// changes enough to matter to the root's redirects (a full disk at once; the first byte kept
/// in steps), until the node stops.
async fn report_store(store: store::StoreReader, control: mpsc::Sender<Control<Command>>) {
    let mut said: Option<(u64, bool)> = None;
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tick.tick().await;
        let first = store.extent().first;
        let degraded = !store.health().writing();
        let due = said.is_none_or(|(f, d)| {
            d != degraded || first < f || first >= f.saturating_add(STORE_REPORT_STEP)
        });
        if !due {
            continue;
        }
        let before = said.map(|(_, d)| d);
        said = Some((first, degraded));
        match (before, degraded) {
            (Some(false) | None, true) => {
                tracing::warn!(
                    "the store cannot take the stream: the root sends viewers elsewhere"
                );
            }
            (Some(true), false) => tracing::info!("the store takes the stream again"),
            _ => {}
        }
        let report = Command::Store { first, degraded };
        if control.send(Control::Command(report)).await.is_err() {
            return;
        }
    }
}

/// A number for a new stream: random, never 0.
fn new_stream_number() -> Result<u64, BroadcastError> {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 8];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| BroadcastError::Random)?;
    Ok(u64::from_le_bytes(bytes) | 1)
}

/// `esm broadcast`: the root (or a standby root), until interrupted.
pub async fn run_root(a: BroadcastArgs) -> Result<(), BroadcastError> {
    check_group(&a.channel)?;
    let key = a.common.key_file(a.listen);
    let (admission, _) = a.common.credentials(&a.channel)?;
    run(a.config(), &key, admission).await
}

/// `esm relay`: a relay, until interrupted.
pub async fn run_relay(a: RelayArgs) -> Result<(), BroadcastError> {
    check_group(&a.channel)?;
    let key = a.common.key_file(a.listen);
    let (admission, members) = a.common.credentials(&a.channel)?;
    let mut config = a.config();
    if config.roots.is_empty() {
        config.roots = members.into_iter().map(|(_, addr)| addr).collect();
    }
    if config.roots.is_empty() {
        return Err(BroadcastError::NoRoot);
    }
    run(config, &key, admission).await
}

async fn run(
    config: BroadcastConfig,
    key: &std::path::Path,
    admission: GroupSecret,
) -> Result<(), BroadcastError> {
    let identity = Identity::load_or_create(key)?;
    let status_token = admission.status_token(identity.id());
    let node = BroadcastNode::start(&config, identity, admission).await?;
    println!(
        "ready id={} quic={} http={}",
        node.id.to_hex(),
        node.listen,
        node.http
    );
    eprintln!(
        "{} {} of channel {}: QUIC {}, viewers at http://{}/channels/{}",
        if config.standby {
            "standby root"
        } else if config.roots.is_empty() {
            "root"
        } else {
            "relay"
        },
        node.id,
        config.channel,
        node.listen,
        node.http,
        config.channel
    );
    eprintln!(
        "/status and /metrics answer this machine, and others with `Authorization: Bearer {status_token}`"
    );
    let _ = tokio::signal::ctrl_c().await;
    node.stop().await;
    Ok(())
}
