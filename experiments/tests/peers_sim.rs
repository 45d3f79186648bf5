//! `run peers`: Narada and iroh-gossip's PlumTree measured alike on one small map; the run
//! replays byte for byte.

use std::path::PathBuf;
use std::time::Duration;

use experiments::scenario::CommonArgs;
use experiments::scenario::peers::{self, PeersArgs};

fn scratch(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("esm-peers-{}-{name}", std::process::id()))
}

fn args(out: &str) -> PeersArgs {
    PeersArgs {
        common: CommonArgs {
            topology: "waxman:routers=300,links=900,seed=2".to_owned(),
            members: 24,
            seed: 3,
            access: "simblock:year=2019".to_owned(),
            out: Some(scratch(out)),
        },
        duration: Duration::from_secs(40),
        rate: "1.2mbps".parse().unwrap(),
        packet_bytes: 1000,
        join_window: Duration::from_secs(5),
        burst: 3,
        crash_fraction: 0.2,
        leave_fraction: 0.05,
        churn_at: Duration::from_secs(15),
        no_churn: false,
        narada_config: None,
        plumtree_config: None,
    }
}

#[test]
fn both_protocols_are_measured_on_the_same_packets_and_narada_is_nearer() {
    let s = peers::run(&args("a")).unwrap();
    let (a, b) = (&s.narada, &s.plumtree);
    for f in [a, b] {
        assert!(f.reachable_fraction > 0.99, "{f:?}");
        assert!(f.stream_delivery_ratio > 0.99, "{}: {f:?}", f.scheme);
        assert!(f.churn_delivery_ratio.is_some(), "{}", f.scheme);
        assert!(f.stress_max.is_some() && f.ru_ratio.is_some(), "{f:?}");
        assert!(
            f.copies_per_delivery > 0.98,
            "about a copy per receiver: {f:?}"
        );
        assert!(f.control_kbps_per_member > 0.0, "{f:?}");
    }
    assert_eq!((s.churn_crashed, s.churn_left), (5, 1));
    // Narada forwards on trees: a duplicate only where a route changed under a packet.
    assert!(a.copies_per_delivery < 1.02, "{a:?}");
    // The goal: Narada's RDP p90 at most half of PlumTree's.
    assert!(
        a.rdp_p90 * 2.0 <= b.rdp_p90,
        "{} against {}",
        a.rdp_p90,
        b.rdp_p90
    );
    let out = args("a").common.out.unwrap();
    for file in ["summary.json", "rdp.csv", "stress.csv", "rdp_cdf.svg"] {
        assert!(out.join(file).exists(), "{file}");
    }
    let again = peers::run(&args("b")).unwrap();
    assert_eq!(
        serde_json::to_string(&s).unwrap(),
        serde_json::to_string(&again).unwrap(),
        "same seed, same figures"
    );
    let _ = std::fs::remove_dir_all(out);
    let _ = std::fs::remove_dir_all(args("b").common.out.unwrap());
}

/// The adapter gives iroh-gossip's core the connections its network layer would: once joins
/// are over, active views are symmetric (a one-sided view is a peer that sends and never hears)
/// and everyone has neighbours.
#[test]
fn plumtree_active_views_are_symmetric_after_the_joins() {
    use experiments::group::plumtree::PlumtreeGroup;
    use overlay_core::Time;

    for seed in 1..=4 {
        let mut common = args("views").common;
        common.members = 48;
        common.seed = seed;
        let net = common.network().unwrap();
        let n = net.members();
        let mut group = PlumtreeGroup::new(net, &iroh_gossip::proto::Config::default(), seed);
        group.schedule_joins(
            &(0..n).collect::<Vec<_>>(),
            Time::ZERO,
            Duration::from_secs(5),
        );
        group.run_until(Time::from_secs(90));
        assert_symmetric(&group, n, seed);
    }
}

fn assert_symmetric(group: &experiments::group::plumtree::PlumtreeGroup, n: usize, seed: u64) {
    use overlay_core::sim::Simulator;
    let id = Simulator::<experiments::group::plumtree::PlumtreeMember, experiments::network::Network>::member_id;
    let views: Vec<Vec<_>> = (0..n)
        .map(|m| group.sim.member(m).unwrap().neighbours().copied().collect())
        .collect();
    let mut one_sided = Vec::new();
    for (m, view) in views.iter().enumerate() {
        assert!(!view.is_empty(), "seed {seed}: member {m} has no neighbour");
        for peer in view {
            let p = (0..n).find(|&p| id(p) == *peer).unwrap();
            if !views[p].contains(&id(m)) {
                one_sided.push((m, p));
            }
        }
    }
    assert!(
        one_sided.is_empty(),
        "seed {seed}: one-sided views: {one_sided:?}"
    );
}
