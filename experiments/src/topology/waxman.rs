//! Waxman random graphs (the Narada paper's flat topologies).
//!
//! Routers are placed uniformly in a unit square. A pair at distance `d` is linked with Waxman's
//! probability `alpha · exp(-d / (beta · L))`, `L` the largest distance. To hit the requested link
//! count exactly, links are drawn by weighted sampling without replacement (Efraimidis and
//! Spirakis: each pair gets the key `u^(1/w)` and the `links` largest keys win), which keeps the
//! Waxman preference for short links. If the result is disconnected, each smaller component is
//! joined to the rest by its shortest possible link and as many of the least likely sampled links
//! are removed, never one whose removal disconnects the graph, so the count stays exact.

use std::time::Duration;

use overlay_core::Bandwidth;
use overlay_core::rng::rng_from_seed;
use rand::RngExt;

use super::{PhysicalGraph, PhysicalLink, Router, RouterRole};
use crate::spec::{Spec, SpecError};

/// Parameters of a Waxman map.
#[derive(Clone, Debug, PartialEq)]
pub struct WaxmanParams {
    /// Number of routers.
    pub routers: usize,
    /// Number of links.
    pub links: usize,
    /// Waxman's beta: larger values allow longer links.
    pub beta: f64,
    /// Delay across the side of the square.
    pub side: Duration,
    /// Capacity of every link.
    pub capacity: Bandwidth,
    /// Seed of the placement and sampling.
    pub seed: u64,
}

impl WaxmanParams {
    /// Keys a `waxman:` spec accepts.
    pub const KEYS: &[&str] = &["routers", "links", "beta", "side", "capacity", "seed"];

    /// Read the parameters from a spec (defaults: the Narada paper's 1024 routers, 3145 links).
    pub fn from_spec(mut spec: Spec) -> Result<Self, SpecError> {
        let params = Self {
            routers: spec.take("routers", 1024)?,
            links: spec.take("links", 3145)?,
            // Distance sensitivity: 0.2 is GT-ITM's usual flat-graph setting.
            beta: spec.take("beta", 0.2)?,
            // 50 ms across the square: a continent's one-way delay.
            side: spec.take("side", Duration::from_millis(50))?,
            capacity: spec.take("capacity", Bandwidth::from_mbps(1000))?,
            seed: spec.take("seed", 1)?,
        };
        let n = params.routers;
        if n < 2 {
            return Err(spec.error("routers must be at least 2"));
        }
        let max_links = n * (n - 1) / 2;
        if params.links < n - 1 || params.links > max_links {
            return Err(spec.error(format!(
                "links must be between {} (a tree) and {max_links} (complete) for {n} routers, got {}",
                n - 1,
                params.links
            )));
        }
        if params.beta <= 0.0 {
            return Err(spec.error("beta must be positive"));
        }
        spec.finish(Self::KEYS)?;
        Ok(params)
    }
}

/// Generate a connected Waxman map with exactly `params.links` links.
pub fn generate(params: &WaxmanParams) -> PhysicalGraph {
    let n = params.routers;
    let mut rng = rng_from_seed(params.seed);
    let pos: Vec<[f64; 2]> = (0..n)
        .map(|_| [rng.random::<f64>(), rng.random::<f64>()])
        .collect();
    let dist = |a: usize, b: usize| {
        ((pos[a][0] - pos[b][0]).powi(2) + (pos[a][1] - pos[b][1]).powi(2)).sqrt()
    };
    let mut largest = 0.0f64;
    for a in 0..n {
        for b in a + 1..n {
            largest = largest.max(dist(a, b));
        }
    }
    let scale = params.beta * largest.max(f64::MIN_POSITIVE);

    // Efraimidis-Spirakis keys, as logarithms: ln(u) / w, w = exp(-d / scale).
    let mut keyed: Vec<(f64, usize, usize)> = Vec::with_capacity(n * (n - 1) / 2);
    for a in 0..n {
        for b in a + 1..n {
            let u: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
            keyed.push((u.ln() * (dist(a, b) / scale).exp(), a, b));
        }
    }
    let by_key_desc = |x: &(f64, usize, usize), y: &(f64, usize, usize)| y.0.total_cmp(&x.0);
    keyed.select_nth_unstable_by(params.links - 1, by_key_desc);
    keyed.truncate(params.links);
    keyed.sort_by(by_key_desc);
    let mut edges: Vec<(usize, usize)> = keyed.iter().map(|&(_, a, b)| (a, b)).collect();

    let repaired = connect_components(n, &mut edges, &dist);
    let mut notes = Vec::new();
    if repaired > 0 {
        notes.push(format!(
            "waxman: joined {repaired} stray components with their shortest links and removed as many unlikely links"
        ));
    }

    let routers = pos
        .iter()
        .enumerate()
        .map(|(i, &p)| Router {
            name: format!("r{i}"),
            pos: p,
            role: RouterRole::Plain,
        })
        .collect();
    let links = edges
        .iter()
        .map(|&(a, b)| PhysicalLink {
            a,
            b,
            delay: link_delay(dist(a, b), params.side),
            capacity: params.capacity,
        })
        .collect();
    let mut graph = PhysicalGraph::new("waxman", routers, links);
    graph.notes = notes;
    graph.capacity_rule = format!("every link {} (waxman capacity=)", params.capacity);
    graph
}

/// Delay of a link of length `d` (unit-square units) when the side takes `side`; at least 0.1 ms.
pub(crate) fn link_delay(d: f64, side: Duration) -> Duration {
    side.mul_f64(d).max(Duration::from_micros(100))
}

/// Make the graph connected without changing its link count; `edges` is ordered most likely
/// first. Returns the number of links swapped.
fn connect_components(
    n: usize,
    edges: &mut Vec<(usize, usize)>,
    dist: &impl Fn(usize, usize) -> f64,
) -> usize {
    let mut swapped = 0;
    loop {
        let comp = component_labels(n, edges);
        let count = comp.iter().copied().max().map_or(0, |m| m + 1);
        if count <= 1 {
            return swapped;
        }
        // Join the component of router 0's complement with the smallest label > 0 to the rest.
        let stray = 1;
        let mut best: Option<(f64, usize, usize)> = None;
        for a in (0..n).filter(|&a| comp[a] == stray) {
            for b in (0..n).filter(|&b| comp[b] != stray) {
                let d = dist(a, b);
                if best.is_none_or(|(bd, _, _)| d < bd) {
                    best = Some((d, a.min(b), a.max(b)));
                }
            }
        }
        let (_, a, b) = best.expect("a disconnected graph has a link to add");
        // Remove the least likely link whose removal keeps its endpoints connected.
        let removable = (0..edges.len()).rev().find(|&i| {
            let (x, y) = edges[i];
            comp[x] == comp[y] && stays_connected_without(n, edges, i)
        });
        // A disconnected graph with at least n - 1 links has a cycle, so a removable link exists.
        if let Some(i) = removable {
            edges.remove(i);
            swapped += 1;
        }
        edges.push((a, b));
    }
}

fn component_labels(n: usize, edges: &[(usize, usize)]) -> Vec<usize> {
    let mut parent: Vec<usize> = (0..n).collect();
    fn find(parent: &mut [usize], mut x: usize) -> usize {
        while parent[x] != x {
            parent[x] = parent[parent[x]];
            x = parent[x];
        }
        x
    }
    for &(a, b) in edges {
        let (ra, rb) = (find(&mut parent, a), find(&mut parent, b));
        if ra != rb {
            parent[ra.max(rb)] = ra.min(rb);
        }
    }
    let mut labels = vec![usize::MAX; n];
    let mut next = 0;
    let mut root_label = std::collections::BTreeMap::new();
    for (x, label) in labels.iter_mut().enumerate() {
        let root = find(&mut parent, x);
        *label = *root_label.entry(root).or_insert_with(|| {
            next += 1;
            next - 1
        });
    }
    labels
}

fn stays_connected_without(n: usize, edges: &[(usize, usize)], skip: usize) -> bool {
    let (x, y) = edges[skip];
    let mut adjacency = vec![Vec::new(); n];
    for (i, &(a, b)) in edges.iter().enumerate() {
        if i != skip {
            adjacency[a].push(b);
            adjacency[b].push(a);
        }
    }
    let mut seen = vec![false; n];
    let mut stack = vec![x];
    seen[x] = true;
    while let Some(r) = stack.pop() {
        if r == y {
            return true;
        }
        for &m in &adjacency[r] {
            if !seen[m] {
                seen[m] = true;
                stack.push(m);
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn params(routers: usize, links: usize, seed: u64) -> WaxmanParams {
        WaxmanParams {
            routers,
            links,
            beta: 0.2,
            side: Duration::from_millis(50),
            capacity: Bandwidth::from_mbps(1000),
            seed,
        }
    }

    #[test]
    fn the_narada_map_has_the_requested_size_and_is_connected() {
        let g = generate(&params(1024, 3145, 1));
        assert_eq!(g.routers().len(), 1024);
        assert_eq!(g.links().len(), 3145);
        assert!(g.is_connected());
        // Waxman prefers short links: the mean link is clearly shorter than the mean distance
        // between two random points of the square (0.52 sides, 26 ms here).
        let mean_link_ms: f64 = g
            .links()
            .iter()
            .map(|l| l.delay.as_secs_f64() * 1e3)
            .sum::<f64>()
            / 3145.0;
        assert!(mean_link_ms < 0.75 * 26.0, "{mean_link_ms}");
    }

    #[test]
    fn same_seed_same_map() {
        let a = generate(&params(200, 500, 3));
        let b = generate(&params(200, 500, 3));
        assert_eq!(a.links(), b.links());
        assert_ne!(a.links(), generate(&params(200, 500, 4)).links());
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]
        /// Even sparse maps (trees) come out connected with exactly the requested link count and
        /// no duplicate links.
        #[test]
        fn always_connected_and_exact(n in 2usize..60, extra in 0usize..40, seed in 0u64..1000) {
            let links = (n - 1 + extra).min(n * (n - 1) / 2);
            let g = generate(&params(n, links, seed));
            prop_assert_eq!(g.links().len(), links);
            prop_assert!(g.is_connected());
            let pairs: std::collections::BTreeSet<_> = g.links().iter().map(|l| (l.a.min(l.b), l.a.max(l.b))).collect();
            prop_assert_eq!(pairs.len(), links);
        }
    }
}
