//! Rate adaptation by dropping: a token bucket per outgoing link that, when the link is slower
//! than the stream, keeps the most important packets and drops the least important first.
//!
//! Each priority class may send only while the bucket holds at least its reserve: enhancement
//! layers need the most headroom; keyframes may borrow below an empty bucket, and the base
//! layer may borrow half as far. So when the link's share shrinks, enhancement packets stop
//! first, then base packets; a keyframe is never dropped while a packet of a higher class would
//! still be sent (its reserve is lower), and the debt a keyframe leaves is repaid by the
//! enhancement layers it holds back, not by the base layer's next frames (a lost base frame
//! spoils every frame until the next keyframe). Nothing queues: a conference skips what would
//! be stale.

use std::time::Duration;

use overlay_core::{Bandwidth, Time};

use crate::packet::Priority;

/// A priority-aware token bucket.
#[derive(Clone, Debug, PartialEq)]
pub struct PriorityPacer {
    rate_bytes_per_s: f64,
    burst: f64,
    level: f64,
    last: Option<Time>,
    sent: u64,
    dropped: u64,
    /// How far below empty a keyframe may take the bucket, as a multiple of the burst.
    keyframe_debt: f64,
}

/// How much burst a pacer absorbs: 200 ms of its rate.
pub const BURST: Duration = Duration::from_millis(200);

impl PriorityPacer {
    /// A pacer at `rate`, its bucket full.
    pub fn new(rate: Bandwidth) -> Self {
        let rate_bytes_per_s = rate.bps_f64() / 8.0;
        let burst = (rate_bytes_per_s * BURST.as_secs_f64()).max(1500.0);
        Self {
            rate_bytes_per_s,
            burst,
            level: burst,
            last: None,
            sent: 0,
            dropped: 0,
            keyframe_debt: 1.0,
        }
    }

    /// Lets keyframes borrow up to `debt` of the rate below an empty bucket (one burst,
    /// [`BURST`], unless set): a keyframe that does not fit the burst is then sent whole, and
    /// the enhancement layers wait while the debt is repaid (the base layer may borrow half as
    /// far).
    pub fn with_keyframe_debt(mut self, debt: Duration) -> Self {
        self.keyframe_debt = (debt.as_secs_f64() / BURST.as_secs_f64()).max(0.0);
        self
    }

    /// Change the rate (keeps the current level, clamped to the new burst).
    pub fn set_rate(&mut self, rate: Bandwidth) {
        self.rate_bytes_per_s = rate.bps_f64() / 8.0;
        self.burst = (self.rate_bytes_per_s * BURST.as_secs_f64()).max(1500.0);
        self.level = self.level.min(self.burst);
    }

    /// The current rate.
    pub fn rate(&self) -> Bandwidth {
        Bandwidth::from_bps_f64(self.rate_bytes_per_s * 8.0)
    }

    fn refill(&mut self, now: Time) {
        if let Some(last) = self.last {
            let dt = now.saturating_since(last).as_secs_f64();
            self.level = (self.level + dt * self.rate_bytes_per_s).min(self.burst);
        }
        self.last = Some(now.max(self.last.unwrap_or(now)));
    }

    /// The level a class needs before it may send: a share of the burst, larger for less
    /// important classes (keyframes may borrow, by default down to minus one burst).
    fn reserve(&self, priority: Priority) -> f64 {
        match priority {
            Priority::Keyframe => -self.burst * self.keyframe_debt,
            Priority::Base => -self.burst * self.keyframe_debt / 2.0,
            Priority::Enhancement(n) => self.burst * (0.25 * f64::from(n.max(1))).min(0.9),
        }
    }

    /// Whether a packet of `bytes` and `priority` offered at `now` is sent (`true`, and charged)
    /// or dropped.
    pub fn offer(&mut self, now: Time, bytes: usize, priority: Priority) -> bool {
        self.refill(now);
        if self.level >= self.reserve(priority) {
            self.level -= bytes as f64;
            self.sent += 1;
            true
        } else {
            self.dropped += 1;
            false
        }
    }

    /// Whether a packet of `priority` would be sent now, without charging it.
    pub fn would_send(&mut self, now: Time, priority: Priority) -> bool {
        self.refill(now);
        self.level >= self.reserve(priority)
    }

    /// Packets sent and dropped so far.
    pub fn counts(&self) -> (u64, u64) {
        (self.sent, self.dropped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::{SourceConfig, SyntheticSource};
    use proptest::prelude::*;

    #[test]
    fn a_keyframe_larger_than_the_burst_goes_whole_when_it_may_borrow_enough() {
        // 800 kbit/s: a burst is 20 kB; a keyframe of 40 datagrams is 48 kB.
        let rate = Bandwidth::from_kbps(800);
        let offer = |pacer: &mut PriorityPacer| {
            (0..40)
                .filter(|_| pacer.offer(Time::from_secs(1), 1200, Priority::Keyframe))
                .count()
        };
        let mut short = PriorityPacer::new(rate);
        assert!(offer(&mut short) < 40, "one burst of debt cuts it");
        let mut long = PriorityPacer::new(rate).with_keyframe_debt(Duration::from_secs(1));
        assert_eq!(offer(&mut long), 40);
        // The bucket is 28 kB in debt: the base layer goes on (a lost base frame spoils the
        // group), the enhancement layers wait until the debt is repaid and 5 kB are back.
        assert!(long.offer(Time::from_millis(1100), 1200, Priority::Base));
        assert!(!long.offer(Time::from_millis(1300), 1200, Priority::Enhancement(1)));
        assert!(long.offer(Time::from_millis(1400), 1200, Priority::Enhancement(1)));
        // Deeper in debt than half the keyframes' 100 kB, the base layer waits too.
        let mut deep = PriorityPacer::new(rate).with_keyframe_debt(Duration::from_secs(1));
        for _ in 0..80 {
            assert!(deep.offer(Time::from_secs(1), 1200, Priority::Keyframe));
        }
        assert!(!deep.offer(Time::from_secs(1), 1200, Priority::Base));
        assert!(deep.offer(Time::from_secs(1), 1200, Priority::Keyframe));
    }

    #[test]
    fn a_slow_link_loses_enhancements_first_and_keeps_keyframes() {
        // A 2.4 Mbps stream through a 1.4 Mbps link: about half the enhancement bytes go.
        let config = SourceConfig {
            rate: Bandwidth::from_kbps(2400),
            ..SourceConfig::default()
        };
        let mut source = SyntheticSource::new(config, 0, Time::ZERO);
        let mut pacer = PriorityPacer::new(Bandwidth::from_kbps(1400));
        let mut sent = std::collections::BTreeMap::new();
        let mut offered = std::collections::BTreeMap::new();
        let mut t = Time::ZERO;
        while t < Time::from_secs(20) {
            for p in source.poll(t) {
                *offered.entry(p.priority).or_insert(0) += p.payload.len();
                if pacer.offer(t, p.payload.len(), p.priority) {
                    *sent.entry(p.priority).or_insert(0) += p.payload.len();
                }
            }
            t += Duration::from_millis(5);
        }
        let share = |p| sent.get(&p).copied().unwrap_or(0) as f64 / offered[&p] as f64;
        let (key, base, e1, e2) = (
            share(Priority::Keyframe),
            share(Priority::Base),
            share(Priority::Enhancement(1)),
            share(Priority::Enhancement(2)),
        );
        assert_eq!(key, 1.0);
        // A keyframe empties the bucket, so a few base packets right after it go too.
        assert!(base > 0.9, "{base}");
        assert!(base > e1 && e1 >= e2, "{base} {e1} {e2}");
        assert!(e2 < 0.5, "{e2}");
        let total: usize = sent.values().sum();
        assert!(
            total as f64 * 8.0 / 20.0 < 1.45e6,
            "the link's rate is respected"
        );
    }

    proptest! {
        /// Whatever the rate and offers: whenever an enhancement packet would be sent, a keyframe
        /// or base packet offered at that moment would be too.
        #[test]
        fn never_a_keyframe_dropped_while_an_enhancement_goes(
            rate_kbps in 10u64..5000,
            offers in proptest::collection::vec((0u64..50_000, 1usize..1500, 0u8..4), 1..300),
        ) {
            let mut pacer = PriorityPacer::new(Bandwidth::from_kbps(rate_kbps));
            let mut now = Time::ZERO;
            for (gap, bytes, class) in offers {
                now += Duration::from_micros(gap);
                let enh = pacer.would_send(now, Priority::Enhancement(1));
                if enh {
                    prop_assert!(pacer.would_send(now, Priority::Keyframe));
                    prop_assert!(pacer.would_send(now, Priority::Base));
                }
                pacer.offer(now, bytes, Priority::from_class(class));
            }
        }
    }
}
