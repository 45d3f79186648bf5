//! A small deterministic driver for Overcast nodes: random per-message delays (so messages
//! between the same pair overtake each other), a bandwidth and RTT matrix drawn from a seed,
//! scheduled starts and crashes, and optionally forged certificates injected by an attacker.

#![allow(dead_code, unreachable_pub)]

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::time::Duration;

use overcast::certificate::SimulatedSignatures;
use overcast::{Command, Message, Overcast, OvercastConfig};
use overlay_core::rng::{ProtocolRng, rng_from_seed};
use overlay_core::{Bandwidth, LinkMetrics, MeasureRequest, NodeId, Output, Protocol, Time};
use rand::RngExt;

/// The group secret of the simulated signatures.
pub const SECRET: u64 = 0x0ca5;

enum Input {
    Deliver { from: usize, msg: Message },
    Measured { peer: usize, metrics: LinkMetrics },
    Start,
    Crash,
}

/// The lab.
pub struct Lab {
    pub nodes: Vec<Option<Overcast>>,
    pub crashed: Vec<bool>,
    index: BTreeMap<NodeId, usize>,
    queue: BinaryHeap<Reverse<(Time, u64, usize)>>,
    inputs: BTreeMap<u64, Input>,
    next: u64,
    pub now: Time,
    rng: ProtocolRng,
    /// Bits per second from `j` to `i` is `bandwidth[i][j]`.
    bandwidth: Vec<Vec<f64>>,
    delay: Vec<Vec<Duration>>,
    /// Up to this much extra delay per message, drawn afresh each time (reordering).
    pub jitter: Duration,
    pub processed: u64,
}

pub fn id(i: usize) -> NodeId {
    NodeId::from_index(i as u64)
}

impl Lab {
    /// `n` nodes, the first `roots` of them the linear roots.
    pub fn new(n: usize, roots: usize, seed: u64, jitter: Duration) -> Self {
        Self::with_config(n, roots, seed, jitter, |_| {})
    }

    /// As [`Lab::new`], with the nodes' settings changed by `tweak`.
    pub fn with_config(
        n: usize,
        roots: usize,
        seed: u64,
        jitter: Duration,
        tweak: impl Fn(&mut OvercastConfig),
    ) -> Self {
        let mut rng = rng_from_seed(seed);
        let pos: Vec<(f64, f64)> = (0..n).map(|_| (rng.random(), rng.random())).collect();
        let up: Vec<f64> = (0..n)
            .map(|_| 1e6 * f64::from(rng.random_range(1..100u32)))
            .collect();
        let delay: Vec<Vec<Duration>> = (0..n)
            .map(|i| {
                (0..n)
                    .map(|j| {
                        let d =
                            ((pos[i].0 - pos[j].0).powi(2) + (pos[i].1 - pos[j].1).powi(2)).sqrt();
                        Duration::from_micros(1000 + (d * 40_000.0) as u64)
                    })
                    .collect()
            })
            .collect();
        let bandwidth: Vec<Vec<f64>> = (0..n)
            .map(|i| {
                (0..n)
                    .map(|j| up[j].min(up[i]) / (1.0 + delay[i][j].as_secs_f64() * 10.0))
                    .collect()
            })
            .collect();
        let config = OvercastConfig {
            roots: (0..roots).map(id).collect(),
            reevaluate_interval: Duration::from_secs(5),
            ..OvercastConfig::default()
        };
        let mut config = config;
        tweak(&mut config);
        let nodes = (0..n)
            .map(|i| {
                let c = OvercastConfig {
                    seed: seed ^ (i as u64) << 8,
                    ..config.clone()
                };
                Some(Overcast::new(
                    id(i),
                    c,
                    Box::new(SimulatedSignatures::new(SECRET, id(i))),
                    Box::new(SimulatedSignatures::new(SECRET, id(i))),
                ))
            })
            .collect();
        Self {
            nodes,
            crashed: vec![false; n],
            index: (0..n).map(|i| (id(i), i)).collect(),
            queue: BinaryHeap::new(),
            inputs: BTreeMap::new(),
            next: 0,
            now: Time::ZERO,
            rng,
            bandwidth,
            delay,
            jitter,
            processed: 0,
        }
    }

    fn push(&mut self, at: Time, node: usize, input: Input) {
        let k = self.next;
        self.next += 1;
        self.inputs.insert(k, input);
        self.queue.push(Reverse((at, k, node)));
    }

    pub fn start(&mut self, at: Time, node: usize) {
        self.push(at, node, Input::Start);
    }

    pub fn crash(&mut self, at: Time, node: usize) {
        self.push(at, node, Input::Crash);
    }

    /// Send `msg` to `to` as if from `from` (an attacker may claim to be anyone).
    pub fn inject(&mut self, at: Time, from: usize, to: usize, msg: Message) {
        self.push(at, to, Input::Deliver { from, msg });
    }

    pub fn is_live(&self, i: usize) -> bool {
        !self.crashed[i] && self.nodes[i].is_some()
    }

    pub fn node(&self, i: usize) -> &Overcast {
        self.nodes[i].as_ref().expect("live node")
    }

    pub fn index_of(&self, id: &NodeId) -> usize {
        self.index[id]
    }

    fn drain(&mut self, i: usize) {
        loop {
            let Some(out) = self.nodes[i].as_mut().and_then(Overcast::poll_output) else {
                break;
            };
            match out {
                Output::Send { to, msg } => {
                    let Some(&j) = self.index.get(&to) else {
                        continue;
                    };
                    let extra = if self.jitter.is_zero() {
                        Duration::ZERO
                    } else {
                        self.jitter.mul_f64(self.rng.random::<f64>())
                    };
                    let at = self.now + self.delay[i][j] + extra;
                    self.push(at, j, Input::Deliver { from: i, msg });
                }
                Output::Measure { peer, request } => {
                    let Some(&j) = self.index.get(&peer) else {
                        continue;
                    };
                    if self.crashed[j] {
                        continue;
                    }
                    let rtt = self.delay[i][j] * 2;
                    let bw = self.bandwidth[i][j];
                    let took = match request {
                        MeasureRequest::Bandwidth { duration, .. } => duration + rtt,
                        _ => rtt,
                    };
                    let metrics = LinkMetrics {
                        rtt: Some(rtt),
                        bandwidth: Some(Bandwidth::from_bps_f64(bw)),
                        loss: None,
                    };
                    self.push(self.now + took, i, Input::Measured { peer: j, metrics });
                }
                Output::Emit(_) | Output::Connect { .. } | Output::Disconnect { .. } => {}
            }
        }
    }

    /// Run until `until`.
    pub fn run_until(&mut self, until: Time) {
        loop {
            let next_input = self.queue.peek().map(|Reverse((t, _, _))| *t);
            let next_timer = (0..self.nodes.len())
                .filter(|&i| self.is_live(i))
                .filter_map(|i| self.node(i).poll_timeout().map(|t| (t, i)))
                .min();
            let timer_first = match (next_input, next_timer) {
                (Some(a), Some((b, _))) => b < a,
                (None, Some(_)) => true,
                _ => false,
            };
            if timer_first {
                let (t, i) = next_timer.expect("a timer");
                if t > until {
                    break;
                }
                self.now = self.now.max(t);
                if let Some(node) = self.nodes[i].as_mut() {
                    node.handle_timeout(self.now);
                }
                self.processed += 1;
                self.drain(i);
                continue;
            }
            let Some(Reverse((t, k, i))) = self.queue.peek().copied() else {
                break;
            };
            if t > until {
                break;
            }
            self.queue.pop();
            self.now = self.now.max(t);
            let input = self.inputs.remove(&k).expect("queued input");
            if self.crashed[i] {
                continue;
            }
            self.processed += 1;
            let now = self.now;
            match input {
                Input::Crash => {
                    self.crashed[i] = true;
                    continue;
                }
                Input::Start => {
                    if let Some(n) = self.nodes[i].as_mut() {
                        n.handle_command(now, Command::Start);
                    }
                }
                Input::Deliver { from, msg } => {
                    if let Some(n) = self.nodes[i].as_mut() {
                        n.handle_message(now, id(from), msg);
                    }
                }
                Input::Measured { peer, metrics } => {
                    if let Some(n) = self.nodes[i].as_mut() {
                        n.handle_measurement(now, id(peer), metrics);
                    }
                }
            }
            self.drain(i);
        }
        self.now = self.now.max(until);
    }

    /// The live node that is the root (the top live chain root), if exactly one claims it.
    pub fn roots(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.is_live(i) && self.node(i).is_root())
            .collect()
    }

    /// Check the tree: one root, every live node reaches it by parents without a cycle, and
    /// parents list their children. Returns what is wrong.
    pub fn tree_problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let roots = self.roots();
        if roots.len() != 1 {
            problems.push(format!("roots: {roots:?}"));
            return problems;
        }
        let root = roots[0];
        for i in (0..self.nodes.len()).filter(|&i| self.is_live(i) && i != root) {
            let mut at = i;
            let mut steps = 0;
            while at != root {
                let Some(p) = self.node(at).parent() else {
                    problems.push(format!("{i}: {at} has no parent"));
                    break;
                };
                let p = self.index_of(&p);
                if !self.is_live(p) {
                    problems.push(format!("{i}: {at}'s parent {p} is dead"));
                    break;
                }
                if !self.node(p).children().any(|c| *c == id(at)) {
                    problems.push(format!("{i}: {p} does not list {at} as a child"));
                    break;
                }
                at = p;
                steps += 1;
                if steps > self.nodes.len() {
                    problems.push(format!("{i}: cycle"));
                    break;
                }
            }
        }
        problems
    }

    /// How the root's table differs from the live nodes: (missing, extra).
    pub fn root_table_diff(&self) -> (Vec<usize>, Vec<usize>) {
        let Some(&root) = self.roots().first() else {
            return (Vec::new(), Vec::new());
        };
        let table = self.node(root).table();
        let missing = (0..self.nodes.len())
            .filter(|&i| i != root && self.is_live(i) && table.via(&id(i)).is_none())
            .collect();
        let extra = table
            .live()
            .map(|(n, _)| self.index_of(n))
            .filter(|&i| !self.is_live(i))
            .collect();
        (missing, extra)
    }
}
