//! The deterministic discrete-event simulator: drives any [`Protocol`] over a [`PathModel`]
//! (behind the `sim` feature; every crate's tests and the experiments use this one harness).
//!
//! Members are protocol state machines in one process. Messages are delivered after the path's
//! one-way delay without being encoded, but each is charged its encoded size, so overhead figures
//! count real bytes. Events are ordered by time, then insertion; all randomness derives from one
//! master seed (per-member protocol seeds from [`Simulator::member_seed`]), so a run with the same
//! seed replays bit for bit. After every input the simulator drains the member's outputs
//! completely and re-reads its deadline: the drain rule of [`Protocol`].
//!
//! Transport semantics: `Output::Connect` opens a link after a round trip (both ends hear
//! `LinkEvent::Up`); a crash or a partition takes open links down after the failure-detection
//! delay; a connection to a dead or unreachable member fails after the connect timeout.
//!
//! Faults for protocol tests, all off by default and free when off: per-message jitter
//! ([`Simulator::set_jitter`]), silenced members ([`Simulator::silence`]), a drop filter
//! ([`Simulator::set_drop_filter`]), forged input ([`Simulator::inject`]); and partitions and
//! crashes. A bandwidth model plugs in through [`Shaping`].

mod faults;
mod paths;
mod queue;
#[cfg(test)]
mod tests;
mod traffic;

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use crate::rng::{ProtocolRng, derive_seed, rng_from_seed};
use crate::{
    LinkEvent, LinkMetrics, MeasureRequest, NodeId, Output, Protocol, Time, TrafficClass,
    WireMessage,
};

pub use faults::DropFilter;
pub use paths::{MatrixPaths, PathModel, UniformPaths};
pub use queue::EventQueue;
pub use traffic::TrafficStats;

use faults::Faults;

/// A bandwidth model for data messages, plugged into the simulator with
/// [`Simulator::enable_shaping`].
pub trait Shaping<N> {
    /// How often [`Shaping::reallocate`] runs.
    fn interval(&self) -> Duration;
    /// Re-divide bandwidth among the paths carrying data (and tell the path model the load,
    /// so measurements see it).
    fn reallocate(&mut self, paths: &mut N);
    /// Whether the data message `send` fits now; what does not fit is dropped at the sender.
    fn admit(&mut self, now: Time, paths: &N, send: &DataSend) -> bool;
}

/// A data message about to be sent, as [`Shaping::admit`] sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DataSend {
    /// The sending member.
    pub from: usize,
    /// The member it goes to.
    pub to: usize,
    /// Its size on the wire, envelope included.
    pub bytes: usize,
    /// Its drop class (see [`crate::WireMessage::drop_class`]).
    pub drop_class: u8,
    /// Its flow and sequence number, if it has them (see [`crate::WireMessage::sequence`]): a
    /// later copy is a repair, which a link that shed the first may refuse.
    pub packet: Option<(u64, u64)>,
}

/// Settings of a simulation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SimConfig {
    /// The master seed every other seed derives from.
    pub seed: u64,
    /// How long a connection attempt to a dead member takes to fail.
    pub connect_timeout: Duration,
    /// How long after a member crashes its connected peers see the link go down (QUIC's idle
    /// timeout plays this part in the runtime).
    pub failure_detection: Duration,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            seed: 1,
            connect_timeout: Duration::from_secs(3),
            failure_detection: Duration::from_secs(10),
        }
    }
}

/// An event a member emitted, with when and who.
#[derive(Clone, Debug, PartialEq)]
pub struct Emitted<E> {
    /// When.
    pub at: Time,
    /// Which member.
    pub member: usize,
    /// What.
    pub event: E,
}

enum Event<P: Protocol> {
    Deliver {
        to: u32,
        from: u32,
        msg: P::Message,
    },
    Forged {
        to: u32,
        from: NodeId,
        msg: P::Message,
    },
    Timer {
        member: u32,
        deadline: Time,
    },
    Command {
        member: u32,
        cmd: P::Command,
    },
    Link {
        member: u32,
        peer: u32,
        event: LinkEvent,
    },
    Measured {
        member: u32,
        peer: u32,
        metrics: LinkMetrics,
    },
    Reshape,
    Crash {
        member: u32,
    },
}

struct Slot<P> {
    protocol: Option<P>,
    armed: Option<Time>,
    rng: ProtocolRng,
}

/// The simulator.
pub struct Simulator<P: Protocol, N: PathModel> {
    config: SimConfig,
    now: Time,
    queue: EventQueue<Event<P>>,
    network: N,
    slots: Vec<Option<Slot<P>>>,
    index: HashMap<NodeId, u32>,
    links: BTreeSet<(u32, u32)>,
    emitted: Vec<Emitted<P::Event>>,
    record_events: bool,
    traffic: TrafficStats,
    processed: u64,
    /// Partition labels: members with different labels cannot reach each other.
    partition: Option<Vec<u32>>,
    /// Bandwidth shares and pacers for data, when enabled.
    shaper: Option<Box<dyn Shaping<N>>>,
    /// Injected faults (all off by default).
    faults: Faults<P::Message>,
}

impl<P: Protocol, N: PathModel> std::fmt::Debug for Simulator<P, N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Simulator")
            .field("now", &self.now)
            .field("pending", &self.queue.len())
            .field("processed", &self.processed)
            .finish_non_exhaustive()
    }
}

/// Seed streams of the simulator.
mod stream {
    pub(super) const PROTOCOL: u64 = 0x5eed_0001;
    pub(super) const DRIVER: u64 = 0x5eed_0002;
    pub(super) const FAULTS: u64 = 0x5eed_0003;
}

impl<P: Protocol, N: PathModel> Simulator<P, N> {
    /// A simulation over `network`, with no members yet.
    pub fn new(network: N, config: SimConfig) -> Self {
        let n = network.members();
        Self {
            config,
            now: Time::ZERO,
            queue: EventQueue::default(),
            network,
            slots: (0..n).map(|_| None).collect(),
            index: HashMap::new(),
            links: BTreeSet::new(),
            emitted: Vec::new(),
            record_events: true,
            traffic: TrafficStats {
                member_bytes: vec![[0; 3]; n],
                ..TrafficStats::default()
            },
            processed: 0,
            partition: None,
            shaper: None,
            faults: Faults::new(derive_seed(config.seed, stream::FAULTS)),
        }
    }

    /// The identity simulated member `index` should use.
    pub fn member_id(index: usize) -> NodeId {
        NodeId::from_index(index as u64)
    }

    /// The seed member `index`'s protocol should draw its randomness from.
    pub fn member_seed(&self, index: usize) -> u64 {
        derive_seed(
            derive_seed(self.config.seed, stream::PROTOCOL),
            index as u64,
        )
    }

    /// Put `protocol` in slot `index` (a host of the path model), alive from now on.
    ///
    /// # Panics
    /// If the slot is out of range or taken, or the identity is already in use: scenario bugs.
    pub fn add_member(&mut self, index: usize, protocol: P) {
        assert!(index < self.slots.len(), "member {index} out of range");
        assert!(self.slots[index].is_none(), "member {index} already added");
        let id = protocol.id();
        assert!(
            self.index.insert(id, index as u32).is_none(),
            "identity {id} used twice"
        );
        let rng = rng_from_seed(derive_seed(
            derive_seed(self.config.seed, stream::DRIVER),
            index as u64,
        ));
        self.slots[index] = Some(Slot {
            protocol: Some(protocol),
            armed: None,
            rng,
        });
        self.drain(index as u32);
    }

    /// Deliver `cmd` to member `member` at `at` (not before now).
    pub fn schedule_command(&mut self, at: Time, member: usize, cmd: P::Command) {
        self.queue.push(
            at.max(self.now),
            Event::Command {
                member: member as u32,
                cmd,
            },
        );
    }

    /// Report `event` about member `peer` to member `member` at `at` (not before now), as a
    /// transport would (the simulator itself reports links going up and down; this is for
    /// tests of what a protocol makes of the rest, such as [`LinkEvent::Heard`]).
    pub fn schedule_link_event(&mut self, at: Time, member: usize, peer: usize, event: LinkEvent) {
        self.queue.push(
            at.max(self.now),
            Event::Link {
                member: member as u32,
                peer: peer as u32,
                event,
            },
        );
    }

    /// Crash member `member` now: it stops, messages to it are lost, and its connected peers see
    /// their links go down after the failure-detection delay.
    pub fn crash(&mut self, member: usize) {
        let m = member as u32;
        if let Some(slot) = self.slots[member].as_mut() {
            slot.protocol = None;
            slot.armed = None;
        }
        let open: Vec<(u32, u32)> = self
            .links
            .iter()
            .copied()
            .filter(|&(a, b)| a == m || b == m)
            .collect();
        for (a, b) in open {
            self.links.remove(&(a, b));
            let peer = if a == m { b } else { a };
            let at = self.now + self.config.failure_detection;
            self.queue.push(
                at,
                Event::Link {
                    member: peer,
                    peer: m,
                    event: LinkEvent::Down,
                },
            );
        }
    }

    /// Crash member `member` at `at` (not before now), as [`Simulator::crash`] does.
    pub fn schedule_crash(&mut self, at: Time, member: usize) {
        self.queue.push(
            at.max(self.now),
            Event::Crash {
                member: member as u32,
            },
        );
    }

    /// Partition the network now: members with different labels can no longer reach each other
    /// (messages, connections and measurements between them are lost); open connections across
    /// the cut go down after the failure-detection delay. `None` heals the network.
    pub fn set_partition(&mut self, labels: Option<Vec<u32>>) {
        self.partition = labels;
        let cut: Vec<(u32, u32)> = self
            .links
            .iter()
            .copied()
            .filter(|&(a, b)| !self.reachable(a, b))
            .collect();
        for (a, b) in cut {
            self.links.remove(&(a, b));
            let at = self.now + self.config.failure_detection;
            self.queue.push(
                at,
                Event::Link {
                    member: a,
                    peer: b,
                    event: LinkEvent::Down,
                },
            );
            self.queue.push(
                at,
                Event::Link {
                    member: b,
                    peer: a,
                    event: LinkEvent::Down,
                },
            );
        }
    }

    fn reachable(&self, a: u32, b: u32) -> bool {
        self.partition
            .as_ref()
            .is_none_or(|labels| labels.get(a as usize) == labels.get(b as usize))
    }

    /// Give data a bandwidth model from now on: every data-class message must pass `shaper`
    /// (what it refuses is dropped at the sender and counted as shaped), and the shaper
    /// re-divides bandwidth every [`Shaping::interval`]. Once on, shaping stays on; a second
    /// call is ignored.
    pub fn enable_shaping(&mut self, shaper: Box<dyn Shaping<N>>) {
        if self.shaper.is_none() {
            let interval = shaper.interval();
            self.shaper = Some(shaper);
            self.queue.push(self.now + interval, Event::Reshape);
        }
    }

    /// Add up to `max` of extra delay to every message from now on, drawn uniformly afresh for
    /// each (so messages between the same pair overtake each other). Zero turns it off.
    pub fn set_jitter(&mut self, max: Duration) {
        self.faults.jitter = max;
    }

    /// Silence member `member` from now on: nothing it sends leaves, nothing reaches it, and
    /// its timers wait (a frozen process, or a host cut off for a while). Its transport links
    /// stay as they are: [`Simulator::crash`] and [`Simulator::set_partition`] model a
    /// transport that notices.
    pub fn silence(&mut self, member: usize) {
        self.faults.silenced.insert(member as u32);
    }

    /// Undo [`Simulator::silence`]: the member's overdue timer fires now.
    pub fn unsilence(&mut self, member: usize) {
        if self.faults.silenced.remove(&(member as u32))
            && let Some(slot) = self.slots[member].as_mut()
        {
            slot.armed = None;
            self.drain(member as u32);
        }
    }

    /// Lose every message, at the moment it is sent, for which `filter(from, to, message)` says
    /// so (a closure may keep state, to lose a message once, say). `None` loses nothing.
    pub fn set_drop_filter(&mut self, filter: Option<DropFilter<P::Message>>) {
        self.faults.drop_filter = filter;
    }

    /// Deliver `msg` to member `to` at `at` (not before now) as if `from` had sent it: forged
    /// input, as an attacker that claims to be anyone (a member or not) would send it. It
    /// crosses no path, is not counted as traffic, and is lost only if `to` is silenced.
    pub fn inject(&mut self, at: Time, from: NodeId, to: usize, msg: P::Message) {
        self.queue.push(
            at.max(self.now),
            Event::Forged {
                to: to as u32,
                from,
                msg,
            },
        );
    }

    /// Whether member `member` is alive.
    pub fn is_alive(&self, member: usize) -> bool {
        self.slots[member]
            .as_ref()
            .is_some_and(|s| s.protocol.is_some())
    }

    /// Member `member`'s state machine, if alive.
    pub fn member(&self, member: usize) -> Option<&P> {
        self.slots[member].as_ref()?.protocol.as_ref()
    }

    /// The current simulated time.
    pub fn now(&self) -> Time {
        self.now
    }

    /// The path model.
    pub fn network(&self) -> &N {
        &self.network
    }

    /// The path model, to change it between steps (load, noise).
    pub fn network_mut(&mut self) -> &mut N {
        &mut self.network
    }

    /// What was sent so far.
    pub fn traffic(&self) -> &TrafficStats {
        &self.traffic
    }

    /// Events processed so far.
    pub fn processed(&self) -> u64 {
        self.processed
    }

    /// Whether emitted events are kept for [`Simulator::take_events`] (default yes).
    pub fn set_record_events(&mut self, record: bool) {
        self.record_events = record;
    }

    /// The events members emitted since the last call.
    pub fn take_events(&mut self) -> Vec<Emitted<P::Event>> {
        std::mem::take(&mut self.emitted)
    }

    /// Process events up to and including time `until`, then set the clock to `until`.
    pub fn run_until(&mut self, until: Time) {
        while self.queue.peek_time().is_some_and(|t| t <= until) {
            self.step();
        }
        self.now = self.now.max(until);
    }

    /// Process events for `d` of simulated time.
    pub fn run_for(&mut self, d: Duration) {
        self.run_until(self.now + d);
    }

    /// Process the next event; `false` if none is pending.
    pub fn step(&mut self) -> bool {
        let Some((at, event)) = self.queue.pop() else {
            return false;
        };
        self.now = at;
        self.processed += 1;
        match event {
            Event::Deliver { to, from, msg } => {
                if self.faults.is_silenced(from) || self.faults.is_silenced(to) {
                    self.traffic.silenced += 1;
                    return true;
                }
                let from_id = self.id_of(from);
                if !self.with_member(to, |p, now| p.handle_message(now, from_id, msg)) {
                    self.traffic.dropped += 1;
                }
            }
            Event::Forged { to, from, msg } => {
                if self.faults.is_silenced(to) {
                    self.traffic.silenced += 1;
                } else if !self.with_member(to, |p, now| p.handle_message(now, from, msg)) {
                    self.traffic.dropped += 1;
                }
            }
            Event::Timer { member, deadline } => {
                let Some(slot) = self.slots[member as usize].as_mut() else {
                    return true;
                };
                if slot.armed != Some(deadline) {
                    return true; // superseded by a later poll_timeout
                }
                if self.faults.is_silenced(member) {
                    return true; // stays armed; fires when unsilenced
                }
                slot.armed = None;
                self.with_member(member, |p, now| p.handle_timeout(now));
            }
            Event::Command { member, cmd } => {
                self.with_member(member, |p, now| p.handle_command(now, cmd));
            }
            Event::Link {
                member,
                peer,
                event,
            } => {
                let peer_id = self.id_of(peer);
                self.with_member(member, |p, now| p.handle_link(now, peer_id, event));
            }
            Event::Measured {
                member,
                peer,
                metrics,
            } => {
                let peer_id = self.id_of(peer);
                self.with_member(member, |p, now| p.handle_measurement(now, peer_id, metrics));
            }
            Event::Crash { member } => self.crash(member as usize),
            Event::Reshape => {
                if let Some(shaper) = self.shaper.as_mut() {
                    shaper.reallocate(&mut self.network);
                    let next = self.now + shaper.interval();
                    self.queue.push(next, Event::Reshape);
                }
            }
        }
        true
    }

    fn id_of(&self, member: u32) -> NodeId {
        self.slots[member as usize]
            .as_ref()
            .and_then(|s| s.protocol.as_ref())
            .map_or_else(|| Self::member_id(member as usize), Protocol::id)
    }

    /// Feed one input to a live member, then drain it; `false` if the member is not alive.
    fn with_member(&mut self, member: u32, input: impl FnOnce(&mut P, Time)) -> bool {
        let now = self.now;
        let Some(protocol) = self.slots[member as usize]
            .as_mut()
            .and_then(|s| s.protocol.as_mut())
        else {
            return false;
        };
        input(protocol, now);
        self.drain(member);
        true
    }

    fn drain(&mut self, member: u32) {
        loop {
            let Some(protocol) = self.slots[member as usize]
                .as_mut()
                .and_then(|s| s.protocol.as_mut())
            else {
                return;
            };
            let Some(output) = protocol.poll_output() else {
                break;
            };
            self.act(member, output);
        }
        let now = self.now;
        let Some(slot) = self.slots[member as usize].as_mut() else {
            return;
        };
        let Some(protocol) = slot.protocol.as_ref() else {
            return;
        };
        let deadline = protocol.poll_timeout();
        if deadline != slot.armed {
            slot.armed = deadline;
            if let Some(deadline) = deadline {
                self.queue
                    .push(deadline.max(now), Event::Timer { member, deadline });
            }
        }
    }

    fn act(&mut self, member: u32, output: Output<P::Message, P::Event>) {
        let now = self.now;
        match output {
            Output::Send { to, msg } => {
                let bytes = msg.wire_size() as u64;
                let Some(&to) = self.index.get(&to) else {
                    self.traffic.count(
                        member as usize,
                        msg.traffic_class(),
                        msg.kind_name(),
                        bytes,
                    );
                    self.traffic.dropped += 1;
                    return;
                };
                // Data goes through its link's share; what does not fit is dropped at the sender,
                // lowest priority first, and never sent.
                if msg.traffic_class() == TrafficClass::Data
                    && let Some(shaper) = self.shaper.as_mut()
                    && !shaper.admit(
                        now,
                        &self.network,
                        &DataSend {
                            from: member as usize,
                            to: to as usize,
                            bytes: bytes as usize,
                            drop_class: msg.drop_class(),
                            packet: msg.flow().zip(msg.sequence()),
                        },
                    )
                {
                    self.traffic.shaped += 1;
                    return;
                }
                self.traffic
                    .count(member as usize, msg.traffic_class(), msg.kind_name(), bytes);
                if !self.reachable(member, to) {
                    self.traffic.partitioned += 1;
                    return;
                }
                if self.faults.is_silenced(member) || self.faults.is_silenced(to) {
                    self.traffic.silenced += 1;
                    return;
                }
                if let Some(filter) = self.faults.drop_filter.as_mut()
                    && filter(member as usize, to as usize, &msg)
                {
                    self.traffic.filtered += 1;
                    return;
                }
                let delay = self.network.one_way_delay(member as usize, to as usize)
                    + self.faults.extra_delay();
                self.queue.push(
                    now + delay,
                    Event::Deliver {
                        to,
                        from: member,
                        msg,
                    },
                );
            }
            Output::Emit(event) => {
                if self.record_events {
                    self.emitted.push(Emitted {
                        at: now,
                        member: member as usize,
                        event,
                    });
                }
            }
            Output::Connect { peer } => {
                let target = self
                    .index
                    .get(&peer)
                    .copied()
                    .filter(|&p| self.is_alive(p as usize) && self.reachable(member, p));
                match target {
                    Some(p) if p != member => {
                        let there = self.network.one_way_delay(member as usize, p as usize);
                        let back = self.network.one_way_delay(p as usize, member as usize);
                        self.links.insert((member.min(p), member.max(p)));
                        self.queue.push(
                            now + there,
                            Event::Link {
                                member: p,
                                peer: member,
                                event: LinkEvent::Up,
                            },
                        );
                        self.queue.push(
                            now + there + back,
                            Event::Link {
                                member,
                                peer: p,
                                event: LinkEvent::Up,
                            },
                        );
                    }
                    _ => {
                        let peer_index = self.index.get(&peer).copied();
                        if let Some(p) = peer_index {
                            let at = now + self.config.connect_timeout;
                            self.queue.push(
                                at,
                                Event::Link {
                                    member,
                                    peer: p,
                                    event: LinkEvent::Down,
                                },
                            );
                        } else {
                            self.traffic.dropped += 1;
                        }
                    }
                }
            }
            Output::Disconnect { peer } => {
                let Some(&p) = self.index.get(&peer) else {
                    return;
                };
                if self.links.remove(&(member.min(p), member.max(p))) {
                    let at = now + self.network.one_way_delay(member as usize, p as usize);
                    self.queue.push(
                        at,
                        Event::Link {
                            member: p,
                            peer: member,
                            event: LinkEvent::Down,
                        },
                    );
                }
            }
            Output::Measure { peer, request } => {
                let Some(&p) = self.index.get(&peer) else {
                    return;
                };
                if !self.reachable(member, p) {
                    return;
                }
                let Some(slot) = self.slots[member as usize].as_mut() else {
                    return;
                };
                let metrics =
                    self.network
                        .measure(member as usize, p as usize, request, &mut slot.rng);
                let rtt = metrics.rtt.unwrap_or_default();
                let after = match request {
                    MeasureRequest::Rtt => rtt,
                    MeasureRequest::Bandwidth { duration, max_rate } => {
                        // The probe's bytes flow from the peer; charge them there.
                        let rate = metrics.bandwidth.unwrap_or(max_rate).min(max_rate);
                        let bytes = rate.bytes_in(duration);
                        self.traffic.count(
                            p as usize,
                            TrafficClass::Probe,
                            "bandwidth-probe",
                            bytes,
                        );
                        self.traffic.bandwidth_probe_bytes += bytes;
                        duration + rtt
                    }
                    MeasureRequest::Transfer { bytes } => {
                        self.traffic.count(
                            p as usize,
                            TrafficClass::Probe,
                            "bandwidth-probe",
                            bytes,
                        );
                        self.traffic.bandwidth_probe_bytes += bytes;
                        // The transfer took as long as its measured rate says.
                        metrics.bandwidth.map_or(rtt, |rate| {
                            Duration::from_secs_f64(bytes as f64 * 8.0 / rate.bps_f64().max(1.0))
                        })
                    }
                };
                self.queue.push(
                    now + after,
                    Event::Measured {
                        member,
                        peer: p,
                        metrics,
                    },
                );
            }
        }
    }
}
