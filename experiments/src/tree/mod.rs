//! Delivery trees and the papers' metrics on them, computed from physical paths.
//!
//! - RDP: overlay delay from the source to a receiver over the unicast delay between them;
//! - link stress: copies of one packet crossing a physical link (access links included);
//! - resource usage: the sum over links of delay × stress;
//! - receiver bandwidth: what each receiver gets when every overlay edge is a flow in the
//!   max-min fair model and a member forwards no more than it receives.
//!
//! [`quality`] measures a live overlay's trees (every member in turn as the source) against
//! unicast and IP multicast; [`bounds`] says what any overlay tree could reach on the placement.

pub mod bounds;
pub mod quality;

use std::collections::VecDeque;

use crate::network::{Channel, FlowDemand, Network, max_min_fair};
use crate::stats::Histogram;

/// Who forwards to whom for one source: `parent[m]` is the member `m` receives from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryTree {
    source: usize,
    parent: Vec<Option<usize>>,
    /// Members reached, parents before children (the source first).
    order: Vec<usize>,
}

/// A parent table that is not a tree.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TreeError {
    /// A parent index is out of range.
    #[error("member {member} has parent {parent}, but there are only {members} members")]
    OutOfRange {
        /// The member.
        member: usize,
        /// Its parent.
        parent: usize,
        /// Number of members.
        members: usize,
    },
    /// The source has a parent.
    #[error("the source {0} has a parent")]
    SourceHasParent(usize),
    /// Following parents from a member never reaches the source.
    #[error("member {0} is on a forwarding loop")]
    Loop(usize),
}

/// The members of the cycle through `at` in a parent table, starting at `at` and following
/// parents (empty if following parents from `at` does not come back to it).
pub fn cycle_through(parent: &[Option<usize>], at: usize) -> Vec<usize> {
    let mut cycle = vec![at];
    let mut m = at;
    while cycle.len() <= parent.len() {
        match parent.get(m).copied().flatten() {
            Some(p) if p == at => return cycle,
            Some(p) => {
                cycle.push(p);
                m = p;
            }
            None => break,
        }
    }
    Vec::new()
}

impl DeliveryTree {
    /// A tree from a parent table; members with no parent (other than the source) are unreached.
    pub fn new(source: usize, parent: Vec<Option<usize>>) -> Result<Self, TreeError> {
        let n = parent.len();
        if parent[source].is_some() {
            return Err(TreeError::SourceHasParent(source));
        }
        let mut children = vec![Vec::new(); n];
        for (member, p) in parent.iter().enumerate() {
            if let Some(p) = *p {
                if p >= n {
                    return Err(TreeError::OutOfRange {
                        member,
                        parent: p,
                        members: n,
                    });
                }
                children[p].push(member);
            }
        }
        let mut order = Vec::with_capacity(n);
        let mut queue = VecDeque::from([source]);
        while let Some(m) = queue.pop_front() {
            order.push(m);
            queue.extend(children[m].iter().copied());
        }
        // A member with a parent that BFS from the source did not reach either hangs off a
        // member with no parent (unreached, allowed) or sits on or below a cycle (refused).
        let mut reached = vec![false; n];
        for &m in &order {
            reached[m] = true;
        }
        // 0: unvisited, 1: on the current walk, 2: done (dangling, no cycle).
        let mut state = vec![0u8; n];
        for start in (0..n).filter(|&m| !reached[m] && parent[m].is_some()) {
            let mut walk = Vec::new();
            let mut at = start;
            loop {
                if reached[at] || state[at] == 2 || parent[at].is_none() {
                    break;
                }
                if state[at] == 1 {
                    return Err(TreeError::Loop(at));
                }
                state[at] = 1;
                walk.push(at);
                at = parent[at].unwrap_or(at);
            }
            for m in walk {
                state[m] = 2;
            }
        }
        Ok(Self {
            source,
            parent,
            order,
        })
    }

    /// Naive unicast: the source sends to every member directly.
    pub fn star(source: usize, members: usize) -> Self {
        let parent = (0..members)
            .map(|m| (m != source).then_some(source))
            .collect();
        Self::new(source, parent).expect("a star is a tree")
    }

    /// The source.
    pub fn source(&self) -> usize {
        self.source
    }

    /// The member `m` receives from.
    pub fn parent(&self, m: usize) -> Option<usize> {
        self.parent[m]
    }

    /// Number of members (reached or not).
    pub fn members(&self) -> usize {
        self.parent.len()
    }

    /// Members reached, parents before children, the source first.
    pub fn order(&self) -> &[usize] {
        &self.order
    }

    /// Receivers reached (members other than the source).
    pub fn reached(&self) -> usize {
        self.order.len() - 1
    }
}

/// The metrics of one source's tree.
#[derive(Clone, Debug, PartialEq)]
pub struct TreeMetrics {
    /// The source.
    pub source: usize,
    /// Overlay delay from the source, per member, in microseconds (`None` if unreached).
    pub delay_us: Vec<Option<u64>>,
    /// RDP of every reached receiver, in member order.
    pub rdp: Vec<f64>,
    /// Receivers reached out of the members other than the source.
    pub reached: usize,
    /// Stress of each link used, and which link had the largest (physical topologies only).
    pub stress: Option<StressSummary>,
}

/// Link stress and resource usage of one tree.
#[derive(Clone, Debug, PartialEq)]
pub struct StressSummary {
    /// How many links carry each number of copies.
    pub histogram: Histogram,
    /// The largest stress.
    pub max: u64,
    /// The links with the largest stress, ascending.
    pub max_links: Vec<usize>,
    /// Sum over links of delay × stress, in milliseconds.
    pub resource_usage_ms: f64,
}

/// Counts copies per link, reusing its buffer between trees.
#[derive(Debug, Default)]
pub struct StressCounter {
    copies: Vec<u32>,
    touched: Vec<usize>,
    path: Vec<Channel>,
}

impl StressCounter {
    fn add_link(&mut self, link: usize) {
        if self.copies[link] == 0 {
            self.touched.push(link);
        }
        self.copies[link] += 1;
    }

    /// One copy on every link of the unicast path from `from` to `to`.
    fn add_path(&mut self, net: &Network, from: usize, to: usize) {
        self.path.clear();
        net.unicast_path(from, to, &mut self.path);
        for i in 0..self.path.len() {
            let link = (self.path[i] / 2) as usize;
            self.add_link(link);
        }
    }

    fn summarise(&mut self, net: &Network) -> StressSummary {
        let mut histogram = Histogram::default();
        let (mut max, mut max_links, mut usage_us) = (0u64, Vec::new(), 0f64);
        self.touched.sort_unstable();
        for &link in &self.touched {
            let s = u64::from(self.copies[link]);
            histogram.add(s);
            usage_us += net.link_delay_micros(link) as f64 * s as f64;
            if s > max {
                max = s;
                max_links.clear();
            }
            if s == max {
                max_links.push(link);
            }
            self.copies[link] = 0;
        }
        self.touched.clear();
        StressSummary {
            histogram,
            max,
            max_links,
            resource_usage_ms: usage_us / 1e3,
        }
    }

    fn reset(&mut self, net: &Network) {
        if self.copies.len() != net.links() {
            self.copies = vec![0; net.links()];
        }
    }
}

/// Measure an overlay tree: each overlay edge travels the unicast path between its ends.
pub fn evaluate(net: &Network, tree: &DeliveryTree, counter: &mut StressCounter) -> TreeMetrics {
    let n = tree.members();
    let source = tree.source();
    let mut delay_us = vec![None; n];
    delay_us[source] = Some(0);
    counter.reset(net);
    for &m in &tree.order()[1..] {
        let p = tree
            .parent(m)
            .expect("every member after the source has a parent");
        delay_us[m] = Some(delay_us[p].unwrap_or(0) + net.unicast_delay_micros(p, m));
        if net.has_physical_links() {
            counter.add_path(net, p, m);
        }
    }
    let rdp = rdp_of(net, source, &delay_us);
    let stress = net.has_physical_links().then(|| counter.summarise(net));
    TreeMetrics {
        source,
        delay_us,
        rdp,
        reached: tree.reached(),
        stress,
    }
}

/// Link stress and resource usage of the copies of one packet that crossed overlay edges
/// `(from, to)`, each along the unicast path between its ends (duplicates count: a packet sent
/// twice over an edge loads its links twice); `None` without physical links.
pub fn copies_stress(
    net: &Network,
    edges: &[(usize, usize)],
    counter: &mut StressCounter,
) -> Option<StressSummary> {
    if !net.has_physical_links() {
        return None;
    }
    counter.reset(net);
    for &(from, to) in edges {
        counter.add_path(net, from, to);
    }
    Some(counter.summarise(net))
}

/// IP multicast's figures for `source`: every receiver at its unicast delay, one copy per link of
/// the source's shortest-path tree.
pub fn ip_multicast(net: &Network, source: usize, counter: &mut StressCounter) -> TreeMetrics {
    let n = net.members();
    let delay_us: Vec<Option<u64>> = (0..n)
        .map(|m| Some(net.unicast_delay_micros(source, m)))
        .collect();
    counter.reset(net);
    let stress = net.has_physical_links().then(|| {
        net.ip_multicast_links(source, |link| counter.add_link(link));
        counter.summarise(net)
    });
    TreeMetrics {
        source,
        rdp: rdp_of(net, source, &delay_us),
        delay_us,
        reached: n - 1,
        stress,
    }
}

fn rdp_of(net: &Network, source: usize, delay_us: &[Option<u64>]) -> Vec<f64> {
    delay_us
        .iter()
        .enumerate()
        .filter(|&(m, d)| m != source && d.is_some())
        .map(|(m, d)| {
            let unicast = net.unicast_delay_micros(source, m).max(1);
            d.unwrap_or(0) as f64 / unicast as f64
        })
        .collect()
}

/// Rate each member receives (bits per second) when the source sends at `rate` (infinite for an
/// elastic stream) down `tree`: every overlay edge is a flow in the max-min fair model, and a
/// member forwards no more than it receives (edges' demands are lowered to their parent's rate
/// until nothing changes). `None` for the source and unreached members.
pub fn receiver_rates(net: &Network, tree: &DeliveryTree, rate: f64) -> Vec<Option<f64>> {
    let edges: Vec<usize> = tree.order()[1..].to_vec();
    let mut flows: Vec<FlowDemand> = edges
        .iter()
        .map(|&m| {
            let mut channels = Vec::new();
            net.unicast_path(tree.parent(m).unwrap_or(m), m, &mut channels);
            FlowDemand {
                channels,
                demand: rate,
            }
        })
        .collect();
    let mut edge_of = vec![usize::MAX; tree.members()];
    for (i, &m) in edges.iter().enumerate() {
        edge_of[m] = i;
    }
    let mut received = vec![None; tree.members()];
    for _ in 0..32 {
        let edge_rates = max_min_fair(net.capacities(), &flows);
        received = vec![None; tree.members()];
        received[tree.source()] = Some(rate);
        for &m in &edges {
            let parent = received[tree.parent(m).unwrap_or(m)].unwrap_or(0.0);
            received[m] = Some(edge_rates[edge_of[m]].min(parent));
        }
        let mut changed = false;
        for &m in &edges {
            let cap = received[tree.parent(m).unwrap_or(m)]
                .unwrap_or(0.0)
                .min(rate);
            let flow = &mut flows[edge_of[m]];
            if cap < flow.demand * (1.0 - 1e-9) {
                flow.demand = cap;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    received[tree.source()] = None;
    received
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::AccessSpec;
    use crate::topology;
    use proptest::prelude::*;

    fn network(members: usize, access: &str) -> Network {
        let topo = topology::load("waxman:routers=100,links=300,seed=3").unwrap();
        Network::build(topo, members, &AccessSpec::parse(access).unwrap(), 5).unwrap()
    }

    #[test]
    fn unicast_stress_sits_on_the_source_uplink() {
        let net = network(16, "fixed");
        let mut counter = StressCounter::default();
        let m = evaluate(&net, &DeliveryTree::star(4, 16), &mut counter);
        let stress = m.stress.unwrap();
        assert_eq!(stress.max, 15);
        assert!(stress.max_links.contains(&net.access_link(4)));
        assert!(m.rdp.iter().all(|&r| (r - 1.0).abs() < 1e-12));
        assert_eq!(m.reached, 15);

        let ip = ip_multicast(&net, 4, &mut counter);
        let ip_stress = ip.stress.unwrap();
        assert_eq!(ip_stress.max, 1);
        assert!(ip_stress.resource_usage_ms < stress.resource_usage_ms);
    }

    #[test]
    fn a_chain_adds_delays_and_counts_rdp() {
        let net = network(4, "fixed");
        let tree = DeliveryTree::new(0, vec![None, Some(0), Some(1), Some(2)]).unwrap();
        let m = evaluate(&net, &tree, &mut StressCounter::default());
        let d = |a, b| net.unicast_delay_micros(a, b);
        assert_eq!(m.delay_us[3], Some(d(0, 1) + d(1, 2) + d(2, 3)));
        assert!((m.rdp[2] - (d(0, 1) + d(1, 2) + d(2, 3)) as f64 / d(0, 3) as f64).abs() < 1e-12);
        assert!(
            m.rdp.iter().all(|&r| r >= 1.0 - 1e-12),
            "shortest paths make RDP >= 1 on a router map"
        );
    }

    #[test]
    fn bad_parent_tables_are_refused() {
        assert_eq!(
            DeliveryTree::new(0, vec![None, Some(2), Some(1)]),
            Err(TreeError::Loop(1))
        );
        assert_eq!(
            DeliveryTree::new(0, vec![Some(1), None]),
            Err(TreeError::SourceHasParent(0))
        );
        assert!(matches!(
            DeliveryTree::new(0, vec![None, Some(9)]),
            Err(TreeError::OutOfRange { .. })
        ));
        let partial = DeliveryTree::new(0, vec![None, Some(0), None]).unwrap();
        assert_eq!(partial.reached(), 1);
        // Hanging off a member without a parent is unreached, not a loop.
        let dangling = DeliveryTree::new(0, vec![None, Some(0), None, Some(2), Some(3)]).unwrap();
        assert_eq!(dangling.reached(), 1);
        // Below a cycle is a loop.
        let below = vec![None, Some(3), Some(1), Some(2), Some(2)];
        assert_eq!(DeliveryTree::new(0, below.clone()), Err(TreeError::Loop(1)));
        // The cycle is named from the member the error gives; a member below it is no cycle.
        assert_eq!(cycle_through(&below, 1), vec![1, 3, 2]);
        assert_eq!(cycle_through(&below, 4), Vec::<usize>::new());
        assert_eq!(cycle_through(&[None, Some(0)], 1), Vec::<usize>::new());
    }

    #[test]
    fn unicast_splits_the_uplink_and_a_chain_does_not() {
        let net = network(5, "fixed:up=10mbps,down=100mbps");
        let star = receiver_rates(&net, &DeliveryTree::star(0, 5), f64::INFINITY);
        assert!(
            star[1..].iter().all(|r| (r.unwrap() - 2.5e6).abs() < 1.0),
            "{star:?}"
        );
        let chain = DeliveryTree::new(0, vec![None, Some(0), Some(1), Some(2), Some(3)]).unwrap();
        let rates = receiver_rates(&net, &chain, 1.2e6);
        assert!(
            rates[1..].iter().all(|r| (r.unwrap() - 1.2e6).abs() < 1.0),
            "{rates:?}"
        );
        assert_eq!(rates[0], None);
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
        /// For random trees: delays grow along every edge, each receiver gets no more than its
        /// parent, and stress is at least one on every link used.
        #[test]
        fn random_trees_are_consistent(parents in proptest::collection::vec(any::<prop::sample::Index>(), 11)) {
            let net = network(12, "simblock");
            // Member i+1 picks a parent among 0..=i: always a tree rooted at 0.
            let parent: Vec<Option<usize>> = std::iter::once(None)
                .chain(parents.iter().enumerate().map(|(i, ix)| Some(ix.index(i + 1))))
                .collect();
            let tree = DeliveryTree::new(0, parent).unwrap();
            let m = evaluate(&net, &tree, &mut StressCounter::default());
            prop_assert_eq!(m.reached, 11);
            let rates = receiver_rates(&net, &tree, 2e6);
            for c in 1..12 {
                let p = tree.parent(c).unwrap();
                prop_assert!(m.delay_us[c].unwrap() >= m.delay_us[p].unwrap());
                if p != 0 { prop_assert!(rates[c].unwrap() <= rates[p].unwrap() + 1e-6); }
                prop_assert!(rates[c].unwrap() <= 2e6 + 1e-6);
            }
            let s = m.stress.unwrap();
            prop_assert!(s.histogram.iter().all(|(v, _)| v >= 1));
            prop_assert!(s.max <= 11);
        }
    }
}
