//! The socket quinn sends through when the network is emulated: a real UDP socket on the
//! member's loopback address, with every datagram sent through the member's upload link and
//! held for the delay to its destination's place, and every datagram received through the
//! member's download link. Sending never blocks: a datagram a full queue cannot take is dropped,
//! as a router drops it, and QUIC's congestion control reacts as it would on a real path.

use std::collections::BinaryHeap;
use std::fmt;
use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use overlay_core::Time;
use overlay_core::rng::{ProtocolRng, rng_from_seed};
use quinn::udp::{RecvMeta, Transmit};
use quinn::{AsyncUdpSocket, UdpPoller};
use rand::RngExt;
use tokio::sync::mpsc;

use super::link::Bottleneck;
use super::{Emulation, RateChange};

/// Datagrams held (in flight on emulated paths, in each direction) before more are dropped.
const HELD: usize = 65_536;
/// The largest datagram carried.
const MAX_DATAGRAM: usize = 65_535;

/// A datagram waiting for its time.
#[derive(Debug)]
struct Held {
    at: Time,
    seq: u64,
    peer: SocketAddr,
    bytes: Vec<u8>,
}

impl PartialEq for Held {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Held {}
impl PartialOrd for Held {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Held {
    /// Reversed: the heap pops the earliest first.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// What the send side keeps between datagrams.
struct SendSide {
    upload: Bottleneck,
    rng: ProtocolRng,
    seq: u64,
}

/// A UDP socket on an emulated wide-area network.
pub struct EmulatedSocket {
    local: SocketAddr,
    emulation: Arc<Emulation>,
    /// This member's place (`None`: the spec does not have it; nothing is emulated).
    me: Option<usize>,
    clock: tokio::time::Instant,
    send: Mutex<SendSide>,
    /// Datagrams to send when their time comes.
    outgoing: mpsc::Sender<Held>,
    /// Datagrams whose time came, for quinn.
    incoming: Mutex<mpsc::Receiver<(SocketAddr, Vec<u8>)>>,
}

impl fmt::Debug for EmulatedSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmulatedSocket")
            .field("local", &self.local)
            .field("place", &self.me)
            .finish_non_exhaustive()
    }
}

impl EmulatedSocket {
    /// Binds `local` (a loopback address of this member's own) on the emulated network; `seed`
    /// draws its loss and jitter.
    pub fn bind(local: SocketAddr, emulation: Arc<Emulation>, seed: u64) -> io::Result<Arc<Self>> {
        let std_socket = std::net::UdpSocket::bind(local)?;
        std_socket.set_nonblocking(true)?;
        let io = Arc::new(tokio::net::UdpSocket::from_std(std_socket)?);
        let local = io.local_addr()?;
        let me = emulation.place_of(local.ip());
        let queue = Duration::from_micros(emulation.spec().queue_us);
        let (up, down, changes) = me.map_or((0, 0, Vec::new()), |i| {
            let p = emulation.place(i);
            (p.up_bps, p.down_bps, p.down_changes.clone())
        });
        let clock = tokio::time::Instant::now();
        let (out_tx, out_rx) = mpsc::channel(HELD);
        let (in_tx, in_rx) = mpsc::channel(HELD);
        tokio::spawn(send_when_due(io.clone(), clock, out_rx));
        let download = Download {
            link: Bottleneck::new(down, queue),
            changes: changes.into(),
        };
        tokio::spawn(receive(io, clock, download, in_tx));
        Ok(Arc::new(Self {
            local,
            emulation,
            me,
            clock,
            send: Mutex::new(SendSide {
                upload: Bottleneck::new(up, queue),
                rng: rng_from_seed(seed),
                seq: 0,
            }),
            outgoing: out_tx,
            incoming: Mutex::new(in_rx),
        }))
    }
}

/// Microseconds since `clock`, as a protocol time.
fn since(clock: tokio::time::Instant) -> Time {
    Time::from_micros(u64::try_from(clock.elapsed().as_micros()).unwrap_or(u64::MAX))
}

/// Sends each held datagram when its time comes.
async fn send_when_due(
    io: Arc<tokio::net::UdpSocket>,
    clock: tokio::time::Instant,
    mut held: mpsc::Receiver<Held>,
) {
    let mut heap: BinaryHeap<Held> = BinaryHeap::new();
    loop {
        let next = heap
            .peek()
            .map(|h| clock + Duration::from_micros(h.at.as_micros()));
        tokio::select! {
            item = held.recv() => match item {
                Some(h) => heap.push(h),
                None => return,
            },
            () = async {
                match next {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            } => {
                let now = since(clock);
                while heap.peek().is_some_and(|h| h.at <= now) {
                    if let Some(h) = heap.pop() {
                        // A send that fails here is a datagram lost on the way.
                        let _ = io.send_to(&h.bytes, h.peer).await;
                    }
                }
            }
        }
    }
}

/// This member's download link and the changes of its rate still to come.
pub(super) struct Download {
    pub(super) link: Bottleneck,
    pub(super) changes: std::collections::VecDeque<RateChange>,
}

impl Download {
    /// A datagram of `bytes` arriving at `now`: when it has crossed the link (`None`: dropped).
    pub(super) fn offer(&mut self, now: Time, bytes: usize) -> Option<Time> {
        while let Some(change) = self
            .changes
            .front()
            .filter(|c| now >= Time::from_millis(c.after_ms))
        {
            self.link.set_rate(change.bps);
            self.changes.pop_front();
        }
        self.link.offer(now, bytes)
    }
}

/// Takes datagrams off the wire through the download link, and hands each over when it has
/// crossed it.
async fn receive(
    io: Arc<tokio::net::UdpSocket>,
    clock: tokio::time::Instant,
    mut download: Download,
    ready: mpsc::Sender<(SocketAddr, Vec<u8>)>,
) {
    let mut heap: BinaryHeap<Held> = BinaryHeap::new();
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut seq = 0u64;
    loop {
        let next = heap
            .peek()
            .map(|h| clock + Duration::from_micros(h.at.as_micros()));
        tokio::select! {
            got = io.recv_from(&mut buf) => {
                let Ok((n, peer)) = got else { continue };
                if let Some(at) = download.offer(since(clock), n) {
                    seq += 1;
                    heap.push(Held { at, seq, peer, bytes: buf[..n].to_vec() });
                }
            }
            () = async {
                match next {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            } => {
                let now = since(clock);
                while heap.peek().is_some_and(|h| h.at <= now) {
                    if let Some(h) = heap.pop()
                        && ready.try_send((h.peer, h.bytes)).is_err()
                        && ready.is_closed()
                    {
                        return;
                    }
                }
            }
        }
    }
}

/// Sending never waits (a full queue drops), so the socket is always writable.
#[derive(Debug)]
struct AlwaysWritable;

impl UdpPoller for AlwaysWritable {
    fn poll_writable(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl AsyncUdpSocket for EmulatedSocket {
    fn create_io_poller(self: Arc<Self>) -> Pin<Box<dyn UdpPoller>> {
        Box::pin(AlwaysWritable)
    }

    fn try_send(&self, transmit: &Transmit<'_>) -> io::Result<()> {
        let now = since(self.clock);
        let bytes = transmit.contents;
        let Ok(mut side) = self.send.lock() else {
            return Ok(());
        };
        let there = self.emulation.place_of(transmit.destination.ip());
        let at = match (self.me, there) {
            (Some(me), Some(there)) => {
                let spec = self.emulation.spec();
                if spec.loss > 0.0 && side.rng.random::<f64>() < spec.loss {
                    return Ok(());
                }
                let Some(sent) = side.upload.offer(now, bytes.len()) else {
                    return Ok(()); // the upload queue is full: dropped
                };
                let jitter = if spec.jitter_us > 0 {
                    Duration::from_micros(side.rng.random_range(0..=spec.jitter_us))
                } else {
                    Duration::ZERO
                };
                sent + self.emulation.one_way(me, there) + jitter
            }
            // A destination outside the emulated world: no emulation.
            _ => now,
        };
        side.seq += 1;
        let held = Held {
            at,
            seq: side.seq,
            peer: transmit.destination,
            bytes: bytes.to_vec(),
        };
        // A full hold drops, as a full link does.
        let _ = self.outgoing.try_send(held);
        Ok(())
    }

    fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        let Ok(mut incoming) = self.incoming.lock() else {
            return Poll::Ready(Err(io::Error::other("the emulated socket is poisoned")));
        };
        match incoming.poll_recv(cx) {
            Poll::Ready(Some((peer, bytes))) => {
                let (Some(buf), Some(m)) = (bufs.first_mut(), meta.first_mut()) else {
                    return Poll::Ready(Ok(0));
                };
                let n = bytes.len().min(buf.len());
                buf[..n].copy_from_slice(&bytes[..n]);
                *m = RecvMeta {
                    addr: peer,
                    len: n,
                    stride: n,
                    ecn: None,
                    dst_ip: Some(self.local.ip()),
                };
                Poll::Ready(Ok(1))
            }
            Poll::Ready(None) => Poll::Ready(Err(io::Error::other("the emulated socket closed"))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }
}
