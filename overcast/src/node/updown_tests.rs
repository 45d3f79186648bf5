use overlay_core::{NodeId, Time};

use crate::OvercastConfig;
use crate::certificate::{CertBody, Certificate, DeathCause, NodeInfo, SimulatedSignatures};
use crate::node::core::Core;

fn id(i: u64) -> NodeId {
    NodeId::from_index(i)
}

/// Node 1 under node 0, with child 2 and grandchild 3 (no news pending).
fn node_with_subtree() -> Core {
    let mut cx = Core::new(
        id(1),
        OvercastConfig::default(),
        Box::new(SimulatedSignatures::new(1, id(1))),
        Box::new(SimulatedSignatures::new(1, id(1))),
    );
    cx.parent = Some(id(0));
    cx.ancestors = vec![id(0)];
    cx.on_attach(Time::ZERO, id(2), 1, NodeInfo::default(), false);
    let signer = SimulatedSignatures::new(1, id(2));
    let birth = CertBody::Birth {
        node: id(3),
        seq: 1,
        info: NodeInfo::default(),
    };
    cx.take_certificates(id(2), vec![Certificate::new(birth, id(2), &signer)]);
    assert!(cx.table.get(&id(3)).is_some_and(|e| e.alive()));
    cx.pending.clear();
    cx
}

fn departures(cx: &Core) -> Vec<NodeId> {
    cx.pending
        .iter()
        .filter_map(|c| match c.body {
            CertBody::Death {
                node,
                cause: DeathCause::Moved { .. },
                ..
            } => Some(node),
            _ => None,
        })
        .collect()
}

#[test]
fn check_ins_sooner_than_half_an_interval_do_not_count_toward_a_full_listing() {
    // Child 2's digest disagrees (it leaves out grandchild 3). Four check-ins within
    // 600 ms, as a child sends when its stream goes silent, compare the digest twice.
    let mut cx = node_with_subtree();
    let wrong = crate::table::Digest::default();
    assert_ne!(cx.table.digest_under(&id(2)), wrong);
    let at = |ms: u64| Time::ZERO + std::time::Duration::from_millis(ms);
    for ms in [0, 200, 400, 600] {
        cx.on_check_in(at(ms), id(2), Vec::new(), wrong, 0);
    }
    assert_eq!(cx.stats.resyncs, 0);
    // The next one a second later is the third comparison in a row: ask for the listing.
    cx.on_check_in(at(1600), id(2), Vec::new(), wrong, 0);
    assert_eq!(cx.stats.resyncs, 1);
}

#[test]
fn a_departure_goes_up_only_to_below_where_the_old_and_new_places_meet() {
    // Child 2 moves (with 3) to a place that meets this one's at the parent, 0: the parent
    // hears of it from the new side; nothing goes up from here.
    let mut cx = node_with_subtree();
    cx.on_detach(id(2), 1, id(7), Some(id(0)), Vec::new());
    assert!(cx.table.get(&id(3)).is_some_and(|e| !e.alive()));
    assert_eq!(departures(&cx), vec![]);
    assert_eq!(cx.stats.departures_stopped, 2);

    // Meeting higher up (or unknown): the parent must hear of both.
    for meet in [Some(id(5)), None] {
        let mut cx = node_with_subtree();
        cx.on_detach(id(2), 1, id(7), meet, Vec::new());
        let mut gone = departures(&cx);
        gone.sort();
        assert_eq!(gone, vec![id(2), id(3)]);
        assert_eq!(cx.stats.departures_stopped, 0);
    }
}

#[test]
fn a_move_inside_a_childs_subtree_goes_up_only_if_its_information_is_news() {
    // Grandchild 3 is born again under child 2 (it moved inside 2's subtree), its content
    // a little further on: the ancestors know where it is, so nothing goes up.
    let mut cx = node_with_subtree();
    let signer = SimulatedSignatures::new(1, id(2));
    let born = |seq, info| {
        let body = CertBody::Birth {
            node: id(3),
            seq,
            info,
        };
        vec![Certificate::new(body, id(2), &signer)]
    };
    let step = cx.config.content_report_step;
    let a_little = NodeInfo {
        content: step / 2,
        ..NodeInfo::default()
    };
    cx.take_certificates(id(2), born(2, a_little));
    assert!(cx.pending.is_empty());
    assert_eq!(cx.stats.arrivals_stopped, 1);
    assert_eq!(cx.table.get(&id(3)).map(|e| e.seq), Some(2));

    // A step of content, or bandwidth beyond the band, is news an `Extra` would carry.
    let grown = NodeInfo {
        content: step,
        ..NodeInfo::default()
    };
    let narrower = NodeInfo {
        path_bw: 1_000_000,
        ..a_little
    };
    for (seq, info) in [(3, grown), (4, narrower)] {
        cx.take_certificates(id(2), born(seq, info));
        assert_eq!(cx.pending.len(), 1, "birth {seq} goes up");
        cx.pending.clear();
    }
    assert_eq!(cx.stats.arrivals_stopped, 1);

    // A node new here (not alive under child 2 before) goes up as ever.
    let newcomer = CertBody::Birth {
        node: id(4),
        seq: 1,
        info: a_little,
    };
    cx.take_certificates(id(2), vec![Certificate::new(newcomer, id(2), &signer)]);
    assert_eq!(cx.pending.len(), 1);
}

#[test]
fn a_departure_from_below_stops_here_when_the_parent_is_the_meeting_point() {
    // 3 (under child 2) moved to a place meeting this one's at 0: 2's departure news
    // changes this table but goes no further.
    let mut cx = node_with_subtree();
    let signer = SimulatedSignatures::new(1, id(2));
    let moved = |meet| CertBody::Death {
        node: id(3),
        seq: 1,
        cause: DeathCause::Moved {
            new_parent: id(7),
            mover: id(3),
            meet,
        },
    };
    cx.take_certificates(
        id(2),
        vec![Certificate::new(moved(Some(id(0))), id(2), &signer)],
    );
    assert!(cx.table.get(&id(3)).is_some_and(|e| !e.alive()));
    assert_eq!(departures(&cx), vec![]);

    let mut cx = node_with_subtree();
    cx.take_certificates(
        id(2),
        vec![Certificate::new(moved(Some(id(9))), id(2), &signer)],
    );
    assert_eq!(departures(&cx), vec![id(3)]);
}

fn extra_reports(cx: &Core) -> usize {
    cx.pending
        .iter()
        .filter(|c| matches!(c.body, CertBody::Extra { .. }))
        .count()
}

#[test]
fn a_sliding_first_byte_is_reported_by_the_content_step_and_a_restart_at_once() {
    let mut cx = node_with_subtree();
    cx.config.content_report_step = 1000;
    let report_with_first = |cx: &mut Core, first: u64| {
        cx.pending.clear();
        cx.store = Some((first, false));
        cx.report_extra(Time::ZERO);
        extra_reports(cx)
    };
    // The window slides a little each interval: nothing until it moved a whole step.
    assert_eq!(report_with_first(&mut cx, 1000), 1);
    assert_eq!(report_with_first(&mut cx, 1400), 0);
    assert_eq!(report_with_first(&mut cx, 1999), 0);
    assert_eq!(report_with_first(&mut cx, 2000), 1);
    // Back (a new stream): at once.
    assert_eq!(report_with_first(&mut cx, 10), 1);
    assert_eq!(report_with_first(&mut cx, 10), 0);
}

#[test]
fn a_sample_has_the_about_nodes_then_the_nearest_by_landmark_then_distinct_random_ones() {
    let mut cx = node_with_subtree();
    // Nodes 10..60 below child 2, node i at i ms from the landmark and i Mbit/s.
    let signer = SimulatedSignatures::new(1, id(2));
    let births = (10..60)
        .map(|i| {
            let info = NodeInfo {
                landmark_rtt_us: u32::try_from(i * 1000).unwrap(),
                path_bw: i,
                ..NodeInfo::default()
            };
            let birth = CertBody::Birth {
                node: id(i),
                seq: 1,
                info,
            };
            Certificate::new(birth, id(2), &signer)
        })
        .collect();
    cx.take_certificates(id(2), births);
    // Asker 30 (itself never in the answer), about 55 and 99 (unknown), near 40 ms.
    for round in 0..20 {
        let sample = cx.sample_table(10, id(30), 40_000, &[id(55), id(99)]);
        assert_eq!(sample.len(), 10, "round {round}");
        assert_eq!(sample[0], (id(55), 55));
        // Half the other nine, four, nearest 40 ms: 40, then 39 and 41, then 38 or 42.
        let near: Vec<NodeId> = sample[1..5].iter().map(|s| s.0).collect();
        assert_eq!(near[0], id(40), "round {round}");
        let mut beside = [near[1], near[2]];
        beside.sort();
        let mut want = [id(39), id(41)];
        want.sort();
        assert_eq!(beside, want, "round {round}");
        assert!([id(38), id(42)].contains(&near[3]), "round {round}");
        let mut ids: Vec<NodeId> = sample.iter().map(|s| s.0).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 10, "a node twice: round {round}");
        assert!(!ids.contains(&id(30)));
        // Child 2 and grandchild 3 reported no bandwidth; the others their own number.
        assert!(
            sample
                .iter()
                .all(|(n, bw)| [id(2), id(3)].contains(n) || id(*bw) == *n)
        );
    }
}
