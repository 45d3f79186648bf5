//! `run baselines` end to end: the accounting sanity checks of the issue, determinism, every kind
//! of topology, and errors from the command line.

use std::path::{Path, PathBuf};
use std::process::Command;

use experiments::scenario::CommonArgs;
use experiments::scenario::baselines::{self, BaselinesArgs};

fn data(path: &str) -> String {
    format!("{}/../data/{path}", env!("CARGO_MANIFEST_DIR"))
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("esm-baselines-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn args(topology: &str, members: usize, seed: u64, out: &Path) -> BaselinesArgs {
    BaselinesArgs {
        common: CommonArgs {
            topology: topology.to_owned(),
            members,
            seed,
            access: "simblock:year=2019".to_owned(),
            out: Some(out.to_owned()),
        },
        rate: "1.2mbps".parse().unwrap(),
        sources: None,
        overlay_degree: 6,
        spanner_stretch: 2.0,
    }
}

#[test]
fn waxman_1024_with_128_members_has_unicast_stress_127_on_the_uplink_and_multicast_stress_1() {
    let out = scratch("waxman");
    let s = baselines::run(&args("waxman:routers=1024,links=3145,seed=1", 128, 1, &out)).unwrap();
    assert_eq!(s.unicast.stress_max, Some(127));
    assert_eq!(s.unicast.stress_max_on_source_uplink, Some(true));
    assert_eq!(s.ip_multicast.stress_max, Some(1));
    assert_eq!(s.ip_multicast.stress_mean, Some(1.0));
    assert_eq!((s.unicast.rdp_p50, s.unicast.rdp_max), (1.0, 1.0));
    assert!(
        s.unicast.ru_ratio.unwrap() > 1.5,
        "unicast wastes links: {:?}",
        s.unicast.ru_ratio
    );
    assert!(
        s.unicast.bw_ratio_mean < 0.5,
        "127 copies cannot fit a home uplink"
    );
    for file in [
        "summary.json",
        "receivers.csv",
        "sources.csv",
        "stress.csv",
        "stress.svg",
        "receiver_bandwidth.svg",
    ] {
        assert!(out.join(file).is_file(), "{file} missing");
    }
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    for key in [
        "rdp_p50",
        "rdp_p90",
        "stress_max",
        "stress_mean",
        "ru_ratio",
    ] {
        assert!(json["unicast"][key].is_number(), "unicast.{key}");
    }
    for key in ["stress_max", "ru_ms"] {
        assert!(json["ip_multicast"][key].is_number(), "ip_multicast.{key}");
    }
    // What any overlay could reach: the bounds lie below the central spanner's own trees.
    let o = s.overlay.expect("overlay references at degree 6");
    let (mst, spanner_ru) = (o.mst_ru_ratio.unwrap(), o.spanner.ru_ratio.unwrap());
    assert!(
        mst > 0.0 && mst <= spanner_ru,
        "MST {mst} vs spanner {spanner_ru}"
    );
    assert!(o.rdp_bound_p50 >= 1.0 && o.rdp_bound_p50 <= o.spanner.rdp_p50);
    assert!(o.rdp_bound_p90 >= o.rdp_bound_p50 && o.rdp_bound_p90 <= o.spanner.rdp_p90);
    assert_eq!(o.spanner.reachable_fraction, 1.0);
    assert!(o.spanner.mean_degree <= 6.0);
}

#[test]
fn same_seed_gives_byte_identical_summaries() {
    let (a, b, c) = (scratch("det-a"), scratch("det-b"), scratch("det-c"));
    let spec = "waxman:routers=300,links=900,seed=2";
    baselines::run(&args(spec, 40, 5, &a)).unwrap();
    baselines::run(&args(spec, 40, 5, &b)).unwrap();
    baselines::run(&args(spec, 40, 6, &c)).unwrap();
    let read = |d: &Path, f: &str| std::fs::read(d.join(f)).unwrap();
    for file in ["summary.json", "receivers.csv", "stress.csv", "stress.svg"] {
        assert_eq!(read(&a, file), read(&b, file), "{file}");
    }
    assert_ne!(read(&a, "summary.json"), read(&c, "summary.json"));
}

#[test]
fn every_topology_kind_runs() {
    let cases = [
        "transit-stub:nodes=600,seed=1".to_owned(),
        format!("topohub:{}", data("topology/topozoo-Geant2012.json")),
        format!("topohub:{}", data("topology/caida-2024-08-as3215.json")),
    ];
    for (i, spec) in cases.iter().enumerate() {
        let s = baselines::run(&args(spec, 32, 3, &scratch(&format!("kind{i}")))).unwrap();
        assert_eq!(s.unicast.stress_max, Some(31), "{spec}");
        assert_eq!(s.ip_multicast.stress_max, Some(1), "{spec}");
    }
    // A matrix has no physical links: stress and resource usage are not defined.
    let spec = format!(
        "matrix:{}",
        data("latency/wondernetwork-2018-242cities-rtt-ms.csv")
    );
    let s = baselines::run(&args(&spec, 50, 3, &scratch("matrix"))).unwrap();
    assert_eq!(s.unicast.stress_max, None);
    assert_eq!(s.unicast.ru_ratio, None);
    assert_eq!(s.unicast.rdp_p90, 1.0);
    assert!(s.unicast.delay_ms_p50 > 20.0);
}

#[test]
fn the_command_line_reports_bad_input_clearly() {
    let exe = env!("CARGO_BIN_EXE_experiments");
    let run = |args: &[&str]| Command::new(exe).args(args).output().unwrap();
    let out = run(&[
        "run",
        "baselines",
        "--topology",
        "waxman:routers=50,links=10",
        "--out",
        "/tmp/never",
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("links must be between 49"), "{stderr}");

    let out = run(&["topology", "--topology", "topohub:/no/such/map.json"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/no/such/map.json: cannot read"));

    let out = run(&[
        "run",
        "baselines",
        "--members",
        "1",
        "--topology",
        "waxman:routers=20,links=40",
    ]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 2 members"));

    let matrix = format!(
        "matrix:{}",
        data("latency/wondernetwork-2018-242cities-rtt-ms.csv")
    );
    let out = run(&["topology", "--topology", &matrix, "--members", "20"]);
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("hosts 242") && stdout.contains("triangle-inequality violations"),
        "{stdout}"
    );
}
