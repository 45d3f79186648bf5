//! Narada in the simulator: a small seeded group meets the papers' tree-quality thresholds, and
//! random sequences of joins, leaves, crashes and partitions never break the invariants.

use std::path::PathBuf;
use std::time::Duration;

use experiments::group::narada::NaradaGroup;
use experiments::network::{AccessSpec, Network};
use experiments::scenario::CommonArgs;
use experiments::scenario::narada::{self as narada_scenario, NaradaArgs};
use experiments::scenario::narada_dynamics::{self, DynamicsArgs};
use experiments::topology;
use experiments::tree::DeliveryTree;
use narada::{Command, NaradaConfig};
use overlay_core::Time;
use proptest::prelude::*;

fn scratch(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("esm-narada-{}-{name}", std::process::id()))
}

#[test]
fn a_small_group_builds_good_trees_and_delivers_the_stream() {
    let args = NaradaArgs {
        common: CommonArgs {
            topology: "waxman:routers=300,links=900,seed=2".to_owned(),
            members: 32,
            seed: 3,
            access: "simblock:year=2019".to_owned(),
            out: Some(scratch("small")),
        },
        duration: Duration::from_secs(120),
        rate: "1.2mbps".parse().unwrap(),
        packet_bytes: 1000,
        join_window: Duration::from_secs(5),
        sample_every: Duration::from_secs(20),
        narada_config: None,
    };
    let s = narada_scenario::run(&args).unwrap();
    assert_eq!(s.reachable_fraction, 1.0);
    assert_eq!(s.routing_loops, 0);
    assert!(s.rdp_p90 < 3.0, "rdp p90 {}", s.rdp_p90);
    assert!(
        s.stress_max.unwrap() * 3 <= s.unicast_stress_max.unwrap(),
        "stress {:?}",
        s.stress_max
    );
    assert!(s.ru_ratio.unwrap() < 1.6, "ru {:?}", s.ru_ratio);
    assert!(
        s.stream_delivery_ratio > 0.999,
        "delivery {}",
        s.stream_delivery_ratio
    );
    assert!(s.mesh_degree_max <= 7);
    assert!(s.control_kbps_per_member < 16.0);
    // The kinds of control add up to the whole, and route news is among them.
    let by_kind: f64 = s.control_kbps_by_kind.values().sum();
    assert!(
        (by_kind - s.control_kbps_per_member).abs() < 1e-3,
        "by kind {by_kind} against {}",
        s.control_kbps_per_member
    );
    assert!(
        s.control_kbps_by_kind
            .get("update")
            .is_some_and(|&k| k > 0.0)
    );
}

/// A small group through churn and a 20 s partition: the two sides are linked again within
/// seconds of the heal. These two seeds took 7 and 12 s when members that lost their links
/// together reprobed them in step, up to 30 s apart (the stream 0.98 and 0.94 delivered).
#[test]
fn a_small_group_repairs_a_partition_within_seconds_of_the_heal() {
    for seed in [1, 5] {
        let args = DynamicsArgs {
            common: CommonArgs {
                topology: "waxman:routers=300,links=900,seed=2".to_owned(),
                members: 24,
                seed,
                access: "simblock:year=2019".to_owned(),
                out: Some(scratch(&format!("partition-{seed}"))),
            },
            duration: Duration::from_secs(100),
            rate: "1.2mbps".parse().unwrap(),
            packet_bytes: 1000,
            crash_fraction: 0.2,
            leave_fraction: 0.05,
            join_fraction: 0.1,
            churn_at: Duration::from_secs(20),
            partition_at: Duration::from_secs(50),
            partition_for: Duration::from_secs(20),
            join_grace: Duration::from_secs(5),
            narada_config: None,
        };
        let s = narada_dynamics::run(&args).unwrap();
        let repair = s.partition_repair_s.expect("the partition was repaired");
        assert!(
            repair <= 4.0,
            "seed {seed}: repaired {repair} s after the heal"
        );
        assert!(
            s.delivery_ratio > 0.99,
            "seed {seed}: delivery {}",
            s.delivery_ratio
        );
    }
}

#[derive(Clone, Debug)]
enum Step {
    Crash(usize),
    Leave(usize),
    Join(usize),
    Partition(u32),
    Heal,
    Wait(u64),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (1usize..12).prop_map(Step::Crash),
        (1usize..12).prop_map(Step::Leave),
        (12usize..16).prop_map(Step::Join),
        any::<u32>().prop_map(Step::Partition),
        Just(Step::Heal),
        (1u64..20).prop_map(Step::Wait),
    ]
}

fn group(seed: u64) -> NaradaGroup {
    let topo = topology::load("waxman:routers=120,links=360,seed=5").unwrap();
    let net = Network::build(topo, 16, &AccessSpec::parse("fixed").unwrap(), seed).unwrap();
    NaradaGroup::new(net, &NaradaConfig::default(), seed)
}

/// No forwarding loop for any live source, and degrees within bounds.
fn check_invariants(g: &NaradaGroup) -> Result<(), TestCaseError> {
    let config = NaradaConfig::default();
    for s in (0..16).filter(|&s| g.is_live(s)) {
        prop_assert!(
            DeliveryTree::new(s, g.forwarding_parents(s)).is_ok(),
            "forwarding loop for source {}",
            s
        );
    }
    for d in g.degrees() {
        prop_assert!(d <= config.mesh.max_degree + 1, "degree {}", d);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, max_shrink_iters: 64, ..ProptestConfig::default() })]

    /// Whatever happens, forwarding never loops and degrees stay bounded; once the network has
    /// healed and repair has had time, every live member is in one mesh, reachable from the
    /// source, and receives its packets.
    #[test]
    fn churn_never_breaks_the_mesh_for_long(seed in 0u64..1000, steps in proptest::collection::vec(step(), 1..8)) {
        let mut g = group(seed);
        apply_steps(&mut g, seed, &steps, &mut |g| check_invariants(g))?;
        g.sim.set_partition(None);
        // Repair: suspects are re-probed within 30 s; the partition queue needs Tm + its wait.
        g.run_until(g.sim.now() + Duration::from_secs(150));
        check_invariants(&g)?;
        // The mesh keeps adapting (a link dropped, a route briefly withdrawn), so look for it
        // whole within a few seconds rather than at one instant.
        let mut whole = g.mesh_whole();
        for _ in 0..10 {
            if whole {
                break;
            }
            g.run_until(g.sim.now() + Duration::from_secs(1));
            whole = g.mesh_whole();
        }
        prop_assert!(whole, "mesh not whole after repair time");
        // Every live member starts receiving within half a second and, from then on, misses
        // nothing but the stream's last half second (a route that changes just as the stream
        // starts or ends may cost a receiver packets it cannot know it missed: gaps show only
        // between packets received; inside the stream they are repaired).
        let start = g.sim.now();
        g.schedule_stream(0, start, start + Duration::from_secs(2), 400_000.0, 500);
        g.run_until(start + Duration::from_secs(4));
        let sent: Vec<(u64, Time)> = g.published.clone();
        for m in (1..16).filter(|&m| g.is_live(m)) {
            let first = sent.iter().position(|&(seq, _)| g.log.has(m, seq));
            prop_assert!(first.is_some_and(|i| sent[i].1 <= start + Duration::from_millis(500)), "member {} started late", m);
            for &(seq, at) in &sent[first.unwrap_or(0)..] {
                if at + Duration::from_millis(500) < start + Duration::from_secs(2) {
                    prop_assert!(g.log.has(m, seq), "member {} missed packet {}", m, seq);
                }
            }
        }
    }
}

/// Form a 12-member group, then play `steps`, checking after each.
fn apply_steps(
    g: &mut NaradaGroup,
    seed: u64,
    steps: &[Step],
    check: &mut dyn FnMut(&NaradaGroup) -> Result<(), TestCaseError>,
) -> Result<(), TestCaseError> {
    g.schedule_joins(
        &(0..12).collect::<Vec<_>>(),
        Time::ZERO,
        Duration::from_secs(3),
    );
    g.run_until(Time::from_secs(40));
    let mut joined: Vec<usize> = (0..12).collect();
    let mut rng_pick = seed;
    for s in steps {
        let now = g.sim.now();
        match *s {
            Step::Crash(m) if g.is_live(m) => g.sim.crash(m),
            Step::Leave(m) if g.is_live(m) => g.sim.schedule_command(now, m, Command::Leave),
            Step::Join(m) if !joined.contains(&m) => {
                joined.push(m);
                let live: Vec<_> = (0..16).filter(|&x| g.is_live(x)).collect();
                rng_pick = rng_pick.wrapping_mul(6364136223846793005).wrapping_add(1);
                let via = live[(rng_pick >> 33) as usize % live.len()];
                let bootstrap =
                    vec![experiments::sim::Simulator::<narada::Narada, Network>::member_id(via)];
                g.sim.schedule_command(now, m, Command::Join { bootstrap });
            }
            Step::Partition(bits) => g
                .sim
                .set_partition(Some((0..16).map(|m| (bits >> m) & 1).collect())),
            Step::Heal => g.sim.set_partition(None),
            Step::Wait(secs) => g.run_until(now + Duration::from_secs(secs)),
            _ => {}
        }
        g.run_until(g.sim.now() + Duration::from_secs(1));
        check(g)?;
    }
    Ok(())
}
