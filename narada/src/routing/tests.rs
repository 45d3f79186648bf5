//! Tests of the routing table: choice, hysteresis, full relays, delay budget, adverts.

use super::*;

const TOL: Tolerance = Tolerance::EXACT;

fn lat(us: u32) -> PathMetric {
    PathMetric {
        width: PathMetric::UNBOUNDED,
        dist: us,
    }
}

fn links(costs: &[(Slot, u32)]) -> BTreeMap<Slot, LinkCost> {
    costs
        .iter()
        .map(|&(s, c)| {
            (
                s,
                LinkCost {
                    metric: lat(c),
                    latency_us: c,
                    leaving: false,
                    full: false,
                    shed: false,
                    shed_own: false,
                    room_level: 0,
                },
            )
        })
        .collect()
}

fn advert(cost_us: u32, path: &[Slot]) -> Option<Advert> {
    Some(Advert {
        metric: lat(cost_us),
        latency_us: cost_us,
        path: path.into(),
    })
}

#[test]
fn picks_the_cheapest_path_and_never_one_through_itself() {
    let mut t = RoutingTable::default();
    // Neighbours 1 (10 µs away) and 2 (5 µs away); destination 3.
    t.apply(1, 3, advert(10, &[3]), 64).unwrap();
    t.apply(2, 3, advert(30, &[SELF_SLOT, 1, 3]), 64).unwrap(); // through me: unusable
    let changed = t.recompute(Time::ZERO, &links(&[(1, 10), (2, 5)]), |_| true, TOL);
    assert_eq!(changed, vec![1, 2, 3]);
    assert_eq!(
        t.route(3),
        Some(&Route {
            next_hop: 1,
            metric: lat(20),
            latency_us: 20,
            path: [1, 3][..].into()
        })
    );
    assert!(t.routes_through_me(2, 3));
    assert_eq!(t.count_through_me(2), 1);
    assert_eq!(t.count_via(1), 2);
    // Nothing changed: nothing to advertise.
    assert!(
        t.recompute(Time::ZERO, &links(&[(1, 10), (2, 5)]), |_| true, TOL)
            .is_empty()
    );
}

/// Bandwidth-latency links of width 10 and latency `us`, neighbour 1 full or not.
fn wide_links(costs: &[(Slot, u32)], full: Option<Slot>) -> BTreeMap<Slot, LinkCost> {
    costs
        .iter()
        .map(|&(s, us)| {
            let link = LinkCost {
                metric: PathMetric {
                    width: 10,
                    dist: us,
                },
                latency_us: us,
                leaving: false,
                full: full == Some(s),
                shed: false,
                shed_own: false,
                room_level: 0,
            };
            (s, link)
        })
        .collect()
}

fn wide_advert(us: u32, path: &[Slot]) -> Option<Advert> {
    Some(Advert {
        metric: PathMetric {
            width: 10,
            dist: us,
        },
        latency_us: us,
        path: path.into(),
    })
}

#[test]
fn a_full_neighbour_keeps_its_children_and_takes_no_new_ones() {
    let mut t = RoutingTable::new(MetricKind::BandwidthLatency);
    // Neighbour 1 reaches source 3 in 10 ms, neighbour 2 in 40 ms; both as wide.
    t.apply(1, 3, wide_advert(10_000, &[3]), 64).unwrap();
    t.apply(2, 3, wide_advert(40_000, &[3]), 64).unwrap();
    // Not yet a child of 1, and 1 is full: the slower, open neighbour is taken.
    t.recompute(
        Time::ZERO,
        &wide_links(&[(1, 1), (2, 1)], Some(1)),
        |_| true,
        TOL,
    );
    assert_eq!(t.route(3).map(|r| r.next_hop), Some(2));
    // 1 has room: it is better, so this member moves to it.
    t.recompute(
        Time::ZERO,
        &wide_links(&[(1, 1), (2, 1)], None),
        |_| true,
        TOL,
    );
    assert_eq!(t.route(3).map(|r| r.next_hop), Some(1));
    // 1 fills up: this member, already its child, stays.
    t.recompute(
        Time::ZERO,
        &wide_links(&[(1, 1), (2, 1)], Some(1)),
        |_| true,
        TOL,
    );
    assert_eq!(t.route(3).map(|r| r.next_hop), Some(1));
    assert_eq!(t.route(3).map(|r| r.metric.width), Some(10));
    // 1 is over its upload and asks this member to move: it does.
    let mut over = wide_links(&[(1, 1), (2, 1)], Some(1));
    over.get_mut(&1).unwrap().shed = true;
    t.recompute(Time::ZERO, &over, |_| true, TOL);
    assert_eq!(t.route(3).map(|r| r.next_hop), Some(2));
}

#[test]
fn a_relay_sheds_the_streams_it_relays_before_its_own() {
    let mut t = RoutingTable::new(MetricKind::BandwidthLatency);
    // Neighbour 1 is a source and relays source 3; neighbour 2 reaches both, slower.
    t.apply(1, 3, wide_advert(10_000, &[3]), 64).unwrap();
    t.apply(2, 3, wide_advert(40_000, &[3]), 64).unwrap();
    t.apply(2, 1, wide_advert(40_000, &[1]), 64).unwrap();
    let mut links = wide_links(&[(1, 10_000), (2, 1)], None);
    t.recompute(Time::ZERO, &links, |_| true, TOL);
    let hop = |t: &RoutingTable, d| t.route(d).map(|r| r.next_hop);
    assert_eq!((hop(&t, 1), hop(&t, 3)), (Some(1), Some(1)));
    // 1 is over its upload and sheds the streams it relays: the route to 3 moves, the route
    // to 1's own stream stays.
    let one = links.get_mut(&1).unwrap();
    one.full = true;
    one.shed = true;
    t.recompute(Time::ZERO, &links, |_| true, TOL);
    assert_eq!((hop(&t, 1), hop(&t, 3)), (Some(1), Some(2)));
    // Still over, it sheds its own stream too: that route moves as well.
    links.get_mut(&1).unwrap().shed_own = true;
    t.recompute(Time::ZERO, &links, |_| true, TOL);
    assert_eq!((hop(&t, 1), hop(&t, 3)), (Some(2), Some(2)));
}

#[test]
fn a_wide_route_moves_only_for_more_than_the_width_margin_a_narrow_one_for_any_gain() {
    let tol = Tolerance {
        width_levels: 1,
        width_levels_from: 5,
        near_fraction: 0.0,
        ..TOL
    };
    let advert = |width, path: &[Slot]| {
        Some(Advert {
            metric: PathMetric {
                width,
                dist: 10_000,
            },
            latency_us: 10_000,
            path: path.into(),
        })
    };
    let links = wide_links(&[(1, 1), (2, 1)], None);
    let hop_and_width = |t: &RoutingTable| t.route(3).map(|r| (r.next_hop, r.metric.width));
    let mut t = RoutingTable::new(MetricKind::BandwidthLatency);
    t.apply(1, 3, advert(6, &[3]), 64).unwrap();
    t.apply(2, 3, advert(4, &[3]), 64).unwrap();
    t.recompute(Time::ZERO, &links, |_| true, tol);
    assert_eq!(hop_and_width(&t), Some((1, 6)));
    // One level wider through 2 is within the margin of a route half as wide as the stream.
    t.apply(2, 3, advert(7, &[3]), 64).unwrap();
    t.recompute(Time::ZERO, &links, |_| true, tol);
    assert_eq!(hop_and_width(&t), Some((1, 6)));
    t.apply(2, 3, advert(8, &[3]), 64).unwrap();
    t.recompute(Time::ZERO, &links, |_| true, tol);
    assert_eq!(hop_and_width(&t), Some((2, 8)));
    // A route below half the stream takes any wider path.
    t.apply(2, 3, advert(3, &[3]), 64).unwrap();
    t.apply(1, 3, advert(4, &[3]), 64).unwrap();
    t.recompute(Time::ZERO, &links, |_| true, tol);
    assert_eq!(hop_and_width(&t), Some((1, 4)));
}

#[test]
fn among_full_neighbours_the_one_with_more_upload_to_spare_wins() {
    let mut t = RoutingTable::new(MetricKind::BandwidthLatency);
    t.apply(1, 3, wide_advert(10_000, &[3]), 64).unwrap();
    t.apply(2, 3, wide_advert(40_000, &[3]), 64).unwrap();
    // Both full: 1 (nearer) could give a new child 3 levels, 2 could give 9.
    let mut links = wide_links(&[(1, 1), (2, 1)], Some(1));
    links.get_mut(&1).unwrap().room_level = 3;
    let two = links.get_mut(&2).unwrap();
    two.full = true;
    two.room_level = 9;
    t.recompute(Time::ZERO, &links, |_| true, TOL);
    assert_eq!(
        t.route(3).map(|r| (r.next_hop, r.metric.width)),
        Some((2, 9))
    );
    // As 2's child, this member keeps its full width there however full 2 gets.
    links.get_mut(&2).unwrap().room_level = 1;
    t.recompute(Time::ZERO, &links, |_| true, TOL);
    assert_eq!(
        t.route(3).map(|r| (r.next_hop, r.metric.width)),
        Some((2, 10))
    );
    // Shed by 2, it moves to 1, which now offers more.
    links.get_mut(&2).unwrap().shed = true;
    t.recompute(Time::ZERO, &links, |_| true, TOL);
    assert_eq!(
        t.route(3).map(|r| (r.next_hop, r.metric.width)),
        Some((1, 3))
    );
}

#[test]
fn a_path_past_the_delay_budget_is_worth_no_bandwidth() {
    let budget = Some(std::time::Duration::from_millis(300));
    let mut t = RoutingTable::new(MetricKind::BandwidthLatency).with_delay_budget(budget);
    // Through 1: full width but 500 ms; through 2: 80% width in 100 ms.
    t.apply(1, 3, wide_advert(500_000, &[4, 3]), 64).unwrap();
    let narrow = Advert {
        metric: PathMetric {
            width: 8,
            dist: 100_000,
        },
        latency_us: 100_000,
        path: [3][..].into(),
    };
    t.apply(2, 3, Some(narrow), 64).unwrap();
    t.recompute(
        Time::ZERO,
        &wide_links(&[(1, 1), (2, 1)], None),
        |_| true,
        TOL,
    );
    assert_eq!(t.route(3).map(|r| r.next_hop), Some(2));
    // Without a budget, width decides, however long the path.
    let mut paper = RoutingTable::new(MetricKind::BandwidthLatency);
    paper
        .apply(1, 3, wide_advert(500_000, &[4, 3]), 64)
        .unwrap();
    paper.apply(2, 3, t.advert_of(2, 3).cloned(), 64).unwrap();
    paper.recompute(
        Time::ZERO,
        &wide_links(&[(1, 1), (2, 1)], None),
        |_| true,
        TOL,
    );
    assert_eq!(paper.route(3).map(|r| r.next_hop), Some(1));
}

#[test]
fn fails_over_at_once_when_a_neighbour_goes() {
    let mut t = RoutingTable::default();
    t.apply(1, 3, advert(10, &[3]), 64).unwrap();
    t.apply(2, 3, advert(40, &[4, 3]), 64).unwrap();
    t.recompute(Time::ZERO, &links(&[(1, 10), (2, 10)]), |_| true, TOL);
    assert_eq!(t.route(3).unwrap().next_hop, 1);
    t.remove_neighbour(1);
    t.recompute(Time::ZERO, &links(&[(2, 10)]), |_| true, TOL);
    assert_eq!(
        t.route(3),
        Some(&Route {
            next_hop: 2,
            metric: lat(50),
            latency_us: 50,
            path: [2, 4, 3][..].into()
        })
    );
    // A dead member on the remaining path makes the destination unreachable.
    let changed = t.recompute(Time::ZERO, &links(&[(2, 10)]), |s| s != 4, TOL);
    assert_eq!(t.route(3), None);
    assert!(changed.contains(&3));
    assert_eq!(t.advertised(3), None);
}

#[test]
fn an_infeasible_alternative_waits_until_nobody_routes_through_this_member() {
    let mut t = RoutingTable::default();
    t.apply(1, 3, advert(10, &[3]), 64).unwrap();
    // Neighbour 2 reaches 3 through this member (cost 30), and advertised so.
    t.apply(2, 3, advert(30, &[SELF_SLOT, 1, 3]), 64).unwrap();
    t.recompute(Time::ZERO, &links(&[(1, 10), (2, 10)]), |_| true, TOL);
    assert_eq!(t.route(3).unwrap().latency_us, 20);
    // 1 goes; 2 now advertises a path of its own (via 5) at cost 40, but this member does
    // not know yet whether 2 still forwards through it (its old advert says so).
    t.remove_neighbour(1);
    let changed = t.recompute(Time::ZERO, &links(&[(2, 10)]), |_| true, TOL);
    assert_eq!(t.route(3), None, "active: withdrawn");
    assert_eq!(changed, vec![1, 3]);
    assert_eq!(t.next_hold_end(), Some(Time::ZERO + ACTIVE_HOLD));
    // 2's new advert arrives: it no longer routes through this member; 40 >= 20 would not be
    // feasible, but nobody depends on this member now, so it takes it.
    t.apply(2, 3, advert(40, &[5, 3]), 64).unwrap();
    t.recompute(Time::from_millis(50), &links(&[(2, 10)]), |_| true, TOL);
    assert_eq!(t.route(3).unwrap().path.as_slice(), [2, 5, 3]);
    assert_eq!(t.next_hold_end(), None);
}

#[test]
fn hysteresis_keeps_the_current_route_against_small_gains() {
    let tol = Tolerance {
        fraction: 0.1,
        floor_us: 0,
        width_levels: 0,
        width_levels_from: 0,
        near_fraction: 0.0,
    };
    let mut t = RoutingTable::default();
    t.apply(1, 3, advert(100, &[3]), 64).unwrap();
    t.recompute(Time::ZERO, &links(&[(1, 0)]), |_| true, tol);
    t.apply(2, 3, advert(95, &[3]), 64).unwrap();
    t.recompute(Time::ZERO, &links(&[(1, 0), (2, 0)]), |_| true, tol);
    assert_eq!(t.route(3).unwrap().next_hop, 1, "5% better is noise");
    t.apply(2, 3, advert(50, &[3]), 64).unwrap();
    t.recompute(Time::ZERO, &links(&[(1, 0), (2, 0)]), |_| true, tol);
    assert_eq!(t.route(3).unwrap().next_hop, 2);
}

#[test]
fn malformed_adverts_are_refused() {
    let mut t = RoutingTable::default();
    assert_eq!(
        t.apply(1, 3, advert(1, &[4, 3, 4, 3]), 64),
        Err(AdvertError::Loop)
    );
    assert_eq!(
        t.apply(1, 3, advert(1, &[1, 3]), 64),
        Err(AdvertError::Loop)
    );
    assert_eq!(
        t.apply(1, 3, advert(1, &[4]), 64),
        Err(AdvertError::WrongEnd)
    );
    assert_eq!(
        t.apply(1, 3, advert(1, &[]), 64),
        Err(AdvertError::WrongEnd)
    );
    let long: Vec<Slot> = (10..80).chain([3]).collect();
    assert_eq!(
        t.apply(1, 3, advert(1, &long), 64),
        Err(AdvertError::TooLong)
    );
    assert_eq!(t.apply(1, 1, advert(0, &[]), 64), Ok(()));
}

#[test]
fn partition_check_sees_alternatives() {
    let mut t = RoutingTable::default();
    t.apply(1, 3, advert(10, &[3]), 64).unwrap();
    t.apply(2, 3, advert(10, &[1, 3]), 64).unwrap();
    let l = links(&[(1, 1), (2, 1)]);
    assert!(
        !t.reachable_without(3, 1, &l, |_| true),
        "2's path crosses 1"
    );
    t.apply(2, 3, advert(10, &[5, 3]), 64).unwrap();
    assert!(t.reachable_without(3, 1, &l, |_| true));
    assert!(t.reachable_without(2, 1, &l, |_| true));
    // Neighbour 1 itself: reachable through 2 only if 2 advertises a path to it.
    assert!(!t.reachable_without(1, 1, &l, |_| true));
    t.apply(2, 1, advert(10, &[1]), 64).unwrap();
    assert!(t.reachable_without(1, 1, &l, |_| true));
    assert_eq!(t.best_without(1, 1, &l, |_| true), Some((lat(11), 11)));
}

#[test]
fn a_near_enough_path_through_the_nearest_neighbour_wins_and_stays() {
    let near = Tolerance {
        near_fraction: 0.1,
        ..TOL
    };
    // Destination 3: through neighbour 1 (10 ms away) 60 ms, through neighbour 2 (2 ms away)
    // 64 ms, through neighbour 4 (1 ms away) 80 ms.
    let setup = || {
        let mut t = RoutingTable::default();
        t.apply(1, 3, advert(50_000, &[3]), 64).unwrap();
        t.apply(2, 3, advert(62_000, &[3]), 64).unwrap();
        t.apply(4, 3, advert(79_000, &[3]), 64).unwrap();
        t
    };
    let l = links(&[(1, 10_000), (2, 2_000), (4, 1_000)]);
    let mut exact = setup();
    exact.recompute(Time::ZERO, &l, |_| true, TOL);
    assert_eq!(exact.route(3).map(|r| r.next_hop), Some(1), "the best path");
    let mut t = setup();
    t.recompute(Time::ZERO, &l, |_| true, near);
    let route = t.route(3).unwrap();
    assert_eq!(
        (route.next_hop, route.metric.dist),
        (2, 64_000),
        "within 10% of 60 ms, the nearest neighbour; 80 ms is too far"
    );
    // The best path gets better, but the current one is still within 10%: no switch.
    t.apply(1, 3, advert(48_500, &[3]), 64).unwrap();
    t.recompute(Time::ZERO, &l, |_| true, near);
    assert_eq!(t.route(3).map(|r| r.next_hop), Some(2));
    // Now it is not: the nearest of the paths within 10% of 50 ms is through 1 itself.
    t.apply(1, 3, advert(40_000, &[3]), 64).unwrap();
    t.recompute(Time::ZERO, &l, |_| true, near);
    assert_eq!(t.route(3).map(|r| r.next_hop), Some(1));
}
