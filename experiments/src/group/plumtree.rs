//! A modern peer in the simulator: iroh-gossip's protocol core (HyParView membership and
//! PlumTree broadcast, sans-IO) driven as a [`Protocol`], so it runs on the same maps, member
//! places, seeds and stream as Narada ([`PlumtreeGroup`]).
//!
//! The transport is the one iroh-gossip's network layer gives its core. Sending to a peer with no
//! connection opens one (also a simulator link, so a crash reaches the other end after the
//! failure-detection delay as `PeerDisconnected`). The core's `DisconnectPeer` closes the
//! connection: the peer hears the close one path delay later and, if that connection was its
//! current one, gets `PeerDisconnected`; what it sent on the closed connection meanwhile is lost,
//! as on a real closed connection. Connections between two members are numbered (the number
//! rides in each message, not charged), so a close never takes down a newer connection. Messages are charged
//! their postcard size plus the 32-byte topic every iroh-gossip frame carries; payloads
//! (`Gossip`) count as data, everything else (membership, `IHave`, `Graft`, `Prune`, closes) as
//! control.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bytes::Bytes;
use iroh_gossip::proto::state::MessageKind;
use iroh_gossip::proto::topic::{self, Command, Event, InEvent, OutEvent};
use iroh_gossip::proto::{Config as GossipConfig, Scope};
use overlay_core::rng::{ProtocolRng, rng_from_seed};
use overlay_core::{LinkEvent, NodeId, Outbox, Output, Protocol, Time, TrafficClass, WireMessage};
use serde::{Deserialize, Serialize};

use crate::network::Network;
use crate::sim::{SimConfig, Simulator};

/// Bytes of the topic id in every iroh-gossip frame (the core's messages leave it out).
const TOPIC_BYTES: usize = 32;

/// Marks the start of a payload this simulation made, so a tap can find which packet a
/// `Gossip` message carries without the core's private message types.
const PAYLOAD_MAGIC: [u8; 8] = *b"esm-plum";

/// Bytes of the payload header: magic, source index, sequence number, send time.
const PAYLOAD_HEADER: usize = 8 + 4 + 8 + 8;

/// Bytes charged for closing a connection (a QUIC CONNECTION_CLOSE in a short packet).
const CLOSE_BYTES: usize = 40;

/// One iroh-gossip message on the simulated wire, or the close of a connection.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GossipWire {
    /// The number of the connection it travels on (or, on a close, that it closes).
    pub epoch: u32,
    /// The core's message; `None`: the sender closed the connection.
    pub message: Option<topic::Message<NodeId>>,
}

impl WireMessage for GossipWire {
    fn traffic_class(&self) -> TrafficClass {
        match self.message.as_ref().map(topic::Message::kind) {
            Some(MessageKind::Data) => TrafficClass::Data,
            Some(MessageKind::Control) | None => TrafficClass::Control,
        }
    }

    fn wire_size(&self) -> usize {
        self.message.as_ref().map_or(CLOSE_BYTES, |m| {
            overlay_core::wire::encoded_len(m) + TOPIC_BYTES
        })
    }
}

impl GossipWire {
    /// The packet a payload message carries, if it is one this simulation made.
    pub fn packet(&self) -> Option<Packet> {
        let message = self.message.as_ref()?;
        if !matches!(message.kind(), MessageKind::Data) {
            return None;
        }
        let bytes = postcard::to_allocvec(message).ok()?;
        let at = bytes
            .windows(PAYLOAD_MAGIC.len())
            .position(|w| w == PAYLOAD_MAGIC)?;
        Packet::decode(&bytes[at..])
    }
}

/// What identifies a packet of the simulated stream inside a payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet {
    /// The member that broadcast it.
    pub source: usize,
    /// Its sequence number at the source.
    pub seq: u64,
    /// When it was broadcast, simulated microseconds.
    pub sent_at_us: u64,
}

impl Packet {
    /// A payload of `bytes` bytes (at least the header) that carries this packet.
    pub fn encode(&self, bytes: usize) -> Bytes {
        let mut out = Vec::with_capacity(bytes.max(PAYLOAD_HEADER));
        out.extend_from_slice(&PAYLOAD_MAGIC);
        out.extend_from_slice(&u32::try_from(self.source).unwrap_or(u32::MAX).to_be_bytes());
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&self.sent_at_us.to_be_bytes());
        out.resize(bytes.max(PAYLOAD_HEADER), 0);
        Bytes::from(out)
    }

    /// The packet at the start of `bytes`, if they start with one.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let header = bytes.get(..PAYLOAD_HEADER)?;
        if header[..8] != PAYLOAD_MAGIC {
            return None;
        }
        let word = |from: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&header[from..from + 8]);
            u64::from_be_bytes(b)
        };
        let mut source = [0u8; 4];
        source.copy_from_slice(&header[8..12]);
        Some(Self {
            source: u32::from_be_bytes(source) as usize,
            seq: word(12),
            sent_at_us: word(20),
        })
    }
}

/// What the application asks of a member.
#[derive(Clone, Debug)]
pub enum PeerCommand {
    /// Join the swarm through these peers (none: start it).
    Join(Vec<NodeId>),
    /// Broadcast a payload to the swarm.
    Broadcast(Bytes),
    /// Leave the swarm, telling the active view.
    Quit,
}

/// What a member tells the application.
#[derive(Clone, Debug)]
pub enum PeerEvent {
    /// A payload arrived for the first time, from this neighbour.
    Delivered {
        /// The neighbour it came from.
        from: NodeId,
        /// The payload.
        content: Bytes,
    },
}

/// One iroh-gossip member (one topic) as a simulator [`Protocol`].
pub struct PlumtreeMember {
    id: NodeId,
    state: topic::State<NodeId, ProtocolRng>,
    /// The core's clock: a fixed instant plus simulated time (it only takes differences).
    epoch: std::time::Instant,
    timers: BTreeMap<(Time, u64), topic::Timer<NodeId>>,
    next_timer: u64,
    /// Its active view, as the core's `NeighborUp` and `NeighborDown` events tell it.
    neighbours: BTreeSet<NodeId>,
    /// Peers a connection is open (or opening) to.
    connected: BTreeSet<NodeId>,
    /// Per peer, the number of the newest connection with it (the opener numbers a connection
    /// one past the newest either end has seen; both ends stamp it on what they send).
    conn_epoch: BTreeMap<NodeId, u32>,
    /// Per peer, connections up to this number are closed: what arrives on them is lost.
    closed_upto: BTreeMap<NodeId, u32>,
    outbox: Outbox<GossipWire, PeerEvent>,
    left: bool,
    joined: bool,
}

impl std::fmt::Debug for PlumtreeMember {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlumtreeMember")
            .field("id", &self.id)
            .field("timers", &self.timers.len())
            .field("neighbours", &self.neighbours.len())
            .field("connected", &self.connected.len())
            .finish_non_exhaustive()
    }
}

impl PlumtreeMember {
    /// A member with iroh-gossip's `config`, its randomness from `seed`.
    pub fn new(id: NodeId, config: GossipConfig, seed: u64, epoch: std::time::Instant) -> Self {
        Self {
            id,
            state: topic::State::with_rng(id, None, config, rng_from_seed(seed)),
            epoch,
            timers: BTreeMap::new(),
            next_timer: 0,
            neighbours: BTreeSet::new(),
            connected: BTreeSet::new(),
            conn_epoch: BTreeMap::new(),
            closed_upto: BTreeMap::new(),
            outbox: Outbox::default(),
            left: false,
            joined: false,
        }
    }

    /// Whether it joined and has not left.
    pub fn is_live(&self) -> bool {
        self.joined && !self.left
    }

    /// Its active view (the peers it gossips with).
    pub fn neighbours(&self) -> impl Iterator<Item = &NodeId> + '_ {
        self.neighbours.iter()
    }

    /// The size of its active view.
    pub fn active_peers(&self) -> usize {
        self.neighbours.len()
    }

    fn feed(&mut self, now: Time, event: InEvent<NodeId>) {
        if self.left {
            return;
        }
        let instant = self.epoch + Duration::from_micros(now.as_micros());
        let out: Vec<OutEvent<NodeId>> = self.state.handle(event, instant.into()).collect();
        for event in out {
            match event {
                OutEvent::SendMessage(to, message) => {
                    if to == self.id {
                        continue;
                    }
                    let epoch = self.open(to);
                    self.outbox.send(
                        to,
                        GossipWire {
                            epoch,
                            message: Some(message),
                        },
                    );
                }
                OutEvent::EmitEvent(Event::Received(gossip)) => {
                    self.outbox.emit(PeerEvent::Delivered {
                        from: gossip.delivered_from,
                        content: gossip.content,
                    });
                }
                OutEvent::EmitEvent(Event::NeighborUp(peer)) => {
                    self.neighbours.insert(peer);
                }
                OutEvent::EmitEvent(Event::NeighborDown(peer)) => {
                    self.neighbours.remove(&peer);
                }
                OutEvent::PeerData(..) => {}
                OutEvent::ScheduleTimer(after, timer) => {
                    self.timers.insert((now + after, self.next_timer), timer);
                    self.next_timer += 1;
                }
                OutEvent::DisconnectPeer(peer) => self.close(peer),
            }
        }
    }

    /// The connection to `peer`, opened if there is none: its number.
    fn open(&mut self, peer: NodeId) -> u32 {
        let epoch = self.conn_epoch.entry(peer).or_insert(0);
        if self.connected.insert(peer) {
            *epoch += 1;
            // A simulator link, so a crash of either end reaches the other.
            self.outbox.connect(peer);
        }
        *epoch
    }

    /// Close the connection to `peer`: tell it, and lose what it sent on it.
    fn close(&mut self, peer: NodeId) {
        if !self.connected.remove(&peer) {
            return;
        }
        let epoch = self.conn_epoch.get(&peer).copied().unwrap_or(0);
        self.closed_upto.insert(peer, epoch);
        self.outbox.send(
            peer,
            GossipWire {
                epoch,
                message: None,
            },
        );
    }
}

impl Protocol for PlumtreeMember {
    type Message = GossipWire;
    type Command = PeerCommand;
    type Event = PeerEvent;

    fn id(&self) -> NodeId {
        self.id
    }

    fn handle_message(&mut self, now: Time, from: NodeId, msg: GossipWire) {
        if !self.joined || self.left {
            return;
        }
        let Some(message) = msg.message else {
            // The peer closed a connection: this member's current one unless it opened a newer
            // one since.
            let current = self.conn_epoch.get(&from).copied().unwrap_or(0);
            let closed = self.closed_upto.entry(from).or_insert(0);
            *closed = (*closed).max(msg.epoch);
            // A connection opened after this gets a number past the closed one.
            self.conn_epoch.insert(from, current.max(msg.epoch));
            if msg.epoch >= current && self.connected.remove(&from) {
                self.feed(now, InEvent::PeerDisconnected(from));
            }
            return;
        };
        if self.closed_upto.get(&from).is_some_and(|&c| msg.epoch <= c) {
            // Sent on a closed connection.
            return;
        }
        let epoch = self.conn_epoch.entry(from).or_insert(0);
        *epoch = (*epoch).max(msg.epoch);
        self.connected.insert(from);
        self.feed(now, InEvent::RecvMessage(from, message));
    }

    fn handle_command(&mut self, now: Time, cmd: PeerCommand) {
        match cmd {
            PeerCommand::Join(peers) => {
                self.joined = true;
                self.feed(now, InEvent::Command(Command::Join(peers)));
            }
            PeerCommand::Broadcast(data) => {
                self.feed(
                    now,
                    InEvent::Command(Command::Broadcast(data, Scope::Swarm)),
                );
            }
            PeerCommand::Quit => {
                self.feed(now, InEvent::Command(Command::Quit));
                self.left = true;
                self.timers.clear();
                self.neighbours.clear();
            }
        }
    }

    fn handle_link(&mut self, now: Time, peer: NodeId, event: LinkEvent) {
        if event == LinkEvent::Down && self.connected.remove(&peer) {
            self.feed(now, InEvent::PeerDisconnected(peer));
        }
    }

    fn handle_timeout(&mut self, now: Time) {
        while let Some(entry) = self.timers.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let timer = entry.remove();
            self.feed(now, InEvent::TimerExpired(timer));
        }
    }

    fn poll_output(&mut self) -> Option<Output<GossipWire, PeerEvent>> {
        self.outbox.pop()
    }

    fn poll_timeout(&self) -> Option<Time> {
        self.timers.keys().next().map(|&(at, _)| at)
    }
}

/// A simulated iroh-gossip swarm: every host of the network is a member.
#[derive(Debug)]
pub struct PlumtreeGroup {
    /// The simulator.
    pub sim: Simulator<PlumtreeMember, Network>,
    /// First arrivals: `(member, packet, at)`.
    pub arrivals: Vec<(usize, Packet, Time)>,
    seed: u64,
}

impl PlumtreeGroup {
    /// Every host of `net` becomes a member (not yet joined) with iroh-gossip's `config`.
    pub fn new(net: Network, config: &GossipConfig, seed: u64) -> Self {
        let n = net.members();
        let mut sim = Simulator::new(
            net,
            SimConfig {
                seed,
                ..SimConfig::default()
            },
        );
        let epoch = std::time::Instant::now();
        for i in 0..n {
            let id = Simulator::<PlumtreeMember, Network>::member_id(i);
            let member_seed = sim.member_seed(i);
            sim.add_member(
                i,
                PlumtreeMember::new(id, config.clone(), member_seed, epoch),
            );
        }
        Self {
            sim,
            arrivals: Vec::new(),
            seed,
        }
    }

    /// Members join as [`super::join_plan`] draws them (the same joins as a Narada group's on
    /// the same seed).
    pub fn schedule_joins(&mut self, members: &[usize], start: Time, window: Duration) {
        let plan = super::join_plan(self.seed, members, start, window, |m| {
            Simulator::<PlumtreeMember, Network>::member_id(m)
        });
        for (at, m, bootstrap) in plan {
            self.sim
                .schedule_command(at, m, PeerCommand::Join(bootstrap));
        }
    }

    /// `source` broadcasts `packet_bytes`-byte packets at the given send times, numbered from
    /// `first_seq`.
    pub fn schedule_packets(
        &mut self,
        source: usize,
        times: impl IntoIterator<Item = Time>,
        first_seq: u64,
        packet_bytes: usize,
    ) {
        for (i, at) in times.into_iter().enumerate() {
            let packet = Packet {
                source,
                seq: first_seq + i as u64,
                sent_at_us: at.as_micros(),
            };
            self.sim.schedule_command(
                at,
                source,
                PeerCommand::Broadcast(packet.encode(packet_bytes)),
            );
        }
    }

    /// Run to `until`, logging first arrivals.
    pub fn run_until(&mut self, until: Time) {
        while self.sim.now() < until {
            let next = (self.sim.now() + Duration::from_secs(1)).min(until);
            self.sim.run_until(next);
            for emitted in self.sim.take_events() {
                let PeerEvent::Delivered { content, .. } = emitted.event;
                if let Some(packet) = Packet::decode(&content) {
                    self.arrivals.push((emitted.member, packet, emitted.at));
                }
            }
        }
    }

    /// Whether member `m` is alive, joined and not gone.
    pub fn is_live(&self, m: usize) -> bool {
        self.sim.member(m).is_some_and(PlumtreeMember::is_live)
    }

    /// Active-view sizes of live members.
    pub fn degrees(&self) -> Vec<usize> {
        (0..self.sim.network().members())
            .filter(|&m| self.is_live(m))
            .filter_map(|m| self.sim.member(m).map(PlumtreeMember::active_peers))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_packet_survives_its_payload_and_a_foreign_payload_is_none() {
        let p = Packet {
            source: 17,
            seq: 9,
            sent_at_us: 123_456,
        };
        let bytes = p.encode(1000);
        assert_eq!(bytes.len(), 1000);
        assert_eq!(Packet::decode(&bytes), Some(p));
        assert_eq!(Packet::decode(&bytes[..10]), None);
        assert_eq!(Packet::decode(&[0u8; 64]), None);
    }
}
