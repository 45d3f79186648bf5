//! Link capacities for router maps that do not carry them.
//!
//! Real maps (Topology Zoo, CAIDA) give positions and distances but rarely line rates, and one
//! rate for every link misleads: an operator buys capacity where traffic flows. The
//! [`CapacityModel::Provisioned`] rule does what capacity planning does with a traffic matrix:
//! it routes one unit of demand between every ordered pair of routers over shortest paths (by
//! delay, the simulator's routing metric), splitting equally among equal-cost next hops (ECMP),
//! and gives each link a line rate in proportion to the busier direction's load. The busiest link
//! gets `top`; every other link the smallest standard rate (1, 2.5 or 4 times a power of ten:
//! ..., 1, 2.5, 4, 10, 25, 40, 100 Gbit/s, ...) that carries its share of `top`, never less than
//! `floor`. Links that no shortest path uses (protection links) get `floor`.

use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::fmt;

use overlay_core::{Bandwidth, duration_micros};

use super::PhysicalGraph;
use super::paths::distances;

/// How links without a capacity of their own get one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CapacityModel {
    /// Every such link has this capacity.
    Uniform(Bandwidth),
    /// Line rates in proportion to each link's load under uniform all-pairs demand.
    Provisioned {
        /// The busiest link's rate.
        top: Bandwidth,
        /// The least any link gets.
        floor: Bandwidth,
    },
}

impl CapacityModel {
    /// The busiest link's rate by default.
    pub const DEFAULT_TOP: Bandwidth = Bandwidth::from_mbps(100_000);
    /// The least a link gets by default.
    pub const DEFAULT_FLOOR: Bandwidth = Bandwidth::from_mbps(1_000);
    /// The default for router maps: the busiest link at 100 Gbit/s, none below 1 Gbit/s.
    pub const DEFAULT: Self = Self::Provisioned {
        top: Self::DEFAULT_TOP,
        floor: Self::DEFAULT_FLOOR,
    };
}

impl fmt::Display for CapacityModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Uniform(c) => write!(f, "every link {c}"),
            Self::Provisioned { top, floor } => write!(
                f,
                "provisioned by load (uniform demand between routers, ECMP over shortest-delay paths): busiest link {top}, standard rates down to {floor}"
            ),
        }
    }
}

/// What "shortest" means when routing the demand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathMetric {
    /// Fewest links (an IGP with unit weights; what topohub's published loads use).
    Hops,
    /// Least delay (what the simulator routes by).
    Delay,
}

/// What link `link` weighs under `metric`.
fn link_weight(graph: &PhysicalGraph, link: usize, metric: PathMetric) -> u64 {
    match metric {
        PathMetric::Hops => 1,
        PathMetric::Delay => duration_micros(graph.links()[link].delay),
    }
}

/// The load of a link's busier direction.
fn busier(load: [f64; 2]) -> f64 {
    load[0].max(load[1])
}

/// Each link's load in each direction (`[a to b, b to a]`) when one unit of demand flows
/// between every ordered pair of routers over shortest paths under `metric`, split equally
/// among equal-cost next hops at every router.
pub fn ecmp_loads(graph: &PhysicalGraph, metric: PathMetric) -> Vec<[f64; 2]> {
    let n = graph.routers().len();
    let mut loads = vec![[0.0; 2]; graph.links().len()];
    let mut order: Vec<usize> = Vec::with_capacity(n);
    let mut flow = vec![0.0; n];
    let mut next_hops: Vec<(usize, usize)> = Vec::new();
    for target in 0..n {
        // Distances to `target` equal distances from it: links are symmetric.
        let dist = distances(graph, target, |link| link_weight(graph, link, metric));
        order.clear();
        order.extend((0..n).filter(|&r| r != target && dist[r] != u64::MAX));
        // Farthest first, so a router's inflow is complete before it forwards.
        order.sort_by_key(|&r| Reverse((dist[r], r)));
        flow.iter_mut().for_each(|f| *f = 1.0);
        for &r in &order {
            next_hops.clear();
            next_hops.extend(graph.neighbours(r).iter().copied().filter(|&(next, link)| {
                dist[next] != u64::MAX
                    && dist[next].saturating_add(link_weight(graph, link, metric)) == dist[r]
            }));
            if next_hops.is_empty() {
                continue;
            }
            let share = flow[r] / next_hops.len() as f64;
            for &(next, link) in &next_hops {
                let direction = usize::from(graph.links()[link].a != r);
                loads[link][direction] += share;
                flow[next] += share;
            }
        }
    }
    loads
}

/// Standard line rates the provisioned model rounds up to, in bit/s, as multiples within a
/// decade: 1, 2.5, 4 (40 Gbit/s), 10.
const DECADE_STEPS: [f64; 3] = [1.0, 2.5, 4.0];

/// The smallest standard rate at or above `bps`.
fn round_up_to_line_rate(bps: f64) -> f64 {
    if bps <= 1.0 {
        return 1.0;
    }
    let mut decade = 10f64.powi(bps.log10().floor() as i32);
    loop {
        for step in DECADE_STEPS {
            let candidate = step * decade;
            // A relative slack keeps exact rates (1e9 computed as 0.9999999e9) on their step.
            if candidate >= bps * (1.0 - 1e-9) {
                return candidate;
            }
        }
        decade *= 10.0;
    }
}

/// The capacity `model` gives each link of `graph` (every link, whatever it has now).
pub fn model_capacities(graph: &PhysicalGraph, model: CapacityModel) -> Vec<Bandwidth> {
    match model {
        CapacityModel::Uniform(c) => vec![c; graph.links().len()],
        CapacityModel::Provisioned { top, floor } => {
            let loads = ecmp_loads(graph, PathMetric::Delay);
            let busiest = loads.iter().copied().map(busier).fold(0.0, f64::max);
            loads
                .iter()
                .map(|&l| {
                    let share = if busiest > 0.0 {
                        busier(l) / busiest
                    } else {
                        0.0
                    };
                    let wanted = round_up_to_line_rate(top.bps_f64() * share);
                    Bandwidth::from_bps_f64(wanted.clamp(floor.bps_f64(), top.bps_f64()))
                })
                .collect()
        }
    }
}

/// How many links have each capacity, fastest first, for reports ("12 x 100gbps, ...").
pub fn capacity_mix(graph: &PhysicalGraph) -> String {
    let mut counts: BTreeMap<Reverse<Bandwidth>, usize> = BTreeMap::new();
    for link in graph.links() {
        *counts.entry(Reverse(link.capacity)).or_default() += 1;
    }
    counts
        .iter()
        .map(|(c, n)| format!("{n} x {}", c.0))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::topology::graph::test_router;
    use crate::topology::{PhysicalLink, topohub};

    fn link(a: usize, b: usize, ms: u64) -> PhysicalLink {
        PhysicalLink {
            a,
            b,
            delay: Duration::from_millis(ms),
            capacity: Bandwidth::ZERO,
        }
    }

    #[test]
    fn line_rates_round_up_to_standard_steps() {
        for (bps, expected) in [
            (0.3, 1.0),
            (1e9, 1e9),
            (1.01e9, 2.5e9),
            (3e9, 4e9),
            (4.1e9, 1e10),
            (1.5e10, 2.5e10),
            (9.9e10, 1e11),
            (1e11, 1e11),
        ] {
            assert_eq!(round_up_to_line_rate(bps), expected, "{bps}");
        }
    }

    #[test]
    fn a_path_carries_every_pair_across_each_cut() {
        // 0 - 1 - 2 - 3: the middle link carries 2 x 2 = 4 pairs each way, the end links 3.
        let g = PhysicalGraph::new(
            "line",
            (0..4).map(test_router).collect(),
            vec![link(0, 1, 1), link(1, 2, 1), link(2, 3, 1)],
        );
        assert_eq!(
            ecmp_loads(&g, PathMetric::Delay),
            vec![[3.0, 3.0], [4.0, 4.0], [3.0, 3.0]],
            "one unit per ordered pair over the one path"
        );
    }

    #[test]
    fn equal_cost_paths_split_and_unused_links_get_the_floor() {
        // A square 0-1-2-3-0 with equal delays: 0 to 2 splits over 1 and 3. A long diagonal 0-2
        // is on no shortest path.
        let g = PhysicalGraph::new(
            "square",
            (0..4).map(test_router).collect(),
            vec![
                link(0, 1, 1),
                link(1, 2, 1),
                link(2, 3, 1),
                link(3, 0, 1),
                link(0, 2, 5),
            ],
        );
        let loads = ecmp_loads(&g, PathMetric::Delay);
        // Each side: its own pair (1) plus half of each of the two diagonal pairs that may use
        // it (0.5 + 0.5), each way.
        for side in &loads[..4] {
            assert_eq!(*side, [2.0, 2.0]);
        }
        assert_eq!(loads[4], [0.0, 0.0]);
        let caps = model_capacities(
            &g,
            CapacityModel::Provisioned {
                top: Bandwidth::from_mbps(10_000),
                floor: Bandwidth::from_mbps(1_000),
            },
        );
        assert_eq!(caps[..4], [Bandwidth::from_mbps(10_000); 4]);
        assert_eq!(caps[4], Bandwidth::from_mbps(1_000));
    }

    #[test]
    fn a_star_gives_its_busy_spokes_the_top_rate_and_shares_round_up() {
        // Hub 0 with spokes to 1..=4, and a tail 4 - 5: the spoke 0-4 carries the tail's traffic
        // too (2 x 4 = 8 pairs each way against 5 on the other spokes and on the tail).
        let g = PhysicalGraph::new(
            "star",
            (0..6).map(test_router).collect(),
            vec![
                link(0, 1, 1),
                link(0, 2, 1),
                link(0, 3, 1),
                link(0, 4, 1),
                link(4, 5, 1),
            ],
        );
        let loads = ecmp_loads(&g, PathMetric::Delay);
        assert_eq!(loads[3], [8.0, 8.0]);
        assert_eq!(loads[0], [5.0, 5.0]);
        assert_eq!(loads[4], [5.0, 5.0]);
        let caps = model_capacities(&g, CapacityModel::DEFAULT);
        assert_eq!(caps[3], Bandwidth::from_mbps(100_000));
        // 5/8 of the busiest load: 62.5 Gbit/s wanted, the next standard rate is 100.
        assert_eq!(caps[0], Bandwidth::from_mbps(100_000));
        let top_40 = CapacityModel::Provisioned {
            top: Bandwidth::from_mbps(40_000),
            floor: Bandwidth::from_mbps(1_000),
        };
        // 25 Gbit/s wanted: exactly a standard rate.
        let caps = model_capacities(&g, top_40);
        assert_eq!(caps[3], Bandwidth::from_mbps(40_000));
        assert_eq!(caps[0], Bandwidth::from_mbps(25_000));
    }

    #[test]
    fn loads_follow_topohubs_own_ecmp_figures_on_real_maps() {
        // topohub ships each link's ECMP load under uniform demand over fewest-hop paths, scaled
        // so the busiest link is 100 and rounded to hundredths. Ours, from the map alone, must
        // give the same figure on every link.
        for file in [
            "topozoo-Geant2012.json",
            "topozoo-TataNld.json",
            "caida-2024-08-as3215.json",
            "caida-2024-08-as6830.json",
        ] {
            let path = format!("{}/../data/topology/{file}", env!("CARGO_MANIFEST_DIR"));
            let text = std::fs::read_to_string(&path).unwrap();
            let g = topohub::parse(&path, &text).unwrap();
            let ours = ecmp_loads(&g, PathMetric::Hops);
            let busiest = ours.iter().copied().map(busier).fold(0.0, f64::max);
            let theirs = topohub_uniform_loads(&text);
            let mut close = 0;
            for &((a, b), load) in &theirs {
                let link = g
                    .neighbours(a)
                    .iter()
                    .find(|&&(n, _)| n == b)
                    .map(|&(_, l)| l)
                    .unwrap();
                let scaled = 100.0 * busier(ours[link]) / busiest;
                if (scaled - load).abs() <= 0.1 {
                    close += 1;
                }
            }
            assert!(
                close == theirs.len(),
                "{file}: only {close} of {} links within 0.1 point of topohub's load",
                theirs.len()
            );
        }
    }

    /// topohub's own uniform-demand load of each edge, by the router indices of its ends.
    fn topohub_uniform_loads(text: &str) -> Vec<((usize, usize), f64)> {
        let root: serde_json::Value = serde_json::from_str(text).unwrap();
        let index: BTreeMap<String, usize> = root["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
            .map(|(i, n)| (n["id"].to_string(), i))
            .collect();
        root["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                let fwd = e["ecmp_fwd"]["uni"].as_f64().unwrap();
                let bwd = e["ecmp_bwd"]["uni"].as_f64().unwrap();
                let ends = (
                    index[&e["source"].to_string()],
                    index[&e["target"].to_string()],
                );
                (ends, fwd.max(bwd))
            })
            .collect()
    }
}
