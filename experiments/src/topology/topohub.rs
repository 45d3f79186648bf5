//! Router maps in topohub's JSON (networkx node-link format).
//!
//! `nodes` carry `id` (string or number), optional `name` and `pos` ([longitude, latitude]);
//! `edges` (or `links`) carry `source`, `target` and `dist` in kilometres. A link's delay is
//! `dist / 200` ms (light in fibre), at least 0.1 ms; an edge without `dist` takes the
//! great-circle distance between its ends' positions. Self-loops are dropped and parallel edges
//! merged (shortest kept), and both are reported. A disconnected map is refused unless the spec
//! asks for its largest component.

use std::collections::BTreeMap;
use std::time::Duration;

use overlay_core::Bandwidth;
use serde_json::Value;

use super::{PhysicalGraph, PhysicalLink, Router, RouterRole, TopologyError};
use crate::spec::Spec;

/// Kilometres light travels in fibre per millisecond.
pub const FIBRE_KM_PER_MS: f64 = 200.0;

/// Keys a `topohub:` spec accepts after its path.
pub const KEYS: &[&str] = &["capacity", "largest_component"];

/// Load a map as a `topohub:PATH[,capacity=..][,largest_component=true]` spec says.
pub fn load(mut spec: Spec) -> Result<PhysicalGraph, TopologyError> {
    let path = spec.path().unwrap_or_default().to_owned();
    let capacity = spec.take("capacity", Bandwidth::from_mbps(10_000))?;
    let largest_only = spec.take("largest_component", false)?;
    spec.finish(KEYS)?;
    let text = std::fs::read_to_string(&path).map_err(|source| TopologyError::Io {
        path: path.clone(),
        source,
    })?;
    let graph = parse(&path, &text, capacity)?;
    let components = graph.components();
    if components.len() <= 1 {
        return Ok(graph);
    }
    let sizes: Vec<String> = components
        .iter()
        .take(6)
        .map(|c| c.len().to_string())
        .collect();
    if !largest_only {
        return Err(TopologyError::invalid(
            &path,
            "the map",
            format!(
                "it is disconnected: {} components of sizes {}{}; pass largest_component=true to keep only the largest",
                components.len(),
                sizes.join(", "),
                if components.len() > 6 { ", ..." } else { "" }
            ),
        ));
    }
    let dropped: usize = components[1..].iter().map(Vec::len).sum();
    let mut reduced = graph.induced(&components[0]);
    reduced.notes.push(format!(
        "kept the largest component ({} routers), dropped {} routers in {} other components",
        components[0].len(),
        dropped,
        components.len() - 1
    ));
    Ok(reduced)
}

/// Parse topohub JSON text; `path` only names the file in errors.
pub fn parse(path: &str, text: &str, capacity: Bandwidth) -> Result<PhysicalGraph, TopologyError> {
    let root: Value = serde_json::from_str(text).map_err(|e| {
        TopologyError::invalid(
            path,
            format!("line {} column {}", e.line(), e.column()),
            format!("not valid JSON: {e}"),
        )
    })?;
    let nodes = root
        .get("nodes")
        .and_then(Value::as_array)
        .ok_or_else(|| TopologyError::invalid(path, "top level", "no \"nodes\" array"))?;
    let edges = root
        .get("edges")
        .or_else(|| root.get("links"))
        .and_then(Value::as_array)
        .ok_or_else(|| {
            TopologyError::invalid(path, "top level", "no \"edges\" (or \"links\") array")
        })?;
    if nodes.is_empty() {
        return Err(TopologyError::invalid(
            path,
            "nodes",
            "the map has no routers",
        ));
    }

    let mut index = BTreeMap::new();
    let mut routers = Vec::with_capacity(nodes.len());
    for (i, node) in nodes.iter().enumerate() {
        let at = format!("nodes[{i}]");
        let id = node.get("id").and_then(id_key).ok_or_else(|| {
            TopologyError::invalid(path, &at, "\"id\" is missing or not a string or number")
        })?;
        if index.insert(id.clone(), i).is_some() {
            return Err(TopologyError::invalid(
                path,
                &at,
                format!("id {id:?} appears twice"),
            ));
        }
        let pos = match node.get("pos") {
            None | Some(Value::Null) => [f64::NAN, f64::NAN],
            Some(v) => parse_pos(v).ok_or_else(|| {
                TopologyError::invalid(path, &at, "\"pos\" is not [longitude, latitude] in degrees")
            })?,
        };
        let name = node
            .get("name")
            .and_then(Value::as_str)
            .map_or_else(|| id.clone(), str::to_owned);
        routers.push(Router {
            name,
            pos,
            role: RouterRole::Plain,
        });
    }

    let mut best: BTreeMap<(usize, usize), Duration> = BTreeMap::new();
    let (mut self_loops, mut parallel, mut from_positions) = (0, 0, 0);
    for (i, edge) in edges.iter().enumerate() {
        let at = format!("edges[{i}]");
        let end = |key: &str| -> Result<usize, TopologyError> {
            let id = edge.get(key).and_then(id_key).ok_or_else(|| {
                TopologyError::invalid(path, &at, format!("\"{key}\" is missing or not an id"))
            })?;
            index.get(&id).copied().ok_or_else(|| {
                TopologyError::invalid(
                    path,
                    &at,
                    format!("\"{key}\" names router {id:?}, which is not in nodes"),
                )
            })
        };
        let (a, b) = (end("source")?, end("target")?);
        let km = match edge.get("dist") {
            Some(v) => match v.as_f64() {
                Some(km) if km.is_finite() && km >= 0.0 => km,
                _ => {
                    return Err(TopologyError::invalid(
                        path,
                        &at,
                        format!("\"dist\" must be a non-negative number of km, got {v}"),
                    ));
                }
            },
            None => {
                let km = great_circle_km(routers[a].pos, routers[b].pos);
                if !km.is_finite() {
                    return Err(TopologyError::invalid(
                        path,
                        &at,
                        "no \"dist\", and its ends have no positions to derive one",
                    ));
                }
                from_positions += 1;
                km
            }
        };
        if a == b {
            self_loops += 1;
            continue;
        }
        let delay =
            Duration::from_secs_f64(km / FIBRE_KM_PER_MS / 1e3).max(Duration::from_micros(100));
        let key = (a.min(b), a.max(b));
        match best.get(&key) {
            Some(&old) => {
                parallel += 1;
                if delay < old {
                    best.insert(key, delay);
                }
            }
            None => {
                best.insert(key, delay);
            }
        }
    }
    let links = best
        .into_iter()
        .map(|((a, b), delay)| PhysicalLink {
            a,
            b,
            delay,
            capacity,
        })
        .collect();
    let name = root
        .pointer("/graph/name")
        .and_then(Value::as_str)
        .map_or_else(
            || path.rsplit('/').next().unwrap_or(path).to_owned(),
            str::to_owned,
        );
    let mut graph = PhysicalGraph::new(name, routers, links);
    for (count, what) in [
        (self_loops, "self-loops dropped"),
        (parallel, "parallel edges merged (shortest kept)"),
        (
            from_positions,
            "edges without \"dist\" measured from positions",
        ),
    ] {
        if count > 0 {
            graph.notes.push(format!("{count} {what}"));
        }
    }
    Ok(graph)
}

fn id_key(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn parse_pos(v: &Value) -> Option<[f64; 2]> {
    let items = v.as_array()?;
    if items.len() != 2 {
        return None;
    }
    let (lon, lat) = (items[0].as_f64()?, items[1].as_f64()?);
    ((-180.0..=180.0).contains(&lon) && (-90.0..=90.0).contains(&lat)).then_some([lon, lat])
}

/// Great-circle distance in km between two [longitude, latitude] points (NaN if either is unknown).
fn great_circle_km(a: [f64; 2], b: [f64; 2]) -> f64 {
    if !(a.iter().chain(&b).all(|c| c.is_finite())) {
        return f64::NAN;
    }
    let (lon1, lat1, lon2, lat2) = (
        a[0].to_radians(),
        a[1].to_radians(),
        b[0].to_radians(),
        b[1].to_radians(),
    );
    let h = ((lat2 - lat1) / 2.0).sin().powi(2)
        + lat1.cos() * lat2.cos() * ((lon2 - lon1) / 2.0).sin().powi(2);
    2.0 * 6371.0 * h.sqrt().min(1.0).asin()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAP: Bandwidth = Bandwidth::from_mbps(10_000);

    #[test]
    fn reads_real_maps() {
        for (file, routers) in [
            ("topozoo-Abilene.json", 11),
            ("topozoo-Geant2012.json", 37),
            ("topozoo-TataNld.json", 143),
            ("caida-2024-08-as3215.json", 131),
            ("caida-2024-08-as6830.json", 97),
        ] {
            let path = format!("{}/../data/topology/{file}", env!("CARGO_MANIFEST_DIR"));
            let spec = Spec::parse(&format!("topohub:{path}"), |_| true).unwrap();
            let g = load(spec).unwrap();
            assert_eq!(g.routers().len(), routers, "{file}");
            assert!(g.is_connected());
            assert!(
                g.links()
                    .iter()
                    .all(|l| l.delay >= Duration::from_micros(100))
            );
        }
    }

    #[test]
    fn delay_is_distance_over_light_in_fibre() {
        let text = r#"{"nodes":[{"id":"a"},{"id":"b"},{"id":1}],
            "edges":[{"source":"a","target":"b","dist":1000},{"source":"b","target":1,"dist":0},
                     {"source":"a","target":"b","dist":400},{"source":1,"target":1,"dist":3}]}"#;
        let g = parse("x.json", text, CAP).unwrap();
        assert_eq!(g.links().len(), 2);
        assert_eq!(g.links()[0].delay, Duration::from_millis(2)); // 400 km, the shorter duplicate
        assert_eq!(g.links()[1].delay, Duration::from_micros(100)); // the floor
        assert_eq!(g.notes.len(), 2, "{:?}", g.notes);
    }

    #[test]
    fn errors_name_the_file_element_and_problem() {
        let cases = [
            ("{", "x.json: line 1 column 1"),
            (r#"{"edges":[]}"#, "no \"nodes\" array"),
            (
                r#"{"nodes":[{"id":"a"},{"id":"a"}],"edges":[]}"#,
                "nodes[1]: id \"a\" appears twice",
            ),
            (
                r#"{"nodes":[{"id":"a"}],"edges":[{"source":"a","target":"z","dist":1}]}"#,
                "edges[0]: \"target\" names router \"z\"",
            ),
            (
                r#"{"nodes":[{"id":"a"},{"id":"b"}],"edges":[{"source":"a","target":"b","dist":-1}]}"#,
                "edges[0]: \"dist\" must be",
            ),
            (
                r#"{"nodes":[{"id":"a"},{"id":"b"}],"edges":[{"source":"a","target":"b"}]}"#,
                "edges[0]: no \"dist\"",
            ),
            (
                r#"{"nodes":[{"id":"a","pos":[500,1]}],"edges":[]}"#,
                "nodes[0]: \"pos\"",
            ),
        ];
        for (text, expected) in cases {
            let err = parse("x.json", text, CAP).unwrap_err().to_string();
            assert!(err.contains(expected), "{text}: {err}");
        }
    }

    #[test]
    fn disconnected_maps_are_refused_unless_reduced_explicitly() {
        let dir = std::env::temp_dir().join(format!("topohub-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("split.json");
        std::fs::write(
            &path,
            r#"{"nodes":[{"id":0},{"id":1},{"id":2},{"id":3},{"id":4}],
               "edges":[{"source":0,"target":1,"dist":10},{"source":1,"target":2,"dist":10},{"source":3,"target":4,"dist":10}]}"#,
        )
        .unwrap();
        let p = path.display();
        let err = load(Spec::parse(&format!("topohub:{p}"), |_| true).unwrap())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("disconnected: 2 components of sizes 3, 2"),
            "{err}"
        );
        let g =
            load(Spec::parse(&format!("topohub:{p},largest_component=true"), |_| true).unwrap())
                .unwrap();
        assert_eq!(g.routers().len(), 3);
        assert!(
            g.notes.iter().any(|n| n.contains("dropped 2 routers")),
            "{:?}",
            g.notes
        );
        let missing =
            load(Spec::parse("topohub:/nonexistent/map.json", |_| true).unwrap()).unwrap_err();
        assert!(
            missing
                .to_string()
                .starts_with("/nonexistent/map.json: cannot read"),
            "{missing}"
        );
    }
}
