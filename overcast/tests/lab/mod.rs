//! Overcast nodes on the project's simulator (`overlay_core::sim`): a bandwidth and delay
//! matrix drawn from a seed, random per-message jitter (so messages between the same pair
//! overtake each other), scheduled starts and crashes, and forged certificates injected by an
//! attacker.

#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use overcast::certificate::SimulatedSignatures;
use overcast::{Command, Message, Overcast, OvercastConfig};
use overlay_core::rng::rng_from_seed;
use overlay_core::sim::{MatrixPaths, SimConfig, Simulator};
use overlay_core::{Bandwidth, NodeId, Time};
use rand::RngExt;

/// The group secret of the simulated signatures.
pub const SECRET: u64 = 0x0ca5;

/// The lab.
pub struct Lab {
    pub sim: Simulator<Overcast, MatrixPaths>,
    /// The time the lab last ran to.
    pub now: Time,
}

pub fn id(i: usize) -> NodeId {
    Simulator::<Overcast, MatrixPaths>::member_id(i)
}

/// `s` seconds into the run.
pub fn secs(s: f64) -> Time {
    Time::ZERO + Duration::from_secs_f64(s)
}

impl Lab {
    /// `n` nodes, the first `roots` of them the linear roots.
    pub fn new(n: usize, roots: usize, seed: u64, jitter: Duration) -> Self {
        Self::with_config(n, roots, seed, jitter, |_| {})
    }

    /// Twelve nodes under one root (seed 4, no jitter), started 200 ms apart, with a stream
    /// of 20 chunks a second from 2 s to 60 s and no re-evaluation; `tweak` changes the rest.
    pub fn streaming(tweak: impl Fn(&mut OvercastConfig)) -> Self {
        let mut lab = Self::with_config(12, 1, 4, Duration::ZERO, |c| {
            c.reevaluate_interval = Duration::from_secs(1000);
            tweak(c);
        });
        for i in 0..12 {
            lab.start(secs(0.2 * i as f64), i);
        }
        lab.publish(0, secs(2.0), secs(60.0), Duration::from_millis(50), 1000);
        lab
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
        let bandwidth: Vec<Vec<Bandwidth>> = (0..n)
            .map(|i| {
                (0..n)
                    .map(|j| {
                        Bandwidth::from_bps_f64(
                            up[j].min(up[i]) / (1.0 + delay[i][j].as_secs_f64() * 10.0),
                        )
                    })
                    .collect()
            })
            .collect();
        let mut config = OvercastConfig {
            roots: (0..roots).map(id).collect(),
            reevaluate_interval: Duration::from_secs(5),
            ..OvercastConfig::default()
        };
        tweak(&mut config);
        let mut sim = Simulator::new(
            MatrixPaths { delay, bandwidth },
            SimConfig {
                seed,
                ..SimConfig::default()
            },
        );
        sim.set_jitter(jitter);
        for i in 0..n {
            let c = OvercastConfig {
                seed: seed ^ (i as u64) << 8,
                ..config.clone()
            };
            sim.add_member(
                i,
                Overcast::new(
                    id(i),
                    c,
                    Box::new(SimulatedSignatures::new(SECRET, id(i))),
                    Box::new(SimulatedSignatures::new(SECRET, id(i))),
                ),
            );
        }
        Self {
            sim,
            now: Time::ZERO,
        }
    }

    pub fn start(&mut self, at: Time, node: usize) {
        self.sim.schedule_command(at, node, Command::Start);
    }

    /// Feed root `root` a stream of `chunk` bytes every `every`, from `from` until before
    /// `until`.
    pub fn publish(&mut self, root: usize, from: Time, until: Time, every: Duration, chunk: usize) {
        let mut at = from;
        let mut offset = 0u64;
        while at < until {
            let bytes = bytes::Bytes::from(vec![(offset % 251) as u8; chunk]);
            self.sim
                .schedule_command(at, root, Command::Publish { offset, bytes });
            offset += chunk as u64;
            at += every;
        }
    }

    pub fn crash(&mut self, at: Time, node: usize) {
        self.sim.schedule_crash(at, node);
    }

    /// Send `msg` to `to` as if from `from` (an attacker may claim to be anyone).
    pub fn inject(&mut self, at: Time, from: usize, to: usize, msg: Message) {
        self.sim.inject(at, id(from), to, msg);
    }

    pub fn is_live(&self, i: usize) -> bool {
        self.sim.is_alive(i)
    }

    pub fn node(&self, i: usize) -> &Overcast {
        self.sim.member(i).expect("live node")
    }

    pub fn index_of(&self, id: &NodeId) -> usize {
        (0..self.size())
            .find(|&i| self::id(i) == *id)
            .expect("a lab node")
    }

    /// Run until `until`.
    pub fn run_until(&mut self, until: Time) {
        self.sim.run_until(until);
        self.now = self.sim.now();
    }

    /// Nodes in the lab, live or not.
    pub fn size(&self) -> usize {
        self.sim.network().delay.len()
    }

    /// The live node that is the root (the top live chain root), if exactly one claims it.
    pub fn roots(&self) -> Vec<usize> {
        (0..self.size())
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
        for i in (0..self.size()).filter(|&i| self.is_live(i) && i != root) {
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
                if steps > self.size() {
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
        let missing = (0..self.size())
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
