//! One direction of an emulated access link: a bottleneck of a given rate with a queue of a
//! given length (in time at that rate). A datagram leaves when the datagrams before it have
//! been serialised; one that would wait longer than the queue holds is dropped, as a router's
//! full queue drops it. Pure arithmetic on times, so it is tested without a clock.

use std::time::Duration;

use overlay_core::Time;

/// A rate-limited link with a bounded queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bottleneck {
    /// Bits per second (0: unlimited).
    rate_bps: u64,
    /// The longest a datagram may wait in the queue.
    queue: Duration,
    /// When the last datagram accepted finishes serialising.
    free_at: Time,
}

impl Bottleneck {
    /// A link of `rate_bps` (0: unlimited) whose queue holds `queue` worth of traffic.
    pub fn new(rate_bps: u64, queue: Duration) -> Self {
        Self {
            rate_bps,
            queue,
            free_at: Time::ZERO,
        }
    }

    /// From now on the link carries `rate_bps` (0: unlimited); what is queued keeps its times.
    pub fn set_rate(&mut self, rate_bps: u64) {
        self.rate_bps = rate_bps;
    }

    /// A datagram of `bytes` offered at `now`: when it has crossed the link, or `None` when the
    /// queue is full (it is dropped).
    pub fn offer(&mut self, now: Time, bytes: usize) -> Option<Time> {
        if self.rate_bps == 0 {
            return Some(now);
        }
        let start = self.free_at.max(now);
        if start.saturating_since(now) > self.queue {
            return None;
        }
        let serialise = Duration::from_nanos(
            (bytes as u64 * 8).saturating_mul(1_000_000_000) / self.rate_bps.max(1),
        );
        self.free_at = start + serialise;
        Some(self.free_at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datagrams_leave_at_the_links_rate_and_a_full_queue_drops() {
        // 1 Mbit/s: a 1250-byte datagram takes 10 ms; the queue holds 25 ms.
        let mut link = Bottleneck::new(1_000_000, Duration::from_millis(25));
        let t = Time::from_secs(1);
        let at = |ms: u64| Some(t + Duration::from_millis(ms));
        assert_eq!(link.offer(t, 1250), at(10));
        assert_eq!(link.offer(t, 1250), at(20));
        assert_eq!(link.offer(t, 1250), at(30));
        // The next would wait 30 ms: more than the queue holds.
        assert_eq!(link.offer(t, 1250), None);
        // Once the queue drained, the link is free again.
        assert_eq!(link.offer(t + Duration::from_millis(100), 1250), at(110));
        assert_eq!(Bottleneck::new(0, Duration::ZERO).offer(t, 9000), Some(t));
    }
}
