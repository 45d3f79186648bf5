//! An Overcast network in the simulator: nodes joining, a source feeding whichever chain root
//! leads, the bandwidth model kept loaded with the tree's own flows (so measurements see the
//! shares the tree leaves), and the figures the Overcast scenarios report.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bytes::Bytes;
use overcast::certificate::SimulatedSignatures;
use overcast::{Command, Event, Overcast, OvercastConfig, OvercastStats};
use overlay_core::{NodeId, Time};

use crate::network::Network;
use crate::sim::{SimConfig, Simulator};
use crate::tree::{self, DeliveryTree};

/// How often the tree's flows are pushed into the bandwidth model.
const LOAD_REFRESH: Duration = Duration::from_secs(1);

/// The byte at `offset` of the stream: a pattern every node's copy can be checked against.
pub fn stream_byte(offset: u64) -> u8 {
    let x = offset.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (x >> 56) as u8 ^ (offset as u8)
}

fn stream_bytes(from: u64, to: u64) -> Bytes {
    (from..to).map(stream_byte).collect::<Vec<u8>>().into()
}

/// What the nodes reported.
#[derive(Debug, Clone, Default)]
pub struct OvercastLog {
    /// When each member was told to start.
    pub started_at: Vec<Option<Time>>,
    /// Each member's first attachment: when, and after how many search rounds.
    pub first_attach: Vec<Option<(Time, u32)>>,
    /// Every attachment after the first: `(time, member, was a re-evaluation move)`.
    pub reattach: Vec<(Time, usize, bool)>,
    /// Parents lost: `(time, member)`.
    pub parent_lost: Vec<(Time, usize)>,
    /// Members that became root, and when.
    pub became_root: Vec<(Time, usize)>,
}

/// A simulated Overcast network.
#[derive(Debug)]
pub struct OvercastGroup {
    /// The simulator.
    pub sim: Simulator<Overcast, Network>,
    ids: BTreeMap<NodeId, usize>,
    /// The linear roots, top first (member indices).
    pub roots: Vec<usize>,
    /// What the nodes reported.
    pub log: OvercastLog,
    /// Stream bytes published so far.
    pub published: u64,
    /// Stream rate (bits per second; 0 for none).
    stream_rate: f64,
    stream_until: Time,
    /// The settings every member started from.
    pub config: OvercastConfig,
    last_parents: Vec<Option<usize>>,
    next_refresh: Time,
}

impl OvercastGroup {
    /// Every host of `net` becomes a node; members `0..roots` are the linear roots, top first.
    pub fn new(net: Network, base: &OvercastConfig, roots: usize, seed: u64) -> Self {
        let n = net.members();
        let roots: Vec<usize> = (0..roots.clamp(1, n)).collect();
        let config = OvercastConfig {
            roots: roots
                .iter()
                .map(|&r| Simulator::<Overcast, Network>::member_id(r))
                .collect(),
            ..base.clone()
        };
        let mut sim = Simulator::new(
            net,
            SimConfig {
                seed,
                ..SimConfig::default()
            },
        );
        let secret = overlay_core::rng::derive_seed(seed, 0x0c_a5);
        let mut ids = BTreeMap::new();
        for i in 0..n {
            let id = Simulator::<Overcast, Network>::member_id(i);
            let member = OvercastConfig {
                seed: sim.member_seed(i),
                ..config.clone()
            };
            sim.add_member(
                i,
                Overcast::new(
                    id,
                    member,
                    Box::new(SimulatedSignatures::new(secret, id)),
                    Box::new(SimulatedSignatures::new(secret, id)),
                ),
            );
            ids.insert(id, i);
        }
        Self {
            sim,
            ids,
            roots,
            log: OvercastLog {
                started_at: vec![None; n],
                first_attach: vec![None; n],
                ..OvercastLog::default()
            },
            published: 0,
            stream_rate: 0.0,
            stream_until: Time::ZERO,
            config,
            last_parents: Vec::new(),
            next_refresh: Time::ZERO,
        }
    }

    /// Members in the network.
    pub fn members(&self) -> usize {
        self.sim.network().members()
    }

    /// Start member `m` at `at`.
    pub fn start(&mut self, m: usize, at: Time) {
        self.log.started_at[m] = Some(at);
        self.sim.schedule_command(at, m, Command::Start);
    }

    /// Feed the stream at `rate` bits per second until `until`.
    pub fn stream(&mut self, rate: f64, until: Time) {
        self.stream_rate = rate;
        self.stream_until = until;
    }

    /// Whether member `m` is alive (not crashed).
    pub fn is_alive(&self, m: usize) -> bool {
        self.sim.is_alive(m)
    }

    /// Member `m`'s node.
    pub fn node(&self, m: usize) -> Option<&Overcast> {
        self.sim.member(m).filter(|_| self.sim.is_alive(m))
    }

    /// The member index of `id`.
    pub fn index_of(&self, id: &NodeId) -> Option<usize> {
        self.ids.get(id).copied()
    }

    /// The live node acting as root (the highest chain root that claims it).
    pub fn root(&self) -> Option<usize> {
        self.roots
            .iter()
            .copied()
            .find(|&r| self.node(r).is_some_and(Overcast::is_root))
    }

    /// Each live member's parent, if the parent is alive too.
    pub fn parents(&self) -> Vec<Option<usize>> {
        (0..self.members())
            .map(|m| {
                let parent = self.node(m)?.parent()?;
                self.index_of(&parent).filter(|&p| self.is_alive(p))
            })
            .collect()
    }

    /// The tree as the nodes' parent pointers say, from the root (`None` while they disagree
    /// so much that there is a loop).
    pub fn tree(&self) -> Option<DeliveryTree> {
        let root = self.root()?;
        let mut parents = self.parents();
        parents[root] = None;
        DeliveryTree::new(root, parents).ok()
    }

    /// Crash member `m` now.
    pub fn crash(&mut self, m: usize) {
        self.sim.crash(m);
    }

    /// Run to `until`, feeding the stream and keeping the bandwidth model loaded.
    pub fn run_until(&mut self, until: Time) {
        let tick = Duration::from_millis(100);
        while self.sim.now() < until {
            let next = (self.sim.now() + tick).min(until);
            self.feed(next);
            self.sim.run_until(next);
            self.drain();
            if self.sim.now() >= self.next_refresh {
                self.refresh_load();
                self.next_refresh = self.sim.now() + LOAD_REFRESH;
            }
        }
    }

    fn feed(&mut self, next: Time) {
        if self.stream_rate <= 0.0 || self.sim.now() >= self.stream_until {
            return;
        }
        let Some(root) = self.root() else {
            return;
        };
        let target = (next.as_secs_f64() * self.stream_rate / 8.0) as u64;
        self.published = self.published.max(target);
        // Resume from what the root holds (a standby root that took over may lack the tail).
        let from = self.node(root).map_or(0, Overcast::content_end);
        if from < self.published {
            let bytes = stream_bytes(from, self.published);
            self.sim.schedule_command(
                self.sim.now(),
                root,
                Command::Publish {
                    offset: from,
                    bytes,
                },
            );
        }
    }

    fn drain(&mut self) {
        for e in self.sim.take_events() {
            match e.event {
                Event::Attached { rounds, moved, .. } => {
                    if self.log.first_attach[e.member].is_none() {
                        self.log.first_attach[e.member] = Some((e.at, rounds));
                    } else {
                        self.log.reattach.push((e.at, e.member, moved));
                    }
                }
                Event::ParentLost { .. } => self.log.parent_lost.push((e.at, e.member)),
                Event::BecameRoot => self.log.became_root.push((e.at, e.member)),
            }
        }
    }

    /// Push the tree's elastic flows into the bandwidth model, when the tree changed.
    fn refresh_load(&mut self) {
        let parents = self.parents();
        if parents == self.last_parents {
            return;
        }
        self.last_parents.clone_from(&parents);
        let Some(tree) = self.tree() else {
            return;
        };
        let rates = tree::receiver_rates(self.sim.network(), &tree, f64::INFINITY);
        let (mut edges, mut edge_rates) = (Vec::new(), Vec::new());
        for &m in &tree.order()[1..] {
            if let (Some(p), Some(rate)) = (tree.parent(m), rates[m]) {
                edges.push((p, m));
                edge_rates.push(rate);
            }
        }
        self.sim.network_mut().set_edge_load(&edges, &edge_rates);
    }

    /// Sum of achieved over possible bandwidth from the root: each live node's elastic rate down
    /// the tree against the capacity of its own path from the root.
    pub fn bandwidth_fraction(&self) -> Option<f64> {
        let tree = self.tree()?;
        let root = tree.source();
        let rates = tree::receiver_rates(self.sim.network(), &tree, f64::INFINITY);
        let (mut achieved, mut possible) = (0.0, 0.0);
        for m in (0..self.members()).filter(|&m| m != root && self.is_alive(m)) {
            achieved += rates[m].unwrap_or(0.0);
            possible += self.sim.network().path_capacity(root, m).bps_f64();
        }
        (possible > 0.0).then(|| achieved / possible)
    }

    /// The mean over live nodes of each one's achieved over possible bandwidth from the root
    /// (every node weighs the same, where [`OvercastGroup::bandwidth_fraction`] weighs nodes
    /// by the bandwidth they could have).
    pub fn bandwidth_fraction_node_mean(&self) -> Option<f64> {
        let ratios = self.node_fractions();
        (!ratios.is_empty()).then(|| ratios.iter().map(|r| r.1).sum::<f64>() / ratios.len() as f64)
    }

    /// Each live node's possible bandwidth from the root (bits per second) and the fraction of
    /// it the tree gives.
    fn node_fractions(&self) -> Vec<(f64, f64)> {
        let Some(tree) = self.tree() else {
            return Vec::new();
        };
        let root = tree.source();
        let rates = tree::receiver_rates(self.sim.network(), &tree, f64::INFINITY);
        (0..self.members())
            .filter(|&m| m != root && self.is_alive(m))
            .map(|m| {
                let possible = self.sim.network().path_capacity(root, m).bps_f64();
                (possible, rates[m].unwrap_or(0.0) / possible.max(1e-9))
            })
            .collect()
    }

    /// Nodes grouped by their possible bandwidth from the root: (possible, how many, mean
    /// fraction achieved), smallest possible first.
    pub fn fraction_by_possible(&self) -> Vec<(f64, usize, f64)> {
        let mut classes: BTreeMap<u64, (usize, f64)> = BTreeMap::new();
        for (possible, fraction) in self.node_fractions() {
            let class = classes.entry(possible.round() as u64).or_default();
            class.0 += 1;
            class.1 += fraction;
        }
        classes
            .into_iter()
            .map(|(possible, (n, sum))| (possible as f64, n, sum / n as f64))
            .collect()
    }

    /// Link traversals of one byte down the tree over IP multicast's (each link of the root's
    /// shortest-path tree once), counting router-to-router links only, as the paper's nodes sat
    /// at routers. [`OvercastGroup::network_load_ratio_with_access`] counts host links too.
    pub fn network_load_ratio(&self) -> Option<f64> {
        self.load_ratio(false)
    }

    /// As [`OvercastGroup::network_load_ratio`], counting each node's own link as well (a
    /// parent's uplink carries one copy per child; IP multicast crosses it once).
    pub fn network_load_ratio_with_access(&self) -> Option<f64> {
        self.load_ratio(true)
    }

    fn load_ratio(&self, access: bool) -> Option<f64> {
        let tree = self.tree()?;
        let net = self.sim.network();
        let root = tree.source();
        let mut path = Vec::new();
        // The first and last channel of a unicast path are the hosts' own links.
        let trim = |path: &[u32]| -> std::ops::Range<usize> {
            if access || path.len() < 2 {
                0..path.len()
            } else {
                1..path.len() - 1
            }
        };
        let mut overlay = 0usize;
        for &m in &tree.order()[1..] {
            path.clear();
            net.unicast_path(tree.parent(m)?, m, &mut path);
            overlay += trim(&path).len();
        }
        let mut multicast: BTreeSet<u32> = BTreeSet::new();
        for m in (0..self.members()).filter(|&m| m != root && self.is_alive(m)) {
            path.clear();
            net.unicast_path(root, m, &mut path);
            multicast.extend(path[trim(&path)].iter().map(|c| c / 2));
        }
        (!multicast.is_empty()).then(|| overlay as f64 / multicast.len() as f64)
    }

    /// How the root's table differs from the live nodes: (live but missing, listed but dead).
    pub fn root_table_diff(&self) -> (Vec<usize>, Vec<usize>) {
        let Some(root) = self.root() else {
            return (
                (0..self.members()).filter(|&m| self.is_alive(m)).collect(),
                Vec::new(),
            );
        };
        let Some(node) = self.node(root) else {
            return (Vec::new(), Vec::new());
        };
        let table = node.table();
        let missing = (0..self.members())
            .filter(|&m| m != root && self.is_alive(m))
            .filter(|&m| {
                table
                    .via(&Simulator::<Overcast, Network>::member_id(m))
                    .is_none()
            })
            .collect();
        let dead = table
            .live()
            .filter_map(|(id, _)| self.index_of(id))
            .filter(|&m| !self.is_alive(m))
            .collect();
        (missing, dead)
    }

    /// Membership certificates the root has received so far (births and deaths, quashed or not).
    pub fn root_certificates(&self) -> u64 {
        self.root()
            .and_then(|r| self.node(r))
            .map_or(0, |n| n.stats().membership_certificates_in)
    }

    /// One of the nodes' counters, summed over the nodes still running (what failed nodes
    /// counted went with them).
    pub fn counter_sum(&self, counter: impl Fn(&OvercastStats) -> u64) -> u64 {
        (0..self.members())
            .filter_map(|m| self.node(m))
            .map(|n| counter(&n.stats()))
            .sum()
    }

    /// Stream bytes missing at live members (published but not held), and bytes that differ
    /// from the stream in the copies of `check` members (every byte compared).
    pub fn bytes_lost(&self, check: &[usize]) -> (u64, u64) {
        let mut missing = 0;
        for m in (0..self.members()).filter(|&m| self.is_alive(m)) {
            let end = self.node(m).map_or(0, Overcast::content_end);
            missing += self.published.saturating_sub(end);
        }
        let mut corrupt = 0;
        for &m in check {
            let Some(node) = self.node(m) else {
                continue;
            };
            for (offset, chunk) in node.content_from(0) {
                corrupt += chunk
                    .iter()
                    .zip(offset..)
                    .filter(|&(&b, o)| b != stream_byte(o))
                    .count() as u64;
            }
        }
        (missing, corrupt)
    }
}
