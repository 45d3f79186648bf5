//! The raw rig of the relay benchmark: a raw quinn source and 4 raw quinn receivers around
//! a forwarder, either a raw quinn task or a member of the runtime; only the forwarder differs,
//! so comparing the two measures what the runtime's relay costs against quinn's own forwarding.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use node::runtime::{Control, RuntimeHandle};
use node::transport::connect::{Admitted, Connector};

use super::{GLOBAL, PAYLOAD, Packet, RelayCommand, connector, dial, member_with, now_ns};

/// A connector accepting in the background, and the links it admits.
pub(super) async fn accepting() -> (Connector, tokio::sync::mpsc::Receiver<Admitted>) {
    let c = connector();
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let (rtx, _rrx) = tokio::sync::mpsc::channel(4);
    tokio::spawn(c.clone().accept_loop(tx, rtx));
    (c, rx)
}

/// What forwards in [`super::relay_between_raw`] and [`through_at_rate`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Forwarder {
    /// A raw quinn task handing each datagram it reads to its 4 outgoing links unchanged (no
    /// decode, no encode, no runtime): the ceiling for this shape on this machine.
    RawQuinn,
    /// A member of the runtime, decoding each packet, handing it to the protocol and encoding
    /// it once for its 4 receivers, its media paced (the runtime's default) or not.
    Runtime {
        /// Whether its media is paced.
        paced: bool,
    },
}

/// What a raw quinn receiver read on the first link it admits.
#[derive(Clone)]
pub(super) struct Received {
    /// Bytes of the datagrams.
    pub(super) bytes: Arc<AtomicU64>,
    /// One-way delay of each packet in ns, if it was asked to decode them.
    pub(super) delays: Option<Arc<std::sync::Mutex<Vec<u64>>>>,
}

/// A raw quinn receiver: its connector, and what it read on the first link it admits
/// (counted by a task that holds the connector and ends with the link); `timed`: it also
/// decodes each packet for its one-way delay.
pub(super) async fn counting_receiver(timed: bool) -> (Connector, Received) {
    let (c, mut admitted) = accepting().await;
    let received = Received {
        bytes: Arc::default(),
        delays: timed.then(Arc::default),
    };
    let (tally, keep) = (received.clone(), c.clone());
    tokio::spawn(async move {
        let _keep = keep;
        let Some(inc) = admitted.recv().await else {
            return;
        };
        while let Ok(d) = inc.conn.read_datagram().await {
            tally.bytes.fetch_add(d.len() as u64, Ordering::Relaxed);
            if let Some(delays) = &tally.delays
                && let Ok(p) = overlay_core::wire::decode::<Packet>(&d)
                && let Ok(mut delays) = delays.lock()
            {
                delays.push(now_ns().saturating_sub(p.sent_ns));
            }
        }
    });
    (c, received)
}

/// A raw quinn source, a forwarder and 4 raw quinn receivers, connected.
pub(super) struct RawRig {
    pub(super) up: Admitted,
    pub(super) received: Vec<Received>,
    /// The raw forwarder's outgoing links.
    links: Vec<Admitted>,
    /// Kept until the measurement ends: the member, or the raw forwarder's task.
    member: Option<RuntimeHandle<RelayCommand, Packet>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl RawRig {
    /// The rig around `forwarder`; `timed`: the receivers decode each packet for its delay.
    pub(super) async fn new(forwarder: Forwarder, timed: bool) -> Self {
        let mut receivers = Vec::new();
        let mut received = Vec::new();
        for _ in 0..4 {
            let (r, tally) = counting_receiver(timed).await;
            receivers.push(r);
            received.push(tally);
        }
        let source = connector();
        let mut links = Vec::new();
        let (up, member, task) = match forwarder {
            Forwarder::Runtime { paced } => {
                let m = member_with(paced);
                let mut down = Vec::new();
                for r in &receivers {
                    down.push(dial(&m, r.local_addr()).await);
                }
                m.control
                    .send(Control::Command(RelayCommand::Downstream(down)))
                    .await
                    .unwrap();
                let up = source.dial(m.local_addr, Some(m.id)).await.unwrap();
                (up, Some(m), None)
            }
            Forwarder::RawQuinn => {
                let (relay, mut relay_in) = accepting().await;
                for r in &receivers {
                    links.push(relay.dial(r.local_addr(), Some(r.id())).await.unwrap());
                }
                let up = source
                    .dial(relay.local_addr(), Some(relay.id()))
                    .await
                    .unwrap();
                let from_source = relay_in.recv().await.unwrap();
                let out: Vec<quinn::Connection> = links.iter().map(|l| l.conn.clone()).collect();
                let task = tokio::spawn(async move {
                    let _keep = relay;
                    while let Ok(d) = from_source.conn.read_datagram().await {
                        for c in &out {
                            if c.send_datagram_wait(d.clone()).await.is_err() {
                                return;
                            }
                        }
                    }
                });
                (up, None, Some(task))
            }
        };
        Self {
            up,
            received,
            links,
            member,
            task,
        }
    }

    pub(super) fn close(self) {
        self.up.conn.close(0u32.into(), b"done");
        for l in &self.links {
            l.conn.close(0u32.into(), b"done");
        }
        if let Some(task) = self.task {
            task.abort();
        }
        drop(self.member);
    }
}

/// What one forwarder did at a moderate rate (see [`through_at_rate`]).
pub(super) struct AtRate {
    /// One-way delay source → receiver, each packet at each receiver, ns.
    pub(super) delays: Vec<u64>,
    /// Heap allocations in the whole process over the measured window, per packet sent.
    pub(super) allocations_per_packet: f64,
    /// Heap bytes the rig held at the end: what closing it gave back.
    pub(super) held_bytes: i64,
}

/// The raw rig around `forwarder`, the source sending a fresh packet (its send time inside)
/// `rate` times a second for `duration` after a warm-up, `burst` packets back to back at a
/// time: each packet's delay at each receiver, the process's heap allocations per packet sent
/// over the same window, and the heap the rig held at its end. Source and receivers are the
/// same raw quinn code around either forwarder, so the difference between two forwarders is
/// what the one adds over the other.
pub(super) async fn through_at_rate(
    forwarder: Forwarder,
    duration: Duration,
    rate: u64,
    burst: u64,
) -> AtRate {
    let rig = RawRig::new(forwarder, true).await;
    let payload = Bytes::from(vec![7u8; PAYLOAD]);
    let mut seq = 0u64;
    let mut send_for = async |d: Duration| {
        let start = Instant::now();
        let first = seq;
        while start.elapsed() < d {
            let sent = seq - first;
            if sent.is_multiple_of(burst.max(1)) {
                let due = start + Duration::from_secs_f64(sent as f64 / rate as f64);
                tokio::time::sleep_until(due.into()).await;
            }
            let p = Packet {
                seq,
                sent_ns: now_ns(),
                payload: payload.clone(),
            };
            let datagram = Bytes::from(overlay_core::wire::encode(&p).unwrap());
            if rig.up.conn.send_datagram(datagram).is_err() {
                break;
            }
            seq += 1;
        }
        seq - first
    };
    send_for(Duration::from_millis(500)).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    for r in &rig.received {
        if let Some(d) = &r.delays {
            d.lock().unwrap().clear();
        }
    }
    let region = stats_alloc::Region::new(GLOBAL);
    let sent = send_for(duration).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let allocations = region.change().allocations;
    let delays = rig
        .received
        .iter()
        .filter_map(|r| r.delays.as_ref())
        .flat_map(|d| d.lock().unwrap().clone())
        .collect();
    let in_use = || {
        let s = GLOBAL.stats();
        s.bytes_allocated as i64 - s.bytes_deallocated as i64 + s.bytes_reallocated as i64
    };
    let before_close = in_use();
    rig.close();
    tokio::time::sleep(Duration::from_millis(200)).await;
    AtRate {
        delays,
        allocations_per_packet: allocations as f64 / sent.max(1) as f64,
        held_bytes: before_close - in_use(),
    }
}
