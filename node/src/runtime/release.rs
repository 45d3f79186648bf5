//! Paced release of media datagrams: what the [`LinkPacer`](super::pacing::LinkPacer) admitted
//! for a connection leaves at the paced rate, not in one burst, most important first.
//!
//! A keyframe is many datagrams made at once. Handed to QUIC together they leave as fast as
//! its congestion window allows, which on a slow access link is faster than the link: the
//! router's queue overflows and the keyframe, worthless unless whole, loses pieces. Released
//! at the pace the path carries, the burst spreads over a few hundred milliseconds instead,
//! the way a media sender's pacer spreads it.
//!
//! What waits leaves by priority, oldest first within a class: a keyframe goes ahead of the
//! base and enhancement layers queued before it (they belong to the group it replaces, or
//! would wait for it anyway), the base layer ahead of enhancements. A datagram that waited
//! here longer than its class may (enhancement layers least, keyframes longest) is dropped as
//! too late; so on a link that cannot carry everything, the enhancement layers queued behind
//! a keyframe are what gives way, not the keyframe's last pieces.
//!
//! The release is at the paced rate itself, not faster: at 1.25 times it, a keyframe
//! overflowed a slow link's queue whenever the rate estimate overshot. The pacer's admission
//! keeps the average under the rate, so the queue drains between keyframes.

use std::collections::VecDeque;
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
/// Classes released in order: keyframes, the base layer, then enhancement layers 1, 2, and 3
/// or higher together.
const CLASSES: usize = 5;

/// How long a datagram of `priority` may wait to be released before it is too late.
fn max_wait(priority: Priority) -> Duration {
    match priority {
        Priority::Keyframe => Duration::from_millis(400),
        Priority::Base => Duration::from_millis(300),
        Priority::Enhancement(_) => Duration::from_millis(60),
    }
}

/// The datagrams waiting on one connection, a queue per class.
#[derive(Debug)]
struct Waiting {
    classes: [VecDeque<(Bytes, Instant)>; CLASSES],
    len: usize,
}

impl Waiting {
    fn new() -> Self {
        Self {
            classes: Default::default(),
            len: 0,
        }
    }

    fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Queues a datagram of `priority` that arrived at `queued`; `false` when full (dropped).
    fn push(&mut self, bytes: Bytes, priority: Priority, queued: Instant) -> bool {
        if self.len >= QUEUE {
            return false;
        }
        let class = usize::from(priority.class()).min(CLASSES - 1);
        self.classes[class].push_back((bytes, queued));
        self.len += 1;
        true
    }

    /// The next datagram to release at `now`: the oldest of the most important class, after
    /// dropping what waited too long (counted into `late`).
    fn pop(&mut self, now: Instant, late: &mut u64) -> Option<Bytes> {
        for (class, queue) in self.classes.iter_mut().enumerate() {
            let limit = max_wait(Priority::from_class(class as u8));
            while let Some((bytes, queued)) = queue.pop_front() {
                self.len -= 1;
                if now.saturating_duration_since(queued) > limit {
                    *late += 1;
                    continue;
                }
                return Some(bytes);
            }
        }
        None
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

/// Moves what was queued on the channel into `waiting`, without waiting (what does not fit
/// is counted into `dropped`); `false` once the channel is closed and empty.
fn take_queued(
    rx: &mut mpsc::Receiver<(Bytes, Priority, Instant)>,
    waiting: &mut Waiting,
    dropped: &mut u64,
) -> bool {
    loop {
        match rx.try_recv() {
            Ok((bytes, priority, queued)) => {
                if !waiting.push(bytes, priority, queued) {
                    *dropped += 1;
                }
            }
            Err(mpsc::error::TryRecvError::Empty) => return true,
            Err(mpsc::error::TryRecvError::Disconnected) => return false,
        }
    }
}

/// The release task: one datagram at a time, each after the previous one's time at the rate,
/// the most important waiting first.
async fn release(
    conn: quinn::Connection,
    mut rx: mpsc::Receiver<(Bytes, Priority, Instant)>,
    shared: Arc<Shared>,
) {
    let mut next = Instant::now();
    let mut waiting = Waiting::new();
    let mut open = true;
    loop {
        if waiting.is_empty() {
            if !open {
                return;
            }
            let Some((bytes, priority, queued)) = rx.recv().await else {
                return;
            };
            waiting.push(bytes, priority, queued);
        }
        let now = Instant::now();
        // After a pause, only a small burst may leave at once.
        next = next.max(now.checked_sub(BURST).unwrap_or(now));
        if next > now {
            tokio::time::sleep_until(next).await;
        }
        // What arrived meanwhile competes for this turn.
        let mut late = 0;
        open = open && take_queued(&mut rx, &mut waiting, &mut late);
        let picked = waiting.pop(Instant::now(), &mut late);
        shared.dropped.fetch_add(late, Ordering::Relaxed);
        let Some(bytes) = picked else { continue };
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

#[cfg(test)]
mod tests {
    use super::*;

    fn datagram(tag: u8) -> Bytes {
        Bytes::from(vec![tag])
    }

    #[test]
    fn the_most_important_class_leaves_first_and_the_stale_are_dropped() {
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let mut w = Waiting::new();
        assert!(w.push(datagram(1), Priority::Enhancement(1), ms(0)));
        assert!(w.push(datagram(2), Priority::Base, ms(0)));
        assert!(w.push(datagram(3), Priority::Enhancement(2), ms(5)));
        assert!(w.push(datagram(4), Priority::Keyframe, ms(10)));
        assert!(w.push(datagram(5), Priority::Keyframe, ms(10)));
        assert!(w.push(datagram(6), Priority::Base, ms(20)));
        let mut late = 0;
        let mut order = Vec::new();
        // Keyframes first, in order, then the base layer, then enhancement layer 1 before 2.
        for at in [20, 21, 22, 23, 24] {
            order.push(w.pop(ms(at), &mut late).expect("something waits")[0]);
        }
        assert_eq!(order, [4, 5, 2, 6, 1]);
        assert_eq!(late, 0);
        // Enhancement layer 2 waited past its 60 ms: dropped as late, nothing is left.
        assert_eq!(w.pop(ms(70), &mut late), None);
        assert_eq!(late, 1);
        assert!(w.is_empty());
    }

    #[test]
    fn a_stale_keyframe_piece_gives_way_to_a_fresh_one_and_a_full_queue_refuses() {
        let t0 = Instant::now();
        let mut w = Waiting::new();
        w.push(datagram(1), Priority::Keyframe, t0);
        w.push(
            datagram(2),
            Priority::Keyframe,
            t0 + Duration::from_millis(300),
        );
        let mut late = 0;
        let at = t0 + Duration::from_millis(450);
        assert_eq!(w.pop(at, &mut late), Some(datagram(2)));
        assert_eq!(late, 1);
        for _ in 0..QUEUE {
            assert!(w.push(datagram(0), Priority::Base, at));
        }
        assert!(
            !w.push(datagram(0), Priority::Keyframe, at),
            "the queue is full"
        );
    }
}
