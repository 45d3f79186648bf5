//! `run conferencing`: the conferencing paper's comparison. The same hosts (a measured latency
//! matrix by default, with a few slow ADSL uplinks among them) and the same seed run under each
//! scheme: `sequential-unicast` (each receiver alone on its unicast path: the reference),
//! `random`, `latency-only`, `bandwidth-only` and `bandwidth-latency` (Narada with that routing
//! metric). Senders stream synthetic video; every overlay edge gets its fair share of the access
//! links and drops the least important packets where its share is short. After the trees settle,
//! each receiver's bandwidth and RTT are measured against sequential unicast's; then one busy
//! relay's uplink loses most of its capacity for a minute and the trees must route around it.

mod outputs;
mod overlay;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, ValueEnum};
use narada::MetricKind;
use overlay_core::{Bandwidth, Time};
use serde::Serialize;

use self::outputs::write_outputs;
use self::overlay::OverlayRun;
use super::narada::load_config;
use super::{CommonArgs, RunHeader, Scenario, ScenarioError};
use crate::network::Network;
use crate::report::{self, Table, round6};
use crate::spec::duration_arg;
use crate::stats::Distribution;
use crate::tree::quality::{References, TreeQuality};

/// The WonderNetwork matrix shipped in `data/`.
pub const DEFAULT_MATRIX: &str = "matrix:data/latency/wondernetwork-2018-242cities-rtt-ms.csv";

/// A scheme of the comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scheme {
    /// Each receiver alone on its unicast path from the source: the reference.
    SequentialUnicast,
    /// Narada with random link weights.
    Random,
    /// Narada routing by latency.
    LatencyOnly,
    /// Narada routing by bandwidth, ties by hops.
    BandwidthOnly,
    /// Narada routing by bandwidth, then latency.
    BandwidthLatency,
}

impl Scheme {
    /// The scheme's name, as `--schemes` takes it.
    pub fn name(self) -> &'static str {
        match self {
            Self::SequentialUnicast => "sequential-unicast",
            Self::Random => "random",
            Self::LatencyOnly => "latency-only",
            Self::BandwidthOnly => "bandwidth-only",
            Self::BandwidthLatency => "bandwidth-latency",
        }
    }

    /// Narada's metric for the scheme (none for the reference).
    pub fn metric(self) -> Option<MetricKind> {
        match self {
            Self::SequentialUnicast => None,
            Self::Random => Some(MetricKind::Random),
            Self::LatencyOnly => Some(MetricKind::Latency),
            Self::BandwidthOnly => Some(MetricKind::BandwidthOnly),
            Self::BandwidthLatency => Some(MetricKind::BandwidthLatency),
        }
    }
}

/// Arguments of `run conferencing`.
#[derive(Debug, Clone, Args)]
pub struct ConferencingArgs {
    /// The network (default: the WonderNetwork latency matrix in data/).
    #[arg(long, default_value = DEFAULT_MATRIX)]
    pub topology: String,
    /// Hosts in the conference (the paper's sets had 13 and 20).
    #[arg(long, default_value_t = 20)]
    pub members: usize,
    /// Seed of host choice, access links and protocol randomness.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Seed of the protocols' randomness alone (default: --seed): the same placement, access
    /// links and senders under other random choices of the members and the simulator, to tell
    /// what a placement allows from one run's luck.
    #[arg(long)]
    pub protocol_seed: Option<u64>,
    /// Access links (default: SimBlock's regional bandwidths with 15% slow ADSL hosts).
    #[arg(long, default_value = "simblock:year=2019,adsl=0.15")]
    pub access: String,
    /// Output directory (default: out/conferencing).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Each sender's stream rate.
    #[arg(long, default_value = "2.4mbps")]
    pub rate: Bandwidth,
    /// Members sending at once (those with the largest uplinks; all of them at most).
    #[arg(long, default_value_t = 1)]
    pub senders: usize,
    /// Simulated time of each scheme's run.
    #[arg(long, default_value = "360s", value_parser = duration_arg)]
    pub duration: Duration,
    /// Schemes to run (default: all).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub schemes: Vec<Scheme>,
    /// Skip the congestion episode.
    #[arg(long)]
    pub no_congestion: bool,
    /// A JSON file of Narada settings (any subset; the metric is set per scheme).
    #[arg(long)]
    pub narada_config: Option<PathBuf>,
    /// Run the members with `esm conference`'s timing instead of the papers' (pings every
    /// 400 ms instead of 1 s, repairs of media at most 400 ms old instead of 2 s), over the
    /// Narada settings; `sim-to-real` always does.
    #[arg(long)]
    pub conversation: bool,
    /// One-way latency past which a tree path counts as worth no bandwidth (the bandwidth
    /// metrics' delay budget; receivers play what arrives within 400 ms). Unless the Narada
    /// settings give one.
    #[arg(long, default_value = "300ms", value_parser = duration_arg)]
    pub delay_budget: Duration,
    /// Rank paths by width alone, however long (the conferencing paper's metric).
    #[arg(long)]
    pub no_delay_budget: bool,
    /// Crash the busiest relay (the parent of the most receivers of other sources; a sender
    /// only when no other member relays, and never the only one) at this fraction of the run,
    /// after the measurement window, and report the longest stall a receiver sees of a source
    /// still live (none: no crash).
    #[arg(long)]
    pub crash_at: Option<f64>,
    /// The measurement window, from the start of the run, in place of the usual one (a sixth
    /// of the run to 0.55 of it): for a run measured on a real run's timeline.
    #[arg(skip)]
    pub window: Option<(Duration, Duration)>,
}

impl ConferencingArgs {
    fn common(&self) -> CommonArgs {
        CommonArgs {
            topology: self.topology.clone(),
            members: self.members,
            seed: self.seed,
            access: self.access.clone(),
            out: self.out.clone(),
        }
    }

    /// The schemes to run, in the paper's order.
    pub fn scheme_list(&self) -> Vec<Scheme> {
        let mut list = if self.schemes.is_empty() {
            Scheme::value_variants().to_vec()
        } else {
            self.schemes.clone()
        };
        list.sort();
        list.dedup();
        list
    }

    fn timeline(&self) -> Timeline {
        let end = Time::ZERO + self.duration;
        let d = self.duration.as_secs_f64();
        let at = |fraction: f64| Time::ZERO + Duration::from_secs_f64(d * fraction);
        let window = self.window.map_or_else(
            || (at(1.0 / 6.0), at(0.55)),
            |(from, until)| (Time::ZERO + from, (Time::ZERO + until).min(end)),
        );
        Timeline {
            stream_start: Time::from_secs(10).min(at(0.1)),
            window,
            congestion: (!self.no_congestion)
                .then(|| (at(0.6), at(0.6) + Duration::from_secs_f64(d / 6.0))),
            // Never inside the window.
            crash: self.crash_at.map(|f| at(f.min(1.0)).max(window.1)),
            end,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Timeline {
    stream_start: Time,
    /// Steady-state measurement window.
    window: (Time, Time),
    /// Congestion episode.
    congestion: Option<(Time, Time)>,
    /// When the busiest relay crashes.
    crash: Option<Time>,
    end: Time,
}

/// One scheme's figures.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SchemeFigures {
    /// Mean over (sender, receiver) pairs of received bandwidth over sequential unicast's.
    pub mean_bw_ratio: f64,
    /// 10th percentile of that ratio.
    pub bw_ratio_p10: f64,
    /// Median RTT between sender and receiver along the tree, ms.
    pub rtt_p50_ms: f64,
    /// 90th percentile RTT, ms.
    pub rtt_p90_ms: f64,
    /// Tree resource usage over IP multicast's (router maps) or over the members' minimum
    /// spanning tree (matrices), mean over senders.
    pub ru_ratio: Option<f64>,
    /// Control and probe bytes over data bytes in the measurement window.
    pub overhead_ratio: f64,
    /// Share of that overhead spent on active bandwidth probes.
    pub probe_share: f64,
    /// Mean over receivers of the bandwidth received from all senders over what their paths
    /// allow (with one sender, the mean bandwidth ratio capped at 1).
    #[serde(default)]
    pub mean_receiver_ratio: f64,
    /// Worst receiver: bandwidth received from all senders over what its paths allow (its
    /// unicast paths, its download shared among the senders).
    pub min_receiver_ratio: f64,
    /// Share of receivers getting at least 0.9 of what their paths allow.
    pub receivers_at_0_9: f64,
    /// The worst (sender, receiver) pair: its bandwidth over its fair share (its unicast path,
    /// the receiver's download shared among the senders).
    #[serde(default)]
    pub min_pair_share: f64,
    /// Mean bandwidth of the receivers cut off by the congestion episode, over sequential
    /// unicast's: before, during, and after it.
    pub congestion_bw_ratio: Option<[f64; 3]>,
    /// Receivers fed by the sender itself, mean over senders (end of the window).
    pub sender_children: f64,
    /// Mean overlay hops from sender to receiver.
    pub tree_depth_mean: f64,
    /// The relay crashed (`--crash-at`), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crashed: Option<usize>,
    /// The longest a receiver went without a source's stream after the crash, seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worst_stall_s: Option<f64>,
}

/// `summary.json` of `run conferencing`.
#[derive(Debug, Clone, Serialize)]
pub struct ConferencingSummary {
    #[serde(flatten)]
    #[allow(missing_docs)]
    pub header: RunHeader,
    /// Stream rate, Mbps.
    pub rate_mbps: f64,
    /// Senders.
    pub senders: Vec<usize>,
    /// Seed of the protocols' randomness (the run's seed unless `--protocol-seed` gave one).
    pub protocol_seed: u64,
    /// The members' total upload over what every receiver getting every stream in full needs
    /// (senders x receivers x rate): under 1, no tree can give everyone everything.
    pub upload_over_demand: f64,
    /// The same in whole streams: the child streams the members' uploads carry (each member's
    /// upload over the rate, rounded down) over those every receiver getting every stream
    /// needs (senders x receivers). Under 1, some receivers must take a stream from a parent
    /// whose upload cannot carry it in full, whatever the trees.
    pub stream_slots_over_demand: f64,
    /// Figures per scheme.
    pub schemes: BTreeMap<&'static str, SchemeFigures>,
}

/// Per (sender, receiver) results of one scheme.
#[derive(Debug, Clone)]
struct PairResult {
    sender: usize,
    receiver: usize,
    bw_bps: f64,
    rtt_ms: f64,
}

struct SchemeRun {
    figures: SchemeFigures,
    pairs: Vec<PairResult>,
    /// Mean received Mbps per second: all receivers, and the ones cut off by congestion.
    series: Vec<(f64, f64, Option<f64>)>,
}

/// `run conferencing` as a [`Scenario`].
#[derive(Debug, Clone, Copy)]
pub struct Conferencing;

impl Scenario for Conferencing {
    const NAME: &'static str = "conferencing";
    type Args = ConferencingArgs;
    type Summary = ConferencingSummary;

    fn out(args: &ConferencingArgs) -> Option<&Path> {
        args.out.as_deref()
    }

    fn run(args: &ConferencingArgs) -> Result<ConferencingSummary, ScenarioError> {
        run(args)
    }

    fn headline(
        _args: &ConferencingArgs,
        summary: &ConferencingSummary,
        elapsed: Duration,
    ) -> String {
        let mut line = format!(
            "conferencing on {} with {} members, {} sender(s) at {} Mbps (seed {}{}; uploads \
             x{:.2} of the demand, x{:.2} in whole streams) in {:.1} s",
            summary.header.topology_name,
            summary.header.members,
            summary.senders.len(),
            summary.rate_mbps,
            summary.header.seed,
            if summary.protocol_seed == summary.header.seed {
                String::new()
            } else {
                format!(", protocols' seed {}", summary.protocol_seed)
            },
            summary.upload_over_demand,
            summary.stream_slots_over_demand,
            elapsed.as_secs_f64()
        );
        line.push_str(&summary.header.capacities_line());
        line
    }

    fn table(summary: &ConferencingSummary) -> String {
        table(summary)
    }
}

/// One (sender, receiver) pair's result under one scheme, with its reference.
#[derive(Debug, Clone, Serialize)]
pub struct PairFigures {
    /// The scheme.
    pub scheme: Scheme,
    /// The sender (member number).
    pub sender: usize,
    /// The receiver.
    pub receiver: usize,
    /// Mean bandwidth received in the measurement window, bit/s.
    pub bw_bps: f64,
    /// Twice the mean one-way delay of what arrived in the window, ms (NaN: nothing arrived).
    pub rtt_ms: f64,
    /// What sequential unicast gives the pair: its path alone, capped at the rate, bit/s.
    pub alone_bps: f64,
    /// What the receiver's paths allow it from this sender with every sender at once, bit/s.
    pub allowance_bps: f64,
}

/// Run every scheme and write the comparison.
pub fn run(args: &ConferencingArgs) -> Result<ConferencingSummary, ScenarioError> {
    run_with_pairs(args).map(|(summary, _)| summary)
}

/// [`run`], also returning every scheme's per-pair results.
pub fn run_with_pairs(
    args: &ConferencingArgs,
) -> Result<(ConferencingSummary, Vec<PairFigures>), ScenarioError> {
    let common = args.common();
    let base = load_config(args.narada_config.as_deref())?;
    // The conversation's pings and repairs; the delay budget stays the one given (below).
    let base = if args.conversation {
        let budget = base.routing.delay_budget;
        let mut conversation = base.for_conversation();
        conversation.routing.delay_budget = budget;
        conversation
    } else {
        base
    };
    let net = common.network()?;
    let n = net.members();
    if args.senders == 0 || args.senders > n {
        return Err(ScenarioError::Argument(format!(
            "--senders must be between 1 and {n} (the members)"
        )));
    }
    // The senders: the hosts with the largest uplinks (the paper's sources sat at universities).
    let mut by_upload: Vec<usize> = (0..n).collect();
    by_upload.sort_by(|&a, &b| {
        net.hosts()[b]
            .access
            .up
            .cmp(&net.hosts()[a].access.up)
            .then(a.cmp(&b))
    });
    let mut senders: Vec<usize> = by_upload[..args.senders].to_vec();
    senders.sort_unstable();
    let header = RunHeader::new(Conferencing::NAME, &common, &net);
    let reference = sequential_unicast(&net, &senders, args.rate.bps_f64());
    let protocol_seed = args.protocol_seed.unwrap_or(common.seed);
    let timeline = args.timeline();
    let mut schemes = BTreeMap::new();
    let mut runs = BTreeMap::new();
    for scheme in args.scheme_list() {
        let run = match scheme.metric() {
            None => reference_run(&net, &senders, &reference),
            Some(metric) => {
                let net = common.network()?;
                let mut config = base.clone();
                config.routing.metric = metric;
                if args.no_delay_budget {
                    config.routing.delay_budget = None;
                } else if config.routing.delay_budget.is_none() {
                    config.routing.delay_budget = Some(args.delay_budget);
                }
                config.bandwidth.stream_rate = args.rate;
                let started = std::time::Instant::now();
                let run = OverlayRun::new(
                    net,
                    &config,
                    args.rate,
                    &senders,
                    timeline,
                    &reference,
                    protocol_seed,
                )
                .run();
                eprintln!(
                    "  {} in {:.1} s",
                    scheme.name(),
                    started.elapsed().as_secs_f64()
                );
                run
            }
        };
        schemes.insert(scheme.name(), run.figures.clone());
        runs.insert(scheme, run);
    }
    // Each member's upload counts up to what it could usefully send (every stream to everyone).
    let demand = args.rate.bps_f64() * (n - 1) as f64 * senders.len() as f64;
    let upload: f64 = (0..n)
        .map(|m| net.hosts()[m].access.up.bps_f64().min(demand))
        .sum();
    // In whole streams: each receiver of each stream needs a parent whose upload carries it.
    let child_streams = (n - 1) as f64 * senders.len() as f64;
    let slots: f64 = (0..n)
        .map(|m| (net.hosts()[m].access.up.bps_f64() / args.rate.bps_f64().max(1.0)).floor())
        .map(|slots| slots.min(child_streams))
        .sum();
    let summary = ConferencingSummary {
        header,
        rate_mbps: args.rate.mbps_f64(),
        senders,
        protocol_seed,
        upload_over_demand: round6(upload / demand.max(1.0)),
        stream_slots_over_demand: round6(slots / child_streams.max(1.0)),
        schemes,
    };
    write_outputs(
        &Conferencing::out_dir(args),
        &summary,
        &runs,
        &reference,
        &net,
        timeline,
    )?;
    let pairs = runs
        .iter()
        .flat_map(|(&scheme, run)| run.pairs.iter().map(move |p| (scheme, p)))
        .map(|(scheme, p)| {
            let (alone_bps, _, allowance_bps) = reference.pairs[&(p.sender, p.receiver)];
            PairFigures {
                scheme,
                sender: p.sender,
                receiver: p.receiver,
                bw_bps: p.bw_bps,
                rtt_ms: p.rtt_ms,
                alone_bps,
                allowance_bps,
            }
        })
        .collect();
    Ok((summary, pairs))
}

/// What each receiver gets alone on its unicast path from each sender (bits per second) and the
/// RTT of that path (ms), and what its paths allow with every sender at once.
struct Reference {
    /// (sender, receiver) -> (bandwidth, RTT ms, allowance with all senders).
    pairs: BTreeMap<(usize, usize), (f64, f64, f64)>,
}

fn sequential_unicast(net: &Network, senders: &[usize], rate: f64) -> Reference {
    let mut pairs = BTreeMap::new();
    for &s in senders {
        for r in (0..net.members()).filter(|&r| r != s) {
            let alone = net.path_capacity(s, r).bps_f64().min(rate);
            let rtt = 2.0 * net.unicast_delay_micros(s, r) as f64 / 1e3;
            let streams = senders.iter().filter(|&&x| x != r).count().max(1) as f64;
            let allowance = alone.min(net.hosts()[r].access.down.bps_f64() / streams);
            pairs.insert((s, r), (alone, rtt, allowance));
        }
    }
    Reference { pairs }
}

fn reference_run(net: &Network, senders: &[usize], reference: &Reference) -> SchemeRun {
    let pairs: Vec<PairResult> = reference
        .pairs
        .iter()
        .map(|(&(sender, receiver), &(bw, rtt, _))| PairResult {
            sender,
            receiver,
            bw_bps: bw,
            rtt_ms: rtt,
        })
        .collect();
    // Naive unicast's tree: every receiver straight from the sender.
    let ru = mean_ru(net, senders, |s| {
        (0..net.members()).map(|m| (m != s).then_some(s)).collect()
    });
    let mut figures = figures_of(&pairs, reference);
    figures.ru_ratio = ru;
    (figures.sender_children, figures.tree_depth_mean) = tree_shape(senders, |s| {
        (0..net.members()).map(|m| (m != s).then_some(s)).collect()
    });
    SchemeRun {
        figures,
        pairs,
        series: Vec::new(),
    }
}

/// Resource usage of the senders' trees over the reference (IP multicast on router maps, the
/// minimum spanning tree of the members on matrices), averaged over senders.
fn mean_ru(
    net: &Network,
    senders: &[usize],
    mut parents: impl FnMut(usize) -> Vec<Option<usize>>,
) -> Option<f64> {
    let mut ratios = Vec::new();
    if net.has_physical_links() {
        let refs = References::compute(net);
        for &s in senders {
            let q = TreeQuality::measure(net, &refs, &[s], &mut parents, |_| true);
            ratios.extend(q.ru_ratio());
        }
    } else {
        let mst = crate::tree::bounds::minimum_spanning_tree_ms(net);
        for &s in senders {
            let tree: f64 = parents(s)
                .iter()
                .enumerate()
                .filter_map(|(m, p)| p.map(|p| net.unicast_delay_micros(p, m) as f64 / 1e3))
                .sum();
            ratios.push(tree / mst.max(1e-9));
        }
    }
    (!ratios.is_empty()).then(|| round6(ratios.iter().sum::<f64>() / ratios.len() as f64))
}

fn figures_of(pairs: &[PairResult], reference: &Reference) -> SchemeFigures {
    let ratios: Vec<f64> = pairs
        .iter()
        .map(|p| p.bw_bps / reference.pairs[&(p.sender, p.receiver)].0.max(1.0))
        .collect();
    let ratios = Distribution::new(ratios);
    let rtts = Distribution::new(pairs.iter().map(|p| p.rtt_ms).collect());
    // Per receiver: everything received over everything allowed.
    let mut per_receiver: BTreeMap<usize, (f64, f64)> = BTreeMap::new();
    for p in pairs {
        let allowed = reference.pairs[&(p.sender, p.receiver)].2;
        let entry = per_receiver.entry(p.receiver).or_default();
        entry.0 += p.bw_bps;
        entry.1 += allowed;
    }
    let receiver_ratios: Vec<f64> = per_receiver
        .values()
        .map(|&(got, allowed)| (got / allowed.max(1.0)).min(1.0))
        .collect();
    let at_0_9 = receiver_ratios.iter().filter(|&&r| r >= 0.9).count() as f64
        / receiver_ratios.len().max(1) as f64;
    let min_pair_share = pairs
        .iter()
        .map(|p| (p.bw_bps / reference.pairs[&(p.sender, p.receiver)].2.max(1.0)).min(1.0))
        .fold(1.0, f64::min);
    SchemeFigures {
        mean_bw_ratio: round6(ratios.mean().unwrap_or(0.0)),
        bw_ratio_p10: round6(ratios.quantile(0.1).unwrap_or(0.0)),
        rtt_p50_ms: round6(rtts.quantile(0.5).unwrap_or(0.0)),
        rtt_p90_ms: round6(rtts.quantile(0.9).unwrap_or(0.0)),
        ru_ratio: None,
        overhead_ratio: 0.0,
        probe_share: 0.0,
        mean_receiver_ratio: round6(
            receiver_ratios.iter().sum::<f64>() / receiver_ratios.len().max(1) as f64,
        ),
        min_receiver_ratio: round6(
            receiver_ratios
                .iter()
                .copied()
                .fold(f64::INFINITY, f64::min)
                .min(1.0),
        ),
        receivers_at_0_9: round6(at_0_9),
        min_pair_share: round6(min_pair_share),
        congestion_bw_ratio: None,
        sender_children: 0.0,
        tree_depth_mean: 0.0,
        crashed: None,
        worst_stall_s: None,
    }
}

/// Children of each sender and mean depth of receivers in the senders' trees.
fn tree_shape(
    senders: &[usize],
    mut parents: impl FnMut(usize) -> Vec<Option<usize>>,
) -> (f64, f64) {
    let (mut children, mut depth_sum, mut receivers) = (0usize, 0usize, 0usize);
    for &s in senders {
        let p = parents(s);
        children += p.iter().filter(|&&x| x == Some(s)).count();
        for m in 0..p.len() {
            let mut at = m;
            let mut hops = 0;
            while let Some(up) = p[at] {
                hops += 1;
                at = up;
                if hops > p.len() {
                    break;
                }
            }
            if at == s && m != s {
                depth_sum += hops;
                receivers += 1;
            }
        }
    }
    let n = senders.len().max(1) as f64;
    (
        round6(children as f64 / n),
        round6(depth_sum as f64 / receivers.max(1) as f64),
    )
}

/// The figures as a table, beside the paper's.
pub fn table(s: &ConferencingSummary) -> String {
    let mut t = Table::new(&[
        "scheme",
        "bw ratio mean (p10)",
        "RTT p50 / p90 ms",
        "RU ratio",
        "overhead (probes)",
        "receivers mean / worst (pair)",
        "congestion before/during/after",
    ]);
    for (name, f) in &s.schemes {
        t.row(&[
            (*name).to_owned(),
            format!("{:.3} ({:.3})", f.mean_bw_ratio, f.bw_ratio_p10),
            format!("{:.0} / {:.0}", f.rtt_p50_ms, f.rtt_p90_ms),
            report::fmt_opt(f.ru_ratio, 2),
            format!("{:.4} ({:.0}%)", f.overhead_ratio, 100.0 * f.probe_share),
            format!(
                "{:.3} / {:.3} ({:.3})",
                f.mean_receiver_ratio, f.min_receiver_ratio, f.min_pair_share
            ),
            f.congestion_bw_ratio.map_or_else(
                || "-".to_owned(),
                |c| format!("{:.2} / {:.2} / {:.2}", c[0], c[1], c[2]),
            ),
        ]);
    }
    let mut out = t.render();
    out.push_str("paper (SIGCOMM 2001): bandwidth-latency ~ sequential unicast; RU 1.49 x IP multicast; overhead 10.8%, 92% probes\n");
    out
}

#[cfg(test)]
mod tests;
