//! `run narada-dynamics`: a streaming group under churn. Members join, then within a minute a
//! fifth of them crash, some leave gracefully and new ones join; later the network itself is
//! partitioned for a while and healed. Measured: how much of the stream live members receive,
//! how long each failure disrupts it, how soon the mesh is whole again after the partition, and
//! whether forwarding ever loops.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use clap::Args;
use narada::Command;
use overlay_core::Time;
use overlay_core::rng::{derive_seed, rng_from_seed};
use rand::RngExt;
use rand::seq::SliceRandom;
use serde::Serialize;

use super::control_phases::{ControlSeries, PhaseControl, kbps_per_member};
use super::narada::{Counters, control_bytes, control_kbps_by_kind, largest_kinds, load_config};
use super::{CommonArgs, RunHeader, Scenario, ScenarioError, progress};
use crate::group::narada::NaradaGroup;
use crate::network::Network;
use crate::report::{self, Line, Table, round6};
use crate::spec::duration_arg;
use crate::stats::Distribution;
use crate::tree::{DeliveryTree, TreeError, cycle_through};

/// Loops kept in the summary (the count goes on).
const LOOPS_KEPT: usize = 16;

/// A forwarding loop seen at a sample.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoopSeen {
    /// Sample time, simulated seconds.
    pub at_s: f64,
    /// The source whose forwarding state had the loop.
    pub source: usize,
    /// The members around it, each forwarding to the one before (each one's upstream is the
    /// next).
    pub members: Vec<usize>,
}

/// Arguments of `run narada-dynamics`.
#[derive(Debug, Clone, Args)]
pub struct DynamicsArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub common: CommonArgs,
    /// Simulated time the run lasts.
    #[arg(long, default_value = "300s", value_parser = duration_arg)]
    pub duration: Duration,
    /// Rate of the stream member 0 sends.
    #[arg(long, default_value = "1.2mbps")]
    pub rate: overlay_core::Bandwidth,
    /// Bytes per data packet.
    #[arg(long, default_value_t = 1000)]
    pub packet_bytes: usize,
    /// Fraction of the initial members that crash during the churn minute.
    #[arg(long, default_value_t = 0.2)]
    pub crash_fraction: f64,
    /// Fraction of the initial members that leave gracefully during the churn minute.
    #[arg(long, default_value_t = 0.05)]
    pub leave_fraction: f64,
    /// New members joining during the churn minute, as a fraction of the initial group.
    #[arg(long, default_value_t = 0.1)]
    pub join_fraction: f64,
    /// When the churn minute starts.
    #[arg(long, default_value = "60s", value_parser = duration_arg)]
    pub churn_at: Duration,
    /// When the network is partitioned in two (by router longitude, or host order on a matrix).
    #[arg(long, default_value = "180s", value_parser = duration_arg)]
    pub partition_at: Duration,
    /// How long the partition lasts.
    #[arg(long, default_value = "20s", value_parser = duration_arg)]
    pub partition_for: Duration,
    /// A member that joins late is expected to receive from this long after its join.
    #[arg(long, default_value = "5s", value_parser = duration_arg)]
    pub join_grace: Duration,
    /// A JSON file of Narada settings (any subset of the fields).
    #[arg(long)]
    pub narada_config: Option<std::path::PathBuf>,
}

/// `summary.json` of `run narada-dynamics`.
#[derive(Debug, Clone, Serialize)]
pub struct DynamicsSummary {
    #[serde(flatten)]
    #[allow(missing_docs)]
    pub header: RunHeader,
    /// Simulated seconds.
    pub duration_s: f64,
    /// Packets received over packets expected by live members (a member is expected to receive
    /// what is sent while it is in the group and reachable in the network).
    pub delivery_ratio: f64,
    /// The same counting only packets that arrived without gap repair.
    pub delivery_ratio_live: f64,
    /// Median time from a crash or leave until every live member receives again, s.
    pub repair_s_p50: f64,
    /// Longest such time, s.
    pub repair_s_max: f64,
    /// Median time from a crash or leave until every member that was *downstream of it* (whose
    /// forwarding chain from the source passed through it at that instant) receives again, s:
    /// the repair of that failure alone. `repair_s_p50` also waits for members cut off by the
    /// next failures, which come faster the larger the group (the churn is a fraction of it).
    pub repair_downstream_s_p50: f64,
    /// Longest such time, s.
    pub repair_downstream_s_max: f64,
    /// Median over failures of the most stream a member downstream of it missed live, s: from
    /// the failure to the publication of the first packet that reached that member live. It is
    /// `repair_downstream_s_p50` without the new path's own delay, which grows with the group.
    pub outage_downstream_s_p50: f64,
    /// Longest such time, s.
    pub outage_downstream_s_max: f64,
    /// Failures measured (crashes and leaves).
    pub failures: usize,
    /// Failures with someone downstream (the others were leaves of the source's tree).
    pub failures_with_downstream: usize,
    /// Time the partition healed, s.
    pub partition_healed_at_s: f64,
    /// Time after which the mesh was whole again (one component, everyone reached), s.
    pub partition_repaired_at_s: Option<f64>,
    /// Seconds from the heal to the repair.
    pub partition_repair_s: Option<f64>,
    /// Sampled (instant, source) pairs, once a second, whose forwarding state held a loop: a
    /// cycle of members each accepting the source's packets from the next and forwarded them by
    /// it, while routes converged after a change. No packet enters such a cycle (none of its
    /// members has an upstream outside it): it shows as a short loss that gap repair fills.
    pub routing_loops_seen: usize,
    /// The first loops seen (at most 16), so a loop can be looked into without rerunning.
    pub loops: Vec<LoopSeen>,
    /// Sampled (instant, source) pairs whose next hops alone formed a cycle.
    pub next_hop_cycles_seen: usize,
    /// Members crashed, left, joined late.
    pub crashed: usize,
    /// See `crashed`.
    pub left: usize,
    /// See `crashed`.
    pub joined_late: usize,
    /// Control and probe traffic over the run, kbit/s per member of the initial group (members
    /// come and go during the churn; each phase below is divided the same way).
    pub control_kbps_per_member: f64,
    /// The same per phase of the run: the joins and the stream's start, the churn minute, the
    /// quiet before the partition, the partition, and after the heal (phases cut short by the
    /// end of the run are shorter; empty ones are left out).
    pub control_by_phase: Vec<PhaseControl>,
    /// `control_kbps_per_member` by kind of message (as `run narada` reports it).
    pub control_kbps_by_kind: BTreeMap<String, f64>,
    /// Protocol counters summed over members still running.
    pub counters: Counters,
}

#[derive(Clone, Copy, Debug)]
struct Presence {
    from: Option<Time>,
    until: Time,
}

/// `run narada-dynamics` as a [`Scenario`].
#[derive(Debug, Clone, Copy)]
pub struct NaradaDynamics;

impl Scenario for NaradaDynamics {
    const NAME: &'static str = "narada-dynamics";
    type Args = DynamicsArgs;
    type Summary = DynamicsSummary;

    fn out(args: &DynamicsArgs) -> Option<&Path> {
        args.common.out.as_deref()
    }

    fn run(args: &DynamicsArgs) -> Result<DynamicsSummary, ScenarioError> {
        run(args)
    }

    fn headline(args: &DynamicsArgs, summary: &DynamicsSummary, elapsed: Duration) -> String {
        let mut line = format!(
            "narada-dynamics on {} with {} members (seed {}), {:.0} simulated s in {:.1} s",
            summary.header.topology_name,
            args.common.members,
            summary.header.seed,
            summary.duration_s,
            elapsed.as_secs_f64()
        );
        line.push_str(&summary.header.capacities_line());
        line
    }

    fn table(summary: &DynamicsSummary) -> String {
        table(summary)
    }
}

/// Run the scenario and write its results.
pub fn run(args: &DynamicsArgs) -> Result<DynamicsSummary, ScenarioError> {
    let config = load_config(args.narada_config.as_deref())?;
    let initial = args.common.members;
    let late = (initial as f64 * args.join_fraction).round() as usize;
    let total = initial + late;
    let mut common = args.common.clone();
    common.members = total;
    let net = common.network()?;
    let labels = partition_labels(&net);
    let mut group = NaradaGroup::new(net, &config, args.common.seed);
    let mut rng = rng_from_seed(derive_seed(args.common.seed, 0x0d1a));
    let end = Time::ZERO + args.duration;
    let stream_start = Time::from_secs(10);
    group.schedule_joins(
        &(0..initial).collect::<Vec<_>>(),
        Time::ZERO,
        Duration::from_secs(5),
    );
    group.schedule_stream(0, stream_start, end, args.rate.bps_f64(), args.packet_bytes);
    let packet_interval =
        Duration::from_secs_f64(args.packet_bytes as f64 * 8.0 / args.rate.bps_f64().max(1.0));

    // Who fails, leaves and joins, and when (the source, member 0, stays).
    let churn_start = Time::ZERO + args.churn_at;
    let churn_time = |rng: &mut overlay_core::rng::ProtocolRng| {
        churn_start + Duration::from_secs(60).mul_f64(rng.random::<f64>())
    };
    let mut others: Vec<usize> = (1..initial).collect();
    others.shuffle(&mut rng);
    let crash_n = ((initial as f64 * args.crash_fraction).round() as usize).min(others.len());
    let leave_n =
        ((initial as f64 * args.leave_fraction).round() as usize).min(others.len() - crash_n);
    let mut events: Vec<(Time, Action)> = Vec::new();
    for &m in &others[..crash_n] {
        events.push((churn_time(&mut rng), Action::Crash(m)));
    }
    for &m in &others[crash_n..crash_n + leave_n] {
        events.push((churn_time(&mut rng), Action::Leave(m)));
    }
    for m in initial..total {
        events.push((churn_time(&mut rng), Action::Join(m)));
    }
    let partition_at = Time::ZERO + args.partition_at;
    let healed_at = partition_at + args.partition_for;
    events.push((partition_at, Action::Partition));
    events.push((healed_at, Action::Heal));
    events.sort_by_key(|&(t, a)| (t, a));

    let mut presence: Vec<Presence> = (0..total)
        .map(|m| Presence {
            from: (m < initial).then_some(stream_start),
            until: end,
        })
        .collect();
    let mut failures: Vec<(Time, usize)> = Vec::new();
    // Per failure, the members downstream of the one that failed, at that instant.
    let mut downstream: Vec<Vec<usize>> = Vec::new();
    let source = group.source.unwrap_or(0);
    let (mut cycles, mut next_hop_cycles) = (0usize, 0usize);
    let mut loops: Vec<LoopSeen> = Vec::new();
    let mut repaired_at: Option<Time> = None;
    let mut track = FailureTracker::default();
    let mut control_series = ControlSeries::default();
    group.log.live_arrivals = Some(Vec::new());

    let bar = progress(args.duration.as_secs(), "simulated s");
    let mut next_event = 0;
    let mut t = Time::ZERO;
    while t < end {
        let step_end = (t + Duration::from_secs(1)).min(end);
        while next_event < events.len() && events[next_event].0 < step_end {
            let (at, action) = events[next_event];
            group.run_until(at);
            match action {
                Action::Crash(m) => {
                    downstream.push(downstream_of(&group.forwarding_parents(source), m));
                    group.sim.crash(m);
                    presence[m].until = at;
                    failures.push((at, m));
                }
                Action::Leave(m) => {
                    downstream.push(downstream_of(&group.forwarding_parents(source), m));
                    group.sim.schedule_command(at, m, Command::Leave);
                    presence[m].until = at;
                    failures.push((at, m));
                }
                Action::Join(m) => {
                    let bootstrap = group.bootstrap_for(&mut rng);
                    group
                        .sim
                        .schedule_command(at, m, Command::Join { bootstrap });
                    presence[m].from = Some(at + args.join_grace);
                }
                Action::Partition => group.sim.set_partition(Some(labels.clone())),
                Action::Heal => group.sim.set_partition(None),
            }
            next_event += 1;
        }
        group.run_until(step_end);
        t = step_end;
        control_series.record(t, control_bytes(&group));
        if let Some(arrivals) = group.log.live_arrivals.as_mut() {
            let batch = std::mem::take(arrivals);
            track.take(&batch, &group.published, &failures);
        }
        // Loops: every source's forwarding state, every second once the group has formed.
        if t >= stream_start {
            let n = group.sim.network().members();
            for s in (0..n).filter(|&s| group.is_live(s)) {
                let forwarding = group.forwarding_parents(s);
                if let Err(e) = DeliveryTree::new(s, forwarding.clone()) {
                    cycles += 1;
                    if let TreeError::Loop(at) = e
                        && loops.len() < LOOPS_KEPT
                    {
                        loops.push(LoopSeen {
                            at_s: round6(t.as_secs_f64()),
                            source: s,
                            members: cycle_through(&forwarding, at),
                        });
                    }
                }
                if DeliveryTree::new(s, group.parents(s)).is_err() {
                    next_hop_cycles += 1;
                }
            }
        }
        if t > healed_at && repaired_at.is_none() && group.mesh_whole() {
            repaired_at = Some(t);
        }
        bar.set_position(t.as_micros() / 1_000_000);
    }
    bar.finish_and_clear();

    let (expected, got, got_live, missing_by_second) =
        delivery(&group, &presence, &labels, partition_at, healed_at);
    let _ = packet_interval;
    let times = track.repair_times(&failures, &downstream, &presence, source, group.sim.now());
    let repair = Distribution::new(times.all);
    let failures_with_downstream = times.downstream.len();
    let repair_downstream = Distribution::new(times.downstream);
    let outage_downstream = Distribution::new(times.outage_downstream);
    let churn_end = churn_start + Duration::from_secs(60);
    let control_by_phase: Vec<PhaseControl> = [
        ("joins and the stream's start", Time::ZERO, churn_start),
        ("churn minute", churn_start, churn_end),
        ("before the partition", churn_end, partition_at),
        ("partition", partition_at, healed_at),
        ("after the heal", healed_at, end),
    ]
    .into_iter()
    .filter_map(|(phase, from, until)| control_series.phase(phase, from, until.min(end), initial))
    .collect();
    let summary = DynamicsSummary {
        header: RunHeader::new(NaradaDynamics::NAME, &common, group.sim.network()),
        duration_s: args.duration.as_secs_f64(),
        delivery_ratio: round6(got as f64 / expected.max(1) as f64),
        delivery_ratio_live: round6(got_live as f64 / expected.max(1) as f64),
        repair_s_p50: round6(repair.quantile(0.5).unwrap_or(0.0)),
        repair_s_max: round6(repair.max().unwrap_or(0.0)),
        repair_downstream_s_p50: round6(repair_downstream.quantile(0.5).unwrap_or(0.0)),
        repair_downstream_s_max: round6(repair_downstream.max().unwrap_or(0.0)),
        outage_downstream_s_p50: round6(outage_downstream.quantile(0.5).unwrap_or(0.0)),
        outage_downstream_s_max: round6(outage_downstream.max().unwrap_or(0.0)),
        failures: failures.len(),
        failures_with_downstream,
        partition_healed_at_s: healed_at.as_secs_f64(),
        partition_repaired_at_s: repaired_at.map(Time::as_secs_f64),
        partition_repair_s: repaired_at.map(|r| round6((r - healed_at).as_secs_f64())),
        routing_loops_seen: cycles,
        loops,
        next_hop_cycles_seen: next_hop_cycles,
        crashed: crash_n,
        left: leave_n,
        joined_late: late,
        control_kbps_per_member: kbps_per_member(
            control_bytes(&group),
            args.duration.as_secs_f64(),
            initial,
        ),
        control_by_phase,
        control_kbps_by_kind: control_kbps_by_kind(
            &group,
            &BTreeMap::new(),
            args.duration.as_secs_f64(),
            initial,
        ),
        counters: Counters::of(&group),
    };
    let out = NaradaDynamics::out_dir(args);
    report::create_dir(&out)?;
    report::write_json(&out.join("summary.json"), &summary)?;
    report::write_csv(
        &out.join("missing.csv"),
        &["second", "packets_missing"],
        missing_by_second.iter().map(|(&t, &c)| vec![t, c]),
    )?;
    report::write_csv(
        &out.join("control.csv"),
        &["second", "control_kbps_per_member"],
        control_series
            .per_interval(initial)
            .into_iter()
            .map(|(t, kbps)| vec![format!("{t:.0}"), format!("{kbps:.3}")]),
    )?;
    let mut sorted_failures = track.per_failure.clone();
    sorted_failures.sort_by(|a, b| a.at_s.total_cmp(&b.at_s));
    report::write_csv(
        &out.join("failures.csv"),
        &[
            "failure_at_s",
            "repair_s",
            "downstream",
            "repair_downstream_s",
            "outage_downstream_s",
        ],
        sorted_failures.iter().map(|f| {
            vec![
                format!("{:.3}", f.at_s),
                format!("{:.3}", f.repair_s),
                f.downstream.to_string(),
                f.repair_downstream_s
                    .map_or_else(String::new, |r| format!("{r:.3}")),
                f.outage_downstream_s
                    .map_or_else(String::new, |r| format!("{r:.3}")),
            ]
        }),
    )?;
    report::plot_lines(
        &out.join("repair.svg"),
        "Time until members receive again, per failure",
        "failure time, simulated s",
        "seconds",
        &[
            Line {
                label: "every live member",
                points: sorted_failures
                    .iter()
                    .map(|f| (f.at_s, f.repair_s))
                    .collect(),
            },
            Line {
                label: "members downstream of the failed one",
                points: sorted_failures
                    .iter()
                    .filter_map(|f| Some((f.at_s, f.repair_downstream_s?)))
                    .collect(),
            },
        ],
    )?;
    Ok(summary)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Action {
    Crash(usize),
    Leave(usize),
    Join(usize),
    Partition,
    Heal,
}

/// Two halves: west and east of the median router longitude (first and second half of hosts on
/// a matrix).
fn partition_labels(net: &Network) -> Vec<u32> {
    let n = net.members();
    match net.graph() {
        Some(g) => {
            let mut xs: Vec<f64> = net
                .hosts()
                .iter()
                .filter_map(|h| h.router.map(|r| g.routers()[r].pos[0]))
                .collect();
            xs.sort_by(f64::total_cmp);
            let median = xs.get(xs.len() / 2).copied().unwrap_or(0.0);
            net.hosts()
                .iter()
                .map(|h| u32::from(h.router.is_some_and(|r| g.routers()[r].pos[0] >= median)))
                .collect()
        }
        None => (0..n).map(|m| u32::from(m >= n / 2)).collect(),
    }
}

/// Packets expected, received, and received without repair, by members while present and
/// reachable from the source (the network partition excuses the side cut off from it).
fn delivery(
    group: &NaradaGroup,
    presence: &[Presence],
    labels: &[u32],
    cut_from: Time,
    cut_until: Time,
) -> (u64, u64, u64, BTreeMap<u64, u64>) {
    let (mut expected, mut got) = (0u64, 0u64);
    let mut missing = BTreeMap::new();
    let source = group.source.unwrap_or(0);
    for (m, p) in presence.iter().enumerate() {
        let Some(from) = p.from else { continue };
        if m == source {
            continue;
        }
        // In flight when the member went or the run ended: not expected.
        let until = p.until.min(group.sim.now()) - Duration::from_secs(1);
        for &(seq, at) in &group.published {
            if at < from || at > until {
                continue;
            }
            if labels[m] != labels[source] && at >= cut_from && at < cut_until {
                continue;
            }
            expected += 1;
            if group.log.has(m, seq) {
                got += 1;
            } else {
                *missing.entry(at.as_micros() / 1_000_000).or_insert(0) += 1;
            }
        }
    }
    let got_live = got.saturating_sub(group.log.recovered);
    (expected, got, got_live, missing)
}

/// For each failure, when each member first received live a packet sent after it.
#[derive(Debug, Default)]
struct FailureTracker {
    /// `first[f][m]`: arrival of the first live packet published after failure `f`, and when
    /// that packet was published.
    first: Vec<Vec<Option<(Time, Time)>>>,
    /// Next failure each member still has to resolve.
    next: Vec<usize>,
    /// Each failure's repair, once computed.
    per_failure: Vec<FailureRepair>,
}

/// One failure's repair, a row of `failures.csv`.
#[derive(Debug, Clone, Copy)]
struct FailureRepair {
    /// When it happened, simulated s.
    at_s: f64,
    /// Until every live member received again, s.
    repair_s: f64,
    /// Members downstream of the failed one at that instant.
    downstream: usize,
    /// Until all of those received again, s (`None`: nobody was downstream).
    repair_downstream_s: Option<f64>,
    /// The most stream any of those missed live, s: from the failure to the publication of the
    /// first packet that reached it live. Unlike `repair_downstream_s` it leaves out the new
    /// path's own delay, which grows with the group, so repairs compare across sizes.
    outage_downstream_s: Option<f64>,
}

impl FailureTracker {
    fn take(
        &mut self,
        arrivals: &[(usize, u64, Time)],
        published: &[(u64, Time)],
        failures: &[(Time, usize)],
    ) {
        for &(m, seq, at) in arrivals {
            let Some(&(_, sent)) = published.get(seq as usize) else {
                continue;
            };
            if self.next.len() <= m {
                self.next.resize(m + 1, 0);
            }
            // A member that joined late has no stake in failures before it.
            while self.next[m] < failures.len() && failures[self.next[m]].0 <= sent {
                let f = self.next[m];
                if self.first.len() <= f {
                    self.first.resize(f + 1, Vec::new());
                }
                if self.first[f].len() <= m {
                    self.first[f].resize(m + 1, None);
                }
                self.first[f][m] = Some((at, sent));
                self.next[m] += 1;
            }
        }
    }

    /// Repair time of each failure: the latest first-arrival among members present from before
    /// it until after it resolved; and the same among those of them downstream of the failed
    /// member (`None` when nobody was).
    fn repair_times(
        &mut self,
        failures: &[(Time, usize)],
        downstream: &[Vec<usize>],
        presence: &[Presence],
        source: usize,
        now: Time,
    ) -> RepairTimes {
        let mut times = RepairTimes::default();
        for (f, &(at, who)) in failures.iter().enumerate() {
            let everyone = 0..presence.len();
            let below = downstream.get(f).map_or(&[][..], Vec::as_slice);
            let worst_all = self
                .worst_first_arrival(f, (at, who), everyone, presence, (source, now))
                .map(|w| w.arrival_s);
            let worst_cut = self.worst_first_arrival(
                f,
                (at, who),
                below.iter().copied(),
                presence,
                (source, now),
            );
            if let Some(w) = worst_all {
                times.all.push(w);
                self.per_failure.push(FailureRepair {
                    at_s: at.as_secs_f64(),
                    repair_s: w,
                    downstream: below.len(),
                    repair_downstream_s: worst_cut.map(|w| w.arrival_s),
                    outage_downstream_s: worst_cut.map(|w| w.published_s),
                });
            }
            if let Some(w) = worst_cut {
                times.downstream.push(w.arrival_s);
                times.outage_downstream.push(w.published_s);
            }
        }
        times
    }

    /// The latest time, after failure `f` at `at` of `who`, at which one of `members` present
    /// across it first received a packet sent after it, and the latest publication of such a
    /// first packet (`None` if no such member); `source` sends, and the run is at `now`.
    fn worst_first_arrival(
        &self,
        f: usize,
        (at, who): (Time, usize),
        members: impl IntoIterator<Item = usize>,
        presence: &[Presence],
        (source, now): (usize, Time),
    ) -> Option<WorstRepair> {
        let mut worst: Option<WorstRepair> = None;
        let mut count = |arrival: Time, published: Time| {
            let w = worst.get_or_insert_default();
            w.arrival_s = w.arrival_s.max((arrival - at).as_secs_f64());
            w.published_s = w.published_s.max((published - at).as_secs_f64());
        };
        for m in members {
            let Some(p) = presence.get(m) else { continue };
            if m == who || m == source || p.from.is_none_or(|from| from > at) || p.until <= at {
                continue;
            }
            let arrival = self.first.get(f).and_then(|v| v.get(m)).copied().flatten();
            match arrival {
                Some((a, published)) if a <= p.until => count(a, published),
                // Never received again before it left itself: counts up to its own exit.
                _ if p.until < now => {}
                // Never received again: the whole rest of the run.
                _ => count(now, now),
            }
        }
        worst
    }
}

/// The worst repair among some members after one failure, s after it.
#[derive(Debug, Default, Clone, Copy)]
struct WorstRepair {
    /// The latest first arrival.
    arrival_s: f64,
    /// The latest publication of a first arrival.
    published_s: f64,
}

/// Per failure: until every live member received again, and for the failures with members
/// downstream, until all of those did and how much stream they missed live (s).
#[derive(Debug, Default)]
struct RepairTimes {
    all: Vec<f64>,
    downstream: Vec<f64>,
    outage_downstream: Vec<f64>,
}

/// The members whose chain of upstreams (`parents[m]` is `m`'s) passes through `who`, in
/// index order. A chain that closes into a cycle or ends without reaching `who` does not.
fn downstream_of(parents: &[Option<usize>], who: usize) -> Vec<usize> {
    #[derive(Clone, Copy, PartialEq)]
    enum Below {
        Unknown,
        Yes,
        No,
    }
    let mut state = vec![Below::Unknown; parents.len()];
    if let Some(s) = state.get_mut(who) {
        *s = Below::Yes;
    }
    let mut chain = Vec::new();
    for m in 0..parents.len() {
        chain.clear();
        let mut at = m;
        let verdict = loop {
            match state.get(at).copied() {
                Some(Below::Yes) => break Below::Yes,
                Some(Below::No) | None => break Below::No,
                Some(Below::Unknown) => {}
            }
            // A chain longer than the group has closed into a cycle.
            if chain.len() > parents.len() {
                break Below::No;
            }
            chain.push(at);
            match parents[at] {
                Some(p) => at = p,
                None => break Below::No,
            }
        };
        for &c in &chain {
            state[c] = verdict;
        }
    }
    (0..parents.len())
        .filter(|&m| m != who && state[m] == Below::Yes)
        .collect()
}

/// The figures as a table beside the targets.
pub fn table(s: &DynamicsSummary) -> String {
    let mut t = Table::new(&["metric", "Narada (ours)", "target"]);
    t.row(&[
        "delivery ratio (with repair)".into(),
        format!("{:.5}", s.delivery_ratio),
        ">= 0.999".into(),
    ]);
    t.row(&[
        "delivery ratio (live only)".into(),
        format!("{:.5}", s.delivery_ratio_live),
        "".into(),
    ]);
    t.row(&[
        "repair after failure p50 / max (every live member)".into(),
        format!("{:.2} s / {:.2} s", s.repair_s_p50, s.repair_s_max),
        "".into(),
    ]);
    t.row(&[
        "repair p50 / max (members downstream of it)".into(),
        format!(
            "{:.2} s / {:.2} s ({} of {} failures)",
            s.repair_downstream_s_p50,
            s.repair_downstream_s_max,
            s.failures_with_downstream,
            s.failures
        ),
        "".into(),
    ]);
    t.row(&[
        "stream missed live p50 / max (downstream)".into(),
        format!(
            "{:.2} s / {:.2} s",
            s.outage_downstream_s_p50, s.outage_downstream_s_max
        ),
        "".into(),
    ]);
    t.row(&[
        "partition repaired after heal".into(),
        s.partition_repair_s
            .map_or_else(|| "never".into(), |r| format!("{r:.1} s")),
        "".into(),
    ]);
    t.row(&[
        "routing loops seen".into(),
        s.routing_loops_seen.to_string(),
        "0".into(),
    ]);
    t.row(&[
        "transient next-hop cycles".into(),
        s.next_hop_cycles_seen.to_string(),
        "".into(),
    ]);
    t.row(&[
        "crashed / left / joined".into(),
        format!("{} / {} / {}", s.crashed, s.left, s.joined_late),
        "".into(),
    ]);
    t.row(&[
        "control kbps per member".into(),
        format!("{:.2}", s.control_kbps_per_member),
        "".into(),
    ]);
    for p in &s.control_by_phase {
        t.row(&[
            format!("  {} ({:.0}-{:.0} s)", p.phase, p.from_s, p.until_s),
            format!("{:.2}", p.kbps_per_member),
            "".into(),
        ]);
    }
    for (kind, kbps) in largest_kinds(&s.control_kbps_by_kind, 3) {
        t.row(&[
            format!("  {kind} (whole run)"),
            format!("{kbps:.2}"),
            "".into(),
        ]);
    }
    t.render()
}

#[cfg(test)]
mod tests;
