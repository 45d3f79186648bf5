//! Members placed on a topology: access links, unicast paths and delays, capacities, and the
//! bandwidth a member would measure.
//!
//! Every link has two directed *channels* (`2 × link` and `2 × link + 1`); physical links come
//! first, then one access link per member (channel `2 × l` is the member's upload, `2 × l + 1` its
//! download). On a measured RTT matrix there are no physical links: a path is the sender's upload
//! and the receiver's download, and its delay is the measured one.

mod access;
mod flow;

use std::time::Duration;

use overlay_core::rng::{ProtocolRng, derive_seed, rng_from_seed};
use overlay_core::{Bandwidth, LinkMetrics, MeasureRequest, duration_micros};
use rand::RngExt;

pub use access::{ACCESS_HELP, AccessLink, AccessSpec, RegionTable, standard_normal};
pub use flow::{FlowDemand, max_min_fair};

use crate::topology::{LatencyMatrix, PhysicalGraph, ShortestPathTree, Topology};

/// A directed link: `2 × link + direction`.
pub type Channel = u32;

/// Seed streams derived from a run's seed, so each purpose draws independently.
pub mod seed_stream {
    /// Where members attach.
    pub const PLACEMENT: u64 = 1;
    /// Access link draws.
    pub const ACCESS: u64 = 2;
    /// Measurement noise.
    pub const NOISE: u64 = 3;
}

/// A member's host.
#[derive(Clone, Debug)]
pub struct Host {
    /// A name for reports.
    pub name: String,
    /// The router it attaches to (router maps).
    pub router: Option<usize>,
    /// Its row in the RTT matrix (matrices).
    pub matrix_row: Option<usize>,
    /// Its access link.
    pub access: AccessLink,
}

/// Why members could not be placed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetworkError {
    /// Too few or too many members for the topology.
    #[error("{0}")]
    Members(String),
    /// The access links asked for cannot be built on the topology.
    #[error("{0}")]
    Access(String),
}

/// Where hosts attach on a router map.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Placement {
    /// Every host on a random attach point (a stub router on transit-stub maps).
    #[default]
    Random,
    /// The first hosts on the backbone routers, one each (the transit routers in router order;
    /// on a flat map the tenth of routers with the most link capacity, most first), the rest
    /// at random on attach points off the backbone: infrastructure nodes placed where the
    /// bandwidth is, as Overcast's were, and the audience's nodes at the edge.
    Backbone,
}

impl std::str::FromStr for Placement {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "random" => Ok(Self::Random),
            "backbone" => Ok(Self::Backbone),
            other => Err(format!(
                "placement must be backbone or random, got {other:?}"
            )),
        }
    }
}

/// Members on a topology, with routing precomputed.
#[derive(Debug)]
pub struct Network {
    topology: Topology,
    hosts: Vec<Host>,
    /// Per link: delay in microseconds and capacity of both directions (bits per second).
    link_delay: Vec<u64>,
    capacity: Vec<f64>,
    physical_links: usize,
    /// Shortest-path trees from each member's router (router maps); `tree_of[member]` indexes it.
    trees: Vec<ShortestPathTree>,
    tree_of: Vec<usize>,
    /// Current load per channel and flows per channel, for available-bandwidth measurements.
    load: Vec<f64>,
    flows_on: Vec<u32>,
    /// Rates of the overlay edges recorded by [`Network::set_edge_load`], by `(from, to)`.
    edge_rate: std::collections::BTreeMap<(usize, usize), f64>,
    /// The same edges by receiver: `to -> [(from, rate)]`.
    incoming: std::collections::BTreeMap<usize, Vec<(usize, f64)>>,
    noise: f64,
}

impl Network {
    /// Place `members` hosts on `topology`, drawing positions and access links from `seed`.
    pub fn build(
        topology: Topology,
        members: usize,
        access: &AccessSpec,
        seed: u64,
    ) -> Result<Self, NetworkError> {
        Self::build_placed(topology, members, access, seed, Placement::Random, 1)
    }

    /// Like [`Network::build`], choosing routers for hosts by `placement`. With backbone
    /// placement the first `site` hosts share the first backbone router (Overcast's linear
    /// roots, which stand in for each other at one site, as the paper's replicated root does);
    /// the next hosts take the other backbone routers, one each.
    pub fn build_placed(
        topology: Topology,
        members: usize,
        access: &AccessSpec,
        seed: u64,
        placement_rule: Placement,
        site: usize,
    ) -> Result<Self, NetworkError> {
        if members < 2 {
            return Err(NetworkError::Members(format!(
                "a group needs at least 2 members, got {members}"
            )));
        }
        let mut placement = rng_from_seed(derive_seed(seed, seed_stream::PLACEMENT));
        let mut links_rng = rng_from_seed(derive_seed(seed, seed_stream::ACCESS));
        let mut access_links = access.draw(members, &mut links_rng);
        let mut hosts = Vec::with_capacity(members);
        let (mut link_delay, mut capacity, physical_links);
        let (mut trees, mut tree_of) = (Vec::new(), Vec::new());
        match &topology {
            Topology::Physical(graph) => {
                let backbone: Vec<usize> = match placement_rule {
                    Placement::Random => Vec::new(),
                    Placement::Backbone => graph.backbone_routers(),
                };
                // The rest go to the edge: attach points off the backbone (on a map with
                // roles, transit routers are no attach points anyway).
                let mut points = graph.attach_points();
                if points.len() > backbone.len() {
                    points.retain(|r| !backbone.contains(r));
                }
                physical_links = graph.links().len();
                link_delay = graph
                    .links()
                    .iter()
                    .map(|l| duration_micros(l.delay))
                    .collect::<Vec<_>>();
                capacity = graph
                    .links()
                    .iter()
                    .flat_map(|l| [l.capacity.bps_f64(); 2])
                    .collect::<Vec<_>>();
                let mut tree_index = std::collections::BTreeMap::new();
                for (i, link) in access_links.drain(..).enumerate() {
                    let on_backbone = if i < site { 0 } else { i + 1 - site.max(1) };
                    let router = match backbone.get(on_backbone) {
                        Some(&transit) => transit,
                        None => points[placement.random_range(0..points.len())],
                    };
                    let next = tree_index.len();
                    let t = *tree_index.entry(router).or_insert(next);
                    if t == trees.len() {
                        trees.push(ShortestPathTree::compute(graph, router));
                    }
                    tree_of.push(t);
                    let mut link = link;
                    if let Some(factor) = access.router_factor() {
                        let total = graph.attached_capacity_bps(router) as f64;
                        link.up = Bandwidth::from_bps_f64(total * factor);
                        link.down = link.up;
                    }
                    hosts.push(Host {
                        name: format!("m{i}@{}", graph.routers()[router].name),
                        router: Some(router),
                        matrix_row: None,
                        access: link,
                    });
                }
            }
            Topology::Matrix(matrix) => {
                if access.router_factor().is_some() {
                    return Err(NetworkError::Access(format!(
                        "{} is an RTT matrix with no routers; router-relative access links need a router map",
                        matrix.name
                    )));
                }
                if members > matrix.len() {
                    return Err(NetworkError::Members(format!(
                        "{} has {} hosts; cannot place {members} members",
                        matrix.name,
                        matrix.len()
                    )));
                }
                physical_links = 0;
                link_delay = Vec::new();
                capacity = Vec::new();
                let mut rows: Vec<usize> = (0..matrix.len()).collect();
                for i in 0..members {
                    let j = placement.random_range(i..rows.len());
                    rows.swap(i, j);
                }
                rows.truncate(members);
                rows.sort_unstable();
                for (row, mut link) in rows.into_iter().zip(access_links.drain(..)) {
                    link.delay = Duration::ZERO;
                    hosts.push(Host {
                        name: matrix.names()[row].clone(),
                        router: None,
                        matrix_row: Some(row),
                        access: link,
                    });
                }
            }
        }
        for host in &hosts {
            link_delay.push(duration_micros(host.access.delay));
            capacity.push(host.access.up.bps_f64());
            capacity.push(host.access.down.bps_f64());
        }
        let channels = capacity.len();
        Ok(Self {
            topology,
            hosts,
            link_delay,
            capacity,
            physical_links,
            trees,
            tree_of,
            load: vec![0.0; channels],
            flows_on: vec![0; channels],
            edge_rate: std::collections::BTreeMap::new(),
            incoming: std::collections::BTreeMap::new(),
            noise: 0.0,
        })
    }

    /// The topology members sit on.
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// The router map, if the topology has one.
    pub fn graph(&self) -> Option<&PhysicalGraph> {
        match &self.topology {
            Topology::Physical(g) => Some(g),
            Topology::Matrix(_) => None,
        }
    }

    /// The RTT matrix, if the topology is one.
    pub fn matrix(&self) -> Option<&LatencyMatrix> {
        match &self.topology {
            Topology::Matrix(m) => Some(m),
            Topology::Physical(_) => None,
        }
    }

    /// Number of members.
    pub fn members(&self) -> usize {
        self.hosts.len()
    }

    /// The members' hosts.
    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }

    /// Whether link stress and resource usage are defined (the topology has physical links).
    pub fn has_physical_links(&self) -> bool {
        matches!(self.topology, Topology::Physical(_))
    }

    /// Number of links (physical, then one access link per member).
    pub fn links(&self) -> usize {
        self.link_delay.len()
    }

    /// Number of physical (router-to-router) links.
    pub fn physical_links(&self) -> usize {
        self.physical_links
    }

    /// Propagation delay of link `link`, in microseconds.
    pub fn link_delay_micros(&self, link: usize) -> u64 {
        self.link_delay[link]
    }

    /// The access link of member `m`.
    pub fn access_link(&self, m: usize) -> usize {
        self.physical_links + m
    }

    /// Capacity of every channel, in bits per second.
    pub fn capacities(&self) -> &[f64] {
        &self.capacity
    }

    /// One-way unicast delay from member `a` to member `b`.
    pub fn unicast_delay(&self, a: usize, b: usize) -> Duration {
        Duration::from_micros(self.unicast_delay_micros(a, b))
    }

    /// One-way unicast delay in microseconds.
    pub fn unicast_delay_micros(&self, a: usize, b: usize) -> u64 {
        if a == b {
            return 0;
        }
        match &self.topology {
            Topology::Matrix(m) => {
                let (ra, rb) = (
                    self.hosts[a].matrix_row.unwrap_or(0),
                    self.hosts[b].matrix_row.unwrap_or(0),
                );
                duration_micros(m.one_way(ra, rb))
            }
            Topology::Physical(_) => {
                let core = self.trees[self.tree_of[a]]
                    .delay_micros(self.router(b))
                    .unwrap_or(u64::MAX / 4);
                self.link_delay[self.access_link(a)] + core + self.link_delay[self.access_link(b)]
            }
        }
    }

    /// Router hops between the routers of `a` and `b` (0 on a matrix).
    pub fn router_hops(&self, a: usize, b: usize) -> u32 {
        match &self.topology {
            Topology::Matrix(_) => 0,
            Topology::Physical(_) => self.trees[self.tree_of[a]]
                .hops(self.router(b))
                .unwrap_or(0),
        }
    }

    fn router(&self, m: usize) -> usize {
        self.hosts[m].router.unwrap_or(0)
    }

    /// Append the channels of the unicast path from `a` to `b` to `out`, in order.
    pub fn unicast_path(&self, a: usize, b: usize, out: &mut Vec<Channel>) {
        if a == b {
            return;
        }
        out.push(2 * self.access_link(a) as Channel);
        if let Topology::Physical(graph) = &self.topology {
            let start = out.len();
            self.trees[self.tree_of[a]].walk_back(graph, self.router(b), |link, from, _to| {
                let forward = graph.links()[link].a == from;
                out.push(2 * link as Channel + Channel::from(!forward));
            });
            out[start..].reverse();
        }
        out.push(2 * self.access_link(b) as Channel + 1);
    }

    /// Visit the links of IP multicast's tree from `source` to every other member (the source's
    /// shortest-path tree on the physical graph), each once.
    pub fn ip_multicast_links(&self, source: usize, mut visit: impl FnMut(usize)) {
        let mut seen = vec![false; self.links()];
        let mut path = Vec::new();
        for receiver in (0..self.members()).filter(|&r| r != source) {
            path.clear();
            self.unicast_path(source, receiver, &mut path);
            for &c in &path {
                let link = (c / 2) as usize;
                if !seen[link] {
                    seen[link] = true;
                    visit(link);
                }
            }
        }
    }

    /// The smallest capacity on the unicast path from `a` to `b`: what the path gives one flow
    /// alone (sequential unicast).
    pub fn path_capacity(&self, a: usize, b: usize) -> Bandwidth {
        let mut path = Vec::new();
        self.unicast_path(a, b, &mut path);
        let min = path
            .iter()
            .map(|&c| self.capacity[c as usize])
            .fold(f64::INFINITY, f64::min);
        Bandwidth::from_bps_f64(min)
    }

    /// Change the capacity of one channel (a congestion episode, a link repaired).
    pub fn set_channel_capacity(&mut self, channel: Channel, bandwidth: Bandwidth) {
        if let Some(c) = self.capacity.get_mut(channel as usize) {
            *c = bandwidth.bps_f64();
        }
    }

    /// Record the current flows and their rates, so measurements see a loaded network.
    pub fn set_load(&mut self, flows: &[FlowDemand], rates: &[f64]) {
        self.edge_rate.clear();
        self.incoming.clear();
        self.load.iter_mut().for_each(|l| *l = 0.0);
        self.flows_on.iter_mut().for_each(|n| *n = 0);
        for (flow, &rate) in flows.iter().zip(rates) {
            for &c in &flow.channels {
                self.load[c as usize] += rate;
                self.flows_on[c as usize] += 1;
            }
        }
    }

    /// Record the current overlay edges (member to member) and their rates, so measurements see
    /// a loaded network, and a member measuring a peer it already receives from sees the share
    /// its own flow holds rather than competing with itself.
    pub fn set_edge_load(&mut self, edges: &[(usize, usize)], rates: &[f64]) {
        let flows: Vec<FlowDemand> = edges
            .iter()
            .map(|&(a, b)| {
                let mut channels = Vec::new();
                self.unicast_path(a, b, &mut channels);
                FlowDemand {
                    channels,
                    demand: f64::INFINITY,
                }
            })
            .collect();
        self.set_load(&flows, rates);
        self.edge_rate = edges.iter().copied().zip(rates.iter().copied()).collect();
        for (&(from, to), &rate) in edges.iter().zip(rates) {
            self.incoming.entry(to).or_default().push((from, rate));
        }
    }

    /// Set the measurement noise: each bandwidth reading is multiplied by `exp(sigma · Z)`.
    pub fn set_noise(&mut self, sigma: f64) {
        self.noise = sigma.max(0.0);
    }

    /// The bandwidth a new flow from `a` to `b` would get: on each channel, the larger of the
    /// spare capacity and a fair share beside the flows already there; the smallest over the path.
    ///
    /// If an edge from `a` to `b` was recorded by [`Network::set_edge_load`], the flow is already
    /// there: it gets its own rate plus whatever spare capacity its path has. The flows `b`
    /// already receives over other recorded edges do not compete with the new one: the new flow
    /// would replace them (a node weighing a new parent asks what that parent's path offers it,
    /// and its own stream, which the move ends, is not a competitor; the model's flows are
    /// elastic, so counting it would halve every alternative near the node).
    pub fn available_bandwidth(&self, a: usize, b: usize) -> Bandwidth {
        let mut path = Vec::new();
        self.unicast_path(a, b, &mut path);
        let existing = self.edge_rate.get(&(a, b)).copied();
        let mut own: Vec<(Vec<Channel>, f64)> = Vec::new();
        if existing.is_none() {
            for &(from, rate) in self.incoming.get(&b).into_iter().flatten() {
                let mut channels = Vec::new();
                self.unicast_path(from, b, &mut channels);
                own.push((channels, rate));
            }
        }
        let available = path
            .iter()
            .map(|&c| {
                let (mut load, mut flows) = (self.load[c as usize], self.flows_on[c as usize]);
                for (channels, rate) in &own {
                    if channels.contains(&c) {
                        load -= rate;
                        flows = flows.saturating_sub(1);
                    }
                }
                let capacity = self.capacity[c as usize];
                let spare = (capacity - load).max(0.0);
                match existing {
                    Some(own) => spare + own,
                    None => spare.max(capacity / f64::from(flows + 1)),
                }
            })
            .fold(f64::INFINITY, f64::min);
        Bandwidth::from_bps_f64(available)
    }

    /// What member `a` measures of its path with `b`: the exact RTT, and the bandwidth from `b`
    /// to `a` (with the configured noise, capped at the probe's rate).
    pub fn measure(
        &self,
        a: usize,
        b: usize,
        request: MeasureRequest,
        rng: &mut ProtocolRng,
    ) -> LinkMetrics {
        let rtt = Duration::from_micros(
            self.unicast_delay_micros(a, b) + self.unicast_delay_micros(b, a),
        );
        match request {
            MeasureRequest::Rtt => LinkMetrics::rtt(rtt),
            MeasureRequest::Bandwidth { max_rate, .. } => {
                // Bandwidth is measured towards the asking member: data would flow b -> a.
                let truth = self
                    .available_bandwidth(b, a)
                    .bps_f64()
                    .min(max_rate.bps_f64());
                let noisy = if self.noise > 0.0 {
                    truth * (self.noise * standard_normal(rng)).exp()
                } else {
                    truth
                };
                LinkMetrics {
                    rtt: Some(rtt),
                    bandwidth: Some(Bandwidth::from_bps_f64(noisy.min(max_rate.bps_f64()))),
                    loss: None,
                }
            }
            MeasureRequest::Transfer { bytes } => {
                let rate = self.available_bandwidth(b, a).bps_f64();
                let took = transfer_time(bytes, rate, rtt);
                LinkMetrics {
                    rtt: Some(rtt),
                    bandwidth: Some(Bandwidth::from_bps_f64(
                        bytes as f64 * 8.0 / took.as_secs_f64().max(1e-9),
                    )),
                    loss: None,
                }
            }
        }
    }
}

/// How long fetching `bytes` over a path with `rate` (bits per second) and round trip `rtt`
/// takes: one round trip for the request, then a transport that starts with a 10-segment window
/// and doubles it every round trip (slow start) until the window carries the path's rate.
pub fn transfer_time(bytes: u64, rate: f64, rtt: Duration) -> Duration {
    const INITIAL_WINDOW: f64 = 10.0 * 1460.0;
    let rtt_s = rtt.as_secs_f64().max(1e-6);
    let rate_bytes = (rate / 8.0).max(1.0);
    let per_round = rate_bytes * rtt_s;
    let (mut left, mut window, mut took) = (bytes as f64, INITIAL_WINDOW, rtt_s);
    while left > 0.0 && window < per_round {
        let sent = window.min(left);
        left -= sent;
        took += if left > 0.0 { rtt_s } else { sent / rate_bytes };
        window *= 2.0;
    }
    took += left / rate_bytes;
    Duration::from_secs_f64(took)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology;

    fn waxman_network(members: usize) -> Network {
        let topo = topology::load("waxman:routers=200,links=600,seed=2").unwrap();
        Network::build(
            topo,
            members,
            &AccessSpec::parse("fixed:up=10mbps,down=20mbps").unwrap(),
            9,
        )
        .unwrap()
    }

    #[test]
    fn paths_start_at_the_upload_and_end_at_the_download() {
        let net = waxman_network(20);
        let mut path = Vec::new();
        net.unicast_path(3, 7, &mut path);
        assert_eq!(path[0], 2 * net.access_link(3) as Channel);
        assert_eq!(*path.last().unwrap(), 2 * net.access_link(7) as Channel + 1);
        // Consecutive physical channels share a router, and the delays add up.
        let graph = net.graph().unwrap();
        let mut at = net.hosts()[3].router.unwrap();
        let mut delay =
            net.link_delay_micros(net.access_link(3)) + net.link_delay_micros(net.access_link(7));
        for &c in &path[1..path.len() - 1] {
            let link = graph.links()[(c / 2) as usize];
            let (from, to) = if c % 2 == 0 {
                (link.a, link.b)
            } else {
                (link.b, link.a)
            };
            assert_eq!(from, at);
            at = to;
            delay += duration_micros(link.delay);
        }
        assert_eq!(at, net.hosts()[7].router.unwrap());
        assert_eq!(delay, net.unicast_delay_micros(3, 7));
        assert_eq!(
            net.unicast_delay_micros(3, 7),
            net.unicast_delay_micros(7, 3)
        );
        assert_eq!(net.path_capacity(3, 7), Bandwidth::from_mbps(10));
    }

    #[test]
    fn ip_multicast_visits_each_tree_link_once() {
        let net = waxman_network(30);
        let mut links = Vec::new();
        net.ip_multicast_links(0, |l| links.push(l));
        let unique: std::collections::BTreeSet<_> = links.iter().copied().collect();
        assert_eq!(unique.len(), links.len());
        // 29 downloads and one upload among them.
        assert_eq!(
            links.iter().filter(|&&l| l >= net.physical_links()).count(),
            30
        );
    }

    #[test]
    fn matrix_members_take_measured_delays() {
        let path = format!(
            "{}/../data/latency/wondernetwork-2018-242cities-rtt-ms.csv",
            env!("CARGO_MANIFEST_DIR")
        );
        let topo = topology::load(&format!("matrix:{path}")).unwrap();
        let net = Network::build(topo, 50, &AccessSpec::parse("fixed").unwrap(), 1).unwrap();
        let m = net.matrix().unwrap();
        let (ra, rb) = (
            net.hosts()[0].matrix_row.unwrap(),
            net.hosts()[1].matrix_row.unwrap(),
        );
        assert_eq!(net.unicast_delay(0, 1), m.one_way(ra, rb));
        let mut p = Vec::new();
        net.unicast_path(0, 1, &mut p);
        assert_eq!(p.len(), 2);
        assert!(!net.has_physical_links());
        let too_many = topology::load(&format!("matrix:{path}")).unwrap();
        let err =
            Network::build(too_many, 300, &AccessSpec::parse("fixed").unwrap(), 1).unwrap_err();
        assert!(err.to_string().contains("242 hosts"), "{err}");
    }

    #[test]
    fn backbone_placement_on_a_flat_map_fills_the_backbone_then_the_edge_with_router_sized_links() {
        let path = format!(
            "{}/../data/topology/topozoo-Geant2012.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let topo = topology::load(&format!("topohub:{path}")).unwrap();
        let graph = match &topo {
            Topology::Physical(g) => g.clone(),
            Topology::Matrix(_) => unreachable!(),
        };
        let backbone = graph.backbone_routers();
        assert_eq!(backbone.len(), 4, "a tenth of 37 routers, rounded up");
        let access = AccessSpec::parse("router:factor=2,delay=0.1ms").unwrap();
        let net = Network::build_placed(topo, 60, &access, 3, Placement::Backbone, 2).unwrap();
        for (i, host) in net.hosts().iter().enumerate() {
            let router = host.router.unwrap();
            if i < 2 {
                assert_eq!(router, backbone[0], "the two roots share the first router");
            } else if i <= backbone.len() {
                assert_eq!(
                    router,
                    backbone[i - 1],
                    "node {i} on the backbone, in order"
                );
            } else {
                assert!(!backbone.contains(&router), "node {i} at the edge");
            }
            let attached: u64 = graph
                .neighbours(router)
                .iter()
                .map(|&(_, l)| graph.links()[l].capacity.bps())
                .sum();
            assert_eq!(host.access.up.bps(), 2 * attached);
            assert_eq!(host.access.down, host.access.up);
        }
        let matrix = format!(
            "{}/../data/latency/wondernetwork-2018-242cities-rtt-ms.csv",
            env!("CARGO_MANIFEST_DIR")
        );
        let err = Network::build(
            topology::load(&format!("matrix:{matrix}")).unwrap(),
            5,
            &access,
            1,
        )
        .unwrap_err();
        assert!(err.to_string().contains("need a router map"), "{err}");
        let err = AccessSpec::parse("router:factor=0")
            .unwrap_err()
            .to_string();
        assert!(err.contains("factor must be in (0, 1000]"), "{err}");
    }

    #[test]
    fn available_bandwidth_sees_load_and_noise_is_seeded() {
        let mut net = waxman_network(10);
        let full = net.available_bandwidth(0, 1);
        assert_eq!(full, Bandwidth::from_mbps(10));
        let mut flow = FlowDemand {
            channels: Vec::new(),
            demand: f64::INFINITY,
        };
        net.unicast_path(0, 2, &mut flow.channels);
        net.set_load(std::slice::from_ref(&flow), &[10e6]);
        // Member 0's upload is full; a new flow would get half of it.
        assert_eq!(net.available_bandwidth(0, 1), Bandwidth::from_mbps(5));
        net.set_noise(0.2);
        let request = MeasureRequest::Bandwidth {
            max_rate: Bandwidth::from_mbps(100),
            duration: Duration::from_secs(1),
        };
        let a = net.measure(0, 1, request, &mut rng_from_seed(4));
        let b = net.measure(0, 1, request, &mut rng_from_seed(4));
        assert_eq!(a, b);
        assert_ne!(a.bandwidth, Some(Bandwidth::from_mbps(5)));
    }

    #[test]
    fn a_member_weighing_a_new_sender_does_not_compete_with_the_flow_it_would_replace() {
        // Links of 10 Mbit/s each way. Member 1 receives from 0 and member 2 from 3, each at
        // 10 Mbit/s: both downloads are full.
        let topo = topology::load("waxman:routers=200,links=600,seed=2").unwrap();
        let access = AccessSpec::parse("fixed:up=10mbps,down=10mbps").unwrap();
        let mut net = Network::build(topo, 10, &access, 9).unwrap();
        net.set_edge_load(&[(0, 1), (3, 2)], &[10e6, 10e6]);
        // The existing edge keeps its own rate.
        assert_eq!(net.available_bandwidth(0, 1), Bandwidth::from_mbps(10));
        // Member 2 weighing member 4: 4's idle upload and 2's whole download, not half of it
        // beside its own stream from 3, which the move would end.
        assert_eq!(net.available_bandwidth(4, 2), Bandwidth::from_mbps(10));
        // Member 1 weighing member 3, whose upload carries another member's flow: half of it.
        assert_eq!(net.available_bandwidth(3, 1), Bandwidth::from_mbps(5));
    }
}
