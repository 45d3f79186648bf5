//! What overlay trees could reach on a placement, whatever protocol builds them. Each overlay
//! edge travels the unicast path between its ends, so an overlay tree's resource usage is the
//! sum of its edges' unicast delays and a receiver's delay the sum along its branch:
//!
//! - [`minimum_spanning_tree_ms`]: the cheapest overlay tree, the floor of resource usage;
//! - [`rdp_lower_bound`]: no mesh whose members keep at most `D` neighbours gives a source more
//!   than `D²` receivers within two overlay hops, and any path of three or more hops is at
//!   least as long as the shortest three-hop path (unicast delays obey the triangle
//!   inequality). Counting the `D²` receivers that would gain most as direct, and every other
//!   one at its shortest three-hop path, bounds every quantile of RDP from below;
//! - [`GreedySpanner`]: the mesh a central planner with the whole delay matrix would build for
//!   that degree (pairs shortest first; a link where the mesh's path is longer than `stretch`
//!   times the direct delay and both ends have room), with shortest-path trees on it: what
//!   Narada's distributed spanner rule approximates.
//!
//! Graphs are petgraph's; delays are whole microseconds, so shortest paths and ties are exact
//! and every figure replays.

use petgraph::algo::{dijkstra, min_spanning_tree};
use petgraph::data::FromElements;
use petgraph::graph::{NodeIndex, UnGraph};
use petgraph::visit::EdgeRef;

use crate::network::Network;
use crate::stats::Distribution;

/// The members as a complete graph weighted by unicast delay (µs).
fn member_graph(net: &Network) -> UnGraph<(), u64> {
    let n = net.members();
    let mut g = UnGraph::with_capacity(n, n * n.saturating_sub(1) / 2);
    for _ in 0..n {
        g.add_node(());
    }
    for a in 0..n {
        for b in a + 1..n {
            g.add_edge(
                NodeIndex::new(a),
                NodeIndex::new(b),
                net.unicast_delay_micros(a, b),
            );
        }
    }
    g
}

/// Weight (ms of one-way delay) of the members' minimum spanning tree: the cheapest overlay
/// tree, the least resource usage any overlay tree can have, whatever its degrees and
/// latencies (petgraph's Kruskal over all pairs).
pub fn minimum_spanning_tree_ms(net: &Network) -> f64 {
    let mst: UnGraph<(), u64> = UnGraph::from_elements(min_spanning_tree(&member_graph(net)));
    mst.edge_references().map(|e| *e.weight()).sum::<u64>() as f64 / 1e3
}

/// The RDPs no mesh of at most `max_degree` neighbours per member can beat, for every receiver
/// of every source in `sources` (see the module's notes): a distribution whose quantiles are
/// lower bounds of any such overlay's. O(N²) per source.
pub fn rdp_lower_bound(net: &Network, max_degree: usize, sources: &[usize]) -> Distribution {
    let n = net.members();
    let d = |a: usize, b: usize| net.unicast_delay_micros(a, b);
    let within_two = max_degree.saturating_mul(max_degree);
    let mut all = Vec::with_capacity(sources.len() * n);
    let mut two = vec![u64::MAX; n];
    let mut ratios = Vec::with_capacity(n);
    for &s in sources {
        // two[y]: the shortest two-hop path from s to y.
        for (y, slot) in two.iter_mut().enumerate() {
            *slot = (0..n)
                .filter(|&x| x != s && x != y)
                .map(|x| d(s, x).saturating_add(d(x, y)))
                .min()
                .unwrap_or(u64::MAX);
        }
        ratios.clear();
        for r in (0..n).filter(|&r| r != s) {
            let three = (0..n)
                .filter(|&y| y != s && y != r)
                .map(|y| two[y].saturating_add(d(y, r)))
                .min()
                .unwrap_or(u64::MAX);
            ratios.push(three as f64 / d(s, r).max(1) as f64);
        }
        // The receivers that would gain most are the ones within two hops, counted as direct.
        ratios.sort_by(|a, b| b.total_cmp(a));
        for (i, &ratio) in ratios.iter().enumerate() {
            all.push(if i < within_two { 1.0 } else { ratio.max(1.0) });
        }
    }
    Distribution::new(all)
}

/// A mesh built centrally by the greedy spanner rule (see the module's notes).
#[derive(Debug, Clone)]
pub struct GreedySpanner {
    graph: UnGraph<(), u64>,
}

impl GreedySpanner {
    /// Build it over `net`'s members: pairs in order of delay (ties by index), a link where the
    /// mesh's path is longer than `stretch` times the direct delay and both ends have fewer
    /// than `max_degree` links. O(N² · N log N).
    pub fn build(net: &Network, max_degree: usize, stretch: f64) -> Self {
        let n = net.members();
        let mut pairs: Vec<(u64, usize, usize)> = (0..n)
            .flat_map(|a| (a + 1..n).map(move |b| (a, b)))
            .map(|(a, b)| (net.unicast_delay_micros(a, b), a, b))
            .collect();
        pairs.sort_unstable();
        let mut graph = UnGraph::with_capacity(n, n * max_degree / 2);
        for _ in 0..n {
            graph.add_node(());
        }
        for (delay, a, b) in pairs {
            let (na, nb) = (NodeIndex::new(a), NodeIndex::new(b));
            if graph.neighbors(na).count() >= max_degree
                || graph.neighbors(nb).count() >= max_degree
            {
                continue;
            }
            let through_mesh = dijkstra(&graph, na, Some(nb), |e| *e.weight())
                .get(&nb)
                .copied();
            if through_mesh.is_none_or(|m| m as f64 > stretch * delay as f64) {
                graph.add_edge(na, nb, delay);
            }
        }
        Self { graph }
    }

    /// Mean number of links per member.
    pub fn mean_degree(&self) -> f64 {
        2.0 * self.graph.edge_count() as f64 / self.graph.node_count().max(1) as f64
    }

    /// The shortest-path tree from `source` on the mesh, as each member's parent (ties to the
    /// lowest index); `None` for the source and members the mesh does not reach.
    pub fn parents(&self, source: usize) -> Vec<Option<usize>> {
        let dist = dijkstra(&self.graph, NodeIndex::new(source), None, |e| *e.weight());
        (0..self.graph.node_count())
            .map(|m| {
                let node = NodeIndex::new(m);
                let &dm = dist.get(&node)?;
                if m == source {
                    return None;
                }
                self.graph
                    .edges(node)
                    .filter_map(|e| {
                        let p = e.target();
                        let &dp = dist.get(&p)?;
                        (dp.saturating_add(*e.weight()) == dm).then_some(p.index())
                    })
                    .min()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::{AccessSpec, Network};
    use crate::topology;
    use crate::tree::{self, DeliveryTree, StressCounter};

    fn net(seed: u64) -> Network {
        let topology = topology::load("waxman:routers=200,links=600,seed=3").unwrap();
        let access = AccessSpec::parse("simblock:year=2019").unwrap();
        Network::build(topology, 40, &access, seed).unwrap()
    }

    #[test]
    fn no_tree_of_the_spanner_beats_the_floors_and_degrees_stay_bounded() {
        for seed in 1..=4 {
            let net = net(seed);
            let n = net.members();
            for (degree, stretch) in [(3, 1.5), (4, 2.0), (6, 3.0)] {
                let spanner = GreedySpanner::build(&net, degree, stretch);
                assert!(
                    spanner
                        .graph
                        .node_indices()
                        .all(|v| spanner.graph.neighbors(v).count() <= degree)
                );
                let sources: Vec<usize> = (0..n).collect();
                let bound = rdp_lower_bound(&net, degree, &sources);
                let mut rdps = Vec::new();
                let mut counter = StressCounter::default();
                for s in 0..n {
                    let tree = DeliveryTree::new(s, spanner.parents(s)).unwrap();
                    assert_eq!(tree.order().len(), n, "the greedy spanner is connected");
                    let weight: u64 = (0..n)
                        .filter_map(|m| tree.parent(m).map(|p| net.unicast_delay_micros(p, m)))
                        .sum();
                    assert!(weight as f64 / 1e3 >= minimum_spanning_tree_ms(&net) - 1e-9);
                    rdps.extend(tree::evaluate(&net, &tree, &mut counter).rdp);
                }
                let rdps = Distribution::new(rdps);
                for q in [0.1, 0.5, 0.9, 1.0] {
                    let (lo, got) = (bound.quantile(q).unwrap(), rdps.quantile(q).unwrap());
                    assert!(
                        lo <= got + 1e-9,
                        "seed {seed} degree {degree} q {q}: bound {lo} over {got}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_minimum_spanning_tree_lies_between_simple_bounds() {
        let net = net(1);
        let d = |a: usize, b: usize| net.unicast_delay_micros(a, b);
        // At most a path through the members in index order, at least half the sum of each
        // member's delay to its nearest other member (every member has a tree edge).
        let n = net.members();
        let path: u64 = (1..n).map(|m| d(m - 1, m)).sum();
        let nearest: u64 = (0..n)
            .map(|a| (0..n).filter(|&b| b != a).map(|b| d(a, b)).min().unwrap())
            .sum();
        let mst = minimum_spanning_tree_ms(&net) * 1e3;
        assert!(mst <= path as f64 && mst >= nearest as f64 / 2.0);
    }
}
