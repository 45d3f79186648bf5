//! `experiments`: inspect topologies and run the overlay's scenarios.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use experiments::network::{AccessSpec, Network};
use experiments::scenario::anycast::{self, Anycast};
use experiments::scenario::baselines::{self, Baselines};
use experiments::scenario::conferencing::{self, Conferencing};
use experiments::scenario::narada::{self, Narada};
use experiments::scenario::narada_dynamics::{self, NaradaDynamics};
use experiments::scenario::narada_sweep::{self, NaradaSweep};
use experiments::scenario::overcast::{self, Overcast};
use experiments::scenario::overcast_dynamics::{self, OvercastDynamics};
use experiments::scenario::overcast_sweep::{self, OvercastSweep};
use experiments::scenario::{DEFAULT_ACCESS, DEFAULT_TOPOLOGY, run_and_report};
use experiments::{describe, topology};

/// Simulate end-system multicast overlays on real and generated networks, and measure them
/// with the papers' metrics (RDP, link stress, resource usage, receiver bandwidth).
#[derive(Debug, Parser)]
#[command(name = "experiments", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Describe a topology: routers, links, degrees, diameter, delays; with --members, the
    /// delays and access links between placed members; for a matrix, triangle violations.
    Topology {
        /// waxman:routers=1024,links=3145,seed=1 | transit-stub:nodes=600,seed=1 |
        /// topohub:PATH[,largest_component=true] | matrix:PATH
        #[arg(long, default_value = DEFAULT_TOPOLOGY)]
        topology: String,
        /// Place this many members and describe the paths between them.
        #[arg(long)]
        members: Option<usize>,
        /// Seed of member placement and access links.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Access links for placed members.
        #[arg(long, default_value = DEFAULT_ACCESS)]
        access: String,
    },
    /// Run a named scenario; it writes OUT/summary.json, CSV series and SVG plots.
    Run {
        #[command(subcommand)]
        scenario: Scenario,
    },
}

#[derive(Debug, Subcommand)]
enum Scenario {
    /// Naive unicast and IP multicast from every member in turn: the reference schemes.
    Baselines(baselines::BaselinesArgs),
    /// A Narada group forms, member 0 streams; then every member in turn as the source:
    /// RDP, stress, resource usage against IP multicast, overhead, convergence.
    Narada(narada::NaradaArgs),
    /// A streaming Narada group under churn (crashes, leaves, joins) and a network partition:
    /// delivery ratio, repair times, partition repair, routing loops.
    #[command(name = "narada-dynamics")]
    NaradaDynamics(narada_dynamics::DynamicsArgs),
    /// Narada with groups of 16 to 256 members on one map: tree quality and control overhead
    /// against group size.
    #[command(name = "narada-sweep")]
    NaradaSweep(narada_sweep::SweepArgs),
    /// The conferencing paper's comparison: sequential unicast, random, latency-only,
    /// bandwidth-only and bandwidth-latency trees on the same hosts, with rate adaptation by
    /// dropping and a congestion episode.
    Conferencing(conferencing::ConferencingArgs),
    /// Overcast nodes join a transit-stub map (backbone first), the tree settles, 5% fail at
    /// once and the tree heals, while a stream flows: bandwidth against each node's own path
    /// from the root, network load against IP multicast, the root's table, certificate traffic,
    /// rejoin times, bytes lost.
    Overcast(overcast::OvercastArgs),
    /// Overcast under join waves (flash crowds) and a mass failure that takes the node with the
    /// largest subtree: nodes on the tree, the root's table, certificates at the root and the
    /// stream's lag every second; every byte checked at the end.
    #[command(name = "overcast-dynamics")]
    OvercastDynamics(overcast_dynamics::DynamicsArgs),
    /// Overcast with 50 to 600 nodes under backbone and random placement (bandwidth fraction
    /// and network load against size), and under steady churn at several rates (certificates
    /// at the root against the rate of change); CSV and SVG plots.
    #[command(name = "overcast-sweep")]
    OvercastSweep(overcast_sweep::SweepArgs),
    /// Application-layer anycast: replicated servers with changing background load, clients
    /// picking a server at random, the nearest, by the hybrid push/probe estimate with an
    /// equivalent set, or the true best; response times, herding, overhead.
    Anycast(anycast::AnycastArgs),
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    match cli.command {
        Command::Topology {
            topology: spec,
            members,
            seed,
            access,
        } => {
            let topo = topology::load(&spec)?;
            let net = match members {
                Some(n) => Some(Network::build(
                    topo.clone(),
                    n,
                    &AccessSpec::parse(&access)?,
                    seed,
                )?),
                None => None,
            };
            print!("{}", describe::describe(&topo, net.as_ref()));
        }
        Command::Run { scenario } => match scenario {
            Scenario::Baselines(args) => run_and_report::<Baselines>(&args)?,
            Scenario::Narada(args) => run_and_report::<Narada>(&args)?,
            Scenario::NaradaDynamics(args) => run_and_report::<NaradaDynamics>(&args)?,
            Scenario::NaradaSweep(args) => run_and_report::<NaradaSweep>(&args)?,
            Scenario::Conferencing(args) => run_and_report::<Conferencing>(&args)?,
            Scenario::Overcast(args) => run_and_report::<Overcast>(&args)?,
            Scenario::OvercastDynamics(args) => run_and_report::<OvercastDynamics>(&args)?,
            Scenario::OvercastSweep(args) => run_and_report::<OvercastSweep>(&args)?,
            Scenario::Anycast(args) => run_and_report::<Anycast>(&args)?,
        },
    }
    Ok(())
}
