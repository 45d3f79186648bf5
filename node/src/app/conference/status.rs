//! What a conference member shows: per-source receive figures measured with the `probe`
//! crate's estimators, the protocol's view (members, neighbours, routes) copied by the runtime's
//! observer, the transport's snapshot, as `/status` JSON and `/metrics` text.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use overlay_core::{NodeId, Time};
use serde::{Deserialize, Serialize};

use super::seconds::{MediaSecond, MediaSeconds};
use crate::edge::prometheus::{self, Kind, MetricsPage};
use crate::runtime::{TransportSnapshot, WallClock};

/// One source as a receiver sees it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SourceStatus {
    /// Receive rate over the last two seconds, kbit/s.
    pub rate_kbps: f64,
    /// Packets missing (by sequence number) over the last finished interval of two seconds or
    /// more, as a fraction.
    pub loss: f64,
    /// Smoothed one-way delay, milliseconds (source and receiver share a wall clock on one
    /// machine; across machines it includes clock offset).
    pub delay_ms: f64,
    /// Packets received in all.
    pub packets: u64,
    /// Packets that arrived through gap repair.
    pub recovered: u64,
    /// Payload bytes received in all (rates over any window: the difference over its length).
    #[serde(default)]
    pub bytes: u64,
    /// The sum of every received packet's one-way delay, milliseconds (mean delay over any
    /// window: the difference over the packets' difference).
    #[serde(default)]
    pub delay_total_ms: f64,
    /// Media packets that arrived in time to play (`media::Receiver::conversation`, as the
    /// simulator's receivers play: 400 ms after the stream's first packet, delayed further by
    /// up to 300 ms as packets come late), duplicates not counted.
    #[serde(default)]
    pub played_packets: u64,
    /// Their media payload bytes (what the simulator counts as received bandwidth).
    #[serde(default)]
    pub played_bytes: u64,
    /// How much the playout has been delayed beyond its first 400 ms, milliseconds.
    #[serde(default)]
    pub playout_added_ms: f64,
    /// The sum of their one-way delays, milliseconds.
    #[serde(default)]
    pub played_delay_total_ms: f64,
    /// Milliseconds since the last packet.
    pub last_heard_ms: u64,
    /// Media packets received, by layer (when the payload is a media packet).
    #[serde(default)]
    pub by_class: ByClass,
    /// Of them, those that arrived in time to play (as `played_packets`), by layer.
    #[serde(default)]
    pub played_by_class: ByClass,
    /// The same, by the second the frames were captured, for the last few seconds: compared
    /// with the source's [`ConferenceStatus::sent_by_media_second`], the same frames at both
    /// ends, whatever was on its way.
    #[serde(default)]
    pub by_media_second: Vec<MediaSecond>,
}

/// A route as `/status` lists it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RouteStatus {
    /// The destination.
    pub dest: String,
    /// The next hop.
    pub next_hop: Option<String>,
    /// The route's latency, milliseconds.
    pub latency_ms: Option<f64>,
    /// Its bandwidth level (of the configured levels).
    pub width: Option<u16>,
}

/// A mesh link as `/status` lists it: what routing knows of the neighbour.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LinkStatus {
    /// The neighbour.
    pub neighbour: String,
    /// The one-way latency routing uses, milliseconds.
    pub latency_ms: f64,
    /// The bandwidth level of the link towards this member (of the configured levels).
    pub width: u16,
    /// Whether that level was measured (else it is assumed full).
    pub measured: bool,
    /// The neighbour said its upload is full.
    pub full: bool,
    /// The neighbour asked this member to move its routes elsewhere.
    pub shed: bool,
}

/// `/status`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ConferenceStatus {
    /// This member.
    pub id: String,
    /// The group.
    pub group: String,
    /// Whether it joined.
    pub joined: bool,
    /// Members believed alive (this one included).
    pub members: Vec<String>,
    /// Mesh neighbours.
    pub neighbours: Vec<String>,
    /// Routes to every other member.
    pub routes: Vec<RouteStatus>,
    /// The mesh links, as routing sees them.
    #[serde(default)]
    pub links: Vec<LinkStatus>,
    /// Per source, what arrives.
    pub sources: BTreeMap<String, SourceStatus>,
    /// Packets this member sent as a source.
    pub sent_packets: u64,
    /// Of them, by layer.
    #[serde(default)]
    pub sent_by_class: ByClass,
    /// Of them, by the second the frames were captured, for the last few seconds.
    #[serde(default)]
    pub sent_by_media_second: Vec<MediaSecond>,
    /// The transport: peers with RTT and path rate, counters.
    pub transport: TransportSnapshot,
    /// The browser edge's counters, when it serves browsers.
    #[serde(default)]
    pub browsers: Option<crate::edge::webrtc::EdgeSnapshot>,
    /// What happened to the mesh and the membership since this member started.
    #[serde(default)]
    pub membership: MembershipCounters,
}

/// Counts of membership and mesh changes since a member started: a member declared dead that
/// comes back (refuting its death) shows here as a death heard, and the trees it was on moved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembershipCounters {
    /// Neighbours this member declared dead itself, after their pings went unanswered.
    pub neighbours_died: u64,
    /// Members this member took for dead, whoever declared it (itself or another member).
    pub deaths_heard: u64,
    /// Members that left in good order.
    pub departures_heard: u64,
    /// Mesh links added (asked by either end).
    pub links_added: u64,
    /// Mesh links this member dropped for low utility or gave up for a better one.
    pub links_dropped: u64,
}

/// Media packets by drop class: keyframes, the base layer, enhancement layers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ByClass {
    /// Keyframe packets (class 0, kept longest).
    pub keyframe: u64,
    /// Base-layer packets of delta frames (class 1).
    pub base: u64,
    /// Enhancement-layer packets (classes 2 and above, dropped first).
    pub enhancement: u64,
}

impl ByClass {
    /// Counts one packet of drop class `class`.
    pub fn count(&mut self, class: u8) {
        match class {
            0 => self.keyframe += 1,
            1 => self.base += 1,
            _ => self.enhancement += 1,
        }
    }
}

/// What one receiver measures of one source, with the `probe` crate's estimators: delivered
/// rate over a two-second window (bounded buckets), loss by sequence number over intervals of
/// at least two seconds, smoothed one-way delay.
struct SourceMeter {
    rate: probe::RateMeter,
    loss: probe::SequenceLossMeter,
    /// Loss over the last finished interval, and when the current one began.
    last_loss: f64,
    interval_from: Time,
    delay_us: probe::Ewma,
    packets: u64,
    recovered: u64,
    bytes: u64,
    delay_total_us: u64,
    playout: media::Receiver,
    played_delay_total_us: u64,
    last: Time,
    by_class: ByClass,
    played_by_class: ByClass,
    seconds: MediaSeconds,
}

const WINDOW: Duration = Duration::from_secs(2);

impl SourceMeter {
    fn new(now: Time) -> Self {
        Self {
            // The meter's current bucket is partly filled yet the rate divides by the whole
            // window: 100 buckets keep that under-count under 1%.
            rate: probe::RateMeter::new(WINDOW, 100),
            loss: probe::SequenceLossMeter::default(),
            last_loss: 0.0,
            interval_from: now,
            delay_us: probe::Ewma::new(0.1),
            packets: 0,
            recovered: 0,
            bytes: 0,
            delay_total_us: 0,
            playout: media::Receiver::conversation(),
            played_delay_total_us: 0,
            last: now,
            by_class: ByClass::default(),
            played_by_class: ByClass::default(),
            seconds: MediaSeconds::default(),
        }
    }

    fn add(&mut self, now: Time, arrival: Arrival) {
        let Arrival {
            seq,
            bytes,
            sent_at_us,
            recovered,
            media,
        } = arrival;
        if let Some(mut packet) = media {
            let class = packet.priority.class();
            self.by_class.count(class);
            // One meter per source: whatever stream number a peer writes, it is this one
            // (so a peer cannot grow the playout's table).
            packet.stream = 0;
            let outcome = self.playout.on_packet(now, &packet);
            if outcome != media::Playout::Duplicate {
                let played = outcome == media::Playout::OnTime;
                self.seconds.count(packet.timestamp_us, class, played);
            }
            if outcome == media::Playout::OnTime {
                self.played_by_class.count(class);
                let delay = now.as_micros().saturating_sub(packet.timestamp_us);
                self.played_delay_total_us = self.played_delay_total_us.saturating_add(delay);
            }
        }
        self.rate.record(now, bytes as u64);
        self.loss.record(seq);
        let delay_us = now.as_micros().saturating_sub(sent_at_us);
        self.delay_us.update(delay_us as f64);
        self.delay_total_us = self.delay_total_us.saturating_add(delay_us);
        self.bytes += bytes as u64;
        self.packets += 1;
        self.recovered += u64::from(recovered);
        self.last = now;
    }

    fn status(&mut self, now: Time) -> SourceStatus {
        if now.saturating_since(self.interval_from) >= WINDOW {
            if let Some((expected, received)) = self.loss.take_interval()
                && expected > 0
            {
                self.last_loss = 1.0 - received as f64 / expected as f64;
            }
            self.interval_from = now;
        }
        SourceStatus {
            rate_kbps: self.rate.rate(now).map_or(0.0, |r| r.bps_f64() / 1e3),
            loss: self.last_loss,
            delay_ms: self.delay_us.value().map_or(0.0, |d| d / 1e3),
            packets: self.packets,
            recovered: self.recovered,
            bytes: self.bytes,
            delay_total_ms: self.delay_total_us as f64 / 1e3,
            played_packets: self.playout.stats(0).map_or(0, |s| s.on_time),
            played_bytes: self.playout.stats(0).map_or(0, |s| s.bytes),
            playout_added_ms: self
                .playout
                .stats(0)
                .map_or(0.0, |s| s.playout_added.as_secs_f64() * 1e3),
            played_delay_total_ms: self.played_delay_total_us as f64 / 1e3,
            last_heard_ms: now.saturating_since(self.last).as_millis() as u64,
            by_class: self.by_class,
            played_by_class: self.played_by_class,
            by_media_second: self.seconds.list(),
        }
    }
}

/// What the runtime's observer copies out of the protocol for the status page.
#[derive(Debug, Default)]
pub(super) struct ProtocolView {
    pub(super) joined: bool,
    pub(super) members: Vec<String>,
    pub(super) neighbours: Vec<String>,
    pub(super) routes: Vec<RouteStatus>,
    pub(super) links: Vec<LinkStatus>,
    /// The protocol's own counts; the deaths and departures heard are the board's.
    pub(super) membership: MembershipCounters,
}

/// The shared state behind `/status`.
#[derive(Default)]
pub struct StatusBoard {
    view: Arc<Mutex<ProtocolView>>,
    sources: Mutex<BTreeMap<NodeId, SourceMeter>>,
    sent: Mutex<(u64, ByClass, MediaSeconds)>,
    /// Members taken for dead, and members that left (events from the protocol).
    gone: Mutex<(u64, u64)>,
    group: String,
    id: String,
    transport: Arc<Mutex<TransportSnapshot>>,
    edge: std::sync::OnceLock<Arc<crate::edge::webrtc::EdgeCounters>>,
}

impl std::fmt::Debug for StatusBoard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatusBoard").field("id", &self.id).finish()
    }
}

/// One packet that arrived from a source, as the status counts it.
#[derive(Clone, Debug)]
pub(super) struct Arrival {
    /// Its number in the source's sequence.
    pub(super) seq: u64,
    /// Its payload's length.
    pub(super) bytes: usize,
    /// When the source sent it, microseconds of the shared wall clock.
    pub(super) sent_at_us: u64,
    /// Whether it came by repair.
    pub(super) recovered: bool,
    /// The media packet it carries, if it decoded as one.
    pub(super) media: Option<media::MediaPacket>,
}

impl StatusBoard {
    /// A board for member `id` of `group`, showing the protocol `view` and the transport
    /// `snapshot` that the runtime keeps current.
    pub(super) fn new(
        group: String,
        id: NodeId,
        view: Arc<Mutex<ProtocolView>>,
        transport: Arc<Mutex<TransportSnapshot>>,
    ) -> Self {
        Self {
            view,
            sources: Mutex::new(BTreeMap::new()),
            sent: Mutex::new((0, ByClass::default(), MediaSeconds::default())),
            gone: Mutex::new((0, 0)),
            group,
            id: id.to_hex(),
            transport,
            edge: std::sync::OnceLock::new(),
        }
    }

    /// Shows the browser edge's counters from now on.
    pub(super) fn show_edge(&self, counters: Arc<crate::edge::webrtc::EdgeCounters>) {
        let _ = self.edge.set(counters);
    }

    /// A packet of `source` arrived.
    pub(super) fn received(&self, now: Time, source: NodeId, arrival: Arrival) {
        if let Ok(mut s) = self.sources.lock() {
            s.entry(source)
                .or_insert_with(|| SourceMeter::new(now))
                .add(now, arrival);
        }
    }

    /// `source` left (`died` false) or was taken for dead: its figures go, and it is counted.
    pub(super) fn forget(&self, source: &NodeId, died: bool) {
        if let Ok(mut s) = self.sources.lock() {
            s.remove(source);
        }
        if let Ok(mut g) = self.gone.lock() {
            if died {
                g.0 += 1;
            } else {
                g.1 += 1;
            }
        }
    }

    /// This member sent a packet of drop class `class` as a source, of a frame captured at
    /// `captured_us` (microseconds since the Unix epoch).
    pub(super) fn sent_one(&self, class: u8, captured_us: u64) {
        if let Ok(mut s) = self.sent.lock() {
            s.0 += 1;
            s.1.count(class);
            s.2.count(captured_us, class, false);
        }
    }

    /// The status now.
    pub fn status(&self) -> ConferenceStatus {
        let now = WallClock::default().now();
        let view = self.view.lock().map(|v| {
            (
                v.joined,
                v.members.clone(),
                v.neighbours.clone(),
                v.routes.clone(),
                v.links.clone(),
                v.membership,
            )
        });
        let (joined, members, neighbours, routes, links, mut membership) = view.unwrap_or_default();
        if let Ok(g) = self.gone.lock() {
            (membership.deaths_heard, membership.departures_heard) = *g;
        }
        let sources = self
            .sources
            .lock()
            .map(|mut s| {
                s.iter_mut()
                    .map(|(id, w)| (id.to_hex(), w.status(now)))
                    .collect()
            })
            .unwrap_or_default();
        // One reading of what was sent, so the three figures agree.
        let (sent_packets, sent_by_class, sent_by_media_second) = self
            .sent
            .lock()
            .map(|s| (s.0, s.1, s.2.list()))
            .unwrap_or_default();
        ConferenceStatus {
            id: self.id.clone(),
            group: self.group.clone(),
            joined,
            members,
            neighbours,
            routes,
            links,
            sources,
            sent_packets,
            sent_by_class,
            sent_by_media_second,
            transport: self.transport.lock().map(|t| t.clone()).unwrap_or_default(),
            browsers: self.edge.get().map(|e| e.snapshot()),
            membership,
        }
    }

    /// The Prometheus text exposition of the status.
    pub fn metrics(&self) -> String {
        let s = self.status();
        let by_source = |f: fn(&SourceStatus) -> f64| {
            s.sources.iter().map(move |(id, st)| (id.as_str(), f(st)))
        };
        let mut page = MetricsPage::new();
        page.single(
            Kind::Gauge,
            "esm_members",
            "Members believed alive, this one included.",
            s.members.len() as f64,
        )
        .single(
            Kind::Gauge,
            "esm_neighbours",
            "Mesh neighbours.",
            s.neighbours.len() as f64,
        )
        .single(
            Kind::Counter,
            "esm_neighbours_died_total",
            "Neighbours this member declared dead after their pings went unanswered.",
            s.membership.neighbours_died as f64,
        )
        .single(
            Kind::Counter,
            "esm_member_deaths_heard_total",
            "Members taken for dead, whoever declared it (one that refutes it and returns \
             counts too).",
            s.membership.deaths_heard as f64,
        )
        .single(
            Kind::Counter,
            "esm_member_departures_heard_total",
            "Members that left in good order.",
            s.membership.departures_heard as f64,
        )
        .single(
            Kind::Counter,
            "esm_mesh_links_added_total",
            "Mesh links added, asked by either end.",
            s.membership.links_added as f64,
        )
        .single(
            Kind::Counter,
            "esm_mesh_links_dropped_total",
            "Mesh links this member dropped for low utility or gave up for a better one.",
            s.membership.links_dropped as f64,
        )
        .labelled(
            Kind::Gauge,
            "esm_source_rate_kbps",
            "Receive rate per source over the last two seconds, kbit/s.",
            "source",
            by_source(|st| st.rate_kbps),
        )
        .labelled(
            Kind::Gauge,
            "esm_source_loss_ratio",
            "Missing packets per source over the last finished interval of two seconds or more.",
            "source",
            by_source(|st| st.loss),
        )
        .labelled(
            Kind::Gauge,
            "esm_source_delay_ms",
            "Smoothed one-way delay per source, milliseconds.",
            "source",
            by_source(|st| st.delay_ms),
        );
        if let Some(b) = &s.browsers {
            page.single(
                Kind::Gauge,
                "esm_browser_sessions",
                "WebRTC sessions (WHIP and WHEP) open now.",
                b.sessions_open as f64,
            )
            .single(
                Kind::Counter,
                "esm_browser_sessions_opened_total",
                "WebRTC sessions opened.",
                b.sessions_opened as f64,
            )
            .single(
                Kind::Counter,
                "esm_browser_frames_in_total",
                "Frames received from publishing browsers and WHIP clients.",
                b.frames_in as f64,
            )
            .single(
                Kind::Counter,
                "esm_browser_enhancement_frames_in_total",
                "Video frames received from publishers in a temporal layer above the base.",
                b.enhancement_frames_in as f64,
            )
            .single(
                Kind::Counter,
                "esm_browser_frames_out_total",
                "Frames written to watching browsers.",
                b.frames_out as f64,
            )
            .single(
                Kind::Counter,
                "esm_browser_enhancement_frames_withheld_total",
                "Upper-layer frames not written to watchers whose leg's bandwidth estimate \
                 does not carry the whole stream.",
                b.enhancement_frames_withheld as f64,
            )
            .single(
                Kind::Gauge,
                "esm_browser_watchers_on_base_layer",
                "Watching browsers getting only the base layer now.",
                b.watchers_on_base as f64,
            )
            .single(
                Kind::Gauge,
                "esm_browser_watchers_on_lower_encoding",
                "Watching browsers getting the smaller of their source's two simulcast \
                 encodings now.",
                b.watchers_on_lower_encoding as f64,
            )
            .labelled(
                Kind::Counter,
                "esm_browser_encoding_downs_total",
                "Watchers on the higher simulcast encoding sent to the lower, by cause: \
                 short (their leg's estimate), starved (the higher stopped arriving), broken \
                 (the member lost a frame of it), hedged (quiet when the lower's keyframe came).",
                "cause",
                [
                    ("short", b.encoding_downs_short as f64),
                    ("starved", b.encoding_downs_starved as f64),
                    ("broken", b.encoding_downs_broken as f64),
                    ("hedged", b.encoding_downs_hedged as f64),
                ],
            )
            .single(
                Kind::Counter,
                "esm_browser_frames_dropped_total",
                "Publishers' frames the member could not take at once.",
                b.frames_dropped as f64,
            )
            .single(
                Kind::Counter,
                "esm_browser_stray_datagrams_total",
                "Datagrams on the WebRTC socket that belonged to no session.",
                b.strays as f64,
            );
        }
        prometheus::write_transport(&mut page, &s.transport);
        page.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_meter_reports_rate_loss_and_delay() {
        let at = |ms: u64| Time::from_millis(10_000 + ms);
        let mut m = SourceMeter::new(at(0));
        // 200 packets of 625 bytes over two seconds (500 kbit/s), every tenth missing, each
        // sent 3 ms before it arrives.
        for i in 0..200u64 {
            if i % 10 == 9 {
                continue;
            }
            let now = at(i * 10);
            let arrival = Arrival {
                seq: i,
                bytes: 625,
                sent_at_us: now.as_micros() - 3_000,
                recovered: false,
                media: Some(media::MediaPacket {
                    stream: 7,
                    seq: i,
                    frame: i,
                    timestamp_us: now.as_micros() - 3_000,
                    priority: media::Priority::from_class((i % 3) as u8),
                    fragment: 0,
                    fragments: 1,
                    payload: bytes::Bytes::from(vec![0; 600]),
                }),
            };
            m.add(now, arrival);
        }
        let s = m.status(at(2_000));
        assert!((s.loss - 0.1).abs() < 0.011, "{s:?}");
        assert!((s.delay_ms - 3.0).abs() < 1e-6, "{s:?}");
        assert!((400.0..500.0).contains(&s.rate_kbps), "{s:?}");
        assert_eq!(s.packets, 180);
        assert_eq!(s.bytes, 180 * 625);
        assert!((s.delay_total_ms - 180.0 * 3.0).abs() < 1e-6, "{s:?}");
        // Every packet plays (3 ms after its capture, all on the stream's schedule).
        assert_eq!(s.played_packets, 180);
        assert_eq!(s.played_bytes, 180 * 600);
        assert!(
            (s.played_delay_total_ms - 180.0 * 3.0).abs() < 1e-6,
            "{s:?}"
        );
        assert_eq!(
            s.by_class,
            ByClass {
                keyframe: 60,
                base: 60,
                enhancement: 60
            }
        );
        assert_eq!(s.played_by_class, s.by_class);
        // A packet lost on the way and repaired two seconds late counts as received, not as
        // played.
        let late = media::MediaPacket {
            stream: 7,
            seq: 9,
            frame: 9,
            timestamp_us: at(90).as_micros() - 3_000,
            priority: media::Priority::Keyframe,
            fragment: 0,
            fragments: 1,
            payload: bytes::Bytes::from(vec![0; 600]),
        };
        m.add(
            at(2_100),
            Arrival {
                seq: 9,
                bytes: 625,
                sent_at_us: late.timestamp_us,
                recovered: true,
                media: Some(late),
            },
        );
        let s = m.status(at(2_100));
        assert_eq!(s.by_class.keyframe, 61);
        assert_eq!(s.played_by_class.keyframe, 60);
        // Silence: the rate falls to nothing once the window has passed.
        assert_eq!(m.status(at(10_000)).rate_kbps, 0.0);
    }

    #[test]
    fn a_member_taken_for_dead_loses_its_figures_and_is_counted() {
        let board = StatusBoard::new(
            "g".into(),
            NodeId::from_bytes([1; 32]),
            Arc::default(),
            Arc::default(),
        );
        let source = NodeId::from_bytes([2; 32]);
        let arrival = Arrival {
            seq: 1,
            bytes: 100,
            sent_at_us: 0,
            recovered: false,
            media: None,
        };
        board.received(Time::from_millis(1), source, arrival.clone());
        assert_eq!(board.status().sources.len(), 1);
        board.forget(&source, true);
        board.received(Time::from_millis(2), source, arrival);
        board.forget(&source, false);
        let s = board.status();
        assert!(s.sources.is_empty());
        assert_eq!(s.membership.deaths_heard, 1);
        assert_eq!(s.membership.departures_heard, 1);
        let page = board.metrics();
        assert!(page.contains("esm_member_deaths_heard_total 1\n"), "{page}");
        assert!(
            page.contains("esm_member_departures_heard_total 1\n"),
            "{page}"
        );
    }
}
