//! The simulator driving real state machines over a real topology: probers on a Waxman map.
//! (The transport semantics and faults are tested beside the simulator, in `overlay-core`.)

use overlay_core::{Time, TrafficClass};
use probe::{Prober, ProberCommand, ProberConfig, ProberEvent};

use super::*;
use crate::network::{AccessSpec, Network};
use crate::topology;

fn waxman(members: usize) -> Network {
    let topo = topology::load("waxman:routers=300,links=900,seed=4").unwrap();
    Network::build(topo, members, &AccessSpec::parse("fixed").unwrap(), 2).unwrap()
}

fn prober_run(seed: u64) -> (Vec<Emitted<ProberEvent>>, Simulator<Prober, Network>) {
    let members = 12;
    let mut sim = Simulator::new(
        waxman(members),
        SimConfig {
            seed,
            ..SimConfig::default()
        },
    );
    for i in 0..members {
        let config = ProberConfig {
            seed: sim.member_seed(i),
            ..ProberConfig::default()
        };
        sim.add_member(
            i,
            Prober::new(Simulator::<Prober, Network>::member_id(i), config),
        );
    }
    for i in 0..members {
        for k in 1..=3 {
            let peer = Simulator::<Prober, Network>::member_id((i + k) % members);
            sim.schedule_command(Time::ZERO, i, ProberCommand::Watch(peer));
        }
    }
    sim.run_until(Time::from_secs(30));
    (sim.take_events(), sim)
}

#[test]
fn probers_measure_the_model_rtt_exactly() {
    let (events, sim) = prober_run(1);
    let members = 12;
    for i in 0..members {
        for k in 1..=3 {
            let j = (i + k) % members;
            let expected = sim.network().unicast_delay(i, j) + sim.network().unicast_delay(j, i);
            let rtt = sim
                .member(i)
                .unwrap()
                .rtt(Simulator::<Prober, Network>::member_id(j))
                .unwrap();
            assert_eq!(rtt, expected, "{i} -> {j}");
        }
    }
    // About 30 pings per watched peer, each answered: 12 × 3 × ~30 samples, no losses.
    let samples = events
        .iter()
        .filter(|e| matches!(e.event, ProberEvent::Rtt { .. }))
        .count();
    assert!((12 * 3 * 27..=12 * 3 * 34).contains(&samples), "{samples}");
    assert!(
        events
            .iter()
            .all(|e| matches!(e.event, ProberEvent::Rtt { .. }))
    );
    // Pings and pongs are probe traffic, charged their encoded size; every ping was answered
    // except those still in flight at the end (at most one per watched peer).
    let traffic = sim.traffic();
    assert_eq!(traffic.bytes_of(TrafficClass::Control), 0);
    let stats = (0..members).map(|i| sim.member(i).unwrap().stats());
    let (sent, answered) = stats.fold((0, 0), |(s, a), st| {
        (s + st.pings_sent, a + st.pings_answered)
    });
    assert_eq!(traffic.messages[1], sent + answered);
    assert!(
        samples as u64 <= sent && samples as u64 + 36 >= sent,
        "{samples} of {sent}"
    );
    assert_eq!(traffic.dropped, 0);
}

#[test]
fn same_seed_replays_bit_for_bit() {
    let (a, sim_a) = prober_run(7);
    let (b, sim_b) = prober_run(7);
    let (c, _) = prober_run(8);
    assert_eq!(a, b);
    assert_eq!(sim_a.traffic(), sim_b.traffic());
    assert_eq!(sim_a.processed(), sim_b.processed());
    assert_ne!(a, c, "the seed reaches the protocols' jitter");
}
