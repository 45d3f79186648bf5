//! Loopback benchmark of the runtime's data path, in one run:
//! 1. raw quinn: one endpoint sends 1100-byte datagrams to another as fast as quinn takes them
//!    (`send_datagram_wait`), for three seconds: the baseline throughput of one link;
//! 2. a relay member (the runtime driving a minimal forwarding protocol) receives one source and
//!    forwards every packet to 4 receivers, the source sending as fast as the runtime takes its
//!    commands: throughput per outgoing link;
//!    with media sent straight to QUIC and paced (the runtime's rate adaptation, its default),
//!    alternating over `BENCH_ROUNDS` rounds (default 4): what the pacer costs, as the median
//!    ratio of the rounds;
//! 3. the same relay, paced, forwarding each packet as one encoding shared by the 4 receivers
//!    (the runtime's way) and as one encoding per receiver, alternating likewise: what encoding
//!    once saves;
//! 4. the ceiling this machine allows for the relay: a raw quinn source and 4 raw quinn
//!    receivers around a raw quinn task that hands each datagram it reads to its 4 outgoing
//!    links unchanged, and the same endpoints around the runtime's relay, unpaced and paced,
//!    the order rotating over the rounds: the relay's share of the ceiling;
//! 5. at a moderate rate (2000 packets/s), the one-way delay source → receiver directly and
//!    source → relay → receiver through the runtime: the delay a hop adds (p50, p99);
//! 6. at the same rate, the raw rig of 4 around a raw quinn forwarder and around the runtime's
//!    relay (paced), alternating: the delay and the heap allocations per packet the runtime
//!    adds over quinn's own forwarding (allocations counted in the whole process, whose other
//!    parts are the same code in both cases);
//! 7. the heap a packet the relay keeps holds (as Narada keeps the last packets of each source
//!    for repairs): its payload a view of the datagram it came in (the runtime's way) or a copy.
//!
//! `cargo bench -p node --bench relay`. Everything shares the machine's cores: the relay case
//! runs six endpoints where the baseline runs two.

#![allow(missing_docs)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use node::runtime::{self, Control, RuntimeHandle, RuntimeOptions};
use node::transport::admission::GroupSecret;
use node::transport::connect::{Connector, TransportSettings};
use node::transport::identity::Identity;
use overlay_core::wire::{TrafficClass, WireMessage};
use overlay_core::{NodeId, Outbox, Protocol, Time};
use serde::{Deserialize, Serialize};
use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};

mod relay_raw;
use relay_raw::{Forwarder, RawRig, counting_receiver, through_at_rate};

/// The system allocator, counting: what the relay allocates per packet (section 6).
#[global_allocator]
static GLOBAL: &StatsAlloc<std::alloc::System> = &INSTRUMENTED_SYSTEM;

const PAYLOAD: usize = 1100;

/// What the relay keeps of each packet it forwards, as Narada keeps the last packets of each
/// source to repair its children's gaps (section 7): nothing, the packet as decoded (its
/// payload a view of the datagram), or a copy of its payload.
static KEEP: AtomicU8 = AtomicU8::new(KEEP_NOTHING);
const KEEP_NOTHING: u8 = 0;
const KEEP_VIEWS: u8 = 1;
const KEEP_COPIES: u8 = 2;
/// How many packets the relay keeps when it keeps them (Narada's default repair buffer).
const KEPT: usize = 1024;

/// Whether a packet forwarded to several receivers is encoded once (the runtime's way, when
/// the message says which clones encode alike) or once per receiver (as before).
static ENCODE_ONCE: AtomicBool = AtomicBool::new(true);

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Packet {
    seq: u64,
    sent_ns: u64,
    /// As Narada's data packets: decoded from a datagram, a view of it.
    #[serde(with = "overlay_core::wire::shared")]
    payload: Bytes,
}

impl WireMessage for Packet {
    fn traffic_class(&self) -> TrafficClass {
        TrafficClass::Data
    }

    /// As Narada's data packets: a clone for each child encodes alike (one encode per packet),
    /// unless the bench turned that off to measure what it saves.
    fn encodes_as(&self, other: &Self) -> bool {
        ENCODE_ONCE.load(Ordering::Relaxed)
            && self.seq == other.seq
            && self.sent_ns == other.sent_ns
            && self.payload.len() == other.payload.len()
            && std::ptr::eq(self.payload.as_ptr(), other.payload.as_ptr())
    }
}

#[derive(Debug)]
enum RelayCommand {
    Downstream(Vec<NodeId>),
    Publish(Packet),
}

/// Forwards every packet it receives to its downstream list; publishes what it is told.
#[derive(Debug)]
struct Relay {
    id: NodeId,
    downstream: Vec<NodeId>,
    outbox: Outbox<Packet, Packet>,
    /// The last packets forwarded, as [`KEEP`] says.
    kept: VecDeque<Packet>,
}

impl Protocol for Relay {
    type Message = Packet;
    type Command = RelayCommand;
    type Event = Packet;

    fn id(&self) -> NodeId {
        self.id
    }

    fn handle_message(&mut self, _now: Time, _from: NodeId, msg: Packet) {
        if self.downstream.is_empty() {
            self.outbox.emit(msg);
            return;
        }
        for d in &self.downstream {
            self.outbox.send(*d, msg.clone());
        }
        let keep = KEEP.load(Ordering::Relaxed);
        if keep != KEEP_NOTHING {
            let mut msg = msg;
            if keep == KEEP_COPIES {
                msg.payload = Bytes::copy_from_slice(&msg.payload);
            }
            if self.kept.len() >= KEPT {
                self.kept.pop_front();
            }
            self.kept.push_back(msg);
        }
    }

    fn handle_command(&mut self, _now: Time, cmd: RelayCommand) {
        match cmd {
            RelayCommand::Downstream(d) => self.downstream = d,
            RelayCommand::Publish(p) => {
                for d in &self.downstream {
                    self.outbox.send(*d, p.clone());
                }
            }
        }
    }

    fn poll_output(&mut self) -> Option<overlay_core::Output<Packet, Packet>> {
        self.outbox.pop()
    }
}

fn connector() -> Connector {
    let admission = GroupSecret::new("bench", b"bench-secret-quartz-fable-nimbus").unwrap();
    Connector::bind(
        "127.0.0.1:0".parse().unwrap(),
        Identity::generate().unwrap(),
        admission,
        TransportSettings::default(),
    )
    .unwrap()
}

fn member() -> RuntimeHandle<RelayCommand, Packet> {
    member_with(true)
}

/// A relay member, its media paced (the runtime's rate adaptation) or sent straight to QUIC.
fn member_with(pacing: bool) -> RuntimeHandle<RelayCommand, Packet> {
    let c = connector();
    let relay = Relay {
        id: c.id(),
        downstream: Vec::new(),
        outbox: Outbox::default(),
        kept: VecDeque::new(),
    };
    let options = RuntimeOptions {
        pacing,
        ..RuntimeOptions::default()
    };
    runtime::start_with(relay, c, None, options)
}

/// A source, a relay and 4 receivers' sinks, connected.
struct Rig {
    source: RuntimeHandle<RelayCommand, Packet>,
    sinks: Vec<Sink>,
    _relay: RuntimeHandle<RelayCommand, Packet>,
}

async fn rig(pacing: bool) -> Rig {
    let source = member_with(pacing);
    let relay = member_with(pacing);
    let receivers: Vec<_> = (0..4).map(|_| member_with(pacing)).collect();
    let relay_id = dial(&source, relay.local_addr).await;
    let mut down = Vec::new();
    for r in &receivers {
        down.push(dial(&relay, r.local_addr).await);
    }
    source
        .control
        .send(Control::Command(RelayCommand::Downstream(vec![relay_id])))
        .await
        .unwrap();
    relay
        .control
        .send(Control::Command(RelayCommand::Downstream(down)))
        .await
        .unwrap();
    if std::env::var_os("BENCH_DEBUG").is_some() {
        println!("relay {:?}", relay.snapshot.lock().unwrap());
    }
    Rig {
        source,
        sinks: receivers.into_iter().map(sink).collect(),
        _relay: relay,
    }
}

/// Each outgoing link's Mbit/s over `duration` after a half-second warm-up, the source sending
/// at `blast` packets/s (0: as fast as the runtime takes them).
async fn per_link_mbps(rig: &Rig, duration: Duration, blast: u64) -> Vec<f64> {
    publish(&rig.source, Duration::from_millis(500), blast).await;
    let before: Vec<u64> = rig
        .sinks
        .iter()
        .map(|s| s.bytes.load(Ordering::Relaxed))
        .collect();
    publish(&rig.source, duration, blast).await;
    rig.sinks
        .iter()
        .zip(&before)
        .map(|(s, b)| mbps(s.bytes.load(Ordering::Relaxed) - b, duration))
        .collect()
}

async fn dial(from: &RuntimeHandle<RelayCommand, Packet>, to: SocketAddr) -> NodeId {
    runtime::dial(&from.control, to, None).await.unwrap()
}

fn mbps(bytes: u64, d: Duration) -> f64 {
    bytes as f64 * 8.0 / d.as_secs_f64() / 1e6
}

async fn raw_quinn(duration: Duration) -> f64 {
    let a = connector();
    let (receiver, counter) = counting_receiver(false).await;
    let out = a
        .dial(receiver.local_addr(), Some(receiver.id()))
        .await
        .unwrap();
    let payload = Bytes::from(vec![7u8; PAYLOAD]);
    let got = blast(&out.conn, payload, duration, &[counter.bytes]).await;
    out.conn.close(0u32.into(), b"done");
    got[0]
}

/// Sends `datagram` on `conn` as fast as quinn takes it (`send_datagram_wait`) for half a
/// second of warm-up and then `duration`; each of `counters`' Mbit/s over `duration`.
async fn blast(
    conn: &quinn::Connection,
    datagram: Bytes,
    duration: Duration,
    counters: &[Arc<AtomicU64>],
) -> Vec<f64> {
    let warm_up = Duration::from_millis(500);
    let start = Instant::now();
    let mut at_start = Vec::new();
    while start.elapsed() < duration + warm_up {
        if at_start.is_empty() && start.elapsed() >= warm_up {
            at_start = counters.iter().map(|c| c.load(Ordering::Relaxed)).collect();
        }
        if conn.send_datagram_wait(datagram.clone()).await.is_err() {
            break;
        }
    }
    counters
        .iter()
        .zip(&at_start)
        .map(|(c, a)| mbps(c.load(Ordering::Relaxed) - a, duration))
        .collect()
}

/// One forwarder between raw quinn endpoints: a source sending the same encoded packet with
/// `send_datagram_wait` as fast as quinn takes it, and 4 receivers counting the datagrams
/// they read. Only the forwarder differs between the two cases, so their ratio is the
/// runtime's relay against the ceiling. Each outgoing link's Mbit/s over `duration` after a
/// half-second warm-up.
async fn relay_between_raw(forwarder: Forwarder, duration: Duration) -> Vec<f64> {
    let rig = RawRig::new(forwarder, false).await;
    let packet = Packet {
        seq: 0,
        sent_ns: 0,
        payload: Bytes::from(vec![7u8; PAYLOAD]),
    };
    let datagram = Bytes::from(overlay_core::wire::encode(&packet).unwrap());
    let counters: Vec<_> = rig.received.iter().map(|r| r.bytes.clone()).collect();
    let per_link = blast(&rig.up.conn, datagram, duration, &counters).await;
    rig.close();
    per_link
}

fn epoch() -> &'static Instant {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    EPOCH.get_or_init(Instant::now)
}

fn now_ns() -> u64 {
    epoch().elapsed().as_nanos() as u64
}

struct Sink {
    bytes: Arc<AtomicU64>,
    delays: Arc<std::sync::Mutex<Vec<u64>>>,
}

fn sink(mut handle: RuntimeHandle<RelayCommand, Packet>) -> Sink {
    let bytes = Arc::new(AtomicU64::new(0));
    let delays = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (b, d) = (bytes.clone(), delays.clone());
    tokio::spawn(async move {
        // Hold the whole handle: dropping its control sender would stop the member.
        let control = handle.control.clone();
        while let Some(p) = handle.events.recv().await {
            b.fetch_add(p.payload.len() as u64, Ordering::Relaxed);
            if let Ok(mut d) = d.lock() {
                d.push(now_ns().saturating_sub(p.sent_ns));
            }
        }
        drop(control);
    });
    Sink { bytes, delays }
}

/// Sends from `source` for `duration` at `rate` packets/s (0: as fast as the runtime takes them).
async fn publish(source: &RuntimeHandle<RelayCommand, Packet>, duration: Duration, rate: u64) {
    let payload = Bytes::from(vec![9u8; PAYLOAD]);
    let start = Instant::now();
    let mut seq = 0u64;
    while start.elapsed() < duration {
        if rate > 0 {
            let due = start + Duration::from_secs_f64(seq as f64 / rate as f64);
            tokio::time::sleep_until(due.into()).await;
        }
        let p = Packet {
            seq,
            sent_ns: now_ns(),
            payload: payload.clone(),
        };
        seq += 1;
        if source
            .control
            .send(Control::Command(RelayCommand::Publish(p)))
            .await
            .is_err()
        {
            break;
        }
    }
}

fn quantile(xs: &mut [u64], q: f64) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    xs.sort_unstable();
    xs[((xs.len() - 1) as f64 * q).round() as usize] as f64 / 1e3
}

/// The median of sorted, non-empty `xs`.
fn median_of(xs: &[f64]) -> f64 {
    if xs.len() % 2 == 1 {
        xs[xs.len() / 2]
    } else {
        (xs[xs.len() / 2 - 1] + xs[xs.len() / 2]) / 2.0
    }
}

/// One case of a comparison: media paced or sent straight to QUIC, each packet encoded once
/// for all receivers or once per receiver.
#[derive(Clone, Copy, Debug)]
struct Case {
    pacing: bool,
    encode_once: bool,
}

/// Runs the relay rig in case `a` and in case `b` for `rounds` rounds, the order flipping each
/// round, so drift in the machine's load (2 cores shared by six endpoints) falls on both alike.
/// `report(round, a, b)` sees each round's mean per-link throughputs. Returns each round's
/// ratio `a / b`, and case `a`'s last rig with its per-link figures and their mean.
async fn alternate(
    rounds: usize,
    duration: Duration,
    blast: u64,
    a: Case,
    b: Case,
    report: impl Fn(usize, f64, f64),
) -> (Vec<f64>, (Rig, Vec<f64>, f64)) {
    let mut ratios = Vec::new();
    let mut last = None;
    for round in 0..rounds.max(1) {
        let order = if round % 2 == 0 {
            [false, true]
        } else {
            [true, false]
        };
        let (mut a_mean, mut b_mean) = (0.0, 0.0);
        for is_a in order {
            let case = if is_a { a } else { b };
            ENCODE_ONCE.store(case.encode_once, Ordering::Relaxed);
            let rig = rig(case.pacing).await;
            let per_link = per_link_mbps(&rig, duration, blast).await;
            let mean = per_link.iter().sum::<f64>() / per_link.len() as f64;
            tokio::time::sleep(Duration::from_millis(500)).await;
            if is_a {
                a_mean = mean;
                last = Some((rig, per_link, mean));
            } else {
                b_mean = mean;
            }
        }
        report(round + 1, a_mean, b_mean);
        ratios.push(a_mean / b_mean);
    }
    ENCODE_ONCE.store(true, Ordering::Relaxed);
    (ratios, last.expect("at least one round ran"))
}

/// Prints the median and range of the rounds' `ratios` after `label`.
fn print_median(label: &str, mut ratios: Vec<f64>) {
    ratios.sort_by(f64::total_cmp);
    println!(
        "{label}, median of {} alternating rounds {:.3} (range {:.3}..{:.3})",
        ratios.len(),
        median_of(&ratios),
        ratios[0],
        ratios[ratios.len() - 1]
    );
}

async fn bench() {
    let duration = Duration::from_secs(3);
    let raw = raw_quinn(duration).await;
    println!("raw quinn, one link, {PAYLOAD}-byte datagrams: {raw:.0} Mbit/s");

    // Source -> relay -> 4 receivers, as fast as the runtime takes the source's commands:
    // first with media sent straight to QUIC, then paced (the runtime's default).
    let blast: u64 = std::env::var("BENCH_RATE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    // Each comparison alternates its two cases over several rounds (see `alternate`); the
    // figure is the median of the rounds' ratios.
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4);
    let paced = Case {
        pacing: true,
        encode_once: true,
    };
    let unpaced = Case {
        pacing: false,
        ..paced
    };
    let (ratios, (last_rig, per_link, mean)) =
        alternate(rounds, duration, blast, paced, unpaced, |round, paced, unpaced| {
            println!(
                "round {round}: per link {paced:.0} Mbit/s paced, {unpaced:.0} unpaced, ratio {:.3}",
                paced / unpaced
            );
        })
        .await;
    if std::env::var_os("BENCH_DEBUG").is_some() {
        println!("source {:?}", last_rig.source.snapshot.lock().unwrap());
    }
    println!(
        "relay member to 4 receivers, paced (last round): per outgoing link {} Mbit/s (mean {mean:.0}), {:.2} of raw quinn per link, {:.2} in all",
        per_link
            .iter()
            .map(|x| format!("{x:.0}"))
            .collect::<Vec<_>>()
            .join(", "),
        mean / raw,
        4.0 * mean / raw
    );
    print_median(
        "the pacer's cost: paced/unpaced throughput per link",
        ratios,
    );
    drop(last_rig);

    // The runtime's relay against the ceiling: the same raw source and receivers around a
    // raw quinn forwarder and around a runtime member, unpaced (its forwarding path alone) and
    // paced (its default: rate adaptation reacts to the queueing on the saturated machine as
    // to a congested path), the order rotating each round.
    let cases = [
        Forwarder::RawQuinn,
        Forwarder::Runtime { paced: false },
        Forwarder::Runtime { paced: true },
    ];
    let (mut unpaced_share, mut paced_share) = (Vec::new(), Vec::new());
    for round in 0..rounds.max(1) {
        let mut mean = [0.0; 3];
        for k in 0..cases.len() {
            let i = (round + k) % cases.len();
            let per_link = relay_between_raw(cases[i], duration).await;
            mean[i] = per_link.iter().sum::<f64>() / per_link.len() as f64;
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let [ceiling, unpaced, paced] = mean;
        println!(
            "round {}: per link {ceiling:.0} Mbit/s through a raw quinn forwarder, through the runtime's relay {unpaced:.0} unpaced ({:.3} of it), {paced:.0} paced ({:.3})",
            round + 1,
            unpaced / ceiling,
            paced / ceiling
        );
        unpaced_share.push(unpaced / ceiling);
        paced_share.push(paced / ceiling);
    }
    print_median(
        "the relay's forwarding path (unpaced) against its ceiling, raw quinn forwarding between the same endpoints",
        unpaced_share,
    );
    print_median(
        "the relay paced (the default) against the same ceiling",
        paced_share,
    );

    // One encode per packet against one per receiver (paced, as by default), alternating in
    // the same way.
    let per_receiver = Case {
        encode_once: false,
        ..paced
    };
    let (saved, _) = alternate(rounds, duration, blast, paced, per_receiver, |round, once, each| {
        println!(
            "round {round}: per link {once:.0} Mbit/s encoding each packet once, {each:.0} once per receiver, ratio {:.3}",
            once / each
        );
    })
    .await;
    print_median(
        "one encode per packet: throughput per link over one per receiver",
        saved,
    );
    let rig = rig(true).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let Rig { source, sinks, .. } = rig;

    // Delay at a moderate rate: through the relay, then directly.
    for s in &sinks {
        s.delays.lock().unwrap().clear();
    }
    publish(&source, duration, 2000).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut via_relay: Vec<u64> = sinks
        .iter()
        .flat_map(|s| s.delays.lock().unwrap().clone())
        .collect();
    let direct_sink = member();
    let direct_addr = direct_sink.local_addr;
    let direct = sink(direct_sink);
    let direct_id = dial(&source, direct_addr).await;
    source
        .control
        .send(Control::Command(RelayCommand::Downstream(vec![direct_id])))
        .await
        .unwrap();
    publish(&source, Duration::from_millis(300), 2000).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    direct.delays.lock().unwrap().clear();
    publish(&source, duration, 2000).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut direct_delays = direct.delays.lock().unwrap().clone();
    let (r50, r99) = (
        quantile(&mut via_relay, 0.5),
        quantile(&mut via_relay, 0.99),
    );
    let (d50, d99) = (
        quantile(&mut direct_delays, 0.5),
        quantile(&mut direct_delays, 0.99),
    );
    println!(
        "one-way delay at 2000 packets/s: direct p50 {d50:.0} µs p99 {d99:.0} µs; via the relay p50 {r50:.0} µs p99 {r99:.0} µs; the hop adds {:.0} µs at p50 ({} and {} packets; the p99s are each path's own, too noisy to subtract)",
        r50 - d50,
        via_relay.len(),
        direct_delays.len()
    );

    runtime_against_raw_forwarding(rounds, duration).await;
    kept_packets(duration).await;
}

/// Section 7: the heap a packet the relay keeps holds (as Narada keeps the last 1024 of each
/// source for repairs), its payload a view of the datagram it came in or a copy, at 2000
/// packets/s sent one at a time and in bursts of 10 (which quinn may receive as one batch of
/// datagrams sharing one buffer): from what the rig gave back when closed, keeping nothing,
/// views and copies.
async fn kept_packets(duration: Duration) {
    for burst in [1, 10] {
        let mut held = [0i64; 3];
        for (i, keep) in [KEEP_NOTHING, KEEP_VIEWS, KEEP_COPIES]
            .into_iter()
            .enumerate()
        {
            KEEP.store(keep, Ordering::Relaxed);
            let got =
                through_at_rate(Forwarder::Runtime { paced: true }, duration, 2000, burst).await;
            held[i] = got.held_bytes;
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        KEEP.store(KEEP_NOTHING, Ordering::Relaxed);
        let per_packet = |h: i64| (h - held[0]) as f64 / KEPT as f64;
        println!(
            "at 2000 packets/s in bursts of {burst}: heap per kept packet ({PAYLOAD}-byte payloads), a view of its datagram {:.0} bytes, a copy {:.0} (the rig held {} kB keeping nothing, {} views, {} copies)",
            per_packet(held[1]),
            per_packet(held[2]),
            held[0] / 1024,
            held[1] / 1024,
            held[2] / 1024
        );
    }
}

/// Section 6: what the runtime's relay adds over quinn's own forwarding at 2000 packets/s,
/// the raw rig around each forwarder, alternating over `rounds`.
async fn runtime_against_raw_forwarding(rounds: usize, duration: Duration) {
    let (mut added_us, mut added_allocations) = (Vec::new(), Vec::new());
    for round in 0..rounds.max(1) {
        let mut order = [Forwarder::RawQuinn, Forwarder::Runtime { paced: true }];
        if round % 2 == 1 {
            order.reverse();
        }
        let mut raw = None;
        let mut relay = None;
        for f in order {
            let mut got = through_at_rate(f, duration, 2000, 1).await;
            let p50 = quantile(&mut got.delays, 0.5);
            let figures = (p50, got.allocations_per_packet, got.delays.len());
            if f == Forwarder::RawQuinn {
                raw = Some(figures);
            } else {
                relay = Some(figures);
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        let ((raw_us, raw_allocs, raw_n), (relay_us, relay_allocs, relay_n)) =
            (raw.unwrap(), relay.unwrap());
        println!(
            "round {}: at 2000 packets/s, one-way delay p50 {raw_us:.0} µs through a raw quinn forwarder, {relay_us:.0} through the runtime's relay (paced); heap allocations per packet in the process {raw_allocs:.2} and {relay_allocs:.2} ({raw_n} and {relay_n} deliveries)",
            round + 1
        );
        added_us.push(relay_us - raw_us);
        added_allocations.push(relay_allocs - raw_allocs);
    }
    for (label, mut xs, unit) in [
        (
            "delay the runtime's relay adds over raw quinn forwarding, p50",
            added_us,
            "µs",
        ),
        (
            "heap allocations the runtime's relay adds per packet",
            added_allocations,
            "",
        ),
    ] {
        xs.sort_by(f64::total_cmp);
        println!(
            "{label}: median of {} alternating rounds {:.2}{unit} (range {:.2}..{:.2})",
            xs.len(),
            median_of(&xs),
            xs[0],
            xs[xs.len() - 1]
        );
    }
}

fn main() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("machine: {cores} cores, {}", std::env::consts::ARCH);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let _ = epoch();
    if std::env::var_os("BENCH_DEBUG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("node=debug"))
            .init();
    }
    rt.block_on(bench());
}
