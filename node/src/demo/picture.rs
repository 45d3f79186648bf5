//! The demo's picture: the mesh and each source's tree as an SVG, members at their cities on
//! a world map (longitude and latitude as x and y), or on a circle when they have no place.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::app::conference::ConferenceStatus;

/// Where a member is drawn: its city and coordinates (degrees).
#[derive(Clone, Debug)]
pub(super) struct MapPlace {
    /// The city.
    pub(super) name: String,
    /// Latitude.
    pub(super) lat: f64,
    /// Longitude.
    pub(super) lon: f64,
}

/// The mesh (grey) and each source's tree (coloured arrows from parent to child): members at
/// their `places` (equirectangular, the world 1080 wide) if every member has one, else on a
/// circle.
pub(super) fn mesh_svg(
    ids: &[String],
    senders: &[String],
    statuses: &[Option<ConferenceStatus>],
    crashed: Option<usize>,
    places: Option<&[MapPlace]>,
) -> String {
    let n = ids.len().max(1);
    let places = places.filter(|p| p.len() >= ids.len());
    let (w, h) = if places.is_some() {
        (1200.0, 600.0)
    } else {
        (640.0, 640.0)
    };
    let pos = |i: usize| match places {
        // 3 pixels a degree; latitudes beyond ±80 are off the picture's useful part.
        Some(p) => (
            60.0 + (p[i].lon + 180.0) * 3.0,
            60.0 + (80.0 - p[i].lat.clamp(-80.0, 80.0)) * 3.0,
        ),
        None => {
            let r = 240.0;
            let a = std::f64::consts::TAU * i as f64 / n as f64 - std::f64::consts::FRAC_PI_2;
            (w / 2.0 + r * a.cos(), h / 2.0 + r * a.sin())
        }
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
    if places.is_some() {
        // A graticule every 30 degrees, the equator darker: enough to read the continents'
        // places from the cities.
        for lon in (-180..=180).step_by(30) {
            let x = 60.0 + f64::from(lon + 180) * 3.0;
            let _ = writeln!(
                svg,
                "<line x1=\"{x}\" y1=\"60\" x2=\"{x}\" y2=\"540\" stroke=\"#eee\"/>"
            );
        }
        for lat in (-60..=60).step_by(30) {
            let y = 60.0 + f64::from(80 - lat) * 3.0;
            let stroke = if lat == 0 { "#ccc" } else { "#eee" };
            let _ = writeln!(
                svg,
                "<line x1=\"0\" y1=\"{y}\" x2=\"{w}\" y2=\"{y}\" stroke=\"{stroke}\"/>"
            );
        }
    }
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
    // Label boxes placed so far: (left, top, right, bottom).
    let mut labels: Vec<(f64, f64, f64, f64)> = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let (x, y) = pos(i);
        let fill = if crashed == Some(i) {
            "#eee"
        } else if senders.contains(id) {
            colours[senders.iter().position(|s| s == id).unwrap_or(0) % colours.len()]
        } else {
            "#fff"
        };
        let text = format!(
            "{}{}{}",
            places.map_or_else(String::new, |p| format!("{} ", xml_text(&p[i].name))),
            super::short(id),
            if crashed == Some(i) { " (crashed)" } else { "" }
        );
        let (lx, ly, anchor) = label_spot(&mut labels, x, y, text.chars().count(), w);
        let _ = writeln!(
            svg,
            "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"14\" fill=\"{fill}\" stroke=\"#333\"/><text x=\"{lx:.1}\" y=\"{ly:.1}\" text-anchor=\"{anchor}\">{text}</text>"
        );
    }
    let legend = if places.is_some() {
        "grey: mesh links; arrows: each source's tree (parent to child), in the source's colour; members at their cities (a line every 30 degrees)"
    } else {
        "grey: mesh links; arrows: each source's tree (parent to child), in the source's colour"
    };
    let _ = writeln!(svg, "<text x=\"10\" y=\"20\">{legend}</text>\n</svg>");
    svg
}

/// Where a label of `chars` characters goes beside a member at (`x`, `y`): right of it (left
/// near the right edge), at the first of a few heights where it overlaps no label placed
/// before; the box it takes is added to `placed`.
fn label_spot(
    placed: &mut Vec<(f64, f64, f64, f64)>,
    x: f64,
    y: f64,
    chars: usize,
    width: f64,
) -> (f64, f64, &'static str) {
    // 12 px monospace: 7.2 px a character in most fonts; 8 leaves room for wider ones.
    let len = chars as f64 * 8.0;
    let (lx, anchor) = if x + 18.0 + len > width {
        (x - 18.0, "end")
    } else {
        (x + 18.0, "start")
    };
    let (left, right) = if anchor == "end" {
        (lx - len, lx)
    } else {
        (lx, lx + len)
    };
    let free = |ly: f64| {
        let (top, bottom) = (ly - 12.0, ly + 3.0);
        !placed
            .iter()
            .any(|&(l, t, r, b)| left < r && l < right && top < b && t < bottom)
    };
    let ly = [-10.0, 20.0, -26.0, 36.0, -42.0, 52.0]
        .into_iter()
        .map(|dy| y + dy)
        .find(|&ly| free(ly))
        .unwrap_or(y - 10.0);
    placed.push((left, ly - 12.0, right, ly + 3.0));
    (lx, ly, anchor)
}

/// `text` safe inside an SVG text element.
fn xml_text(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            '&' => "&amp;".to_owned(),
            c => c.to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_of_members_close_together_do_not_overlap() {
        let mut placed = Vec::new();
        // Three members a few pixels apart, as Chicago, Piscataway and Phoenix are.
        let spots: Vec<(f64, f64, &str)> = [(337.0, 174.0), (376.0, 178.0), (263.0, 199.0)]
            .into_iter()
            .map(|(x, y)| label_spot(&mut placed, x, y, 20, 1200.0))
            .collect();
        for (i, a) in placed.iter().enumerate() {
            for b in &placed[i + 1..] {
                let overlap = a.0 < b.2 && b.0 < a.2 && a.1 < b.3 && b.1 < a.3;
                assert!(!overlap, "{a:?} and {b:?} overlap ({spots:?})");
            }
        }
        // Near the right edge a label goes left of its member.
        let (x, _, anchor) = label_spot(&mut placed, 1150.0, 400.0, 20, 1200.0);
        assert_eq!((x, anchor), (1132.0, "end"));
    }
}
