//! `run overcast-sweep`: Overcast on one map with 50 to 600 nodes under both placements
//! (bandwidth fraction and network load against group size), and a group under steady churn at
//! several rates (certificates reaching the root against the rate of membership change).

use std::path::Path;
use std::time::Duration;

use clap::Args;
use overlay_core::Time;
use overlay_core::rng::{derive_seed, rng_from_seed};
use rand::RngExt;
use serde::Serialize;

use super::overcast::{self as overcast_scenario, OvercastArgs, OvercastSetup};
use super::{Scenario, ScenarioError};
use crate::group::overcast::OvercastGroup;
use crate::network::Placement;
use crate::report::{self, Line, Table, fmt_opt, round6};
use crate::run_cost::{self, RunCost};
use crate::spec::duration_arg;

/// Arguments of `run overcast-sweep`.
#[derive(Debug, Clone, Args)]
pub struct SweepArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub setup: OvercastSetup,
    /// Group sizes, comma-separated (`--members` is ignored).
    #[arg(long, default_value = "50,100,200,300,400,600", value_delimiter = ',')]
    pub sizes: Vec<usize>,
    /// Give up waiting for each tree to settle after this much simulated time.
    #[arg(long, default_value = "1200s", value_parser = duration_arg)]
    pub max_time: Duration,
    /// Nodes in the churn runs.
    #[arg(long, default_value_t = 200)]
    pub churn_members: usize,
    /// Membership changes per minute in the churn runs (half failures, half joins).
    #[arg(long, default_value = "0,6,12,24,48", value_delimiter = ',')]
    pub churn_rates: Vec<u32>,
    /// How long each churn run is watched after its tree formed.
    #[arg(long, default_value = "300s", value_parser = duration_arg)]
    pub churn_window: Duration,
}

/// One group size under one placement.
#[derive(Debug, Clone, Serialize)]
pub struct SizePoint {
    /// Nodes.
    pub members: usize,
    /// Where the first nodes sit.
    pub placement: Placement,
    /// Sum of achieved over possible bandwidth.
    pub bandwidth_fraction: Option<f64>,
    /// Mean over nodes of achieved over possible bandwidth.
    pub bandwidth_fraction_node_mean: Option<f64>,
    /// Link use over IP multicast's (router links).
    pub network_load_ratio: Option<f64>,
    /// Re-evaluation periods from the last join to the last move.
    pub rounds_to_converge: u64,
    /// Whether the tree settled before the time limit.
    pub converged: bool,
    /// Certificates at the root per join.
    pub root_certificates_per_join: f64,
    /// Whether the root's table was exact, settled and after failures.
    pub root_table_exact: bool,
    /// Stream bytes lost.
    pub bytes_lost: u64,
}

/// One churn rate.
#[derive(Debug, Clone, Serialize)]
pub struct ChurnPoint {
    /// Membership changes asked for, per minute.
    pub changes_per_min: u32,
    /// Membership changes made in the window, per second.
    pub changes_per_s: f64,
    /// Birth and death certificates reaching the root, per second.
    pub root_certificates_per_s: f64,
    /// Re-evaluation moves in the window, per second.
    pub moves_per_s: f64,
}

/// `summary.json` of `run overcast-sweep`.
#[derive(Debug, Clone, Serialize)]
pub struct SweepSummary {
    /// Scenario name.
    pub scenario: String,
    /// Topology spec.
    pub topology: String,
    /// Seed.
    pub seed: u64,
    /// One entry per size and placement.
    pub sizes: Vec<SizePoint>,
    /// One entry per churn rate.
    pub churn: Vec<ChurnPoint>,
    /// Least-squares slope of root certificates per second against changes per second: the
    /// certificates one membership change costs the root (moves across branches included).
    pub root_certificates_per_change: f64,
}

/// `run overcast-sweep` as a [`Scenario`].
#[derive(Debug, Clone, Copy)]
pub struct OvercastSweep;

impl Scenario for OvercastSweep {
    const NAME: &'static str = "overcast-sweep";
    type Args = SweepArgs;
    type Summary = SweepSummary;

    fn out(args: &SweepArgs) -> Option<&Path> {
        args.setup.out.as_deref()
    }

    fn run(args: &SweepArgs) -> Result<SweepSummary, ScenarioError> {
        run(args)
    }

    fn headline(_args: &SweepArgs, summary: &SweepSummary, elapsed: Duration) -> String {
        format!(
            "overcast-sweep on {} (seed {}) in {:.1} s",
            summary.topology,
            summary.seed,
            elapsed.as_secs_f64()
        )
    }

    fn table(summary: &SweepSummary) -> String {
        table(summary)
    }
}

/// Run every size and churn rate; writes `summary.json`, CSVs and SVG plots under
/// [`OvercastSweep::out_dir`].
pub fn run(args: &SweepArgs) -> Result<SweepSummary, ScenarioError> {
    let out = OvercastSweep::out_dir(args);
    let mut sizes = Vec::new();
    let mut costs: Vec<(Placement, usize, RunCost)> = Vec::new();
    for placement in [Placement::Backbone, Placement::Random] {
        for &n in &args.sizes {
            let run_args = OvercastArgs {
                setup: OvercastSetup {
                    members: n,
                    placement,
                    out: Some(out.join(format!("{placement:?}-n{n}").to_lowercase())),
                    ..args.setup.clone()
                },
                join_gap: Duration::from_millis(200),
                quiet: Duration::from_secs(60),
                max_time: args.max_time,
                fail_fraction: 0.05,
            };
            let (s, cost) = run_cost::measure(|| overcast_scenario::run(&run_args));
            let s = s?;
            costs.push((placement, n, cost));
            eprintln!(
                "  {placement:?} {n}: fraction {}, load {}",
                fmt_opt(s.bandwidth_fraction, 3),
                fmt_opt(s.network_load_ratio, 3)
            );
            sizes.push(SizePoint {
                members: n,
                placement,
                bandwidth_fraction: s.bandwidth_fraction,
                bandwidth_fraction_node_mean: s.bandwidth_fraction_node_mean,
                network_load_ratio: s.network_load_ratio,
                rounds_to_converge: s.rounds_to_converge,
                converged: s.converged,
                root_certificates_per_join: s.root_certificates_per_join,
                root_table_exact: s.root_table_exact,
                bytes_lost: s.bytes_lost,
            });
        }
    }
    let mut churn = Vec::new();
    for &rate in &args.churn_rates {
        let point = churn_run(args, rate)?;
        eprintln!(
            "  churn {rate}/min: {:.3} certificates/s at the root",
            point.root_certificates_per_s
        );
        churn.push(point);
    }
    let xs: Vec<f64> = churn.iter().map(|p| p.changes_per_s).collect();
    let ys: Vec<f64> = churn.iter().map(|p| p.root_certificates_per_s).collect();
    let summary = SweepSummary {
        scenario: OvercastSweep::NAME.to_owned(),
        topology: args.setup.topology.clone(),
        seed: args.setup.seed,
        sizes,
        churn,
        root_certificates_per_change: round6(crate::stats::slope(&xs, &ys)),
    };
    write(&out, &summary)?;
    // What each size cost to run (not in summary.json, which replays byte for byte).
    report::write_csv(
        &out.join("run_cost.csv"),
        &["members", "placement", "wall_s", "peak_rss_mb"],
        costs.iter().map(|(placement, n, cost)| {
            let [wall, peak] = cost.cells();
            [
                n.to_string(),
                format!("{placement:?}").to_lowercase(),
                wall,
                peak,
            ]
        }),
    )?;
    Ok(summary)
}

/// A group of `churn_members` that formed, then `rate` membership changes a minute (failures
/// and joins of fresh nodes in turn) for the window.
fn churn_run(args: &SweepArgs, rate: u32) -> Result<ChurnPoint, ScenarioError> {
    let window = args.churn_window.as_secs_f64();
    let changes = (f64::from(rate) * window / 60.0).round() as usize;
    let joins = changes.div_ceil(2);
    let setup = OvercastSetup {
        members: args.churn_members + joins,
        ..args.setup.clone()
    };
    let net = setup.network()?;
    let config = setup.config(&net)?;
    let mut group = OvercastGroup::new(net, &config, setup.roots, setup.seed);
    let roots = group.roots.len();
    let active = args.churn_members.max(roots + 1);
    for m in 0..active {
        group.start(m, Time::ZERO + Duration::from_millis(200 * m as u64));
    }
    let formed = Time::ZERO + Duration::from_millis(200 * active as u64) + Duration::from_secs(300);
    let end = formed + args.churn_window;
    group.stream(setup.stream_rate.bps_f64(), end);
    group.run_until(formed);
    let certs_before = group.root_certificates();
    let moves_before = group.log.reattach.iter().filter(|r| r.2).count();
    let mut rng = rng_from_seed(derive_seed(setup.seed, u64::from(rate) ^ 0xc4u64));
    let gap = if changes == 0 {
        args.churn_window
    } else {
        args.churn_window / u32::try_from(changes).unwrap_or(u32::MAX)
    };
    let (mut next_join, mut made) = (active, 0usize);
    for i in 0..changes {
        let at = formed + gap * u32::try_from(i).unwrap_or(0);
        group.run_until(at);
        if i % 2 == 0 && next_join < group.members() {
            group.start(next_join, at);
            next_join += 1;
            made += 1;
        } else {
            let candidates: Vec<usize> =
                (roots..next_join).filter(|&m| group.is_alive(m)).collect();
            if !candidates.is_empty() {
                group.crash(candidates[rng.random_range(0..candidates.len())]);
                made += 1;
            }
        }
    }
    group.run_until(end);
    let certs = group.root_certificates().saturating_sub(certs_before);
    let moves = group.log.reattach.iter().filter(|r| r.2).count() - moves_before;
    Ok(ChurnPoint {
        changes_per_min: rate,
        changes_per_s: round6(made as f64 / window),
        root_certificates_per_s: round6(certs as f64 / window),
        moves_per_s: round6(moves as f64 / window),
    })
}

fn write(out: &Path, summary: &SweepSummary) -> Result<(), ScenarioError> {
    report::create_dir(out)?;
    report::write_json(&out.join("summary.json"), summary)?;
    report::write_csv(
        &out.join("sizes.csv"),
        &[
            "members",
            "placement",
            "bandwidth_fraction",
            "bandwidth_fraction_node_mean",
            "network_load_ratio",
            "rounds_to_converge",
            "converged",
            "root_certificates_per_join",
            "root_table_exact",
            "bytes_lost",
        ],
        summary.sizes.iter().map(|p| {
            let opt = |v: Option<f64>| v.map_or_else(String::new, |v| v.to_string());
            vec![
                p.members.to_string(),
                format!("{:?}", p.placement).to_lowercase(),
                opt(p.bandwidth_fraction),
                opt(p.bandwidth_fraction_node_mean),
                opt(p.network_load_ratio),
                p.rounds_to_converge.to_string(),
                p.converged.to_string(),
                p.root_certificates_per_join.to_string(),
                p.root_table_exact.to_string(),
                p.bytes_lost.to_string(),
            ]
        }),
    )?;
    report::write_csv(
        &out.join("churn.csv"),
        &[
            "changes_per_min",
            "changes_per_s",
            "root_certificates_per_s",
            "moves_per_s",
        ],
        summary.churn.iter().map(|p| {
            vec![
                p.changes_per_min.to_string(),
                p.changes_per_s.to_string(),
                p.root_certificates_per_s.to_string(),
                p.moves_per_s.to_string(),
            ]
        }),
    )?;
    let series = |placement: Placement, f: fn(&SizePoint) -> Option<f64>| -> Vec<(f64, f64)> {
        summary
            .sizes
            .iter()
            .filter(|p| p.placement == placement)
            .filter_map(|p| f(p).map(|y| (p.members as f64, y)))
            .collect()
    };
    report::plot_lines(
        &out.join("bandwidth.svg"),
        "Overcast: fraction of possible bandwidth against group size",
        "nodes",
        "achieved / possible",
        &[
            Line {
                label: "backbone placement",
                points: series(Placement::Backbone, |p| p.bandwidth_fraction),
            },
            Line {
                label: "random placement",
                points: series(Placement::Random, |p| p.bandwidth_fraction),
            },
        ],
    )?;
    report::plot_lines(
        &out.join("load.svg"),
        "Overcast: network load over IP multicast's against group size",
        "nodes",
        "link traversals / IP multicast's",
        &[
            Line {
                label: "backbone placement",
                points: series(Placement::Backbone, |p| p.network_load_ratio),
            },
            Line {
                label: "random placement",
                points: series(Placement::Random, |p| p.network_load_ratio),
            },
        ],
    )?;
    report::plot_lines(
        &out.join("certificates.svg"),
        "Overcast: certificates at the root per join against group size",
        "nodes",
        "root certificates per join",
        &[
            Line {
                label: "backbone placement",
                points: series(Placement::Backbone, |p| Some(p.root_certificates_per_join)),
            },
            Line {
                label: "random placement",
                points: series(Placement::Random, |p| Some(p.root_certificates_per_join)),
            },
        ],
    )?;
    report::plot_lines(
        &out.join("churn.svg"),
        "Overcast: certificates at the root against churn",
        "membership changes per second",
        "certificates per second at the root",
        &[Line {
            label: "birth and death certificates",
            points: summary
                .churn
                .iter()
                .map(|p| (p.changes_per_s, p.root_certificates_per_s))
                .collect(),
        }],
    )?;
    Ok(())
}

/// The figures as a table.
pub fn table(s: &SweepSummary) -> String {
    let mut t = Table::new(&[
        "nodes",
        "placement",
        "bandwidth fraction",
        "network load",
        "rounds",
        "root certs/join",
        "table exact",
        "bytes lost",
    ]);
    for p in &s.sizes {
        t.row(&[
            p.members.to_string(),
            format!("{:?}", p.placement).to_lowercase(),
            fmt_opt(p.bandwidth_fraction, 3),
            fmt_opt(p.network_load_ratio, 3),
            format!(
                "{}{}",
                p.rounds_to_converge,
                if p.converged { "" } else { "+" }
            ),
            format!("{:.2}", p.root_certificates_per_join),
            p.root_table_exact.to_string(),
            p.bytes_lost.to_string(),
        ]);
    }
    let mut c = Table::new(&["changes/min", "changes/s", "root certificates/s", "moves/s"]);
    for p in &s.churn {
        c.row(&[
            p.changes_per_min.to_string(),
            format!("{:.3}", p.changes_per_s),
            format!("{:.3}", p.root_certificates_per_s),
            format!("{:.3}", p.moves_per_s),
        ]);
    }
    format!(
        "{}\n{}certificates at the root per membership change (slope): {:.2}\n",
        t.render(),
        c.render(),
        s.root_certificates_per_change
    )
}
