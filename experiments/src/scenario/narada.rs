//! `run narada`: a Narada group forms on a map, one member streams, and once the mesh has
//! settled every member in turn is taken as the source (the paper's method): RDP over all
//! ordered pairs, worst stress over all sources, resource usage against IP multicast, control
//! overhead, and how tree quality evolved while the mesh improved.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use narada::NaradaConfig;
use overlay_core::{Bandwidth, Time, TrafficClass};
use serde::Serialize;

use super::control_phases::kbps_per_member;
use super::{CommonArgs, RunHeader, Scenario, ScenarioError, progress};
use crate::group::narada::NaradaGroup;
use crate::network::Network;
use crate::report::{self, Curve, Line, Table, fmt_opt, round6};
use crate::spec::duration_arg;
use crate::stats::Distribution;
use crate::tree::quality::{References, TreeQuality};

/// Arguments of `run narada`.
#[derive(Debug, Clone, Args)]
pub struct NaradaArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub common: CommonArgs,
    /// Simulated time the run lasts.
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
    /// Tree quality is sampled this often while the mesh evolves.
    #[arg(long, default_value = "10s", value_parser = duration_arg)]
    pub sample_every: Duration,
    /// A JSON file of Narada settings (any subset of the fields; defaults for the rest).
    #[arg(long)]
    pub narada_config: Option<PathBuf>,
}

/// `summary.json` of `run narada`.
#[derive(Debug, Clone, Serialize)]
pub struct NaradaSummary {
    #[serde(flatten)]
    #[allow(missing_docs)]
    pub header: RunHeader,
    /// Simulated seconds.
    pub duration_s: f64,
    /// Stream rate, Mbps.
    pub rate_mbps: f64,
    /// Median RDP over all ordered pairs (every member as source).
    pub rdp_p50: f64,
    /// 90th-percentile RDP.
    pub rdp_p90: f64,
    /// Largest RDP.
    pub rdp_max: f64,
    /// Worst link stress over all sources.
    pub stress_max: Option<u64>,
    /// Mean stress over links used, over all sources.
    pub stress_mean: Option<f64>,
    /// Naive unicast's worst stress on the same placement.
    pub unicast_stress_max: Option<u64>,
    /// Resource usage over IP multicast's, summed over sources.
    pub ru_ratio: Option<f64>,
    /// The floor of `ru_ratio`: the members' minimum spanning tree (the cheapest overlay tree,
    /// whatever its latencies and degrees) over IP multicast.
    pub ru_floor_ratio: Option<f64>,
    /// Control and probe bytes over data bytes, after the mesh settled.
    pub overhead_ratio: f64,
    /// Control and probe traffic per member after the mesh settled, kbit/s.
    pub control_kbps_per_member: f64,
    /// The same over the whole run, joins included.
    pub control_kbps_per_member_all: f64,
    /// `control_kbps_per_member` by kind of message (Narada's message names; active bandwidth
    /// probes as `bandwidth-probe`).
    pub control_kbps_by_kind: BTreeMap<String, f64>,
    /// Receivers reached over receivers expected, over all sources.
    pub reachable_fraction: f64,
    /// Sources whose forwarding state had a loop at the end.
    pub routing_loops: usize,
    /// First sample time after which RDP p90 and RU ratio stay within 5% of their final values.
    pub converged_at_s: f64,
    /// Mean mesh degree.
    pub mesh_degree_mean: f64,
    /// Largest mesh degree.
    pub mesh_degree_max: usize,
    /// Packets of the stream delivered over packets expected (members joined before each packet).
    pub stream_delivery_ratio: f64,
    /// Protocol counters summed over members.
    pub counters: Counters,
    /// Median RDP of the stream's actual packets.
    pub stream_rdp_p50: f64,
    /// 90th-percentile RDP of the stream's actual packets.
    pub stream_rdp_p90: f64,
}

/// Protocol counters summed over members (what the mesh did).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Counters {
    /// Links added.
    pub links_added: u64,
    /// Links dropped for low utility.
    pub links_dropped: u64,
    /// Links given up for better ones.
    pub links_swapped: u64,
    /// Neighbours found dead.
    pub neighbours_died: u64,
    /// Streams whose upstream went quiet and was pinged at once.
    pub upstream_silences: u64,
    /// Partition-repair probes.
    pub repair_probes: u64,
    /// Gap repairs asked for.
    pub nacks_sent: u64,
    /// Packets resent to fill gaps.
    pub repairs_sent: u64,
    /// Data dropped by the reverse-path check.
    pub rpf_drops: u64,
    /// Duplicate data dropped.
    pub duplicates: u64,
    /// Malformed or unexpected input dropped (non-neighbours, unknown handles, bad routes,
    /// oversized tables, unmatched replies).
    pub dropped_input: u64,
}

impl Counters {
    /// Sum the counters of every member of `group` still running.
    pub fn of(group: &NaradaGroup) -> Self {
        let mut c = Self::default();
        for m in 0..group.sim.network().members() {
            let Some(p) = group.sim.member(m) else {
                continue;
            };
            let s = p.stats();
            c.links_added += s.links_added;
            c.links_dropped += s.links_dropped;
            c.links_swapped += s.links_swapped;
            c.neighbours_died += s.neighbours_died;
            c.upstream_silences += s.upstream_silences;
            c.repair_probes += s.repair_probes;
            c.nacks_sent += s.nacks_sent;
            c.repairs_sent += s.repairs_sent;
            c.rpf_drops += s.rpf_drops;
            c.duplicates += s.duplicates;
            c.dropped_input += s.from_non_neighbour
                + s.unknown_handles
                + s.bad_routes
                + s.oversized
                + s.unmatched_replies;
        }
        c
    }
}

/// One sample of tree quality over time.
#[derive(Debug, Clone, Serialize)]
struct Sample {
    t_s: f64,
    rdp_p50: f64,
    rdp_p90: f64,
    ru_ratio: Option<f64>,
    stress_max: Option<u64>,
    reachable: f64,
    degree_mean: f64,
}

/// Load Narada settings from a JSON file, or the defaults.
pub fn load_config(path: Option<&Path>) -> Result<NaradaConfig, ScenarioError> {
    super::load_json_config(path)
}

/// Sources sampled while the mesh evolves (all of them at the end).
fn sample_sources(members: usize) -> Vec<usize> {
    let step = members.div_ceil(16).max(1);
    (0..members).step_by(step).collect()
}

fn measure(group: &NaradaGroup, refs: &References, sources: &[usize]) -> TreeQuality {
    TreeQuality::measure(
        group.sim.network(),
        refs,
        sources,
        |s| group.parents(s),
        |m| group.is_live(m),
    )
}

/// Control and probe bytes the group has sent so far.
pub(crate) fn control_bytes(group: &NaradaGroup) -> u64 {
    let t = group.sim.traffic();
    t.bytes_of(TrafficClass::Control) + t.bytes_of(TrafficClass::Probe)
}

/// Control and probe traffic per member by kind of message (Narada's message names; active
/// bandwidth probes as `bandwidth-probe`), kbit/s: the bytes sent since `since` (bytes by class
/// and kind, as the simulator counts them) over `seconds`, divided among `members`.
pub(crate) fn control_kbps_by_kind(
    group: &NaradaGroup,
    since: &BTreeMap<(TrafficClass, &'static str), u64>,
    seconds: f64,
    members: usize,
) -> BTreeMap<String, f64> {
    group
        .sim
        .traffic()
        .by_kind
        .iter()
        .filter(|&(&(class, _), _)| class != TrafficClass::Data)
        .map(|(&(class, kind), &bytes)| {
            let sent = bytes.saturating_sub(since.get(&(class, kind)).copied().unwrap_or(0));
            (kind.to_owned(), kbps_per_member(sent, seconds, members))
        })
        .collect()
}

/// The `most` largest entries of a table of kbit/s by kind, largest first (ties by name).
pub(crate) fn largest_kinds(by_kind: &BTreeMap<String, f64>, most: usize) -> Vec<(&str, f64)> {
    let mut kinds: Vec<(&str, f64)> = by_kind.iter().map(|(k, &v)| (k.as_str(), v)).collect();
    kinds.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(b.0)));
    kinds.truncate(most);
    kinds
}

/// `run narada` as a [`Scenario`].
#[derive(Debug, Clone, Copy)]
pub struct Narada;

impl Scenario for Narada {
    const NAME: &'static str = "narada";
    type Args = NaradaArgs;
    type Summary = NaradaSummary;

    fn out(args: &NaradaArgs) -> Option<&Path> {
        args.common.out.as_deref()
    }

    fn run(args: &NaradaArgs) -> Result<NaradaSummary, ScenarioError> {
        run(args)
    }

    fn headline(_args: &NaradaArgs, summary: &NaradaSummary, elapsed: Duration) -> String {
        let mut line = format!(
            "narada on {} with {} members (seed {}), {:.0} simulated s in {:.1} s",
            summary.header.topology_name,
            summary.header.members,
            summary.header.seed,
            summary.duration_s,
            elapsed.as_secs_f64()
        );
        line.push_str(&summary.header.capacities_line());
        line
    }

    fn table(summary: &NaradaSummary) -> String {
        table(summary)
    }
}

/// Run the scenario and write its results.
pub fn run(args: &NaradaArgs) -> Result<NaradaSummary, ScenarioError> {
    let config = load_config(args.narada_config.as_deref())?;
    let net = args.common.network()?;
    let n = net.members();
    let refs = References::compute(&net);
    let mut group = NaradaGroup::new(net, &config, args.common.seed);
    let members: Vec<usize> = (0..n).collect();
    group.schedule_joins(&members, Time::ZERO, args.join_window);
    let end = Time::ZERO + args.duration;
    let stream_start = Time::ZERO + args.join_window + Duration::from_secs(1);
    group.schedule_stream(0, stream_start, end, args.rate.bps_f64(), args.packet_bytes);
    let settle = Time::ZERO + args.duration / 2;

    let sampled = sample_sources(n);
    let mut samples = Vec::new();
    let bar = progress(args.duration.as_secs(), "simulated s");
    let mut settled_traffic = None;
    let mut t = Time::ZERO;
    while t < end {
        t = (t + args.sample_every).min(end);
        if settled_traffic.is_none() && t >= settle {
            group.run_until(settle);
            settled_traffic = Some((
                control_bytes(&group),
                group.sim.traffic().bytes_of(TrafficClass::Data),
                group.sim.traffic().by_kind.clone(),
            ));
        }
        group.run_until(t);
        let q = measure(&group, &refs, &sampled);
        let degrees = group.degrees();
        samples.push(Sample {
            t_s: t.as_secs_f64(),
            rdp_p50: round6(q.rdp.quantile(0.5).unwrap_or(f64::NAN)),
            rdp_p90: round6(q.rdp.quantile(0.9).unwrap_or(f64::NAN)),
            ru_ratio: q.ru_ratio().map(round6),
            stress_max: q.stress.max(),
            reachable: round6(q.reachable_fraction()),
            degree_mean: round6(degrees.iter().sum::<usize>() as f64 / degrees.len().max(1) as f64),
        });
        bar.set_position(t.as_micros() / 1_000_000);
    }
    bar.finish_and_clear();

    let all: Vec<usize> = (0..n).collect();
    let q = measure(&group, &refs, &all);
    let (settled_control, settled_data, settled_kinds) = settled_traffic.unwrap_or_default();
    let steady_control = control_bytes(&group) - settled_control;
    let steady_data = group.sim.traffic().bytes_of(TrafficClass::Data) - settled_data;
    let steady_s = (end - settle).as_secs_f64().max(1e-9);
    let degrees = group.degrees();
    // The stream's per-packet RDPs are read once, here: sorted in place, not copied.
    let stream_rdp = Distribution::new(std::mem::take(&mut group.log.packet_rdp));
    let summary = NaradaSummary {
        header: RunHeader::new(Narada::NAME, &args.common, group.sim.network()),
        duration_s: args.duration.as_secs_f64(),
        rate_mbps: args.rate.mbps_f64(),
        rdp_p50: round6(q.rdp.quantile(0.5).unwrap_or(f64::NAN)),
        rdp_p90: round6(q.rdp.quantile(0.9).unwrap_or(f64::NAN)),
        rdp_max: round6(q.rdp.max().unwrap_or(f64::NAN)),
        stress_max: q.stress.max(),
        stress_mean: q.stress.mean().map(round6),
        unicast_stress_max: refs.unicast_stress_max,
        ru_ratio: q.ru_ratio().map(round6),
        ru_floor_ratio: q.ru_floor_ratio().map(round6),
        overhead_ratio: round6(steady_control as f64 / steady_data.max(1) as f64),
        control_kbps_per_member: kbps_per_member(steady_control, steady_s, n),
        control_kbps_per_member_all: kbps_per_member(
            control_bytes(&group),
            args.duration.as_secs_f64(),
            n,
        ),
        control_kbps_by_kind: control_kbps_by_kind(&group, &settled_kinds, steady_s, n),
        reachable_fraction: round6(q.reachable_fraction()),
        routing_loops: q.loops,
        converged_at_s: converged_at(&samples),
        mesh_degree_mean: round6(
            degrees.iter().sum::<usize>() as f64 / degrees.len().max(1) as f64,
        ),
        mesh_degree_max: degrees.iter().copied().max().unwrap_or(0),
        stream_delivery_ratio: round6(delivery_ratio(&group)),
        counters: Counters::of(&group),
        stream_rdp_p50: round6(stream_rdp.quantile(0.5).unwrap_or(f64::NAN)),
        stream_rdp_p90: round6(stream_rdp.quantile(0.9).unwrap_or(f64::NAN)),
    };
    write_outputs(
        &Narada::out_dir(args),
        group.sim.network(),
        &summary,
        &samples,
        &q,
        &refs,
    )?;
    Ok(summary)
}

/// Packets delivered over packets expected: every packet published after the stream started,
/// at every member other than the source that is live at the end.
pub fn delivery_ratio(group: &NaradaGroup) -> f64 {
    let Some(source) = group.source else {
        return 1.0;
    };
    let receivers: Vec<usize> = (0..group.sim.network().members())
        .filter(|&m| m != source && group.is_live(m))
        .collect();
    let now = group.sim.now();
    // Packets sent in the last second may still be in flight.
    let counted: Vec<u64> = group
        .published
        .iter()
        .filter(|(_, at)| *at + Duration::from_secs(1) <= now)
        .map(|&(s, _)| s)
        .collect();
    let expected = counted.len() * receivers.len();
    let got: usize = receivers
        .iter()
        .map(|&m| counted.iter().filter(|&&s| group.log.has(m, s)).count())
        .sum();
    if expected == 0 {
        1.0
    } else {
        got as f64 / expected as f64
    }
}

fn converged_at(samples: &[Sample]) -> f64 {
    let Some(last) = samples.last() else {
        return 0.0;
    };
    let near = |a: f64, b: f64| (a - b).abs() <= 0.05 * b.abs().max(1e-9);
    let ok = |s: &Sample| {
        near(s.rdp_p90, last.rdp_p90)
            && match (s.ru_ratio, last.ru_ratio) {
                (Some(a), Some(b)) => near(a, b),
                _ => true,
            }
    };
    let mut at = last.t_s;
    for s in samples.iter().rev() {
        if !ok(s) {
            break;
        }
        at = s.t_s;
    }
    at
}

fn write_outputs(
    out: &Path,
    net: &Network,
    summary: &NaradaSummary,
    samples: &[Sample],
    q: &TreeQuality,
    refs: &References,
) -> Result<(), ScenarioError> {
    report::create_dir(out)?;
    report::write_json(&out.join("summary.json"), summary)?;
    report::write_csv(
        &out.join("over_time.csv"),
        &[
            "t_s",
            "rdp_p50",
            "rdp_p90",
            "ru_ratio",
            "stress_max",
            "reachable",
            "degree_mean",
        ],
        samples.iter().map(|s| {
            vec![
                s.t_s.to_string(),
                s.rdp_p50.to_string(),
                s.rdp_p90.to_string(),
                s.ru_ratio.map_or_else(String::new, |v| v.to_string()),
                s.stress_max.map_or_else(String::new, |v| v.to_string()),
                s.reachable.to_string(),
                s.degree_mean.to_string(),
            ]
        }),
    )?;
    report::write_csv(
        &out.join("rdp.csv"),
        &["rdp"],
        q.rdp.sorted().iter().map(|v| vec![format!("{v:.6}")]),
    )?;
    report::plot_cdf(
        &out.join("rdp_cdf.svg"),
        &format!("RDP over all ordered pairs, {} members", net.members()),
        "relative delay penalty",
        &[Curve {
            label: "Narada",
            samples: q.rdp.sorted(),
        }],
    )?;
    let mut lines = vec![Line {
        label: "RDP p90",
        points: samples.iter().map(|s| (s.t_s, s.rdp_p90)).collect(),
    }];
    if samples.iter().any(|s| s.ru_ratio.is_some()) {
        lines.push(Line {
            label: "resource usage / IP multicast",
            points: samples
                .iter()
                .filter_map(|s| s.ru_ratio.map(|r| (s.t_s, r)))
                .collect(),
        });
    }
    report::plot_lines(
        &out.join("over_time.svg"),
        "Tree quality as the mesh improves",
        "simulated s",
        "ratio",
        &lines,
    )?;
    if net.has_physical_links() {
        let mut unicast = crate::stats::Histogram::default();
        let mut counter = crate::tree::StressCounter::default();
        for s in 0..net.members() {
            let star = crate::tree::DeliveryTree::star(s, net.members());
            if let Some(st) = crate::tree::evaluate(net, &star, &mut counter).stress {
                unicast.merge(&st.histogram);
            }
        }
        let bars = report::stress_bars(&[("Narada", &q.stress), ("naive unicast", &unicast)]);
        report::plot_bars(
            &out.join("stress.svg"),
            &format!("Link stress, all {} sources", net.members()),
            "copies of a packet on a link",
            "links (summed over sources)",
            &bars,
        )?;
        report::write_csv(
            &out.join("stress.csv"),
            &["stress", "links"],
            q.stress.iter().map(|(v, c)| vec![v, c]),
        )?;
    }
    let _ = refs;
    Ok(())
}

/// The figures as a table, beside the paper's and the project's targets.
pub fn table(s: &NaradaSummary) -> String {
    let int = |v: Option<u64>| v.map_or_else(|| "n/a".to_owned(), |v| v.to_string());
    let mut t = Table::new(&[
        "metric",
        "Narada (ours)",
        "paper (SIGMETRICS 2000)",
        "our target",
    ]);
    t.row(&[
        "RDP p50 / p90".into(),
        format!("{:.2} / {:.2}", s.rdp_p50, s.rdp_p90),
        "p90 low single digits".into(),
        "p90 <= 2.0".into(),
    ]);
    t.row(&[
        "worst link stress".into(),
        int(s.stress_max),
        format!(
            "unicast/14 = {}",
            s.unicast_stress_max.map_or(0, |u| u / 14)
        ),
        "<= 9".into(),
    ]);
    t.row(&[
        "naive unicast worst stress".into(),
        int(s.unicast_stress_max),
        "N-1".into(),
        "".into(),
    ]);
    t.row(&[
        "mean link stress".into(),
        fmt_opt(s.stress_mean, 2),
        "".into(),
        "".into(),
    ]);
    t.row(&[
        "resource usage / IP multicast".into(),
        fmt_opt(s.ru_ratio, 2),
        "<= 1.5".into(),
        "<= 1.3".into(),
    ]);
    t.row(&[
        "  cheapest overlay tree (MST)".into(),
        fmt_opt(s.ru_floor_ratio, 2),
        "".into(),
        "".into(),
    ]);
    t.row(&[
        "control kbps per member".into(),
        format!("{:.2}", s.control_kbps_per_member),
        "".into(),
        "<= 16".into(),
    ]);
    // The largest kinds, so a reader sees where control goes.
    for (kind, kbps) in largest_kinds(&s.control_kbps_by_kind, 4) {
        t.row(&[
            format!("  {kind}"),
            format!("{kbps:.2}"),
            "".into(),
            "".into(),
        ]);
    }
    t.row(&[
        "overhead (control / data)".into(),
        format!("{:.4}", s.overhead_ratio),
        "".into(),
        "".into(),
    ]);
    t.row(&[
        "reachable fraction".into(),
        format!("{:.4}", s.reachable_fraction),
        "1".into(),
        "1.0".into(),
    ]);
    t.row(&[
        "mesh degree mean / max".into(),
        format!("{:.2} / {}", s.mesh_degree_mean, s.mesh_degree_max),
        "3-6".into(),
        "".into(),
    ]);
    t.row(&[
        "converged at".into(),
        format!("{:.0} s", s.converged_at_s),
        "".into(),
        "".into(),
    ]);
    t.row(&[
        "stream delivery ratio".into(),
        format!("{:.4}", s.stream_delivery_ratio),
        "".into(),
        "".into(),
    ]);
    t.render()
}
