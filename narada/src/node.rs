//! The Narada member: composes the member table, mesh links, routing and data forwarding into
//! one sans-IO state machine.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bytes::Bytes;
use overlay_core::rng::{ProtocolRng, derive_seed, rng_from_seed};
use overlay_core::{
    Bandwidth, LinkEvent, LinkMetrics, NodeId, Outbox, Output, Protocol, Time, TimerTable,
};
use probe::{
    LinkBandwidth, LinkBandwidthConfig, Prober, ProberCommand, ProberConfig, ProberEvent, RateMeter,
};
use rand::RngExt;

use crate::NaradaConfig;
use crate::forwarding::SourceState;
use crate::members::{MemberTable, SELF_SLOT, Slot, Status};
use crate::message::{LinkReason, Message};
use crate::neighbours::Neighbour;
use crate::routing::{LinkCost, RoutingTable, Tolerance};

/// What the application asks a member to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Join the group through these members (any of them may accept).
    Join {
        /// Known members to ask.
        bootstrap: Vec<NodeId>,
    },
    /// Leave the group gracefully.
    Leave,
    /// Send a packet to the whole group, as a source.
    Publish {
        /// The bytes.
        payload: Bytes,
        /// Drop class where a link is too slow (0 kept longest; see `media::Priority`).
        priority: u8,
    },
}

/// What a member tells the application.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The first neighbour accepted: this member is in the group.
    Joined,
    /// A mesh link came up.
    NeighbourUp(NodeId),
    /// A mesh link went away.
    NeighbourDown(NodeId),
    /// A member was learned of.
    MemberJoined(NodeId),
    /// A member was found or reported dead.
    MemberDied(NodeId),
    /// A member left gracefully.
    MemberLeft(NodeId),
    /// A packet from a source.
    Deliver {
        /// The source.
        source: NodeId,
        /// Its sequence number.
        seq: u64,
        /// When the source sent it (source clock, microseconds).
        sent_at_us: u64,
        /// The bytes.
        payload: Bytes,
        /// It filled a gap (arrived through repair, late).
        recovered: bool,
    },
    /// This member finished leaving; it does nothing more.
    Left,
}

/// Counters of what a member dropped, refused or did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NaradaStats {
    /// Messages that only neighbours may send, from a non-neighbour: dropped.
    pub from_non_neighbour: u64,
    /// Entries naming a handle never introduced: dropped.
    pub unknown_handles: u64,
    /// Route advertisements with loops, wrong ends or absurd lengths: dropped.
    pub bad_routes: u64,
    /// Tables or updates over the size limit: dropped.
    pub oversized: u64,
    /// Data not from the next hop towards its source: dropped.
    pub rpf_drops: u64,
    /// Data seen before: dropped.
    pub duplicates: u64,
    /// Replies matching no question: dropped.
    pub unmatched_replies: u64,
    /// Links added (accepted by either end).
    pub links_added: u64,
    /// Links this member dropped for low utility.
    pub links_dropped: u64,
    /// Links this member gave up for a much better one.
    pub links_swapped: u64,
    /// Neighbours declared dead after silence.
    pub neighbours_died: u64,
    /// Partition-repair probes sent.
    pub repair_probes: u64,
    /// Active bandwidth probes asked for.
    pub bandwidth_probes: u64,
    /// Gap repairs asked for.
    pub nacks_sent: u64,
    /// Packets resent to fill a neighbour's gap.
    pub repairs_sent: u64,
}

/// Why a table query was sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum QueryPurpose {
    /// Looking for a better link.
    Improve,
    /// Checking a silent member (partition repair or a lost link).
    Repair,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Query {
    pub(crate) target: Slot,
    pub(crate) sent: Time,
    pub(crate) purpose: QueryPurpose,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Timer {
    Heartbeat,
    Refresh,
    FlushRoutes,
    Repair,
    Improve,
    Drop,
    JoinRetry,
    LeaveDone,
    Nack,
    Purge,
    RouteHold,
    RateReport,
    QueryExpire(u64),
}

/// A Narada member.
#[derive(Debug)]
pub struct Narada {
    pub(crate) config: NaradaConfig,
    pub(crate) rng: ProtocolRng,
    pub(crate) members: MemberTable,
    pub(crate) routing: RoutingTable,
    pub(crate) neighbours: BTreeMap<Slot, Neighbour>,
    /// Outgoing link requests: slot -> (reason, sent, link to drop when accepted).
    pub(crate) pending: BTreeMap<Slot, (LinkReason, Time, Option<Slot>)>,
    /// Links recently dropped or refused: not asked for again before the time given.
    pub(crate) holdoff: BTreeMap<Slot, Time>,
    pub(crate) prober: Prober,
    pub(crate) queries: BTreeMap<u64, Query>,
    pub(crate) sources: BTreeMap<Slot, SourceState>,
    pub(crate) next_data_seq: u64,
    pub(crate) join_candidates: Vec<NodeId>,
    pub(crate) joined: bool,
    pub(crate) leaving_since: Option<Time>,
    pub(crate) left: bool,
    pub(crate) partition_queue: BTreeMap<Slot, Time>,
    /// Members declared dead first hand, re-probed with backoff in case they were only cut off
    /// (a network partition): slot -> (next probe, current interval).
    pub(crate) suspects: BTreeMap<Slot, (Time, Duration)>,
    /// Non-neighbours recently told there is no link (bounded; see `not_a_neighbour`).
    pub(crate) told_not_neighbour: BTreeMap<NodeId, Time>,
    /// When this member started its periodic work (joined or founded the group).
    pub(crate) started_at: Option<Time>,
    /// Bandwidth measured towards candidates (and neighbours), with when.
    pub(crate) probed: BTreeMap<Slot, (Bandwidth, Time)>,
    /// Candidates whose table arrived and whose link bandwidth is being probed before deciding.
    pub(crate) awaiting_probe: BTreeMap<Slot, crate::mesh::Candidate>,
    /// Data arriving here, for telling whether this member's own access link is the bottleneck.
    pub(crate) arriving: RateMeter,
    /// Sources heard from lately (at least one): each child link carries all their streams.
    pub(crate) active_streams: usize,
    /// Destinations whose advertisement changed since the last route flush.
    pub(crate) route_dirty: BTreeSet<Slot>,
    pub(crate) timers: TimerTable<Timer>,
    pub(crate) outbox: Outbox<Message, Event>,
    pub(crate) stats: NaradaStats,
}

impl Narada {
    /// A member with identity `id`, not yet in any group (send [`Command::Join`]); a member
    /// that starts a group joins with an empty bootstrap list.
    pub fn new(id: NodeId, config: NaradaConfig, now: Time) -> Self {
        let prober_config = ProberConfig {
            interval: config.ping_interval,
            seed: derive_seed(config.seed, 1),
            ..ProberConfig::default()
        };
        Self {
            rng: rng_from_seed(derive_seed(config.seed, 2)),
            members: MemberTable::new(id, now),
            routing: RoutingTable::new(config.metric),
            neighbours: BTreeMap::new(),
            pending: BTreeMap::new(),
            holdoff: BTreeMap::new(),
            prober: Prober::new(id, prober_config),
            queries: BTreeMap::new(),
            sources: BTreeMap::new(),
            next_data_seq: 0,
            join_candidates: Vec::new(),
            joined: false,
            leaving_since: None,
            left: false,
            partition_queue: BTreeMap::new(),
            suspects: BTreeMap::new(),
            told_not_neighbour: BTreeMap::new(),
            started_at: None,
            probed: BTreeMap::new(),
            awaiting_probe: BTreeMap::new(),
            arriving: RateMeter::new(Duration::from_secs(4), 8),
            active_streams: 1,
            route_dirty: BTreeSet::new(),
            timers: TimerTable::default(),
            outbox: Outbox::default(),
            stats: NaradaStats::default(),
            config,
        }
    }

    /// What this member counted.
    pub fn stats(&self) -> NaradaStats {
        self.stats
    }

    /// The configuration.
    pub fn config(&self) -> &NaradaConfig {
        &self.config
    }

    /// Whether this member is in a group (it has had a neighbour, or started the group).
    pub fn is_joined(&self) -> bool {
        self.joined
    }

    /// Whether this member has finished leaving.
    pub fn has_left(&self) -> bool {
        self.left
    }

    /// Current mesh neighbours.
    pub fn neighbours(&self) -> Vec<NodeId> {
        self.neighbours
            .keys()
            .filter_map(|&s| self.members.id_of(s))
            .collect()
    }

    /// Mesh degree.
    pub fn degree(&self) -> usize {
        self.neighbours.len()
    }

    /// The neighbour packets to `dest` go to (and the one packets from `dest` must come from).
    pub fn next_hop(&self, dest: &NodeId) -> Option<NodeId> {
        let slot = self.members.slot_of(dest)?;
        self.routing
            .route(slot)
            .and_then(|r| self.members.id_of(r.next_hop))
    }

    /// The neighbours this member forwards `source`'s packets to: those whose advertised route
    /// to the source goes through this member (reverse-path forwarding).
    pub fn forwards_to(&self, source: &NodeId) -> Vec<NodeId> {
        let Some(s) = self.members.slot_of(source) else {
            return Vec::new();
        };
        self.neighbours
            .keys()
            .filter(|&&n| self.routing.routes_through_me(n, s))
            .filter_map(|&n| self.members.id_of(n))
            .collect()
    }

    /// The path neighbour `neighbour` advertised to `dest` (its next hop first), as last heard.
    pub fn neighbour_route(&self, neighbour: &NodeId, dest: &NodeId) -> Option<Vec<NodeId>> {
        let n = self.members.slot_of(neighbour)?;
        let d = self.members.slot_of(dest)?;
        let advert = self.routing.advert_of(n, d)?;
        advert.path.iter().map(|&s| self.members.id_of(s)).collect()
    }

    /// Latency of the route to `dest`.
    pub fn route_latency(&self, dest: &NodeId) -> Option<Duration> {
        let slot = self.members.slot_of(dest)?;
        self.routing
            .latency_to(slot)
            .map(|us| Duration::from_micros(u64::from(us)))
    }

    /// Bandwidth level of the route from `source` to this member (the narrowest link on the
    /// way), if reachable and measured.
    pub fn route_width(&self, source: &NodeId) -> Option<u16> {
        let slot = self.members.slot_of(source)?;
        self.routing.metric_to(slot).map(|m| m.width)
    }

    /// The full path to `dest` (next hop first, `dest` last).
    pub fn route_path(&self, dest: &NodeId) -> Option<Vec<NodeId>> {
        let slot = self.members.slot_of(dest)?;
        let route = self.routing.route(slot)?;
        route.path.iter().map(|&s| self.members.id_of(s)).collect()
    }

    /// Members believed alive, this one included: the group-size estimate.
    pub fn group_size(&self) -> usize {
        self.members.alive_count()
    }

    /// Every member believed alive, this one included, in slot order.
    pub fn alive_members(&self) -> Vec<NodeId> {
        (0..self.members.slots())
            .filter_map(|i| {
                let slot = u32::try_from(i).ok()?;
                self.members
                    .is_alive(slot)
                    .then(|| self.members.id_of(slot))
                    .flatten()
            })
            .collect()
    }

    /// Whether `id` is believed alive.
    pub fn believes_alive(&self, id: &NodeId) -> bool {
        self.members
            .slot_of(id)
            .is_some_and(|s| self.members.is_alive(s))
    }

    pub(crate) fn me(&self) -> NodeId {
        self.members.me()
    }

    pub(crate) fn tolerance(&self) -> Tolerance {
        let fraction = if self.config.metric.uses_bandwidth() {
            self.config.tie_fraction
        } else {
            self.config.switch_fraction
        };
        Tolerance {
            fraction,
            floor_us: u32::try_from(self.config.switch_floor.as_micros()).unwrap_or(u32::MAX),
        }
    }

    pub(crate) fn jitter(&mut self, period: Duration) -> Duration {
        period.mul_f64(0.75 + 0.5 * self.rng.random::<f64>())
    }

    pub(crate) fn send(&mut self, to: Slot, msg: Message) {
        if let Some(id) = self.members.id_of(to) {
            self.outbox.send(id, msg);
        }
    }

    pub(crate) fn link_costs(&self) -> BTreeMap<Slot, LinkCost> {
        let me = self.me();
        let kind = self.config.metric;
        self.neighbours
            .iter()
            .map(|(&s, n)| {
                let peer = self.members.id_of(s).unwrap_or(me);
                let width = n
                    .bandwidth
                    .level()
                    .unwrap_or_else(|| n.bandwidth.full_level());
                let metric = kind.link(n.cost_us(), width, &me, &peer);
                (
                    s,
                    LinkCost {
                        metric,
                        latency_us: n.cost_us(),
                        leaving: n.leaving,
                    },
                )
            })
            .collect()
    }

    fn link_bandwidth(&self) -> LinkBandwidth {
        LinkBandwidth::new(LinkBandwidthConfig {
            stream_rate: self.config.stream_rate,
            levels: self.config.bandwidth_levels,
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
        let before = self.next_hops();
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
        for (hop, dests) in urgent {
            self.send_routes_now(hop, &dests);
        }
        if !withdrawn.is_empty() {
            let all: Vec<Slot> = self.neighbours.keys().copied().collect();
            for n in all {
                self.send_routes_now(n, &withdrawn);
            }
        }
        self.route_dirty.extend(changed);
        if !self.timers.is_armed(Timer::FlushRoutes) {
            self.timers
                .set(Timer::FlushRoutes, now + self.config.update_delay);
        }
    }

    /// Start the periodic timers (on joining or starting a group).
    pub(crate) fn start(&mut self, now: Time) {
        self.started_at = Some(now);
        let (heartbeat, refresh) = (self.config.heartbeat_interval, self.config.refresh_interval);
        let first_heartbeat = self.jitter(heartbeat);
        self.timers.set(Timer::Heartbeat, now + first_heartbeat);
        let first_refresh = self.jitter(refresh);
        self.timers.set(Timer::Refresh, now + first_refresh);
        self.timers
            .set(Timer::Repair, now + self.config.repair_interval);
        let improve = self.jitter(self.config.improve_interval);
        self.timers
            .set(Timer::Improve, now + improve.min(Duration::from_secs(1)));
        let drop = self.jitter(self.config.drop_interval);
        self.timers.set(Timer::Drop, now + drop);
        self.timers
            .set(Timer::Purge, now + self.config.dead_retention / 4);
        self.timers
            .set(Timer::RateReport, now + self.config.rate_interval);
    }

    /// A mesh link to `slot` is up: start pinging it and send it everything.
    pub(crate) fn link_up(&mut self, now: Time, slot: Slot, hint_us: u32, reason: LinkReason) {
        if self.neighbours.contains_key(&slot) || slot == SELF_SLOT {
            return;
        }
        self.pending.remove(&slot);
        let mut neighbour = Neighbour::new(now, hint_us, self.link_bandwidth());
        // A candidate probed before the link came up keeps what was measured.
        if let Some(&(bandwidth, at)) = self.probed.get(&slot) {
            neighbour.bandwidth.on_probe(at, bandwidth);
            neighbour.probed_at = Some(at);
        }
        neighbour.provisional = self.config.provisional_links
            && matches!(reason, LinkReason::Join | LinkReason::Repair);
        self.neighbours.insert(slot, neighbour);
        self.stats.links_added += 1;
        if let Some(id) = self.members.id_of(slot) {
            self.drive_prober(now, |p, now| {
                p.handle_command(now, ProberCommand::Watch(id))
            });
            self.outbox.emit(Event::NeighbourUp(id));
        }
        self.send_full_sync(slot);
        if !self.joined {
            self.joined = true;
            self.outbox.emit(Event::Joined);
            self.start(now);
        }
        self.reroute(now);
    }

    /// The mesh link to `slot` is gone.
    pub(crate) fn link_down(&mut self, now: Time, slot: Slot) {
        if self.neighbours.remove(&slot).is_none() {
            return;
        }
        if let Some(id) = self.members.id_of(slot) {
            self.drive_prober(now, |p, now| {
                p.handle_command(now, ProberCommand::Unwatch(id))
            });
            self.outbox.emit(Event::NeighbourDown(id));
        }
        self.routing.remove_neighbour(slot);
        self.reroute(now);
        if self.neighbours.len() < self.config.min_degree
            && self.joined
            && self.leaving_since.is_none()
        {
            // Look for a replacement soon rather than at the next improvement period.
            let soon = now + self.config.repair_interval;
            if self.timers.get(Timer::Improve).is_none_or(|t| t > soon) {
                self.timers.set(Timer::Improve, soon);
            }
        }
    }

    /// Feed the embedded prober, then lift its outputs.
    pub(crate) fn drive_prober(&mut self, now: Time, input: impl FnOnce(&mut Prober, Time)) {
        input(&mut self.prober, now);
        while let Some(output) = self.prober.poll_output() {
            match output {
                Output::Send { to, msg } => self.outbox.send(to, Message::Probe(msg)),
                Output::Emit(event) => self.on_probe_event(now, event),
                Output::Connect { peer } => self.outbox.connect(peer),
                Output::Disconnect { peer } => self.outbox.disconnect(peer),
                Output::Measure { peer, request } => self.outbox.measure(peer, request),
            }
        }
    }

    fn on_probe_event(&mut self, now: Time, event: ProberEvent) {
        match event {
            ProberEvent::Rtt { peer, smoothed, .. } => {
                let Some(slot) = self.members.slot_of(&peer) else {
                    return;
                };
                let tolerance = self.tolerance();
                let Some(n) = self.neighbours.get_mut(&slot) else {
                    return;
                };
                n.lost_pings = 0;
                let one_way = u32::try_from(smoothed.as_micros() / 2).unwrap_or(u32::MAX);
                let old = n.cost_us();
                n.measured_us = Some(one_way);
                if one_way.abs_diff(old)
                    > (f64::from(old) * tolerance.fraction) as u32 + tolerance.floor_us
                {
                    self.reroute(now);
                }
            }
            ProberEvent::Lost { peer, .. } => {
                let Some(slot) = self.members.slot_of(&peer) else {
                    return;
                };
                let Some(n) = self.neighbours.get_mut(&slot) else {
                    return;
                };
                n.lost_pings += 1;
                if n.lost_pings >= self.config.dead_after_lost_pings {
                    self.stats.neighbours_died += 1;
                    self.member_died(now, slot);
                }
            }
        }
    }

    /// `slot` was found dead first hand: record it, drop its link, reroute, and keep probing it
    /// now and then in case it was only cut off.
    pub(crate) fn member_died(&mut self, now: Time, slot: Slot) {
        let first = self.config.repair_interval * 2;
        self.suspects.entry(slot).or_insert((now + first, first));
        if self.members.declare_dead(slot, now)
            && let Some(id) = self.members.id_of(slot)
        {
            self.outbox.emit(Event::MemberDied(id));
        }
        self.partition_queue.remove(&slot);
        self.link_down(now, slot);
        self.reroute(now);
    }

    fn handle_timer(&mut self, now: Time, timer: Timer) {
        if self.left {
            return;
        }
        match timer {
            Timer::Heartbeat => {
                if self.leaving_since.is_none() {
                    self.members.bump_own(now);
                }
                let next = self.jitter(self.config.heartbeat_interval);
                self.timers.set(Timer::Heartbeat, now + next);
            }
            Timer::Refresh => {
                self.send_refreshes();
                self.timers
                    .set(Timer::Refresh, now + self.config.refresh_interval);
            }
            Timer::FlushRoutes => self.flush_routes(),
            Timer::Repair => {
                self.repair_tick(now);
                self.timers
                    .set(Timer::Repair, now + self.config.repair_interval);
            }
            Timer::Improve => {
                self.improve_tick(now);
                let period = if self.neighbours.len() < self.config.min_degree {
                    self.config.repair_interval
                } else {
                    self.config.improve_interval
                };
                let next = self.jitter(period);
                self.timers.set(Timer::Improve, now + next);
            }
            Timer::Drop => {
                self.drop_tick(now);
                let next = self.jitter(self.config.drop_interval);
                self.timers.set(Timer::Drop, now + next);
            }
            Timer::JoinRetry => self.join_retry(now),
            Timer::LeaveDone => self.finish_leave(now),
            Timer::Nack => self.nack_tick(now),
            Timer::Purge => {
                self.purge(now);
                self.timers
                    .set(Timer::Purge, now + self.config.dead_retention / 4);
            }
            Timer::QueryExpire(nonce) => self.query_expired(now, nonce),
            Timer::RouteHold => self.reroute(now),
            Timer::RateReport => {
                self.rate_tick(now);
                self.timers
                    .set(Timer::RateReport, now + self.config.rate_interval);
            }
        }
    }

    fn purge(&mut self, now: Time) {
        for slot in self.members.purge(now, self.config.dead_retention) {
            self.routing.forget(slot);
            self.sources.remove(&slot);
            self.partition_queue.remove(&slot);
            self.suspects.remove(&slot);
            for n in self.neighbours.values_mut() {
                n.theirs.retain(|_, s| *s != slot);
                n.introduced.remove(slot);
            }
        }
    }

    fn start_leave(&mut self, now: Time) {
        if self.leaving_since.is_some() || self.left {
            return;
        }
        self.leaving_since = Some(now);
        let seq = self.members.leave_own(now);
        let all: Vec<Slot> = self.neighbours.keys().copied().collect();
        for n in all {
            self.send(n, Message::Leave { seq });
        }
        self.timers
            .set(Timer::LeaveDone, now + self.config.leave_grace);
        if !self.joined {
            self.finish_leave(now);
        }
    }

    fn finish_leave(&mut self, now: Time) {
        let all: Vec<Slot> = self.neighbours.keys().copied().collect();
        for n in all {
            self.send(n, Message::LinkDrop);
            self.link_down(now, n);
        }
        self.left = true;
        self.timers = TimerTable::default();
        self.outbox.emit(Event::Left);
    }
}

impl Protocol for Narada {
    type Message = Message;
    type Command = Command;
    type Event = Event;

    fn id(&self) -> NodeId {
        self.me()
    }

    fn handle_message(&mut self, now: Time, from: NodeId, msg: Message) {
        if self.left || from == self.me() {
            return;
        }
        self.on_message(now, from, msg);
    }

    fn handle_command(&mut self, now: Time, cmd: Command) {
        if self.left {
            return;
        }
        match cmd {
            Command::Join { bootstrap } => self.join(now, bootstrap),
            Command::Leave => self.start_leave(now),
            Command::Publish { payload, priority } => self.publish(now, payload, priority),
        }
    }

    fn handle_measurement(&mut self, now: Time, peer: NodeId, metrics: LinkMetrics) {
        if let Some(bandwidth) = metrics.bandwidth {
            self.on_bandwidth_measured(now, peer, bandwidth);
        }
        self.drive_prober(now, |p, now| p.handle_measurement(now, peer, metrics));
    }

    fn handle_link(&mut self, now: Time, peer: NodeId, event: LinkEvent) {
        if event == LinkEvent::Down
            && let Some(slot) = self.members.slot_of(&peer)
            && self.neighbours.contains_key(&slot)
        {
            // The transport lost the neighbour: drop the link, and check whether it lives.
            self.link_down(now, slot);
            self.send_query(now, slot, QueryPurpose::Repair);
        }
    }

    fn handle_timeout(&mut self, now: Time) {
        if self.left {
            return;
        }
        self.drive_prober(now, Prober::handle_timeout);
        while let Some(timer) = self.timers.pop_expired(now) {
            self.handle_timer(now, timer);
            if self.left {
                break;
            }
        }
    }

    fn poll_output(&mut self) -> Option<Output<Message, Event>> {
        self.outbox.pop()
    }

    fn poll_timeout(&self) -> Option<Time> {
        if self.left {
            return None;
        }
        match (self.timers.next_deadline(), self.prober.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

impl Narada {
    /// Whether `slot` is a member that counts for the group (alive).
    pub(crate) fn counts(&self, slot: Slot) -> bool {
        self.members
            .record(slot)
            .is_some_and(|r| r.status == Status::Alive)
    }
}
