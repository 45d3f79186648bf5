//! Unicast routing: shortest-delay paths on the physical graph, keeping each path's links.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use overlay_core::duration_micros;

use super::PhysicalGraph;

/// Shortest-delay paths from one root router to every router (Dijkstra).
///
/// Ties between equal-delay paths go to the path found first in router-index order, so routing
/// is deterministic. Paths are kept as predecessor links, which is all a tree needs: the union of
/// the paths from the root is this tree, as IP multicast's source tree is.
#[derive(Clone, Debug)]
pub struct ShortestPathTree {
    root: usize,
    /// Delay from the root, in microseconds; `u32::MAX` if unreachable (a path of 71 minutes
    /// or more, which no map has, reads as 71 minutes).
    dist: Vec<u32>,
    /// Hops from the root; `u16::MAX` if unreachable.
    hops: Vec<u16>,
    /// The link into each router on the path from the root; `u32::MAX` for the root and the
    /// unreachable. (Ten bytes a router: a simulation keeps one tree per router that hosts a
    /// member, so at 10 000 such routers this is 1 GB where 24 bytes were 2.4.)
    pred: Vec<u32>,
}

impl ShortestPathTree {
    /// Paths from `root` over `graph`.
    pub fn compute(graph: &PhysicalGraph, root: usize) -> Self {
        let (dist, hops, pred) = dijkstra(graph, root, |link| {
            duration_micros(graph.links()[link].delay)
        });
        let narrow = |d: u64| match d {
            u64::MAX => u32::MAX,
            d => u32::try_from(d).unwrap_or(u32::MAX - 1),
        };
        Self {
            root,
            dist: dist.into_iter().map(narrow).collect(),
            hops: hops
                .into_iter()
                .map(|h| u16::try_from(h).unwrap_or(u16::MAX))
                .collect(),
            pred: pred
                .into_iter()
                .map(|p| p.map_or(u32::MAX, |(_, link)| link))
                .collect(),
        }
    }

    /// The root router.
    pub fn root(&self) -> usize {
        self.root
    }

    /// Delay from the root to `r` in microseconds, if reachable.
    pub fn delay_micros(&self, r: usize) -> Option<u64> {
        (self.dist[r] != u32::MAX).then_some(u64::from(self.dist[r]))
    }

    /// Router hops from the root to `r`, if reachable.
    pub fn hops(&self, r: usize) -> Option<u32> {
        (self.hops[r] != u16::MAX).then_some(u32::from(self.hops[r]))
    }

    /// Calls `visit(link, from, to)` for each link on the path from `r` back towards the root
    /// (the last link of the path first); `graph` is the one the tree was computed on.
    pub fn walk_back(
        &self,
        graph: &PhysicalGraph,
        mut r: usize,
        mut visit: impl FnMut(usize, usize, usize),
    ) {
        while let Some(&link) = self.pred.get(r).filter(|&&l| l != u32::MAX) {
            let l = &graph.links()[link as usize];
            let prev = if l.a == r { l.b } else { l.a };
            visit(link as usize, prev, r);
            r = prev;
        }
    }

    /// The largest finite delay from the root, in microseconds.
    pub fn eccentricity_micros(&self) -> u64 {
        self.dist
            .iter()
            .copied()
            .filter(|&d| d != u32::MAX)
            .max()
            .map_or(0, u64::from)
    }
}

/// Each router's distance from `root` when link `l` weighs `weight(l)` (`u64::MAX` if
/// unreachable). Ties go to the path found first in router-index order, as routing's do.
pub(crate) fn distances(
    graph: &PhysicalGraph,
    root: usize,
    weight: impl Fn(usize) -> u64,
) -> Vec<u64> {
    dijkstra(graph, root, weight).0
}

/// Dijkstra from `root`: distances, hops and `(previous router, link)` of each router.
#[allow(clippy::type_complexity)]
fn dijkstra(
    graph: &PhysicalGraph,
    root: usize,
    weight: impl Fn(usize) -> u64,
) -> (Vec<u64>, Vec<u32>, Vec<Option<(u32, u32)>>) {
    let n = graph.routers().len();
    let mut dist = vec![u64::MAX; n];
    let mut hops = vec![u32::MAX; n];
    let mut pred = vec![None; n];
    let mut heap = BinaryHeap::new();
    dist[root] = 0;
    hops[root] = 0;
    heap.push(Reverse((0u64, root)));
    while let Some(Reverse((d, r))) = heap.pop() {
        if d > dist[r] {
            continue;
        }
        for &(next, link) in graph.neighbours(r) {
            let nd = d.saturating_add(weight(link));
            if nd < dist[next] {
                dist[next] = nd;
                hops[next] = hops[r] + 1;
                pred[next] = Some((r as u32, link as u32));
                heap.push(Reverse((nd, next)));
            }
        }
    }
    (dist, hops, pred)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use overlay_core::Bandwidth;

    use super::*;
    use crate::topology::PhysicalLink;
    use crate::topology::graph::test_router;

    #[test]
    fn finds_the_lowest_delay_path_not_the_fewest_hops() {
        let ms = |m| Duration::from_millis(m);
        let link = |a, b, d| PhysicalLink {
            a,
            b,
            delay: ms(d),
            capacity: Bandwidth::from_mbps(1),
        };
        // 0-3 direct costs 10 ms; 0-1-2-3 costs 3 ms.
        let g = PhysicalGraph::new(
            "t",
            (0..4).map(test_router).collect(),
            vec![link(0, 3, 10), link(0, 1, 1), link(1, 2, 1), link(2, 3, 1)],
        );
        let spt = ShortestPathTree::compute(&g, 0);
        assert_eq!(spt.delay_micros(3), Some(3_000));
        assert_eq!(spt.hops(3), Some(3));
        let mut path = Vec::new();
        spt.walk_back(&g, 3, |l, from, to| path.push((l, from, to)));
        assert_eq!(path, vec![(3, 2, 3), (2, 1, 2), (1, 0, 1)]);
        assert_eq!(spt.eccentricity_micros(), 3_000);
    }

    #[test]
    fn the_compact_tree_keeps_every_distance_hop_count_and_path_of_dijkstra() {
        for seed in 1..=3 {
            let params = crate::topology::transit_stub::TransitStubParams::from_spec(
                crate::spec::Spec::parse(&format!("transit-stub:nodes=300,seed={seed}"), |_| false)
                    .unwrap(),
            )
            .unwrap();
            let g = crate::topology::transit_stub::generate(&params);
            for root in (0..g.routers().len()).step_by(37) {
                let spt = ShortestPathTree::compute(&g, root);
                let (dist, hops, pred) =
                    dijkstra(&g, root, |l| duration_micros(g.links()[l].delay));
                for r in 0..g.routers().len() {
                    assert_eq!(
                        spt.delay_micros(r),
                        (dist[r] != u64::MAX).then_some(dist[r])
                    );
                    assert_eq!(spt.hops(r), (hops[r] != u32::MAX).then_some(hops[r]));
                    let mut walked = Vec::new();
                    spt.walk_back(&g, r, |l, from, to| walked.push((l, from, to)));
                    let mut raw = Vec::new();
                    let mut at = r;
                    while let Some((prev, link)) = pred[at] {
                        raw.push((link as usize, prev as usize, at));
                        at = prev as usize;
                    }
                    assert_eq!(walked, raw, "seed {seed} root {root} router {r}");
                }
            }
        }
    }
}
