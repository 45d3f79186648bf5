//! Named, seeded scenarios. Each takes `--topology`, `--members`, `--seed`, `--access` and
//! `--out DIR`, and writes `DIR/summary.json`, CSV series and SVG plots.
//!
//! One module per `run` subcommand, each with a [`Scenario`] implementation; [`run_and_report`]
//! runs any of them the same way, and [`Scenario::out_dir`] is the one rule for where a scenario
//! writes (`--out DIR`, else `out/NAME`).

pub mod anycast;
pub mod baselines;
pub mod conferencing;
pub mod control_phases;
pub mod narada;
pub mod narada_dynamics;
pub mod narada_sweep;
pub mod overcast;
pub mod overcast_dynamics;
pub mod overcast_sweep;
pub mod peers;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Args;
use serde::Serialize;

use crate::network::{AccessSpec, Network, NetworkError};
use crate::report::ReportError;
use crate::spec::SpecError;
use crate::topology::{self, TopologyError};

/// The Narada paper's map: 1024 Waxman routers, 3145 links.
pub const DEFAULT_TOPOLOGY: &str = "waxman:routers=1024,links=3145,seed=1";

/// Realistic heterogeneous hosts.
pub const DEFAULT_ACCESS: &str = "simblock:year=2019";

/// Arguments every scenario takes.
#[derive(Debug, Clone, Args)]
pub struct CommonArgs {
    /// The network: waxman:routers=1024,links=3145,seed=1 | transit-stub:nodes=600,seed=1 |
    /// topohub:PATH[,largest_component=true] | matrix:PATH
    #[arg(long, default_value = DEFAULT_TOPOLOGY)]
    pub topology: String,
    /// Number of overlay members (hosts attached to the map, or rows drawn from a matrix).
    #[arg(long, default_value_t = 128)]
    pub members: usize,
    /// Seed of member placement, access links and protocol randomness.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Access links: fixed:up=100mbps,down=100mbps,delay=1ms |
    /// simblock:year=2019,adsl=0.1,spread=0.3,delay=1ms[,path=FILE]
    #[arg(long, default_value = DEFAULT_ACCESS)]
    pub access: String,
    /// Directory for summary.json, CSV series and plots (default: out/SCENARIO).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// A `run` subcommand: its arguments, what it reports in `summary.json`, and how it prints.
pub trait Scenario {
    /// The subcommand's name (`narada-dynamics`), also the default output folder `out/NAME`.
    const NAME: &'static str;
    /// The subcommand's arguments.
    type Args: Args;
    /// What the run reports; `run` writes it to `summary.json`.
    type Summary: Serialize;

    /// The folder given with `--out`, if any.
    fn out(args: &Self::Args) -> Option<&Path>;

    /// Run the scenario; writes `summary.json`, CSV series and plots under
    /// [`out_dir`](Self::out_dir).
    fn run(args: &Self::Args) -> Result<Self::Summary, ScenarioError>;

    /// The line printed first: what ran, on what, and how long it took (`elapsed`).
    fn headline(args: &Self::Args, summary: &Self::Summary, elapsed: Duration) -> String;

    /// The figures as a table.
    fn table(summary: &Self::Summary) -> String;

    /// A line printed after the table, if the scenario has one.
    fn footer(_summary: &Self::Summary) -> Option<String> {
        None
    }

    /// Where the run writes: `--out DIR` if given, else `out/NAME`. The one rule: `run` writes
    /// here and [`run_and_report`] prints this path, so implementations keep the default.
    fn out_dir(args: &Self::Args) -> PathBuf {
        Self::out(args).map_or_else(|| PathBuf::from("out").join(Self::NAME), Path::to_path_buf)
    }
}

/// Run scenario `S` and print its headline, its table, its footer if any, and where
/// `summary.json` went.
pub fn run_and_report<S: Scenario>(args: &S::Args) -> Result<(), ScenarioError> {
    let started = Instant::now();
    let summary = S::run(args)?;
    println!("{}", S::headline(args, &summary, started.elapsed()));
    print!("{}", S::table(&summary));
    if let Some(footer) = S::footer(&summary) {
        println!("{footer}");
    }
    println!("wrote {}", S::out_dir(args).join("summary.json").display());
    Ok(())
}

/// A scenario that could not run.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The topology could not be built.
    #[error("topology: {0}")]
    Topology(#[from] TopologyError),
    /// The access spec is wrong.
    #[error("access: {0}")]
    Access(#[from] SpecError),
    /// Members could not be placed.
    #[error("members: {0}")]
    Network(#[from] NetworkError),
    /// Results could not be written.
    #[error(transparent)]
    Report(#[from] ReportError),
    /// An argument is out of range.
    #[error("{0}")]
    Argument(String),
}

impl CommonArgs {
    /// Build the network these arguments describe.
    pub fn network(&self) -> Result<Network, ScenarioError> {
        let access = AccessSpec::parse(&self.access)?;
        let topology = topology::load(&self.topology)?;
        Ok(Network::build(topology, self.members, &access, self.seed)?)
    }
}

/// What every `summary.json` starts with: the run's inputs.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunHeader {
    /// Scenario name.
    pub scenario: String,
    /// Topology spec as given.
    pub topology: String,
    /// Topology name.
    pub topology_name: String,
    /// Routers (0 for a matrix).
    pub routers: usize,
    /// Physical links (0 for a matrix).
    pub links: usize,
    /// What loading changed.
    pub topology_notes: Vec<String>,
    /// Members.
    pub members: usize,
    /// Seed.
    pub seed: u64,
    /// Access spec as given.
    pub access: String,
    /// Where the router links' capacities came from and how many have each (none for a matrix).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link_capacities: Option<String>,
}

impl RunHeader {
    /// The header of a run of `scenario` with `args` on `net`.
    pub fn new(scenario: &str, args: &CommonArgs, net: &Network) -> Self {
        Self {
            scenario: scenario.to_owned(),
            topology: args.topology.clone(),
            topology_name: net.topology().name().to_owned(),
            routers: net.graph().map_or(0, |g| g.routers().len()),
            links: net.physical_links(),
            topology_notes: net.topology().notes().to_vec(),
            members: net.members(),
            seed: args.seed,
            access: args.access.clone(),
            link_capacities: net.graph().map(|g| {
                let mix = topology::capacity::capacity_mix(g);
                if g.capacity_rule.is_empty() {
                    mix
                } else {
                    format!("{}; {mix}", g.capacity_rule)
                }
            }),
        }
    }

    /// A line for text reports on where link capacities came from, with its line break first;
    /// empty for a matrix.
    pub fn capacities_line(&self) -> String {
        self.link_capacities
            .as_ref()
            .map_or_else(String::new, |c| format!("\nlink capacities: {c}"))
    }
}

/// A progress bar for `len` steps on a terminal, hidden otherwise.
pub fn progress(len: u64, what: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(len);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{msg:>12} [{bar:40}] {pos}/{len} {elapsed}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_owned());
    bar
}

/// Load settings of type `T` from the JSON file at `path`, or its defaults with no path. A key
/// the settings do not have is an error naming it (serde cannot refuse unknown keys in the
/// flattened sections these settings are made of, and a misspelt key would silently do nothing).
pub fn load_json_config<T>(path: Option<&Path>) -> Result<T, ScenarioError>
where
    T: Default + Serialize + serde::de::DeserializeOwned,
{
    let Some(path) = path else {
        return Ok(T::default());
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| ScenarioError::Argument(format!("{}: cannot read: {e}", path.display())))?;
    let config: T = serde_json::from_str(&text).map_err(|e| {
        ScenarioError::Argument(format!(
            "{}: line {} column {}: {e}",
            path.display(),
            e.line(),
            e.column()
        ))
    })?;
    let given: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| ScenarioError::Argument(format!("{}: {e}", path.display())))?;
    let known = serde_json::to_value(T::default())
        .map_err(|e| ScenarioError::Argument(format!("{}: {e}", path.display())))?;
    if let (Some(given), Some(known)) = (given.as_object(), known.as_object()) {
        let unknown: Vec<&str> = given
            .keys()
            .filter(|k| !known.contains_key(k.as_str()))
            .map(String::as_str)
            .collect();
        if !unknown.is_empty() {
            let mut names: Vec<&str> = known.keys().map(String::as_str).collect();
            names.sort_unstable();
            return Err(ScenarioError::Argument(format!(
                "{}: unknown key(s) {} (the settings are: {})",
                path.display(),
                unknown.join(", "),
                names.join(", ")
            )));
        }
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::baselines::{Baselines, BaselinesArgs};
    use super::*;

    fn baselines_args(out: Option<&str>) -> BaselinesArgs {
        BaselinesArgs {
            common: CommonArgs {
                topology: DEFAULT_TOPOLOGY.to_owned(),
                members: 8,
                seed: 1,
                access: DEFAULT_ACCESS.to_owned(),
                out: out.map(PathBuf::from),
            },
            rate: overlay_core::Bandwidth::from_bps_f64(1e6),
            sources: None,
            overlay_degree: 6,
            spanner_stretch: 2.0,
        }
    }

    #[test]
    fn settings_files_refuse_a_key_the_settings_do_not_have() {
        let dir = std::env::temp_dir().join(format!("esm-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("narada.json");
        std::fs::write(&file, r#"{"upload_share": 0.7, "delay_budget": null}"#).unwrap();
        let config: ::narada::NaradaConfig = load_json_config(Some(&file)).unwrap();
        assert_eq!(config.bandwidth.upload_share, 0.7);
        std::fs::write(&file, r#"{"bandwidth": {"upload_share": 0.7}}"#).unwrap();
        let err = load_json_config::<::narada::NaradaConfig>(Some(&file))
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown key(s) bandwidth"), "{err}");
        assert!(err.contains("upload_share"), "names the known keys: {err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_header_says_where_link_capacities_came_from() {
        let map = format!(
            "topohub:{}/../data/topology/topozoo-Geant2012.json",
            env!("CARGO_MANIFEST_DIR")
        );
        for (topology, expected) in [
            (map.clone(), "provisioned by load"),
            (
                format!("{map},capacity=2.5gbps"),
                "every link 2.5gbps; 58 x 2.5gbps",
            ),
            (DEFAULT_TOPOLOGY.to_owned(), "(waxman capacity=)"),
        ] {
            let common = CommonArgs {
                topology,
                ..baselines_args(None).common
            };
            let header = RunHeader::new("t", &common, &common.network().unwrap());
            let line = header.capacities_line();
            assert!(line.starts_with("\nlink capacities: "), "{line}");
            assert!(line.contains(expected), "{line}");
        }
    }

    #[test]
    fn out_dir_is_the_given_folder_else_out_and_the_name() {
        assert_eq!(
            Baselines::out_dir(&baselines_args(Some("/tmp/x"))),
            PathBuf::from("/tmp/x")
        );
        assert_eq!(
            Baselines::out_dir(&baselines_args(None)),
            PathBuf::from("out/baselines")
        );
    }
}
