//! `experiments`: inspect topologies and run the overlay's scenarios.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use experiments::network::{AccessSpec, Network};
use experiments::scenario::{
    DEFAULT_ACCESS, DEFAULT_TOPOLOGY, anycast, baselines, conferencing, narada, narada_dynamics,
    narada_sweep, overcast, overcast_dynamics, overcast_sweep,
};
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
        Command::Run {
            scenario: Scenario::Baselines(args),
        } => {
            let started = std::time::Instant::now();
            let summary = baselines::run(&args)?;
            let out = args.common.out_dir("baselines");
            println!(
                "baselines on {} with {} members (seed {}), {} sources, in {:.2} s",
                summary.header.topology_name,
                summary.header.members,
                summary.header.seed,
                summary.sources,
                started.elapsed().as_secs_f64()
            );
            print!("{}", baselines::table(&summary));
            println!("wrote {}", out.join("summary.json").display());
        }
        Command::Run {
            scenario: Scenario::Narada(args),
        } => {
            let started = std::time::Instant::now();
            let summary = narada::run(&args)?;
            println!(
                "narada on {} with {} members (seed {}), {:.0} simulated s in {:.1} s",
                summary.header.topology_name,
                summary.header.members,
                summary.header.seed,
                summary.duration_s,
                started.elapsed().as_secs_f64()
            );
            print!("{}", narada::table(&summary));
            println!(
                "wrote {}",
                args.common.out_dir("narada").join("summary.json").display()
            );
        }
        Command::Run {
            scenario: Scenario::NaradaDynamics(args),
        } => {
            let started = std::time::Instant::now();
            let summary = narada_dynamics::run(&args)?;
            println!(
                "narada-dynamics on {} with {} members (seed {}), {:.0} simulated s in {:.1} s",
                summary.header.topology_name,
                args.common.members,
                summary.header.seed,
                summary.duration_s,
                started.elapsed().as_secs_f64()
            );
            print!("{}", narada_dynamics::table(&summary));
            let out = args.common.out_dir("narada-dynamics");
            println!("wrote {}", out.join("summary.json").display());
        }
        Command::Run {
            scenario: Scenario::NaradaSweep(args),
        } => {
            let started = std::time::Instant::now();
            let summary = narada_sweep::run(&args)?;
            println!(
                "narada-sweep on {} (seed {}) in {:.1} s",
                summary.topology,
                summary.seed,
                started.elapsed().as_secs_f64()
            );
            print!("{}", narada_sweep::table(&summary));
            println!(
                "control grows by {:.4} kbit/s per member for each member added",
                summary.control_kbps_slope_per_member
            );
            let out = args.common.out_dir("narada-sweep");
            println!("wrote {}", out.join("summary.json").display());
        }
        Command::Run {
            scenario: Scenario::Conferencing(args),
        } => {
            let started = std::time::Instant::now();
            let summary = conferencing::run(&args)?;
            println!(
                "conferencing on {} with {} members, {} sender(s) at {} Mbps (seed {}) in {:.1} s",
                summary.header.topology_name,
                summary.header.members,
                summary.senders.len(),
                summary.rate_mbps,
                summary.header.seed,
                started.elapsed().as_secs_f64()
            );
            print!("{}", conferencing::table(&summary));
            let out = args
                .out
                .clone()
                .unwrap_or_else(|| "out/conferencing".into());
            println!("wrote {}", out.join("summary.json").display());
        }
        Command::Run {
            scenario: Scenario::Overcast(args),
        } => {
            let started = std::time::Instant::now();
            let summary = overcast::run(&args)?;
            println!(
                "overcast on {} with {} nodes ({:?} placement, seed {}), {:.0} simulated s in {:.1} s",
                summary.header.topology_name,
                summary.header.members,
                summary.placement,
                summary.header.seed,
                summary.duration_s,
                started.elapsed().as_secs_f64()
            );
            print!("{}", overcast::table(&summary));
            let out = args
                .setup
                .out
                .clone()
                .unwrap_or_else(|| "out/overcast".into());
            println!("wrote {}", out.join("summary.json").display());
        }
        Command::Run {
            scenario: Scenario::OvercastDynamics(args),
        } => {
            let started = std::time::Instant::now();
            let (summary, _) = overcast_dynamics::run(&args)?;
            println!(
                "overcast-dynamics on {} with {} nodes in {} waves (seed {}), {:.0} simulated s in {:.1} s",
                summary.header.topology_name,
                summary.header.members,
                summary.waves,
                summary.header.seed,
                summary.duration_s,
                started.elapsed().as_secs_f64()
            );
            print!("{}", overcast_dynamics::table(&summary));
            let out = overcast_dynamics::out_dir(&args);
            println!("wrote {}", out.join("summary.json").display());
        }
        Command::Run {
            scenario: Scenario::OvercastSweep(args),
        } => {
            let started = std::time::Instant::now();
            let summary = overcast_sweep::run(&args)?;
            println!(
                "overcast-sweep on {} (seed {}) in {:.1} s",
                summary.topology,
                summary.seed,
                started.elapsed().as_secs_f64()
            );
            print!("{}", overcast_sweep::table(&summary));
            let out = overcast_sweep::out_dir(&args);
            println!("wrote {}", out.join("summary.json").display());
        }
        Command::Run {
            scenario: Scenario::Anycast(args),
        } => {
            let started = std::time::Instant::now();
            let summary = anycast::run(&args)?;
            println!(
                "anycast on {} with {} clients and {} servers (seed {}), {} requests per policy in {:.1} s",
                summary.header.topology_name,
                args.common.members,
                summary.servers,
                summary.header.seed,
                summary.requests,
                started.elapsed().as_secs_f64()
            );
            print!("{}", anycast::table(&summary));
            println!(
                "wrote {}",
                args.common
                    .out_dir("anycast")
                    .join("summary.json")
                    .display()
            );
        }
    }
    Ok(())
}
