//! What the demo prints: the live table while it runs and the per-receiver summary at the end.

use std::fmt::Write as _;
use std::time::Instant;

use overlay_core::Bandwidth;

use super::{DemoSummary, metric_name, short};
use crate::app::conference::{ConferenceStatus, synthetic_source_config};

/// The per-receiver table at the end, the slow member's layers, the window's figures.
pub(super) fn print_summary(
    summary: &DemoSummary,
    rate: Bandwidth,
    ids: &[String],
    cities: &[String],
) {
    println!(
        "\nper receiver, at the end (rate as a fraction of {}):",
        rate
    );
    println!(
        "{:<24} {:<24} {:>9} {:>6} {:>7} {:>9} {:>10}",
        "receiver", "source", "kbit/s", "share", "loss", "delay ms", "recovery s"
    );
    let named = |id: &str| {
        let city = ids
            .iter()
            .position(|x| x == id)
            .map_or("", |i| cities[i].as_str());
        format!("{city} {}", short(id)).trim().to_owned()
    };
    for r in &summary.receivers {
        if summary.crashed.as_ref() == Some(&r.source) {
            let receiver = format!(
                "{}{}",
                named(&r.receiver),
                if r.slow { " (slow)" } else { "" }
            );
            println!(
                "{receiver:<24} {:<24} {:>9} (the source was the member crashed)",
                named(&r.source),
                "-"
            );
            continue;
        }
        println!(
            "{:<24} {:<24} {:>9.0} {:>6.2} {:>7.3} {:>9.2} {:>10}",
            format!(
                "{}{}",
                named(&r.receiver),
                if r.slow { " (slow)" } else { "" }
            ),
            named(&r.source),
            r.rate_kbps,
            r.rate_fraction,
            r.loss,
            r.delay_ms,
            r.recovery_s
                .map_or_else(|| "-".to_owned(), |s| format!("{s:.2}"))
        );
    }
    if let Some(slow) = summary.slow_min_rate_fraction {
        println!(
            "the slow member's lowest share {slow:.2} (keyframes and base layer are {:.2} of the rate)",
            synthetic_source_config(rate).keyframe_and_base_share()
        );
    }
    let layer = |x: Option<f64>| x.map_or_else(|| "-".to_owned(), |x| format!("{x:.3}"));
    for (who, shares) in [
        ("the slow member", summary.slow_on_time),
        ("the others", summary.others_on_time),
    ] {
        if let Some(l) = shares {
            println!(
                "{who}, lowest share in time to play over the window: keyframes {}, base layer {}, enhancement {}",
                layer(l.keyframe),
                layer(l.base),
                layer(l.enhancement)
            );
        }
    }
    println!(
        "lowest share of the others {:.2}; worst recovery after the crash {}",
        summary.min_rate_fraction,
        summary
            .worst_recovery_s
            .map_or_else(|| "-".to_owned(), |s| format!("{s:.2} s"))
    );
    println!(
        "measurement window {:.0}-{:.0} s ({} metric): control {} kB, media {} kB sent, overhead {:.4}",
        summary.window_s.0,
        summary.window_s.1,
        metric_name(summary.metric),
        summary.control_bytes / 1000,
        summary.data_bytes / 1000,
        summary.overhead_ratio
    );
}

/// The live table: each member's neighbours, members, and what arrives from each sender.
pub(super) fn print_table(
    started: Instant,
    ids: &[String],
    cities: &[String],
    senders: &[String],
    statuses: &[Option<ConferenceStatus>],
    crashed: Option<usize>,
) {
    let mut out = format!(
        "{:>5.1} s  {:<24} {:>4} {:>7}",
        started.elapsed().as_secs_f64(),
        "member",
        "nbrs",
        "members"
    );
    let name = |i: usize| {
        let city = cities.get(i).map_or("", String::as_str);
        format!("{city} {}", short(&ids[i])).trim().to_owned()
    };
    for s in senders {
        let from = ids
            .iter()
            .position(|id| id == s)
            .and_then(|i| cities.get(i).filter(|c| !c.is_empty()).cloned())
            .unwrap_or_else(|| s[..4].to_owned());
        let _ = write!(out, " {:>16}", format!("from {from}"));
    }
    out.push('\n');
    for (i, st) in statuses.iter().enumerate() {
        let Some(st) = st else { continue };
        if crashed == Some(i) {
            let _ = writeln!(out, "         {:<24} crashed", name(i));
            continue;
        }
        let _ = write!(
            out,
            "         {:<24} {:>4} {:>7}",
            name(i),
            st.neighbours.len(),
            st.members.len()
        );
        for s in senders {
            let cell = if *s == ids[i] {
                "(sends)".to_owned()
            } else if crashed.is_some_and(|c| ids[c] == *s) {
                "(crashed)".to_owned()
            } else {
                st.sources.get(s).map_or_else(
                    || "-".to_owned(),
                    |x| format!("{:.0} kb/s {:.0} ms", x.rate_kbps, x.delay_ms),
                )
            };
            let _ = write!(out, " {cell:>16}");
        }
        out.push('\n');
    }
    println!("{out}");
}
