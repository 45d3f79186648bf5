//! `experiments sim-to-real`: one placement (latency matrix, member places, access draws,
//! seed, senders) run twice, in the simulator (`run conferencing`'s overlay) and as real `esm`
//! processes over the emulated network (`esm demo --world`), with the figures side by side per
//! scheme: RTT p50/p90 from source to receivers along the trees, bandwidth ratio against
//! sequential unicast (per receiver and overall), control overhead, and the longest stall after
//! the busiest relay is killed once the window has closed (each side kills its own busiest).
//! Both sides are judged on the same (sender, receiver) pairs: the member the real run kills is
//! left out of both. And on the same timeline: the simulator runs as long as the real run and
//! measures over the same window, so both meshes have had as long to form (over the
//! simulator's usual six minutes, measured from the first to past the third, its trees had
//! time to improve that the real run's had not: p90 395 ms against 475 ms at 22-45 s, on the
//! default placement).

mod real;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use overlay_core::Bandwidth;
use serde::Serialize;

pub use self::real::{RealRun, RealRunError, RealSummary};
use crate::emulation_spec::{self, SpecError};
use crate::network::AccessSpec;
use crate::network::Network;
use crate::report::{self, ReportError, Table, round6};
use crate::scenario::ScenarioError;
use crate::scenario::conferencing::{self, ConferencingArgs, DEFAULT_MATRIX, PairFigures, Scheme};
use crate::spec::duration_arg;
use crate::stats::Distribution;
use crate::topology;

/// Why the comparison could not be made.
#[derive(Debug, thiserror::Error)]
pub enum SimToRealError {
    /// The simulator's side.
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    /// The placement's spec.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// The real side.
    #[error(transparent)]
    Real(#[from] RealRunError),
    /// A report file.
    #[error(transparent)]
    Report(#[from] ReportError),
    /// The arguments.
    #[error("{0}")]
    Arguments(String),
}

/// Arguments of `experiments sim-to-real`.
#[derive(Debug, Clone, Args)]
pub struct SimToRealArgs {
    /// The latency matrix (or any topology).
    #[arg(long, default_value = DEFAULT_MATRIX)]
    pub topology: String,
    /// Members (each a real process on the real side).
    #[arg(long, default_value_t = 16)]
    pub members: usize,
    /// Seed of placement, access links and the simulator's randomness.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Access links (the conferencing default: SimBlock's regions, 15% slow ADSL).
    #[arg(long, default_value = "simblock:year=2019,adsl=0.15")]
    pub access: String,
    /// Each sender's rate.
    #[arg(long, default_value = "1.2mbps")]
    pub rate: Bandwidth,
    /// Senders (the largest uploads, on both sides).
    #[arg(long, default_value_t = 1)]
    pub senders: usize,
    /// Schemes to compare (Narada metrics; sequential unicast is the reference of both).
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "latency-only,bandwidth-latency"
    )]
    pub schemes: Vec<Scheme>,
    /// Simulated time of each scheme's run, on the simulator's own timeline (measured from a
    /// sixth of the run to 0.55 of it, the crash at 0.6). Without it the simulator runs the
    /// real run's timeline: as long, measured over the same window, the crash at the same
    /// moment, so both sides' meshes have had as long to form.
    #[arg(long, value_parser = duration_arg)]
    pub duration: Option<Duration>,
    /// Length of each real run, seconds.
    #[arg(long, default_value_t = 60)]
    pub seconds: u64,
    /// When the real run kills its busiest relay, seconds (0: never); its measurement window
    /// is the second half of the time before.
    #[arg(long, default_value_t = 45)]
    pub crash_at: u64,
    /// The first member's loopback address.
    #[arg(long, default_value = "127.0.0.10")]
    pub first_ip: std::net::Ipv4Addr,
    /// City coordinates, for the real side's pictures.
    #[arg(long, default_value = "data/latency/wondernetwork-2018-cities.csv")]
    pub cities: PathBuf,
    /// The `esm` binary (default: beside this one).
    #[arg(long)]
    pub esm: Option<PathBuf>,
    /// Output folder: `world.json`, `sim/`, `real-SCHEME/`, `pairs.csv`, `summary.json` (with
    /// `--runs`, also `sim-run2/`, `real-SCHEME-run2/` and so on).
    #[arg(long, default_value = "out/sim-to-real")]
    pub out: PathBuf,
    /// Runs of each side: the real side's timing and the simulator's protocol seed (the
    /// placement's seed, then that plus 1000, 2000, ...) differ from run to run, and each
    /// figure compared is the median over the runs. One 16-member real run's RTT p90 varies by
    /// a third from run to run on the same placement.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=9))]
    pub runs: u64,
}

/// One side's figures over the compared pairs.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SideFigures {
    /// Median RTT from source to receiver along the tree, ms.
    pub rtt_p50_ms: f64,
    /// 90th percentile of it, ms.
    pub rtt_p90_ms: f64,
    /// Mean over pairs of bandwidth received over sequential unicast's.
    pub mean_bw_ratio: f64,
    /// 10th percentile of that ratio.
    pub bw_ratio_p10: f64,
    /// Worst receiver: all it got over what its paths allow.
    pub min_receiver_ratio: f64,
    /// Control bytes over media bytes.
    pub overhead_ratio: f64,
    /// Longest stall of a source at a receiver after the busiest relay's crash, seconds (the
    /// simulator's and the real run's relays may differ: each side kills its own busiest).
    pub worst_stall_s: Option<f64>,
}

/// One scheme, both sides.
#[derive(Clone, Debug, Serialize)]
pub struct SchemeComparison {
    /// The simulator.
    pub sim: SideFigures,
    /// The real processes.
    pub real: SideFigures,
    /// Real RTT p90 over the simulator's.
    pub rtt_p90_real_over_sim: f64,
    /// Real mean bandwidth ratio minus the simulator's.
    pub bw_ratio_real_minus_sim: f64,
    /// RTT p50 and p90 along the real trees without queueing (twice the paths' one-way
    /// delays), ms: how much of the real RTT is the tree, how much the queues.
    pub real_path_rtt_ms: (f64, f64),
    /// With `--runs` above 1: each simulator run's figures (`sim` holds their medians).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sim_runs: Vec<SideFigures>,
    /// With `--runs` above 1: each real run's figures (`real` holds their medians).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub real_runs: Vec<SideFigures>,
}

/// One pair, both sides.
#[derive(Clone, Debug, Serialize)]
pub struct PairComparison {
    /// The scheme.
    pub scheme: Scheme,
    /// The sender's place.
    pub sender: usize,
    /// The receiver's place.
    pub receiver: usize,
    /// Simulated bandwidth over sequential unicast's.
    pub sim_bw_ratio: f64,
    /// Real bandwidth over sequential unicast's.
    pub real_bw_ratio: f64,
    /// Simulated RTT along the tree, ms.
    pub sim_rtt_ms: f64,
    /// Real RTT along the tree (twice the measured one-way delay), ms.
    pub real_rtt_ms: f64,
    /// Twice the one-way delays along the real tree's path at the window's end: the RTT
    /// without queueing (NaN where the path did not reach the source).
    pub real_path_rtt_ms: f64,
    /// That path, receiver first.
    pub real_path: Vec<usize>,
}

/// `summary.json` of `sim-to-real`.
#[derive(Clone, Debug, Serialize)]
pub struct SimToRealSummary {
    /// The placement, as `emulation-spec` would name it.
    pub placement: String,
    /// The members' cities, in order.
    pub cities: Vec<String>,
    /// Senders' places.
    pub senders: Vec<usize>,
    /// The stream rate, Mbit/s.
    pub rate_mbps: f64,
    /// The place the real runs killed (left out of both sides), per scheme (the first run's,
    /// when there are several; each run kills its own busiest relay).
    pub crashed: BTreeMap<&'static str, Option<usize>>,
    /// The place the simulator crashed, per scheme (after its window; the first run's).
    pub sim_crashed: BTreeMap<&'static str, Option<usize>>,
    /// Per scheme.
    pub schemes: BTreeMap<&'static str, SchemeComparison>,
    /// Per pair (of the first run, when there are several).
    pub pairs: Vec<PairComparison>,
    /// Runs of each side the figures are medians of.
    pub runs: u64,
}

/// A pair's figures on one side: (bandwidth, RTT ms, alone, allowance, receiver).
struct Sample {
    bw_bps: f64,
    rtt_ms: f64,
    alone_bps: f64,
    allowance_bps: f64,
    receiver: usize,
}

fn side_figures(samples: &[Sample], overhead_ratio: f64, stall: Option<f64>) -> SideFigures {
    let ratios = Distribution::new(
        samples
            .iter()
            .map(|s| s.bw_bps / s.alone_bps.max(1.0))
            .collect(),
    );
    let rtts = Distribution::new(samples.iter().map(|s| s.rtt_ms).collect());
    let mut per_receiver: BTreeMap<usize, (f64, f64)> = BTreeMap::new();
    for s in samples {
        let e = per_receiver.entry(s.receiver).or_default();
        e.0 += s.bw_bps;
        e.1 += s.allowance_bps;
    }
    SideFigures {
        rtt_p50_ms: round6(rtts.quantile(0.5).unwrap_or(f64::NAN)),
        rtt_p90_ms: round6(rtts.quantile(0.9).unwrap_or(f64::NAN)),
        mean_bw_ratio: round6(ratios.mean().unwrap_or(0.0)),
        bw_ratio_p10: round6(ratios.quantile(0.1).unwrap_or(0.0)),
        min_receiver_ratio: round6(
            per_receiver
                .values()
                .map(|&(got, allowed)| (got / allowed.max(1.0)).min(1.0))
                .fold(1.0, f64::min),
        ),
        overhead_ratio: round6(overhead_ratio),
        worst_stall_s: stall.map(round6),
    }
}

/// The `esm` beside the running binary.
fn default_esm() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("esm")))
        .unwrap_or_else(|| PathBuf::from("esm"))
}

/// Runs both sides and compares them; prints progress on stderr.
pub fn run(args: &SimToRealArgs) -> Result<SimToRealSummary, SimToRealError> {
    let schemes: Vec<Scheme> = args
        .schemes
        .iter()
        .copied()
        .filter(|s| s.metric().is_some())
        .collect();
    if schemes.is_empty() {
        return Err(SimToRealError::Arguments(
            "--schemes needs at least one Narada scheme (sequential-unicast is the reference)"
                .into(),
        ));
    }
    if args.crash_at >= args.seconds || (args.crash_at > 0 && args.crash_at < 10) {
        return Err(SimToRealError::Arguments(format!(
            "--crash-at {} must be 0 or from 10 s to before --seconds {}",
            args.crash_at, args.seconds
        )));
    }
    report::create_dir(&args.out)?;
    // The placement, once, for both sides.
    let net = Network::build(
        topology::load(&args.topology).map_err(ScenarioError::from)?,
        args.members,
        &AccessSpec::parse(&args.access).map_err(ScenarioError::from)?,
        args.seed,
    )
    .map_err(ScenarioError::from)?;
    let placement = format!(
        "{}, {} members, {}, seed {}",
        args.topology, args.members, args.access, args.seed
    );
    let addresses = emulation_spec::loopback_addresses(args.first_ip, args.members)?;
    let cities = emulation_spec::read_cities(&args.cities)?;
    let spec = emulation_spec::spec_of(&net, &placement, &addresses, &cities);
    let world = args.out.join("world.json");
    report::write_json(&world, &spec)?;
    let names: Vec<String> = net.hosts().iter().map(|h| h.name.clone()).collect();
    drop(net);

    eprintln!(
        "simulator: {placement}, {} sender(s) at {}",
        args.senders, args.rate
    );
    // The real run's timeline: measured over the second half of the time before the crash
    // (or the end).
    let real_end = Duration::from_secs(args.seconds);
    let window_end = if args.crash_at > 0 {
        Duration::from_secs(args.crash_at)
    } else {
        real_end
    };
    let real_window = (window_end / 2, window_end);
    let mut sim_schemes = vec![Scheme::SequentialUnicast];
    sim_schemes.extend(&schemes);
    let sim_args = ConferencingArgs {
        topology: args.topology.clone(),
        members: args.members,
        seed: args.seed,
        protocol_seed: None,
        access: args.access.clone(),
        out: Some(args.out.join("sim")),
        rate: args.rate,
        senders: args.senders,
        duration: args.duration.unwrap_or(real_end),
        schemes: sim_schemes,
        no_congestion: true,
        narada_config: None,
        // The real members' timing (`esm conference`'s), or the stall after a relay dies is
        // compared across one-second and 400 ms pings.
        conversation: true,
        delay_budget: Duration::from_millis(300),
        no_delay_budget: false,
        crash_at: match args.duration {
            // After the window (which ends at 0.55 of the run), as the real run's crash is.
            Some(_) => Some(0.6),
            None => (args.crash_at > 0).then(|| args.crash_at as f64 / args.seconds as f64),
        },
        window: args.duration.is_none().then_some(real_window),
    };
    let mut sims = Vec::new();
    for run in 0..args.runs {
        let sim_args = ConferencingArgs {
            protocol_seed: (run > 0).then(|| args.seed.wrapping_add(1000 * run)),
            out: Some(args.out.join(run_dir("sim", run))),
            ..sim_args.clone()
        };
        sims.push(conferencing::run_with_pairs(&sim_args)?);
    }
    let sim_summary = &sims[0].0;
    let esm = args.esm.clone().unwrap_or_else(default_esm);
    let mut comparisons = BTreeMap::new();
    let mut crashed = BTreeMap::new();
    let mut pairs = Vec::new();
    for scheme in schemes {
        let metric = match scheme {
            Scheme::LatencyOnly => "latency",
            Scheme::BandwidthOnly => "bandwidth-only",
            Scheme::Random => "random",
            Scheme::BandwidthLatency | Scheme::SequentialUnicast => "bandwidth-latency",
        };
        let mut runs = Vec::new();
        for (run, (sim_run, sim_pairs)) in (0..args.runs).zip(&sims) {
            eprintln!(
                "real: {} esm processes over the emulated network, {} metric, {} s (run {} of {})",
                args.members,
                metric,
                args.seconds,
                run + 1,
                args.runs
            );
            let out = args
                .out
                .join(run_dir(&format!("real-{}", scheme.name()), run));
            let real = RealRun {
                esm: &esm,
                world: &world,
                members: args.members,
                senders: args.senders,
                rate: args.rate,
                seconds: args.seconds,
                crash_at: args.crash_at,
                metric,
                out: &out,
            }
            .run()?;
            let sim_figures = &sim_run.schemes[scheme.name()];
            runs.push(compare(
                scheme,
                sim_pairs,
                (sim_figures.overhead_ratio, sim_figures.worst_stall_s),
                &real,
                &spec.one_way_us,
            ));
        }
        let mut runs = runs.into_iter();
        let Some((first, scheme_pairs, victim)) = runs.next() else {
            continue;
        };
        let comparisons_of_runs: Vec<SchemeComparison> = std::iter::once(first)
            .chain(runs.map(|(c, _, _)| c))
            .collect();
        comparisons.insert(scheme.name(), median_comparison(comparisons_of_runs));
        crashed.insert(scheme.name(), victim);
        pairs.extend(scheme_pairs);
    }
    let summary = SimToRealSummary {
        placement,
        cities: names,
        senders: sim_summary.senders.clone(),
        rate_mbps: args.rate.mbps_f64(),
        crashed,
        sim_crashed: sim_summary
            .schemes
            .iter()
            .filter(|(name, _)| comparisons.contains_key(*name))
            .map(|(&name, f)| (name, f.crashed))
            .collect(),
        schemes: comparisons,
        pairs,
        runs: args.runs,
    };
    report::write_json(&args.out.join("summary.json"), &summary)?;
    report::write_csv(
        &args.out.join("pairs.csv"),
        &[
            "scheme",
            "sender",
            "receiver",
            "sim_bw_ratio",
            "real_bw_ratio",
            "sim_rtt_ms",
            "real_rtt_ms",
        ],
        summary.pairs.iter().map(|p| {
            vec![
                p.scheme.name().to_owned(),
                p.sender.to_string(),
                p.receiver.to_string(),
                format!("{:.4}", p.sim_bw_ratio),
                format!("{:.4}", p.real_bw_ratio),
                format!("{:.1}", p.sim_rtt_ms),
                format!("{:.1}", p.real_rtt_ms),
            ]
        }),
    )?;
    Ok(summary)
}

/// Run `run`'s folder (counted from 0): `name` for the first, `name-run2` and so on after.
fn run_dir(name: &str, run: u64) -> String {
    if run == 0 {
        name.to_owned()
    } else {
        format!("{name}-run{}", run + 1)
    }
}

/// The median of `values`, NaN left out (NaN for none; the mean of the middle two for an even
/// count).
fn median(values: Vec<f64>) -> f64 {
    Distribution::new(values).quantile(0.5).unwrap_or(f64::NAN)
}

/// Each figure's median over `sides`.
fn median_side(sides: &[SideFigures]) -> SideFigures {
    let of = |f: fn(&SideFigures) -> f64| round6(median(sides.iter().map(f).collect()));
    let stalls: Vec<f64> = sides.iter().filter_map(|s| s.worst_stall_s).collect();
    SideFigures {
        rtt_p50_ms: of(|s| s.rtt_p50_ms),
        rtt_p90_ms: of(|s| s.rtt_p90_ms),
        mean_bw_ratio: of(|s| s.mean_bw_ratio),
        bw_ratio_p10: of(|s| s.bw_ratio_p10),
        min_receiver_ratio: of(|s| s.min_receiver_ratio),
        overhead_ratio: of(|s| s.overhead_ratio),
        worst_stall_s: (!stalls.is_empty()).then(|| round6(median(stalls))),
    }
}

/// One scheme's comparison over several runs of each side: every figure the median of the
/// runs', and the ratios taken between the medians. A single run is returned as it is.
fn median_comparison(mut runs: Vec<SchemeComparison>) -> SchemeComparison {
    if runs.len() <= 1 {
        return runs.pop().expect("a comparison of at least one run");
    }
    let sim_runs: Vec<SideFigures> = runs.iter().map(|c| c.sim.clone()).collect();
    let real_runs: Vec<SideFigures> = runs.iter().map(|c| c.real.clone()).collect();
    let (sim, real) = (median_side(&sim_runs), median_side(&real_runs));
    SchemeComparison {
        rtt_p90_real_over_sim: round6(real.rtt_p90_ms / sim.rtt_p90_ms),
        bw_ratio_real_minus_sim: round6(real.mean_bw_ratio - sim.mean_bw_ratio),
        real_path_rtt_ms: (
            round6(median(runs.iter().map(|c| c.real_path_rtt_ms.0).collect())),
            round6(median(runs.iter().map(|c| c.real_path_rtt_ms.1).collect())),
        ),
        sim,
        real,
        sim_runs,
        real_runs,
    }
}

/// Twice the one-way delays from the source down `path` (receiver first, source last), ms;
/// NaN unless the path ends at `source`.
fn path_rtt_ms(path: &[usize], source: usize, one_way_us: &[Vec<u64>]) -> f64 {
    if path.last() != Some(&source) {
        return f64::NAN;
    }
    let mut total = 0u64;
    for hop in path.windows(2) {
        let Some(d) = one_way_us.get(hop[1]).and_then(|row| row.get(hop[0])) else {
            return f64::NAN;
        };
        total += d;
    }
    2.0 * total as f64 / 1e3
}

/// One scheme's comparison over the pairs both sides measured.
fn compare(
    scheme: Scheme,
    sim_pairs: &[PairFigures],
    (sim_overhead, sim_stall): (f64, Option<f64>),
    real: &RealSummary,
    one_way_us: &[Vec<u64>],
) -> (SchemeComparison, Vec<PairComparison>, Option<usize>) {
    let sim: BTreeMap<(usize, usize), &PairFigures> = sim_pairs
        .iter()
        .filter(|p| p.scheme == scheme)
        .map(|p| ((p.sender, p.receiver), p))
        .collect();
    let victim = real.crashed_index;
    let (mut sim_side, mut real_side, mut out) = (Vec::new(), Vec::new(), Vec::new());
    let mut stall: Option<f64> = None;
    for r in &real.receivers {
        let Some(p) = sim.get(&(r.source_index, r.receiver_index)) else {
            continue;
        };
        let real_bw = r.window_rate_kbps.unwrap_or(0.0) * 1e3;
        let real_rtt = r.window_delay_ms.map_or(f64::NAN, |d| 2.0 * d);
        if let Some(s) = r.recovery_s.filter(|s| s.is_finite()) {
            stall = Some(stall.map_or(s, |x: f64| x.max(s)));
        }
        let sample = |bw_bps, rtt_ms| Sample {
            bw_bps,
            rtt_ms,
            alone_bps: p.alone_bps,
            allowance_bps: p.allowance_bps,
            receiver: p.receiver,
        };
        sim_side.push(sample(p.bw_bps, p.rtt_ms));
        real_side.push(sample(real_bw, real_rtt));
        out.push(PairComparison {
            scheme,
            sender: p.sender,
            receiver: p.receiver,
            sim_bw_ratio: round6(p.bw_bps / p.alone_bps.max(1.0)),
            real_bw_ratio: round6(real_bw / p.alone_bps.max(1.0)),
            sim_rtt_ms: round6(p.rtt_ms),
            real_rtt_ms: round6(real_rtt),
            real_path_rtt_ms: round6(path_rtt_ms(&r.window_path, p.sender, one_way_us)),
            real_path: r.window_path.clone(),
        });
    }
    let sim = side_figures(&sim_side, sim_overhead, sim_stall);
    let real = side_figures(&real_side, real.overhead_ratio, stall);
    let paths = Distribution::new(out.iter().map(|p| p.real_path_rtt_ms).collect());
    let comparison = SchemeComparison {
        real_path_rtt_ms: (
            round6(paths.quantile(0.5).unwrap_or(f64::NAN)),
            round6(paths.quantile(0.9).unwrap_or(f64::NAN)),
        ),
        rtt_p90_real_over_sim: round6(real.rtt_p90_ms / sim.rtt_p90_ms),
        bw_ratio_real_minus_sim: round6(real.mean_bw_ratio - sim.mean_bw_ratio),
        sim,
        real,
        sim_runs: Vec::new(),
        real_runs: Vec::new(),
    };
    (comparison, out, victim)
}

/// The comparison as tables, with the goals checked.
pub fn table(s: &SimToRealSummary) -> String {
    let mut t = Table::new(&[
        "scheme",
        "side",
        "RTT p50 / p90 ms",
        "bw ratio mean (p10)",
        "worst receiver",
        "overhead",
        "stall after the relay dies",
    ]);
    for (name, c) in &s.schemes {
        for (side, f) in [("sim", &c.sim), ("real", &c.real)] {
            t.row(&[
                if side == "sim" {
                    (*name).to_owned()
                } else {
                    String::new()
                },
                side.to_owned(),
                format!("{:.0} / {:.0}", f.rtt_p50_ms, f.rtt_p90_ms),
                format!("{:.3} ({:.3})", f.mean_bw_ratio, f.bw_ratio_p10),
                format!("{:.3}", f.min_receiver_ratio),
                format!("{:.4}", f.overhead_ratio),
                f.worst_stall_s
                    .map_or_else(|| "-".to_owned(), |x| format!("{x:.1} s")),
            ]);
        }
        t.row(&[
            String::new(),
            "real trees, no queues".to_owned(),
            format!("{:.0} / {:.0}", c.real_path_rtt_ms.0, c.real_path_rtt_ms.1),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
        ]);
        t.row(&[
            String::new(),
            "real vs sim".to_owned(),
            format!("p90 x{:.3}", c.rtt_p90_real_over_sim),
            format!("{:+.3}", c.bw_ratio_real_minus_sim),
            String::new(),
            String::new(),
            String::new(),
        ]);
    }
    let mut out = t.render();
    if s.runs > 1 {
        let _ = writeln!(
            out,
            "each figure above is the median of {} runs of each side; by run:",
            s.runs
        );
        let list = |runs: &[SideFigures], f: fn(&SideFigures) -> f64, digits: usize| {
            runs.iter()
                .map(|r| format!("{:.digits$}", f(r)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        for (name, c) in &s.schemes {
            for (side, runs) in [("sim", &c.sim_runs), ("real", &c.real_runs)] {
                let _ = writeln!(
                    out,
                    "  {name} {side}: RTT p90 {} ms; bw ratio {}; worst receiver {}",
                    list(runs, |r| r.rtt_p90_ms, 0),
                    list(runs, |r| r.mean_bw_ratio, 3),
                    list(runs, |r| r.min_receiver_ratio, 3)
                );
            }
        }
    }
    if let Some(bl) = s.schemes.get(Scheme::BandwidthLatency.name()) {
        let check = |ok: bool| if ok { "met" } else { "NOT met" };
        let _ = writeln!(
            out,
            "bandwidth-latency: real RTT p90 within 15% of the simulator's: x{:.3}, {}",
            bl.rtt_p90_real_over_sim,
            check((bl.rtt_p90_real_over_sim - 1.0).abs() <= 0.15)
        );
        let _ = writeln!(
            out,
            "bandwidth-latency: real mean bandwidth ratio within 0.05 of the simulator's: {:+.3}, {}",
            bl.bw_ratio_real_minus_sim,
            check(bl.bw_ratio_real_minus_sim.abs() <= 0.05)
        );
        for (side, f) in [("sim", &bl.sim), ("real", &bl.real)] {
            let _ = write!(
                out,
                "{side}: bandwidth ratio {:.3} (goal >= 0.95: {})",
                f.mean_bw_ratio,
                check(f.mean_bw_ratio >= 0.95)
            );
            if let Some(lat) = s.schemes.get(Scheme::LatencyOnly.name()) {
                let lat = if side == "sim" { &lat.sim } else { &lat.real };
                let over = f.rtt_p90_ms / lat.rtt_p90_ms;
                let _ = write!(
                    out,
                    "; RTT p90 x{over:.3} latency-only's (goal <= 1.2: {})",
                    check(over <= 1.2)
                );
            }
            out.push('\n');
        }
    }
    let mut p = Table::new(&[
        "scheme",
        "receiver",
        "from",
        "bw sim / real",
        "RTT ms sim / real",
    ]);
    let city = |i: usize| s.cities.get(i).cloned().unwrap_or_else(|| i.to_string());
    for pair in &s.pairs {
        p.row(&[
            pair.scheme.name().to_owned(),
            format!("{} {}", pair.receiver, city(pair.receiver)),
            city(pair.sender),
            format!("{:.2} / {:.2}", pair.sim_bw_ratio, pair.real_bw_ratio),
            format!("{:.0} / {:.0}", pair.sim_rtt_ms, pair.real_rtt_ms),
            format!(
                "{:.0}  {}",
                pair.real_path_rtt_ms,
                pair.real_path
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("<")
            ),
        ]);
    }
    out.push_str("\nper pair:\n");
    out.push_str(&p.render());
    out
}

#[cfg(test)]
mod tests;
