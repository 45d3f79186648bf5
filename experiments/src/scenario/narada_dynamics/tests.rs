//! Tests of `run narada-dynamics`'s bookkeeping: who is downstream of a failure, and how
//! long its repair took.

use std::time::Duration;

use overlay_core::Time;

use super::{FailureTracker, Presence, downstream_of};

fn ms(ms: u64) -> Time {
    Time::ZERO + Duration::from_millis(ms)
}

#[test]
fn stream_missed_leaves_out_the_delay_of_the_new_path() {
    // Member 0 sends a packet every 100 ms from 0 to 2 s; member 1 crashes at 1 s with 2
    // and 3 below it. 2 is fed again from the packet published at 1.5 s, which takes 300 ms
    // to reach it; 3 from the one at 1.2 s, 50 ms later; 4 was never cut off (20 ms away).
    let published: Vec<(u64, Time)> = (0..20).map(|i| (i, ms(100 * i))).collect();
    let failures = [(ms(1000), 1)];
    let mut arrivals = Vec::new();
    for &(seq, sent) in &published {
        let at = |delay| sent + Duration::from_millis(delay);
        if sent < ms(1000) || sent >= ms(1500) {
            arrivals.push((2, seq, at(300)));
        }
        if sent < ms(1000) || sent >= ms(1200) {
            arrivals.push((3, seq, at(50)));
        }
        arrivals.push((4, seq, at(20)));
    }
    arrivals.sort_by_key(|&(_, _, at)| at);
    let mut track = FailureTracker::default();
    track.take(&arrivals, &published, &failures);
    let presence: Vec<Presence> = (0..5)
        .map(|m| Presence {
            from: Some(Time::ZERO),
            until: if m == 1 { ms(1000) } else { ms(3000) },
        })
        .collect();
    let times = track.repair_times(&failures, &[vec![2, 3]], &presence, 0, ms(3000));
    let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
    // Until every member below received again: 2's packet of 1.5 s arrived at 1.8 s.
    assert!(close(times.downstream[0], 0.8), "{:?}", times.downstream);
    assert!(close(times.all[0], 0.8), "{:?}", times.all);
    // The stream they missed: 2 missed from 1.0 to 1.5 s.
    assert!(
        close(times.outage_downstream[0], 0.5),
        "{:?}",
        times.outage_downstream
    );
    assert_eq!(track.per_failure.len(), 1);
    assert_eq!(track.per_failure[0].outage_downstream_s, Some(0.5));
}

#[test]
fn downstream_follows_chains_through_the_failed_member_only() {
    // 0 is the source; 1 and 2 hang off it; 3 and 4 below 1; 5 below 3; 6 and 7 form a
    // cycle; 8 has no upstream.
    let parents = [
        None,
        Some(0),
        Some(0),
        Some(1),
        Some(1),
        Some(3),
        Some(7),
        Some(6),
        None,
    ];
    assert_eq!(downstream_of(&parents, 1), vec![3, 4, 5]);
    assert_eq!(downstream_of(&parents, 3), vec![5]);
    assert_eq!(downstream_of(&parents, 0), vec![1, 2, 3, 4, 5]);
    assert!(downstream_of(&parents, 5).is_empty());
    assert_eq!(downstream_of(&parents, 6), vec![7]);
    assert!(downstream_of(&parents, 42).is_empty());
}
