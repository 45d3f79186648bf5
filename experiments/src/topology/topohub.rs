//! Router maps in topohub's JSON (networkx node-link format).
//!
//! `nodes` carry `id` (string or number), optional `name` and `pos` ([longitude, latitude]);
//! `edges` (or `links`) carry `source`, `target` and `dist` in kilometres. A link's delay is
//! `dist / 200` ms (light in fibre), at least 0.1 ms; an edge without `dist` takes the
//! great-circle distance between its ends' positions. An edge's capacity is taken from the map
//! where it has one (`capacity`: bit/s as a number, or a rate such as "10gbps"; or Topology
//! Zoo's `LinkSpeedRaw` in bit/s); links without one get theirs from a [`CapacityModel`]
//! (by default provisioned by load). Self-loops are dropped and parallel edges merged (shortest
//! kept, capacities added; if one of them has no capacity, the merged link is modelled), and
//! both are reported. A disconnected map is refused unless the spec
//! asks for its largest component.

use std::collections::BTreeMap;
use std::time::Duration;

use overlay_core::Bandwidth;
use serde_json::Value;

use super::capacity::{self, CapacityModel};
use super::{PhysicalGraph, PhysicalLink, Router, RouterRole, TopologyError};
use crate::spec::Spec;

/// Kilometres light travels in fibre per millisecond.
pub const FIBRE_KM_PER_MS: f64 = 200.0;

/// Keys a `topohub:` spec accepts after its path.
pub const KEYS: &[&str] = &["capacity", "top", "floor", "largest_component"];

/// Load a map as a `topohub:PATH[,capacity=provisioned|RATE][,top=..][,floor=..]
/// [,largest_component=true]` spec says: `capacity=provisioned` (the default) sizes links the
/// map gives no capacity by their load, the busiest at `top` (100 Gbit/s) and none below `floor`
/// (1 Gbit/s); `capacity=RATE` gives them all that rate.
pub fn load(mut spec: Spec) -> Result<PhysicalGraph, TopologyError> {
    let path = spec.path().unwrap_or_default().to_owned();
    let model = capacity_model(&mut spec)?;
    let largest_only = spec.take("largest_component", false)?;
    spec.finish(KEYS)?;
    let text = std::fs::read_to_string(&path).map_err(|source| TopologyError::Io {
        path: path.clone(),
        source,
    })?;
    let graph = parse(&path, &text)?;
    let components = graph.components();
    let mut graph = if components.len() <= 1 {
        graph
    } else {
        largest_component(&path, graph, &components, largest_only)?
    };
    fill_capacities(&mut graph, model);
    Ok(graph)
}

/// The capacity model a spec asks for.
fn capacity_model(spec: &mut Spec) -> Result<CapacityModel, TopologyError> {
    let kind: String = spec.take("capacity", "provisioned".to_owned())?;
    let top: Option<Bandwidth> = spec.take_opt("top")?;
    let floor: Option<Bandwidth> = spec.take_opt("floor")?;
    if kind == "provisioned" {
        let top = top.unwrap_or(CapacityModel::DEFAULT_TOP);
        let floor = floor.unwrap_or(CapacityModel::DEFAULT_FLOOR);
        if floor == Bandwidth::ZERO || floor > top {
            return Err(spec
                .error(format!(
                    "floor must be above zero and at most top, got floor {floor} and top {top}"
                ))
                .into());
        }
        return Ok(CapacityModel::Provisioned { top, floor });
    }
    let uniform: Bandwidth = kind.parse().map_err(|_| {
        spec.error(format!(
            "key \"capacity\": {kind:?} is neither \"provisioned\" nor a rate such as 10gbps"
        ))
    })?;
    if uniform == Bandwidth::ZERO {
        return Err(spec
            .error("key \"capacity\": a link cannot have zero capacity")
            .into());
    }
    if top.is_some() || floor.is_some() {
        return Err(spec
            .error("top and floor apply to capacity=provisioned, not to one rate for every link")
            .into());
    }
    Ok(CapacityModel::Uniform(uniform))
}

/// The largest component of a disconnected map, if the spec allows it.
fn largest_component(
    path: &str,
    graph: PhysicalGraph,
    components: &[Vec<usize>],
    largest_only: bool,
) -> Result<PhysicalGraph, TopologyError> {
    let sizes: Vec<String> = components
        .iter()
        .take(6)
        .map(|c| c.len().to_string())
        .collect();
    if !largest_only {
        return Err(TopologyError::invalid(
            path,
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

/// Give links the map left without a capacity (zero after [`parse`]) theirs from `model`, and
/// say where every link's capacity came from.
fn fill_capacities(graph: &mut PhysicalGraph, model: CapacityModel) {
    let total = graph.links().len();
    let given = graph
        .links()
        .iter()
        .filter(|l| l.capacity > Bandwidth::ZERO)
        .count();
    if given < total {
        let modelled = capacity::model_capacities(graph, model);
        graph.set_capacities(|i, link| {
            if link.capacity > Bandwidth::ZERO {
                link.capacity
            } else {
                modelled[i]
            }
        });
    }
    graph.capacity_rule = match given {
        0 => model.to_string(),
        g if g == total => format!("from the map (all {total} links)"),
        g => format!("{g} of {total} links from the map, the others {model}"),
    };
}

/// Parse topohub JSON text; `path` only names the file in errors. Links keep the capacity the
/// map gives them; those without one have zero until [`load`] gives them theirs from a
/// [`CapacityModel`].
pub fn parse(path: &str, text: &str) -> Result<PhysicalGraph, TopologyError> {
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

    // The shortest delay of each router pair's edges, and their capacities added up (zero, to
    // be modelled, if any of them has none).
    let mut best: BTreeMap<(usize, usize), (Duration, Bandwidth)> = BTreeMap::new();
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
        let capacity =
            edge_capacity(edge).map_err(|problem| TopologyError::invalid(path, &at, problem))?;
        if a == b {
            self_loops += 1;
            continue;
        }
        let delay =
            Duration::from_secs_f64(km / FIBRE_KM_PER_MS / 1e3).max(Duration::from_micros(100));
        let key = (a.min(b), a.max(b));
        match best.get_mut(&key) {
            Some(old) => {
                parallel += 1;
                old.0 = old.0.min(delay);
                old.1 = if old.1 == Bandwidth::ZERO || capacity == Bandwidth::ZERO {
                    Bandwidth::ZERO
                } else {
                    Bandwidth::from_bps(old.1.bps().saturating_add(capacity.bps()))
                };
            }
            None => {
                best.insert(key, (delay, capacity));
            }
        }
    }
    let links = best
        .into_iter()
        .map(|((a, b), (delay, capacity))| PhysicalLink {
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
        (
            parallel,
            "parallel edges merged (shortest kept, capacities added or modelled)",
        ),
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

/// An edge's capacity from the map, or zero if it has none.
fn edge_capacity(edge: &Value) -> Result<Bandwidth, String> {
    for key in ["capacity", "LinkSpeedRaw"] {
        let parsed = match edge.get(key) {
            None | Some(Value::Null) => continue,
            Some(Value::Number(n)) => n
                .as_f64()
                .filter(|bps| bps.is_finite() && *bps >= 1.0 && *bps <= u64::MAX as f64)
                .map(Bandwidth::from_bps_f64),
            Some(Value::String(s)) if key == "capacity" => {
                s.parse().ok().filter(|c| *c > Bandwidth::ZERO)
            }
            Some(_) => None,
        };
        return parsed.ok_or_else(|| {
            format!(
                "\"{key}\" must be a positive number of bit/s{}",
                if key == "capacity" {
                    " or a rate such as \"10gbps\""
                } else {
                    ""
                }
            )
        });
    }
    Ok(Bandwidth::ZERO)
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

    fn load_text(name: &str, text: &str, keys: &str) -> Result<PhysicalGraph, TopologyError> {
        let dir = std::env::temp_dir().join(format!("topohub-cap-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        load(Spec::parse(&format!("topohub:{}{keys}", path.display()), |_| true).unwrap())
    }

    #[test]
    fn capacities_the_map_gives_are_kept_and_only_the_others_are_modelled() {
        // A line a - b - c - d: the map gives a-b as a number of bit/s, b-c as a rate, and
        // Topology Zoo's LinkSpeedRaw on c-d.
        let all_given = r#"{"nodes":[{"id":"a"},{"id":"b"},{"id":"c"},{"id":"d"}],
            "edges":[{"source":"a","target":"b","dist":100,"capacity":2500000000},
                     {"source":"b","target":"c","dist":100,"capacity":"40gbps"},
                     {"source":"c","target":"d","dist":100,"LinkSpeedRaw":155520000}]}"#;
        for keys in ["", ",capacity=10gbps", ",top=400gbps,floor=10gbps"] {
            let g = load_text("given.json", all_given, keys).unwrap();
            let caps: Vec<u64> = g.links().iter().map(|l| l.capacity.bps()).collect();
            assert_eq!(caps, [2_500_000_000, 40_000_000_000, 155_520_000], "{keys}");
            assert_eq!(g.capacity_rule, "from the map (all 3 links)");
        }
        // Drop c-d's capacity: only that link is modelled (from the loads of the whole line: it
        // carries 3 pairs each way, the middle link 4, so 75 of 100 Gbit/s, rounded up to 100).
        let one_missing = all_given.replace(r#","LinkSpeedRaw":155520000"#, "");
        let g = load_text("one-missing.json", &one_missing, ",capacity=10gbps").unwrap();
        let caps: Vec<u64> = g.links().iter().map(|l| l.capacity.bps()).collect();
        assert_eq!(caps, [2_500_000_000, 40_000_000_000, 10_000_000_000]);
        assert!(
            g.capacity_rule
                .starts_with("2 of 3 links from the map, the others every link 10gbps"),
            "{}",
            g.capacity_rule
        );
        let g = load_text("one-missing.json", &one_missing, "").unwrap();
        assert_eq!(g.links()[2].capacity, Bandwidth::from_mbps(100_000));
        // A second a-b edge: capacities add up when both have one; if it has none, the merged
        // link is modelled (here by capacity=1gbps).
        let doubled = all_given.replace(
            r#""edges":["#,
            r#""edges":[{"source":"b","target":"a","dist":300,"capacity":"10gbps"},"#,
        );
        let g = load_text("doubled.json", &doubled, ",capacity=1gbps").unwrap();
        assert_eq!(g.links()[0].capacity, Bandwidth::from_mbps(12_500));
        let half_given = all_given.replace(
            r#""edges":["#,
            r#""edges":[{"source":"b","target":"a","dist":300},"#,
        );
        let g = load_text("half-given.json", &half_given, ",capacity=1gbps").unwrap();
        assert_eq!(g.links()[0].capacity, Bandwidth::from_mbps(1_000));
        assert_eq!(
            g.links()[0].delay,
            Duration::from_micros(500),
            "the shorter edge's delay"
        );
    }

    #[test]
    fn a_map_without_capacities_is_provisioned_by_load() {
        let path = format!(
            "{}/../data/topology/topozoo-Geant2012.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let g = load(Spec::parse(&format!("topohub:{path}"), |_| true).unwrap()).unwrap();
        assert!(
            g.capacity_rule.starts_with("provisioned by load"),
            "{}",
            g.capacity_rule
        );
        let caps: Vec<Bandwidth> = g.links().iter().map(|l| l.capacity).collect();
        assert_eq!(caps.iter().max(), Some(&Bandwidth::from_mbps(100_000)));
        assert!(caps.iter().all(|&c| c >= Bandwidth::from_mbps(1_000)));
        let distinct: std::collections::BTreeSet<_> = caps.iter().collect();
        assert!(
            distinct.len() >= 3,
            "a real map gets several tiers: {distinct:?}"
        );
        let uniform =
            load(Spec::parse(&format!("topohub:{path},capacity=1gbps"), |_| true).unwrap())
                .unwrap();
        assert!(
            uniform
                .links()
                .iter()
                .all(|l| l.capacity == Bandwidth::from_mbps(1_000))
        );
        assert_eq!(uniform.capacity_rule, "every link 1gbps");
    }

    #[test]
    fn bad_capacities_are_errors_that_say_where() {
        let map = |cap: &str| {
            format!(
                r#"{{"nodes":[{{"id":"a"}},{{"id":"b"}}],"edges":[{{"source":"a","target":"b","dist":1,{cap}}}]}}"#
            )
        };
        for (cap, expected) in [
            (
                r#""capacity":0"#,
                "edges[0]: \"capacity\" must be a positive number",
            ),
            (r#""capacity":"fast""#, "edges[0]: \"capacity\" must be"),
            (r#""capacity":-5"#, "edges[0]: \"capacity\" must be"),
            (
                r#""LinkSpeedRaw":"10G""#,
                "edges[0]: \"LinkSpeedRaw\" must be a positive number",
            ),
        ] {
            let err = parse("x.json", &map(cap)).unwrap_err().to_string();
            assert!(err.contains(expected), "{cap}: {err}");
        }
        let ok = map(r#""dist":1"#).replace(r#","dist":1}"#, "}");
        for (keys, expected) in [
            (",capacity=fast", "neither \"provisioned\" nor a rate"),
            (",capacity=0gbps", "zero capacity"),
            (
                ",capacity=1gbps,top=10gbps",
                "top and floor apply to capacity=provisioned",
            ),
            (
                ",floor=10gbps,top=1gbps",
                "floor must be above zero and at most top",
            ),
        ] {
            let err = load_text("ok.json", &ok, keys).unwrap_err().to_string();
            assert!(err.contains(expected), "{keys}: {err}");
        }
    }

    #[test]
    fn delay_is_distance_over_light_in_fibre() {
        let text = r#"{"nodes":[{"id":"a"},{"id":"b"},{"id":1}],
            "edges":[{"source":"a","target":"b","dist":1000},{"source":"b","target":1,"dist":0},
                     {"source":"a","target":"b","dist":400},{"source":1,"target":1,"dist":3}]}"#;
        let g = parse("x.json", text).unwrap();
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
            let err = parse("x.json", text).unwrap_err().to_string();
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
