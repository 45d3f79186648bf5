//! What every part of a member shares: its settings, its view of the group (the member table,
//! its mesh neighbours, the routing table), its life (joined, leaving, left), and what it hands
//! its driver (outputs, timers, counters, randomness). The mesh ([`crate::mesh::Mesh`]) and the
//! data plane ([`crate::data::DataPlane`]) own the rest of their state; [`crate::Narada`]
//! composes the three.
//!
//! Routing glue lives here: recomputing routes when links or news change, and scheduling what
//! changed for the neighbours ([`crate::sync`] writes that news).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use overlay_core::rng::{ProtocolRng, derive_seed, jitter, rng_from_seed};
use overlay_core::{Bandwidth, MeasureRequest, NodeId, Outbox, Output, Protocol, Time, TimerTable};
use probe::{
    LinkBandwidth, LinkBandwidthConfig, Prober, ProberCommand, ProberConfig, ProberEvent, RttConfig,
};

use crate::NaradaConfig;
use crate::data::DataPlane;
use crate::members::{MemberTable, Slot, Status};
use crate::message::Message;
use crate::neighbours::Neighbour;
use crate::node::{Event, NaradaStats, Timer};
use crate::routing::{LinkCost, RoutingTable, Tolerance};

/// The share of a slow member's download that, filled by a sample and what else arrives,
/// makes the sample a measure of the download (see [`Core::download_filled`]).
const DOWNLOAD_FILLED: f64 = 0.6;
/// The same for a download that holds a stream but not every stream arriving: several
/// streams fill most of it while one parent's link is truly congested, so only a download
/// nearly full (receivers' shares keep what arrives under 85% of it) says so.
const SHARED_DOWNLOAD_FILLED: f64 = 0.8;

/// For a member whose download is narrower than the stream, the rate reports of a link that
/// just began carrying data (the first covers part of a window) that only bound its bandwidth
/// from below: the sender's rate control and congestion window are still growing into the
/// link (a new parent's pacer starts cut by the queue the old parent left in the member's
/// narrow download), so less arriving than was sent does not yet say what the link carries.
/// Taken as congestion, a slow member's every new parent read narrow and it moved on (the
/// emulated relay test: its links read 2 to 5 of 5, it was fed by the farther member or the
/// source in 2 of 3 runs). Members with wider downloads take every report: there the first
/// windows are telling (applied to them, `run conferencing --senders 4`'s worst receiver fell
/// by more than 0.02 on 5 seeds of 16, by 0.12 to 0.23 on seeds 6, 14 and 16, and rose by more
/// than 0.02 on one, seed 15).
const STARTING_REPORTS: u32 = 2;

/// A link measured this long ago or longer, carrying nothing here since, is doubted when a
/// link that carries data here turns congested (see [`Core::doubt_idle_links`]).
const DOUBT_AFTER: Duration = Duration::from_secs(10);

/// A doubted link's probe must find it this many times wider than the doubt to clear it.
pub(crate) const DOUBT_CLEARED_ABOVE: f64 = 1.25;

/// Where a member is in its life.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Life {
    /// In a group (it has had a neighbour, or started the group).
    pub(crate) joined: bool,
    /// Announced its leave at this time, and forwards until the grace ends.
    pub(crate) leaving_since: Option<Time>,
    /// Finished leaving: does nothing more.
    pub(crate) left: bool,
    /// When it started its periodic work (joined or founded the group).
    pub(crate) started_at: Option<Time>,
}

/// The shared part of a member.
#[derive(Debug)]
pub(crate) struct Core {
    pub(crate) config: NaradaConfig,
    pub(crate) rng: ProtocolRng,
    pub(crate) members: MemberTable,
    pub(crate) routing: RoutingTable,
    pub(crate) neighbours: BTreeMap<Slot, Neighbour>,
    /// Pings neighbours (link latency and liveness) and candidates (latency to non-neighbours).
    pub(crate) prober: Prober,
    /// Prober reports drained by [`Core::command_prober`] while an earlier report was being
    /// handled (a dead neighbour's second lost ping, say): handled next, in order, by
    /// `Narada::drive_prober`.
    pub(crate) deferred_probe_events: VecDeque<ProberEvent>,
    /// Destinations whose advertisement changed since the last route flush, each with the
    /// neighbours already sent its current advertisement (at once, as a new next hop or a
    /// withdrawal): the flush sends it to the others only.
    pub(crate) route_dirty: BTreeMap<Slot, Vec<Slot>>,
    pub(crate) life: Life,
    /// Every timer of the member and its parts, in one table so ties fire in one fixed order
    /// (the declaration order of [`Timer`]).
    pub(crate) timers: TimerTable<Timer>,
    pub(crate) outbox: Outbox<Message, Event>,
    pub(crate) stats: NaradaStats,
    /// Heartbeats so far (every few, the route table is sent again).
    pub(crate) heartbeats: u64,
    /// This member's upload carries all the child streams it can.
    pub(crate) upload_full: bool,
    /// Child streams forwarded at the last admission check.
    pub(crate) upload_used: usize,
    /// The other sources' streams arriving at this member (heard from lately): its download
    /// is shared among them (see [`Core::narrow_download`]).
    pub(crate) streams_in: usize,
}

impl Core {
    /// The shared part of member `id`, at `now`.
    pub(crate) fn new(id: NodeId, config: NaradaConfig, now: Time) -> Self {
        let prober_config = ProberConfig {
            interval: config.repair.ping_interval,
            seed: derive_seed(config.seed, 1),
            // A neighbour that keeps talking while its pongs are lost stays (see `dispatch`);
            // its ping timeout backs off no further than this, so were it then to die, three
            // lost pings still find it within seconds.
            rtt: RttConfig {
                max_rto: Duration::from_secs(2),
                ..RttConfig::default()
            },
            ..ProberConfig::default()
        };
        Self {
            rng: rng_from_seed(derive_seed(config.seed, 2)),
            members: MemberTable::new(id, now),
            routing: RoutingTable::new(config.routing.metric)
                .with_delay_budget(config.routing.delay_budget),
            neighbours: BTreeMap::new(),
            prober: Prober::new(id, prober_config),
            deferred_probe_events: VecDeque::new(),
            route_dirty: BTreeMap::new(),
            life: Life::default(),
            timers: TimerTable::default(),
            outbox: Outbox::default(),
            stats: NaradaStats::default(),
            heartbeats: 0,
            upload_full: false,
            upload_used: 0,
            streams_in: 0,

            config,
        }
    }

    pub(crate) fn me(&self) -> NodeId {
        self.members.me()
    }

    /// Whether `slot` is a member that counts for the group (alive).
    pub(crate) fn counts(&self, slot: Slot) -> bool {
        self.members
            .record(slot)
            .is_some_and(|r| r.status == Status::Alive)
    }

    /// How much better a route must be to replace another.
    pub(crate) fn tolerance(&self) -> Tolerance {
        let routing = &self.config.routing;
        let fraction = if routing.metric.uses_bandwidth() {
            routing.tie_fraction
        } else {
            routing.switch_fraction
        };
        Tolerance {
            fraction,
            floor_us: u32::try_from(routing.switch_floor.as_micros()).unwrap_or(u32::MAX),
            width_levels: routing.switch_levels,
            width_levels_from: self.config.bandwidth.bandwidth_levels / 2,
            near_fraction: routing.near_fraction,
        }
    }

    /// `period` ±25%, so members' periodic work does not fall in step.
    pub(crate) fn jitter(&mut self, period: Duration) -> Duration {
        jitter(&mut self.rng, period)
    }

    /// Send `msg` to the member in `slot`.
    pub(crate) fn send(&mut self, to: Slot, msg: Message) {
        if let Some(id) = self.members.id_of(to) {
            self.outbox.send(id, msg);
        }
    }

    /// Tell the prober `cmd` and lift what it asks for. A command reports nothing itself, but
    /// it may be given while `Narada::drive_prober` handles one of several reports a timeout
    /// queued; the rest come out here and are kept for it, in order (none is lost).
    pub(crate) fn command_prober(&mut self, now: Time, cmd: ProberCommand) {
        self.prober.handle_command(now, cmd);
        while let Some(output) = self.prober.poll_output() {
            match output {
                Output::Send { to, msg } => self.outbox.send(to, Message::Probe(msg)),
                Output::Connect { peer } => self.outbox.connect(peer),
                Output::Disconnect { peer } => self.outbox.disconnect(peer),
                Output::Measure { peer, request } => self.outbox.measure(peer, request),
                Output::Emit(event) => self.deferred_probe_events.push_back(event),
            }
        }
    }

    /// Every mesh link's cost in the routing metric.
    pub(crate) fn link_costs(&self) -> BTreeMap<Slot, LinkCost> {
        let me = self.me();
        let kind = self.config.routing.metric;
        // Nothing reaches this member faster than its own download (its share per stream, where
        // the driver splits it among parents): with it known, no link is wider (measurements of
        // the same bottleneck that round to different levels then tie, and latency decides). A
        // download narrower than the stream is the bottleneck of every link, and a link
        // measured one level under it is measuring it too: the rounding of a rate sampled while
        // the download was filling (or shared with another stream) must not make a farther
        // link look wider.
        let download = self
            .config
            .bandwidth
            .download
            .map(|d| self.width_of(self.per_stream(d)));
        let narrow = self.narrow_download().map(|d| self.width_of(d));
        self.neighbours
            .iter()
            .map(|(&s, n)| {
                let peer = self.members.id_of(s).unwrap_or(me);
                let measured = n
                    .bandwidth
                    .level()
                    .unwrap_or_else(|| n.bandwidth.full_level());
                let width = match (download, narrow) {
                    (_, Some(cap)) if measured.saturating_add(1) >= cap => cap,
                    (Some(d), _) => measured.min(d),
                    (None, _) => measured,
                };
                let metric = kind.link(n.cost_us(), width, &me, &peer);
                (
                    s,
                    LinkCost {
                        metric,
                        latency_us: n.cost_us(),
                        leaving: n.leaving,
                        full: n.room.full,
                        shed: n.room.shed,
                        shed_own: n.room.shed_own,
                        room_level: n.room.level,
                    },
                )
            })
            .collect()
    }

    /// A fresh bandwidth estimator for a new link.
    pub(crate) fn link_bandwidth(&self) -> LinkBandwidth {
        LinkBandwidth::new(LinkBandwidthConfig {
            stream_rate: self.config.bandwidth.stream_rate,
            levels: self.config.bandwidth.bandwidth_levels,
            ..LinkBandwidthConfig::default()
        })
    }

    /// Recompute routes and schedule the flush of what changed.
    pub(crate) fn reroute(&mut self, now: Time) {
        let before = self.next_hops();
        let links = self.link_costs();
        let members = &self.members;
        let changed =
            self.routing
                .recompute(now, &links, |s| members.is_routable(s), self.tolerance());
        self.schedule_flush(now, changed, &before);
    }

    /// Recompute the routes to `dests` only.
    pub(crate) fn reroute_dests(&mut self, now: Time, dests: &BTreeSet<Slot>) {
        // Only these routes can change: remember their next hops, not every route's (an
        // update naming one destination must not cost a copy of the whole table).
        let before: BTreeMap<Slot, Slot> = dests
            .iter()
            .filter_map(|&d| self.routing.route(d).map(|r| (d, r.next_hop)))
            .collect();
        let links = self.link_costs();
        let members = &self.members;
        let changed = self.routing.recompute_dests(
            now,
            dests,
            &links,
            |s| members.is_routable(s),
            self.tolerance(),
        );
        self.schedule_flush(now, changed, &before);
    }

    fn next_hops(&self) -> BTreeMap<Slot, Slot> {
        self.routing
            .routes()
            .map(|(d, r)| (d, r.next_hop))
            .collect()
    }

    /// Send changed routes after `update_delay` (batching bursts). A route whose next hop
    /// changed is also sent at once to its new next hop: the sooner that neighbour learns this
    /// member now routes through it, the shorter the moment in which it could pick this member
    /// as its own next hop (a transient cycle).
    fn schedule_flush(&mut self, now: Time, changed: Vec<Slot>, before: &BTreeMap<Slot, Slot>) {
        match self.routing.next_hold_end() {
            Some(at) => self.timers.set(Timer::RouteHold, at),
            None => {
                self.timers.cancel(Timer::RouteHold);
            }
        }
        if changed.is_empty() {
            return;
        }
        // New next hops hear at once; so does everyone of a withdrawal (a route gone active
        // waits for neighbours to stop using this member).
        let mut urgent: BTreeMap<Slot, Vec<Slot>> = BTreeMap::new();
        let mut withdrawn = Vec::new();
        for &d in &changed {
            match self.routing.route(d).map(|r| r.next_hop) {
                Some(hop) if before.get(&d) != Some(&hop) => urgent.entry(hop).or_default().push(d),
                None if before.contains_key(&d) => withdrawn.push(d),
                _ => {}
            }
        }
        // The flush sends each changed route to the neighbours not told of it here; a route
        // that changes again before the flush is told afresh.
        for &d in &changed {
            self.route_dirty.insert(d, Vec::new());
        }
        for (hop, dests) in urgent {
            self.send_routes_now(hop, &dests);
            for d in dests {
                self.route_dirty.entry(d).or_default().push(hop);
            }
        }
        if !withdrawn.is_empty() {
            let all: Vec<Slot> = self.neighbours.keys().copied().collect();
            for &n in &all {
                self.send_routes_now(n, &withdrawn);
            }
            for d in withdrawn {
                self.route_dirty.insert(d, all.clone());
            }
        }
        if !self.timers.is_armed(Timer::FlushRoutes) {
            self.timers
                .set(Timer::FlushRoutes, now + self.config.routing.update_delay);
        }
    }

    /// Start the periodic timers (on joining or starting a group).
    pub(crate) fn start(&mut self, now: Time) {
        self.life.started_at = Some(now);
        let (heartbeat, refresh) = (
            self.config.membership.heartbeat_interval,
            self.config.membership.refresh_interval,
        );
        let first_heartbeat = self.jitter(heartbeat);
        self.timers.set(Timer::Heartbeat, now + first_heartbeat);
        let first_refresh = self.jitter(refresh);
        self.timers.set(Timer::Refresh, now + first_refresh);
        self.timers
            .set(Timer::Repair, now + self.config.repair.repair_interval);
        let improve = self.jitter(self.config.mesh.improve_interval);
        self.timers
            .set(Timer::Improve, now + improve.min(Duration::from_secs(1)));
        let drop = self.jitter(self.config.mesh.drop_interval);
        self.timers.set(Timer::Drop, now + drop);
        self.timers
            .set(Timer::Purge, now + self.config.repair.dead_retention / 4);
        self.timers
            .set(Timer::RateReport, now + self.config.bandwidth.rate_interval);
    }

    /// This member is in the group from now on (its first link, or it founded the group).
    pub(crate) fn joined(&mut self, now: Time) {
        if !self.life.joined {
            self.life.joined = true;
            self.outbox.emit(Event::Joined);
            self.start(now);
        }
    }

    /// The bandwidth level of a measured rate.
    pub(crate) fn width_of(&self, bandwidth: Bandwidth) -> u16 {
        let config = &self.config.bandwidth;
        let step = config.stream_rate.bps_f64() / f64::from(config.bandwidth_levels.max(1));
        let level = (bandwidth.bps_f64() / step.max(1.0) + 0.5).floor();
        level.clamp(0.0, f64::from(config.bandwidth_levels)) as u16
    }

    /// This member's download, if it is narrower than a stream: then it is the bottleneck of
    /// every path to this member. Where the driver shares the download among parents
    /// ([`BandwidthConfig::download_shared`](crate::config::BandwidthConfig::download_shared)),
    /// its share per stream arriving here: a download of several streams shared by more is as
    /// narrow for each as a download under one stream. The demo's slow
    /// member (1.2 Mbit/s, three sources of 500 kbit/s) read each parent's link narrow while it
    /// carried all three and every idle link wide, and moved its routes from parent to parent
    /// every few seconds, each move a collision of the two parents' bursts in its download.
    pub(crate) fn narrow_download(&self) -> Option<Bandwidth> {
        let bandwidth = &self.config.bandwidth;
        bandwidth
            .download
            .map(|d| self.per_stream(d))
            .filter(|d| *d < bandwidth.stream_rate)
    }

    /// Count the other sources' streams arriving here, where the download is shared among
    /// them (see [`Core::narrow_download`]); elsewhere the count is never read.
    pub(crate) fn count_streams_in(&mut self, data: &DataPlane, now: Time) {
        if self.config.bandwidth.download_shared {
            self.streams_in = data.streams_in(now);
        }
    }

    /// `download` shared by the streams arriving here (all of it for one or none, or where the
    /// driver does not share it).
    fn per_stream(&self, download: Bandwidth) -> Bandwidth {
        let streams = if self.config.bandwidth.download_shared {
            self.streams_in.max(1) as f64
        } else {
            1.0
        };
        Bandwidth::from_bps_f64(download.bps_f64() / streams)
    }

    /// Ask the driver to measure the bandwidth from `slot` to this member, at no more than the
    /// stream rate.
    pub(crate) fn probe_bandwidth(&mut self, slot: Slot) {
        let Some(id) = self.members.id_of(slot) else {
            return;
        };
        self.stats.bandwidth_probes += 1;
        self.outbox.measure(
            id,
            MeasureRequest::Bandwidth {
                max_rate: self.config.bandwidth.stream_rate,
                duration: self.config.bandwidth.probe_duration,
            },
        );
    }

    /// Tell each neighbour how much data it was sent since the last report.
    pub(crate) fn send_rate_reports(&mut self) {
        let millis =
            u32::try_from(self.config.bandwidth.rate_interval.as_millis()).unwrap_or(u32::MAX);
        let reports: Vec<(Slot, u64, u16)> = self
            .neighbours
            .iter_mut()
            .filter(|(_, nb)| nb.sent_bytes > 0)
            .map(|(&n, nb)| {
                let streams =
                    u16::try_from(std::mem::take(&mut nb.sent_sources).len()).unwrap_or(u16::MAX);
                (n, std::mem::take(&mut nb.sent_bytes), streams)
            })
            .collect();
        for (n, sent_bytes, streams) in reports {
            self.send(
                n,
                Message::Rate {
                    sent_bytes,
                    millis,
                    streams,
                },
            );
        }
    }

    /// The download (per stream, where it is shared) a link measured at `sample` was held to,
    /// for a member whose download is narrower than a stream, while data arrived at `arriving`
    /// from all its neighbours: `None` when the sample measured the link. Where the download is
    /// shared, `sample` is all the link carried and must fill 80% of the whole download with
    /// `arriving` ([`SHARED_DOWNLOAD_FILLED`]).
    ///
    /// Such a download is the bottleneck of every path to the member. When the sample and the
    /// rest of what arrives together fill most of it ([`DOWNLOAD_FILLED`], 60%: rate control
    /// upstream keeps what arrives well below the download, at most 85% of it where the member
    /// tells its parents their shares, so its queue stays short), the sample measured the
    /// download's share left to this link, not the link: the link is taken to carry what the
    /// download does, at once (the estimate becomes the download, see
    /// [`LinkBandwidth::on_ceiling`]). Else a slow member fed by one parent would find every
    /// other link as narrow as what its download had left, and would never move to a nearer
    /// parent; and a link whose first windows came while the tree moved onto it (half a
    /// window of data, a congestion controller still cut by the previous parent's losses)
    /// would stay averaged below the download long after it carried all of it. A member whose
    /// download carries a stream or more keeps every sample as measured: several streams fill
    /// it while one link is truly congested.
    pub(crate) fn download_filled(
        &self,
        sample: Bandwidth,
        arriving: Option<Bandwidth>,
    ) -> Option<Bandwidth> {
        let per_stream = self.narrow_download()?;
        let download = self.config.bandwidth.download?;
        let together = sample.bps_f64() + arriving.map_or(0.0, |a| a.bps_f64());
        let filled = if download < self.config.bandwidth.stream_rate {
            DOWNLOAD_FILLED
        } else {
            SHARED_DOWNLOAD_FILLED
        };
        (together >= filled * download.bps_f64()).then_some(per_stream)
    }

    /// A neighbour reported what it sent over `millis`: compare with what arrived (while data
    /// arrived here from every neighbour at `arriving`).
    pub(crate) fn on_rate(
        &mut self,
        now: Time,
        from: Slot,
        sent_bytes: u64,
        millis: u32,
        streams: u16,
        arriving: Option<Bandwidth>,
    ) {
        let interval = self.config.bandwidth.rate_interval;
        let slow_download = self.narrow_download().is_some();
        let Some(nb) = self.neighbours.get_mut(&from) else {
            return;
        };
        // Reports come every interval while the neighbour sends: one after a gap starts a run.
        let gap = nb
            .last_rate_report
            .is_none_or(|t| now.saturating_since(t) > interval.mul_f64(1.5));
        if gap {
            nb.carrying_since = Some(now);
        }
        nb.last_rate_report = Some(now);
        nb.doubted_above = None;
        let starting = slow_download
            && nb
                .carrying_since
                .is_some_and(|t| now.saturating_since(t) < interval * STARTING_REPORTS);
        // Per stream: the link is shared by every stream it carries.
        let seconds = f64::from(millis.max(1)) / 1e3;
        let streams = f64::from(streams.max(1));
        let claimed = Bandwidth::from_bps_f64(sent_bytes as f64 * 8.0 / seconds / streams);
        let received_bps = std::mem::take(&mut nb.received_bytes) as f64 * 8.0 / seconds;
        // What arrived from the others: this link's own bytes are part of `arriving`.
        let others =
            arriving.map(|a| Bandwidth::from_bps_f64((a.bps_f64() - received_bps).max(0.0)));
        let received = Bandwidth::from_bps_f64(received_bps / streams);
        // A shared download is filled by all the link carries; a download under one stream by
        // one stream's share of it.
        let sample = if self.config.bandwidth.download_shared {
            Bandwidth::from_bps_f64(received_bps)
        } else {
            received
        };
        let filled = self.download_filled(sample, others);
        let Some(nb) = self.neighbours.get_mut(&from) else {
            return;
        };
        let before = nb.bandwidth.level();
        let mut congested = false;
        match filled {
            // Offered more than the download takes, the link delivered all the download took.
            Some(download) if claimed > download => nb.bandwidth.on_ceiling(now, download),
            _ => {
                let received = filled.map_or(received, |d| received.max(d));
                // While the link starts carrying, what arrived is only a lower bound.
                let claimed = if starting {
                    claimed.min(received)
                } else {
                    claimed
                };
                congested = matches!(
                    nb.bandwidth.on_report(now, claimed, received),
                    probe::Sample::Congested(_)
                );
            }
        }
        nb.congested = congested;
        let after = nb.bandwidth.level();
        let estimate = nb.bandwidth.estimate();
        if let (true, Some(level), Some(estimate)) = (congested, after, estimate)
            && before.is_some_and(|b| level < b)
        {
            self.doubt_idle_links(now, from, level, estimate);
        }
        if after != before {
            self.reroute(now);
        }
    }

    /// A message came from `neighbour`: pings lost meanwhile were the link's
    /// doing, not its death, and a silence of its streams is further up.
    pub(crate) fn heard_from(&mut self, neighbour: Slot) {
        if let Some(n) = self.neighbours.get_mut(&neighbour) {
            n.lost_pings = 0;
            n.silent = false;
        }
    }

    /// The transport heard from `peer` since its last report
    /// ([`overlay_core::LinkEvent::Heard`]): pings lost meanwhile may have been held up on the
    /// way, so their count starts over. A neighbour suspected by its streams' silence stays
    /// suspected (pinged again after each unanswered ping): the runtime reports twice a second,
    /// so its first report after a death covers packets sent before it.
    pub(crate) fn heard_by_transport(&mut self, peer: &NodeId) {
        if let Some(n) = self.neighbour_mut(peer) {
            n.lost_pings = 0;
        }
    }

    /// Member `peer`'s state as a neighbour, if it is one.
    fn neighbour_mut(&mut self, peer: &NodeId) -> Option<&mut Neighbour> {
        self.members
            .slot_of(peer)
            .and_then(|s| self.neighbours.get_mut(&s))
    }

    /// A stream stopped coming from neighbour `upstream`: ping it now (and again after each
    /// ping it leaves unanswered; see [`crate::RepairConfig::silence_probe_after`]).
    pub(crate) fn suspect_silent(&mut self, now: Time, upstream: Slot) {
        let Some(n) = self.neighbours.get_mut(&upstream) else {
            return;
        };
        if n.silent {
            return;
        }
        n.silent = true;
        if let Some(id) = self.members.id_of(upstream) {
            self.command_prober(now, ProberCommand::ProbeNow(id));
        }
    }

    /// The link from `congested` now carries only `estimate` (bandwidth level `level`) per
    /// stream. The bottleneck may be this member's own download, which every link into it
    /// shares, unless another link carrying data here delivers all of it. Then a link measured
    /// wider while it carried nothing here would carry no more, and trees moved onto it would
    /// only add their media to the same full download (the narrowed-download browser test: c
    /// moved a's stream from b to a's direct link, still rated full from its first probe, and
    /// both fed c at once for seconds). So links idle here
    /// whose measure is [`DOUBT_AFTER`] old, or that are doubted already, are taken to carry
    /// `estimate` (a lower bound) and probed again now (unless probed in the last
    /// [`DOUBT_AFTER`]), while the download is loaded. A path through the same download
    /// measures what the download has left, and stays doubted (following the busy link down);
    /// one whose probe comes back clearly wider ([`DOUBT_CLEARED_ABOVE`] times the doubt) is
    /// another path, and wins on that fresh measure. A link that carries data here again is
    /// measured by what it carries and doubted no more.
    fn doubt_idle_links(&mut self, now: Time, congested: Slot, level: u16, estimate: Bandwidth) {
        if !self.config.routing.metric.uses_bandwidth() {
            return;
        }
        let busy = self.config.bandwidth.rate_interval.mul_f64(1.5);
        let carrying = |nb: &Neighbour| {
            nb.last_rate_report
                .is_some_and(|t| now.saturating_since(t) <= busy)
        };
        // Another link that carries data here and delivers it all: the download has room, the
        // congestion is the link's own.
        if self
            .neighbours
            .iter()
            .any(|(&n, nb)| n != congested && carrying(nb) && !nb.congested)
        {
            return;
        }
        let old = |t: Option<Time>| t.is_none_or(|t| now.saturating_since(t) >= DOUBT_AFTER);
        let doubted: Vec<(Slot, bool)> = self
            .neighbours
            .iter()
            .filter(|&(&n, nb)| {
                n != congested
                    && !carrying(nb)
                    && nb.bandwidth.level().is_some_and(|l| l > level)
                    && (nb.doubted_above.is_some() || old(nb.bandwidth.updated_at()))
            })
            .map(|(&n, nb)| (n, old(nb.probed_at)))
            .collect();
        for (n, probe) in doubted {
            if let Some(nb) = self.neighbours.get_mut(&n) {
                nb.bandwidth.doubt(now, estimate);
                nb.doubted_above = Some(estimate);
                if probe {
                    nb.probed_at = Some(now);
                }
            }
            self.stats.links_doubted += 1;
            if probe {
                self.probe_bandwidth(n);
            }
        }
    }
}
