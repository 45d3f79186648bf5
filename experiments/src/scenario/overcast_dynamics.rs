//! `run overcast-dynamics`: an Overcast tree under a flash crowd and a mass failure. Nodes join
//! in waves (each wave all within seconds), the tree settles, then a share of the nodes fail at
//! once, the node with the largest subtree among them. Recorded every second: how many nodes
//! hang on the tree, how wrong the root's table is, the certificates reaching the root, moves,
//! and how far behind the stream nodes lag; at the end every live node's copy of the stream is
//! checked byte for byte.

use std::path::Path;
use std::time::Duration;

use clap::Args;
use overlay_core::Time;
use overlay_core::rng::{derive_seed, rng_from_seed};
use rand::seq::SliceRandom;
use serde::Serialize;

use super::overcast::{OvercastSetup, orphans_of, rejoin_times};
use super::{RunHeader, Scenario, ScenarioError};
use crate::group::overcast::OvercastGroup;
use crate::report::{self, Line, Table, fmt_opt, round6};
use crate::spec::duration_arg;
use crate::stats::Distribution;

/// Arguments of `run overcast-dynamics`.
#[derive(Debug, Clone, Args)]
pub struct DynamicsArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub setup: OvercastSetup,
    /// Join waves (the non-root nodes split evenly among them).
    #[arg(long, default_value_t = 4)]
    pub waves: usize,
    /// Time from one wave to the next.
    #[arg(long, default_value = "150s", value_parser = duration_arg)]
    pub wave_gap: Duration,
    /// Time between two joins inside a wave (a flash crowd).
    #[arg(long, default_value = "20ms", value_parser = duration_arg)]
    pub join_gap: Duration,
    /// Share of the non-root nodes that fail at once, `wave_gap` after the last wave.
    #[arg(long, default_value_t = 0.10)]
    pub fail_fraction: f64,
    /// Also fail the root itself (its standby takes over).
    #[arg(long)]
    pub fail_root: bool,
    /// How long to watch after the failure.
    #[arg(long, default_value = "180s", value_parser = duration_arg)]
    pub heal: Duration,
}

/// One second of the run.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    /// Seconds from the start.
    pub t_s: f64,
    /// Nodes alive (started and not failed).
    pub live: usize,
    /// Live nodes whose chain of parents reaches the root.
    pub on_tree: usize,
    /// Live nodes the root's table misses plus dead nodes it still lists.
    pub root_table_wrong: usize,
    /// Birth and death certificates that reached the root in this second.
    pub root_certificates: u64,
    /// Attachments (joins, moves, rejoins) in this second.
    pub attachments: usize,
    /// The largest lag behind the published stream among live nodes, bytes.
    pub max_lag_bytes: u64,
}

/// `summary.json` of `run overcast-dynamics`.
#[derive(Debug, Clone, Serialize)]
pub struct DynamicsSummary {
    /// The run's common fields.
    #[serde(flatten)]
    pub header: RunHeader,
    /// Join waves.
    pub waves: usize,
    /// Birth and death certificates at the root per joining node, each wave (until the next).
    pub root_certificates_per_join_by_wave: Vec<f64>,
    /// Bandwidth fraction just before the failure.
    pub bandwidth_fraction_before: Option<f64>,
    /// Nodes that failed at once.
    pub failed: usize,
    /// Whether the root was among them.
    pub root_failed: bool,
    /// Live descendants of the highest failed node (the largest subtree among the failed).
    pub highest_failed_subtree: usize,
    /// Live children of failed nodes.
    pub orphans: usize,
    /// Orphans attached again (or, a standby root, taken over as root) within the watch.
    pub orphans_reattached: usize,
    /// Time from the failure until an orphan was attached again: median and 99th percentile.
    pub rejoin_s_p50: Option<f64>,
    /// See `rejoin_s_p50`.
    pub rejoin_s_p99: Option<f64>,
    /// Time from the failure until every live node was on the tree again.
    pub all_on_tree_after_s: Option<f64>,
    /// Time from the failure until the root's table was exact again.
    pub root_exact_after_s: Option<f64>,
    /// Birth and death certificates at the root from the failure to the end, per failed node.
    pub root_certificates_per_failure: f64,
    /// Most certificates reaching the root in one second after the failure.
    pub root_certificates_peak_per_s: u64,
    /// Bandwidth fraction at the end.
    pub bandwidth_fraction_after: Option<f64>,
    /// Stream bytes published to the root.
    pub bytes_published: u64,
    /// Stream bytes live nodes lack at the end plus bytes that differ from the stream.
    pub bytes_lost: u64,
    /// Loops of parents found and left.
    pub loops_broken: u64,
    /// Check-ins nodes sent because the stream from their parent stopped (one per silence of a
    /// live parent, three for a dead one).
    pub silence_check_ins: u64,
    /// Parents lost because they left those check-ins unanswered (the others went by the
    /// parent timeout).
    pub parents_lost_to_silence: u64,
    /// Requests to check in at once that parents sent children that stopped acknowledging or
    /// were reported silent (three to a dead child, one to a live one).
    pub child_checks: u64,
    /// Children held dead because they left those requests unanswered (the others went by
    /// their lease).
    pub children_lost_to_checks: u64,
    /// Simulated seconds in all.
    pub duration_s: f64,
}

/// Whether member `m` was started by `now` and has not failed.
fn started(group: &OvercastGroup, m: usize, now: Time) -> bool {
    group.is_alive(m) && group.log.started_at[m].is_some_and(|s| s <= now)
}

/// Started, live nodes whose parents lead to the root.
fn on_tree(group: &OvercastGroup, now: Time) -> usize {
    let Some(root) = group.root() else {
        return 0;
    };
    let parents = group.parents();
    let n = group.members();
    (0..n)
        .filter(|&m| started(group, m, now))
        .filter(|&m| {
            let mut at = m;
            for _ in 0..=n {
                if at == root {
                    return true;
                }
                match parents[at] {
                    Some(p) => at = p,
                    None => return false,
                }
            }
            false
        })
        .count()
}

/// The mass failure.
#[derive(Debug, Default)]
struct Failure {
    doomed: Vec<usize>,
    /// Live children of the doomed.
    orphans: Vec<usize>,
    /// Where the reattachment log stood at the failure.
    log_from: usize,
    /// Live descendants of the doomed node highest in the tree.
    highest_subtree: usize,
}

/// Watches the root's certificate counter across root changes.
#[derive(Debug, Default)]
struct RootCounter {
    root: Option<usize>,
    last: u64,
    total: u64,
}

impl RootCounter {
    /// Certificates that reached the root since the last call.
    fn take(&mut self, group: &OvercastGroup) -> u64 {
        let root = group.root();
        let now = group.root_certificates();
        let new = if root == self.root {
            now.saturating_sub(self.last)
        } else {
            // A new root: its count so far is what it took in as root and before; count what
            // arrives from now on.
            0
        };
        self.root = root;
        self.last = now;
        self.total += new;
        new
    }
}

/// `run overcast-dynamics` as a [`Scenario`].
#[derive(Debug, Clone, Copy)]
pub struct OvercastDynamics;

impl Scenario for OvercastDynamics {
    const NAME: &'static str = "overcast-dynamics";
    type Args = DynamicsArgs;
    type Summary = DynamicsSummary;

    fn out(args: &DynamicsArgs) -> Option<&Path> {
        args.setup.out.as_deref()
    }

    /// [`run`], without the per-second samples (they are in `series.csv`).
    fn run(args: &DynamicsArgs) -> Result<DynamicsSummary, ScenarioError> {
        run(args).map(|(summary, _)| summary)
    }

    fn headline(_args: &DynamicsArgs, summary: &DynamicsSummary, elapsed: Duration) -> String {
        let mut line = format!(
            "overcast-dynamics on {} with {} nodes in {} waves (seed {}), {:.0} simulated s in {:.1} s",
            summary.header.topology_name,
            summary.header.members,
            summary.waves,
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

/// Run the scenario; writes `summary.json`, `series.csv` and `series.svg` under
/// [`OvercastDynamics::out_dir`].
pub fn run(args: &DynamicsArgs) -> Result<(DynamicsSummary, Vec<Sample>), ScenarioError> {
    if !(0.0..1.0).contains(&args.fail_fraction) || args.waves == 0 {
        return Err(ScenarioError::Argument(format!(
            "--fail-fraction must be in 0..1 and --waves at least 1, got {} and {}",
            args.fail_fraction, args.waves
        )));
    }
    let setup = &args.setup;
    let net = setup.network()?;
    let header = RunHeader::new(OvercastDynamics::NAME, &setup.common(), &net);
    let config = setup.config(&net)?;
    let n = net.members();
    let mut group = OvercastGroup::new(net, &config, setup.roots, setup.seed);
    let roots = group.roots.len();
    for r in 0..roots {
        group.start(r, Time::ZERO + Duration::from_millis(100 * r as u64));
    }
    let joiners: Vec<usize> = (roots..n).collect();
    let per_wave = joiners.len().div_ceil(args.waves).max(1);
    let wave_start = |w: usize| {
        Time::ZERO + Duration::from_secs(1) + args.wave_gap * u32::try_from(w).unwrap_or(0)
    };
    for (w, wave) in joiners.chunks(per_wave).enumerate() {
        for (i, &m) in wave.iter().enumerate() {
            group.start(
                m,
                wave_start(w) + args.join_gap * u32::try_from(i).unwrap_or(0),
            );
        }
    }
    let fail_at = wave_start(args.waves);
    let end = fail_at + args.heal;
    group.stream(setup.stream_rate.bps_f64(), end);

    let mut series = Vec::new();
    let mut counter = RootCounter::default();
    let mut wave_certs = vec![0u64; args.waves];
    let mut log_seen = 0usize;
    let mut failure: Option<Failure> = None;
    let mut after_failure_certs = 0u64;
    let mut peak = 0u64;
    let (mut all_on_tree_after, mut root_exact_after) = (None, None);
    let mut bandwidth_before = None;
    let mut t = Time::ZERO;
    while t < end {
        let next = t + Duration::from_secs(1);
        if t < fail_at && next >= fail_at {
            // The failure: a share of the non-root nodes, the one with the largest subtree
            // first (the highest in the tree), the rest at random.
            group.run_until(fail_at);
            bandwidth_before = group.bandwidth_fraction();
            let mut doomed = Vec::new();
            let highest = (roots..n)
                .filter(|&m| group.is_alive(m))
                .max_by_key(|&m| (group.node(m).map_or(0, |x| x.table().live_count()), m));
            let highest_subtree = highest
                .and_then(|m| group.node(m))
                .map_or(0, |x| x.table().live_count());
            doomed.extend(highest);
            let mut rest: Vec<usize> = (roots..n).filter(|&m| Some(m) != highest).collect();
            rest.shuffle(&mut rng_from_seed(derive_seed(setup.seed, 0xfa11)));
            let count = ((n - roots) as f64 * args.fail_fraction).round() as usize;
            doomed.extend(rest.into_iter().take(count.saturating_sub(doomed.len())));
            let root = group.root();
            if args.fail_root {
                doomed.extend(root);
            }
            let orphans = orphans_of(&group, &doomed);
            let log_from = group.log.reattach.len();
            counter.take(&group);
            for &m in &doomed {
                group.crash(m);
            }
            failure = Some(Failure {
                doomed,
                orphans,
                log_from,
                highest_subtree,
            });
        }
        group.run_until(next);
        t = next;
        let certs = counter.take(&group);
        if failure.is_some() {
            after_failure_certs += certs;
            peak = peak.max(certs);
        } else {
            let wave = ((t.saturating_since(wave_start(0)).as_secs_f64()
                / args.wave_gap.as_secs_f64().max(1e-9)) as usize)
                .min(args.waves - 1);
            wave_certs[wave] += certs;
        }
        let attachments =
            group.log.reattach.len() + group.log.first_attach.iter().flatten().count();
        let live = (0..n).filter(|&m| started(&group, m, t)).count();
        let placed = on_tree(&group, t);
        let (missing, extra) = group.root_table_diff();
        let wrong = missing.len() + extra.len();
        if failure.is_some() {
            let since = t.saturating_since(fail_at).as_secs_f64();
            if placed == live && all_on_tree_after.is_none() {
                all_on_tree_after = Some(since);
            }
            if wrong == 0 && root_exact_after.is_none() {
                root_exact_after = Some(since);
            }
        }
        let max_lag = (0..n)
            .filter(|&m| group.is_alive(m))
            .filter_map(|m| group.node(m))
            .filter(|x| x.is_placed() || x.is_root())
            .map(|x| group.published.saturating_sub(x.content_end()))
            .max()
            .unwrap_or(0);
        series.push(Sample {
            t_s: round6(t.as_secs_f64()),
            live,
            on_tree: placed,
            root_table_wrong: wrong,
            root_certificates: certs,
            attachments: attachments - log_seen,
            max_lag_bytes: max_lag,
        });
        log_seen = attachments;
    }
    let Failure {
        doomed,
        orphans,
        log_from,
        highest_subtree,
    } = failure.unwrap_or_default();
    // An orphan recovers by attaching again, or, the standby root under a failed root, by
    // taking over.
    let mut rejoin = rejoin_times(&group, &orphans, fail_at, log_from);
    rejoin.extend(orphans.iter().filter_map(|&o| {
        group
            .log
            .became_root
            .iter()
            .find(|&&(t, m)| m == o && t >= fail_at)
            .map(|&(t, _)| t.saturating_since(fail_at).as_secs_f64())
    }));
    let rejoin_dist = Distribution::new(rejoin.clone());
    let bandwidth_after = group.bandwidth_fraction();

    // Drain: stop the stream, give it time to arrive, check every byte.
    let stop = group.sim.now();
    group.stream(setup.stream_rate.bps_f64(), stop);
    group.run_until(stop + Duration::from_secs(20));
    let check: Vec<usize> = (0..n)
        .filter(|&m| group.is_alive(m))
        .step_by((n / 16).max(1))
        .collect();
    let (missing, corrupt) = group.bytes_lost(&check);
    let per_wave_joins = |w: usize| joiners.chunks(per_wave).nth(w).map_or(0, <[usize]>::len);
    let summary = DynamicsSummary {
        header,
        waves: args.waves,
        root_certificates_per_join_by_wave: wave_certs
            .iter()
            .enumerate()
            .map(|(w, &c)| round6(c as f64 / per_wave_joins(w).max(1) as f64))
            .collect(),
        bandwidth_fraction_before: bandwidth_before.map(round6),
        failed: doomed.len(),
        root_failed: args.fail_root,
        highest_failed_subtree: highest_subtree,
        orphans: orphans.len(),
        orphans_reattached: rejoin.len(),
        rejoin_s_p50: rejoin_dist.quantile(0.5).map(round6),
        rejoin_s_p99: rejoin_dist.quantile(0.99).map(round6),
        all_on_tree_after_s: all_on_tree_after.map(round6),
        root_exact_after_s: root_exact_after.map(round6),
        root_certificates_per_failure: round6(
            after_failure_certs as f64 / doomed.len().max(1) as f64,
        ),
        root_certificates_peak_per_s: peak,
        bandwidth_fraction_after: bandwidth_after.map(round6),
        bytes_published: group.published,
        bytes_lost: missing + corrupt,
        loops_broken: group.counter_sum(|s| s.loops_broken),
        silence_check_ins: group.counter_sum(|s| s.silence_check_ins),
        parents_lost_to_silence: group.counter_sum(|s| s.silent_parents_lost),
        child_checks: group.counter_sum(|s| s.child_checks),
        children_lost_to_checks: group.counter_sum(|s| s.silent_children_lost),
        duration_s: round6(group.sim.now().as_secs_f64()),
    };
    let out = OvercastDynamics::out_dir(args);
    report::create_dir(&out)?;
    report::write_json(&out.join("summary.json"), &summary)?;
    report::write_csv(
        &out.join("series.csv"),
        &[
            "t_s",
            "live",
            "on_tree",
            "root_table_wrong",
            "root_certificates",
            "attachments",
            "max_lag_bytes",
        ],
        series.iter().map(|s| {
            [
                s.t_s.to_string(),
                s.live.to_string(),
                s.on_tree.to_string(),
                s.root_table_wrong.to_string(),
                s.root_certificates.to_string(),
                s.attachments.to_string(),
                s.max_lag_bytes.to_string(),
            ]
        }),
    )?;
    let line = |f: fn(&Sample) -> f64| series.iter().map(|s| (s.t_s, f(s))).collect();
    report::plot_lines(
        &out.join("series.svg"),
        "Overcast under join waves and a mass failure",
        "seconds",
        "nodes / certificates per second",
        &[
            Line {
                label: "live nodes",
                points: line(|s| s.live as f64),
            },
            Line {
                label: "on the tree",
                points: line(|s| s.on_tree as f64),
            },
            Line {
                label: "root table wrong",
                points: line(|s| s.root_table_wrong as f64),
            },
            Line {
                label: "certificates at the root per s",
                points: line(|s| s.root_certificates as f64),
            },
        ],
    )?;
    Ok((summary, series))
}

/// The figures as a table.
pub fn table(s: &DynamicsSummary) -> String {
    let mut t = Table::new(&["figure", "value"]);
    let waves: Vec<String> = s
        .root_certificates_per_join_by_wave
        .iter()
        .map(|c| format!("{c:.2}"))
        .collect();
    let rows: Vec<(&str, String)> = vec![
        ("root certificates per join, by wave", waves.join(" ")),
        (
            "bandwidth fraction before failure",
            fmt_opt(s.bandwidth_fraction_before, 3),
        ),
        (
            "failed (root too) / highest subtree",
            format!(
                "{} ({}) / {}",
                s.failed, s.root_failed, s.highest_failed_subtree
            ),
        ),
        (
            "orphans reattached",
            format!("{} of {}", s.orphans_reattached, s.orphans),
        ),
        (
            "rejoin s p50 / p99",
            format!(
                "{} / {}",
                fmt_opt(s.rejoin_s_p50, 2),
                fmt_opt(s.rejoin_s_p99, 2)
            ),
        ),
        ("all on the tree after s", fmt_opt(s.all_on_tree_after_s, 1)),
        ("root table exact after s", fmt_opt(s.root_exact_after_s, 1)),
        (
            "root certificates per failure (peak per s)",
            format!(
                "{:.2} ({})",
                s.root_certificates_per_failure, s.root_certificates_peak_per_s
            ),
        ),
        (
            "bandwidth fraction at the end",
            fmt_opt(s.bandwidth_fraction_after, 3),
        ),
        (
            "bytes published / lost",
            format!("{} / {}", s.bytes_published, s.bytes_lost),
        ),
        ("loops broken", s.loops_broken.to_string()),
        (
            "silence check-ins (parents lost by them)",
            format!("{} ({})", s.silence_check_ins, s.parents_lost_to_silence),
        ),
        (
            "child checks (children lost by them)",
            format!("{} ({})", s.child_checks, s.children_lost_to_checks),
        ),
    ];
    for (k, v) in rows {
        t.row(&[k.to_owned(), v]);
    }
    t.render()
}
