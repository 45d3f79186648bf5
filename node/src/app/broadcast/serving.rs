//! What a broadcast node's viewers and status pages read: the store, the protocol's view and
//! the transport's snapshot, the redirect choice at the root, and each viewer's stream.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use overcast::certificate::NodeInfo;
use overcast::redirect::{RedirectRequest, choose};
use overlay_core::NodeId;
use serde::{Deserialize, Serialize};

use super::hls::Hls;
use super::idle::IdleClock;
use super::live_edge::LiveEdge;
use super::store::{Read, StoreReader};
use super::ts::PACKET;
use super::vouch::Vouchers;
use crate::edge::http_server::{HttpCounters, HttpSnapshot};
use crate::runtime::TransportSnapshot;
use crate::transport::log_limit::LogLimiter;

/// Viewers a node streams to at once by default: 256. At the 4 Mbit/s of the broadcast bench's
/// stream that is about 1 Gbit/s, a typical node's whole link; a viewer beyond it would get a
/// share too small to follow the stream, so it is better sent elsewhere or told to retry.
pub const DEFAULT_MAX_VIEWERS: usize = 256;

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
    /// Its store cannot take the stream now: it gets no viewers.
    pub degraded: bool,
    /// Its HTTP address answered as this node when the root checked it (only such addresses
    /// get viewers).
    pub vouched: bool,
}

/// Delivery figures of a broadcast node (Overcast's counters).
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub struct Delivery {
    /// Gaps in what came from the parent, each asked for again.
    pub gaps: u64,
    /// Times a child's feed was sent again from what it acknowledged.
    pub resends: u64,
    /// Times a child fell behind what this node held and was moved on.
    pub child_skips: u64,
    /// Bytes this node never got (its parent no longer held them).
    pub bytes_skipped: u64,
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
    /// The first byte of the stream it holds in memory (later than 0 when it joined late,
    /// resumed from its store, or its memory limit dropped the oldest).
    pub content_first: u64,
    /// The stream it carries (0: none yet).
    pub stream: u64,
    /// Delivery from its parent and to its children: gaps asked for again, feeds sent again,
    /// children moved past what it no longer held, bytes it never got.
    pub delivery: Delivery,
    /// Bytes written to its store (one past the last).
    pub stored: u64,
    /// The first byte its store still keeps (older segments went with the retention).
    pub first_kept: u64,
    /// Why the store's writes fail, while they do (they are retried; storing resumes when
    /// they succeed).
    pub store_error: Option<String>,
    /// Failed store writes tried again, in all.
    pub store_retries: u64,
    /// Bytes of the stream the store never got (the disk could not keep up), in all.
    pub store_skipped: u64,
    /// The root's input: why it stopped early, if it did.
    pub input_error: Option<String>,
    /// Whether the root's input ended.
    pub input_done: bool,
    /// HTTP clients being served now.
    pub clients: usize,
    /// The most viewers this node streams to at once.
    pub max_viewers: usize,
    /// Viewers refused (503) because this node was full and knew no other.
    pub viewers_refused: u64,
    /// Viewers sent to another live node because this one was full.
    pub viewers_sent_elsewhere: u64,
    /// The HTTP server's connections and timeouts.
    pub http: HttpSnapshot,
    /// At the root: every live node, from its up/down table.
    pub live_nodes: Vec<LiveNode>,
    /// The anycast resolver's response-time estimates the redirect uses, milliseconds by node.
    pub estimates_ms: BTreeMap<String, f64>,
    /// The transport.
    pub transport: TransportSnapshot,
}

/// What the runtime's observer copies out of the protocol for HTTP handlers.
#[derive(Debug, Default)]
pub(super) struct View {
    /// The status as far as the protocol knows it.
    pub(super) status: BroadcastStatus,
    /// At the root: every live node with what it reported.
    pub(super) candidates: Vec<(NodeId, NodeInfo)>,
}

/// What a client asks the root for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Want {
    /// The live edge: any node that follows it will do.
    Live,
    /// The bytes `[from, through)`: only a node holding them will do.
    Bytes {
        /// The first byte.
        from: u64,
        /// One past the last.
        through: u64,
    },
}

/// How far behind the root's end a node that follows the live edge may look: nodes report
/// what they hold when it grew by a step (16 MiB), so twice that.
const LIVE_LAG: u64 = 32 << 20;

/// The state HTTP handlers share.
pub struct Shared {
    channel: String,
    store: StoreReader,
    /// Written by the observer on the driver task, read by HTTP handlers.
    view: Arc<Mutex<View>>,
    /// Whether the root's input ended, and why early if it did.
    input: Arc<Mutex<(bool, Option<String>)>>,
    transport: Arc<Mutex<TransportSnapshot>>,
    clients: Mutex<usize>,
    max_viewers: usize,
    viewers_refused: AtomicU64,
    viewers_sent_elsewhere: AtomicU64,
    /// The live edge as last found, for the store's end it was found at.
    live: tokio::sync::Mutex<LiveEdge>,
    http: Arc<HttpCounters>,
    /// Lines that viewers can cause.
    logs: LogLimiter,
    idle: IdleClock,
    me: NodeId,
    estimates: Arc<Mutex<BTreeMap<NodeId, Duration>>>,
    /// HLS segments cut from the store as it grows.
    hls: Hls,
    /// The HTTP addresses the root checked (it redirects only to those).
    vouchers: Arc<Vouchers>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("channel", &self.channel)
            .finish_non_exhaustive()
    }
}

impl Shared {
    /// The state of node `me` of `channel`: its store, the protocol `view` and transport
    /// `snapshot` that the runtime keeps current, and when a viewer's response ends because
    /// the stream stopped growing (`idle`). Starts the task that
    /// cuts HLS segments from the store (so it needs a tokio runtime).
    pub(super) fn new(
        channel: String,
        store: StoreReader,
        view: Arc<Mutex<View>>,
        transport: Arc<Mutex<TransportSnapshot>>,
        idle: IdleClock,
        me: NodeId,
    ) -> Self {
        let input = Arc::new(Mutex::new((false, None)));
        let hls = Hls::follow(store.clone(), input.clone(), idle.clone());
        Self {
            channel,
            store,
            view,
            input,
            transport,
            clients: Mutex::new(0),
            max_viewers: DEFAULT_MAX_VIEWERS,
            viewers_refused: AtomicU64::new(0),
            viewers_sent_elsewhere: AtomicU64::new(0),
            live: tokio::sync::Mutex::new(LiveEdge::default()),
            http: Arc::default(),
            logs: LogLimiter::default(),
            idle,
            me,
            estimates: Arc::new(Mutex::new(BTreeMap::new())),
            hls,
            vouchers: Arc::new(Vouchers::default()),
        }
    }

    /// The same, streaming to at most `max` viewers at once.
    pub(super) fn with_max_viewers(self, max: usize) -> Self {
        Self {
            max_viewers: max,
            ..self
        }
    }

    /// Where the HTTP server counts its connections, for `/status` and `/metrics`.
    pub(super) fn http_counters(&self) -> Arc<HttpCounters> {
        self.http.clone()
    }

    /// Where the anycast resolver's estimates go.
    pub(super) fn estimates(&self) -> Arc<Mutex<BTreeMap<NodeId, Duration>>> {
        self.estimates.clone()
    }

    /// Where the root's input says whether it ended, and why early.
    pub(super) fn input_state(&self) -> Arc<Mutex<(bool, Option<String>)>> {
        self.input.clone()
    }

    /// The node's id.
    pub fn id(&self) -> NodeId {
        self.me
    }

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
        let health = self.store.health();
        s.store_error = health.error;
        s.store_retries = health.retries;
        s.store_skipped = health.skipped;
        if let Ok(i) = self.input.lock() {
            s.input_done = i.0;
            s.input_error = i.1.clone();
        }
        s.clients = self.clients.lock().map(|c| *c).unwrap_or(0);
        s.max_viewers = self.max_viewers;
        s.viewers_refused = self.viewers_refused.load(Ordering::Relaxed);
        s.viewers_sent_elsewhere = self.viewers_sent_elsewhere.load(Ordering::Relaxed);
        s.http = self.http.snapshot();
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
                        .map(|(id, info)| {
                            let addr = http.get(&id.to_hex()).copied();
                            LiveNode {
                                id: id.to_hex(),
                                http: addr,
                                content: info.content,
                                load: info.load,
                                degraded: info.degraded,
                                vouched: addr.is_some_and(|a| self.vouchers.vouches(id, a)),
                            }
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

    /// Where the root sends a client wanting `want`: another live node's HTTP address (not
    /// degraded, holding what is wanted, nearest by the resolver's estimates where known and
    /// least loaded), or `None` to serve it here.
    pub fn redirect_target(&self, want: Want) -> Option<SocketAddr> {
        let (is_root, candidates, end) = self
            .view
            .lock()
            .map(|v| (v.status.is_root, v.candidates.clone(), v.status.content_end))
            .ok()?;
        if !is_root {
            return None;
        }
        let (from, through) = match want {
            // Nodes report what they hold in steps, so one that follows the live edge may
            // look this far behind it.
            Want::Live => {
                let recent = end.saturating_sub(LIVE_LAG);
                (recent, recent)
            }
            Want::Bytes { from, through } => (from, through),
        };
        let http: BTreeMap<String, SocketAddr> = self
            .transport
            .lock()
            .map(|t| t.http_addresses.clone())
            .unwrap_or_default();
        let reachable = candidates.into_iter().filter(|(id, _)| {
            *id != self.me
                && http
                    .get(&id.to_hex())
                    .is_some_and(|&addr| self.vouchers.vouches(id, addr))
        });
        let rtt: BTreeMap<NodeId, Duration> =
            self.estimates.lock().map(|e| e.clone()).unwrap_or_default();
        let request = RedirectRequest {
            from,
            through,
            rtt: &rtt,
            estimate: None,
        };
        let chosen = choose(reachable, &request)?;
        http.get(&chosen.to_hex()).copied()
    }

    /// At the root, checks the HTTP addresses live nodes named, for as long as the node runs;
    /// a standby root (`standby`) checks them too, so it can redirect as soon as it takes over.
    pub(super) async fn vouch_for_live_nodes(self: Arc<Self>, standby: bool) {
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        loop {
            tick.tick().await;
            let Ok((is_root, candidates)) = self
                .view
                .lock()
                .map(|v| (v.status.is_root, v.candidates.clone()))
            else {
                return;
            };
            if !is_root && !standby {
                continue;
            }
            let http = self
                .transport
                .lock()
                .map(|t| t.http_addresses.clone())
                .unwrap_or_default();
            let named: Vec<(NodeId, SocketAddr)> = candidates
                .iter()
                .filter(|(id, _)| *id != self.me)
                .filter_map(|(id, _)| http.get(&id.to_hex()).map(|&a| (*id, a)))
                .collect();
            self.vouchers.check(&named);
        }
    }

    /// Bytes stored so far.
    pub fn stored(&self) -> u64 {
        self.store.extent().end
    }

    /// Where a viewer of the live edge starts: the latest packet in the last 2 MiB that opens
    /// a random-access point (a keyframe), so a player decodes from its first frame; the
    /// packet-aligned end when there is none. Found once per growth of the store (one request
    /// at a time scans what is new; the others wait for its answer).
    pub async fn live_start(&self) -> u64 {
        self.live.lock().await.start(&self.store).await
    }

    /// A viewer starts if this node has room for one: the guard that counts it while it is
    /// served, or `None` when it already streams to its most viewers.
    pub fn try_client(self: &Arc<Self>) -> Option<ClientGuard> {
        let mut c = self.clients.lock().ok()?;
        if *c >= self.max_viewers {
            return None;
        }
        *c += 1;
        Some(ClientGuard(self.clone()))
    }

    /// A viewer this full node sent elsewhere (`refused`: told to retry instead), counted and
    /// logged at a limited rate.
    pub fn turned_away(&self, refused: bool) {
        let count = if refused {
            &self.viewers_refused
        } else {
            &self.viewers_sent_elsewhere
        };
        count.fetch_add(1, Ordering::Relaxed);
        if let Some(suppressed) = self.logs.allow("viewer cap") {
            tracing::warn!(
                max_viewers = self.max_viewers,
                refused,
                suppressed,
                "a viewer came to a full node"
            );
        }
    }

    /// The stream from `from` for the viewer `guard` counts: chunks of the store as they become
    /// available, ending once it has not grown for the idle time. Chunks are taken one at a
    /// time as the connection sends them, so a viewer that does not read holds one chunk here
    /// plus the HTTP server's bounded buffer.
    pub fn stream_from(
        self: &Arc<Self>,
        from: u64,
        guard: ClientGuard,
    ) -> impl futures_core::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
        let shared = self.clone();
        let mut grown = self.store.watch();
        let mut idle = self.idle.clone();
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
                        if let Some(suppressed) = shared.logs.allow("viewer behind") {
                            tracing::warn!(
                                at = pos,
                                first_kept = extent.first,
                                skipped_to = edge,
                                suppressed,
                                "a viewer fell behind the store; skipped it to the live edge"
                            );
                        }
                        pos = edge;
                    }
                    Read::Empty => {
                        if !idle.wait(&mut grown).await {
                            break;
                        }
                    }
                }
            }
        }
    }
}

impl Shared {
    /// The HLS segments and playlists.
    pub fn hls(&self) -> &Hls {
        &self.hls
    }

    /// Bytes `[start, end)` of the store after `prefix`, counted as a client (by `guard`)
    /// while they are sent; the stream fails if the store no longer (or not yet) holds them.
    pub fn read_range(
        self: &Arc<Self>,
        prefix: Option<Bytes>,
        start: u64,
        end: u64,
        guard: ClientGuard,
    ) -> impl futures_core::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
        let shared = self.clone();
        async_stream::try_stream! {
            let _guard = guard;
            if let Some(prefix) = prefix {
                yield prefix;
            }
            let mut pos = start;
            while pos < end {
                let want = usize::try_from(end - pos).unwrap_or(usize::MAX).min(64 * 1024);
                match shared.store.read(pos, want).await? {
                    Read::Bytes(b) => {
                        pos += b.len() as u64;
                        yield b;
                    }
                    Read::Behind(_) | Read::Empty => {
                        Err(std::io::Error::new(
                            std::io::ErrorKind::NotFound,
                            format!("bytes {pos}..{end} are not in the store"),
                        ))?;
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
