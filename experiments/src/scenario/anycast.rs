//! `run anycast`: K replicated servers with their own capacity and a background load that
//! changes every minute, N clients on the map fetching a small object. Four ways to pick the
//! server, each replayed on the same requests and load: `random`, `nearest` (lowest RTT),
//! `anycast` (each client's resolver: the servers' pushed processing delay calibrated by
//! occasional probes, a member of the equivalent set drawn by the spare capacity each server
//! pushes) and `oracle` (the true best at each request). The group as a whole stays under
//! `--max-utilisation`; single servers may be nearly full.
//!
//! The estimate, push agent and filters are `anycast_resolver`'s; the resolver and server
//! protocols are not run here: this replay calls them directly, schedules each client's probes
//! itself (the `Resolver`'s jittered interval) and delivers every push half a round trip after
//! a once-a-second check. The transport is modelled: a response takes two round trips, the
//! server's queueing and service time, and the object's transfer. Each server is a FIFO queue:
//! a request adds `1/capacity` seconds of work, the background adds work at its own rate. With
//! the additive estimate a probe's body carries that request's own delay (the server knows it
//! when it writes the body); with the paper's scaled estimate, the smoothed figure.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::path::Path;
use std::time::Duration;

use anycast_resolver::{
    Candidate, EstimatorConfig, Filter, Model, Pipeline, PushAgent, PushConfig, SelectState,
    ServerEstimate,
};
use clap::Args;
use overlay_core::rng::{ProtocolRng, derive_seed, rng_from_seed};
use overlay_core::signature::SimulatedSignatures;
use overlay_core::{NodeId, Time};
use rand::RngExt;
use serde::Serialize;

use super::{CommonArgs, RunHeader, Scenario, ScenarioError};
use crate::network::Network;
use crate::report::{self, Curve, Line, Table, round6};
use crate::spec::duration_arg;
use crate::stats::Distribution;

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
    #[arg(long, default_value_t = 0.2)]
    pub push_threshold: f64,
    /// A server pushes at most this often.
    #[arg(long, default_value = "1s", value_parser = duration_arg)]
    pub push_gap: Duration,
    /// The group's busiest minute: background and clients together use at most this fraction
    /// of all servers' capacity (each minute's background draws are scaled down to fit).
    #[arg(long, default_value_t = 0.8)]
    pub max_utilisation: f64,
    /// Time between two probes of one server by one resolver.
    #[arg(long, default_value = "60s", value_parser = duration_arg)]
    pub probe_interval: Duration,
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
    /// Anycast with the paper's scaled estimate (RT = SF × pushed delay).
    pub mean_rt_anycast_scaled_s: f64,
    /// Anycast drawing uniformly inside the equivalent set (the paper's resolver), ignoring the
    /// spare capacity servers state.
    pub mean_rt_anycast_uniform_s: f64,
    /// Anycast picking the better of two random servers instead of the equivalent set.
    pub mean_rt_anycast_two_choices_s: f64,
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
    /// Anycast's messages (pushes delivered to resolvers and probes) per second.
    pub overhead_msgs_per_s: f64,
    /// Anycast with other equivalent-set thresholds: (threshold, mean RT, busiest share).
    pub thresholds: Vec<(f64, f64, f64)>,
}

/// How a client's resolver picks among the servers it has estimates for.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Selection {
    /// A random member of the equivalent set within this fraction of the best, drawn by the
    /// spare capacity each server states.
    Weighted(f64),
    /// A uniformly random member of the equivalent set (the paper's resolver).
    Equivalent(f64),
    /// The better of two drawn at random.
    TwoChoices,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Policy {
    Random,
    Nearest,
    /// The selection, and how probes calibrate pushes.
    Anycast(Selection, Model),
    Oracle,
}

/// A server's queue and what it says of itself.
#[derive(Debug)]
struct Server {
    host: usize,
    /// Requests per second it can serve.
    capacity: f64,
    /// Work waiting, seconds, as of `at`.
    backlog: f64,
    at: f64,
    /// Background requests per second.
    background: f64,
    /// Clients' requests since the last once-a-second measurement.
    arrivals: u32,
    agent: PushAgent,
}

impl Server {
    fn advance(&mut self, t: f64) {
        let dt = (t - self.at).max(0.0);
        let drain = 1.0 - self.background / self.capacity;
        self.backlog = (self.backlog - drain * dt).max(0.0);
        self.at = t;
    }

    /// Time until first read of a request arriving at `t` (queueing plus service).
    fn delay(&mut self, t: f64) -> f64 {
        self.advance(t);
        self.backlog + 1.0 / self.capacity
    }

    fn serve(&mut self, t: f64) -> f64 {
        let d = self.delay(t);
        self.backlog += 1.0 / self.capacity;
        self.arrivals += 1;
        self.agent.on_served(Duration::from_secs_f64(d));
        d
    }
}

/// The scenario's fixed world: hosts, RTTs, capacities and the background schedule.
#[derive(Debug)]
struct World {
    clients: usize,
    rtt: Vec<Vec<f64>>,
    capacity: Vec<f64>,
    /// Background load of each server each minute, requests per second.
    background: Vec<Vec<f64>>,
    /// Request times and clients, in time order.
    requests: Vec<(f64, usize)>,
}

const OBJECT_TRANSFER_S: f64 = 0.01;

fn response_time(rtt: f64, delay: f64) -> f64 {
    2.0 * rtt + delay + OBJECT_TRANSFER_S
}

fn mean_std(xs: &[f64]) -> (f64, f64) {
    let d = Distribution::new(xs.to_vec());
    (d.mean().unwrap_or(0.0), d.std_dev().unwrap_or(0.0))
}

/// One replay: response times, requests per server per minute, overhead messages.
struct Replay {
    rts: Vec<f64>,
    /// Each request's time at the server (queueing and service).
    delays: Vec<f64>,
    per_minute: Vec<Vec<f64>>,
    overhead: u64,
}

fn replay(world: &World, policy: Policy, args: &AnycastArgs, seed: u64) -> Replay {
    let k = world.capacity.len();
    let secret = derive_seed(seed, 0x516);
    let mut servers: Vec<Server> = (0..k)
        .map(|s| {
            let id = NodeId::from_index(s as u64);
            Server {
                host: world.clients + s,
                capacity: world.capacity[s],
                backlog: 0.0,
                at: 0.0,
                background: world.background[s][0],
                arrivals: 0,
                agent: PushAgent::new(
                    id,
                    PushConfig {
                        threshold: args.push_threshold,
                        min_gap: args.push_gap,
                        ..PushConfig::default()
                    },
                    Box::new(SimulatedSignatures::new(secret, id)),
                ),
            }
        })
        .collect();
    let config = EstimatorConfig {
        model: match policy {
            Policy::Anycast(_, model) => model,
            _ => Model::default(),
        },
        ..EstimatorConfig::default()
    };
    let mut estimates: Vec<Vec<ServerEstimate>> =
        vec![vec![ServerEstimate::default(); k]; world.clients];
    let mut rng: ProtocolRng = rng_from_seed(derive_seed(seed, 0xc40));
    let mut select = SelectState::default();
    let probe_every = args.probe_interval.as_secs_f64();
    // Probes: (time, client, server), staggered.
    let mut probes: BinaryHeap<Reverse<(u64, usize, usize)>> = BinaryHeap::new();
    if let Policy::Anycast(..) = policy {
        for c in 0..world.clients {
            for s in 0..k {
                let first = rng.random_range(0.0..probe_every.min(5.0));
                probes.push(Reverse(((first * 1e6) as u64, c, s)));
            }
        }
    }
    let minutes = world.background[0].len();
    let mut per_minute = vec![vec![0.0; k]; minutes];
    let mut rts = Vec::with_capacity(world.requests.len());
    let mut delays = Vec::with_capacity(world.requests.len());
    let mut overhead = 0u64;
    let mut next_tick = 1.0;
    let pipeline = match policy {
        Policy::Anycast(Selection::TwoChoices, _) => Pipeline::new(vec![Filter::TwoChoices]),
        Policy::Anycast(Selection::Equivalent(threshold), _) => Pipeline::equivalent(threshold),
        Policy::Anycast(Selection::Weighted(threshold), _) => Pipeline::anycast(threshold),
        _ => Pipeline::default(),
    };
    let now_of = |t: f64| Time::ZERO + Duration::from_secs_f64(t);
    for &(t, client) in &world.requests {
        // Each second: background changes and pushes.
        while next_tick <= t {
            let minute = ((next_tick / 60.0) as usize).min(minutes - 1);
            for (s, server) in servers.iter_mut().enumerate() {
                server.advance(next_tick);
                // The server's own measure of what it could still take: capacity less the
                // arrival rate over the last second.
                let spare = server.capacity - server.background - f64::from(server.arrivals);
                server.arrivals = 0;
                server.agent.on_spare(spare);
                server.background = world.background[s][minute];
                if let Policy::Anycast(..) = policy
                    && let Some(push) = server.agent.poll_push(now_of(next_tick))
                {
                    // Every client's resolver registered; each hears it one way later.
                    for (c, row) in estimates.iter_mut().enumerate() {
                        let arrive = next_tick + world.rtt[c][server.host] / 2.0;
                        let _ = row[s].on_push(
                            &config,
                            now_of(arrive),
                            push.seq,
                            push.tufr(),
                            push.spare_mrps,
                        );
                        overhead += 1;
                    }
                }
            }
            next_tick += 1.0;
        }
        // Probes due by now.
        while let Some(&Reverse((at_us, c, s))) = probes.peek() {
            let at = at_us as f64 / 1e6;
            if at > t {
                break;
            }
            probes.pop();
            // The probe object's body: the paper's server writes its smoothed delay; ours
            // writes the delay of this very request, which separates the network's share
            // exactly.
            let smoothed = servers[s].agent.current();
            let d = servers[s].serve(at);
            let rt = response_time(world.rtt[c][servers[s].host], d);
            let body = match config.model {
                Model::Scaled => smoothed,
                Model::Additive => Some(Duration::from_secs_f64(d)),
            };
            if let Some(tufr) = body {
                let _ = estimates[c][s].on_probe(
                    &config,
                    now_of(at + rt),
                    Duration::from_secs_f64(rt),
                    tufr,
                );
            }
            overhead += 2;
            let next = at + probe_every * rng.random_range(0.75..1.25);
            probes.push(Reverse(((next * 1e6) as u64, c, s)));
        }
        let chosen = match policy {
            Policy::Random => rng.random_range(0..k),
            Policy::Nearest => (0..k)
                .min_by(|&a, &b| {
                    world.rtt[client][servers[a].host]
                        .total_cmp(&world.rtt[client][servers[b].host])
                })
                .unwrap_or(0),
            Policy::Oracle => (0..k)
                .min_by(|&a, &b| {
                    let ra = response_time(world.rtt[client][servers[a].host], servers[a].delay(t));
                    let rb = response_time(world.rtt[client][servers[b].host], servers[b].delay(t));
                    ra.total_cmp(&rb)
                })
                .unwrap_or(0),
            Policy::Anycast(..) => {
                let candidates: Vec<Candidate> = (0..k)
                    .map(|s| Candidate {
                        server: NodeId::from_index(s as u64),
                        estimate: estimates[client][s]
                            .estimate(&config, now_of(t))
                            .map(|e| e.rt),
                        rtt: Some(Duration::from_secs_f64(world.rtt[client][servers[s].host])),
                        spare_rps: estimates[client][s]
                            .estimate(&config, now_of(t))
                            .and_then(|e| e.spare_rps),
                    })
                    .collect();
                pipeline
                    .choose(candidates, &mut select, &mut rng)
                    .and_then(|id| (0..k).find(|&s| NodeId::from_index(s as u64) == id))
                    .unwrap_or(0)
            }
        };
        let d = servers[chosen].serve(t);
        rts.push(response_time(world.rtt[client][servers[chosen].host], d));
        delays.push(d);
        let minute = ((t / 60.0) as usize).min(minutes - 1);
        per_minute[minute][chosen] += 1.0 / 60.0;
    }
    Replay {
        rts,
        delays,
        per_minute,
        overhead,
    }
}

fn build_world(args: &AnycastArgs, net: &Network) -> World {
    let clients = args.common.members;
    let k = args.servers;
    let hosts = clients + k;
    let rtt: Vec<Vec<f64>> = (0..hosts)
        .map(|a| {
            (0..hosts)
                .map(|b| {
                    (net.unicast_delay_micros(a, b) + net.unicast_delay_micros(b, a)) as f64 / 1e6
                })
                .collect()
        })
        .collect();
    let mut rng = rng_from_seed(derive_seed(args.common.seed, 0xa11c));
    // Capacity: the clients' whole demand spread over the servers, each between a half and
    // twice its share, with headroom (the group as a whole is not overloaded).
    let demand = clients as f64 * args.request_rate;
    let capacity: Vec<f64> = (0..k)
        .map(|_| 2.0 * demand / k as f64 * rng.random_range(0.5..2.0))
        .collect();
    let minutes = (args.duration.as_secs_f64() / 60.0).ceil().max(1.0) as usize;
    // Each minute each server's background takes up to 85% of it; where the group as a whole
    // would then be busier than `max_utilisation`, that minute's draws shrink in proportion
    // (a single server may still be nearly full; the group is never saturated, so the choice
    // of server, not a lack of capacity, decides the response times).
    let total_capacity: f64 = capacity.iter().sum();
    let mut background = vec![Vec::with_capacity(minutes); k];
    for _ in 0..minutes {
        let draws: Vec<f64> = capacity
            .iter()
            .map(|&cap| cap * rng.random_range(0.0..0.85))
            .collect();
        let room = (args.max_utilisation * total_capacity - demand).max(0.0);
        let drawn: f64 = draws.iter().sum();
        let shrink = if drawn > room { room / drawn } else { 1.0 };
        for (s, d) in draws.into_iter().enumerate() {
            background[s].push(d * shrink);
        }
    }
    let mut requests = Vec::new();
    for c in 0..clients {
        let mut t = 0.0;
        loop {
            let u: f64 = rng.random_range(f64::EPSILON..1.0);
            t += -u.ln() / args.request_rate.max(1e-9);
            if t >= args.duration.as_secs_f64() {
                break;
            }
            requests.push((t, c));
        }
    }
    requests.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    World {
        clients,
        rtt,
        capacity,
        background,
        requests,
    }
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
    let random = replay(&world, Policy::Random, args, seed);
    let nearest = replay(&world, Policy::Nearest, args, seed);
    let anycast = replay(
        &world,
        Policy::Anycast(Selection::Weighted(args.threshold), Model::Additive),
        args,
        seed,
    );
    let uniform = replay(
        &world,
        Policy::Anycast(Selection::Equivalent(args.threshold), Model::Additive),
        args,
        seed,
    );
    let two = replay(
        &world,
        Policy::Anycast(Selection::TwoChoices, Model::Additive),
        args,
        seed,
    );
    let scaled = replay(
        &world,
        Policy::Anycast(Selection::Weighted(args.threshold), Model::Scaled),
        args,
        seed,
    );
    let oracle = replay(&world, Policy::Oracle, args, seed);
    let busiest = |r: &Replay| {
        let k = world.capacity.len();
        let totals: Vec<f64> = (0..k)
            .map(|s| r.per_minute.iter().map(|m| m[s]).sum::<f64>())
            .collect();
        let all: f64 = totals.iter().sum();
        totals.iter().fold(0.0f64, |a, &b| a.max(b)) / all.max(1e-9)
    };
    let mut thresholds = Vec::new();
    let out = Anycast::out_dir(args);
    report::create_dir(&out)?;
    for threshold in [0.0, 0.1, 0.3, 0.6, 1.0] {
        let r = replay(
            &world,
            Policy::Anycast(Selection::Weighted(threshold), Model::Additive),
            args,
            seed,
        );
        thresholds.push((threshold, round6(mean_std(&r.rts).0), round6(busiest(&r))));
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
        mean_rt_anycast_scaled_s: round6(mean_std(&scaled.rts).0),
        mean_rt_anycast_two_choices_s: round6(mean_std(&two.rts).0),
        mean_rt_anycast_uniform_s: round6(mean_std(&uniform.rts).0),
        std_rt_random_s: round6(s_r),
        std_rt_nearest_s: round6(s_n),
        std_rt_anycast_s: round6(s_a),
        std_rt_oracle_s: round6(s_o),
        mean_server_delay_anycast_s: round6(mean_std(&anycast.delays).0),
        mean_server_delay_oracle_s: round6(mean_std(&oracle.delays).0),
        server_load_max_share: round6(busiest(&anycast)),
        overhead_msgs_per_s: round6(anycast.overhead as f64 / duration),
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

/// The figures as a table.
pub fn table(s: &AnycastSummary) -> String {
    let mut t = Table::new(&["policy", "mean RT s", "std s"]);
    for (name, m, sd) in [
        ("random", s.mean_rt_random_s, s.std_rt_random_s),
        ("nearest", s.mean_rt_nearest_s, s.std_rt_nearest_s),
        ("anycast", s.mean_rt_anycast_s, s.std_rt_anycast_s),
        ("oracle", s.mean_rt_oracle_s, s.std_rt_oracle_s),
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
        let sd = if sd.is_nan() {
            "-".to_owned()
        } else {
            format!("{sd:.3}")
        };
        t.row(&[name.to_owned(), format!("{m:.3}"), sd]);
    }
    let thresholds: Vec<String> = s
        .thresholds
        .iter()
        .map(|(th, m, share)| format!("{th}: {m:.3} s, busiest {share:.2}"))
        .collect();
    format!(
        "{}time at the server: anycast {:.3} s, oracle {:.3} s\nanycast busiest server share {:.2}, overhead {:.1} msgs/s\nthresholds: {}\n",
        t.render(),
        s.mean_server_delay_anycast_s,
        s.mean_server_delay_oracle_s,
        s.server_load_max_share,
        s.overhead_msgs_per_s,
        thresholds.join("; ")
    )
}
