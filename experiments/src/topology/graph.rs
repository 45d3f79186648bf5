//! A router-level map: routers with positions, undirected links with delay and capacity.

use std::time::Duration;

use overlay_core::Bandwidth;

/// What a router is for, which decides where hosts may attach.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum RouterRole {
    /// A router of a flat map: hosts may attach anywhere.
    Plain,
    /// A transit (backbone) router: hosts do not attach here.
    Transit,
    /// A stub (edge) router: where hosts attach in a transit-stub map.
    Stub,
}

/// One router.
#[derive(Clone, Debug, PartialEq)]
pub struct Router {
    /// A name for reports (a city in real maps).
    pub name: String,
    /// Position: longitude and latitude for real maps, unit-square coordinates for generated ones.
    pub pos: [f64; 2],
    /// Its role.
    pub role: RouterRole,
}

/// One undirected physical link; each direction has the full capacity.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PhysicalLink {
    /// One end (a router index).
    pub a: usize,
    /// The other end.
    pub b: usize,
    /// Propagation delay.
    pub delay: Duration,
    /// Capacity of each direction.
    pub capacity: Bandwidth,
}

/// An undirected, connected router map.
#[derive(Clone, Debug)]
pub struct PhysicalGraph {
    /// A name for reports.
    pub name: String,
    routers: Vec<Router>,
    links: Vec<PhysicalLink>,
    /// For each router, `(neighbour, link index)`, in link order.
    adjacency: Vec<Vec<(usize, usize)>>,
    /// What loading changed (components dropped, duplicates merged, ...), for reports.
    pub notes: Vec<String>,
    /// Where the links' capacities came from (the map, a model, a generator's parameters), for
    /// reports; empty if nobody said.
    pub capacity_rule: String,
}

impl PhysicalGraph {
    /// A graph of `routers` joined by `links`.
    ///
    /// # Panics
    /// If a link names a router out of range or joins a router to itself: loaders and generators
    /// check their input before building a graph, so this is a bug, not bad input.
    pub fn new(name: impl Into<String>, routers: Vec<Router>, links: Vec<PhysicalLink>) -> Self {
        let mut adjacency = vec![Vec::new(); routers.len()];
        for (i, link) in links.iter().enumerate() {
            assert!(
                link.a < routers.len() && link.b < routers.len(),
                "link {i} out of range"
            );
            assert_ne!(link.a, link.b, "link {i} is a self-loop");
            adjacency[link.a].push((link.b, i));
            adjacency[link.b].push((link.a, i));
        }
        Self {
            name: name.into(),
            routers,
            links,
            adjacency,
            notes: Vec::new(),
            capacity_rule: String::new(),
        }
    }

    /// The routers.
    pub fn routers(&self) -> &[Router] {
        &self.routers
    }

    /// The links.
    pub fn links(&self) -> &[PhysicalLink] {
        &self.links
    }

    /// Give each link the capacity `capacity_of(link index, link)` returns.
    pub fn set_capacities(
        &mut self,
        mut capacity_of: impl FnMut(usize, &PhysicalLink) -> Bandwidth,
    ) {
        for (i, link) in self.links.iter_mut().enumerate() {
            link.capacity = capacity_of(i, link);
        }
    }

    /// `(neighbour, link index)` pairs of router `r`.
    pub fn neighbours(&self, r: usize) -> &[(usize, usize)] {
        &self.adjacency[r]
    }

    /// Routers where hosts may attach: stub routers if the map has any, otherwise all.
    pub fn attach_points(&self) -> Vec<usize> {
        let stubs: Vec<usize> = (0..self.routers.len())
            .filter(|&r| self.routers[r].role == RouterRole::Stub)
            .collect();
        if stubs.is_empty() {
            (0..self.routers.len()).collect()
        } else {
            stubs
        }
    }

    /// The capacity of all of router `r`'s links together, in bit/s.
    pub fn attached_capacity_bps(&self, r: usize) -> u128 {
        self.adjacency[r]
            .iter()
            .map(|&(_, l)| u128::from(self.links[l].capacity.bps()))
            .sum()
    }

    /// Backbone routers, where infrastructure nodes go first: the transit routers of a map that
    /// has roles; on a flat map, the tenth of routers (at least one) with the most link capacity
    /// attached, most first (ties: lowest index first). Transit routers come in index order.
    pub fn backbone_routers(&self) -> Vec<usize> {
        let transit: Vec<usize> = (0..self.routers.len())
            .filter(|&r| self.routers[r].role == RouterRole::Transit)
            .collect();
        if !transit.is_empty() || self.routers.iter().any(|r| r.role != RouterRole::Plain) {
            return transit;
        }
        let mut ranked: Vec<(std::cmp::Reverse<u128>, usize)> = (0..self.routers.len())
            .map(|r| (std::cmp::Reverse(self.attached_capacity_bps(r)), r))
            .collect();
        ranked.sort_unstable();
        ranked.truncate(self.routers.len().div_ceil(10));
        ranked.into_iter().map(|(_, r)| r).collect()
    }

    /// Connected components, largest first (ties: lowest router first); routers in index order.
    pub fn components(&self) -> Vec<Vec<usize>> {
        let mut seen = vec![false; self.routers.len()];
        let mut components = Vec::new();
        for start in 0..self.routers.len() {
            if seen[start] {
                continue;
            }
            seen[start] = true;
            let mut stack = vec![start];
            let mut component = Vec::new();
            while let Some(r) = stack.pop() {
                component.push(r);
                for &(n, _) in &self.adjacency[r] {
                    if !seen[n] {
                        seen[n] = true;
                        stack.push(n);
                    }
                }
            }
            component.sort_unstable();
            components.push(component);
        }
        components.sort_by(|a, b| b.len().cmp(&a.len()).then(a[0].cmp(&b[0])));
        components
    }

    /// Whether every router can reach every other.
    pub fn is_connected(&self) -> bool {
        self.components().len() <= 1
    }

    /// The subgraph on `keep` (router indices), renumbered in the order given.
    pub fn induced(&self, keep: &[usize]) -> Self {
        let mut new_index = vec![usize::MAX; self.routers.len()];
        for (i, &r) in keep.iter().enumerate() {
            new_index[r] = i;
        }
        let routers = keep.iter().map(|&r| self.routers[r].clone()).collect();
        let links = self
            .links
            .iter()
            .filter(|l| new_index[l.a] != usize::MAX && new_index[l.b] != usize::MAX)
            .map(|l| PhysicalLink {
                a: new_index[l.a],
                b: new_index[l.b],
                ..*l
            })
            .collect();
        let mut graph = Self::new(self.name.clone(), routers, links);
        graph.notes = self.notes.clone();
        graph.capacity_rule = self.capacity_rule.clone();
        graph
    }
}

#[cfg(test)]
pub(crate) fn test_router(i: usize) -> Router {
    Router {
        name: format!("r{i}"),
        pos: [i as f64, 0.0],
        role: RouterRole::Plain,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(a: usize, b: usize) -> PhysicalLink {
        PhysicalLink {
            a,
            b,
            delay: Duration::from_millis(1),
            capacity: Bandwidth::from_mbps(100),
        }
    }

    #[test]
    fn the_backbone_of_a_flat_map_is_where_capacity_is() {
        // A star around router 2 (100 Mbit/s links) with one fast spoke 2-4 (1 Gbit/s), a tail
        // 4-5 and, on the larger map, six more routers on 5: capacity attached is 1.3 Gbit/s
        // at 2, 1.1 at 4 and 0.7 at 5 (which has the most links).
        let mut links = vec![link(2, 0), link(2, 1), link(2, 3), link(2, 4), link(4, 5)];
        links[3].capacity = Bandwidth::from_mbps(1_000);
        let routers: Vec<Router> = (0..12).map(test_router).collect();
        let mut more = links.clone();
        more.extend((6..12).map(|r| link(5, r)));
        let g = PhysicalGraph::new("star", routers, more);
        assert_eq!(g.backbone_routers(), vec![2, 4], "12 routers: the top two");
        let routers: Vec<Router> = (0..6).map(test_router).collect();
        let g = PhysicalGraph::new("star", routers, links);
        assert_eq!(g.backbone_routers(), vec![2]);
    }

    #[test]
    fn components_and_induced_subgraphs() {
        let routers = (0..6).map(test_router).collect();
        let g = PhysicalGraph::new("t", routers, vec![link(0, 1), link(1, 2), link(3, 4)]);
        assert_eq!(g.components(), vec![vec![0, 1, 2], vec![3, 4], vec![5]]);
        assert!(!g.is_connected());
        let big = g.induced(&g.components()[0]);
        assert!(big.is_connected());
        assert_eq!(big.links().len(), 2);
        assert_eq!(big.neighbours(1), &[(0, 0), (2, 1)]);
    }
}
