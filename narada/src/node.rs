//! The Narada member: composes its shared [`Core`] (member table, neighbours, routing, the
//! news to neighbours), the [`Mesh`] and the [`DataPlane`] into one sans-IO state machine. The
//! parts own their state; this module routes each input to the part it concerns, drains the
//! data plane's outputs into the member's, and keeps every timer in one table.

use std::time::Duration;

use bytes::Bytes;
use overlay_core::{LinkEvent, LinkMetrics, NodeId, Output, Protocol, Time, TimerTable, soonest};
use probe::Prober;

use crate::NaradaConfig;
use crate::core::Core;
use crate::data::{DataOutput, DataPlane, SourceTrees};
use crate::members::Slot;
use crate::mesh::{Mesh, QueryPurpose, reprobe_links};
use crate::message::Message;

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
    /// Ask a source for a keyframe of one of its streams (a decoder here lost a frame or is
    /// starting); requests merge on the way up the source's tree.
    RequestKeyframe {
        /// The source.
        source: NodeId,
        /// Its stream.
        stream: u32,
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
    /// Some receiver asked this member, as a source, for a keyframe of `stream`.
    KeyframeRequested {
        /// The stream.
        stream: u32,
    },
    /// This member finished leaving; it does nothing more.
    Left,
}

/// A mesh link as routing sees it (see [`Narada::mesh_links`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MeshLink {
    /// The neighbour at the other end.
    pub neighbour: NodeId,
    /// Its one-way latency as routing uses it.
    pub latency: Duration,
    /// The bandwidth level of the link towards this member (capped by this member's known
    /// download).
    pub width: u16,
    /// Whether the level was measured (else it is assumed full).
    pub measured: bool,
    /// The neighbour's upload carries all the child streams it can.
    pub full: bool,
    /// The neighbour asks this member to move routes elsewhere (those to other sources, or to
    /// the neighbour's own stream as well).
    pub shed: bool,
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
    /// Tables or updates over the size limit, or table replies whose packed costs do not
    /// parse: dropped.
    pub oversized: u64,
    /// Data not from the next hop towards its source: dropped.
    pub rpf_drops: u64,
    /// Data seen before: dropped.
    pub duplicates: u64,
    /// Replies matching no question: dropped.
    pub unmatched_replies: u64,
    /// Whole route tables asked of a neighbour because its route digest differed from what
    /// this member held (route news lost or refused on the way).
    pub route_asks: u64,
    /// Whole route tables sent to a neighbour that asked (at most one per heartbeat interval
    /// per neighbour).
    pub route_tables_sent: u64,
    /// Links added (accepted by either end).
    pub links_added: u64,
    /// Links this member dropped for low utility.
    pub links_dropped: u64,
    /// Links this member gave up for a much better one.
    pub links_swapped: u64,
    /// Neighbours declared dead after silence.
    pub neighbours_died: u64,
    /// Streams whose upstream went quiet, so it was pinged at once (see
    /// [`crate::RepairConfig::silence_probe_after`]).
    pub upstream_silences: u64,
    /// Partition-repair probes sent.
    pub repair_probes: u64,
    /// Active bandwidth probes asked for.
    pub bandwidth_probes: u64,
    /// Idle links whose bandwidth was doubted when a busy link turned congested (each probed
    /// again).
    pub links_doubted: u64,
    /// Gap repairs asked for.
    pub nacks_sent: u64,
    /// Packets resent to fill a neighbour's gap.
    pub repairs_sent: u64,
    /// Keyframe requests sent up a source's tree.
    pub keyframe_requests_sent: u64,
    /// Keyframe requests merged into one sent within the gap.
    pub keyframe_requests_merged: u64,
}

/// Every timer of a member, each handled by the part named. Ties (the same microsecond) fire in
/// declaration order, so replays are exact.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Timer {
    /// When to advance this member's own sequence number (the liveness heartbeat; core).
    Heartbeat,
    /// When to send neighbours the membership changes since their last refresh (core).
    Refresh,
    /// When to send neighbours the route changes batched since the last flush (core).
    FlushRoutes,
    /// When to run partition repair: the partition queue and suspects (mesh).
    Repair,
    /// When to look for a better link (mesh).
    Improve,
    /// When to consider dropping a link (mesh).
    Drop,
    /// When to ask another member for a first link, if none answered (mesh).
    JoinRetry,
    /// When a leaving member's grace ends and it stops (member).
    LeaveDone,
    /// When to ask upstreams for the gaps that are due, and to check streams for silence (the
    /// data plane's deadline).
    Nack,
    /// When to forget members dead for longer than the retention (member).
    Purge,
    /// When a withdrawn route's hold ends and routes are recomputed (core).
    RouteHold,
    /// When to report each link's data to its other end and re-probe idle narrowed links
    /// (core, data plane and mesh).
    RateReport,
    /// When an unanswered table query counts as failed (mesh).
    QueryExpire(u64),
}

/// A Narada member.
#[derive(Debug)]
pub struct Narada {
    pub(crate) core: Core,
    pub(crate) mesh: Mesh,
    pub(crate) data: DataPlane,
    pub(crate) keyframes: crate::keyframes::KeyframeRequests,
}

/// Each source's tree at this member, as the routing table and the neighbour set give it.
pub(crate) struct Trees<'a>(pub(crate) &'a Core);

impl SourceTrees for Trees<'_> {
    fn upstream(&self, source: Slot) -> Option<Slot> {
        self.0.routing.route(source).map(|r| r.next_hop)
    }

    fn downstream(&self, source: Slot) -> Vec<Slot> {
        self.0
            .routing
            .routed_through_me(source)
            .iter()
            .copied()
            .filter(|n| self.0.neighbours.contains_key(n))
            .collect()
    }
}

impl Narada {
    /// A member with identity `id`, not yet in any group (send [`Command::Join`]); a member
    /// that starts a group joins with an empty bootstrap list.
    pub fn new(id: NodeId, config: NaradaConfig, now: Time) -> Self {
        Self {
            data: DataPlane::new(config.data.clone(), config.repair.silence_probe_after),
            mesh: Mesh::default(),
            keyframes: Default::default(),
            core: Core::new(id, config, now),
        }
    }

    /// What this member counted.
    pub fn stats(&self) -> NaradaStats {
        let data = self.data.stats();
        NaradaStats {
            rpf_drops: data.rpf_drops,
            duplicates: data.duplicates,
            nacks_sent: data.nacks_sent,
            repairs_sent: data.repairs_sent,
            upstream_silences: data.silences,
            ..self.core.stats
        }
    }

    /// The configuration.
    pub fn config(&self) -> &NaradaConfig {
        &self.core.config
    }

    /// Whether this member is in a group (it has had a neighbour, or started the group).
    pub fn is_joined(&self) -> bool {
        self.core.life.joined
    }

    /// Whether this member has finished leaving.
    pub fn has_left(&self) -> bool {
        self.core.life.left
    }

    /// Current mesh neighbours.
    pub fn neighbours(&self) -> Vec<NodeId> {
        self.core
            .neighbours
            .keys()
            .filter_map(|&s| self.core.members.id_of(s))
            .collect()
    }

    /// Each mesh link as routing sees it now: its latency, its bandwidth level, and what the
    /// neighbour said of its upload.
    pub fn mesh_links(&self) -> Vec<MeshLink> {
        let links = self.core.link_costs();
        self.core
            .neighbours
            .iter()
            .filter_map(|(s, nb)| {
                let link = links.get(s)?;
                Some(MeshLink {
                    neighbour: self.core.members.id_of(*s)?,
                    latency: Duration::from_micros(u64::from(link.latency_us)),
                    width: link.metric.width,
                    measured: nb.bandwidth.level().is_some(),
                    full: link.full,
                    shed: link.shed || link.shed_own,
                })
            })
            .collect()
    }

    /// Mesh degree.
    pub fn degree(&self) -> usize {
        self.core.neighbours.len()
    }

    /// The neighbour packets to `dest` go to (and the one packets from `dest` must come from).
    pub fn next_hop(&self, dest: &NodeId) -> Option<NodeId> {
        let members = &self.core.members;
        let slot = members.slot_of(dest)?;
        self.core
            .routing
            .route(slot)
            .and_then(|r| members.id_of(r.next_hop))
    }

    /// The neighbours this member forwards `source`'s packets to: those whose advertised route
    /// to the source goes through this member (reverse-path forwarding).
    pub fn forwards_to(&self, source: &NodeId) -> Vec<NodeId> {
        let Some(s) = self.core.members.slot_of(source) else {
            return Vec::new();
        };
        Trees(&self.core)
            .downstream(s)
            .into_iter()
            .filter_map(|n| self.core.members.id_of(n))
            .collect()
    }

    /// The path neighbour `neighbour` advertised to `dest` (its next hop first), as last heard.
    pub fn neighbour_route(&self, neighbour: &NodeId, dest: &NodeId) -> Option<Vec<NodeId>> {
        let members = &self.core.members;
        let n = members.slot_of(neighbour)?;
        let d = members.slot_of(dest)?;
        let advert = self.core.routing.advert_of(n, d)?;
        advert.path.iter().map(|&s| members.id_of(s)).collect()
    }

    /// Latency of the route to `dest`.
    pub fn route_latency(&self, dest: &NodeId) -> Option<Duration> {
        let slot = self.core.members.slot_of(dest)?;
        self.core
            .routing
            .latency_to(slot)
            .map(|us| Duration::from_micros(u64::from(us)))
    }

    /// Bandwidth level of the route from `source` to this member (the narrowest link on the
    /// way), if reachable and measured.
    pub fn route_width(&self, source: &NodeId) -> Option<u16> {
        let slot = self.core.members.slot_of(source)?;
        self.core.routing.metric_to(slot).map(|m| m.width)
    }

    /// The full path to `dest` (next hop first, `dest` last).
    pub fn route_path(&self, dest: &NodeId) -> Option<Vec<NodeId>> {
        let members = &self.core.members;
        let slot = members.slot_of(dest)?;
        let route = self.core.routing.route(slot)?;
        route.path.iter().map(|&s| members.id_of(s)).collect()
    }

    /// Members believed alive, this one included: the group-size estimate.
    pub fn group_size(&self) -> usize {
        self.core.members.alive_count()
    }

    /// Every member believed alive, this one included, in slot order.
    pub fn alive_members(&self) -> Vec<NodeId> {
        let members = &self.core.members;
        (0..members.slots())
            .filter_map(|i| {
                let slot = u32::try_from(i).ok()?;
                members
                    .is_alive(slot)
                    .then(|| members.id_of(slot))
                    .flatten()
            })
            .collect()
    }

    /// Whether `id` is believed alive.
    pub fn believes_alive(&self, id: &NodeId) -> bool {
        self.core
            .members
            .slot_of(id)
            .is_some_and(|s| self.core.members.is_alive(s))
    }

    /// Feed the prober, then lift its outputs; its reports go to the mesh as they come.
    pub(crate) fn drive_prober(&mut self, now: Time, input: impl FnOnce(&mut Prober, Time)) {
        input(&mut self.core.prober, now);
        loop {
            // Reports a nested prober command drained come first: they were queued earlier.
            if let Some(event) = self.core.deferred_probe_events.pop_front() {
                self.mesh.on_probe_event(&mut self.core, now, event);
                continue;
            }
            let Some(output) = self.core.prober.poll_output() else {
                break;
            };
            let outbox = &mut self.core.outbox;
            match output {
                Output::Send { to, msg } => outbox.send(to, Message::Probe(msg)),
                Output::Emit(event) => self.mesh.on_probe_event(&mut self.core, now, event),
                Output::Connect { peer } => outbox.connect(peer),
                Output::Disconnect { peer } => outbox.disconnect(peer),
                Output::Measure { peer, request } => outbox.measure(peer, request),
            }
        }
    }

    /// Act on what the data plane asked for, in order, and follow its deadline.
    pub(crate) fn drain_data(&mut self) {
        while let Some(output) = self.data.poll_output() {
            match output {
                DataOutput::Send { to, source, msg } => {
                    self.core.ensure_introduced(to, source);
                    if let Message::Data(_) = &msg
                        && let Some(nb) = self.core.neighbours.get_mut(&to)
                    {
                        nb.sent_bytes += overlay_core::WireMessage::wire_size(&msg) as u64;
                        nb.sent_sources.insert(source);
                    }
                    self.core.send(to, msg);
                }
                DataOutput::UpstreamSilent { upstream, at } => {
                    self.core.suspect_silent(at, upstream);
                }
                DataOutput::Deliver {
                    source,
                    seq,
                    sent_at_us,
                    payload,
                    recovered,
                } => {
                    if let Some(id) = self.core.members.id_of(source) {
                        self.core.outbox.emit(Event::Deliver {
                            source: id,
                            seq,
                            sent_at_us,
                            payload,
                            recovered,
                        });
                    }
                }
            }
        }
        match self.data.poll_timeout() {
            Some(at) => self.core.timers.set(Timer::Nack, at),
            None => {
                self.core.timers.cancel(Timer::Nack);
            }
        }
    }

    fn publish(&mut self, now: Time, payload: Bytes, priority: u8) {
        if !self.core.life.joined || self.core.life.leaving_since.is_some() {
            return;
        }
        self.data
            .publish(now, payload, priority, &Trees(&self.core));
        self.drain_data();
    }

    fn handle_timer(&mut self, now: Time, timer: Timer) {
        if self.core.life.left {
            return;
        }
        self.core.count_streams_in(&self.data, now);
        let cx = &mut self.core;
        match timer {
            Timer::Heartbeat => {
                if cx.life.leaving_since.is_none() {
                    cx.members.bump_own(now);
                }
                cx.heartbeats += 1;
                if cx
                    .heartbeats
                    .is_multiple_of(cx.config.routing.route_check_heartbeats.max(1))
                {
                    cx.send_route_digests();
                }
                let next = cx.jitter(cx.config.membership.heartbeat_interval);
                cx.timers.set(Timer::Heartbeat, now + next);
            }
            Timer::Refresh => {
                cx.send_refreshes();
                cx.timers
                    .set(Timer::Refresh, now + cx.config.membership.refresh_interval);
            }
            Timer::FlushRoutes => cx.flush_routes(),
            Timer::Repair => {
                self.mesh.repair_tick(cx, now);
                cx.timers
                    .set(Timer::Repair, now + cx.config.repair.repair_interval);
            }
            Timer::Improve => {
                self.mesh.improve_tick(cx, now);
                let period = if cx.neighbours.len() < cx.config.mesh.min_degree {
                    cx.config.repair.repair_interval
                } else {
                    cx.config.mesh.improve_interval
                };
                let next = cx.jitter(period);
                cx.timers.set(Timer::Improve, now + next);
            }
            Timer::Drop => {
                self.mesh.drop_tick(cx, now);
                let next = cx.jitter(cx.config.mesh.drop_interval);
                cx.timers.set(Timer::Drop, now + next);
            }
            Timer::JoinRetry => self.mesh.join_retry(cx, now),
            Timer::LeaveDone => self.finish_leave(now),
            Timer::Nack => {
                self.data.nack_tick(now, &Trees(&self.core));
                self.data.silence_tick(now, &Trees(&self.core));
                self.drain_data();
            }
            Timer::Purge => {
                self.purge(now);
                let cx = &mut self.core;
                cx.timers
                    .set(Timer::Purge, now + cx.config.repair.dead_retention / 4);
            }
            Timer::QueryExpire(nonce) => self.mesh.query_expired(cx, now, nonce),
            Timer::RouteHold => cx.reroute(now),
            Timer::RateReport => {
                self.refresh_upload_room(now);
                self.core.send_rate_reports();
                reprobe_links(&mut self.core, &mut self.data, now);
                let cx = &mut self.core;
                cx.timers
                    .set(Timer::RateReport, now + cx.config.bandwidth.rate_interval);
            }
        }
    }

    /// Forget members dead for longer than the retention, everywhere.
    fn purge(&mut self, now: Time) {
        let retention = self.core.config.repair.dead_retention;
        for slot in self.core.members.purge(now, retention) {
            self.core.routing.forget(slot);
            self.data.forget(slot);
            self.mesh.forget(slot);
            for n in self.core.neighbours.values_mut() {
                n.theirs.retain(|s| s != slot);
                n.introduced.remove(slot);
            }
        }
    }

    fn start_leave(&mut self, now: Time) {
        let cx = &mut self.core;
        if cx.life.leaving_since.is_some() || cx.life.left {
            return;
        }
        cx.life.leaving_since = Some(now);
        let seq = cx.members.leave_own(now);
        let all: Vec<Slot> = cx.neighbours.keys().copied().collect();
        for n in all {
            cx.send(n, Message::Leave { seq });
        }
        cx.timers
            .set(Timer::LeaveDone, now + cx.config.membership.leave_grace);
        if !cx.life.joined {
            self.finish_leave(now);
        }
    }

    fn finish_leave(&mut self, now: Time) {
        let all: Vec<Slot> = self.core.neighbours.keys().copied().collect();
        for n in all {
            self.core.send(n, Message::LinkDrop);
            self.mesh.link_down(&mut self.core, now, n);
        }
        self.core.life.left = true;
        self.core.timers = TimerTable::default();
        self.core.outbox.emit(Event::Left);
    }
}

impl Protocol for Narada {
    type Message = Message;
    type Command = Command;
    type Event = Event;

    fn id(&self) -> NodeId {
        self.core.me()
    }

    fn handle_message(&mut self, now: Time, from: NodeId, msg: Message) {
        if self.core.life.left || from == self.core.me() {
            return;
        }
        self.on_message(now, from, msg);
    }

    fn handle_command(&mut self, now: Time, cmd: Command) {
        if self.core.life.left {
            return;
        }
        match cmd {
            Command::Join { bootstrap } => self.mesh.join(&mut self.core, now, bootstrap),
            Command::Leave => self.start_leave(now),
            Command::Publish { payload, priority } => self.publish(now, payload, priority),
            Command::RequestKeyframe { source, stream } => {
                self.request_keyframe(now, source, stream)
            }
        }
    }

    fn handle_measurement(&mut self, now: Time, peer: NodeId, metrics: LinkMetrics) {
        if let Some(bandwidth) = metrics.bandwidth {
            self.core.count_streams_in(&self.data, now);
            let arriving = self.data.arriving_rate(now);
            self.mesh
                .on_bandwidth_measured(&mut self.core, now, peer, bandwidth, arriving);
        }
        self.drive_prober(now, |p, now| p.handle_measurement(now, peer, metrics));
    }

    fn handle_link(&mut self, now: Time, peer: NodeId, event: LinkEvent) {
        if event == LinkEvent::Heard {
            self.core.heard_by_transport(&peer);
            return;
        }
        if event == LinkEvent::Down
            && let Some(slot) = self.core.members.slot_of(&peer)
            && self.core.neighbours.contains_key(&slot)
        {
            // The transport lost the neighbour: drop the link, and check whether it lives.
            self.mesh.link_down(&mut self.core, now, slot);
            self.mesh
                .send_query(&mut self.core, now, slot, QueryPurpose::Repair);
        }
    }

    fn handle_timeout(&mut self, now: Time) {
        if self.core.life.left {
            return;
        }
        self.drive_prober(now, Prober::handle_timeout);
        while let Some(timer) = self.core.timers.pop_expired(now) {
            self.handle_timer(now, timer);
            if self.core.life.left {
                break;
            }
        }
    }

    fn poll_output(&mut self) -> Option<Output<Message, Event>> {
        self.core.outbox.pop()
    }

    fn poll_timeout(&self) -> Option<Time> {
        if self.core.life.left {
            return None;
        }
        soonest(
            self.core.timers.next_deadline(),
            self.core.prober.poll_timeout(),
        )
    }
}
