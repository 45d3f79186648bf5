//! `run narada-sweep`: the same map with groups of 16 to 256 members: how tree quality and
//! control overhead grow with the group (the paper's claim: overhead grows linearly).

use std::path::Path;
use std::time::Duration;

use clap::Args;
use serde::Serialize;

use super::narada::{self as narada_scenario, NaradaArgs, NaradaSummary};
use super::{CommonArgs, Scenario, ScenarioError};
use crate::report::{self, Line, Table};
use crate::run_cost;
use crate::spec::duration_arg;

/// Arguments of `run narada-sweep`.
#[derive(Debug, Clone, Args)]
pub struct SweepArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub common: CommonArgs,
    /// Group sizes, comma-separated (`--members` is ignored).
    #[arg(long, default_value = "16,32,64,128,256", value_delimiter = ',')]
    pub sizes: Vec<usize>,
    /// Simulated time of each run.
    #[arg(long, default_value = "200s", value_parser = duration_arg)]
    pub duration: Duration,
    /// Stream rate.
    #[arg(long, default_value = "1.2mbps")]
    pub rate: overlay_core::Bandwidth,
    /// A JSON file of Narada settings (any subset of the fields).
    #[arg(long)]
    pub narada_config: Option<std::path::PathBuf>,
}

/// One group size's figures.
#[derive(Debug, Clone, Serialize)]
pub struct SweepPoint {
    /// Members.
    pub members: usize,
    /// RDP p90.
    pub rdp_p90: f64,
    /// Worst stress.
    pub stress_max: Option<u64>,
    /// Naive unicast's worst stress.
    pub unicast_stress_max: Option<u64>,
    /// Resource usage over IP multicast's.
    pub ru_ratio: Option<f64>,
    /// Control kbit/s per member after settling.
    pub control_kbps_per_member: f64,
    /// Control bytes over data bytes after settling.
    pub overhead_ratio: f64,
    /// Mean mesh degree.
    pub mesh_degree_mean: f64,
    /// Receivers reached.
    pub reachable_fraction: f64,
}

/// `summary.json` of `run narada-sweep`.
#[derive(Debug, Clone, Serialize)]
pub struct SweepSummary {
    /// Scenario name.
    pub scenario: String,
    /// Topology spec.
    pub topology: String,
    /// Seed.
    pub seed: u64,
    /// One entry per group size.
    pub points: Vec<SweepPoint>,
    /// Least-squares slope of control kbit/s per member against group size (kbit/s per member
    /// added): the growth the paper calls linear.
    pub control_kbps_slope_per_member: f64,
}

/// `run narada-sweep` as a [`Scenario`].
#[derive(Debug, Clone, Copy)]
pub struct NaradaSweep;

impl Scenario for NaradaSweep {
    const NAME: &'static str = "narada-sweep";
    type Args = SweepArgs;
    type Summary = SweepSummary;

    fn out(args: &SweepArgs) -> Option<&Path> {
        args.common.out.as_deref()
    }

    fn run(args: &SweepArgs) -> Result<SweepSummary, ScenarioError> {
        run(args)
    }

    fn headline(_args: &SweepArgs, summary: &SweepSummary, elapsed: Duration) -> String {
        format!(
            "narada-sweep on {} (seed {}) in {:.1} s",
            summary.topology,
            summary.seed,
            elapsed.as_secs_f64()
        )
    }

    fn table(summary: &SweepSummary) -> String {
        table(summary)
    }

    /// The growth of control traffic with the group.
    fn footer(summary: &SweepSummary) -> Option<String> {
        Some(format!(
            "control grows by {:.4} kbit/s per member for each member added",
            summary.control_kbps_slope_per_member
        ))
    }
}

/// Run every size and write the comparison.
pub fn run(args: &SweepArgs) -> Result<SweepSummary, ScenarioError> {
    let out = NaradaSweep::out_dir(args);
    let mut points = Vec::new();
    let mut costs = Vec::new();
    for &n in &args.sizes {
        let run_args = NaradaArgs {
            common: CommonArgs {
                members: n,
                out: Some(out.join(format!("n{n}"))),
                ..args.common.clone()
            },
            duration: args.duration,
            rate: args.rate,
            packet_bytes: 1000,
            join_window: Duration::from_secs(5),
            sample_every: Duration::from_secs(20),
            narada_config: args.narada_config.clone(),
        };
        let (s, cost) = run_cost::measure(|| narada_scenario::run(&run_args));
        let s: NaradaSummary = s?;
        costs.push((n, cost));
        eprintln!(
            "  {n} members: rdp p90 {:.2}, stress {:?}, control {:.2} kbps/member",
            s.rdp_p90, s.stress_max, s.control_kbps_per_member
        );
        points.push(SweepPoint {
            members: n,
            rdp_p90: s.rdp_p90,
            stress_max: s.stress_max,
            unicast_stress_max: s.unicast_stress_max,
            ru_ratio: s.ru_ratio,
            control_kbps_per_member: s.control_kbps_per_member,
            overhead_ratio: s.overhead_ratio,
            mesh_degree_mean: s.mesh_degree_mean,
            reachable_fraction: s.reachable_fraction,
        });
    }
    let xs: Vec<f64> = points.iter().map(|p| p.members as f64).collect();
    let ys: Vec<f64> = points.iter().map(|p| p.control_kbps_per_member).collect();
    let summary = SweepSummary {
        scenario: NaradaSweep::NAME.to_owned(),
        topology: args.common.topology.clone(),
        seed: args.common.seed,
        control_kbps_slope_per_member: report::round6(crate::stats::slope(&xs, &ys)),
        points,
    };
    report::create_dir(&out)?;
    report::write_json(&out.join("summary.json"), &summary)?;
    report::write_csv(
        &out.join("sweep.csv"),
        &[
            "members",
            "rdp_p90",
            "stress_max",
            "unicast_stress_max",
            "ru_ratio",
            "control_kbps_per_member",
            "overhead_ratio",
            "mesh_degree_mean",
        ],
        summary.points.iter().map(|p| {
            vec![
                p.members.to_string(),
                p.rdp_p90.to_string(),
                p.stress_max.map_or_else(String::new, |v| v.to_string()),
                p.unicast_stress_max
                    .map_or_else(String::new, |v| v.to_string()),
                p.ru_ratio.map_or_else(String::new, |v| v.to_string()),
                p.control_kbps_per_member.to_string(),
                p.overhead_ratio.to_string(),
                p.mesh_degree_mean.to_string(),
            ]
        }),
    )?;
    // What each size cost to run (not in summary.json, which replays byte for byte).
    report::write_csv(
        &out.join("run_cost.csv"),
        &["members", "wall_s", "peak_rss_mb"],
        costs.iter().map(|(n, cost)| {
            let [wall, peak] = cost.cells();
            [n.to_string(), wall, peak]
        }),
    )?;
    let line = |label, f: fn(&SweepPoint) -> Option<f64>| Line {
        label,
        points: summary
            .points
            .iter()
            .filter_map(|p| f(p).map(|y| (p.members as f64, y)))
            .collect(),
    };
    report::plot_lines(
        &out.join("overhead.svg"),
        "Control traffic per member against group size",
        "members",
        "kbit/s per member",
        &[line("Narada control + probes", |p| {
            Some(p.control_kbps_per_member)
        })],
    )?;
    report::plot_lines(
        &out.join("quality.svg"),
        "Tree quality against group size",
        "members",
        "ratio",
        &[
            line("RDP p90", |p| Some(p.rdp_p90)),
            line("resource usage / IP multicast", |p| p.ru_ratio),
            line("worst stress / 10", |p| {
                p.stress_max.map(|s| s as f64 / 10.0)
            }),
        ],
    )?;
    Ok(summary)
}

/// The figures as a table.
pub fn table(s: &SweepSummary) -> String {
    let mut t = Table::new(&[
        "members",
        "RDP p90",
        "stress max (unicast)",
        "RU ratio",
        "control kbps/member",
        "overhead",
        "degree",
    ]);
    for p in &s.points {
        t.row(&[
            p.members.to_string(),
            format!("{:.2}", p.rdp_p90),
            format!(
                "{} ({})",
                p.stress_max.map_or_else(|| "n/a".into(), |v| v.to_string()),
                p.unicast_stress_max
                    .map_or_else(|| "n/a".into(), |v| v.to_string())
            ),
            report::fmt_opt(p.ru_ratio, 2),
            format!("{:.2}", p.control_kbps_per_member),
            format!("{:.4}", p.overhead_ratio),
            format!("{:.2}", p.mesh_degree_mean),
        ]);
    }
    t.render()
}
