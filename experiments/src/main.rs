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
use experiments::scenario::peers::{self, Peers};
use experiments::scenario::{DEFAULT_ACCESS, DEFAULT_TOPOLOGY, run_and_report};
use experiments::{describe, emulation_spec, topology};

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
    /// Write the emulation spec of a placement (members on a latency matrix with drawn
    /// access links, as `run conferencing` places them with the same seed) for real
    /// processes: `esm conference --emulate FILE --listen ADDR:PORT`, ADDR one of its places.
    #[command(name = "emulation-spec")]
    EmulationSpec {
        /// The latency matrix (or any topology: delays are its unicast paths').
        #[arg(long, default_value = conferencing::DEFAULT_MATRIX)]
        topology: String,
        /// Members to place.
        #[arg(long, default_value_t = 16)]
        members: usize,
        /// Seed of placement and access links (the simulator's, for the same placement).
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Access links (the conferencing default: SimBlock's regions, 15% slow ADSL).
        #[arg(long, default_value = "simblock:year=2019,adsl=0.15")]
        access: String,
        /// The first member's loopback address; the others follow it.
        #[arg(long, default_value = "127.0.0.10")]
        first_ip: std::net::Ipv4Addr,
        /// City coordinates, for pictures (CSV: city,Lat,Long).
        #[arg(long, default_value = "data/latency/wondernetwork-2018-cities.csv")]
        cities: std::path::PathBuf,
        /// Put the last member on a slow link: this download instead of its drawn one.
        #[arg(long)]
        slow_down: Option<overlay_core::Bandwidth>,
        /// Where to write the spec (JSON).
        #[arg(long, default_value = "out/emulation.json")]
        out: std::path::PathBuf,
    },
    /// The same placement (matrix, places, access links, seed, senders) and the same protocol
    /// timing (`esm conference`'s) in the simulator and as real `esm` processes over the
    /// emulated network (`esm demo --world`), figures side by side per scheme: RTT p50/p90
    /// along the trees, bandwidth against sequential unicast per receiver, control overhead,
    /// the stall after the busiest relay dies. Needs the `esm` binary (`cargo build --release
    /// -p node`); writes OUT/summary.json and pairs.csv.
    #[command(name = "sim-to-real")]
    SimToReal(experiments::sim_to_real::SimToRealArgs),
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
    /// Narada beside iroh-gossip's HyParView + PlumTree core on the same map, members, seed
    /// and stream: RDP, stress, resource usage and duplicate payloads measured on packets from
    /// every member in turn, control traffic, and the stream's delivery under churn.
    Peers(peers::PeersArgs),
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
        Command::EmulationSpec {
            topology: spec,
            members,
            seed,
            access,
            first_ip,
            cities,
            slow_down,
            out,
        } => {
            let topo = topology::load(&spec)?;
            let net = Network::build(topo, members, &AccessSpec::parse(&access)?, seed)?;
            let addresses = emulation_spec::loopback_addresses(first_ip, members)?;
            let cities = emulation_spec::read_cities(&cities)?;
            let mut name = format!("{spec}, {members} members, {access}, seed {seed}");
            let mut written = emulation_spec::spec_of(&net, &name, &addresses, &cities);
            if let (Some(rate), Some(last)) = (slow_down, written.places.last_mut()) {
                last.down_bps = rate.bps();
                name.push_str(&format!(", the last member's download {rate}"));
                written.name = name;
            }
            if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::write(&out, serde_json::to_string_pretty(&written)?)?;
            for place in &written.places {
                println!(
                    "{:<15} {:<20} up {:>6.1} Mbit/s  down {:>6.1} Mbit/s",
                    place.ip.to_string(),
                    place.name,
                    place.up_bps as f64 / 1e6,
                    place.down_bps as f64 / 1e6
                );
            }
            println!("wrote {}", out.display());
        }
        Command::SimToReal(args) => {
            let started = std::time::Instant::now();
            let summary = experiments::sim_to_real::run(&args)?;
            println!(
                "sim-to-real on {} in {:.0} s",
                summary.placement,
                started.elapsed().as_secs_f64()
            );
            print!("{}", experiments::sim_to_real::table(&summary));
            println!("wrote {}", args.out.join("summary.json").display());
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
            Scenario::Peers(args) => run_and_report::<Peers>(&args)?,
            Scenario::Anycast(args) => run_and_report::<Anycast>(&args)?,
        },
    }
    Ok(())
}
