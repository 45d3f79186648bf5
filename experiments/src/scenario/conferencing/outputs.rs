//! What `run conferencing` writes besides its table, in the output directory: the summary
//! (`summary.json`), each scheme's bandwidth and RTT per sender and receiver
//! (`receivers.csv`), the members' access links (`members.csv`), the receivers ranked by
//! bandwidth and by RTT (`rank_bandwidth.svg`, `rank_rtt.svg`), and, with the congestion
//! episode, the mean bandwidth over time of every receiver and of those below the slowed relay
//! (`over_time.csv`; the latter drawn in `congestion.svg`).

use std::collections::BTreeMap;
use std::path::Path;

use super::{ConferencingSummary, PairResult, Reference, Scheme, SchemeRun, Timeline};
use crate::network::Network;
use crate::report::{self, Line};
use crate::scenario::ScenarioError;

/// Writes the run's files under `out`.
pub(super) fn write_outputs(
    out: &Path,
    summary: &ConferencingSummary,
    runs: &BTreeMap<Scheme, SchemeRun>,
    reference: &Reference,
    net: &Network,
    t: Timeline,
) -> Result<(), ScenarioError> {
    report::create_dir(out)?;
    report::write_json(&out.join("summary.json"), summary)?;
    let mut rows = Vec::new();
    for (scheme, run) in runs {
        for p in &run.pairs {
            let (alone_bps, _, allowance_bps) = reference.pairs[&(p.sender, p.receiver)];
            rows.push(vec![
                scheme.name().to_owned(),
                p.sender.to_string(),
                p.receiver.to_string(),
                format!("{:.4}", p.bw_bps / 1e6),
                format!("{:.2}", p.rtt_ms),
                format!("{:.4}", alone_bps / 1e6),
                format!("{:.4}", allowance_bps / 1e6),
            ]);
        }
    }
    report::write_csv(
        &out.join("receivers.csv"),
        &[
            "scheme",
            "sender",
            "receiver",
            "mbps",
            "rtt_ms",
            "alone_mbps",
            "allowed_mbps",
        ],
        rows,
    )?;
    // Where each member sat and what its access link carried, to read the pairs against.
    let members: Vec<Vec<String>> = net
        .hosts()
        .iter()
        .enumerate()
        .map(|(m, host)| {
            vec![
                m.to_string(),
                host.name.clone(),
                host.access.class.clone(),
                format!("{:.4}", host.access.up.mbps_f64()),
                format!("{:.4}", host.access.down.mbps_f64()),
                summary.senders.contains(&m).to_string(),
            ]
        })
        .collect();
    report::write_csv(
        &out.join("members.csv"),
        &["member", "name", "class", "up_mbps", "down_mbps", "sender"],
        members,
    )?;
    let rank = |f: fn(&PairResult) -> f64, descending: bool| -> Vec<Line<'static>> {
        runs.iter()
            .map(|(scheme, run)| {
                let mut values: Vec<f64> =
                    run.pairs.iter().map(f).filter(|v| v.is_finite()).collect();
                values.sort_by(|a, b| {
                    if descending {
                        b.total_cmp(a)
                    } else {
                        a.total_cmp(b)
                    }
                });
                Line {
                    label: scheme.name(),
                    points: values
                        .into_iter()
                        .enumerate()
                        .map(|(i, v)| ((i + 1) as f64, v))
                        .collect(),
                }
            })
            .collect()
    };
    report::plot_lines(
        &out.join("rank_bandwidth.svg"),
        &format!(
            "Receivers ranked by bandwidth ({} Mbps source)",
            summary.rate_mbps
        ),
        "rank",
        "Mbps received",
        &rank(|p| p.bw_bps / 1e6, true),
    )?;
    report::plot_lines(
        &out.join("rank_rtt.svg"),
        "Receivers ranked by RTT to the source",
        "rank",
        "RTT, ms",
        &rank(|p| p.rtt_ms, false),
    )?;
    if let Some((from, until)) = t.congestion {
        let lines: Vec<Line<'_>> = runs
            .iter()
            .filter(|(_, r)| r.series.iter().any(|s| s.2.is_some()))
            .map(|(scheme, r)| Line {
                label: scheme.name(),
                points: r
                    .series
                    .iter()
                    .filter_map(|&(x, _, c)| c.map(|c| (x, c)))
                    .collect(),
            })
            .collect();
        report::plot_lines(
            &out.join("congestion.svg"),
            &format!(
                "Receivers below a relay whose uplink drops to a quarter from {:.0} s to {:.0} s",
                from.as_secs_f64(),
                until.as_secs_f64()
            ),
            "simulated s",
            "Mbps received (mean)",
            &lines,
        )?;
        let mut rows = Vec::new();
        for (scheme, run) in runs {
            for &(sec, all, cut) in &run.series {
                rows.push(vec![
                    scheme.name().to_owned(),
                    sec.to_string(),
                    format!("{all:.4}"),
                    cut.map_or_else(String::new, |c| format!("{c:.4}")),
                ]);
            }
        }
        report::write_csv(
            &out.join("over_time.csv"),
            &["scheme", "second", "mean_mbps", "mean_mbps_cut_off"],
            rows,
        )?;
    }
    Ok(())
}
