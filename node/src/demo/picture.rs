//! The demo's picture: the mesh and each source's tree as an SVG, members on a circle.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::app::conference::ConferenceStatus;

/// The mesh (grey) and each source's tree (coloured arrows from parent to child), members on
/// a circle.
pub(super) fn mesh_svg(
    ids: &[String],
    senders: &[String],
    statuses: &[Option<ConferenceStatus>],
    crashed: Option<usize>,
) -> String {
    let n = ids.len().max(1);
    let (w, h, r) = (640.0, 640.0, 240.0);
    let pos = |i: usize| {
        let a = std::f64::consts::TAU * i as f64 / n as f64 - std::f64::consts::FRAC_PI_2;
        (w / 2.0 + r * a.cos(), h / 2.0 + r * a.sin())
    };
    let index: BTreeMap<&str, usize> = ids
        .iter()
        .enumerate()
        .map(|(i, s)| (s.as_str(), i))
        .collect();
    let colours = [
        "#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b",
    ];
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"monospace\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<defs>"
    );
    for (k, c) in colours.iter().enumerate() {
        let _ = write!(
            svg,
            "<marker id=\"a{k}\" viewBox=\"0 0 10 10\" refX=\"18\" refY=\"5\" markerWidth=\"6\" markerHeight=\"6\" orient=\"auto\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"{c}\"/></marker>"
        );
    }
    svg.push_str("</defs>\n");
    for (i, st) in statuses.iter().enumerate() {
        let Some(st) = st else { continue };
        if crashed == Some(i) {
            continue;
        }
        for nb in &st.neighbours {
            if let Some(&j) = index.get(nb.as_str())
                && i < j
            {
                let ((x1, y1), (x2, y2)) = (pos(i), pos(j));
                let _ = writeln!(
                    svg,
                    "<line x1=\"{x1:.1}\" y1=\"{y1:.1}\" x2=\"{x2:.1}\" y2=\"{y2:.1}\" stroke=\"#bbb\" stroke-width=\"6\"/>"
                );
            }
        }
    }
    for (k, src) in senders.iter().enumerate() {
        let colour = colours[k % colours.len()];
        let offset = (k as f64 - (senders.len() as f64 - 1.0) / 2.0) * 3.0;
        for (i, st) in statuses.iter().enumerate() {
            let Some(st) = st else { continue };
            if crashed == Some(i) || ids[i] == *src {
                continue;
            }
            let parent = st
                .routes
                .iter()
                .find(|r| r.dest == *src)
                .and_then(|r| r.next_hop.as_deref())
                .and_then(|p| index.get(p).copied());
            if let Some(p) = parent {
                let ((x1, y1), (x2, y2)) = (pos(p), pos(i));
                let _ = writeln!(
                    svg,
                    "<line x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"{colour}\" stroke-width=\"1.5\" marker-end=\"url(#a{})\"/>",
                    x1 + offset,
                    y1 + offset,
                    x2 + offset,
                    y2 + offset,
                    k % colours.len()
                );
            }
        }
    }
    for (i, id) in ids.iter().enumerate() {
        let (x, y) = pos(i);
        let fill = if crashed == Some(i) {
            "#eee"
        } else if senders.contains(id) {
            colours[senders.iter().position(|s| s == id).unwrap_or(0) % colours.len()]
        } else {
            "#fff"
        };
        let _ = writeln!(
            svg,
            "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"14\" fill=\"{fill}\" stroke=\"#333\"/><text x=\"{:.1}\" y=\"{:.1}\">{}{}</text>",
            x + 18.0,
            y - 10.0,
            super::short(id),
            if crashed == Some(i) { " (crashed)" } else { "" }
        );
    }
    let _ = writeln!(
        svg,
        "<text x=\"10\" y=\"20\">grey: mesh links; arrows: each source's tree (parent to child)</text>\n</svg>"
    );
    svg
}
