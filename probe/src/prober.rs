//! A sans-IO prober: pings watched peers on a schedule, answers pings, and keeps RTT and loss
//! estimates per peer.
//!
//! It implements [`Protocol`], so it runs alone under any driver (the simulator drives it in
//! tests), and a larger protocol can embed it: wrap [`ProbeMessage`] in its own message type,
//! drain the prober after every input it feeds it, and act on each output in order (Narada
//! wraps the messages and handles each [`ProberEvent`] as it comes, so a report and the sends
//! around it keep their order; [`overlay_core::Output::map`] lifts outputs whose events only
//! need converting).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use overlay_core::rng::{ProtocolRng, rng_from_seed};
use overlay_core::{
    LinkMetrics, NodeId, Outbox, Output, Protocol, Time, TimerTable, TrafficClass, WireMessage,
};
use rand::{Rng, RngExt};
use serde::{Deserialize, Serialize};

use crate::{LossWindow, RttConfig, RttEstimator};

/// Settings of a [`Prober`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProberConfig {
    /// Time between pings to a watched peer. One second keeps a 1000-member mesh's ping traffic
    /// (about 50 bytes per ping and pong) under 1 kbps per peer while tracking changes within
    /// seconds.
    pub interval: Duration,
    /// Each interval is stretched or shrunk by up to this fraction at random, so members that
    /// started together do not ping in lockstep.
    pub jitter: f64,
    /// Number of recent pings over which loss is computed (20: 5% resolution).
    pub loss_window: usize,
    /// Pings in flight per peer beyond which no new ping is sent (a dead peer costs no more).
    pub max_outstanding: usize,
    /// RTT estimator settings (they set the timeout after which a ping counts as lost).
    pub rtt: RttConfig,
    /// Seed of the prober's randomness (nonces and jitter).
    pub seed: u64,
}

impl Default for ProberConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(1),
            jitter: 0.1,
            loss_window: 20,
            max_outstanding: 4,
            rtt: RttConfig::default(),
            seed: 0,
        }
    }
}

/// Messages between probers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProbeMessage {
    /// Please answer with the same nonce.
    Ping {
        /// A random number the answer must echo.
        nonce: u64,
    },
    /// The answer to a ping.
    Pong {
        /// The nonce of the ping answered.
        nonce: u64,
    },
}

impl WireMessage for ProbeMessage {
    fn traffic_class(&self) -> TrafficClass {
        TrafficClass::Probe
    }
}

/// What an application asks a [`Prober`] to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProberCommand {
    /// Ping `peer` periodically.
    Watch(NodeId),
    /// Stop pinging `peer` and forget its estimates.
    Unwatch(NodeId),
    /// Ping `peer` once now (watched or not).
    ProbeNow(NodeId),
}

/// What a [`Prober`] reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProberEvent {
    /// A ping was answered.
    Rtt {
        /// The peer that answered.
        peer: NodeId,
        /// This round trip.
        sample: Duration,
        /// The smoothed RTT after this sample.
        smoothed: Duration,
        /// The smallest RTT seen.
        min: Duration,
        /// The smallest of the latest RTTs (see [`crate::RecentMin`]): the link without the
        /// queue in front of it.
        recent_min: Duration,
    },
    /// A ping went unanswered within the timeout.
    Lost {
        /// The silent peer.
        peer: NodeId,
        /// Pings lost out of the recent window, per thousand.
        loss_per_mille: u16,
    },
}

/// Counters of what the prober dropped or answered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProberStats {
    /// Pings sent.
    pub pings_sent: u64,
    /// Pings from others answered.
    pub pings_answered: u64,
    /// Pongs that matched no ping in flight (late, duplicated or forged): dropped.
    pub pongs_unmatched: u64,
    /// Pings not sent because too many were in flight.
    pub pings_skipped: u64,
}

/// Estimates for one peer.
#[derive(Clone, Debug)]
pub struct PeerEstimate {
    /// Round-trip time.
    pub rtt: RttEstimator,
    /// Recent loss.
    pub loss: LossWindow,
    watched: bool,
    in_flight: BTreeMap<u64, Time>,
}

/// The prober's timers, keyed by peer (ties fire in declaration order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum ProbeTimer {
    /// When to ping this watched peer again (the interval with its jitter after the last ping;
    /// at once when it is first watched).
    NextPing(NodeId),
    /// When the ping with this nonce to this peer counts as lost (one retransmission timeout
    /// after it left), unless its pong came first.
    Expire(NodeId, u64),
}

/// The prober state machine.
#[derive(Debug)]
pub struct Prober {
    id: NodeId,
    config: ProberConfig,
    rng: ProtocolRng,
    /// Estimates by peer. Only looked up, never iterated, so the hash order reaches no
    /// output; a member asks it for every member it knows on each mesh-improvement tick.
    peers: HashMap<NodeId, PeerEstimate>,
    timers: TimerTable<ProbeTimer>,
    outbox: Outbox<ProbeMessage, ProberEvent>,
    stats: ProberStats,
}

impl Prober {
    /// A prober for member `id`.
    pub fn new(id: NodeId, config: ProberConfig) -> Self {
        Self {
            id,
            rng: rng_from_seed(config.seed),
            config,
            peers: HashMap::new(),
            timers: TimerTable::default(),
            outbox: Outbox::default(),
            stats: ProberStats::default(),
        }
    }

    /// The estimates for `peer`, if it was ever probed.
    pub fn estimate(&self, peer: NodeId) -> Option<&PeerEstimate> {
        self.peers.get(&peer)
    }

    /// The smoothed RTT to `peer`.
    pub fn rtt(&self, peer: NodeId) -> Option<Duration> {
        self.peers.get(&peer)?.rtt.smoothed()
    }

    /// What the prober counted.
    pub fn stats(&self) -> ProberStats {
        self.stats
    }

    fn estimate_entry(&mut self, peer: NodeId) -> &mut PeerEstimate {
        let config = self.config;
        self.peers.entry(peer).or_insert_with(|| PeerEstimate {
            rtt: RttEstimator::new(config.rtt),
            loss: LossWindow::new(config.loss_window),
            watched: false,
            in_flight: BTreeMap::new(),
        })
    }

    fn send_ping(&mut self, now: Time, peer: NodeId) {
        let max = self.config.max_outstanding;
        let nonce = self.rng.next_u64();
        let entry = self.estimate_entry(peer);
        if entry.in_flight.len() >= max {
            self.stats.pings_skipped += 1;
            return;
        }
        entry.in_flight.insert(nonce, now);
        let deadline = now + entry.rtt.rto();
        self.timers.set(ProbeTimer::Expire(peer, nonce), deadline);
        self.stats.pings_sent += 1;
        self.outbox.send(peer, ProbeMessage::Ping { nonce });
    }

    fn schedule_next_ping(&mut self, now: Time, peer: NodeId) {
        let jitter = self.config.jitter.clamp(0.0, 1.0);
        let factor = 1.0 + jitter * (2.0 * self.rng.random::<f64>() - 1.0);
        let wait = self.config.interval.mul_f64(factor);
        self.timers.set(ProbeTimer::NextPing(peer), now + wait);
    }
}

impl Protocol for Prober {
    type Message = ProbeMessage;
    type Command = ProberCommand;
    type Event = ProberEvent;

    fn id(&self) -> NodeId {
        self.id
    }

    fn handle_message(&mut self, now: Time, from: NodeId, msg: ProbeMessage) {
        match msg {
            ProbeMessage::Ping { nonce } => {
                self.stats.pings_answered += 1;
                self.outbox.send(from, ProbeMessage::Pong { nonce });
            }
            ProbeMessage::Pong { nonce } => {
                let Some(entry) = self.peers.get_mut(&from) else {
                    self.stats.pongs_unmatched += 1;
                    return;
                };
                let Some(sent) = entry.in_flight.remove(&nonce) else {
                    self.stats.pongs_unmatched += 1;
                    return;
                };
                let sample = now - sent;
                entry.rtt.update(sample);
                entry.loss.record(true);
                let rtt = &entry.rtt;
                let (smoothed, min, recent_min) = (rtt.smoothed(), rtt.min(), rtt.recent_min());
                self.timers.cancel(ProbeTimer::Expire(from, nonce));
                self.outbox.emit(ProberEvent::Rtt {
                    peer: from,
                    sample,
                    smoothed: smoothed.unwrap_or(sample),
                    min: min.unwrap_or(sample),
                    recent_min: recent_min.unwrap_or(sample),
                });
            }
        }
    }

    fn handle_command(&mut self, now: Time, cmd: ProberCommand) {
        match cmd {
            ProberCommand::Watch(peer) => {
                if peer == self.id {
                    return;
                }
                let entry = self.estimate_entry(peer);
                if !entry.watched {
                    entry.watched = true;
                    self.timers.set(ProbeTimer::NextPing(peer), now);
                }
            }
            ProberCommand::Unwatch(peer) => {
                self.peers.remove(&peer);
                self.timers.retain(|t| match *t {
                    ProbeTimer::NextPing(p) | ProbeTimer::Expire(p, _) => p != peer,
                });
            }
            ProberCommand::ProbeNow(peer) => {
                if peer != self.id {
                    self.send_ping(now, peer);
                }
            }
        }
    }

    fn handle_measurement(&mut self, _now: Time, peer: NodeId, metrics: LinkMetrics) {
        // The driver's own RTT readings (QUIC's estimate of an open connection) are as good as a
        // ping; take them in so fewer pings are needed.
        if let (Some(rtt), Some(entry)) = (metrics.rtt, self.peers.get_mut(&peer)) {
            entry.rtt.update(rtt);
        }
    }

    fn handle_timeout(&mut self, now: Time) {
        while let Some(timer) = self.timers.pop_expired(now) {
            match timer {
                ProbeTimer::NextPing(peer) => {
                    self.send_ping(now, peer);
                    self.schedule_next_ping(now, peer);
                }
                ProbeTimer::Expire(peer, nonce) => {
                    let Some(entry) = self.peers.get_mut(&peer) else {
                        continue;
                    };
                    if entry.in_flight.remove(&nonce).is_none() {
                        continue;
                    }
                    entry.rtt.on_timeout();
                    entry.loss.record(false);
                    let loss = entry.loss.loss_rate().unwrap_or(1.0);
                    self.outbox.emit(ProberEvent::Lost {
                        peer,
                        loss_per_mille: (loss * 1000.0).round() as u16,
                    });
                }
            }
        }
    }

    fn poll_output(&mut self) -> Option<Output<ProbeMessage, ProberEvent>> {
        self.outbox.pop()
    }

    fn poll_timeout(&self) -> Option<Time> {
        self.timers.next_deadline()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(p: &mut Prober) -> Vec<Output<ProbeMessage, ProberEvent>> {
        std::iter::from_fn(|| p.poll_output()).collect()
    }

    fn ping_nonce(outputs: &[Output<ProbeMessage, ProberEvent>]) -> u64 {
        outputs
            .iter()
            .find_map(|o| match o {
                Output::Send {
                    msg: ProbeMessage::Ping { nonce },
                    ..
                } => Some(*nonce),
                _ => None,
            })
            .expect("a ping")
    }

    #[test]
    fn answers_pings_and_measures_pongs() {
        let (a, b) = (NodeId::from_index(1), NodeId::from_index(2));
        let mut prober = Prober::new(a, ProberConfig::default());
        prober.handle_message(Time::ZERO, b, ProbeMessage::Ping { nonce: 77 });
        assert_eq!(
            drain(&mut prober),
            vec![Output::Send {
                to: b,
                msg: ProbeMessage::Pong { nonce: 77 }
            }]
        );

        prober.handle_command(Time::ZERO, ProberCommand::Watch(b));
        assert_eq!(prober.poll_timeout(), Some(Time::ZERO));
        prober.handle_timeout(Time::ZERO);
        let nonce = ping_nonce(&drain(&mut prober));
        // Next ping within 0.9..1.1 s, expiry at the initial RTO (1 s).
        let next = prober.poll_timeout().unwrap();
        assert!(
            next >= Time::from_millis(900) && next <= Time::from_millis(1000),
            "{next}"
        );

        prober.handle_message(Time::from_millis(40), b, ProbeMessage::Pong { nonce });
        let events = drain(&mut prober);
        let ms40 = Duration::from_millis(40);
        assert_eq!(
            events,
            vec![Output::Emit(ProberEvent::Rtt {
                peer: b,
                sample: ms40,
                smoothed: ms40,
                min: ms40,
                recent_min: ms40
            })]
        );
        // A replayed or forged pong is dropped and counted.
        prober.handle_message(Time::from_millis(50), b, ProbeMessage::Pong { nonce });
        assert!(drain(&mut prober).is_empty());
        assert_eq!(prober.stats().pongs_unmatched, 1);
    }

    #[test]
    fn silence_counts_as_loss_and_backs_off() {
        let (a, b) = (NodeId::from_index(1), NodeId::from_index(2));
        let mut prober = Prober::new(
            a,
            ProberConfig {
                jitter: 0.0,
                ..ProberConfig::default()
            },
        );
        prober.handle_command(Time::ZERO, ProberCommand::Watch(b));
        let mut lost = 0;
        let mut now = Time::ZERO;
        while now < Time::from_secs(30) {
            now = prober.poll_timeout().unwrap();
            prober.handle_timeout(now);
            for o in drain(&mut prober) {
                if let Output::Emit(ProberEvent::Lost { loss_per_mille, .. }) = o {
                    assert_eq!(loss_per_mille, 1000);
                    lost += 1;
                }
            }
        }
        // With backoff, in-flight pings are capped and later pings are skipped, not piled up.
        assert!(lost >= 5, "{lost}");
        assert!(prober.stats().pings_skipped > 0);
        prober.handle_command(now, ProberCommand::Unwatch(b));
        assert_eq!(prober.poll_timeout(), None);
        assert!(prober.estimate(b).is_none());
    }
}
