//! The two reference schemes every overlay is measured against, taking each member in turn as
//! the source:
//!
//! - naive unicast: the source sends a copy to every receiver along its unicast path;
//! - IP multicast: one copy per link of the source's shortest-path tree on the physical graph.
//!
//! Beside them, what any overlay could reach on the same placement ([`crate::tree::bounds`]):
//! the cheapest overlay tree's resource usage, a lower bound of RDP for a mesh of the given
//! degree, and the trees of a greedy spanner built centrally with the whole delay matrix.
//!
//! It is also the sanity check of the accounting: unicast's RDP is 1 by definition, its worst
//! stress is N − 1 on the source's uplink, and IP multicast's stress is 1 everywhere.

use std::path::Path;
use std::time::Duration;

use clap::Args;
use overlay_core::Bandwidth;
use serde::Serialize;

use super::{CommonArgs, RunHeader, Scenario, ScenarioError, progress};
use crate::network::Network;
use crate::report::{self, Curve, Table, fmt_opt, round6};
use crate::stats::{Distribution, Histogram};
use crate::tree::bounds::{self, GreedySpanner};
use crate::tree::quality::{References, TreeQuality};
use crate::tree::{self, DeliveryTree, StressCounter, TreeMetrics};

/// Arguments of `run baselines`.
#[derive(Debug, Clone, Args)]
pub struct BaselinesArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub common: CommonArgs,
    /// Source rate for receiver-bandwidth figures (the conferencing paper streamed at 1.2 Mbps).
    #[arg(long, default_value = "1.2mbps")]
    pub rate: Bandwidth,
    /// Take only the first N members as sources (default: every member).
    #[arg(long)]
    pub sources: Option<usize>,
    /// Most mesh neighbours per member for the overlay references (Narada's default maximum
    /// degree); 0 skips them (the greedy spanner costs O(N³ log N): about a second at 128
    /// members).
    #[arg(long, default_value_t = 6)]
    pub overlay_degree: usize,
    /// The greedy spanner's stretch: a link where the mesh's path is longer than this many
    /// times the direct delay (Narada's default `stretch_add`).
    #[arg(long, default_value_t = 2.0)]
    pub spanner_stretch: f64,
}

/// `summary.json` of `run baselines`.
#[derive(Debug, Clone, Serialize)]
pub struct BaselinesSummary {
    #[serde(flatten)]
    #[allow(missing_docs)]
    pub header: RunHeader,
    /// Source rate, Mbps.
    pub rate_mbps: f64,
    /// Members taken as sources.
    pub sources: usize,
    /// Naive unicast's figures.
    pub unicast: UnicastFigures,
    /// IP multicast's figures.
    pub ip_multicast: MulticastFigures,
    /// What any overlay could reach on this placement (`null` with `--overlay-degree 0`).
    pub overlay: Option<OverlayReferences>,
}

/// What any overlay could reach on the placement, over the same sources.
#[derive(Debug, Clone, Serialize)]
pub struct OverlayReferences {
    /// The mesh degree bound the RDP bound and the spanner assume.
    pub max_degree: usize,
    /// The members' minimum spanning tree over IP multicast: the least resource usage any
    /// overlay tree can have (null without physical links).
    pub mst_ru_ratio: Option<f64>,
    /// The members' minimum spanning tree's weight, ms.
    pub mst_ms: f64,
    /// Lower bound of the median RDP of any mesh of at most `max_degree` neighbours.
    pub rdp_bound_p50: f64,
    /// Lower bound of the 90th-percentile RDP of any such mesh.
    pub rdp_bound_p90: f64,
    /// The greedy spanner's trees.
    pub spanner: SpannerFigures,
}

/// Figures of the shortest-path trees on a centrally built greedy spanner.
#[derive(Debug, Clone, Serialize)]
pub struct SpannerFigures {
    /// The stretch it was built with.
    pub stretch: f64,
    /// Mean links per member.
    pub mean_degree: f64,
    /// Median RDP.
    pub rdp_p50: f64,
    /// 90th-percentile RDP.
    pub rdp_p90: f64,
    /// Worst link stress over the sources (null without physical links).
    pub stress_max: Option<u64>,
    /// Resource usage over IP multicast's, summed over sources.
    pub ru_ratio: Option<f64>,
    /// Receivers reached over receivers expected.
    pub reachable_fraction: f64,
}

/// Figures of naive unicast over all sources and receivers.
#[derive(Debug, Clone, Serialize)]
pub struct UnicastFigures {
    /// Median RDP (1 by definition: a check of the accounting).
    pub rdp_p50: f64,
    /// 90th-percentile RDP.
    pub rdp_p90: f64,
    /// Largest RDP.
    pub rdp_max: f64,
    /// Median one-way unicast delay, ms.
    pub delay_ms_p50: f64,
    /// 90th-percentile one-way unicast delay, ms.
    pub delay_ms_p90: f64,
    /// Worst link stress over all sources (null without physical links).
    pub stress_max: Option<u64>,
    /// Mean stress over the links each source's packets cross.
    pub stress_mean: Option<f64>,
    /// Whether, for every source, its own access uplink is among its most stressed links.
    pub stress_max_on_source_uplink: Option<bool>,
    /// Mean resource usage per source, ms (sum of delay × stress).
    pub ru_ms: Option<f64>,
    /// Resource usage over IP multicast's, summed over sources.
    pub ru_ratio: Option<f64>,
    /// Mean receiver rate, Mbps, when the source unicasts to all at once (max-min fair shares).
    pub bw_mbps_mean: f64,
    /// Mean of each receiver's rate over what it gets alone on its path (sequential unicast).
    pub bw_ratio_mean: f64,
    /// 10th percentile of that ratio.
    pub bw_ratio_p10: f64,
}

/// Figures of IP multicast over all sources.
#[derive(Debug, Clone, Serialize)]
pub struct MulticastFigures {
    /// Worst link stress (1 for a shortest-path tree).
    pub stress_max: Option<u64>,
    /// Mean stress over links used.
    pub stress_mean: Option<f64>,
    /// Mean resource usage per source, ms.
    pub ru_ms: Option<f64>,
}

struct PerSource {
    unicast: TreeMetrics,
    multicast: TreeMetrics,
    /// `(receiver, concurrent rate, sequential rate)`.
    rates: Vec<(usize, f64, f64)>,
}

/// `run baselines` as a [`Scenario`].
#[derive(Debug, Clone, Copy)]
pub struct Baselines;

impl Scenario for Baselines {
    const NAME: &'static str = "baselines";
    type Args = BaselinesArgs;
    type Summary = BaselinesSummary;

    fn out(args: &BaselinesArgs) -> Option<&Path> {
        args.common.out.as_deref()
    }

    fn run(args: &BaselinesArgs) -> Result<BaselinesSummary, ScenarioError> {
        run(args)
    }

    fn headline(_args: &BaselinesArgs, summary: &BaselinesSummary, elapsed: Duration) -> String {
        let mut line = format!(
            "baselines on {} with {} members (seed {}), {} sources, in {:.2} s",
            summary.header.topology_name,
            summary.header.members,
            summary.header.seed,
            summary.sources,
            elapsed.as_secs_f64()
        );
        line.push_str(&summary.header.capacities_line());
        line
    }

    fn table(summary: &BaselinesSummary) -> String {
        table(summary)
    }
}

/// Run the scenario and write its results to the output directory.
pub fn run(args: &BaselinesArgs) -> Result<BaselinesSummary, ScenarioError> {
    let net = args.common.network()?;
    let sources = args
        .sources
        .unwrap_or_else(|| net.members())
        .min(net.members());
    if sources == 0 {
        return Err(ScenarioError::Argument(
            "--sources must be at least 1".to_owned(),
        ));
    }
    let rate = args.rate.bps_f64();
    if rate <= 0.0 {
        return Err(ScenarioError::Argument(
            "--rate must be positive".to_owned(),
        ));
    }
    let bar = progress(sources as u64, "sources");
    let mut counter = StressCounter::default();
    let mut per_source = Vec::with_capacity(sources);
    for s in 0..sources {
        let star = DeliveryTree::star(s, net.members());
        let unicast = tree::evaluate(&net, &star, &mut counter);
        let multicast = tree::ip_multicast(&net, s, &mut counter);
        let concurrent = tree::receiver_rates(&net, &star, rate);
        let rates = (0..net.members())
            .filter(|&r| r != s)
            .map(|r| {
                (
                    r,
                    concurrent[r].unwrap_or(0.0),
                    net.path_capacity(s, r).bps_f64().min(rate),
                )
            })
            .collect();
        per_source.push(PerSource {
            unicast,
            multicast,
            rates,
        });
        bar.inc(1);
    }
    bar.finish_and_clear();
    let mut summary = summarise(args, &net, sources, &per_source);
    if args.overlay_degree > 0 {
        if args.spanner_stretch.is_nan() || args.spanner_stretch < 1.0 {
            return Err(ScenarioError::Argument(
                "--spanner-stretch must be at least 1".to_owned(),
            ));
        }
        summary.overlay = Some(overlay_references(args, &net, sources));
    }
    let out = Baselines::out_dir(args);
    write_outputs(&out, &net, &summary, &per_source)?;
    Ok(summary)
}

/// The overlay references of `args` over the first `sources` members.
fn overlay_references(args: &BaselinesArgs, net: &Network, sources: usize) -> OverlayReferences {
    let sources: Vec<usize> = (0..sources).collect();
    let refs = References::compute(net);
    let bound = bounds::rdp_lower_bound(net, args.overlay_degree, &sources);
    let spanner = GreedySpanner::build(net, args.overlay_degree, args.spanner_stretch);
    let q = TreeQuality::measure(net, &refs, &sources, |s| spanner.parents(s), |_| true);
    let quantile = |d: &Distribution, p: f64| round6(d.quantile(p).unwrap_or(f64::NAN));
    OverlayReferences {
        max_degree: args.overlay_degree,
        mst_ru_ratio: q.ru_floor_ratio().map(round6),
        mst_ms: round6(refs.mst_ms),
        rdp_bound_p50: quantile(&bound, 0.5),
        rdp_bound_p90: quantile(&bound, 0.9),
        spanner: SpannerFigures {
            stretch: args.spanner_stretch,
            mean_degree: round6(spanner.mean_degree()),
            rdp_p50: quantile(&q.rdp, 0.5),
            rdp_p90: quantile(&q.rdp, 0.9),
            stress_max: q.stress.max().filter(|_| net.has_physical_links()),
            ru_ratio: q.ru_ratio().map(round6),
            reachable_fraction: round6(q.reachable_fraction()),
        },
    }
}

fn summarise(
    args: &BaselinesArgs,
    net: &Network,
    sources: usize,
    runs: &[PerSource],
) -> BaselinesSummary {
    let rdp = Distribution::new(
        runs.iter()
            .flat_map(|r| r.unicast.rdp.iter().copied())
            .collect(),
    );
    let delays_ms = Distribution::new(
        runs.iter()
            .flat_map(|r| {
                r.unicast
                    .delay_us
                    .iter()
                    .enumerate()
                    .filter(move |&(m, _)| m != r.unicast.source)
            })
            .filter_map(|(_, d)| d.map(|us| us as f64 / 1e3))
            .collect(),
    );
    let ratios = Distribution::new(
        runs.iter()
            .flat_map(|r| r.rates.iter().map(|&(_, got, alone)| got / alone))
            .collect(),
    );
    let rates = Distribution::new(
        runs.iter()
            .flat_map(|r| r.rates.iter().map(|&(_, got, _)| got / 1e6))
            .collect(),
    );
    let physical = net.has_physical_links();
    let stress_of =
        |pick: fn(&PerSource) -> &TreeMetrics| -> (Option<u64>, Option<f64>, Option<f64>, f64) {
            let mut all = Histogram::default();
            let mut usage = 0.0;
            for r in runs {
                if let Some(s) = &pick(r).stress {
                    all.merge(&s.histogram);
                    usage += s.resource_usage_ms;
                }
            }
            let per_source = physical.then(|| round6(usage / runs.len() as f64));
            (
                all.max().filter(|_| physical),
                all.mean().map(round6).filter(|_| physical),
                per_source,
                usage,
            )
        };
    let (u_max, u_mean, u_ru, u_total) = stress_of(|r| &r.unicast);
    let (m_max, m_mean, m_ru, m_total) = stress_of(|r| &r.multicast);
    let on_uplink = physical.then(|| {
        runs.iter().all(|r| {
            r.unicast
                .stress
                .as_ref()
                .is_some_and(|s| s.max_links.contains(&net.access_link(r.unicast.source)))
        })
    });
    let q = |d: &Distribution, p: f64| round6(d.quantile(p).unwrap_or(f64::NAN));
    BaselinesSummary {
        header: RunHeader::new(Baselines::NAME, &args.common, net),
        rate_mbps: args.rate.mbps_f64(),
        sources,
        unicast: UnicastFigures {
            rdp_p50: q(&rdp, 0.5),
            rdp_p90: q(&rdp, 0.9),
            rdp_max: q(&rdp, 1.0),
            delay_ms_p50: q(&delays_ms, 0.5),
            delay_ms_p90: q(&delays_ms, 0.9),
            stress_max: u_max,
            stress_mean: u_mean,
            stress_max_on_source_uplink: on_uplink,
            ru_ms: u_ru,
            ru_ratio: physical.then(|| round6(u_total / m_total)),
            bw_mbps_mean: round6(rates.mean().unwrap_or(0.0)),
            bw_ratio_mean: round6(ratios.mean().unwrap_or(0.0)),
            bw_ratio_p10: q(&ratios, 0.1),
        },
        ip_multicast: MulticastFigures {
            stress_max: m_max,
            stress_mean: m_mean,
            ru_ms: m_ru,
        },
        overlay: None,
    }
}

fn write_outputs(
    out: &Path,
    net: &Network,
    summary: &BaselinesSummary,
    runs: &[PerSource],
) -> Result<(), ScenarioError> {
    report::create_dir(out)?;
    report::write_json(&out.join("summary.json"), summary)?;

    let mut receivers = Vec::new();
    for r in runs {
        let s = r.unicast.source;
        for &(m, got, alone) in &r.rates {
            let delay = net.unicast_delay_micros(s, m) as f64 / 1e3;
            receivers.push(vec![
                s.to_string(),
                m.to_string(),
                format!("{delay:.3}"),
                net.router_hops(s, m).to_string(),
                format!("{:.6}", got / 1e6),
                format!("{:.6}", alone / 1e6),
            ]);
        }
    }
    report::write_csv(
        &out.join("receivers.csv"),
        &[
            "source",
            "receiver",
            "unicast_delay_ms",
            "router_hops",
            "unicast_concurrent_mbps",
            "sequential_unicast_mbps",
        ],
        receivers,
    )?;

    let mut sources = Vec::new();
    for r in runs {
        let (u, m) = (r.unicast.stress.as_ref(), r.multicast.stress.as_ref());
        sources.push(vec![
            r.unicast.source.to_string(),
            u.map_or_else(String::new, |s| s.max.to_string()),
            u.map_or_else(String::new, |s| format!("{:.3}", s.resource_usage_ms)),
            m.map_or_else(String::new, |s| s.max.to_string()),
            m.map_or_else(String::new, |s| format!("{:.3}", s.resource_usage_ms)),
        ]);
    }
    report::write_csv(
        &out.join("sources.csv"),
        &[
            "source",
            "unicast_stress_max",
            "unicast_ru_ms",
            "ip_multicast_stress_max",
            "ip_multicast_ru_ms",
        ],
        sources,
    )?;

    let ratios: Vec<f64> = runs
        .iter()
        .flat_map(|r| r.rates.iter().map(|&(_, got, alone)| got / alone))
        .collect();
    report::plot_cdf(
        &out.join("receiver_bandwidth.svg"),
        &format!(
            "Receiver bandwidth at {} Mbps, over sequential unicast",
            summary.rate_mbps
        ),
        "rate received / rate alone on the path",
        &[Curve {
            label: "naive unicast (all receivers at once)",
            samples: &ratios,
        }],
    )?;

    if net.has_physical_links() {
        let mut unicast = Histogram::default();
        let mut multicast = Histogram::default();
        for r in runs {
            if let (Some(u), Some(m)) = (&r.unicast.stress, &r.multicast.stress) {
                unicast.merge(&u.histogram);
                multicast.merge(&m.histogram);
            }
        }
        let stress_rows = unicast
            .iter()
            .map(|(v, c)| vec!["unicast".to_owned(), v.to_string(), c.to_string()])
            .chain(
                multicast
                    .iter()
                    .map(|(v, c)| vec!["ip_multicast".to_owned(), v.to_string(), c.to_string()]),
            );
        report::write_csv(
            &out.join("stress.csv"),
            &["scheme", "stress", "links"],
            stress_rows,
        )?;
        let bars =
            report::stress_bars(&[("naive unicast", &unicast), ("IP multicast", &multicast)]);
        report::plot_bars(
            &out.join("stress.svg"),
            &format!(
                "Link stress, all {} sources ({} members)",
                runs.len(),
                net.members()
            ),
            "copies of a packet on a link",
            "links (summed over sources)",
            &bars,
        )?;
    }
    Ok(())
}

/// The figures as a table, beside what the Narada paper reports for the same schemes.
pub fn table(summary: &BaselinesSummary) -> String {
    let (u, m) = (&summary.unicast, &summary.ip_multicast);
    let int = |v: Option<u64>| v.map_or_else(|| "n/a".to_owned(), |v| v.to_string());
    let n = summary.header.members;
    let mut t = Table::new(&["metric", "naive unicast", "IP multicast", "papers"]);
    t.row(&[
        "RDP p50 / p90".into(),
        format!("{:.2} / {:.2}", u.rdp_p50, u.rdp_p90),
        "1.00 / 1.00".into(),
        "1 by definition".into(),
    ]);
    t.row(&[
        "worst link stress".into(),
        int(u.stress_max),
        int(m.stress_max),
        format!("N-1 = {} / 1 (Narada, SIGMETRICS 2000)", n - 1),
    ]);
    t.row(&[
        "mean link stress".into(),
        fmt_opt(u.stress_mean, 2),
        fmt_opt(m.stress_mean, 2),
        "".into(),
    ]);
    t.row(&[
        "resource usage, ms".into(),
        fmt_opt(u.ru_ms, 1),
        fmt_opt(m.ru_ms, 1),
        "".into(),
    ]);
    t.row(&[
        "RU / IP multicast".into(),
        fmt_opt(u.ru_ratio, 2),
        "1.00".into(),
        "".into(),
    ]);
    t.row(&[
        format!("bandwidth / alone @ {} Mbps", summary.rate_mbps),
        format!("{:.2} (p10 {:.2})", u.bw_ratio_mean, u.bw_ratio_p10),
        "1.00".into(),
        "".into(),
    ]);
    let mut out = t.render();
    if let Some(o) = &summary.overlay {
        let sp = &o.spanner;
        let mut t = Table::new(&["what any overlay could reach", "figure"]);
        t.row(&[
            "cheapest tree (MST): RU / IP multicast".into(),
            fmt_opt(o.mst_ru_ratio, 2),
        ]);
        t.row(&[
            format!("RDP p50 / p90 lower bound, degree <= {}", o.max_degree),
            format!("{:.2} / {:.2}", o.rdp_bound_p50, o.rdp_bound_p90),
        ]);
        t.row(&[
            format!(
                "greedy spanner (stretch {}, mean degree {:.1}): RDP p50 / p90",
                sp.stretch, sp.mean_degree
            ),
            format!("{:.2} / {:.2}", sp.rdp_p50, sp.rdp_p90),
        ]);
        t.row(&[
            "  worst stress / RU over IP multicast".into(),
            format!("{} / {}", int(sp.stress_max), fmt_opt(sp.ru_ratio, 2)),
        ]);
        out.push('\n');
        out.push_str(&t.render());
    }
    out
}
