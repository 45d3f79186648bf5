//! The driver loop: the protocol's inputs in, its outputs acted on (the drain rule), one sleep
//! for its timers, and a tick that passes addresses on and refreshes the status snapshot. Its
//! bandwidth probes are in `probes`, its shares of the access link in `budgets`.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use media::Priority;
use overlay_core::wire::{TrafficClass, WireMessage};
use overlay_core::{LinkEvent, LinkMetrics, MeasureRequest, NodeId, Output, Protocol, Time};
use tokio::sync::mpsc;

use super::addresses::AddressBook;
use super::bandwidth_probe;
use super::clock::{WallClock, instant_of};
use super::connection::{Conn, DialReply, Inbound, Peer, Pending, spawn_connection_tasks};
use super::datagrams::Datagrams;
use super::encode_once::EncodeOnce;
use super::pacing::LinkPacer;
use super::receive_budget;
use super::release::Release;
use super::{
    Control, Observer, PeerSnapshot, RuntimeOptions, TransportCounters, TransportSnapshot,
};
use crate::transport::connect::{Admitted, ConnectError, Connector, code};
use crate::transport::frame::{Frame, MAX_ADDRESSES, encode_frame};
use crate::transport::log_limit::LogLimiter;

mod budgets;
mod probes;

/// Most sends queued for a peer being dialled.
const MAX_PENDING: usize = 256;
/// Frames queued for one peer's control stream before new ones are dropped.
const STREAM_QUEUE: usize = 4096;
/// How often the status snapshot is refreshed.
const TICK: Duration = Duration::from_millis(500);
/// Addresses are passed on every this many ticks (five seconds).
const GOSSIP_EVERY: u32 = 10;
/// A member asks its peers for addresses, and answers each peer's ask, at most this often.
const ADDRESS_ASK_GAP: Duration = Duration::from_secs(1);
/// The most peers connected at once (a conference's mesh has a handful; a root has its
/// children; a resolver its servers).
const MAX_PEERS: usize = 4096;
/// Inputs taken from the network per wake-up beyond the first.
const INBOUND_BATCH: usize = 63;
/// Peers the operator may cap at once (see [`Control::LimitLink`]).
const MAX_LINK_LIMITS: usize = 1024;

/// One member's runtime: its protocol and everything the protocol's outputs touch.
pub(super) struct Driver<P: Protocol> {
    protocol: P,
    connector: Connector,
    clock: WallClock,
    peers: BTreeMap<NodeId, Peer>,
    addresses: AddressBook,
    pending: BTreeMap<NodeId, Pending<P::Message>>,
    inbound_tx: mpsc::Sender<Inbound<P::Message>>,
    /// Every connection's datagrams, read by this task itself.
    datagrams: Datagrams<P::Message>,
    events: mpsc::UnboundedSender<P::Event>,
    snapshot: Arc<Mutex<TransportSnapshot>>,
    counters: TransportCounters,
    observer: Option<Observer<P>>,
    options: RuntimeOptions,
    serial: u64,
    /// Where this member's connections come from, as the last peer it dialled saw them.
    observed: Option<IpAddr>,
    /// Media datagrams the connections' release queues dropped.
    released_late: Arc<AtomicU64>,
    /// The last bandwidth probe's number.
    probe_serial: u32,
    /// When the received media was last counted into shares of the download.
    shares_at: Option<Time>,
    /// When this member's upload was last split among its links.
    upload_split_at: Option<Time>,
    /// The operator's caps on what goes to each peer, bits per second (see
    /// [`Control::LimitLink`]); bounded by the peers the operator names.
    link_limits: BTreeMap<NodeId, u64>,
    /// Limits the lines strangers' refused connections write.
    logs: LogLimiter,
    /// Media datagrams' encoder: the same packet sent on to other peers (a relay's children)
    /// goes out as the bytes encoded for the first.
    datagram_encoder: EncodeOnce<P::Message>,
    /// When this member last asked its peers for addresses (see [`Frame::AddressAsk`]).
    addresses_asked: Option<Time>,
}

impl<P> Driver<P>
where
    P: Protocol + Send + 'static,
    P::Message: Send + 'static,
    P::Command: Send + 'static,
    P::Event: Send + 'static,
{
    /// A driver for `protocol` over `connector`; its connections report on `inbound_tx`.
    pub(super) fn new(
        protocol: P,
        connector: Connector,
        inbound_tx: mpsc::Sender<Inbound<P::Message>>,
        events: mpsc::UnboundedSender<P::Event>,
        snapshot: Arc<Mutex<TransportSnapshot>>,
        observer: Option<Observer<P>>,
        options: RuntimeOptions,
    ) -> Self {
        Self {
            protocol,
            connector,
            clock: WallClock::default(),
            peers: BTreeMap::new(),
            addresses: AddressBook::default(),
            pending: BTreeMap::new(),
            inbound_tx,
            datagrams: Datagrams::new(),
            events,
            snapshot,
            counters: TransportCounters::default(),
            logs: LogLimiter::default(),
            observer,
            options,
            serial: 0,
            observed: None,
            released_late: Arc::default(),
            probe_serial: 0,
            shares_at: None,
            upload_split_at: None,
            link_limits: BTreeMap::new(),
            datagram_encoder: EncodeOnce::new(),
            addresses_asked: None,
        }
    }

    /// Runs until the application says stop or drops its handle.
    pub(super) async fn run(
        mut self,
        mut control: mpsc::Receiver<Control<P::Command>>,
        mut inbound: mpsc::Receiver<Inbound<P::Message>>,
    ) {
        let mut tick = tokio::time::interval(TICK);
        let mut ticks: u32 = 0;
        let far = || tokio::time::Instant::now() + Duration::from_secs(3600);
        // One sleep, reset only when the protocol's deadline moves.
        let sleep = tokio::time::sleep_until(far());
        tokio::pin!(sleep);
        let mut armed: Option<Time> = None;
        loop {
            self.drain();
            let deadline = self.protocol.poll_timeout();
            if deadline != armed {
                armed = deadline;
                let now = self.clock.now();
                let at = deadline.map_or_else(far, |t| instant_of(now, t));
                sleep.as_mut().reset(at);
            }
            tokio::select! {
                c = control.recv() => match c {
                    Some(Control::Command(cmd)) => {
                        let now = self.clock.now();
                        self.protocol.handle_command(now, cmd);
                    }
                    Some(Control::Dial {
                        addr,
                        expected,
                        reply,
                    }) => self.dial(addr, expected, Some(reply)),
                    Some(Control::Ping(reply)) => {
                        let _ = reply.send(());
                    }
                    Some(Control::LimitLink { peer, bps, reply }) => {
                        let _ = reply.send(self.limit_link(peer, bps));
                    }
                    Some(Control::Shutdown) | None => break,
                },
                item = self.datagrams.next(), if !self.datagrams.is_empty() => {
                    self.on_inbound(item);
                    // Take what else has arrived in one go (each input still drained).
                    for _ in 0..INBOUND_BATCH {
                        let Some(item) = self.datagrams.try_next() else {
                            break;
                        };
                        self.drain();
                        self.on_inbound(item);
                    }
                }
                Some(item) = inbound.recv() => {
                    self.on_inbound(item);
                    // Take what else has arrived in one go (each input still drained).
                    for _ in 0..INBOUND_BATCH {
                        let Ok(item) = inbound.try_recv() else { break };
                        self.drain();
                        self.on_inbound(item);
                    }
                }
                () = &mut sleep => {
                    armed = None;
                    let now = self.clock.now();
                    self.protocol.handle_timeout(now);
                }
                _ = tick.tick() => {
                    ticks = ticks.wrapping_add(1);
                    if ticks.is_multiple_of(GOSSIP_EVERY) {
                        self.gossip_addresses();
                    }
                    self.expire_probes();
                    self.report_heard();
                    self.send_shares();
                    self.split_upload();
                    self.refresh_snapshot();
                }
            }
        }
        self.connector.close();
    }

    fn drain(&mut self) {
        if self.options.observe_every_input
            && let Some(observer) = self.observer.as_mut()
        {
            observer(&self.protocol);
        }
        while let Some(out) = self.protocol.poll_output() {
            match out {
                Output::Send { to, msg } => self.send(to, msg),
                Output::Connect { peer } => self.connect(peer),
                Output::Disconnect { peer } => {
                    if let Some(p) = self.peers.get_mut(&peer) {
                        p.link = false;
                    }
                    self.send_frame(peer, &Frame::LinkClose);
                }
                Output::Measure { peer, request } => self.measure(peer, request),
                Output::Emit(event) => {
                    let _ = self.events.send(event);
                }
            }
        }
    }

    fn send(&mut self, to: NodeId, msg: P::Message) {
        let now = self.clock.now();
        if let Some(peer) = self.peers.get_mut(&to)
            && let Some(conn) = peer.conns.last()
        {
            self.counters.messages_sent += 1;
            if self.options.datagrams
                && msg.traffic_class() == TrafficClass::Data
                && let Some(bytes) = self.datagram_encoder.encode(&msg)
                && conn
                    .conn
                    .max_datagram_size()
                    .is_some_and(|max| bytes.len() <= max)
            {
                if !self.options.pacing {
                    let len = bytes.len() as u64;
                    if conn.conn.send_datagram(bytes).is_ok() {
                        self.counters.data_bytes_sent += len;
                    } else {
                        self.counters.sends_dropped += 1;
                    }
                    return;
                }
                // Rate adaptation: what the link cannot carry now is dropped here, least
                // important first.
                let priority = Priority::from_class(msg.drop_class());
                let packet = msg.flow().zip(msg.sequence());
                if !peer
                    .pacer
                    .admit(now, &conn.conn, bytes.len(), priority, packet)
                {
                    self.counters.sends_shaped += 1;
                    return;
                }
                // Out at the paced rate, not in a burst the access link would drop.
                conn.release.set_rate(peer.pacer.rate().bps_f64());
                let len = bytes.len() as u64;
                if conn.release.send(bytes, priority) {
                    self.counters.data_bytes_sent += len;
                    peer.sent_media.add(len, msg.flow());
                } else {
                    self.counters.sends_shaped += 1;
                }
                return;
            }
            self.send_frame(to, &Frame::Message(msg));
            return;
        }
        let pending = self.pending.entry(to).or_default();
        if pending.sends.len() < MAX_PENDING {
            pending.sends.push(msg);
        } else {
            self.counters.sends_dropped += 1;
        }
        self.dial_member(to);
    }

    fn send_frame(&mut self, to: NodeId, frame: &Frame<P::Message>) {
        let Some(conn) = self.peers.get(&to).and_then(|p| p.conns.last()) else {
            return;
        };
        let data = matches!(frame, Frame::Message(m) if m.traffic_class() == TrafficClass::Data);
        match encode_frame(frame) {
            Ok(bytes) => {
                let len = bytes.len() as u64;
                if conn.frames.try_send(bytes).is_err() {
                    self.counters.sends_dropped += 1;
                } else if data {
                    self.counters.data_bytes_sent += len;
                } else {
                    self.counters.control_bytes_sent += len;
                }
            }
            Err(_) => self.counters.sends_dropped += 1,
        }
    }

    fn connect(&mut self, peer: NodeId) {
        if self.peers.contains_key(&peer) {
            if let Some(p) = self.peers.get_mut(&peer) {
                p.link = true;
            }
            self.send_frame(peer, &Frame::LinkOpen);
            let now = self.clock.now();
            self.protocol.handle_link(now, peer, LinkEvent::Up);
        } else {
            self.pending.entry(peer).or_default().link = true;
            self.dial_member(peer);
        }
    }

    fn measure(&mut self, peer: NodeId, request: MeasureRequest) {
        let Some(conn) = self.peers.get(&peer).and_then(|p| p.conns.last()) else {
            self.pending.entry(peer).or_default().measures.push(request);
            self.dial_member(peer);
            return;
        };
        let rtt = conn.conn.rtt();
        let metrics = match request {
            MeasureRequest::Rtt => LinkMetrics::rtt(rtt),
            MeasureRequest::Bandwidth { max_rate, .. } => {
                self.ask_probe(peer, max_rate);
                return;
            }
            _ => {
                self.counters.measurements_unsupported += 1;
                return;
            }
        };
        let now = self.clock.now();
        self.protocol.handle_measurement(now, peer, metrics);
    }

    fn dial_member(&mut self, peer: NodeId) {
        let Some(addr) = self.addresses.get(&peer) else {
            self.ask_addresses();
            self.dial_failed(Some(peer));
            return;
        };
        let pending = self.pending.entry(peer).or_default();
        if pending.dialing {
            return;
        }
        pending.dialing = true;
        self.dial(addr, Some(peer), None);
    }

    fn dial(&mut self, addr: SocketAddr, expected: Option<NodeId>, reply: DialReply) {
        let connector = self.connector.clone();
        let tx = self.inbound_tx.clone();
        tokio::spawn(async move {
            let item = match connector.dial(addr, expected).await {
                Ok(a) => Inbound::Dialed(a, reply),
                Err(error) => Inbound::DialFailed {
                    expected,
                    error,
                    reply,
                },
            };
            let _ = tx.send(item).await;
        });
    }

    fn dial_failed(&mut self, peer: Option<NodeId>) {
        self.counters.dials_failed += 1;
        let Some(peer) = peer else { return };
        if self.peers.contains_key(&peer) {
            return;
        }
        // Wrong or stale: the next address passed on (or the peer's own hello) replaces it.
        self.addresses.forget(&peer);
        if let Some(p) = self.pending.remove(&peer) {
            self.counters.sends_dropped += p.sends.len() as u64;
            if p.link {
                let now = self.clock.now();
                self.protocol.handle_link(now, peer, LinkEvent::Down);
            }
        }
    }

    fn on_inbound(&mut self, item: Inbound<P::Message>) {
        match item {
            Inbound::Admitted(a) => self.adopt(a),
            Inbound::Dialed(a, reply) => {
                let peer = a.peer;
                self.adopt(a);
                if let Some(r) = reply {
                    let _ = r.send(Ok(peer));
                }
            }
            Inbound::Refused(addr, reason) => {
                self.counters.admissions_refused += 1;
                // A stranger triggers these at will: a few lines a minute, each naming only
                // the address and what the member saw (never the peer's bytes).
                if let Some(left_out) = self.logs.allow("admission refused") {
                    tracing::warn!(%addr, %reason, left_out, "refused a connection");
                }
            }
            Inbound::DialFailed {
                expected,
                error,
                reply,
            } => {
                if matches!(error, ConnectError::Refused { .. }) {
                    self.counters.admissions_refused += 1;
                }
                tracing::debug!(%error, "dial failed");
                if let Some(r) = reply {
                    let _ = r.send(Err(error.into()));
                }
                self.dial_failed(expected);
            }
            Inbound::Frame(peer, serial, frame) => self.on_frame(peer, serial, frame),
            Inbound::Probe {
                peer,
                id,
                index,
                count,
                bytes,
                at,
            } => {
                let Some(p) = self.peers.get_mut(&peer) else {
                    return;
                };
                // Only the train of the probe this member asked for counts.
                if p.probe_out.is_none_or(|o| o.id != id) {
                    return;
                }
                if let Some(bps) =
                    bandwidth_probe::Incoming::take(&mut p.probe_in, id, index, count, bytes, at)
                    && let Some(probe) = p.probe_out.take()
                {
                    self.probe_answered(peer, probe, Some(bps));
                }
            }
            Inbound::BadFrame(peer, serial, why) => {
                self.counters.bad_frames += 1;
                tracing::warn!(%peer, %why, "bad control frame; closing the connection");
                if let Some(c) = self
                    .peers
                    .get(&peer)
                    .and_then(|p| p.conns.iter().find(|c| c.serial == serial))
                {
                    c.conn.close(code::CLOSED.into(), b"bad control frame");
                }
            }
            Inbound::Datagram(peer, msg, bytes) => {
                if let Some(p) = self.peers.get_mut(&peer) {
                    // Counted only where shares of the download are given.
                    if self.options.download.is_some() {
                        p.received_media.add(bytes as u64, msg.flow());
                    }
                    self.counters.messages_received += 1;
                    let now = self.clock.now();
                    self.protocol.handle_message(now, peer, msg);
                }
            }
            Inbound::BadDatagram => self.counters.bad_datagrams += 1,
            Inbound::Closed(peer, serial, why) => self.on_closed(peer, serial, &why),
        }
    }

    fn adopt(&mut self, a: Admitted) {
        self.counters.admissions += 1;
        self.serial += 1;
        let serial = self.serial;
        let peer_id = a.peer;
        if peer_id == self.connector.id() {
            a.conn.close(code::CLOSED.into(), b"that is me");
            return;
        }
        // Admitted keys are cheap to make: an insider could connect as thousands.
        if !self.peers.contains_key(&peer_id) && self.peers.len() >= MAX_PEERS {
            self.counters.admissions_refused += 1;
            a.conn.close(code::CLOSED.into(), b"too many peers");
            return;
        }
        // A peer on a wildcard address names no address others can reach: it is where its
        // connection comes from.
        let remote = a.conn.remote_address();
        let reachable = |addr: SocketAddr| {
            if addr.ip().is_unspecified() {
                SocketAddr::new(remote.ip(), addr.port())
            } else {
                addr
            }
        };
        let (listen, http) = (reachable(a.listen), a.http.map(reachable));
        if let Some(seen) = a.observed {
            self.observed = Some(seen.ip());
        }
        self.remember_address(peer_id, listen, true);
        if let Some(h) = http {
            self.addresses.remember_http(peer_id, h);
        }
        let (frames_tx, frames_rx) = mpsc::channel::<Vec<u8>>(STREAM_QUEUE);
        self.datagrams.add(peer_id, serial, a.conn.clone());
        spawn_connection_tasks(
            peer_id,
            serial,
            a.send,
            a.recv,
            frames_rx,
            self.inbound_tx.clone(),
        );
        let limit = self.link_limits.get(&peer_id).map(|&b| b as f64);
        let peer = self.peers.entry(peer_id).or_insert_with(|| Peer {
            listen,
            http,
            conns: Vec::new(),
            link: false,
            pacer: LinkPacer::new().with_operator_limit(limit),
            received_media: receive_budget::MediaTally::default(),
            sent_media: receive_budget::MediaTally::default(),
            probe_out: None,
            probe_in: None,
            train_sent: None,
            addresses_answered: None,
            rx_datagrams: 0,
        });
        peer.listen = listen;
        peer.http = http;
        peer.conns.push(Conn {
            serial,
            release: Release::spawn(a.conn.clone(), self.released_late.clone()),
            conn: a.conn,
            frames: frames_tx,
        });
        // Two connections may cross (both sides dialled); a third means the oldest is stale.
        while peer.conns.len() > 2 {
            let old = peer.conns.remove(0);
            old.conn.close(code::CLOSED.into(), b"superseded");
        }
        let link = peer.link;
        if let Some(p) = self.pending.remove(&peer_id) {
            for msg in p.sends {
                self.send(peer_id, msg);
            }
            if p.link {
                self.connect(peer_id);
            }
            for m in p.measures {
                self.measure(peer_id, m);
            }
        } else if link {
            // A newer connection to a linked peer (it restarted, say): tell it again.
            self.send_frame(peer_id, &Frame::LinkOpen);
        }
    }

    fn remember_address(&mut self, peer: NodeId, addr: SocketAddr, first_hand: bool) {
        if peer != self.connector.id() {
            self.addresses.remember(peer, addr, first_hand);
        }
    }

    fn on_frame(&mut self, peer: NodeId, _serial: u64, frame: Frame<P::Message>) {
        let now = self.clock.now();
        match frame {
            Frame::Message(msg) => {
                self.counters.messages_received += 1;
                self.protocol.handle_message(now, peer, msg);
            }
            Frame::LinkOpen => {
                if let Some(p) = self.peers.get_mut(&peer) {
                    p.link = true;
                    self.protocol.handle_link(now, peer, LinkEvent::Up);
                }
            }
            Frame::LinkClose => {
                if let Some(p) = self.peers.get_mut(&peer)
                    && p.link
                {
                    p.link = false;
                    self.protocol.handle_link(now, peer, LinkEvent::Down);
                }
            }
            Frame::Addresses(list) => {
                for (id, addr) in list.into_iter().take(MAX_ADDRESSES) {
                    self.remember_address(id, addr, false);
                }
            }
            Frame::ProbeAsk { id } => self.send_train(peer, id),
            Frame::AddressAsk => {
                if let Some(p) = self.peers.get_mut(&peer)
                    && p.addresses_answered
                        .is_none_or(|t| now.saturating_since(t) >= ADDRESS_ASK_GAP)
                {
                    p.addresses_answered = Some(now);
                    self.counters.address_asks_answered += 1;
                    let list = self.address_list();
                    self.send_frame(peer, &Frame::Addresses(list));
                }
            }
            Frame::ReceiveShare { bps } => {
                if let Some(p) = self.peers.get_mut(&peer) {
                    p.pacer.set_share(now, bps as f64);
                }
            }
            // Probe frames are taken apart as they are read (`Inbound::Probe`).
            Frame::Probe { .. } => {}
            Frame::Hello { .. }
            | Frame::Welcome { .. }
            | Frame::Confirm { .. }
            | Frame::Admitted => {
                self.counters.bad_frames += 1;
            }
        }
    }

    fn on_closed(&mut self, peer: NodeId, serial: u64, why: &str) {
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        p.conns.retain(|c| c.serial != serial);
        if !p.conns.is_empty() {
            return;
        }
        let link = p.link;
        self.peers.remove(&peer);
        tracing::info!(%peer, %why, "connection closed");
        if link {
            let now = self.clock.now();
            self.protocol.handle_link(now, peer, LinkEvent::Down);
        }
    }

    /// The addresses this member knows (its peers' first), as gossiped.
    fn address_list(&self) -> Vec<(NodeId, SocketAddr)> {
        self.peers
            .iter()
            .map(|(id, p)| (*id, p.listen))
            .chain(self.addresses.iter())
            .take(MAX_ADDRESSES)
            .collect()
    }

    /// The protocol named a member this member has no address for (a referral: a full member
    /// turned a joiner down and named others): ask the peers for what they know now rather
    /// than wait up to five seconds for their gossip, at most once per [`ADDRESS_ASK_GAP`].
    fn ask_addresses(&mut self) {
        let now = self.clock.now();
        if self
            .addresses_asked
            .is_some_and(|t| now.saturating_since(t) < ADDRESS_ASK_GAP)
        {
            return;
        }
        self.addresses_asked = Some(now);
        self.counters.address_asks_sent += 1;
        let peers: Vec<NodeId> = self.peers.keys().copied().collect();
        for p in peers {
            self.send_frame(p, &Frame::AddressAsk);
        }
    }

    fn gossip_addresses(&mut self) {
        let list = self.address_list();
        let targets: Vec<NodeId> = self.peers.keys().copied().collect();
        for t in targets {
            self.send_frame(t, &Frame::Addresses(list.clone()));
        }
    }

    /// Tells the protocol which peers' connections received anything since the last tick
    /// ([`LinkEvent::Heard`]; whether it holds a link to them is the protocol's to know: Narada
    /// keeps its mesh over the connections without asking the driver for links).
    fn report_heard(&mut self) {
        let mut heard = Vec::new();
        for (id, p) in &mut self.peers {
            let rx = p
                .conns
                .iter()
                .map(|c| c.conn.stats().udp_rx.datagrams)
                .sum::<u64>();
            if rx != p.rx_datagrams {
                p.rx_datagrams = rx;
                heard.push(*id);
            }
        }
        let now = self.clock.now();
        for id in heard {
            self.protocol.handle_link(now, id, LinkEvent::Heard);
        }
    }

    fn refresh_snapshot(&mut self) {
        if let Some(observer) = self.observer.as_mut() {
            observer(&self.protocol);
        }
        let peers = self
            .peers
            .iter()
            .filter_map(|(id, p)| {
                let c = p.conns.last()?;
                let rtt = c.conn.rtt();
                let path = c.conn.stats().path;
                let path_bps = path.cwnd as f64 * 8.0 / rtt.as_secs_f64().max(1e-4);
                let (shaped_by_rate, shaped_by_buffer) = p.pacer.shaped();
                Some(PeerSnapshot {
                    id: id.to_hex(),
                    address: p.listen,
                    link: p.link,
                    http: p.http,
                    rtt_ms: rtt.as_secs_f64() * 1e3,
                    path_bps,
                    paced_bps: p.pacer.rate().bps_f64(),
                    limit_bps: p.pacer.operator_limit(),
                    connections: p.conns.len(),
                    cwnd_bytes: path.cwnd,
                    congestion_events: path.congestion_events,
                    sent_packets: path.sent_packets,
                    lost_packets: path.lost_packets,
                    shaped_by_rate,
                    shaped_by_buffer,
                    repairs_refused: p.pacer.repairs_refused(),
                })
            })
            .collect();
        if let Ok(mut s) = self.snapshot.lock() {
            *s = TransportSnapshot {
                id: self.connector.id().to_hex(),
                listen: Some(self.connector.local_addr()),
                peers,
                counters: TransportCounters {
                    sends_late: self.released_late.load(Ordering::Relaxed),
                    ..self.counters
                },
                addresses_known: self.addresses.len(),
                http_addresses: self.addresses.http_by_hex(),
                observed: self.observed,
            };
        }
    }
}
