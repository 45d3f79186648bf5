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

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use overcast::certificate::NodeInfo;
use overcast::redirect::{RedirectRequest, choose};
use overcast::{Command, Overcast, OvercastConfig};
use overlay_core::NodeId;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::admission::GroupSecret;
use crate::connect::{Connector, TransportSettings};
use crate::identity::Identity;
use crate::runtime::{self, Control, RuntimeOptions, TransportSnapshot};
use crate::signing::{Ed25519Signer, Ed25519Verifier};
use crate::store::{self, Read, StoreReader};
use crate::ts::{PACKET, PcrClock, TsReader, pcr};

/// Settings of a broadcast root or relay.
#[derive(Clone, Debug)]
pub struct BroadcastConfig {
    /// The channel (also the admission group).
    pub channel: String,
    /// Where to listen for nodes (UDP).
    pub listen: SocketAddr,
    /// Where to serve HTTP.
    pub http: SocketAddr,
    /// Where to keep the stream.
    pub store: PathBuf,
    /// The linear roots to join through, top first (none: this is the root). A relay joins
    /// under the last; a standby root lists the root it stands by for.
    pub roots: Vec<SocketAddr>,
    /// This node is a standby root: it takes its place in the chain under `roots`.
    pub standby: bool,
    /// The root's input: a file, or `-` for stdin.
    pub input: Option<PathBuf>,
    /// Publish a file as fast as it reads instead of at its own rate.
    pub fast: bool,
    /// End an HTTP response after the stream has not grown for this long.
    pub idle_end: Duration,
    /// Bytes each node keeps in memory for children that resume.
    pub memory_limit: u64,
    /// Bytes of the stream the store keeps at least (older segments are deleted).
    pub retention: u64,
    /// An anycast resolver (for group CHANNEL): the node registers its HTTP address there as a
    /// server of `CHANNEL%esm.local`, and the root's redirects use the resolver's estimates.
    pub resolver: Option<SocketAddr>,
}

/// Bytes per store segment file.
const SEGMENT_BYTES: u64 = 4 << 20;

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
/// A live node as the root's `/status` lists it.
pub struct LiveNode {
    /// Its id.
    pub id: String,
    /// Where it serves HTTP, if known.
    pub http: Option<SocketAddr>,
    /// One past the last content byte it holds.
    pub content: u64,
    /// Children plus clients it serves.
    pub load: u32,
}

/// `/status` of a broadcast node.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct BroadcastStatus {
    /// This node.
    pub id: String,
    /// The channel.
    pub channel: String,
    /// Whether it is the root.
    pub is_root: bool,
    /// Its parent.
    pub parent: Option<String>,
    /// Its children.
    pub children: Vec<String>,
    /// Bytes of the stream it holds (one past the last).
    pub content_end: u64,
    /// Bytes written to its store (one past the last).
    pub stored: u64,
    /// The first byte its store still keeps (older segments went with the retention).
    pub first_kept: u64,
    /// Why storing stopped, if it did.
    pub store_error: Option<String>,
    /// The root's input: why it stopped early, if it did.
    pub input_error: Option<String>,
    /// Whether the root's input ended.
    pub input_done: bool,
    /// HTTP clients being served now.
    pub clients: usize,
    /// At the root: every live node, from its up/down table.
    pub live_nodes: Vec<LiveNode>,
    /// The anycast resolver's response-time estimates the redirect uses, milliseconds by node.
    pub estimates_ms: BTreeMap<String, f64>,
    /// The transport.
    pub transport: TransportSnapshot,
}

#[derive(Default)]
struct View {
    status: BroadcastStatus,
    candidates: Vec<(NodeId, NodeInfo)>,
}

/// The state HTTP handlers share.
pub struct Shared {
    channel: String,
    store: StoreReader,
    /// Written by the observer on the driver task, read by HTTP handlers.
    view: Arc<Mutex<View>>,
    store_error: Arc<Mutex<Option<String>>>,
    /// Whether the root's input ended, and why early if it did.
    input: Arc<Mutex<(bool, Option<String>)>>,
    transport: Arc<Mutex<TransportSnapshot>>,
    clients: Mutex<usize>,
    idle_end: Duration,
    me: NodeId,
    estimates: Arc<Mutex<BTreeMap<NodeId, Duration>>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("channel", &self.channel)
            .finish_non_exhaustive()
    }
}

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
    anycast: Option<crate::anycast::AnycastEntry>,
}

impl BroadcastNode {
    /// Starts a root (no `root` in the config) or a relay.
    pub async fn start(
        config: &BroadcastConfig,
        identity: Identity,
        admission: GroupSecret,
    ) -> Result<Self, String> {
        let id = identity.id();
        let store_dir = config.store.join(&config.channel);
        let listener = tokio::net::TcpListener::bind(config.http)
            .await
            .map_err(|e| format!("cannot serve HTTP on {}: {e}", config.http))?;
        let http = listener
            .local_addr()
            .map_err(|e| format!("HTTP address: {e}"))?;
        let mut connector = Connector::bind(
            config.listen,
            identity.clone(),
            admission.clone(),
            TransportSettings::default(),
        )
        .map_err(|e| e.to_string())?;
        connector.advertise_http(http);
        let mut root_ids = Vec::new();
        for &root in &config.roots {
            let a = connector
                .dial(root, None)
                .await
                .map_err(|e| format!("the root at {root}: {e}"))?;
            a.conn.close(0u32.into(), b"learned the id");
            root_ids.push(a.peer);
        }
        if config.roots.is_empty() || config.standby {
            root_ids.push(id);
        }
        let overcast_config = OvercastConfig {
            roots: root_ids,
            store_limit: config.memory_limit,
            seed: u64::from_le_bytes(id.as_bytes()[..8].try_into().unwrap_or_default()),
            ..OvercastConfig::default()
        };
        let signer = Ed25519Signer::new(&identity)?;
        let node = Overcast::new(
            id,
            overcast_config,
            Box::new(signer),
            Box::new(Ed25519Verifier),
        );
        // The store: segment files written in offset order, bounded by the retention.
        let store_error: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
        let (store, chunks_tx) = store::open(
            &store_dir,
            config.retention,
            SEGMENT_BYTES.min(config.retention.max(1)),
            store_error.clone(),
        )
        .map_err(|e| format!("store {}: {e}", store_dir.display()))?;
        let view = Arc::new(Mutex::new(View::default()));
        let observer_view = view.clone();
        let channel = config.channel.clone();
        let mut sent_end = 0u64;
        let mut last_view = Instant::now() - Duration::from_secs(1);
        let observer: runtime::Observer<Overcast> = Box::new(move |n: &Overcast| {
            let end = n.content_end();
            if end > sent_end {
                for (offset, bytes) in n.content_from(sent_end) {
                    let _ = chunks_tx.send((offset, bytes));
                }
                sent_end = end;
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
                    v.candidates = candidates;
                }
            }
        });
        let options = RuntimeOptions {
            datagrams: false,
            observe_every_input: true,
        };
        let handle = runtime::start_with(node, connector, Some(observer), options);
        let listen = handle.local_addr;
        let control = handle.control.clone();
        for &root in &config.roots {
            runtime::dial(&control, root)
                .await
                .map_err(|e| format!("the root at {root}: {e}"))?;
        }
        let _ = control.send(Control::Command(Command::Start)).await;
        let shared = Arc::new(Shared {
            channel: config.channel.clone(),
            store,
            view,
            store_error,
            input: Arc::new(Mutex::new((false, None))),
            transport: handle.snapshot.clone(),
            clients: Mutex::new(0),
            idle_end: config.idle_end,
            me: id,
            estimates: Arc::new(Mutex::new(BTreeMap::new())),
        });
        let mut anycast = None;
        if let Some(resolver) = config.resolver {
            let name =
                anycast_resolver::AnycastName::new(&config.channel, crate::anycast::DEFAULT_DOMAIN)
                    .map_err(|e| format!("anycast name for channel {}: {e}", config.channel))?;
            let entry = crate::anycast::AnycastEntry::start(
                &identity,
                admission.clone(),
                resolver,
                name.clone(),
                http,
                control.clone(),
            )?;
            anycast = Some(entry);
            tokio::spawn(crate::anycast::follow_estimates(
                admission.clone(),
                resolver,
                name,
                shared.estimates.clone(),
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
                shared.input.clone(),
            ));
        }
        let app = crate::broadcast_http::router(shared.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
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

/// Packets per published chunk at most.
const CHUNK_PACKETS: usize = 64;
/// The longest a live input's packet waits to be published with others.
const LIVE_BATCH: Duration = Duration::from_millis(5);

/// Reads the root's input and publishes it, whole packets only.
async fn publish_input(
    input: PathBuf,
    fast: bool,
    control: mpsc::Sender<Control<Command>>,
    state: Arc<Mutex<(bool, Option<String>)>>,
) {
    let live = input.as_os_str() == "-";
    let reader: Box<dyn tokio::io::AsyncRead + Unpin + Send> = if live {
        Box::new(tokio::io::stdin())
    } else {
        match tokio::fs::File::open(&input).await {
            Ok(f) => Box::new(f),
            Err(e) => {
                let why = format!("input {}: {e}", input.display());
                tracing::error!(%why);
                if let Ok(mut s) = state.lock() {
                    *s = (true, Some(why));
                }
                return;
            }
        }
    };
    // Packets come from a reader task (a read cancelled half way would lose bytes), so the
    // publisher can wait for the next one with a deadline.
    let (packets_tx, mut packets) = mpsc::channel::<Result<[u8; PACKET], String>>(1024);
    tokio::spawn(async move {
        let mut ts = TsReader::new(reader);
        loop {
            let item = match ts.next_packet().await {
                Ok(Some(p)) => Ok(p),
                Ok(None) => return,
                Err(e) => Err(e.to_string()),
            };
            let stop = item.is_err();
            if packets_tx.send(item).await.is_err() || stop {
                return;
            }
        }
    });
    let mut clock = PcrClock::default();
    let mut chunk: Vec<u8> = Vec::with_capacity(CHUNK_PACKETS * PACKET);
    let mut offset = 0u64;
    let mut chunk_started: Option<tokio::time::Instant> = None;
    let publish = |chunk: &mut Vec<u8>, offset: &mut u64| {
        let bytes = Bytes::from(std::mem::take(chunk));
        let at = *offset;
        *offset += bytes.len() as u64;
        let control = control.clone();
        async move {
            bytes.is_empty()
                || control
                    .send(Control::Command(Command::Publish { offset: at, bytes }))
                    .await
                    .is_ok()
        }
    };
    let error = loop {
        // A live input is published at most LIVE_BATCH after its first unpublished packet.
        let next = match chunk_started.filter(|_| live) {
            Some(t0) => match tokio::time::timeout_at(t0 + LIVE_BATCH, packets.recv()).await {
                Ok(next) => next,
                Err(_) => {
                    chunk_started = None;
                    if !publish(&mut chunk, &mut offset).await {
                        break None;
                    }
                    continue;
                }
            },
            None => packets.recv().await,
        };
        match next {
            Some(Ok(packet)) => {
                let due = (!fast && !live)
                    .then(|| pcr(&packet).map(|p| clock.due(p)))
                    .flatten();
                if let Some(due) = due
                    && due > tokio::time::Instant::now()
                {
                    if !publish(&mut chunk, &mut offset).await {
                        break None;
                    }
                    tokio::time::sleep_until(due).await;
                }
                if chunk.is_empty() {
                    chunk_started = Some(tokio::time::Instant::now());
                }
                chunk.extend_from_slice(&packet);
                if chunk.len() >= CHUNK_PACKETS * PACKET {
                    chunk_started = None;
                    if !publish(&mut chunk, &mut offset).await {
                        break None;
                    }
                }
            }
            Some(Err(e)) => break Some(e),
            None => break None,
        }
    };
    publish(&mut chunk, &mut offset).await;
    match &error {
        Some(why) => tracing::error!(%why, published = offset, "input stopped"),
        None => tracing::info!(published = offset, "input ended"),
    }
    if let Ok(mut s) = state.lock() {
        *s = (true, error);
    }
}

impl Shared {
    /// The status now.
    pub fn status(&self) -> BroadcastStatus {
        let mut s = self
            .view
            .lock()
            .map(|v| v.status.clone())
            .unwrap_or_default();
        let extent = self.store.extent();
        s.stored = extent.end;
        s.first_kept = extent.first;
        s.store_error = self.store_error.lock().ok().and_then(|e| e.clone());
        if let Ok(i) = self.input.lock() {
            s.input_done = i.0;
            s.input_error = i.1.clone();
        }
        s.clients = self.clients.lock().map(|c| *c).unwrap_or(0);
        s.transport = self.transport.lock().map(|t| t.clone()).unwrap_or_default();
        s.estimates_ms = self
            .estimates
            .lock()
            .map(|e| {
                e.iter()
                    .map(|(id, d)| (id.to_hex(), d.as_secs_f64() * 1e3))
                    .collect()
            })
            .unwrap_or_default();
        if s.is_root {
            let http = &s.transport.http_addresses;
            s.live_nodes = self
                .view
                .lock()
                .map(|v| {
                    v.candidates
                        .iter()
                        .map(|(id, info)| LiveNode {
                            id: id.to_hex(),
                            http: http.get(&id.to_hex()).copied(),
                            content: info.content,
                            load: info.load,
                        })
                        .collect()
                })
                .unwrap_or_default();
        }
        s
    }

    /// The channel's name.
    pub fn channel(&self) -> &str {
        &self.channel
    }

    /// Where the root sends a client wanting bytes from `from` on: another live node's HTTP
    /// address, or `None` to serve it here.
    pub fn redirect_target(&self, from: u64) -> Option<SocketAddr> {
        let (is_root, candidates) = self
            .view
            .lock()
            .map(|v| (v.status.is_root, v.candidates.clone()))
            .ok()?;
        if !is_root {
            return None;
        }
        let http: BTreeMap<String, SocketAddr> = self
            .transport
            .lock()
            .map(|t| t.http_addresses.clone())
            .unwrap_or_default();
        let reachable = candidates
            .into_iter()
            .filter(|(id, _)| *id != self.me && http.contains_key(&id.to_hex()));
        let rtt: BTreeMap<NodeId, Duration> =
            self.estimates.lock().map(|e| e.clone()).unwrap_or_default();
        let request = RedirectRequest {
            from,
            through: from,
            rtt: &rtt,
            estimate: None,
        };
        let chosen = choose(reachable, &request)?;
        http.get(&chosen.to_hex()).copied()
    }

    /// Bytes stored so far.
    pub fn stored(&self) -> u64 {
        self.store.extent().end
    }

    /// Where a viewer of the live edge starts: the latest packet in the last 2 MiB that opens
    /// a random-access point (a keyframe), so a player decodes from its first frame; the
    /// packet-aligned end when there is none.
    pub async fn live_start(&self) -> u64 {
        let extent = self.store.extent();
        let end = extent.end - extent.end % PACKET as u64;
        let from = end.saturating_sub(2 << 20).max(extent.first);
        let from = from + (PACKET as u64 - from % PACKET as u64) % PACKET as u64;
        let mut tail = Vec::new();
        let mut pos = from;
        while pos < end {
            match self.store.read(pos, (end - pos) as usize).await {
                Ok(Read::Bytes(b)) => {
                    pos += b.len() as u64;
                    tail.extend_from_slice(&b);
                }
                _ => return end,
            }
        }
        tail.chunks_exact(PACKET)
            .rposition(crate::ts::opens_random_access)
            .map_or(end, |i| from + (i * PACKET) as u64)
    }

    /// A client starts; returns the guard that counts it.
    pub fn client(self: &Arc<Self>) -> ClientGuard {
        if let Ok(mut c) = self.clients.lock() {
            *c += 1;
        }
        ClientGuard(self.clone())
    }

    /// The stream from `from`: chunks of the store as they become available, ending once it
    /// has not grown for the idle time.
    pub fn stream_from(
        self: &Arc<Self>,
        from: u64,
    ) -> impl futures_core::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
        let shared = self.clone();
        let guard = self.client();
        let mut grown = self.store.watch();
        async_stream::try_stream! {
            let _guard = guard;
            let mut pos = from;
            loop {
                grown.borrow_and_update();
                match shared.store.read(pos, 64 * 1024).await? {
                    Read::Bytes(b) => {
                        pos += b.len() as u64;
                        yield b;
                    }
                    Read::Behind(extent) => {
                        // Too far behind what is kept: on to the live edge.
                        let edge = extent.end - extent.end % PACKET as u64;
                        tracing::warn!(
                            at = pos,
                            first_kept = extent.first,
                            skipped_to = edge,
                            "a viewer fell behind the store; skipped it to the live edge"
                        );
                        pos = edge;
                    }
                    Read::Empty => {
                        match tokio::time::timeout(shared.idle_end, grown.changed()).await {
                            Ok(Ok(())) => {}
                            _ => break,
                        }
                    }
                }
            }
        }
    }
}

/// Counts a client while it is served.
#[derive(Debug)]
pub struct ClientGuard(Arc<Shared>);

impl Drop for ClientGuard {
    fn drop(&mut self) {
        if let Ok(mut c) = self.0.clients.lock() {
            *c = c.saturating_sub(1);
        }
    }
}
