//! `run peers`: Narada beside a modern peer, iroh-gossip's HyParView + PlumTree core, on the same
//! map, member places, seed, joins and stream.
//!
//! Each protocol runs twice. A steady run: members join over the join window, member 0 streams
//! until the end, then every member in turn sends a short burst (see [`crate::group::bursts`]);
//! RDP, link stress, resource usage against IP multicast and duplicate payloads come from those
//! packets, measured the same way for both, and control traffic per member from the second half
//! of the stream. A churn run: the same joins and stream, and during the churn minute a fifth of
//! the members crash and a twentieth leave; measured: the share of the stream live members get.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use iroh_gossip::proto::Config as GossipConfig;
use narada::{Command, NaradaConfig};
use overlay_core::rng::{derive_seed, rng_from_seed};
use overlay_core::{Bandwidth, Time, TrafficClass};
use rand::RngExt;
use rand::seq::SliceRandom;
use serde::Serialize;

use super::narada::load_config;
use super::{CommonArgs, RunHeader, Scenario, ScenarioError, progress};
use crate::group::bursts::{BurstFigures, BurstPlan, CopyTap};
use crate::group::narada::NaradaGroup;
use crate::group::plumtree::{PeerCommand, PlumtreeGroup};
use crate::network::Network;
use crate::report::{self, Curve, Table, fmt_opt, round6};
use crate::spec::duration_arg;
use crate::tree::quality::References;

/// Arguments of `run peers`.
#[derive(Debug, Clone, Args)]
pub struct PeersArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub common: CommonArgs,
    /// Simulated time of the stream (the bursts follow it).
    #[arg(long, default_value = "300s", value_parser = duration_arg)]
    pub duration: Duration,
    /// Rate of the stream member 0 sends once everyone has joined.
    #[arg(long, default_value = "1.2mbps")]
    pub rate: Bandwidth,
    /// Bytes per data packet.
    #[arg(long, default_value_t = 1000)]
    pub packet_bytes: usize,
    /// Members join at random times within this window.
    #[arg(long, default_value = "5s", value_parser = duration_arg)]
    pub join_window: Duration,
    /// Packets each member sends in its burst; figures come from the last.
    #[arg(long, default_value_t = 3)]
    pub burst: usize,
    /// Fraction of the members that crash during the churn minute.
    #[arg(long, default_value_t = 0.2)]
    pub crash_fraction: f64,
    /// Fraction of the members that leave gracefully during the churn minute.
    #[arg(long, default_value_t = 0.05)]
    pub leave_fraction: f64,
    /// When the churn minute starts.
    #[arg(long, default_value = "60s", value_parser = duration_arg)]
    pub churn_at: Duration,
    /// Skip the churn runs (steady figures only).
    #[arg(long)]
    pub no_churn: bool,
    /// A JSON file of Narada settings (any subset of the fields; defaults for the rest).
    #[arg(long)]
    pub narada_config: Option<PathBuf>,
    /// A JSON file of iroh-gossip settings (its `proto::Config`: `membership`, `broadcast`,
    /// `max_message_size`; any subset, iroh-gossip's defaults for the rest).
    #[arg(long)]
    pub plumtree_config: Option<PathBuf>,
}

/// One protocol's figures in `run peers`.
#[derive(Debug, Clone, Serialize)]
pub struct PeerFigures {
    /// Which protocol.
    pub scheme: String,
    /// Median RDP over all ordered pairs (each source's last burst packet).
    pub rdp_p50: f64,
    /// 90th-percentile RDP.
    pub rdp_p90: f64,
    /// Largest RDP.
    pub rdp_max: f64,
    /// Worst link stress over all sources.
    pub stress_max: Option<u64>,
    /// Mean stress over links used.
    pub stress_mean: Option<f64>,
    /// Resource usage over IP multicast's, summed over sources.
    pub ru_ratio: Option<f64>,
    /// Receivers the last burst packets reached over receivers expected.
    pub reachable_fraction: f64,
    /// Payload copies that reached a member that already had the packet, all burst packets.
    pub duplicate_payloads: u64,
    /// Payload copies sent per receiver per burst packet (1 on a tree).
    pub copies_per_delivery: f64,
    /// Control traffic per member over the second half of the stream, kbit/s.
    pub control_kbps_per_member: f64,
    /// Control traffic per member over the whole run, joins and bursts included, kbit/s.
    pub control_kbps_per_member_all: f64,
    /// Mean overlay degree at the end (mesh neighbours; PlumTree's active view).
    pub degree_mean: f64,
    /// Member 0's stream received over expected, steady run.
    pub stream_delivery_ratio: f64,
    /// Member 0's stream received over expected by members while in the group, churn run.
    pub churn_delivery_ratio: Option<f64>,
}

/// `summary.json` of `run peers`.
#[derive(Debug, Clone, Serialize)]
pub struct PeersSummary {
    #[serde(flatten)]
    #[allow(missing_docs)]
    pub header: RunHeader,
    /// Simulated seconds of the stream.
    pub duration_s: f64,
    /// Stream rate, Mbps.
    pub rate_mbps: f64,
    /// Packets per burst.
    pub burst: usize,
    /// Naive unicast's worst stress on the same placement.
    pub unicast_stress_max: Option<u64>,
    /// Members that crashed and left in each churn run.
    pub churn_crashed: usize,
    /// See `churn_crashed`.
    pub churn_left: usize,
    /// iroh-gossip's settings (its defaults unless `--plumtree-config` changed them).
    pub plumtree_config: GossipConfig,
    /// Narada's figures.
    pub narada: PeerFigures,
    /// iroh-gossip's figures.
    pub plumtree: PeerFigures,
}

/// What one run of one protocol gives.
struct RunResult {
    bursts: BurstFigures,
    steady_control: u64,
    all_control: u64,
    degree_mean: f64,
    delivery: f64,
}

/// A crash or a graceful leave of the churn minute.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Departure {
    Crash(usize),
    Leave(usize),
}

impl Departure {
    fn member(self) -> usize {
        match self {
            Self::Crash(m) | Self::Leave(m) => m,
        }
    }
}

/// The shared timeline of a run: joins, stream, bursts, departures.
struct Timeline {
    members: usize,
    stream: Vec<Time>,
    settle: Time,
    end: Time,
    plan: BurstPlan,
    departures: Vec<(Time, Departure)>,
}

impl Timeline {
    fn new(args: &PeersArgs, members: usize, churn: bool) -> Self {
        let stream_start = Time::ZERO + args.join_window + Duration::from_secs(1);
        let end = Time::ZERO + args.duration;
        let interval =
            Duration::from_secs_f64(args.packet_bytes as f64 * 8.0 / args.rate.bps_f64().max(1.0));
        let mut stream = Vec::new();
        let mut at = stream_start;
        while at < end {
            stream.push(at);
            at += interval;
        }
        let mut departures = Vec::new();
        if churn {
            let mut rng = rng_from_seed(derive_seed(args.common.seed, 0x0d1a));
            let mut others: Vec<usize> = (1..members).collect();
            others.shuffle(&mut rng);
            let crash_n =
                ((members as f64 * args.crash_fraction).round() as usize).min(others.len());
            let leave_n = ((members as f64 * args.leave_fraction).round() as usize)
                .min(others.len() - crash_n);
            let churn_at = Time::ZERO + args.churn_at;
            for (k, &m) in others[..crash_n + leave_n].iter().enumerate() {
                let at = churn_at + Duration::from_secs(60).mul_f64(rng.random::<f64>());
                let d = if k < crash_n {
                    Departure::Crash(m)
                } else {
                    Departure::Leave(m)
                };
                departures.push((at, d));
            }
            departures.sort();
        }
        Self {
            members,
            stream,
            settle: Time::ZERO + args.duration / 2,
            end,
            plan: BurstPlan::every_member(members, end + Duration::from_secs(1), args.burst),
            departures,
        }
    }

    /// Until when member `m` is expected to receive the stream.
    fn present_until(&self, m: usize) -> Time {
        self.departures
            .iter()
            .find(|(_, d)| d.member() == m)
            .map_or(self.end, |&(at, _)| at)
    }

    /// Stream packets `m` is expected to receive: sent while it was in the group, at least a
    /// second before it went (or the stream ended).
    fn expected(&self, m: usize) -> impl Iterator<Item = (usize, Time)> + '_ {
        let until = self.present_until(m);
        self.stream
            .iter()
            .copied()
            .enumerate()
            .filter(move |&(_, at)| at + Duration::from_secs(1) <= until)
    }

    /// Stream packets received over expected; `got(m, seq)` says whether `m` has packet `seq`.
    fn delivery(&self, got: impl Fn(usize, usize) -> bool) -> f64 {
        let (mut expected, mut received) = (0u64, 0u64);
        for m in 1..self.members {
            for (seq, _) in self.expected(m) {
                expected += 1;
                received += u64::from(got(m, seq));
            }
        }
        if expected == 0 {
            1.0
        } else {
            received as f64 / expected as f64
        }
    }

    /// Run `advance` through the stream and the bursts in slices of a second, applying the
    /// departures at their times; returns the control bytes (from `control()`) between the
    /// settle time and the end of the stream, and over the whole run.
    fn drive(
        &self,
        mut advance: impl FnMut(Time),
        mut depart: impl FnMut(Time, Departure),
        mut control: impl FnMut() -> u64,
    ) -> (u64, u64) {
        let finish = self.plan.end();
        let bar = progress(finish.as_micros() / 1_000_000, "simulated s");
        let mut t = Time::ZERO;
        let mut advance_to = |at: Time, t: &mut Time| {
            while *t < at {
                *t = (*t + Duration::from_secs(1)).min(at);
                advance(*t);
                bar.set_position(t.as_micros() / 1_000_000);
            }
        };
        // Marks (None) sort before departures at the same instant.
        let mut events: Vec<(Time, Option<Departure>)> = self
            .departures
            .iter()
            .map(|&(at, d)| (at, Some(d)))
            .collect();
        events.push((self.settle, None));
        events.push((self.end, None));
        events.sort();
        let mut marks = Vec::new();
        for (at, event) in events {
            advance_to(at, &mut t);
            match event {
                Some(d) => depart(at, d),
                None => marks.push(control()),
            }
        }
        advance_to(finish, &mut t);
        bar.finish_and_clear();
        let steady = match marks[..] {
            [settle, end, ..] => end.saturating_sub(settle),
            _ => 0,
        };
        (steady, control())
    }
}

fn narada_run(
    net: Network,
    refs: &References,
    config: &NaradaConfig,
    args: &PeersArgs,
    line: &Timeline,
) -> RunResult {
    let mut group = NaradaGroup::new(net, config, args.common.seed);
    let members: Vec<usize> = (0..line.members).collect();
    group.schedule_joins(&members, Time::ZERO, args.join_window);
    group.schedule_stream(
        0,
        line.stream[0],
        line.end,
        args.rate.bps_f64(),
        args.packet_bytes,
    );
    for (i, &s) in line.plan.sources.iter().enumerate() {
        group.schedule_publish(s, line.plan.times(i), args.packet_bytes);
    }
    group.bursts_from = Some(line.plan.start);
    let tap = CopyTap::default();
    group.sim.set_drop_filter(Some(tap.filter(
        line.plan.start,
        |msg: &narada::Message| match msg {
            narada::Message::Data(d) => Some(d.sent_at_us),
            _ => None,
        },
    )));
    let group = std::cell::RefCell::new(group);
    let (steady_control, all_control) = line.drive(
        |t| group.borrow_mut().run_until(t),
        |at, d| {
            let mut g = group.borrow_mut();
            match d {
                Departure::Crash(m) => g.sim.crash(m),
                Departure::Leave(m) => g.sim.schedule_command(at, m, Command::Leave),
            }
        },
        || {
            let g = group.borrow();
            let t = g.sim.traffic();
            t.bytes_of(TrafficClass::Control) + t.bytes_of(TrafficClass::Probe)
        },
    );
    let group = group.into_inner();
    let bursts = BurstFigures::measure(
        group.sim.network(),
        refs,
        &line.plan,
        &tap.copies(),
        &group.burst_arrivals,
        |m| group.is_live(m),
    );
    let degrees = group.degrees();
    let published: Vec<u64> = group.published.iter().map(|&(s, _)| s).collect();
    RunResult {
        bursts,
        steady_control,
        all_control,
        degree_mean: degrees.iter().sum::<usize>() as f64 / degrees.len().max(1) as f64,
        delivery: line.delivery(|m, seq| published.get(seq).is_some_and(|&s| group.log.has(m, s))),
    }
}

fn plumtree_run(
    net: Network,
    refs: &References,
    config: &GossipConfig,
    args: &PeersArgs,
    line: &Timeline,
) -> RunResult {
    let mut group = PlumtreeGroup::new(net, config, args.common.seed);
    let members: Vec<usize> = (0..line.members).collect();
    group.schedule_joins(&members, Time::ZERO, args.join_window);
    group.schedule_packets(0, line.stream.iter().copied(), 0, args.packet_bytes);
    for (i, &s) in line.plan.sources.iter().enumerate() {
        group.schedule_packets(s, line.plan.times(i), 1 << 32, args.packet_bytes);
    }
    let tap = CopyTap::default();
    group.sim.set_drop_filter(Some(tap.filter(
        line.plan.start,
        |msg: &crate::group::plumtree::GossipWire| msg.packet().map(|p| p.sent_at_us),
    )));
    let group = std::cell::RefCell::new(group);
    let (steady_control, all_control) = line.drive(
        |t| group.borrow_mut().run_until(t),
        |at, d| {
            let mut g = group.borrow_mut();
            match d {
                Departure::Crash(m) => g.sim.crash(m),
                Departure::Leave(m) => g.sim.schedule_command(at, m, PeerCommand::Quit),
            }
        },
        || group.borrow().sim.traffic().bytes_of(TrafficClass::Control),
    );
    let group = group.into_inner();
    let start = line.plan.start.as_micros();
    let burst_arrivals: Vec<(usize, u64, Time)> = group
        .arrivals
        .iter()
        .filter(|(_, p, _)| p.sent_at_us >= start)
        .map(|&(m, p, at)| (m, p.sent_at_us, at))
        .collect();
    let stream_got: BTreeSet<(usize, u64)> = group
        .arrivals
        .iter()
        .filter(|(_, p, _)| p.source == 0 && p.sent_at_us < start)
        .map(|&(m, p, _)| (m, p.seq))
        .collect();
    let bursts = BurstFigures::measure(
        group.sim.network(),
        refs,
        &line.plan,
        &tap.copies(),
        &burst_arrivals,
        |m| group.is_live(m),
    );
    let degrees = group.degrees();
    RunResult {
        bursts,
        steady_control,
        all_control,
        degree_mean: degrees.iter().sum::<usize>() as f64 / degrees.len().max(1) as f64,
        delivery: line.delivery(|m, seq| stream_got.contains(&(m, seq as u64))),
    }
}

fn figures(
    scheme: &str,
    steady: &RunResult,
    churn: Option<&RunResult>,
    line: &Timeline,
) -> PeerFigures {
    let b = &steady.bursts;
    let n = line.members.max(1) as f64;
    let steady_s = (line.end - line.settle).as_secs_f64().max(1e-9);
    let all_s = line.plan.end().as_secs_f64().max(1e-9);
    let deliveries = (b.packets as f64 * (n - 1.0)).max(1.0);
    PeerFigures {
        scheme: scheme.to_owned(),
        rdp_p50: round6(b.rdp.quantile(0.5).unwrap_or(f64::NAN)),
        rdp_p90: round6(b.rdp.quantile(0.9).unwrap_or(f64::NAN)),
        rdp_max: round6(b.rdp.max().unwrap_or(f64::NAN)),
        stress_max: b.stress.max(),
        stress_mean: b.stress.mean().map(round6),
        ru_ratio: b.ru_ratio().map(round6),
        reachable_fraction: round6(b.reachable_fraction()),
        duplicate_payloads: b.duplicates,
        copies_per_delivery: round6(b.copies as f64 / deliveries),
        control_kbps_per_member: round6(steady.steady_control as f64 * 8.0 / steady_s / n / 1e3),
        control_kbps_per_member_all: round6(steady.all_control as f64 * 8.0 / all_s / n / 1e3),
        degree_mean: round6(steady.degree_mean),
        stream_delivery_ratio: round6(steady.delivery),
        churn_delivery_ratio: churn.map(|c| round6(c.delivery)),
    }
}

/// `run peers` as a [`Scenario`].
#[derive(Debug, Clone, Copy)]
pub struct Peers;

impl Scenario for Peers {
    const NAME: &'static str = "peers";
    type Args = PeersArgs;
    type Summary = PeersSummary;

    fn out(args: &PeersArgs) -> Option<&Path> {
        args.common.out.as_deref()
    }

    fn run(args: &PeersArgs) -> Result<PeersSummary, ScenarioError> {
        run(args)
    }

    fn headline(_args: &PeersArgs, summary: &PeersSummary, elapsed: Duration) -> String {
        let mut line = format!(
            "peers on {} with {} members (seed {}): Narada beside iroh-gossip (HyParView + \
             PlumTree), {:.0} simulated s each in {:.1} s",
            summary.header.topology_name,
            summary.header.members,
            summary.header.seed,
            summary.duration_s,
            elapsed.as_secs_f64()
        );
        line.push_str(&summary.header.capacities_line());
        line
    }

    fn table(summary: &PeersSummary) -> String {
        table(summary)
    }
}

/// Run the scenario and write its results.
pub fn run(args: &PeersArgs) -> Result<PeersSummary, ScenarioError> {
    if args.burst == 0 {
        return Err(ScenarioError::Argument("--burst must be at least 1".into()));
    }
    if !(0.0..=1.0).contains(&(args.crash_fraction + args.leave_fraction)) {
        return Err(ScenarioError::Argument(
            "--crash-fraction plus --leave-fraction must be within 0..1".into(),
        ));
    }
    let narada_config = load_config(args.narada_config.as_deref())?;
    let gossip_config: GossipConfig = super::load_json_config(args.plumtree_config.as_deref())?;
    let net = args.common.network()?;
    let n = net.members();
    let refs = References::compute(&net);
    let steady = Timeline::new(args, n, false);
    let churn = (!args.no_churn).then(|| Timeline::new(args, n, true));
    let header = RunHeader::new(Peers::NAME, &args.common, &net);

    let narada_steady = narada_run(args.common.network()?, &refs, &narada_config, args, &steady);
    let narada_churn = match &churn {
        Some(line) => Some(narada_run(
            args.common.network()?,
            &refs,
            &narada_config,
            args,
            line,
        )),
        None => None,
    };
    let plum_steady = plumtree_run(args.common.network()?, &refs, &gossip_config, args, &steady);
    let plum_churn = churn
        .as_ref()
        .map(|line| plumtree_run(net, &refs, &gossip_config, args, line));
    let summary = PeersSummary {
        header,
        duration_s: args.duration.as_secs_f64(),
        rate_mbps: args.rate.mbps_f64(),
        burst: args.burst,
        unicast_stress_max: refs.unicast_stress_max,
        churn_crashed: churn.as_ref().map_or(0, |l| {
            l.departures
                .iter()
                .filter(|(_, d)| matches!(d, Departure::Crash(_)))
                .count()
        }),
        churn_left: churn.as_ref().map_or(0, |l| {
            l.departures
                .iter()
                .filter(|(_, d)| matches!(d, Departure::Leave(_)))
                .count()
        }),
        plumtree_config: gossip_config.clone(),
        narada: figures("Narada", &narada_steady, narada_churn.as_ref(), &steady),
        plumtree: figures(
            "iroh-gossip PlumTree",
            &plum_steady,
            plum_churn.as_ref(),
            &steady,
        ),
    };
    write_outputs(
        &Peers::out_dir(args),
        &summary,
        &narada_steady,
        &plum_steady,
    )?;
    Ok(summary)
}

fn write_outputs(
    out: &Path,
    summary: &PeersSummary,
    narada: &RunResult,
    plumtree: &RunResult,
) -> Result<(), ScenarioError> {
    report::create_dir(out)?;
    report::write_json(&out.join("summary.json"), summary)?;
    let rows = |scheme: &'static str, r: &RunResult| {
        r.bursts
            .rdp
            .sorted()
            .iter()
            .map(move |v| vec![scheme.to_owned(), format!("{v:.6}")])
            .collect::<Vec<_>>()
    };
    let mut all = rows("narada", narada);
    all.extend(rows("plumtree", plumtree));
    report::write_csv(&out.join("rdp.csv"), &["scheme", "rdp"], all)?;
    let stress_rows = |scheme: &'static str, r: &RunResult| {
        r.bursts
            .stress
            .iter()
            .map(move |(v, c)| vec![scheme.to_owned(), v.to_string(), c.to_string()])
            .collect::<Vec<_>>()
    };
    let mut stress = stress_rows("narada", narada);
    stress.extend(stress_rows("plumtree", plumtree));
    report::write_csv(
        &out.join("stress.csv"),
        &["scheme", "stress", "links"],
        stress,
    )?;
    report::plot_cdf(
        &out.join("rdp_cdf.svg"),
        &format!(
            "RDP over all ordered pairs, {} members",
            summary.header.members
        ),
        "relative delay penalty",
        &[
            Curve {
                label: "Narada",
                samples: narada.bursts.rdp.sorted(),
            },
            Curve {
                label: "iroh-gossip (PlumTree)",
                samples: plumtree.bursts.rdp.sorted(),
            },
        ],
    )?;
    Ok(())
}

/// The two protocols side by side.
pub fn table(s: &PeersSummary) -> String {
    let int = |v: Option<u64>| v.map_or_else(|| "n/a".to_owned(), |v| v.to_string());
    let mut t = Table::new(&["metric", "Narada (ours)", "iroh-gossip PlumTree"]);
    let (a, b) = (&s.narada, &s.plumtree);
    t.row(&[
        "RDP p50 / p90".into(),
        format!("{:.2} / {:.2}", a.rdp_p50, a.rdp_p90),
        format!("{:.2} / {:.2}", b.rdp_p50, b.rdp_p90),
    ]);
    t.row(&[
        "worst link stress".into(),
        int(a.stress_max),
        int(b.stress_max),
    ]);
    t.row(&[
        "mean link stress".into(),
        fmt_opt(a.stress_mean, 2),
        fmt_opt(b.stress_mean, 2),
    ]);
    t.row(&[
        "resource usage / IP multicast".into(),
        fmt_opt(a.ru_ratio, 2),
        fmt_opt(b.ru_ratio, 2),
    ]);
    t.row(&[
        "duplicate payloads (all bursts)".into(),
        a.duplicate_payloads.to_string(),
        b.duplicate_payloads.to_string(),
    ]);
    t.row(&[
        "payload copies per delivery".into(),
        format!("{:.3}", a.copies_per_delivery),
        format!("{:.3}", b.copies_per_delivery),
    ]);
    t.row(&[
        "reachable fraction".into(),
        format!("{:.4}", a.reachable_fraction),
        format!("{:.4}", b.reachable_fraction),
    ]);
    t.row(&[
        "control kbps per member".into(),
        format!("{:.2}", a.control_kbps_per_member),
        format!("{:.2}", b.control_kbps_per_member),
    ]);
    t.row(&[
        "degree mean".into(),
        format!("{:.2}", a.degree_mean),
        format!("{:.2}", b.degree_mean),
    ]);
    t.row(&[
        "stream delivery (steady)".into(),
        format!("{:.4}", a.stream_delivery_ratio),
        format!("{:.4}", b.stream_delivery_ratio),
    ]);
    t.row(&[
        format!(
            "stream delivery ({} crash, {} leave)",
            s.churn_crashed, s.churn_left
        ),
        fmt_opt(a.churn_delivery_ratio, 4),
        fmt_opt(b.churn_delivery_ratio, 4),
    ]);
    t.render()
}
