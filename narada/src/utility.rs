//! What a link is worth, computed over the routing table alone: Narada's *utility* of adding a
//! link, the *consensus cost* of an existing one, and the *value* of keeping one. The mesh uses
//! them to add, drop and swap links; they are plain functions so each rule can be tested on a
//! table built by hand.

use std::collections::BTreeMap;

use crate::members::{SELF_SLOT, Slot};
use crate::metric::{MetricKind, PathMetric};
use crate::routing::{LinkCost, RoutingTable};

/// Narada's utility of a link from `candidate` with metric `link`: the sum over members of the
/// improvement the link would bring, in the metric's order (relative latency gain for latency;
/// relative bandwidth gain, then latency, for the bandwidth metrics). `their_costs` is the
/// candidate's route to each member (in this member's slots); `counts` says which members count
/// (the live ones). The candidate itself is reached by the link alone.
pub(crate) fn utility(
    kind: MetricKind,
    routing: &RoutingTable,
    counts: impl Fn(Slot) -> bool,
    candidate: Slot,
    link: PathMetric,
    their_costs: &[(Slot, Option<PathMetric>)],
) -> f64 {
    let mut utility = 0.0;
    for &(m, cost) in their_costs {
        if m == SELF_SLOT || !counts(m) {
            continue;
        }
        let Some(cost) = cost.or_else(|| (m == candidate).then_some(PathMetric::ZERO)) else {
            continue;
        };
        utility += kind.gain(routing.metric_to(m), cost.extend(link));
    }
    utility
}

/// The consensus cost of the link to neighbour `n`: the number of members routed over it by the
/// end that uses it most (this member's routes via `n`, or `n`'s routes through this member).
pub(crate) fn consensus_cost(routing: &RoutingTable, n: Slot) -> usize {
    routing.count_via(n).max(routing.count_through_me(n))
}

/// The value of the existing link to `n`, measured like the utility of adding it: the sum over
/// the members routed through `n` of how much worse their best route without `n` is (by the
/// metric's gain), with `links` the member's links and `routable` the members a path may cross.
pub(crate) fn link_value(
    kind: MetricKind,
    routing: &RoutingTable,
    links: &BTreeMap<Slot, LinkCost>,
    routable: impl Fn(Slot) -> bool,
    n: Slot,
) -> f64 {
    routing
        .routes()
        .filter(|(_, r)| r.next_hop == n)
        .map(|(d, r)| {
            let alternative = routing.best_without(d, n, links, &routable);
            kind.gain(alternative.map(|(m, _)| m), r.metric)
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use overlay_core::Time;

    use super::*;
    use crate::routing::{Advert, Tolerance};

    const TOL: Tolerance = Tolerance::EXACT;

    fn latency(us: u32) -> PathMetric {
        PathMetric {
            width: PathMetric::UNBOUNDED,
            dist: us,
        }
    }

    fn link(us: u32) -> LinkCost {
        LinkCost {
            metric: latency(us),
            latency_us: us,
            leaving: false,
            full: false,
            shed: false,
            shed_own: false,
            room_level: 0,
        }
    }

    /// This member has neighbours 1 (10 ms) and 2 (30 ms); 1 advertises member 3 at 10 ms and
    /// member 4 at 50 ms, 2 advertises 4 at 5 ms; 2 routes to member 3 through this member.
    fn table() -> (RoutingTable, BTreeMap<Slot, LinkCost>) {
        let mut t = RoutingTable::new(MetricKind::Latency);
        let advert = |us, path: Vec<Slot>| {
            Some(Advert {
                metric: latency(us),
                latency_us: us,
                path: path.into(),
            })
        };
        t.apply(1, 3, advert(10_000, vec![3]), 64).unwrap();
        t.apply(1, 4, advert(50_000, vec![4]), 64).unwrap();
        t.apply(2, 4, advert(5_000, vec![4]), 64).unwrap();
        t.apply(2, 3, advert(20_000, vec![SELF_SLOT, 1, 3]), 64)
            .unwrap();
        let links = BTreeMap::from([(1, link(10_000)), (2, link(30_000))]);
        t.recompute(Time::ZERO, &links, |_| true, TOL);
        (t, links)
    }

    #[test]
    fn utility_sums_the_relative_gain_of_each_member_the_link_brings_closer() {
        let (t, _) = table();
        // Member 3 is 20 ms away (via 1); a 5 ms link to candidate 5, which reaches 3 in 5 ms
        // and 4 in 100 ms, makes 3 10 ms away: a gain of one half. 4 stays 35 ms away (via 2).
        // The candidate itself, unknown so far, gains 1.
        let costs = [
            (3, Some(latency(5_000))),
            (4, Some(latency(100_000))),
            (5, None),
        ];
        let u = utility(MetricKind::Latency, &t, |_| true, 5, latency(5_000), &costs);
        assert!((u - 1.5).abs() < 1e-9, "{u}");
        // Members that do not count (dead) add nothing.
        let u = utility(
            MetricKind::Latency,
            &t,
            |m| m != 5,
            5,
            latency(5_000),
            &costs,
        );
        assert!((u - 0.5).abs() < 1e-9, "{u}");
    }

    #[test]
    fn consensus_cost_is_the_use_of_the_end_that_uses_the_link_most() {
        let (t, _) = table();
        // This member routes 1 and 3 via 1; 1 routes nothing through it.
        assert_eq!(consensus_cost(&t, 1), 2);
        // This member routes 2 and 4 via 2; 2 routes one member (3) through it.
        assert_eq!(consensus_cost(&t, 2), 2);
        assert_eq!(consensus_cost(&t, 9), 0);
    }

    #[test]
    fn link_value_is_what_its_members_would_lose_without_it() {
        let (t, links) = table();
        // Without 1: member 1 is reached via nothing else (gain 1, unreachable); member 3
        // neither (2's route to it crosses this member).
        let v = link_value(MetricKind::Latency, &t, &links, |_| true, 1);
        assert!((v - 2.0).abs() < 1e-9, "{v}");
        // Without 2: member 2 is unreachable (1); member 4 goes from 35 ms to 60 ms via 1:
        // the gain of 35 over 60 is 25/60.
        let v = link_value(MetricKind::Latency, &t, &links, |_| true, 2);
        assert!((v - (1.0 + 25.0 / 60.0)).abs() < 1e-9, "{v}");
    }
}
