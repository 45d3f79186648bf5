//! The mesh: joining, link requests, improvement by utility, dropping and swapping by consensus
//! cost and value, and partition repair.
//!
//! Beyond the paper: members learn latencies to non-neighbours with cheap pings, so the
//! candidates they evaluate are the ones whose direct path is much shorter than their mesh path
//! (the paper picks them at random); a member below minimum degree links to its nearest known
//! members; a member at maximum degree may swap its least useful link for a much better one; and
//! a dropped or refused link is not asked for again for a while, so decisions cannot oscillate.
//!
//! [`Mesh`] is a part of [`crate::Narada`]: it owns the mesh's decisions in flight (link
//! requests, table queries, candidates being probed, the partition queue, suspects) and acts
//! through the member's [`Core`] (its tables, timers and outputs). Its inputs are the mesh
//! messages, the prober's reports, bandwidth measurements, and its timers (repair, improve,
//! drop, join retry, query expiry). Modules: this one (joining and links), [`improve`] (finding
//! better links), [`prune`] (dropping links), [`repair`] (silent members and partitions).

mod improve;
mod prune;
mod repair;

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::time::Duration;

use overlay_core::{Bandwidth, NodeId, Time};
use probe::{ProberCommand, ProberEvent};
use rand::seq::SliceRandom;

pub(crate) use improve::reprobe_links;

use crate::core::Core;
use crate::costs::Fingerprint;
use crate::members::{SELF_SLOT, Slot};
use crate::message::{LinkReason, Message};
use crate::metric::PathMetric;
use crate::neighbours::Neighbour;
use crate::node::{Event, Timer};

/// Referrals offered with a refusal.
const REFERRALS: usize = 4;

/// Why a table query was sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum QueryPurpose {
    /// Looking for a better link.
    Improve,
    /// Checking a silent member (partition repair or a lost link).
    Repair,
}

/// A table query waiting for its reply.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Query {
    target: Slot,
    sent: Time,
    purpose: QueryPurpose,
}

/// A candidate whose routing table arrived, kept while its link's bandwidth is probed.
#[derive(Clone, Debug)]
pub(crate) struct Candidate {
    /// Its route metric to each member, in this member's slots.
    their_costs: Vec<(Slot, Option<PathMetric>)>,
    /// Round trip to it, microseconds.
    rtt_us: u32,
    /// Its mesh degree.
    their_degree: u16,
}

/// A link asked for: why, the round trip the asker measured (0 if unknown), and the utility it
/// expects of the link.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct LinkAsk {
    pub(crate) reason: LinkReason,
    pub(crate) rtt_us: u32,
    pub(crate) utility: f64,
}

/// A candidate's routing table, as its reply to a table query brought it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct TheirTable {
    /// Its mesh degree.
    pub(crate) degree: u16,
    /// Its route metric to each member it lists.
    pub(crate) costs: Vec<Option<PathMetric>>,
    /// The fingerprints of the members it lists, unless they are this member's own live
    /// members in slot order.
    pub(crate) members: Option<Vec<Fingerprint>>,
}

/// The mesh's state.
#[derive(Debug, Default)]
pub(crate) struct Mesh {
    /// Outgoing link requests: slot -> (reason, sent, link to drop when accepted).
    pending: BTreeMap<Slot, (LinkReason, Time, Option<Slot>)>,
    /// Links recently dropped or refused: not asked for again before the time given.
    holdoff: BTreeMap<Slot, Time>,
    /// Table queries in flight, by nonce.
    queries: BTreeMap<u64, Query>,
    /// Members a joiner asks for a link, in turn.
    join_candidates: Vec<NodeId>,
    /// The partition queue Q: members not heard from for a while, and since when.
    partition_queue: BTreeMap<Slot, Time>,
    /// Members declared dead first hand, re-probed with backoff in case they were only cut off
    /// (a network partition): slot -> (next probe, current interval).
    suspects: BTreeMap<Slot, (Time, Duration)>,
    /// Non-neighbours recently told there is no link (bounded; see `not_a_neighbour`).
    told_not_neighbour: BTreeMap<NodeId, Time>,
    /// Bandwidth measured towards candidates (and neighbours), with when.
    probed: BTreeMap<Slot, (Bandwidth, Time)>,
    /// Candidates whose table arrived and whose link bandwidth is being probed before deciding.
    awaiting_probe: BTreeMap<Slot, Candidate>,
}

impl Mesh {
    pub(crate) fn join(&mut self, cx: &mut Core, now: Time, bootstrap: Vec<NodeId>) {
        let me = cx.me();
        self.join_candidates = bootstrap.into_iter().filter(|id| *id != me).collect();
        if self.join_candidates.is_empty() {
            // The first member: the group starts here.
            cx.joined(now);
            return;
        }
        self.join_retry(cx, now);
    }

    /// Ask one join candidate for a link; retry later with another if it does not accept.
    pub(crate) fn join_retry(&mut self, cx: &mut Core, now: Time) {
        if cx.life.joined || cx.life.leaving_since.is_some() {
            return;
        }
        cx.timers
            .set(Timer::JoinRetry, now + cx.config.membership.join_retry);
        if self.join_candidates.is_empty() {
            return;
        }
        self.join_candidates.shuffle(&mut cx.rng);
        let asks: Vec<NodeId> = self.join_candidates.drain(..1).collect();
        for id in asks {
            let slot = cx.members.intern(id, now);
            let ask = LinkAsk {
                reason: LinkReason::Join,
                rtt_us: 0,
                utility: 0.0,
            };
            self.request_link(cx, now, slot, ask, None);
            // Asked members go to the back of the list for the next round.
            self.join_candidates.push(id);
        }
    }

    fn request_link(
        &mut self,
        cx: &mut Core,
        now: Time,
        slot: Slot,
        ask: LinkAsk,
        replaces: Option<Slot>,
    ) {
        let LinkAsk {
            reason,
            rtt_us,
            utility,
        } = ask;
        if slot == SELF_SLOT || cx.neighbours.contains_key(&slot) {
            return;
        }
        self.pending.insert(slot, (reason, now, replaces));
        let utility_milli = (utility * 1000.0).clamp(0.0, f64::from(u32::MAX)) as u32;
        cx.send(
            slot,
            Message::LinkRequest {
                reason,
                rtt_us,
                utility_milli,
            },
        );
    }

    /// Capacity for one more link, counting requests in flight (swaps replace a link).
    fn has_room(&self, cx: &Core, reason: LinkReason) -> bool {
        let used = cx.neighbours.len() + self.pending.values().filter(|p| p.2.is_none()).count();
        let limit = match reason {
            // Repair links join partitions; they may exceed the bound by one, and the drop rule
            // trims the mesh afterwards.
            LinkReason::Repair => cx.config.degree_bound() + 1,
            _ => cx.config.degree_bound(),
        };
        used < limit
    }

    fn hold_off(&mut self, cx: &Core, now: Time, slot: Slot) {
        self.holdoff
            .insert(slot, now + cx.config.mesh.readd_holdoff);
    }

    fn held_off(&self, now: Time, slot: Slot) -> bool {
        self.holdoff.get(&slot).is_some_and(|&until| now < until)
    }

    /// Drop the link to `n` (telling it), and do not ask for it again soon.
    fn drop_link(&mut self, cx: &mut Core, now: Time, n: Slot) {
        cx.send(n, Message::LinkDrop);
        self.hold_off(cx, now, n);
        self.link_down(cx, now, n);
    }

    pub(crate) fn on_link_request(&mut self, cx: &mut Core, now: Time, from: Slot, ask: LinkAsk) {
        let LinkAsk {
            reason,
            rtt_us,
            utility,
        } = ask;
        if let Some(nb) = cx.neighbours.get_mut(&from) {
            // The peer lost the link while this end kept it (the transport failed on its side):
            // it forgot everything about this member and will send all it knows afresh. Start
            // the link over on this side too, so nothing stale of it survives.
            nb.introduced = Default::default();
            nb.theirs.clear();
            cx.routing.remove_neighbour(from);
            cx.send(from, Message::LinkAccept);
            cx.send_full_sync(from);
            cx.reroute(now);
            return;
        }
        let crossing = self.pending.contains_key(&from);
        // An improvement link this member already reaches well (within the spanner's stretch)
        // is refused unless it passes the paper's utility threshold: both ends agree a link is
        // needed, which keeps concurrent additions from duplicating each other.
        let redundant = reason == LinkReason::Improve
            && rtt_us > 0
            && cx.routing.latency_to(from).is_some_and(|c| {
                f64::from(c) <= cx.config.mesh.stretch_add * f64::from(rtt_us / 2)
            })
            && utility
                <= cx.config.mesh.add_threshold(
                    cx.members.alive_count(),
                    cx.neighbours.len(),
                    cx.neighbours.len(),
                );
        let refuse = cx.life.leaving_since.is_some()
            || !cx.life.joined
            || redundant
            || (reason == LinkReason::Improve && self.held_off(now, from));
        let mut replaced = None;
        let accept = !refuse
            && (crossing || self.has_room(cx, reason) || {
                // Full: give up the least useful link for a much better one.
                replaced = improve::swap_target(cx, now, utility, rtt_us / 2);
                replaced.is_some()
            });
        if !accept {
            let mut referrals: Vec<NodeId> = cx
                .neighbours
                .keys()
                .filter(|&&s| s != from)
                .filter_map(|&s| cx.members.id_of(s))
                .collect();
            referrals.shuffle(&mut cx.rng);
            referrals.truncate(REFERRALS);
            cx.send(from, Message::LinkReject { referrals });
            return;
        }
        cx.send(from, Message::LinkAccept);
        self.link_up(cx, now, from, rtt_us / 2, reason);
        if let Some(old) = replaced {
            cx.stats.links_swapped += 1;
            self.drop_link(cx, now, old);
        }
    }

    pub(crate) fn on_link_accept(&mut self, cx: &mut Core, now: Time, from: Slot) {
        let Some((reason, _, replaces)) = self.pending.remove(&from) else {
            if !cx.neighbours.contains_key(&from) {
                // An answer to a request already given up: decline the link it would create.
                cx.send(from, Message::LinkDrop);
            }
            return;
        };
        let hint = cx
            .members
            .id_of(from)
            .and_then(|id| cx.prober.rtt(id))
            .map_or(0, |rtt| {
                u32::try_from(rtt.as_micros() / 2).unwrap_or(u32::MAX)
            });
        self.link_up(cx, now, from, hint, reason);
        if let Some(old) = replaces.filter(|o| cx.neighbours.contains_key(o)) {
            cx.stats.links_swapped += 1;
            self.drop_link(cx, now, old);
        }
    }

    pub(crate) fn on_link_reject(
        &mut self,
        cx: &mut Core,
        now: Time,
        from: Slot,
        referrals: Vec<NodeId>,
    ) {
        let Some((reason, _, _)) = self.pending.remove(&from) else {
            return;
        };
        match reason {
            LinkReason::Join if !cx.life.joined => {
                let me = cx.me();
                for id in referrals.into_iter().take(REFERRALS) {
                    if id != me && !self.join_candidates.contains(&id) {
                        self.join_candidates.insert(0, id);
                    }
                }
                self.join_retry(cx, now);
            }
            LinkReason::Improve | LinkReason::Degree => self.hold_off(cx, now, from),
            _ => {}
        }
    }

    /// A mesh link to `slot` is up: start pinging it and send it everything.
    pub(crate) fn link_up(
        &mut self,
        cx: &mut Core,
        now: Time,
        slot: Slot,
        hint_us: u32,
        reason: LinkReason,
    ) {
        if cx.neighbours.contains_key(&slot) || slot == SELF_SLOT {
            return;
        }
        self.pending.remove(&slot);
        let mut neighbour = Neighbour::new(now, hint_us, cx.link_bandwidth());
        // A candidate probed before the link came up keeps what was measured.
        if let Some(&(bandwidth, at)) = self.probed.get(&slot) {
            neighbour.bandwidth.on_probe(at, bandwidth);
            neighbour.probed_at = Some(at);
        }
        neighbour.provisional = cx.config.mesh.provisional_links
            && matches!(reason, LinkReason::Join | LinkReason::Repair);
        cx.neighbours.insert(slot, neighbour);
        cx.stats.links_added += 1;
        if let Some(id) = cx.members.id_of(slot) {
            cx.command_prober(now, ProberCommand::Watch(id));
            cx.outbox.emit(Event::NeighbourUp(id));
        }
        cx.send_full_sync(slot);
        cx.joined(now);
        cx.reroute(now);
    }

    /// The mesh link to `slot` is gone.
    pub(crate) fn link_down(&mut self, cx: &mut Core, now: Time, slot: Slot) {
        if cx.neighbours.remove(&slot).is_none() {
            return;
        }
        if let Some(id) = cx.members.id_of(slot) {
            cx.command_prober(now, ProberCommand::Unwatch(id));
            cx.outbox.emit(Event::NeighbourDown(id));
        }
        cx.routing.remove_neighbour(slot);
        cx.reroute(now);
        if cx.neighbours.len() < cx.config.mesh.min_degree
            && cx.life.joined
            && cx.life.leaving_since.is_none()
        {
            // Look for a replacement soon rather than at the next improvement period.
            let soon = now + cx.config.repair.repair_interval;
            if cx.timers.get(Timer::Improve).is_none_or(|t| t > soon) {
                cx.timers.set(Timer::Improve, soon);
            }
        }
    }

    /// `slot` was found dead first hand: record it, drop its link, reroute, and keep probing it
    /// now and then in case it was only cut off.
    pub(crate) fn member_died(&mut self, cx: &mut Core, now: Time, slot: Slot) {
        if let Entry::Vacant(e) = self.suspects.entry(slot) {
            e.insert(Self::first_reprobe(cx, now));
        }
        if cx.members.declare_dead(slot, now)
            && let Some(id) = cx.members.id_of(slot)
        {
            cx.outbox.emit(Event::MemberDied(id));
        }
        self.partition_queue.remove(&slot);
        self.link_down(cx, now, slot);
        cx.reroute(now);
    }

    pub(crate) fn on_probe_event(&mut self, cx: &mut Core, now: Time, event: ProberEvent) {
        match event {
            // The link's latency is the smallest of its latest round trips: the queue this
            // member's own stream builds on the link it uses must not make that link look long
            // (the stream would leave it for that, and come back once the queue drained).
            ProberEvent::Rtt {
                peer, recent_min, ..
            } => {
                let Some(slot) = cx.members.slot_of(&peer) else {
                    return;
                };
                let tolerance = cx.tolerance();
                let Some(n) = cx.neighbours.get_mut(&slot) else {
                    return;
                };
                n.lost_pings = 0;
                n.silent = false;
                let one_way = u32::try_from(recent_min.as_micros() / 2).unwrap_or(u32::MAX);
                let old = n.cost_us();
                n.measured_us = Some(one_way);
                if one_way.abs_diff(old)
                    > ((f64::from(old) * tolerance.fraction) as u32)
                        .saturating_add(tolerance.floor_us)
                {
                    cx.reroute(now);
                }
            }
            ProberEvent::Lost { peer, .. } => {
                let Some(slot) = cx.members.slot_of(&peer) else {
                    return;
                };
                let Some(n) = cx.neighbours.get_mut(&slot) else {
                    return;
                };
                n.lost_pings += 1;
                if n.lost_pings >= cx.config.repair.dead_after_lost_pings {
                    cx.stats.neighbours_died += 1;
                    self.member_died(cx, now, slot);
                } else if n.silent {
                    // Its stream stopped too: ask again now rather than at the next period.
                    cx.command_prober(now, ProberCommand::ProbeNow(peer));
                }
            }
        }
    }

    /// A message only neighbours may send came from a member that is not one: drop it, count
    /// it, and tell the sender (at most once a second) that there is no link, so a link one
    /// end lost without the other knowing (a drop lost in a partition) is undone at both ends.
    pub(crate) fn not_a_neighbour(&mut self, cx: &mut Core, now: Time, from: NodeId) {
        cx.stats.from_non_neighbour += 1;
        if self.told_not_neighbour.len() > 1024 {
            self.told_not_neighbour
                .retain(|_, at| now.saturating_since(*at) < Duration::from_secs(1));
        }
        let recent = self
            .told_not_neighbour
            .get(&from)
            .is_some_and(|at| now.saturating_since(*at) < Duration::from_secs(1));
        if !recent {
            self.told_not_neighbour.insert(from, now);
            cx.outbox.send(from, Message::LinkDrop);
        }
    }
}

#[cfg(test)]
mod tests;
