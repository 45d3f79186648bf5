//! Finding better links: latencies to non-neighbours, table queries to the most promising,
//! and the decision to link (the spanner rule, the paper's utility rule, swaps when full), with
//! bandwidth probed only where it could matter.

use std::collections::BTreeMap;
use std::time::Duration;

use overlay_core::{Bandwidth, NodeId, Time};
use probe::ProberCommand;
use rand::RngExt;
use rand::seq::SliceRandom;

use super::{Candidate, LinkAsk, Mesh, Query, QueryPurpose, TheirTable};
use crate::NaradaConfig;
use crate::core::Core;
use crate::costs::{Fingerprint, PackedCosts, fingerprint};
use crate::data::DataPlane;
use crate::members::{SELF_SLOT, Slot, Status};
use crate::message::{LinkReason, Message};
use crate::metric::PathMetric;
use crate::node::Timer;
use crate::routing::{LinkCost, Tolerance};
use crate::utility::{link_value, utility};

impl Mesh {
    /// Send a table query to `slot`.
    pub(crate) fn send_query(
        &mut self,
        cx: &mut Core,
        now: Time,
        slot: Slot,
        purpose: QueryPurpose,
    ) {
        if self.queries.values().any(|q| q.target == slot) {
            return;
        }
        let nonce = cx.rng.random::<u64>();
        let digest = cx.members.live_digest();
        self.queries.insert(
            nonce,
            Query {
                target: slot,
                sent: now,
                purpose,
            },
        );
        cx.timers.set(
            Timer::QueryExpire(nonce),
            now + cx.config.repair.probe_timeout,
        );
        cx.send(slot, Message::TableQuery { nonce, digest });
    }

    pub(crate) fn on_table_query(&self, cx: &mut Core, from: NodeId, nonce: u64, digest: u64) {
        let mine = cx.members.live_digest();
        let live = cx.members.sorted_live().to_vec();
        let costs: Vec<Option<PathMetric>> =
            live.iter().map(|&s| cx.routing.metric_to(s)).collect();
        let costs = PackedCosts::pack(&costs);
        let members = (mine != digest).then(|| {
            live.iter()
                .filter_map(|&s| cx.members.id_of(s))
                .map(|id| fingerprint(nonce, &id))
                .collect()
        });
        let degree = u16::try_from(cx.neighbours.len()).unwrap_or(u16::MAX);
        cx.outbox.send(
            from,
            Message::TableReply {
                nonce,
                degree,
                costs,
                members,
            },
        );
    }

    pub(crate) fn on_table_reply(
        &mut self,
        cx: &mut Core,
        data: &mut DataPlane,
        now: Time,
        from: Slot,
        nonce: u64,
        table: TheirTable,
    ) {
        let TheirTable {
            degree: their_degree,
            costs,
            members,
        } = table;
        if self.queries.get(&nonce).is_none_or(|q| q.target != from) {
            cx.stats.unmatched_replies += 1;
            return;
        }
        let Some(query) = self.queries.remove(&nonce) else {
            return;
        };
        cx.timers.cancel(Timer::QueryExpire(nonce));
        if costs.len() > cx.config.membership.max_table_entries {
            cx.stats.oversized += 1;
            return;
        }
        let rtt_us =
            u32::try_from(now.saturating_since(query.sent).as_micros()).unwrap_or(u32::MAX);
        self.partition_queue.remove(&from);
        if cx.neighbours.contains_key(&from) || self.pending.contains_key(&from) {
            return;
        }
        if query.purpose == QueryPurpose::Repair {
            // It answers: a silent member that lives gets a link, which repairs a partition if
            // there is one.
            if self.has_room(cx, LinkReason::Repair) {
                let ask = LinkAsk {
                    reason: LinkReason::Repair,
                    rtt_us,
                    utility: 0.0,
                };
                self.request_link(cx, now, from, ask, None);
            }
            return;
        }
        let their_costs: Vec<(Slot, Option<PathMetric>)> = match members {
            None => {
                let live = cx.members.sorted_live().to_vec();
                if live.len() != costs.len() {
                    cx.stats.unmatched_replies += 1;
                    return;
                }
                live.into_iter().zip(costs).collect()
            }
            Some(members) => {
                if members.len() != costs.len() {
                    cx.stats.unmatched_replies += 1;
                    return;
                }
                let known = Self::fingerprinted_live(cx, nonce);
                members
                    .iter()
                    .zip(costs)
                    .filter_map(|(f, c)| known.get(f).copied().flatten().map(|s| (s, c)))
                    .collect()
            }
        };
        let candidate = Candidate {
            their_costs,
            rtt_us,
            their_degree,
        };
        if !cx.config.routing.metric.uses_bandwidth() {
            self.evaluate(cx, now, from, &candidate, PathMetric::UNBOUNDED);
            return;
        }
        // Bandwidth matters, but probes are costly (the paper found them 92% of its overhead):
        // probe only a candidate that reaches some source this member receives more widely
        // than this member does (it does well and could help), only if the link would be wanted
        // even at full bandwidth, and never while this member's own access link is the limit.
        let full = cx.config.bandwidth.bandwidth_levels;
        if !Self::could_widen(cx, data, &candidate.their_costs) {
            // Only latency is at stake: no probe; the link is measured once it exists.
            self.evaluate(cx, now, from, &candidate, full);
            return;
        }
        if Self::wanted(cx, from, &candidate, full).is_none()
            || Self::access_is_bottleneck(cx, data, now)
        {
            return;
        }
        let fresh = self
            .probed
            .get(&from)
            .filter(|(_, at)| now.saturating_since(*at) < cx.config.bandwidth.reprobe_interval);
        if let Some(&(bandwidth, _)) = fresh {
            let width = cx.width_of(bandwidth);
            self.evaluate(cx, now, from, &candidate, width);
            return;
        }
        cx.probe_bandwidth(from);
        self.awaiting_probe.insert(from, candidate);
    }

    /// This member's live members by their fingerprints under `nonce` (`None`: two share it,
    /// so neither can be told).
    pub(crate) fn fingerprinted_live(
        cx: &mut Core,
        nonce: u64,
    ) -> BTreeMap<Fingerprint, Option<Slot>> {
        let mut known = BTreeMap::new();
        for &s in cx.members.sorted_live().to_vec().iter() {
            let Some(id) = cx.members.id_of(s) else {
                continue;
            };
            known
                .entry(fingerprint(nonce, &id))
                .and_modify(|e| *e = None)
                .or_insert(Some(s));
        }
        known
    }

    /// Whether a candidate with routes `their_costs` reaches a source this member receives with
    /// more bandwidth than this member does.
    fn could_widen(
        cx: &Core,
        data: &DataPlane,
        their_costs: &[(Slot, Option<PathMetric>)],
    ) -> bool {
        their_costs.iter().any(|&(m, cost)| {
            let receiving = m != SELF_SLOT && data.carries(m);
            let mine = cx.routing.metric_to(m).map_or(0, |r| r.width);
            receiving && cost.is_some_and(|c| c.width > mine)
        })
    }

    /// Decide on a candidate whose table arrived, with `width` the bandwidth level of the link
    /// from it.
    fn evaluate(
        &mut self,
        cx: &mut Core,
        now: Time,
        from: Slot,
        candidate: &Candidate,
        width: u16,
    ) {
        if cx.neighbours.contains_key(&from) || self.pending.contains_key(&from) {
            return;
        }
        let Some((reason, utility)) = Self::wanted(cx, from, candidate, width) else {
            return;
        };
        let direct_us = candidate.rtt_us / 2;
        let ask = LinkAsk {
            reason,
            rtt_us: candidate.rtt_us,
            utility,
        };
        if self.has_room(cx, reason) {
            self.request_link(cx, now, from, ask, None);
        } else if let Some(old) = swap_target(cx, now, utility, direct_us) {
            self.request_link(cx, now, from, ask, Some(old));
        }
    }

    /// Whether a link from `from` (its table in `candidate`, its bandwidth level `width`) is
    /// wanted, and why, with its utility.
    fn wanted(
        cx: &Core,
        from: Slot,
        candidate: &Candidate,
        width: u16,
    ) -> Option<(LinkReason, f64)> {
        let direct_us = candidate.rtt_us / 2;
        let link = Self::candidate_link(cx, from, direct_us, width);
        let utility = utility(
            cx.config.routing.metric,
            &cx.routing,
            |m| cx.counts(m),
            from,
            link,
            &candidate.their_costs,
        );
        let degree = cx.neighbours.len();
        let below_min = degree < cx.config.mesh.min_degree;
        // The spanner rule: the mesh route is much longer than the direct path (a light gate on
        // utility keeps useless links out); otherwise the paper's rule: utility over a threshold
        // that grows with group size and degree.
        let stretch = cx.routing.latency_to(from).map_or(f64::INFINITY, |c| {
            f64::from(c) / f64::from(direct_us.max(1))
        });
        let wanted = below_min
            || (stretch > cx.config.mesh.stretch_add && utility > cx.config.mesh.add_base)
            || utility
                > cx.config.mesh.add_threshold(
                    cx.members.alive_count(),
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
    fn candidate_link(cx: &Core, candidate: Slot, latency_us: u32, width: u16) -> PathMetric {
        let me = cx.me();
        let peer = cx.members.id_of(candidate).unwrap_or(me);
        cx.config.routing.metric.link(latency_us, width, &me, &peer)
    }

    /// Whether what arrives here already fills this member's own download: then its access
    /// link limits it and probing others cannot help (the paper's first heuristic).
    pub(crate) fn access_is_bottleneck(cx: &Core, data: &mut DataPlane, now: Time) -> bool {
        let Some(download) = cx.config.bandwidth.download else {
            return false;
        };
        data.arriving_rate(now)
            .is_some_and(|r| r.bps_f64() >= 0.9 * download.bps_f64())
    }

    /// A bandwidth measurement arrived (a probe's result, or the driver's own estimate), while
    /// data arrived here from elsewhere at `arriving` (see [`Core::download_filled`]).
    pub(crate) fn on_bandwidth_measured(
        &mut self,
        cx: &mut Core,
        now: Time,
        peer: NodeId,
        bandwidth: Bandwidth,
        arriving: Option<Bandwidth>,
    ) {
        let Some(slot) = cx.members.slot_of(&peer) else {
            return;
        };
        let filled = cx.download_filled(bandwidth, arriving);
        let bandwidth = filled.map_or(bandwidth, |d| bandwidth.max(d));
        self.probed.insert(slot, (bandwidth, now));
        if let Some(nb) = cx.neighbours.get_mut(&slot) {
            let before = nb.bandwidth.level();
            match filled {
                Some(download) => nb.bandwidth.on_ceiling(now, download),
                None => nb.bandwidth.on_probe(now, bandwidth),
            }
            // A doubted link (see `Core::doubt_idle_links`) measured no wider than a busy link
            // into this member carries: the same bottleneck, most likely; it stays doubted.
            if let Some(doubt) = nb.doubted_above {
                if filled.is_none()
                    && bandwidth.bps_f64() < crate::core::DOUBT_CLEARED_ABOVE * doubt.bps_f64()
                {
                    nb.bandwidth.doubt(now, doubt);
                } else {
                    nb.doubted_above = None;
                }
            }
            nb.probed_at = Some(now);
            if nb.bandwidth.level() != before {
                cx.reroute(now);
            }
        }
        if let Some(candidate) = self.awaiting_probe.remove(&slot) {
            let width = cx.width_of(bandwidth);
            self.evaluate(cx, now, slot, &candidate, width);
        }
    }

    /// Learn latencies, then query the most promising non-neighbours for their routing tables.
    pub(crate) fn improve_tick(&mut self, cx: &mut Core, now: Time) {
        let timeout = cx.config.repair.probe_timeout;
        self.pending
            .retain(|_, p| now.saturating_since(p.1) < timeout);
        self.holdoff.retain(|_, until| now < *until);
        if !cx.life.joined || cx.life.leaving_since.is_some() {
            return;
        }
        // Each other live member with its measured round trip, looked up once (pinging the
        // unknown ones below measures nothing before this tick ends).
        let others: Vec<(Slot, NodeId, Option<Duration>)> = cx
            .members
            .existing()
            .filter(|&(s, r)| {
                s != SELF_SLOT && r.status == Status::Alive && !cx.neighbours.contains_key(&s)
            })
            .map(|(s, r)| (s, r.id, cx.prober.rtt(r.id)))
            .collect();
        // Explore: ping members whose latency is unknown.
        let mut unknown: Vec<NodeId> = others
            .iter()
            .filter(|(_, _, rtt)| rtt.is_none())
            .map(|&(_, id, _)| id)
            .collect();
        unknown.shuffle(&mut cx.rng);
        for id in unknown.into_iter().take(cx.config.mesh.explore_per_tick) {
            cx.command_prober(now, ProberCommand::ProbeNow(id));
        }
        // Links chosen before latencies are known are chosen blind: wait until most members
        // have been measured (a joiner has its join link meanwhile).
        let known = others.iter().filter(|(_, _, rtt)| rtt.is_some()).count();
        if !cx.neighbours.is_empty()
            && (known as f64) < cx.config.mesh.explore_first * others.len() as f64
        {
            return;
        }
        // Candidates, nearest first: below minimum degree any member; otherwise members whose
        // mesh route is over `stretch_add` times their direct latency (the spanner rule).
        let below_min = cx.neighbours.len() < cx.config.mesh.min_degree;
        let stretch_add = cx.config.mesh.stretch_add;
        // The latency horizon grows from the moment this member started: short links are
        // considered before long ones, as a greedy spanner considers them (globally shortest
        // first), so long links are added only where the short ones left a gap.
        let horizon_us = cx.life.started_at.map_or(u64::MAX, |t| {
            (now.saturating_since(t).as_secs_f64()
                * cx.config.mesh.horizon_growth.as_micros() as f64) as u64
        });
        let mut near: Vec<(u64, Slot)> = others
            .iter()
            .filter(|&&(s, _, _)| !self.pending.contains_key(&s) && !self.held_off(now, s))
            .filter_map(|&(s, _, rtt)| {
                let direct = rtt?.as_micros() as u64 / 2;
                let stretched = cx
                    .routing
                    .latency_to(s)
                    .is_none_or(|c| c as f64 > stretch_add * direct.max(1) as f64);
                (below_min || (stretched && direct <= horizon_us)).then_some((direct, s))
            })
            .collect();
        near.sort_unstable();
        let want = if below_min {
            cx.config.mesh.improve_candidates.max(3)
        } else {
            cx.config.mesh.improve_candidates
        };
        let mut chosen: Vec<Slot> = near.iter().take(want).map(|&(_, s)| s).collect();
        // Otherwise, now and then, the paper's random probe keeps looking for shortcuts.
        if chosen.is_empty() && !others.is_empty() && cx.rng.random_bool(0.3) {
            let (s, _, _) = others[cx.rng.random_range(0..others.len())];
            if !self.pending.contains_key(&s) && !self.held_off(now, s) {
                chosen.push(s);
            }
        }
        for slot in chosen {
            self.send_query(cx, now, slot, QueryPurpose::Improve);
        }
    }
}

/// The link to give up for a new one of `utility` and one-way latency `direct_us`: the link of
/// least value, if that value is under `1 / swap_ratio` of the new link's utility and the new
/// link is shorter (so swaps make the mesh lighter, never heavier) — or, under a bandwidth
/// metric, if every neighbour this member has is a poor parent: full, giving a stream under
/// half its rate. Without that, a slow host whose nearest neighbours are all slow hosts stays
/// in an island that cannot relay it anything (`run conferencing --senders 4 --seed 11`: one
/// receiver at 0.2-0.4 of what its paths allow in three runs of nine).
pub(super) fn swap_target(cx: &Core, now: Time, utility: f64, direct_us: u32) -> Option<Slot> {
    let links = cx.link_costs();
    let members = &cx.members;
    let (value, worst) = super::prune::weakest_link(cx, now, |n| {
        link_value(
            cx.config.routing.metric,
            &cx.routing,
            &links,
            |s| members.is_routable(s),
            n,
        )
    })?;
    let worst_us = cx.neighbours.get(&worst)?.cost_us();
    let island = in_an_island(&cx.config, links.values());
    (utility > cx.config.mesh.swap_ratio * value && (direct_us < worst_us || island))
        .then_some(worst)
}

/// Whether a member with mesh links `links` is in an island under a bandwidth metric: it has
/// links, and every one leads to a poor parent (a full neighbour that gives a new stream under
/// half the rate), so no route through any of them can carry a stream.
fn in_an_island<'a>(config: &NaradaConfig, links: impl IntoIterator<Item = &'a LinkCost>) -> bool {
    let poor = |l: &LinkCost| l.full && l.room_level < config.bandwidth.bandwidth_levels / 2;
    let mut links = links.into_iter().peekable();
    config.routing.metric.uses_bandwidth() && links.peek().is_some() && links.all(poor)
}

/// Probe links that lost bandwidth and carry no data, so their recovery is noticed, while the
/// recovery could improve something: some source reaches this member at less than full
/// bandwidth, or the link was once wider, the neighbour has upload to spare and it offers a
/// full-width route to a source this member receives that would be clearly shorter than its
/// own. After a congestion episode, routes moved to wide detours, and without the second case
/// they stayed there: `run conferencing` seeds 1-10, bandwidth-latency's resource usage at the
/// end of the run was 1.56 of the minimum spanning tree on average, against 1.40 in the same
/// runs without the episode; with it, and such a probe replacing the estimate when it finds
/// more ([`probe::LinkBandwidth::await_recovery`]), 1.47 (and 1.44 -> 1.40 under other
/// protocol seeds). Also probe once a new link, or one known only by the lower bounds of
/// carrying less than the stream rate (a link a stream came over before it was ever probed
/// would otherwise look narrower than idle links probed full, and trees would avoid the links
/// in use). Never when bandwidth does not matter, nor while this member's own access link is
/// the limit.
pub(crate) fn reprobe_links(cx: &mut Core, data: &mut DataPlane, now: Time) {
    if !cx.config.routing.metric.uses_bandwidth() || Mesh::access_is_bottleneck(cx, data, now) {
        return;
    }
    let full = cx.config.bandwidth.bandwidth_levels;
    let short = data
        .sources()
        .any(|s| s != SELF_SLOT && cx.routing.metric_to(s).is_none_or(|m| m.width < full));
    let interval = cx.config.bandwidth.reprobe_interval;
    let links = cx.link_costs();
    // Each link to probe, and whether only a shorter route makes it worth it (the probe then
    // tells whether the link recovered, and a recovered link's probe replaces its estimate).
    let stale: Vec<(Slot, bool)> = cx
        .neighbours
        .iter()
        .filter_map(|(&n, nb)| {
            let degraded = nb.bandwidth.level().is_some_and(|l| l < full);
            let idle = nb.received_bytes == 0;
            let due = nb
                .probed_at
                .is_none_or(|t| now.saturating_since(t) >= interval);
            let recovery = || {
                nb.bandwidth.lost_bandwidth()
                    && links
                        .get(&n)
                        .filter(|link| !link.full)
                        .is_some_and(|link| would_be_nearer(cx, data, n, link, full))
            };
            if degraded && idle && due {
                if short {
                    return Some((n, false));
                }
                if recovery() {
                    return Some((n, true));
                }
            }
            let first = nb.probed_at.is_none()
                && (nb.bandwidth.level().is_none() || nb.bandwidth.only_lower_bounds());
            first.then_some((n, false))
        })
        .collect();
    for (n, recovery) in stale {
        if let Some(nb) = cx.neighbours.get_mut(&n) {
            nb.probed_at = Some(now);
            if recovery {
                nb.bandwidth.await_recovery();
            }
        }
        cx.probe_bandwidth(n);
    }
}

/// Whether the route through neighbour `n` to some source this member receives would, were
/// `link` full again, be of full width `full` and clearly shorter than this member's route
/// (the switching tolerance's margin): what a recovered link to it would be worth. The route is
/// routing's own candidate (no dead hop, not through this member, within the delay budget).
fn would_be_nearer(cx: &Core, data: &DataPlane, n: Slot, link: &LinkCost, full: u16) -> bool {
    let tolerance = cx.tolerance();
    let recovered = recovered(link, full);
    let members = &cx.members;
    let routable = |s: Slot| members.is_routable(s);
    data.sources().any(|s| {
        s != SELF_SLOT
            && nearer_through(
                cx.routing.latency_to(s),
                cx.routing.candidate(n, &recovered, s, &routable),
                full,
                &tolerance,
            )
    })
}

/// `link` as it would be at full width `full`, the rest unchanged.
fn recovered(link: &LinkCost, full: u16) -> LinkCost {
    LinkCost {
        metric: PathMetric {
            width: full,
            ..link.metric
        },
        ..*link
    }
}

/// One source's part of [`would_be_nearer`]: this member's latency to it now (`None`: no
/// route, nothing to compare with) against the route through the neighbour (metric and
/// latency; `None`: unusable). Only a full-width route counts, and only when it is shorter by
/// more than the switching tolerance.
fn nearer_through(
    current_us: Option<u32>,
    through: Option<(PathMetric, u32)>,
    full: u16,
    tolerance: &Tolerance,
) -> bool {
    let (Some(current), Some((metric, us))) = (current_us, through) else {
        return false;
    };
    metric.width >= full && us.saturating_add(tolerance.of(current)) < current
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MetricKind;

    fn config(metric: MetricKind) -> NaradaConfig {
        let mut config = NaradaConfig::default();
        config.routing.metric = metric;
        config
    }

    /// A link to a neighbour that is full (or not) and gives a new stream `room_level` of 10
    /// levels.
    fn link(full: bool, room_level: u16) -> LinkCost {
        LinkCost {
            metric: PathMetric::ZERO,
            latency_us: 20_000,
            leaving: false,
            full,
            shed: false,
            shed_own: false,
            room_level,
        }
    }

    #[test]
    fn a_recovered_link_is_worth_probing_only_for_a_clearly_shorter_full_route() {
        let tolerance = Tolerance {
            fraction: 0.1,
            floor_us: 500,
            width_levels: 1,
            width_levels_from: 5,
            near_fraction: 0.0,
        };
        let through = |width: u16, latency_us: u32| {
            Some((
                PathMetric {
                    width,
                    dist: latency_us,
                },
                latency_us,
            ))
        };
        let check = |current: Option<u32>, t: Option<(PathMetric, u32)>| {
            nearer_through(current, t, 10, &tolerance)
        };
        // 80 ms through the neighbour against 150 ms now: clearly shorter, at full width.
        assert!(check(Some(150_000), through(10, 80_000)));
        // 80 ms against 88 ms: inside the tolerance (8.8 ms + 0.5 ms), not worth a probe.
        assert!(!check(Some(88_000), through(10, 80_000)));
        // Narrower than full: no full route to gain.
        assert!(!check(Some(150_000), through(9, 80_000)));
        // No route to compare with, or none through the neighbour.
        assert!(!check(None, through(10, 80_000)));
        assert!(!check(Some(150_000), None));
    }

    #[test]
    fn the_route_a_recovered_link_would_give_is_routings_own() {
        use crate::routing::{Advert, RoutingTable};
        let members = |s: Slot| s != 9; // member 9 is dead
        let mut t = RoutingTable::new(MetricKind::BandwidthLatency);
        let advert = |path: &[Slot]| Advert {
            metric: PathMetric {
                width: 10,
                dist: 60_000,
            },
            latency_us: 60_000,
            path: path.iter().copied().collect(),
        };
        t.apply(2, 3, Some(advert(&[7, 3])), 64).unwrap();
        t.apply(2, 4, Some(advert(&[SELF_SLOT, 4])), 64).unwrap();
        t.apply(2, 5, Some(advert(&[9, 5])), 64).unwrap();
        let narrow = LinkCost {
            metric: PathMetric {
                width: 3,
                dist: 20_000,
            },
            ..link(false, 0)
        };
        let recovered = recovered(&narrow, 10);
        // Through the recovered link: 20 + 60 ms at full width; through the narrow one, level 3.
        let (m, us) = t.candidate(2, &recovered, 3, &members).unwrap();
        assert_eq!((m.width, us), (10, 80_000));
        assert_eq!(t.candidate(2, &narrow, 3, &members).unwrap().0.width, 3);
        // A path through this member, or through a dead one, is no route at all.
        assert!(t.candidate(2, &recovered, 4, &members).is_none());
        assert!(t.candidate(2, &recovered, 5, &members).is_none());
    }

    #[test]
    fn a_member_whose_every_neighbour_is_a_poor_parent_is_in_an_island() {
        let bw = config(MetricKind::BandwidthLatency);
        // Three slow hosts, full at 3 or 1 levels of 10: an island.
        let slow = [link(true, 3), link(true, 1), link(true, 3)];
        assert!(in_an_island(&bw, &slow));
        // One neighbour with room, or a full one still giving most of a stream: not.
        let with_room = [link(true, 3), link(false, 0)];
        assert!(!in_an_island(&bw, &with_room));
        let rich_full = [link(true, 3), link(true, 6)];
        assert!(!in_an_island(&bw, &rich_full));
        // No links, or the latency metric (no widths, no upload rooms): never.
        assert!(!in_an_island(&bw, &[]));
        assert!(!in_an_island(&config(MetricKind::Latency), &slow));
    }
}
