//! `run overcast`: Overcast nodes join one after another on a map, the tree settles, a share of
//! the nodes fail at once, and the tree heals, while a stream flows from the root. Reports the
//! paper's figures (bandwidth against what each node could get from the root alone, network load
//! against IP multicast's) and the up/down protocol's (root table exact, certificate traffic at
//! the root per membership change, rejoin times, bytes lost).

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use overcast::OvercastConfig;
use overlay_core::rng::{derive_seed, rng_from_seed};
use overlay_core::{Bandwidth, Time};
use rand::seq::SliceRandom;
use serde::Serialize;

use super::{CommonArgs, RunHeader, Scenario, ScenarioError};
use crate::group::overcast::OvercastGroup;
use crate::network::{AccessSpec, Network, Placement};
use crate::report::{self, Table, fmt_opt, round6};
use crate::spec::duration_arg;
use crate::stats::Distribution;
use crate::topology;

/// The Overcast paper's kind of map.
pub const OVERCAST_TOPOLOGY: &str = "transit-stub:nodes=600,seed=1";

/// Overcast nodes are infrastructure at routers: each one's own link is as fast as all its
/// router's links together, so it is never the bottleneck (the paper's model), on any map.
pub const OVERCAST_ACCESS: &str = "router:delay=0.1ms";

/// What every Overcast run shares: the map, the nodes, the stream and the protocol settings.
#[derive(Debug, Clone, Args)]
pub struct OvercastSetup {
    /// The network: transit-stub:nodes=600,seed=1 | waxman:... | topohub:PATH | matrix:PATH
    #[arg(long, default_value = OVERCAST_TOPOLOGY)]
    pub topology: String,
    /// Overcast nodes (the first are the linear roots).
    #[arg(long, default_value_t = 600)]
    pub members: usize,
    /// Seed of placement and protocol randomness.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Nodes' own links (default: as fast as all the links of the node's router together;
    /// fixed:up=10gbps,down=10gbps,delay=0.1ms for ordinary servers).
    #[arg(long, default_value = OVERCAST_ACCESS)]
    pub access: String,
    /// backbone: the linear roots together on the first backbone router, the next nodes one
    /// each on the other backbone routers (transit routers; on a flat map the tenth of routers
    /// with the most link capacity), the rest at random off the backbone; random: all at random
    /// attach points (stubs on transit-stub maps).
    #[arg(long, default_value = "backbone")]
    pub placement: Placement,
    /// Linear roots (the root and its standbys).
    #[arg(long, default_value_t = 2)]
    pub roots: usize,
    /// Rate of the stream fed to the root (carried reliably to every node).
    #[arg(long, default_value = "256kbps")]
    pub stream_rate: Bandwidth,
    /// Bytes of the stream each node keeps in memory for children that resume under it (as
    /// `esm relay --memory-limit`); it overrides `store_limit` of `--overcast-config`. The
    /// default, 4 MiB, is two minutes of the default stream: a re-attaching node resumes
    /// within seconds. Held chunks were most of a large run's memory (transit-stub, 2000
    /// nodes, seed 1: 1.31 GB resident with the protocol's 1 GiB, 0.36 GB with 4 MiB).
    #[arg(long, default_value_t = 4 << 20)]
    pub memory_limit: u64,
    /// Measure bandwidth as the paper did, by timing a fetch of this many bytes (10240 for
    /// its 10 kB); default: the steady rate over a probe of `probe_duration`.
    #[arg(long)]
    pub probe_bytes: Option<u64>,
    /// The paper's rules, as a baseline: each join round compares with the candidate alone (each
    /// level may give up 10%), the last hop is judged alone, joins go down to any child as
    /// good, re-evaluation sees only parent, grandparent and siblings and moves under any
    /// sibling as good (never backing off), news rides the periodic check-ins only.
    #[arg(long)]
    pub paper_rule: bool,
    /// A JSON file of Overcast settings (any subset of the fields).
    #[arg(long)]
    pub overcast_config: Option<PathBuf>,
    /// Directory for summary.json (default: out/overcast; the other Overcast scenarios name
    /// their own).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Arguments of `run overcast`.
#[derive(Debug, Clone, Args)]
pub struct OvercastArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub setup: OvercastSetup,
    /// Time between two nodes' joins.
    #[arg(long, default_value = "200ms", value_parser = duration_arg)]
    pub join_gap: Duration,
    /// The tree counts as settled after this long without a move.
    #[arg(long, default_value = "60s", value_parser = duration_arg)]
    pub quiet: Duration,
    /// Give up waiting for the tree to settle after this much simulated time.
    #[arg(long, default_value = "1800s", value_parser = duration_arg)]
    pub max_time: Duration,
    /// Share of the non-root nodes that fail at once after the tree settled.
    #[arg(long, default_value_t = 0.05)]
    pub fail_fraction: f64,
}

impl OvercastSetup {
    /// The fields every scenario reports.
    pub fn common(&self) -> CommonArgs {
        CommonArgs {
            topology: self.topology.clone(),
            members: self.members,
            seed: self.seed,
            access: self.access.clone(),
            out: self.out.clone(),
        }
    }

    /// The network these arguments describe.
    pub fn network(&self) -> Result<Network, ScenarioError> {
        let access = AccessSpec::parse(&self.access)?;
        let topology = topology::load(&self.topology)?;
        Ok(Network::build_placed(
            topology,
            self.members,
            &access,
            self.seed,
            self.placement,
            self.roots,
        )?)
    }

    /// The Overcast settings these arguments describe, for nodes on `net`. With router-relative
    /// access links a probe may send as fast as the fastest node's own link (what limits a real
    /// probe is the prober's link; the protocol's default cap assumes ordinary servers).
    pub fn config(&self, net: &Network) -> Result<OvercastConfig, ScenarioError> {
        let mut config = load_config(self.overcast_config.as_deref())?;
        config.store_limit = self.memory_limit;
        if AccessSpec::parse(&self.access)?.router_factor().is_some() {
            let fastest = net.hosts().iter().map(|h| h.access.up).max();
            config.probe_rate = config.probe_rate.max(fastest.unwrap_or(Bandwidth::ZERO));
        }
        if self.probe_bytes.is_some() {
            config.probe_bytes = self.probe_bytes;
        }
        if self.paper_rule {
            config.cumulative_floor = false;
            config.use_path_bandwidth = false;
            config.sample_size = 0;
            config.strict_moves = false;
            config.descend_closer = false;
            config.news_delay = None;
        }
        Ok(config)
    }
}

/// Load Overcast settings from a JSON file, or the defaults.
pub fn load_config(path: Option<&Path>) -> Result<OvercastConfig, ScenarioError> {
    super::load_json_config(path)
}

/// `summary.json` of `run overcast`.
#[derive(Debug, Clone, Serialize)]
pub struct OvercastSummary {
    #[serde(flatten)]
    #[allow(missing_docs)]
    pub header: RunHeader,
    /// Placement of the nodes.
    pub placement: Placement,
    /// Linear roots.
    pub roots: usize,
    /// Sum of achieved over possible bandwidth from the root, once the tree settled.
    pub bandwidth_fraction: Option<f64>,
    /// Mean over nodes of each one's achieved over possible bandwidth, once the tree settled.
    pub bandwidth_fraction_node_mean: Option<f64>,
    /// The same by what nodes could have (nodes behind a stub's uplink, nodes on the backbone).
    pub bandwidth_fraction_by_possible: Vec<PossibleClass>,
    /// Tree link traversals over IP multicast's links (router-to-router links, as the paper's
    /// nodes sat at routers), once the tree settled.
    pub network_load_ratio: Option<f64>,
    /// The same counting the nodes' own links too.
    pub network_load_ratio_with_access: Option<f64>,
    /// Re-evaluation periods from the last join until the last move.
    pub rounds_to_converge: u64,
    /// When the last move happened (simulated seconds from the start).
    pub converged_at_s: f64,
    /// Whether the tree stopped moving before `max_time`.
    pub converged: bool,
    /// Search rounds per join: mean and largest.
    pub join_rounds_mean: f64,
    /// Largest number of search rounds of one join.
    pub join_rounds_max: u32,
    /// Moves made by re-evaluation while the tree settled.
    pub moves: u64,
    /// Birth and death certificates that reached the root per membership change (joins while
    /// the tree formed, failures afterwards).
    pub root_certificates_per_change: f64,
    /// The same while the tree formed only (each join is one change).
    pub root_certificates_per_join: f64,
    /// The same for the failures only (each failed node is one change).
    pub root_certificates_per_failure: Option<f64>,
    /// The root's table equals the live nodes, once settled and again after the failures.
    pub root_table_exact: bool,
    /// Nodes that failed at once.
    pub failed: usize,
    /// Live children of failed nodes.
    pub orphans: usize,
    /// 99th percentile of the time from the failure until an orphan was attached again.
    pub rejoin_s_p99: Option<f64>,
    /// Bandwidth fraction after the failures healed.
    pub bandwidth_fraction_after_failures: Option<f64>,
    /// Stream bytes published to the root.
    pub bytes_published: u64,
    /// Stream bytes live nodes lack, plus bytes that differ from the stream in checked copies.
    pub bytes_lost: u64,
    /// Full subtree listings parents had to ask for (digest disagreements that outlived the
    /// certificates in flight).
    pub resyncs: u64,
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
    /// Bandwidth measurements the nodes asked for (joins and re-evaluations), per node per
    /// simulated minute: what probing the tree costs.
    pub measurements_per_node_per_min: f64,
    /// Simulated seconds in all.
    pub duration_s: f64,
}

/// Nodes that could have the same bandwidth from the root, and how close they came.
#[derive(Debug, Clone, Serialize)]
pub struct PossibleClass {
    /// What each could have alone, megabits per second.
    pub possible_mbps: f64,
    /// How many.
    pub nodes: usize,
    /// Their mean achieved over possible bandwidth.
    pub mean_fraction: f64,
}

/// `run overcast` as a [`Scenario`].
#[derive(Debug, Clone, Copy)]
pub struct Overcast;

impl Scenario for Overcast {
    const NAME: &'static str = "overcast";
    type Args = OvercastArgs;
    type Summary = OvercastSummary;

    fn out(args: &OvercastArgs) -> Option<&Path> {
        args.setup.out.as_deref()
    }

    fn run(args: &OvercastArgs) -> Result<OvercastSummary, ScenarioError> {
        run(args)
    }

    fn headline(_args: &OvercastArgs, summary: &OvercastSummary, elapsed: Duration) -> String {
        let mut line = format!(
            "overcast on {} with {} nodes ({:?} placement, seed {}), {:.0} simulated s in {:.1} s",
            summary.header.topology_name,
            summary.header.members,
            summary.placement,
            summary.header.seed,
            summary.duration_s,
            elapsed.as_secs_f64()
        );
        line.push_str(&summary.header.capacities_line());
        line
    }

    fn table(summary: &OvercastSummary) -> String {
        table(summary)
    }
}

/// Run the scenario and write `summary.json`.
pub fn run(args: &OvercastArgs) -> Result<OvercastSummary, ScenarioError> {
    if !(0.0..1.0).contains(&args.fail_fraction) {
        return Err(ScenarioError::Argument(format!(
            "--fail-fraction must be in 0..1, got {}",
            args.fail_fraction
        )));
    }
    let net = args.setup.network()?;
    let header = RunHeader::new(Overcast::NAME, &args.setup.common(), &net);
    let config = args.setup.config(&net)?;
    let n = net.members();
    let mut group = OvercastGroup::new(net, &config, args.setup.roots, args.setup.seed);
    let roots = group.roots.len();
    // Roots first, then everyone else in member order (backbone placement: backbone first).
    for r in 0..roots {
        group.start(r, Time::ZERO + Duration::from_millis(100 * r as u64));
    }
    let first_join = Time::ZERO + Duration::from_secs(1);
    for m in roots..n {
        group.start(m, first_join + args.join_gap * (m - roots) as u32);
    }
    let last_join = first_join + args.join_gap * (n - roots).saturating_sub(1) as u32;
    group.stream(
        args.setup.stream_rate.bps_f64(),
        Time::ZERO + args.max_time * 2,
    );

    // Phase 1: joins, then wait until nothing has moved for `quiet`.
    let deadline = Time::ZERO + args.max_time;
    let mut converged = false;
    let wall = std::time::Instant::now();
    loop {
        let next = group.sim.now() + Duration::from_secs(5);
        group.run_until(next);
        let last = last_change(&group);
        let placed = (0..n)
            .filter(|&m| group.node(m).is_some_and(overcast::Overcast::is_placed))
            .count();
        let all_placed = placed == n;
        if group.sim.now().as_micros().is_multiple_of(100_000_000) {
            // A large run takes minutes: say how it goes (on stderr; the summary is the result).
            eprintln!(
                "  {:.0} s simulated ({:.0} s wall): {placed} of {n} placed, last attachment (join, move or re-attach) at {:.0} s",
                group.sim.now().as_secs_f64(),
                wall.elapsed().as_secs_f64(),
                last.as_secs_f64()
            );
        }
        if group.sim.now() > last_join
            && all_placed
            && group.sim.now().saturating_since(last) >= args.quiet
        {
            converged = true;
            break;
        }
        if group.sim.now() >= deadline {
            break;
        }
    }
    let converged_at = last_change(&group);
    let settled_exact = group.root_table_diff() == (Vec::new(), Vec::new());
    let bandwidth_fraction = group.bandwidth_fraction();
    let network_load_ratio = group.network_load_ratio();
    let load_with_access = group.network_load_ratio_with_access();
    let node_mean = group.bandwidth_fraction_node_mean();
    let by_possible = group
        .fraction_by_possible()
        .into_iter()
        .map(|(possible, nodes, mean)| PossibleClass {
            possible_mbps: round6(possible / 1e6),
            nodes,
            mean_fraction: round6(mean),
        })
        .collect();
    let joins = (n - 1) as f64;
    let join_certs = group.root_certificates();
    let moves = group.log.reattach.iter().filter(|r| r.2).count() as u64;
    let join_rounds: Vec<f64> = group
        .log
        .first_attach
        .iter()
        .flatten()
        .map(|&(_, r)| f64::from(r))
        .collect();
    let reevaluate = config.reevaluate_interval.as_secs_f64().max(1e-9);
    let rounds_to_converge =
        (converged_at.saturating_since(last_join).as_secs_f64() / reevaluate).ceil() as u64;

    // Phase 2: a share of the non-root nodes fail at once.
    let mut rng = rng_from_seed(derive_seed(args.setup.seed, 0xfa11));
    let mut candidates: Vec<usize> = (roots..n).collect();
    candidates.shuffle(&mut rng);
    let failures = ((n - roots) as f64 * args.fail_fraction).round() as usize;
    let doomed: Vec<usize> = candidates.into_iter().take(failures).collect();
    let fail_at = group.sim.now() + Duration::from_secs(1);
    group.run_until(fail_at);
    let orphans: Vec<usize> = orphans_of(&group, &doomed);
    let certs_before = group.root_certificates();
    let reattach_before = group.log.reattach.len();
    for &m in &doomed {
        group.crash(m);
    }
    let heal = fail_at + Duration::from_secs(60);
    group.run_until(heal);
    let failure_certs = group.root_certificates().saturating_sub(certs_before);
    let rejoin = rejoin_times(&group, &orphans, fail_at, reattach_before);
    let healed_exact = group.root_table_diff() == (Vec::new(), Vec::new());
    let bandwidth_after = group.bandwidth_fraction();

    // Phase 3: stop the stream and let it drain; check every byte.
    let stop = group.sim.now();
    group.stream(args.setup.stream_rate.bps_f64(), stop);
    group.run_until(stop + Duration::from_secs(20));
    let check: Vec<usize> = (0..n)
        .filter(|&m| group.is_alive(m))
        .step_by((n / 16).max(1))
        .collect();
    let (missing, corrupt) = group.bytes_lost(&check);

    let summary = OvercastSummary {
        header,
        placement: args.setup.placement,
        roots,
        bandwidth_fraction: bandwidth_fraction.map(round6),
        bandwidth_fraction_node_mean: node_mean.map(round6),
        bandwidth_fraction_by_possible: by_possible,
        network_load_ratio: network_load_ratio.map(round6),
        network_load_ratio_with_access: load_with_access.map(round6),
        rounds_to_converge,
        converged_at_s: round6(converged_at.as_secs_f64()),
        converged,
        join_rounds_mean: round6(Distribution::new(join_rounds.clone()).mean().unwrap_or(0.0)),
        join_rounds_max: join_rounds.iter().fold(0.0f64, |a, &b| a.max(b)) as u32,
        moves,
        root_certificates_per_change: round6(
            (join_certs + failure_certs) as f64 / (joins + doomed.len() as f64),
        ),
        root_certificates_per_join: round6(join_certs as f64 / joins),
        root_certificates_per_failure: (!doomed.is_empty())
            .then(|| round6(failure_certs as f64 / doomed.len() as f64)),
        root_table_exact: settled_exact && healed_exact,
        failed: doomed.len(),
        orphans: orphans.len(),
        rejoin_s_p99: Distribution::new(rejoin).quantile(0.99).map(round6),
        bandwidth_fraction_after_failures: bandwidth_after.map(round6),
        bytes_published: group.published,
        bytes_lost: missing + corrupt,
        resyncs: group.counter_sum(|s| s.resyncs),
        loops_broken: group.counter_sum(|s| s.loops_broken),
        silence_check_ins: group.counter_sum(|s| s.silence_check_ins),
        parents_lost_to_silence: group.counter_sum(|s| s.silent_parents_lost),
        child_checks: group.counter_sum(|s| s.child_checks),
        children_lost_to_checks: group.counter_sum(|s| s.silent_children_lost),
        measurements_per_node_per_min: round6(
            group.counter_sum(|s| s.measurements) as f64
                / n.max(1) as f64
                / (group.sim.now().as_secs_f64() / 60.0).max(1e-9),
        ),
        duration_s: round6(group.sim.now().as_secs_f64()),
    };
    let out = Overcast::out_dir(args);
    report::create_dir(&out)?;
    report::write_json(&out.join("summary.json"), &summary)?;
    // Every attachment after a node's first: when the tree moved, and who moved how often.
    report::write_csv(
        &out.join("moves.csv"),
        &["t_s", "member", "kind"],
        group.log.reattach.iter().map(|&(t, member, moved)| {
            [
                format!("{:.3}", t.as_secs_f64()),
                member.to_string(),
                if moved { "move" } else { "rejoin" }.to_owned(),
            ]
        }),
    )?;
    Ok(summary)
}

/// The time of the last attachment of any kind (join, move, rejoin).
pub fn last_change(group: &OvercastGroup) -> Time {
    let joins = group.log.first_attach.iter().flatten().map(|&(t, _)| t);
    let moves = group.log.reattach.iter().map(|&(t, _, _)| t);
    joins.chain(moves).max().unwrap_or(Time::ZERO)
}

/// Live children of the nodes about to fail that do not fail themselves.
pub fn orphans_of(group: &OvercastGroup, doomed: &[usize]) -> Vec<usize> {
    let mut orphans: Vec<usize> = doomed
        .iter()
        .filter_map(|&d| group.node(d))
        .flat_map(|node| node.children().copied().collect::<Vec<_>>())
        .filter_map(|id| group.index_of(&id))
        .filter(|o| !doomed.contains(o))
        .collect();
    orphans.sort_unstable();
    orphans.dedup();
    orphans
}

/// Seconds from `since` until each orphan attached again (orphans that never did are left
/// out and show in the root table instead).
pub fn rejoin_times(
    group: &OvercastGroup,
    orphans: &[usize],
    since: Time,
    log_from: usize,
) -> Vec<f64> {
    orphans
        .iter()
        .filter_map(|&o| {
            group.log.reattach[log_from..]
                .iter()
                .find(|&&(t, m, _)| m == o && t >= since)
                .map(|&(t, _, _)| t.saturating_since(since).as_secs_f64())
        })
        .collect()
}

/// The figures as a table.
pub fn table(s: &OvercastSummary) -> String {
    let mut t = Table::new(&["figure", "value"]);
    let rows: Vec<(&str, String)> = vec![
        ("bandwidth fraction", fmt_opt(s.bandwidth_fraction, 3)),
        (
            "  mean over nodes",
            fmt_opt(s.bandwidth_fraction_node_mean, 3),
        ),
        (
            "network load / IP multicast",
            fmt_opt(s.network_load_ratio, 3),
        ),
        (
            "  counting nodes' own links",
            fmt_opt(s.network_load_ratio_with_access, 3),
        ),
        (
            "join rounds mean (max)",
            format!("{:.2} ({})", s.join_rounds_mean, s.join_rounds_max),
        ),
        ("moves while settling", s.moves.to_string()),
        (
            "converged at s (rounds after last join)",
            format!(
                "{:.1} ({}){}",
                s.converged_at_s,
                s.rounds_to_converge,
                if s.converged { "" } else { " not settled" }
            ),
        ),
        (
            "root certificates per change",
            format!("{:.3}", s.root_certificates_per_change),
        ),
        (
            "  per join / per failure",
            format!(
                "{:.3} / {}",
                s.root_certificates_per_join,
                fmt_opt(s.root_certificates_per_failure, 3)
            ),
        ),
        ("root table exact", s.root_table_exact.to_string()),
        ("failed (orphans)", format!("{} ({})", s.failed, s.orphans)),
        ("rejoin s p99", fmt_opt(s.rejoin_s_p99, 2)),
        (
            "bandwidth fraction after failures",
            fmt_opt(s.bandwidth_fraction_after_failures, 3),
        ),
        (
            "bytes published / lost",
            format!("{} / {}", s.bytes_published, s.bytes_lost),
        ),
        (
            "resyncs / loops broken",
            format!("{} / {}", s.resyncs, s.loops_broken),
        ),
        (
            "silence check-ins (parents lost by them)",
            format!("{} ({})", s.silence_check_ins, s.parents_lost_to_silence),
        ),
        (
            "child checks (children lost by them)",
            format!("{} ({})", s.child_checks, s.children_lost_to_checks),
        ),
        (
            "measurements per node per minute",
            format!("{:.2}", s.measurements_per_node_per_min),
        ),
    ];
    for (k, v) in rows {
        t.row(&[k.to_owned(), v]);
    }
    t.render()
}
