//! The anycast scenario on a small seeded map: the hybrid estimate beats random and nearest
//! choice, the equivalent set keeps one server from taking everything, and the same seed gives
//! the same figures.

use clap::Parser;
use experiments::scenario::anycast::{self, AnycastArgs};

#[derive(Debug, Parser)]
struct Run {
    #[command(flatten)]
    args: AnycastArgs,
}

fn args(out: &str) -> AnycastArgs {
    let out = std::env::temp_dir().join(format!("esm-anycast-{}-{out}", std::process::id()));
    Run::parse_from([
        "run",
        "--topology",
        "waxman:routers=200,links=600,seed=4",
        "--members",
        "40",
        "--duration",
        "300s",
        "--seed",
        "5",
        "--out",
        out.to_str().unwrap(),
    ])
    .args
}

#[test]
fn anycast_beats_random_and_nearest_without_herding() {
    let s = anycast::run(&args("a")).unwrap();
    assert!(s.requests > 1000);
    assert!(
        s.mean_rt_anycast_s < s.mean_rt_random_s && s.mean_rt_anycast_s < s.mean_rt_nearest_s,
        "{s:?}"
    );
    assert!(s.mean_rt_oracle_s <= s.mean_rt_anycast_s, "{s:?}");
    assert!(
        s.std_rt_anycast_s < s.std_rt_random_s && s.std_rt_anycast_s < s.std_rt_nearest_s,
        "{s:?}"
    );
    assert!(s.server_load_max_share < 0.9, "{s:?}");
    assert!(s.overhead_msgs_per_s > 0.0);
    let again = anycast::run(&args("b")).unwrap();
    assert_eq!(s.mean_rt_anycast_s, again.mean_rt_anycast_s);
    assert_eq!(s.thresholds, again.thresholds);
}
