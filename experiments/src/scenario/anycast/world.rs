//! The anycast scenario's fixed world: hosts and their round trips, each server's capacity and
//! background load, and the clients' requests; and the server model every policy is replayed
//! against (a FIFO queue: a request adds `1/capacity` seconds of work, the background adds work
//! at its own rate).

use rand::RngExt;

use overlay_core::rng::{derive_seed, rng_from_seed};

use super::AnycastArgs;
use crate::network::Network;
use crate::stats::Distribution;

/// Seconds to move the object once the first byte left.
const OBJECT_TRANSFER_S: f64 = 0.01;

/// A response: the connection's and the request's round trips, the time at the server, the
/// object's transfer.
pub(super) fn response_time(rtt: f64, delay: f64) -> f64 {
    2.0 * rtt + delay + OBJECT_TRANSFER_S
}

/// Mean and standard deviation (0 for none).
pub(super) fn mean_std(xs: &[f64]) -> (f64, f64) {
    let d = Distribution::new(xs.to_vec());
    (d.mean().unwrap_or(0.0), d.std_dev().unwrap_or(0.0))
}

/// The scenario's fixed world.
#[derive(Debug)]
pub(super) struct World {
    /// Clients: hosts `0..clients`; server `s` is host `clients + s`.
    pub(super) clients: usize,
    /// Round trip between two hosts, seconds.
    pub(super) rtt: Vec<Vec<f64>>,
    /// Requests per second each server can serve.
    pub(super) capacity: Vec<f64>,
    /// Background load of each server each minute, requests per second.
    pub(super) background: Vec<Vec<f64>>,
    /// Request times and clients, in time order.
    pub(super) requests: Vec<(f64, usize)>,
}

impl World {
    /// The host of server `s`.
    pub(super) fn server_host(&self, s: usize) -> usize {
        self.clients + s
    }

    /// The minute `t` falls in (the last one for times past the end).
    pub(super) fn minute(&self, t: f64) -> usize {
        ((t / 60.0) as usize).min(self.background[0].len() - 1)
    }
}

/// One server's queue.
#[derive(Clone, Debug)]
pub(super) struct ServerQueue {
    /// Requests per second it can serve.
    pub(super) capacity: f64,
    /// Work waiting, seconds, as of `at`.
    backlog: f64,
    at: f64,
    /// Background requests per second.
    pub(super) background: f64,
    /// Clients' requests since the last once-a-second measurement.
    pub arrivals: u32,
}

impl ServerQueue {
    /// An empty queue.
    pub(super) fn new(capacity: f64, background: f64) -> Self {
        Self {
            capacity,
            backlog: 0.0,
            at: 0.0,
            background,
            arrivals: 0,
        }
    }

    /// Drain the queue up to `t`.
    pub(super) fn advance(&mut self, t: f64) {
        let dt = (t - self.at).max(0.0);
        let drain = 1.0 - self.background / self.capacity;
        self.backlog = (self.backlog - drain * dt).max(0.0);
        self.at = self.at.max(t);
    }

    /// Time until first read of a request arriving at `t` (queueing plus service).
    pub(super) fn delay(&mut self, t: f64) -> f64 {
        self.advance(t);
        self.backlog + 1.0 / self.capacity
    }

    /// Take a request arriving at `t`: its delay.
    pub(super) fn serve(&mut self, t: f64) -> f64 {
        let d = self.delay(t);
        self.backlog += 1.0 / self.capacity;
        self.arrivals += 1;
        d
    }

    /// The once-a-second measurement at `t`: what the server could still take (capacity less
    /// the arrival rate over the last second), after which the background becomes `next`.
    pub(super) fn tick(&mut self, t: f64, next: f64) -> f64 {
        self.advance(t);
        let spare = self.capacity - self.background - f64::from(self.arrivals);
        self.arrivals = 0;
        self.background = next;
        spare
    }
}

/// The world of `args` on `net`.
pub(super) fn build_world(args: &AnycastArgs, net: &Network) -> World {
    let clients = args.common.members;
    let k = args.servers;
    let hosts = clients + k;
    let rtt: Vec<Vec<f64>> = (0..hosts)
        .map(|a| {
            (0..hosts)
                .map(|b| {
                    (net.unicast_delay_micros(a, b) + net.unicast_delay_micros(b, a)) as f64 / 1e6
                })
                .collect()
        })
        .collect();
    let mut rng = rng_from_seed(derive_seed(args.common.seed, 0xa11c));
    // Capacity: the clients' whole demand spread over the servers, each between a half and
    // twice its share, with headroom (the group as a whole is not overloaded).
    let demand = clients as f64 * args.request_rate;
    let capacity: Vec<f64> = (0..k)
        .map(|_| 2.0 * demand / k as f64 * rng.random_range(0.5..2.0))
        .collect();
    let minutes = (args.duration.as_secs_f64() / 60.0).ceil().max(1.0) as usize;
    // Each minute each server's background takes up to 85% of it; where the group as a whole
    // would then be busier than `max_utilisation`, that minute's draws shrink in proportion
    // (a single server may still be nearly full; the group is never saturated, so the choice
    // of server, not a lack of capacity, decides the response times).
    let total_capacity: f64 = capacity.iter().sum();
    let mut background = vec![Vec::with_capacity(minutes); k];
    for _ in 0..minutes {
        let draws: Vec<f64> = capacity
            .iter()
            .map(|&cap| cap * rng.random_range(0.0..0.85))
            .collect();
        let room = (args.max_utilisation * total_capacity - demand).max(0.0);
        let drawn: f64 = draws.iter().sum();
        let shrink = if drawn > room { room / drawn } else { 1.0 };
        for (s, d) in draws.into_iter().enumerate() {
            background[s].push(d * shrink);
        }
    }
    let mut requests = Vec::new();
    for c in 0..clients {
        let mut t = 0.0;
        loop {
            let u: f64 = rng.random_range(f64::EPSILON..1.0);
            t += -u.ln() / args.request_rate.max(1e-9);
            if t >= args.duration.as_secs_f64() {
                break;
            }
            requests.push((t, c));
        }
    }
    requests.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    World {
        clients,
        rtt,
        capacity,
        background,
        requests,
    }
}
