//! Paced release of media datagrams: what the [`LinkPacer`](super::pacing::LinkPacer) admitted
//! for a connection leaves at the paced rate, not in one burst.
//!
//! A keyframe is many datagrams made at once. Handed to QUIC together they leave as fast as
//! its congestion window allows, which on a slow access link is faster than the link: the
//! router's queue overflows and the keyframe, worthless unless whole, loses pieces. Released
//! at the pace the path carries, the burst spreads over a few hundred milliseconds instead,
//! the way a media sender's pacer spreads it. A datagram that waited here longer than its
//! class may (enhancement layers least, keyframes longest) is dropped as too late.
//!
//! The release is at the paced rate itself, not faster: at 1.25 times it, a keyframe
//! overflowed a slow link's queue whenever the rate estimate overshot. The pacer's admission
//! keeps the average under the rate, so the queue drains between keyframes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use media::Priority;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::pacing::FLOOR_BPS;

/// Datagrams waiting to be released, at most (beyond it new ones are dropped).
const QUEUE: usize = 512;
/// Up to this much may leave at once after a pause (a couple of datagrams).
const BURST: Duration = Duration::from_millis(10);

/// How long a datagram of `priority` may wait to be released before it is too late.
fn max_wait(priority: Priority) -> Duration {
    match priority {
        Priority::Keyframe => Duration::from_millis(400),
        Priority::Base => Duration::from_millis(300),
        Priority::Enhancement(_) => Duration::from_millis(60),
    }
}

/// One connection's release queue and its task.
#[derive(Debug)]
pub(super) struct Release {
    queue: mpsc::Sender<(Bytes, Priority, Instant)>,
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    /// The rate to release at, bits per second (as `f64` bits).
    rate_bps: AtomicU64,
    /// Datagrams dropped for waiting too long, or because QUIC's buffer was full (one counter
    /// for all the runtime's connections).
    dropped: Arc<AtomicU64>,
}

impl Release {
    /// A release queue for `conn`, its task running until the connection closes or this is
    /// dropped; what it drops is counted in `dropped`.
    pub(super) fn spawn(conn: quinn::Connection, dropped: Arc<AtomicU64>) -> Self {
        let (queue, rx) = mpsc::channel(QUEUE);
        let shared = Arc::new(Shared {
            rate_bps: AtomicU64::new(0),
            dropped,
        });
        tokio::spawn(release(conn, rx, shared.clone()));
        Self { queue, shared }
    }

    /// Sets the paced rate the queue releases at.
    pub(super) fn set_rate(&self, bps: f64) {
        self.shared.rate_bps.store(bps.to_bits(), Ordering::Relaxed);
    }

    /// Queues a datagram; `false` when the queue is full (it is dropped).
    pub(super) fn send(&self, bytes: Bytes, priority: Priority) -> bool {
        self.queue
            .try_send((bytes, priority, Instant::now()))
            .is_ok()
    }
}

/// The release task: one datagram at a time, each after the previous one's time at the rate.
async fn release(
    conn: quinn::Connection,
    mut rx: mpsc::Receiver<(Bytes, Priority, Instant)>,
    shared: Arc<Shared>,
) {
    let mut next = Instant::now();
    while let Some((bytes, priority, queued)) = rx.recv().await {
        let now = Instant::now();
        // After a pause, only a small burst may leave at once.
        next = next.max(now.checked_sub(BURST).unwrap_or(now));
        if next > now {
            tokio::time::sleep_until(next).await;
        }
        let now = Instant::now();
        if now.saturating_duration_since(queued) > max_wait(priority) {
            shared.dropped.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let rate = f64::from_bits(shared.rate_bps.load(Ordering::Relaxed)).max(FLOOR_BPS);
        next += Duration::from_secs_f64(bytes.len() as f64 * 8.0 / rate);
        // Never push out older datagrams (quinn's `send_datagram` would drop the oldest to make
        // room): a full buffer drops this one.
        if conn.datagram_send_buffer_space() < bytes.len() {
            shared.dropped.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        match conn.send_datagram(bytes) {
            Ok(()) => {}
            Err(quinn::SendDatagramError::ConnectionLost(_)) => return,
            Err(_) => {
                shared.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}
