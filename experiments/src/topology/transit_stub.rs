//! Transit-stub maps in the style of GT-ITM (the Overcast paper's topologies).
//!
//! A few transit domains of well-connected backbone routers are joined to each other; every
//! transit router has stub domains hanging off it by one uplink each; stub domains are small
//! connected networks where hosts attach. Domains are placed in the unit square with their routers
//! clustered around them, and delays follow distance, so inter-domain links are long and
//! intra-stub links short. Core links are the fastest, uplinks the slowest.

use std::time::Duration;

use overlay_core::Bandwidth;
use overlay_core::rng::{ProtocolRng, rng_from_seed};
use rand::RngExt;

use super::waxman::link_delay;
use super::{PhysicalGraph, PhysicalLink, Router, RouterRole};
use crate::spec::{Spec, SpecError};

/// Parameters of a transit-stub map.
#[derive(Clone, Debug, PartialEq)]
pub struct TransitStubParams {
    /// Total routers.
    pub nodes: usize,
    /// Number of transit domains.
    pub transit_domains: usize,
    /// Routers per transit domain.
    pub transit_nodes: usize,
    /// Stub domains per transit router.
    pub stubs_per_transit: usize,
    /// Probability of each extra link inside a transit domain (beyond a spanning tree).
    pub transit_edge_prob: f64,
    /// Probability of each extra link inside a stub domain.
    pub stub_edge_prob: f64,
    /// Delay across the side of the square.
    pub side: Duration,
    /// Capacity of links inside and between transit domains.
    pub transit_capacity: Bandwidth,
    /// Capacity of the uplink from a stub domain to its transit router.
    pub uplink_capacity: Bandwidth,
    /// Capacity of links inside stub domains.
    pub stub_capacity: Bandwidth,
    /// Seed.
    pub seed: u64,
}

impl TransitStubParams {
    /// Keys a `transit-stub:` spec accepts.
    pub const KEYS: &[&str] = &[
        "nodes",
        "transit_domains",
        "transit_nodes",
        "stubs_per_transit",
        "transit_edge_prob",
        "stub_edge_prob",
        "side",
        "transit_capacity",
        "uplink_capacity",
        "stub_capacity",
        "seed",
    ];

    /// Read the parameters from a spec (defaults: about 600 routers, 4 transit domains of 5).
    pub fn from_spec(mut spec: Spec) -> Result<Self, SpecError> {
        let params = Self {
            nodes: spec.take("nodes", 600)?,
            transit_domains: spec.take("transit_domains", 4)?,
            transit_nodes: spec.take("transit_nodes", 5)?,
            stubs_per_transit: spec.take("stubs_per_transit", 3)?,
            transit_edge_prob: spec.take("transit_edge_prob", 0.6)?,
            stub_edge_prob: spec.take("stub_edge_prob", 0.2)?,
            side: spec.take("side", Duration::from_millis(50))?,
            transit_capacity: spec.take("transit_capacity", Bandwidth::from_mbps(1000))?,
            uplink_capacity: spec.take("uplink_capacity", Bandwidth::from_mbps(45))?,
            stub_capacity: spec.take("stub_capacity", Bandwidth::from_mbps(100))?,
            seed: spec.take("seed", 1)?,
        };
        let transit = params.transit_domains * params.transit_nodes;
        let stubs = transit * params.stubs_per_transit;
        if params.transit_domains == 0 || params.transit_nodes == 0 || params.stubs_per_transit == 0
        {
            return Err(
                spec.error("transit_domains, transit_nodes and stubs_per_transit must be positive")
            );
        }
        if params.nodes < transit + stubs {
            return Err(spec.error(format!(
                "nodes must be at least {} ({transit} transit routers and one router for each of {stubs} stub domains), got {}",
                transit + stubs,
                params.nodes
            )));
        }
        for (key, p) in [
            ("transit_edge_prob", params.transit_edge_prob),
            ("stub_edge_prob", params.stub_edge_prob),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return Err(spec.error(format!("{key} must be a probability in 0..=1, got {p}")));
            }
        }
        spec.finish(Self::KEYS)?;
        Ok(params)
    }
}

struct Builder {
    rng: ProtocolRng,
    routers: Vec<Router>,
    links: Vec<PhysicalLink>,
    side: Duration,
}

impl Builder {
    fn add_router(
        &mut self,
        centre: [f64; 2],
        radius: f64,
        role: RouterRole,
        name: String,
    ) -> usize {
        let angle = self.rng.random::<f64>() * std::f64::consts::TAU;
        let r = radius * self.rng.random::<f64>().sqrt();
        let pos = [
            (centre[0] + r * angle.cos()).clamp(0.0, 1.0),
            (centre[1] + r * angle.sin()).clamp(0.0, 1.0),
        ];
        self.routers.push(Router { name, pos, role });
        self.routers.len() - 1
    }

    fn link(&mut self, a: usize, b: usize, capacity: Bandwidth) {
        let (pa, pb) = (self.routers[a].pos, self.routers[b].pos);
        let d = ((pa[0] - pb[0]).powi(2) + (pa[1] - pb[1]).powi(2)).sqrt();
        self.links.push(PhysicalLink {
            a,
            b,
            delay: link_delay(d, self.side),
            capacity,
        });
    }

    /// A random spanning tree over `members` plus each other pair with probability `p`.
    fn connect_domain(&mut self, members: &[usize], p: f64, capacity: Bandwidth) {
        let mut tree = std::collections::BTreeSet::new();
        for i in 1..members.len() {
            let j = self.rng.random_range(0..i);
            tree.insert((j, i));
            self.link(members[i], members[j], capacity);
        }
        for i in 0..members.len() {
            for j in i + 1..members.len() {
                if !tree.contains(&(i, j)) && self.rng.random_bool(p) {
                    self.link(members[i], members[j], capacity);
                }
            }
        }
    }
}

/// Generate a connected transit-stub map with exactly `params.nodes` routers.
pub fn generate(params: &TransitStubParams) -> PhysicalGraph {
    let mut b = Builder {
        rng: rng_from_seed(params.seed),
        routers: Vec::new(),
        links: Vec::new(),
        side: params.side,
    };
    let mut domains: Vec<Vec<usize>> = Vec::new();
    for d in 0..params.transit_domains {
        let centre = [
            0.15 + 0.7 * b.rng.random::<f64>(),
            0.15 + 0.7 * b.rng.random::<f64>(),
        ];
        let members: Vec<usize> = (0..params.transit_nodes)
            .map(|i| b.add_router(centre, 0.08, RouterRole::Transit, format!("t{d}.{i}")))
            .collect();
        b.connect_domain(&members, params.transit_edge_prob, params.transit_capacity);
        domains.push(members);
    }
    // Join transit domains: a random spanning tree over domains, plus extra pairs (probability 0.5).
    for d in 1..domains.len() {
        let other = b.rng.random_range(0..d);
        let (x, y) = (
            pick(&mut b.rng, &domains[d]),
            pick(&mut b.rng, &domains[other]),
        );
        b.link(x, y, params.transit_capacity);
        for e in 0..d {
            if e != other && b.rng.random_bool(0.5) {
                let (x, y) = (pick(&mut b.rng, &domains[d]), pick(&mut b.rng, &domains[e]));
                b.link(x, y, params.transit_capacity);
            }
        }
    }
    // Stub domains: share the remaining routers as evenly as possible.
    let transit: Vec<usize> = domains.concat();
    let stub_domains = transit.len() * params.stubs_per_transit;
    let stub_routers = params.nodes - transit.len();
    let (base, extra) = (stub_routers / stub_domains, stub_routers % stub_domains);
    for s in 0..stub_domains {
        let parent = transit[s / params.stubs_per_transit];
        let size = base + usize::from(s < extra);
        let pp = b.routers[parent].pos;
        let angle = b.rng.random::<f64>() * std::f64::consts::TAU;
        let centre = [
            (pp[0] + 0.05 * angle.cos()).clamp(0.0, 1.0),
            (pp[1] + 0.05 * angle.sin()).clamp(0.0, 1.0),
        ];
        let members: Vec<usize> = (0..size)
            .map(|i| b.add_router(centre, 0.02, RouterRole::Stub, format!("s{s}.{i}")))
            .collect();
        b.connect_domain(&members, params.stub_edge_prob, params.stub_capacity);
        let gateway = pick(&mut b.rng, &members);
        b.link(gateway, parent, params.uplink_capacity);
    }
    let mut graph = PhysicalGraph::new("transit-stub", b.routers, b.links);
    graph.capacity_rule = format!(
        "transit links {}, stub uplinks {}, links inside stubs {} (transit-stub transit_capacity=, uplink_capacity=, stub_capacity=)",
        params.transit_capacity, params.uplink_capacity, params.stub_capacity
    );
    graph
}

fn pick(rng: &mut ProtocolRng, from: &[usize]) -> usize {
    from[rng.random_range(0..from.len())]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Spec;

    fn params(text: &str) -> TransitStubParams {
        TransitStubParams::from_spec(Spec::parse(text, |_| false).unwrap()).unwrap()
    }

    #[test]
    fn default_map_has_600_routers_hosts_on_stubs_and_a_faster_core() {
        let g = generate(&params("transit-stub:nodes=600,seed=1"));
        assert_eq!(g.routers().len(), 600);
        assert!(g.is_connected());
        let stubs = g.attach_points();
        assert_eq!(stubs.len(), 580);
        assert!(
            stubs
                .iter()
                .all(|&r| g.routers()[r].role == RouterRole::Stub)
        );
        let core = g.links().iter().filter(|l| {
            g.routers()[l.a].role == RouterRole::Transit
                && g.routers()[l.b].role == RouterRole::Transit
        });
        assert!(core.clone().count() >= 4 * 4 + 3);
        assert!(
            core.into_iter()
                .all(|l| l.capacity == Bandwidth::from_mbps(1000))
        );
        let uplinks = g
            .links()
            .iter()
            .filter(|l| l.capacity == Bandwidth::from_mbps(45))
            .count();
        assert_eq!(uplinks, 60);
    }

    #[test]
    fn too_few_nodes_is_an_error_naming_the_minimum() {
        let spec = Spec::parse("transit-stub:nodes=50", |_| false).unwrap();
        let err = TransitStubParams::from_spec(spec).unwrap_err().to_string();
        assert!(err.contains("at least 80"), "{err}");
    }

    #[test]
    fn same_seed_same_map() {
        let a = generate(&params("transit-stub:nodes=200,seed=5"));
        let b = generate(&params("transit-stub:nodes=200,seed=5"));
        assert_eq!(a.links(), b.links());
        assert!(a.is_connected());
    }
}
