use super::*;
use clap::Parser;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: SimToRealArgs,
}

fn sim_pair(receiver: usize, bw_bps: f64, rtt_ms: f64) -> PairFigures {
    PairFigures {
        scheme: Scheme::BandwidthLatency,
        sender: 0,
        receiver,
        bw_bps,
        rtt_ms,
        alone_bps: 1e6,
        allowance_bps: 1e6,
    }
}

fn real_pair(receiver: usize, kbps: f64, delay_ms: f64, stall: f64) -> real::RealPair {
    real::RealPair {
        receiver_index: receiver,
        source_index: 0,
        window_rate_kbps: Some(kbps),
        window_delay_ms: Some(delay_ms),
        recovery_s: Some(stall),
        window_path: if receiver == 1 {
            vec![1, 2, 0]
        } else {
            vec![2]
        },
    }
}

#[test]
fn both_sides_are_judged_on_the_pairs_the_real_run_kept() {
    let sim = [
        sim_pair(1, 1e6, 100.0),
        sim_pair(2, 0.5e6, 200.0),
        // The member the real run killed: left out of both sides.
        sim_pair(3, 0.0, 900.0),
    ];
    let real = RealSummary {
        receivers: vec![
            real_pair(1, 900.0, 60.0, 2.0),
            real_pair(2, 1000.0, 150.0, 0.5),
        ],
        crashed_index: Some(3),
        overhead_ratio: 0.02,
        window_s: (10.0, 20.0),
    };
    let one_way = vec![vec![0, 10_000, 20_000, 30_000]; 4];
    let (c, pairs, victim) = compare(
        Scheme::BandwidthLatency,
        &sim,
        (0.01, Some(1.5)),
        &real,
        &one_way,
    );
    // Receiver 1's path 1 < 2 < 0: 0 -> 2 -> 1 is 10 + 20 ms one way.
    assert!((pairs[0].real_path_rtt_ms - 60.0).abs() < 1e-9, "{pairs:?}");
    assert!(pairs[1].real_path_rtt_ms.is_nan(), "{pairs:?}");
    assert_eq!(victim, Some(3));
    assert_eq!(pairs.len(), 2);
    assert!((c.sim.mean_bw_ratio - 0.75).abs() < 1e-9, "{c:?}");
    assert!((c.real.mean_bw_ratio - 0.95).abs() < 1e-9, "{c:?}");
    assert!((c.bw_ratio_real_minus_sim - 0.2).abs() < 1e-9, "{c:?}");
    // RTT: twice the real one-way delay; p90 interpolates between the two pairs.
    assert!((c.sim.rtt_p90_ms - 190.0).abs() < 1e-9, "{c:?}");
    assert!((c.real.rtt_p90_ms - 282.0).abs() < 1e-9, "{c:?}");
    assert!((c.sim.min_receiver_ratio - 0.5).abs() < 1e-9, "{c:?}");
    assert_eq!(c.real.worst_stall_s, Some(2.0));
    assert_eq!(c.sim.worst_stall_s, Some(1.5));
    assert!((c.real.overhead_ratio - 0.02).abs() < 1e-9);
}

#[test]
fn several_runs_compare_their_medians() {
    let side = |p90: f64, bw: f64, stall: Option<f64>| SideFigures {
        rtt_p90_ms: p90,
        mean_bw_ratio: bw,
        worst_stall_s: stall,
        ..SideFigures::default()
    };
    let run = |sim: SideFigures, real: SideFigures| SchemeComparison {
        rtt_p90_real_over_sim: real.rtt_p90_ms / sim.rtt_p90_ms,
        bw_ratio_real_minus_sim: real.mean_bw_ratio - sim.mean_bw_ratio,
        real_path_rtt_ms: (50.0, real.rtt_p90_ms / 2.0),
        sim,
        real,
        sim_runs: Vec::new(),
        real_runs: Vec::new(),
    };
    let c = median_comparison(vec![
        run(side(300.0, 0.90, Some(1.0)), side(430.0, 0.95, Some(2.0))),
        run(side(320.0, 0.94, None), side(620.0, 0.91, Some(1.5))),
        run(side(310.0, 0.92, Some(3.0)), side(480.0, 0.93, Some(1.0))),
    ]);
    assert_eq!(c.sim.rtt_p90_ms, 310.0);
    assert_eq!(c.real.rtt_p90_ms, 480.0);
    assert!(
        (c.rtt_p90_real_over_sim - 480.0 / 310.0).abs() < 1e-6,
        "{c:?}"
    );
    assert!(
        (c.bw_ratio_real_minus_sim - (0.93 - 0.92)).abs() < 1e-9,
        "{c:?}"
    );
    // Of two stalls, the mean of the two; of three, the middle one.
    assert_eq!(c.sim.worst_stall_s, Some(2.0));
    assert_eq!(c.real.worst_stall_s, Some(1.5));
    assert_eq!(c.real_path_rtt_ms, (50.0, 240.0));
    assert_eq!(c.real_runs.len(), 3);
    assert_eq!(c.sim_runs[1].rtt_p90_ms, 320.0);
}

#[test]
fn a_crash_outside_the_run_is_refused() {
    let args = Cli::parse_from(["x", "--seconds", "30", "--crash-at", "30"]).args;
    let err = run(&args).unwrap_err();
    assert!(err.to_string().contains("--crash-at 30"), "{err}");
}
