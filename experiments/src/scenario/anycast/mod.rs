//! `run anycast`: K replicated servers with their own capacity and a background load that
//! changes every minute, N clients on the map fetching a small object. The ways to pick the
//! server are replayed on the same requests and load: `random`, `nearest` (lowest RTT),
//! `oracle` (the true best at each request) and `anycast`, which runs the protocols as deployed
//! (module `protocols`): each server's `AnycastServer` registers with the clients' resolvers
//! and pushes its processing delay and spare capacity, each client's `Resolver` probes the
//! servers from the client's host, and the client asks it through a caching `LocalResolver`
//! whose pipeline (the equivalent set, then a draw weighted by spare capacity) picks the
//! server. Every message crosses the map with its path's delay. The group as a whole stays
//! under `--max-utilisation`; single servers may be nearly full.
//!
//! The transport is modelled: a response takes two round trips, the server's queueing and
//! service time, and the object's transfer. Each server is a FIFO queue (module `world`).

mod protocols;
mod replay;
mod world;

use std::path::Path;
use std::time::Duration;

use anycast_resolver::{Filter, Model, Pipeline};
use clap::Args;
use serde::Serialize;

use super::{CommonArgs, RunHeader, Scenario, ScenarioError};
use crate::report::{self, Curve, Line, Table, round6};
use crate::spec::duration_arg;
use protocols::Selection;
use replay::{Baseline, Replay};
use world::{World, build_world, mean_std};

/// Arguments of `run anycast` (`--members` counts the clients).
#[derive(Debug, Clone, Args)]
pub struct AnycastArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub common: CommonArgs,
    /// Replicated servers.
    #[arg(long, default_value_t = 4)]
    pub servers: usize,
    /// Simulated time.
    #[arg(long, default_value = "900s", value_parser = duration_arg)]
    pub duration: Duration,
    /// Requests per second each client makes (Poisson).
    #[arg(long, default_value_t = 0.5)]
    pub request_rate: f64,
    /// The equivalent set: servers within this fraction of the best estimate (1: up to twice
    /// the best), drawn from by the spare capacity each states.
    #[arg(long, default_value_t = 1.0)]
    pub threshold: f64,
    /// A server pushes when its delay moved by more than this fraction since its last push.
    #[arg(long, default_value_t = 0.1)]
    pub push_threshold: f64,
    /// A server pushes at most this often (its push agent is asked every 250 ms, so shorter
    /// gaps change nothing). Pushes 1 s apart leave anycast near 2x the oracle here; the
    /// `oracle informed every push gap` line shows what always taking the best would do with
    /// figures that fresh.
    #[arg(long, default_value = "250ms", value_parser = duration_arg)]
    pub push_gap: Duration,
    /// The group's busiest minute: background and clients together use at most this fraction
    /// of all servers' capacity (each minute's background draws are scaled down to fit).
    #[arg(long, default_value_t = 0.8)]
    pub max_utilisation: f64,
    /// Time between two probes of one server by one resolver.
    #[arg(long, default_value = "60s", value_parser = duration_arg)]
    pub probe_interval: Duration,
    /// Also run the variants (the paper's scaled estimate, a uniform draw in the equivalent
    /// set, the better of two, other thresholds) and plot each threshold's load.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub variants: bool,
    /// How long a client's local resolver may cache its resolver's answer (the resolver sits
    /// on the client's host here, so asking again costs no wide-area round trip).
    #[arg(long, default_value = "1s", value_parser = duration_arg)]
    pub answer_ttl: Duration,
}

/// One policy's figures.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyFigures {
    /// Mean response time, seconds.
    pub mean_rt_s: f64,
    /// Standard deviation of the response time, seconds.
    pub std_rt_s: f64,
    /// The busiest server's share of the requests.
    pub load_max_share: f64,
}

/// `summary.json` of `run anycast`.
#[derive(Debug, Clone, Serialize)]
pub struct AnycastSummary {
    /// The run's common fields.
    #[serde(flatten)]
    pub header: RunHeader,
    /// Clients (`members` in the header counts clients and servers: every host on the map).
    pub clients: usize,
    /// Servers.
    pub servers: usize,
    /// Requests in each replay.
    pub requests: usize,
    /// Random choice: mean response time, seconds.
    pub mean_rt_random_s: f64,
    /// Nearest server.
    pub mean_rt_nearest_s: f64,
    /// Anycast (hybrid estimate, equivalent set).
    pub mean_rt_anycast_s: f64,
    /// The true best at each request.
    pub mean_rt_oracle_s: f64,
    /// The true best as of the last snapshot of the queues, one taken every `--push-gap`:
    /// what always taking the best does with information as fresh as pushes can be (a
    /// reference, not a protocol, and not a proven bound: a randomised choice can beat it, as
    /// the headroom split does when snapshots are a second apart).
    pub mean_rt_stale_oracle_s: f64,
    /// A static split: each request to a server drawn by its capacity beyond its background
    /// at the moment, known exactly (every server equally busy; no protocol).
    pub mean_rt_headroom_s: f64,
    /// Anycast with the paper's scaled estimate (RT = SF × pushed delay); this and the next
    /// two are `null` when the variants were not run (`--variants false`).
    pub mean_rt_anycast_scaled_s: Option<f64>,
    /// Anycast drawing uniformly inside the equivalent set (the paper's resolver), ignoring the
    /// spare capacity servers state.
    pub mean_rt_anycast_uniform_s: Option<f64>,
    /// Anycast picking the better of two random servers instead of the equivalent set.
    pub mean_rt_anycast_two_choices_s: Option<f64>,
    /// Standard deviations, same order.
    pub std_rt_random_s: f64,
    /// See `std_rt_random_s`.
    pub std_rt_nearest_s: f64,
    /// See `std_rt_random_s`.
    pub std_rt_anycast_s: f64,
    /// See `std_rt_random_s`.
    pub std_rt_oracle_s: f64,
    /// Anycast's mean time at the server (queueing and service), seconds; the rest of a
    /// response time is the network's.
    pub mean_server_delay_anycast_s: f64,
    /// The oracle's mean time at the server, seconds.
    pub mean_server_delay_oracle_s: f64,
    /// The busiest server's share of anycast's requests.
    pub server_load_max_share: f64,
    /// Anycast's messages (registrations, pushes, probes and replies, queries and answers)
    /// per second.
    pub overhead_msgs_per_s: f64,
    /// Anycast's requests whose resolution failed (served by a random server instead).
    pub anycast_failed_resolutions: u64,
    /// Anycast's mean response time over the oracle's.
    pub anycast_over_oracle: f64,
    /// Anycast with other equivalent-set thresholds: (threshold, mean RT, busiest share).
    pub thresholds: Vec<(f64, f64, f64)>,
}

/// `run anycast` as a [`Scenario`].
#[derive(Debug, Clone, Copy)]
pub struct Anycast;

impl Scenario for Anycast {
    const NAME: &'static str = "anycast";
    type Args = AnycastArgs;
    type Summary = AnycastSummary;

    fn out(args: &AnycastArgs) -> Option<&Path> {
        args.common.out.as_deref()
    }

    fn run(args: &AnycastArgs) -> Result<AnycastSummary, ScenarioError> {
        run(args)
    }

    fn headline(args: &AnycastArgs, summary: &AnycastSummary, elapsed: Duration) -> String {
        format!(
            "anycast on {} with {} clients and {} servers (seed {}), {} requests per policy in {:.1} s",
            summary.header.topology_name,
            args.common.members,
            summary.servers,
            summary.header.seed,
            summary.requests,
            elapsed.as_secs_f64()
        )
    }

    fn table(summary: &AnycastSummary) -> String {
        table(summary)
    }
}

/// Run every policy on the same world; writes `summary.json`, `rt.csv`, `rt_cdf.svg` and one
/// `load_threshold_T.svg` per equivalent-set threshold under [`Anycast::out_dir`].
pub fn run(args: &AnycastArgs) -> Result<AnycastSummary, ScenarioError> {
    if args.servers == 0 || args.common.members == 0 || args.request_rate <= 0.0 {
        return Err(ScenarioError::Argument(
            "--servers, --members and --request-rate must be positive".to_owned(),
        ));
    }
    if !(args.max_utilisation > 0.0 && args.max_utilisation < 1.0) {
        return Err(ScenarioError::Argument(format!(
            "--max-utilisation must lie strictly between 0 and 1 (got {})",
            args.max_utilisation
        )));
    }
    let hosts = CommonArgs {
        members: args.common.members + args.servers,
        ..args.common.clone()
    };
    let net = hosts.network()?;
    let header = RunHeader::new(Anycast::NAME, &args.common, &net);
    let world = build_world(args, &net);
    let seed = args.common.seed;
    let random = replay::replay(&world, Baseline::Random, seed);
    let nearest = replay::replay(&world, Baseline::Nearest, seed);
    let oracle = replay::replay(&world, Baseline::Oracle, seed);
    let gap_ms = u64::try_from(args.push_gap.as_millis().max(1)).unwrap_or(u64::MAX);
    let stale = replay::replay(&world, Baseline::StaleOracle(gap_ms), seed);
    let headroom = replay::replay(&world, Baseline::Headroom, seed);
    let through = |pipeline: Pipeline, model: Model| {
        protocols::replay(&world, &Selection { pipeline, model }, args, seed)
    };
    let anycast = through(Pipeline::anycast(args.threshold), Model::Additive);
    let variant = |pipeline: Pipeline, model: Model| {
        args.variants
            .then(|| round6(mean_std(&through(pipeline, model).rts).0))
    };
    let uniform = variant(Pipeline::equivalent(args.threshold), Model::Additive);
    let two = variant(Pipeline::new(vec![Filter::TwoChoices]), Model::Additive);
    let scaled = variant(Pipeline::anycast(args.threshold), Model::Scaled);
    let mut thresholds = Vec::new();
    let out = Anycast::out_dir(args);
    report::create_dir(&out)?;
    let swept: &[f64] = if args.variants {
        &[0.0, 0.1, 0.3, 0.6, 1.0]
    } else {
        &[]
    };
    for &threshold in swept {
        let other;
        let r = if (threshold - args.threshold).abs() < 1e-12 {
            &anycast
        } else {
            other = through(Pipeline::anycast(threshold), Model::Additive);
            &other
        };
        thresholds.push((
            threshold,
            round6(mean_std(&r.rts).0),
            round6(r.busiest_share()),
        ));
        plot_load(&out, &world, threshold, r)?;
    }
    let duration = args.duration.as_secs_f64().max(1e-9);
    let (m_r, s_r) = mean_std(&random.rts);
    let (m_n, s_n) = mean_std(&nearest.rts);
    let (m_a, s_a) = mean_std(&anycast.rts);
    let (m_o, s_o) = mean_std(&oracle.rts);
    let summary = AnycastSummary {
        header,
        clients: args.common.members,
        servers: args.servers,
        requests: world.requests.len(),
        mean_rt_random_s: round6(m_r),
        mean_rt_nearest_s: round6(m_n),
        mean_rt_anycast_s: round6(m_a),
        mean_rt_oracle_s: round6(m_o),
        mean_rt_stale_oracle_s: round6(mean_std(&stale.rts).0),
        mean_rt_headroom_s: round6(mean_std(&headroom.rts).0),
        mean_rt_anycast_scaled_s: scaled,
        mean_rt_anycast_two_choices_s: two,
        mean_rt_anycast_uniform_s: uniform,
        std_rt_random_s: round6(s_r),
        std_rt_nearest_s: round6(s_n),
        std_rt_anycast_s: round6(s_a),
        std_rt_oracle_s: round6(s_o),
        mean_server_delay_anycast_s: round6(mean_std(&anycast.delays).0),
        mean_server_delay_oracle_s: round6(mean_std(&oracle.delays).0),
        server_load_max_share: round6(anycast.busiest_share()),
        overhead_msgs_per_s: round6(anycast.overhead as f64 / duration),
        anycast_failed_resolutions: anycast.failed,
        anycast_over_oracle: round6(m_a / m_o.max(1e-9)),
        thresholds,
    };
    report::write_json(&out.join("summary.json"), &summary)?;
    report::write_csv(
        &out.join("rt.csv"),
        &["request", "random_s", "nearest_s", "anycast_s", "oracle_s"],
        (0..world.requests.len()).map(|i| {
            [
                i.to_string(),
                random.rts[i].to_string(),
                nearest.rts[i].to_string(),
                anycast.rts[i].to_string(),
                oracle.rts[i].to_string(),
            ]
        }),
    )?;
    report::plot_cdf(
        &out.join("rt_cdf.svg"),
        "Response time by server choice",
        "seconds",
        &[
            Curve {
                label: "random",
                samples: &random.rts,
            },
            Curve {
                label: "nearest",
                samples: &nearest.rts,
            },
            Curve {
                label: "anycast",
                samples: &anycast.rts,
            },
            Curve {
                label: "oracle",
                samples: &oracle.rts,
            },
        ],
    )?;
    Ok(summary)
}

/// `load_threshold_T.svg`: requests per server per minute in one replay.
fn plot_load(out: &Path, world: &World, threshold: f64, r: &Replay) -> Result<(), ScenarioError> {
    let labels: Vec<String> = (0..world.capacity.len())
        .map(|s| format!("server {s} ({:.0} req/s)", world.capacity[s]))
        .collect();
    let lines: Vec<Line<'_>> = labels
        .iter()
        .enumerate()
        .map(|(s, label)| Line {
            label,
            points: r
                .per_minute
                .iter()
                .enumerate()
                .map(|(m, row)| (m as f64, row[s]))
                .collect(),
        })
        .collect();
    report::plot_lines(
        &out.join(format!("load_threshold_{threshold}.svg")),
        &format!("Anycast requests per server, equivalent set within {threshold}"),
        "minute",
        "requests per second",
        &lines,
    )?;
    Ok(())
}

/// The figures as a table.
pub fn table(s: &AnycastSummary) -> String {
    let mut t = Table::new(&["policy", "mean RT s", "std s"]);
    for (name, m, sd) in [
        ("random", Some(s.mean_rt_random_s), s.std_rt_random_s),
        ("nearest", Some(s.mean_rt_nearest_s), s.std_rt_nearest_s),
        ("anycast", Some(s.mean_rt_anycast_s), s.std_rt_anycast_s),
        ("oracle", Some(s.mean_rt_oracle_s), s.std_rt_oracle_s),
        (
            "oracle informed every push gap",
            Some(s.mean_rt_stale_oracle_s),
            f64::NAN,
        ),
        (
            "static split by exact headroom",
            Some(s.mean_rt_headroom_s),
            f64::NAN,
        ),
        (
            "anycast, paper's scaled estimate",
            s.mean_rt_anycast_scaled_s,
            f64::NAN,
        ),
        (
            "anycast, uniform in the equivalent set",
            s.mean_rt_anycast_uniform_s,
            f64::NAN,
        ),
        (
            "anycast, better of two",
            s.mean_rt_anycast_two_choices_s,
            f64::NAN,
        ),
    ] {
        let figure = |x: Option<f64>| {
            x.filter(|x| !x.is_nan())
                .map_or_else(|| "-".to_owned(), |x| format!("{x:.3}"))
        };
        t.row(&[name.to_owned(), figure(m), figure(Some(sd))]);
    }
    let thresholds: Vec<String> = s
        .thresholds
        .iter()
        .map(|(th, m, share)| format!("{th}: {m:.3} s, busiest {share:.2}"))
        .collect();
    format!(
        "{}anycast / oracle {:.3}; time at the server: anycast {:.3} s, oracle {:.3} s\nanycast busiest server share {:.2}, overhead {:.1} msgs/s, failed resolutions {}\nthresholds: {}\n",
        t.render(),
        s.anycast_over_oracle,
        s.mean_server_delay_anycast_s,
        s.mean_server_delay_oracle_s,
        s.server_load_max_share,
        s.overhead_msgs_per_s,
        s.anycast_failed_resolutions,
        thresholds.join("; ")
    )
}
