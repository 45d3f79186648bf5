//! The policies that need no protocol: `random`, `nearest` (lowest round trip) and `oracle`
//! (the true best at each request, from the servers' real queues), replayed on the world's
//! requests; and what every replay records.

use overlay_core::rng::{ProtocolRng, derive_seed, rng_from_seed};
use rand::RngExt;

use super::world::{ServerQueue, World, response_time};

/// What one replay recorded.
#[derive(Debug, Default)]
pub(super) struct Replay {
    /// Each request's response time, seconds, in request order.
    pub(super) rts: Vec<f64>,
    /// Each request's time at the server (queueing and service), seconds.
    pub(super) delays: Vec<f64>,
    /// Requests per second each server took, each minute.
    pub(super) per_minute: Vec<Vec<f64>>,
    /// Messages the selection cost (pushes, probes and their replies, queries and answers).
    pub(super) overhead: u64,
    /// Requests whose resolution failed (served by a random server instead).
    pub(super) failed: u64,
}

impl Replay {
    /// An empty record for `world`, request slots filled as requests finish.
    pub(super) fn new(world: &World) -> Self {
        Self {
            rts: vec![f64::NAN; world.requests.len()],
            delays: vec![f64::NAN; world.requests.len()],
            per_minute: vec![vec![0.0; world.capacity.len()]; world.background[0].len()],
            overhead: 0,
            failed: 0,
        }
    }

    /// Request `i` of `world`, made at `t` by `client`, was served by `server` with `delay`
    /// at the server.
    pub(super) fn record(&mut self, world: &World, i: usize, t: f64, server: usize, delay: f64) {
        let client = world.requests[i].1;
        self.rts[i] = response_time(world.rtt[client][world.server_host(server)], delay);
        self.delays[i] = delay;
        self.per_minute[world.minute(t)][server] += 1.0 / 60.0;
    }

    /// The busiest server's share of all requests.
    pub(super) fn busiest_share(&self) -> f64 {
        let k = self.per_minute.first().map_or(0, Vec::len);
        let totals: Vec<f64> = (0..k)
            .map(|s| self.per_minute.iter().map(|m| m[s]).sum::<f64>())
            .collect();
        let all: f64 = totals.iter().sum();
        totals.iter().fold(0.0f64, |a, &b| a.max(b)) / all.max(1e-9)
    }
}

/// A policy that needs no protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Baseline {
    /// A uniformly random server.
    Random,
    /// The lowest round trip.
    Nearest,
    /// The lowest response time at the moment of the request, from the real queues.
    Oracle,
    /// The lowest response time from the queues as they were at the last snapshot, taken
    /// every this many milliseconds (the best any resolver informed that often could do by
    /// always taking the best).
    StaleOracle(u64),
    /// Each request to a random server, drawn by the capacity each has beyond its background
    /// at the moment (a static split that keeps every server equally busy).
    Headroom,
}

/// The server of `0..k` with the lowest `rt` (the first on ties; 0 for none).
fn fastest(k: usize, mut rt: impl FnMut(usize) -> f64) -> usize {
    (0..k)
        .map(|s| (s, rt(s)))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map_or(0, |(s, _)| s)
}

/// Replay `world`'s requests with `policy`.
pub(super) fn replay(world: &World, policy: Baseline, seed: u64) -> Replay {
    let k = world.capacity.len();
    let mut servers: Vec<ServerQueue> = (0..k)
        .map(|s| ServerQueue::new(world.capacity[s], world.background[s][0]))
        .collect();
    let mut rng: ProtocolRng = rng_from_seed(derive_seed(seed, 0xc40));
    let mut out = Replay::new(world);
    let mut next_tick = 1.0;
    let mut snapshot: Vec<f64> = vec![0.0; k];
    let mut next_snapshot = 0.0;
    for (i, &(t, client)) in world.requests.iter().enumerate() {
        if let Baseline::StaleOracle(every_ms) = policy {
            while next_snapshot <= t {
                for (s, server) in servers.iter_mut().enumerate() {
                    snapshot[s] = server.delay(next_snapshot);
                }
                next_snapshot += every_ms as f64 / 1000.0;
            }
        }
        while next_tick <= t {
            let minute = world.minute(next_tick);
            for (s, server) in servers.iter_mut().enumerate() {
                server.tick(next_tick, world.background[s][minute]);
            }
            next_tick += 1.0;
        }
        let rtt = |s: usize| world.rtt[client][world.server_host(s)];
        let chosen = match policy {
            Baseline::Random => rng.random_range(0..k),
            Baseline::Nearest => (0..k)
                .min_by(|&a, &b| rtt(a).total_cmp(&rtt(b)))
                .unwrap_or(0),
            Baseline::Oracle => fastest(k, |s| response_time(rtt(s), servers[s].delay(t))),
            Baseline::StaleOracle(_) => fastest(k, |s| response_time(rtt(s), snapshot[s])),
            Baseline::Headroom => {
                let room: Vec<f64> = servers
                    .iter()
                    .map(|q| (q.capacity - q.background).max(0.0))
                    .collect();
                let mut x = rng.random_range(0.0..room.iter().sum::<f64>().max(1e-9));
                room.iter()
                    .position(|&w| {
                        x -= w;
                        x < 0.0
                    })
                    .unwrap_or(k - 1)
            }
        };
        let d = servers[chosen].serve(t);
        out.record(world, i, t, chosen, d);
    }
    out
}
