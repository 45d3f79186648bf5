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
//! On a path faster than what is sent, nothing waits: a datagram whose time has come leaves at
//! once from the sender's own task, and only what must wait is handed to the queue's task.
//!
//! The release is at the paced rate itself, not faster: at 1.25 times it, a keyframe
//! overflowed a slow link's queue whenever the rate estimate overshot. The pacer's admission
//! keeps the average under the rate, so the queue drains between keyframes.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use media::Priority;
use tokio::sync::Notify;
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
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    conn: quinn::Connection,
    state: Mutex<State>,
    /// Wakes the task when a datagram is queued, or when the queue is dropped.
    wake: Notify,
    /// The rate to release at, bits per second (as `f64` bits).
    rate_bps: AtomicU64,
    /// Datagrams dropped for waiting too long, or because QUIC's buffer was full (one counter
    /// for all the runtime's connections).
    dropped: Arc<AtomicU64>,
}

#[derive(Debug)]
struct State {
    waiting: Waiting,
    /// When the next datagram may leave.
    next: Instant,
    /// The queue was dropped or the connection lost: the task ends.
    closed: bool,
}

impl Shared {
    /// The time `bytes` take at the rate.
    fn serialisation(&self, bytes: usize) -> Duration {
        let rate = f64::from_bits(self.rate_bps.load(Ordering::Relaxed)).max(FLOOR_BPS);
        Duration::from_secs_f64(bytes as f64 * 8.0 / rate)
    }

    /// Hands a datagram to QUIC; what QUIC's buffer has no room for, or a lost connection
    /// refuses, is counted as dropped (a lost connection also closes the queue).
    fn transmit(&self, bytes: Bytes) {
        // Never push out older datagrams (quinn's `send_datagram` would drop the oldest to make
        // room): a full buffer drops this one.
        if self.conn.datagram_send_buffer_space() < bytes.len() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if let Err(e) = self.conn.send_datagram(bytes) {
            if matches!(e, quinn::SendDatagramError::ConnectionLost(_))
                && let Ok(mut state) = self.state.lock()
            {
                state.closed = true;
            }
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl Release {
    /// A release queue for `conn`, its task running until the connection closes or this is
    /// dropped; what it drops is counted in `dropped`.
    pub(super) fn spawn(conn: quinn::Connection, dropped: Arc<AtomicU64>) -> Self {
        let shared = Arc::new(Shared {
            conn,
            state: Mutex::new(State {
                waiting: Waiting::new(),
                next: Instant::now(),
                closed: false,
            }),
            wake: Notify::new(),
            rate_bps: AtomicU64::new(0),
            dropped,
        });
        tokio::spawn(release(shared.clone()));
        Self { shared }
    }

    /// Sets the paced rate the queue releases at.
    pub(super) fn set_rate(&self, bps: f64) {
        self.shared.rate_bps.store(bps.to_bits(), Ordering::Relaxed);
    }

    /// Sends a datagram at the paced rate: at once when nothing waits and its time has come
    /// (on a path faster than what is sent, every datagram: no hand-over to the task), else
    /// queued for the task. `false` when the queue is full or closed (it is dropped); what
    /// QUIC refuses is counted with what the queue drops, as when the task sends it. QUIC's
    /// buffer is asked for room again though the pacer's admission saw room: the release task
    /// may hand over the last datagram it popped meanwhile (outside the lock), and a datagram
    /// sent into a full buffer would push out an older one.
    pub(super) fn send(&self, bytes: Bytes, priority: Priority) -> bool {
        let now = Instant::now();
        let Ok(mut state) = self.shared.state.lock() else {
            return false;
        };
        if state.closed {
            return false;
        }
        // After a pause, only a small burst may leave at once.
        state.next = state.next.max(now.checked_sub(BURST).unwrap_or(now));
        if state.waiting.is_empty() && state.next <= now {
            state.next += self.shared.serialisation(bytes.len());
            drop(state);
            self.shared.transmit(bytes);
            return true;
        }
        let queued = state.waiting.push(bytes, priority, now);
        drop(state);
        self.shared.wake.notify_one();
        queued
    }
}

impl Drop for Release {
    fn drop(&mut self) {
        if let Ok(mut state) = self.shared.state.lock() {
            state.closed = true;
        }
        self.shared.wake.notify_one();
    }
}

/// What the task does next.
enum Turn {
    /// Nothing waits: sleep until something is queued.
    Idle,
    /// The next datagram may leave at this time.
    At(Instant),
    /// The queue is closed.
    Stop,
}

/// The release task: what was queued leaves one datagram at a time, each after the previous
/// one's time at the rate, the most important waiting first.
async fn release(shared: Arc<Shared>) {
    loop {
        let turn = match shared.state.lock() {
            Ok(state) if state.closed => Turn::Stop,
            Ok(state) if state.waiting.is_empty() => Turn::Idle,
            Ok(state) => Turn::At(state.next),
            Err(_) => Turn::Stop,
        };
        match turn {
            Turn::Stop => return,
            Turn::Idle => {
                shared.wake.notified().await;
                continue;
            }
            Turn::At(next) => {
                if next > Instant::now() {
                    tokio::time::sleep_until(next).await;
                } else {
                    // Yield now and then, as a channel's receive would.
                    tokio::task::consume_budget().await;
                }
            }
        }
        let now = Instant::now();
        let mut late = 0;
        let picked = match shared.state.lock() {
            Ok(mut state) => {
                let picked = state.waiting.pop(now, &mut late);
                if let Some(bytes) = &picked {
                    state.next = state.next.max(now.checked_sub(BURST).unwrap_or(now))
                        + shared.serialisation(bytes.len());
                }
                picked
            }
            Err(_) => return,
        };
        shared.dropped.fetch_add(late, Ordering::Relaxed);
        if let Some(bytes) = picked {
            shared.transmit(bytes);
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
