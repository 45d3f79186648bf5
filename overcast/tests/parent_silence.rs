//! A child finds a dead parent by the silence of its stream (`silence_check_in_after`): sooner
//! than the parent timeout when the parent dies, and never when the stream only pauses.

mod lab;

use std::time::Duration;

use lab::{Lab, id, secs};
use overcast::Event;

/// The streaming lab; `silence` is the rule's floor (zero: off).
fn streaming_lab(silence: Duration) -> Lab {
    Lab::streaming(|c| c.silence_check_in_after = silence)
}

/// Crash the non-root node with the largest subtree at 30.5 s; the seconds until each of its
/// children reported its parent lost.
fn detection_after_crash(silence: Duration) -> Vec<f64> {
    let mut lab = streaming_lab(silence);
    lab.run_until(secs(30.0));
    assert!(lab.tree_problems().is_empty(), "{:?}", lab.tree_problems());
    let victim = (1..12)
        .max_by_key(|&i| (lab.node(i).table().live_count(), i))
        .unwrap();
    let orphans: Vec<usize> = lab
        .node(victim)
        .children()
        .map(|c| lab.index_of(c))
        .collect();
    assert!(!orphans.is_empty(), "the victim has children");
    lab.sim.take_events();
    lab.crash(secs(30.5), victim);
    lab.run_until(secs(40.0));
    let events = lab.sim.take_events();
    orphans
        .iter()
        .map(|&o| {
            events
                .iter()
                .find(|e| {
                    e.member == o
                        && matches!(e.event, Event::ParentLost { parent } if parent == id(victim))
                })
                .map(|e| e.at.saturating_since(secs(30.5)).as_secs_f64())
                .expect("every orphan lost its parent")
        })
        .collect()
}

#[test]
fn a_dead_parent_is_found_by_its_silence_within_about_a_second() {
    let on = detection_after_crash(Duration::from_millis(200));
    let off = detection_after_crash(Duration::ZERO);
    let worst_on = on.iter().copied().fold(0.0, f64::max);
    let best_off = off.iter().copied().fold(f64::INFINITY, f64::min);
    // Rule on: the 200 ms silence and three check-ins 200 ms apart (the lab's round trips are
    // under 60 ms). Off: the parent timeout, 2 s, checked at one-second check-ins.
    assert!(worst_on < 1.0, "with the rule: {on:?}");
    assert!(best_off > 2.0, "without it: {off:?}");
}

#[test]
fn a_stream_that_pauses_costs_a_check_in_and_no_parent() {
    let mut lab = streaming_lab(Duration::from_millis(200));
    lab.run_until(secs(30.0));
    assert!(lab.tree_problems().is_empty(), "{:?}", lab.tree_problems());
    lab.sim.take_events();
    // The stream stops at 60 s: every node checks in once and stays where it is.
    lab.run_until(secs(80.0));
    let events = lab.sim.take_events();
    let lost: Vec<_> = events
        .iter()
        .filter(|e| matches!(e.event, Event::ParentLost { .. }))
        .collect();
    assert!(lost.is_empty(), "{lost:?}");
    for i in 1..12 {
        let stats = lab.node(i).stats();
        assert_eq!(stats.silent_parents_lost, 0, "node {i}");
        assert!(
            (1..=2).contains(&stats.silence_check_ins),
            "node {i}: {} silence check-ins",
            stats.silence_check_ins
        );
    }
}
