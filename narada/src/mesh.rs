//! The mesh: joining, link requests, improvement by utility, dropping and swapping by consensus
//! cost, and partition repair.
//!
//! Beyond the paper: members learn latencies to non-neighbours with cheap pings, so the
//! candidates they evaluate are the ones whose direct path is much shorter than their mesh path
//! (the paper picks them at random); a member below minimum degree links to its nearest known
//! members; a member at maximum degree may swap its least useful link for a much better one; and
//! a dropped or refused link is not asked for again for a while, so decisions cannot oscillate.

use overlay_core::{Bandwidth, MeasureRequest, NodeId, Protocol, Time};
use probe::ProberCommand;
use rand::RngExt;
use rand::seq::SliceRandom;

use crate::members::{SELF_SLOT, Slot, Status};
use crate::message::{LinkReason, Message};
use crate::metric::PathMetric;
use crate::node::{Event, Narada, Query, QueryPurpose, Timer};

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

/// Referrals offered with a refusal.
const REFERRALS: usize = 4;

impl Narada {
    pub(crate) fn join(&mut self, now: Time, bootstrap: Vec<NodeId>) {
        let me = self.me();
        self.join_candidates = bootstrap.into_iter().filter(|id| *id != me).collect();
        if self.join_candidates.is_empty() {
            // The first member: the group starts here.
            if !self.joined {
                self.joined = true;
                self.outbox.emit(Event::Joined);
                self.start(now);
            }
            return;
        }
        self.join_retry(now);
    }

    /// Ask one join candidate for a link; retry later with another if it does not accept.
    pub(crate) fn join_retry(&mut self, now: Time) {
        if self.joined || self.leaving_since.is_some() {
            return;
        }
        self.timers
            .set(Timer::JoinRetry, now + self.config.join_retry);
        if self.join_candidates.is_empty() {
            return;
        }
        self.join_candidates.shuffle(&mut self.rng);
        let asks: Vec<NodeId> = self.join_candidates.drain(..1).collect();
        for id in asks {
            let slot = self.members.intern(id, now);
            self.request_link(now, slot, LinkReason::Join, 0, 0.0, None);
            // Asked members go to the back of the list for the next round.
            self.join_candidates.push(id);
        }
    }

    fn request_link(
        &mut self,
        now: Time,
        slot: Slot,
        reason: LinkReason,
        rtt_us: u32,
        utility: f64,
        replaces: Option<Slot>,
    ) {
        if slot == SELF_SLOT || self.neighbours.contains_key(&slot) {
            return;
        }
        self.pending.insert(slot, (reason, now, replaces));
        let utility_milli = (utility * 1000.0).clamp(0.0, f64::from(u32::MAX)) as u32;
        self.send(
            slot,
            Message::LinkRequest {
                reason,
                rtt_us,
                utility_milli,
            },
        );
    }

    /// Capacity for one more link, counting requests in flight (swaps replace a link).
    fn has_room(&self, reason: LinkReason) -> bool {
        let used = self.neighbours.len() + self.pending.values().filter(|p| p.2.is_none()).count();
        let limit = match reason {
            // Repair links join partitions; they may exceed the bound by one, and the drop rule
            // trims the mesh afterwards.
            LinkReason::Repair => self.config.degree_bound(self.active_streams) + 1,
            _ => self.config.degree_bound(self.active_streams),
        };
        used < limit
    }

    fn hold_off(&mut self, now: Time, slot: Slot) {
        self.holdoff.insert(slot, now + self.config.readd_holdoff);
    }

    fn held_off(&self, now: Time, slot: Slot) -> bool {
        self.holdoff.get(&slot).is_some_and(|&until| now < until)
    }

    /// Drop the link to `n` (telling it), and do not ask for it again soon.
    fn drop_link(&mut self, now: Time, n: Slot) {
        self.send(n, Message::LinkDrop);
        self.hold_off(now, n);
        self.link_down(now, n);
    }

    pub(crate) fn on_link_request(
        &mut self,
        now: Time,
        from: Slot,
        reason: LinkReason,
        rtt_us: u32,
        utility: f64,
    ) {
        if let Some(nb) = self.neighbours.get_mut(&from) {
            // The peer lost the link while this end kept it (the transport failed on its side):
            // it forgot everything about this member and will send all it knows afresh. Start
            // the link over on this side too, so nothing stale of it survives.
            nb.introduced = Default::default();
            nb.theirs.clear();
            self.routing.remove_neighbour(from);
            self.send(from, Message::LinkAccept);
            self.send_full_sync(from);
            self.reroute(now);
            return;
        }
        let crossing = self.pending.contains_key(&from);
        // An improvement link this member already reaches well (within the spanner's stretch)
        // is refused unless it passes the paper's utility threshold: both ends agree a link is
        // needed, which keeps concurrent additions from duplicating each other.
        let redundant = reason == LinkReason::Improve
            && rtt_us > 0
            && self
                .routing
                .latency_to(from)
                .is_some_and(|c| f64::from(c) <= self.config.stretch_add * f64::from(rtt_us / 2))
            && utility
                <= self.config.add_threshold(
                    self.members.alive_count(),
                    self.neighbours.len(),
                    self.neighbours.len(),
                );
        let refuse = self.leaving_since.is_some()
            || !self.joined
            || redundant
            || (reason == LinkReason::Improve && self.held_off(now, from));
        let mut replaced = None;
        let accept = !refuse
            && (crossing || self.has_room(reason) || {
                // Full: give up the least useful link for a much better one.
                replaced = self.swap_target(now, utility, rtt_us / 2);
                replaced.is_some()
            });
        if !accept {
            let mut referrals: Vec<NodeId> = self
                .neighbours
                .keys()
                .filter(|&&s| s != from)
                .filter_map(|&s| self.members.id_of(s))
                .collect();
            referrals.shuffle(&mut self.rng);
            referrals.truncate(REFERRALS);
            self.send(from, Message::LinkReject { referrals });
            return;
        }
        self.send(from, Message::LinkAccept);
        self.link_up(now, from, rtt_us / 2, reason);
        if let Some(old) = replaced {
            self.stats.links_swapped += 1;
            self.drop_link(now, old);
        }
    }

    pub(crate) fn on_link_accept(&mut self, now: Time, from: Slot) {
        let Some((reason, _, replaces)) = self.pending.remove(&from) else {
            if !self.neighbours.contains_key(&from) {
                // An answer to a request already given up: decline the link it would create.
                self.send(from, Message::LinkDrop);
            }
            return;
        };
        let hint = self
            .members
            .id_of(from)
            .and_then(|id| self.prober.rtt(id))
            .map_or(0, |rtt| {
                u32::try_from(rtt.as_micros() / 2).unwrap_or(u32::MAX)
            });
        self.link_up(now, from, hint, reason);
        if let Some(old) = replaces.filter(|o| self.neighbours.contains_key(o)) {
            self.stats.links_swapped += 1;
            self.drop_link(now, old);
        }
    }

    pub(crate) fn on_link_reject(&mut self, now: Time, from: Slot, referrals: Vec<NodeId>) {
        let Some((reason, _, _)) = self.pending.remove(&from) else {
            return;
        };
        match reason {
            LinkReason::Join if !self.joined => {
                let me = self.me();
                for id in referrals.into_iter().take(REFERRALS) {
                    if id != me && !self.join_candidates.contains(&id) {
                        self.join_candidates.insert(0, id);
                    }
                }
                self.join_retry(now);
            }
            LinkReason::Improve | LinkReason::Degree => self.hold_off(now, from),
            _ => {}
        }
    }

    /// Send a table query to `slot`.
    pub(crate) fn send_query(&mut self, now: Time, slot: Slot, purpose: QueryPurpose) {
        if self.queries.values().any(|q| q.target == slot) {
            return;
        }
        let nonce = self.rng.random::<u64>();
        let digest = self.members.live_digest();
        self.queries.insert(
            nonce,
            Query {
                target: slot,
                sent: now,
                purpose,
            },
        );
        self.timers
            .set(Timer::QueryExpire(nonce), now + self.config.probe_timeout);
        self.send(slot, Message::TableQuery { nonce, digest });
    }

    pub(crate) fn on_table_query(&mut self, from: NodeId, nonce: u64, digest: u64) {
        let mine = self.members.live_digest();
        let live = self.members.sorted_live().to_vec();
        let costs: Vec<Option<PathMetric>> =
            live.iter().map(|&s| self.routing.metric_to(s)).collect();
        let ids =
            (mine != digest).then(|| live.iter().filter_map(|&s| self.members.id_of(s)).collect());
        let degree = u16::try_from(self.neighbours.len()).unwrap_or(u16::MAX);
        self.outbox.send(
            from,
            Message::TableReply {
                nonce,
                degree,
                costs,
                ids,
            },
        );
    }

    pub(crate) fn on_table_reply(
        &mut self,
        now: Time,
        from: Slot,
        nonce: u64,
        their_degree: u16,
        costs: Vec<Option<PathMetric>>,
        ids: Option<Vec<NodeId>>,
    ) {
        if self.queries.get(&nonce).is_none_or(|q| q.target != from) {
            self.stats.unmatched_replies += 1;
            return;
        }
        let Some(query) = self.queries.remove(&nonce) else {
            return;
        };
        self.timers.cancel(Timer::QueryExpire(nonce));
        if costs.len() > self.config.max_table_entries {
            self.stats.oversized += 1;
            return;
        }
        let rtt_us =
            u32::try_from(now.saturating_since(query.sent).as_micros()).unwrap_or(u32::MAX);
        self.partition_queue.remove(&from);
        if self.neighbours.contains_key(&from) || self.pending.contains_key(&from) {
            return;
        }
        if query.purpose == QueryPurpose::Repair {
            // It answers: a silent member that lives gets a link, which repairs a partition if
            // there is one.
            if self.has_room(LinkReason::Repair) {
                self.request_link(now, from, LinkReason::Repair, rtt_us, 0.0, None);
            }
            return;
        }
        let their_costs: Vec<(Slot, Option<PathMetric>)> = match ids {
            None => {
                let live = self.members.sorted_live().to_vec();
                if live.len() != costs.len() {
                    self.stats.unmatched_replies += 1;
                    return;
                }
                live.into_iter().zip(costs).collect()
            }
            Some(ids) => {
                if ids.len() != costs.len() {
                    self.stats.unmatched_replies += 1;
                    return;
                }
                ids.iter()
                    .zip(costs)
                    .filter_map(|(id, c)| self.members.slot_of(id).map(|s| (s, c)))
                    .collect()
            }
        };
        let candidate = Candidate {
            their_costs,
            rtt_us,
            their_degree,
        };
        if !self.config.metric.uses_bandwidth() {
            self.evaluate(now, from, &candidate, PathMetric::UNBOUNDED);
            return;
        }
        // Bandwidth matters, but probes are costly (the paper found them 92% of its overhead):
        // probe only a candidate that reaches some source this member receives more widely
        // than this member does (it does well and could help), only if the link would be wanted
        // even at full bandwidth, and never while this member's own access link is the limit.
        let full = self.config.bandwidth_levels;
        if !self.could_widen(&candidate.their_costs) {
            // Only latency is at stake: no probe; the link is measured once it exists.
            self.evaluate(now, from, &candidate, full);
            return;
        }
        if self.wanted(from, &candidate, full).is_none() || self.access_is_bottleneck(now) {
            return;
        }
        let fresh = self
            .probed
            .get(&from)
            .filter(|(_, at)| now.saturating_since(*at) < self.config.reprobe_interval);
        if let Some(&(bandwidth, _)) = fresh {
            let width = self.width_of(bandwidth);
            self.evaluate(now, from, &candidate, width);
            return;
        }
        self.probe_bandwidth(now, from);
        self.awaiting_probe.insert(from, candidate);
    }

    /// Whether a candidate with routes `their_costs` reaches a source this member receives with
    /// more bandwidth than this member does.
    fn could_widen(&self, their_costs: &[(Slot, Option<PathMetric>)]) -> bool {
        their_costs.iter().any(|&(m, cost)| {
            let receiving = m != SELF_SLOT && self.sources.contains_key(&m);
            let mine = self.routing.metric_to(m).map_or(0, |r| r.width);
            receiving && cost.is_some_and(|c| c.width > mine)
        })
    }

    /// Decide on a candidate whose table arrived, with `width` the bandwidth level of the link
    /// from it.
    fn evaluate(&mut self, now: Time, from: Slot, candidate: &Candidate, width: u16) {
        if self.neighbours.contains_key(&from) || self.pending.contains_key(&from) {
            return;
        }
        let Some((reason, utility)) = self.wanted(from, candidate, width) else {
            return;
        };
        let direct_us = candidate.rtt_us / 2;
        if self.has_room(reason) {
            self.request_link(now, from, reason, candidate.rtt_us, utility, None);
        } else if let Some(old) = self.swap_target(now, utility, direct_us) {
            self.request_link(now, from, reason, candidate.rtt_us, utility, Some(old));
        }
    }

    /// Whether a link from `from` (its table in `candidate`, its bandwidth level `width`) is
    /// wanted, and why, with its utility.
    fn wanted(&self, from: Slot, candidate: &Candidate, width: u16) -> Option<(LinkReason, f64)> {
        let direct_us = candidate.rtt_us / 2;
        let link = self.candidate_link(from, direct_us, width);
        let utility = self.utility(from, link, &candidate.their_costs);
        let degree = self.neighbours.len();
        let below_min = degree < self.config.min_degree;
        // The spanner rule: the mesh route is much longer than the direct path (a light gate on
        // utility keeps useless links out); otherwise the paper's rule: utility over a threshold
        // that grows with group size and degree.
        let stretch = self.routing.latency_to(from).map_or(f64::INFINITY, |c| {
            f64::from(c) / f64::from(direct_us.max(1))
        });
        let wanted = below_min
            || (stretch > self.config.stretch_add && utility > self.config.add_base)
            || utility
                > self.config.add_threshold(
                    self.members.alive_count(),
                    degree,
                    usize::from(candidate.their_degree),
                );
        let reason = if below_min {
            LinkReason::Degree
        } else {
            LinkReason::Improve
        };
        wanted.then_some((reason, utility))
    }

    /// The metric of a link from `candidate` at one-way latency `latency_us` and bandwidth level
    /// `width`.
    fn candidate_link(&self, candidate: Slot, latency_us: u32, width: u16) -> PathMetric {
        let me = self.me();
        let peer = self.members.id_of(candidate).unwrap_or(me);
        self.config.metric.link(latency_us, width, &me, &peer)
    }

    /// The bandwidth level of a measured rate.
    pub(crate) fn width_of(&self, bandwidth: Bandwidth) -> u16 {
        let step =
            self.config.stream_rate.bps_f64() / f64::from(self.config.bandwidth_levels.max(1));
        let level = (bandwidth.bps_f64() / step.max(1.0) + 0.5).floor();
        level.clamp(0.0, f64::from(self.config.bandwidth_levels)) as u16
    }

    /// Whether what arrives here already fills this member's own download: then its access
    /// link limits it and probing others cannot help (the paper's first heuristic).
    pub(crate) fn access_is_bottleneck(&mut self, now: Time) -> bool {
        let Some(download) = self.config.download else {
            return false;
        };
        self.arriving
            .rate(now)
            .is_some_and(|r| r.bps_f64() >= 0.9 * download.bps_f64())
    }

    /// Ask the driver to measure the bandwidth from `slot` to this member, at no more than the
    /// stream rate.
    pub(crate) fn probe_bandwidth(&mut self, _now: Time, slot: Slot) {
        let Some(id) = self.members.id_of(slot) else {
            return;
        };
        self.stats.bandwidth_probes += 1;
        self.outbox.measure(
            id,
            MeasureRequest::Bandwidth {
                max_rate: self.config.stream_rate,
                duration: self.config.probe_duration,
            },
        );
    }

    /// A bandwidth measurement arrived (a probe's result, or the driver's own estimate).
    pub(crate) fn on_bandwidth_measured(&mut self, now: Time, peer: NodeId, bandwidth: Bandwidth) {
        let Some(slot) = self.members.slot_of(&peer) else {
            return;
        };
        self.probed.insert(slot, (bandwidth, now));
        if let Some(nb) = self.neighbours.get_mut(&slot) {
            let before = nb.bandwidth.level();
            nb.bandwidth.on_probe(now, bandwidth);
            nb.probed_at = Some(now);
            if nb.bandwidth.level() != before {
                self.reroute(now);
            }
        }
        if let Some(candidate) = self.awaiting_probe.remove(&slot) {
            let width = self.width_of(bandwidth);
            self.evaluate(now, slot, &candidate, width);
        }
    }

    /// The link to give up for a new one of `utility` and one-way latency `direct_us`: the
    /// link of least value, if that value is under `1 / swap_ratio` of the new link's utility and
    /// the new link is shorter (so swaps make the mesh lighter, never heavier).
    fn swap_target(&self, now: Time, utility: f64, direct_us: u32) -> Option<Slot> {
        let (value, worst) = self.weakest_link(now, |n| self.link_value(n))?;
        let worst_us = self.neighbours.get(&worst)?.cost_us();
        (utility > self.config.swap_ratio * value && direct_us < worst_us).then_some(worst)
    }

    /// Narada's utility of a link from `candidate` with metric `link`: the sum over members of
    /// the improvement the link would bring, in the metric's order (relative latency gain for
    /// latency; relative bandwidth gain, then latency, for the bandwidth metrics).
    pub(crate) fn utility(
        &self,
        candidate: Slot,
        link: PathMetric,
        their_costs: &[(Slot, Option<PathMetric>)],
    ) -> f64 {
        let kind = self.config.metric;
        let mut utility = 0.0;
        for &(m, cost) in their_costs {
            if m == SELF_SLOT || !self.counts(m) {
                continue;
            }
            let Some(cost) = cost.or_else(|| (m == candidate).then_some(PathMetric::ZERO)) else {
                continue;
            };
            utility += kind.gain(self.routing.metric_to(m), cost.extend(link));
        }
        utility
    }

    /// The consensus cost of the link to neighbour `n`: the number of members routed over it by
    /// the end that uses it most.
    pub(crate) fn consensus_cost(&self, n: Slot) -> usize {
        self.routing
            .count_via(n)
            .max(self.routing.count_through_me(n))
    }

    /// The value of the existing link to `n`, measured like the utility of adding it: the sum
    /// over members routed through `n` of the relative latency increase its loss would cause.
    pub(crate) fn link_value(&self, n: Slot) -> f64 {
        let kind = self.config.metric;
        let links = self.link_costs();
        let members = &self.members;
        self.routing
            .routes()
            .filter(|(_, r)| r.next_hop == n)
            .map(|(d, r)| {
                let alternative = self
                    .routing
                    .best_without(d, n, &links, |s| members.is_routable(s));
                kind.gain(alternative.map(|(m, _)| m), r.metric)
            })
            .sum()
    }

    /// The link with the lowest `score` among those old enough, not leaving, and whose loss
    /// leaves every member it carries reachable as far as this member can tell.
    pub(crate) fn weakest_link<T: PartialOrd + Copy>(
        &self,
        now: Time,
        score: impl Fn(Slot) -> T,
    ) -> Option<(T, Slot)> {
        let min_age = self.config.link_min_age;
        let mut ranked: Vec<(T, Slot)> = self
            .neighbours
            .iter()
            .filter(|(_, nb)| !nb.leaving && now.saturating_since(nb.since) >= min_age)
            .map(|(&n, _)| (score(n), n))
            .collect();
        ranked.sort_by(|a, b| {
            a.0.partial_cmp(&b.0)
                .unwrap_or(std::cmp::Ordering::Equal)
                .then(a.1.cmp(&b.1))
        });
        ranked.into_iter().find(|&(_, n)| self.partition_safe(n))
    }

    pub(crate) fn query_expired(&mut self, now: Time, nonce: u64) {
        let Some(query) = self.queries.remove(&nonce) else {
            return;
        };
        if query.purpose == QueryPurpose::Repair && !self.neighbours.contains_key(&query.target) {
            // Silent when probed: dead (unless news of it arrived meanwhile).
            let heard_since = self
                .members
                .record(query.target)
                .is_some_and(|r| r.heard_at > query.sent);
            if !heard_since {
                self.member_died(now, query.target);
            }
        }
    }

    /// Learn latencies, then query the most promising non-neighbours for their routing tables.
    pub(crate) fn improve_tick(&mut self, now: Time) {
        let timeout = self.config.probe_timeout;
        self.pending
            .retain(|_, p| now.saturating_since(p.1) < timeout);
        self.holdoff.retain(|_, until| now < *until);
        if !self.joined || self.leaving_since.is_some() {
            return;
        }
        let others: Vec<(Slot, NodeId)> = self
            .members
            .existing()
            .filter(|&(s, r)| {
                s != SELF_SLOT && r.status == Status::Alive && !self.neighbours.contains_key(&s)
            })
            .map(|(s, r)| (s, r.id))
            .collect();
        // Explore: ping members whose latency is unknown.
        let mut unknown: Vec<NodeId> = others
            .iter()
            .filter(|(_, id)| self.prober.rtt(*id).is_none())
            .map(|&(_, id)| id)
            .collect();
        unknown.shuffle(&mut self.rng);
        for id in unknown.into_iter().take(self.config.explore_per_tick) {
            self.drive_prober(now, |p, now| {
                p.handle_command(now, ProberCommand::ProbeNow(id))
            });
        }
        // Links chosen before latencies are known are chosen blind: wait until most members
        // have been measured (a joiner has its join link meanwhile).
        let known = others
            .iter()
            .filter(|(_, id)| self.prober.rtt(*id).is_some())
            .count();
        if !self.neighbours.is_empty()
            && (known as f64) < self.config.explore_first * others.len() as f64
        {
            return;
        }
        // Candidates, nearest first: below minimum degree any member; otherwise members whose
        // mesh route is over `stretch_add` times their direct latency (the spanner rule).
        let below_min = self.neighbours.len() < self.config.min_degree;
        let stretch_add = self.config.stretch_add;
        // The latency horizon grows from the moment this member started: short links are
        // considered before long ones, as a greedy spanner considers them (globally shortest
        // first), so long links are added only where the short ones left a gap.
        let horizon_us = self.started_at.map_or(u64::MAX, |t| {
            (now.saturating_since(t).as_secs_f64() * self.config.horizon_growth.as_micros() as f64)
                as u64
        });
        let mut near: Vec<(u64, Slot)> = others
            .iter()
            .filter(|&&(s, _)| !self.pending.contains_key(&s) && !self.held_off(now, s))
            .filter_map(|&(s, id)| {
                let direct = self.prober.rtt(id)?.as_micros() as u64 / 2;
                let stretched = self
                    .routing
                    .latency_to(s)
                    .is_none_or(|c| c as f64 > stretch_add * direct.max(1) as f64);
                (below_min || (stretched && direct <= horizon_us)).then_some((direct, s))
            })
            .collect();
        near.sort_unstable();
        let want = if below_min {
            self.config.improve_candidates.max(3)
        } else {
            self.config.improve_candidates
        };
        let mut chosen: Vec<Slot> = near.iter().take(want).map(|&(_, s)| s).collect();
        // Otherwise, now and then, the paper's random probe keeps looking for shortcuts.
        if chosen.is_empty() && !others.is_empty() && self.rng.random_bool(0.3) {
            let (s, _) = others[self.rng.random_range(0..others.len())];
            if !self.pending.contains_key(&s) && !self.held_off(now, s) {
                chosen.push(s);
            }
        }
        for slot in chosen {
            self.send_query(now, slot, QueryPurpose::Improve);
        }
    }

    /// Drop the least useful link if its consensus cost is below the drop threshold and the
    /// mesh stays connected as far as this member can tell.
    pub(crate) fn drop_tick(&mut self, now: Time) {
        let degree = self.neighbours.len();
        if degree <= self.config.min_degree || self.leaving_since.is_some() {
            return;
        }
        // The paper's rule: the consensus cost is below the drop threshold.
        if let Some((cost, n)) = self.weakest_link(now, |n| self.consensus_cost(n))
            && (cost as f64)
                < self
                    .config
                    .drop_threshold(self.members.alive_count(), degree)
        {
            self.stats.links_dropped += 1;
            self.drop_link(now, n);
            return;
        }
        // Value: a link whose loss would barely lengthen any route, and that the other end
        // routes few members over, is not worth a place in the degree bound.
        if let Some((value, n)) = self.weakest_link(now, |n| self.link_value(n)) {
            let their_use = self.routing.count_through_me(n) as f64;
            let threshold = self
                .config
                .drop_threshold(self.members.alive_count(), degree);
            if value < self.config.drop_value && their_use < 2.0 * threshold {
                self.stats.links_dropped += 1;
                self.drop_link(now, n);
                return;
            }
        }
        // The spanner's drop rule: the longest link whose other end the mesh reaches within
        // `stretch_drop` times its latency without it (`stretch_add` for provisional links made
        // to join or repair) is redundant. `stretch_drop` < `stretch_add`, so a link added by
        // the spanner rule is not dropped next.
        let links = self.link_costs();
        let members = &self.members;
        let mut redundant: Vec<(u32, Slot)> = self
            .neighbours
            .iter()
            .filter(|(_, nb)| {
                !nb.leaving && now.saturating_since(nb.since) >= self.config.link_min_age
            })
            .filter_map(|(&n, nb)| {
                let direct = nb.cost_us().max(1);
                let (_, alternative) = self
                    .routing
                    .best_without(n, n, &links, |s| members.is_routable(s))?;
                let stretch = if nb.provisional {
                    self.config.stretch_add
                } else {
                    self.config.stretch_drop
                };
                (f64::from(alternative) <= stretch * f64::from(direct)).then_some((direct, n))
            })
            .collect();
        redundant.sort_unstable_by(|a, b| b.cmp(a));
        // The longest redundant link goes; provisional ones all go (they were never chosen).
        for (i, &(_, n)) in redundant.iter().enumerate() {
            let provisional = self.neighbours.get(&n).is_some_and(|nb| nb.provisional);
            if (i == 0 || provisional)
                && self.neighbours.len() > self.config.min_degree
                && self.partition_safe(n)
            {
                self.stats.links_dropped += 1;
                self.drop_link(now, n);
            }
        }
    }

    /// Whether dropping the link to `n` leaves `n` and every member routed through it reachable
    /// as far as this member can tell.
    fn partition_safe(&self, n: Slot) -> bool {
        let links = self.link_costs();
        let members = &self.members;
        let routable = |s: Slot| members.is_routable(s);
        std::iter::once(n)
            .chain(
                self.routing
                    .routes()
                    .filter(|(_, r)| r.next_hop == n)
                    .map(|(d, _)| d),
            )
            .all(|d| self.routing.reachable_without(d, n, &links, routable))
    }

    /// Members declared dead first hand are probed again with exponential backoff (up to half a
    /// minute): after a network partition heals, the cut-off side answers and is linked again
    /// within seconds instead of waiting for the partition queue.
    fn reprobe_suspects(&mut self, now: Time) {
        let max = std::time::Duration::from_secs(30);
        let revived: Vec<Slot> = self
            .suspects
            .keys()
            .copied()
            .filter(|&s| {
                self.members.is_alive(s)
                    || self.neighbours.contains_key(&s)
                    || self.members.record(s).is_none()
            })
            .collect();
        for s in revived {
            self.suspects.remove(&s);
        }
        let due: Vec<Slot> = self
            .suspects
            .iter()
            .filter(|(_, (at, _))| *at <= now)
            .map(|(&s, _)| s)
            .collect();
        for s in due {
            if let Some((at, interval)) = self.suspects.get_mut(&s) {
                *interval = (*interval * 2).min(max);
                *at = now + *interval;
            }
            self.send_query(now, s, QueryPurpose::Repair);
        }
    }

    /// Partition repair: queue members not heard from for Tm; probe the head for certain after
    /// a bound, otherwise with probability |Q| / N.
    pub(crate) fn repair_tick(&mut self, now: Time) {
        if !self.joined || self.leaving_since.is_some() {
            return;
        }
        self.reprobe_suspects(now);
        let timeout = self.config.member_timeout;
        let stale: Vec<Slot> = self
            .members
            .existing()
            .filter(|&(s, r)| {
                s != SELF_SLOT
                    && r.status == Status::Alive
                    && !self.neighbours.contains_key(&s)
                    && now.saturating_since(r.heard_at) >= timeout
            })
            .map(|(s, _)| s)
            .collect();
        self.partition_queue.retain(|s, _| stale.contains(s));
        for s in stale {
            self.partition_queue.entry(s).or_insert(now);
        }
        let Some((&head, &since)) = self.partition_queue.iter().min_by_key(|&(s, t)| (*t, *s))
        else {
            return;
        };
        let forced = now.saturating_since(since) >= self.config.queue_max_wait;
        let chance = self.partition_queue.len() as f64 / self.members.alive_count().max(1) as f64;
        if forced || self.rng.random_bool(chance.clamp(0.0, 1.0)) {
            self.partition_queue.remove(&head);
            self.stats.repair_probes += 1;
            self.send_query(now, head, QueryPurpose::Repair);
        }
    }
}
