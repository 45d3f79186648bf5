//! The smallest of the latest samples: a link's propagation delay without the queue in front of
//! it.
//!
//! A smoothed RTT follows queueing, including the queue a member's own stream builds on the link
//! it uses: routing by it, a member moves its stream off a link because the stream is on it, and
//! back once the queue drains elsewhere. The smallest RTT of the last [`RECENT_SAMPLES`] samples
//! (pings go out about once a second, so about half a minute) sees the moments the queue was
//! empty, and still follows a path that really grew longer within that window, unlike the
//! smallest sample ever seen.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How many of the latest samples [`RecentMin`] keeps.
pub const RECENT_SAMPLES: usize = 32;

/// The smallest of the last [`RECENT_SAMPLES`] samples, exactly (a ring of them; fixed size, so
/// it stays `Copy` and bounded whatever a peer does).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecentMin {
    /// Samples in microseconds (saturated at `u32::MAX`, over an hour), oldest overwritten first.
    ring: [u32; RECENT_SAMPLES],
    /// How many samples were ever taken, up to the ring's size.
    filled: u8,
    /// Where the next sample goes.
    next: u8,
}

impl Default for RecentMin {
    fn default() -> Self {
        Self {
            ring: [0; RECENT_SAMPLES],
            filled: 0,
            next: 0,
        }
    }
}

impl RecentMin {
    /// Take in a sample, forgetting the oldest once the ring is full.
    pub fn update(&mut self, sample: Duration) {
        let micros = u32::try_from(sample.as_micros()).unwrap_or(u32::MAX);
        let slot = usize::from(self.next) % RECENT_SAMPLES;
        self.ring[slot] = micros;
        self.next = u8::try_from((slot + 1) % RECENT_SAMPLES).unwrap_or(0);
        if usize::from(self.filled) < RECENT_SAMPLES {
            self.filled += 1;
        }
    }

    /// The smallest of the samples kept, if any was taken.
    pub fn get(&self) -> Option<Duration> {
        let kept = usize::from(self.filled).min(RECENT_SAMPLES);
        self.ring[..kept]
            .iter()
            .min()
            .map(|&m| Duration::from_micros(u64::from(m)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_queue_that_builds_up_does_not_raise_it_and_a_longer_path_does_in_time() {
        let ms = Duration::from_millis;
        let mut m = RecentMin::default();
        assert_eq!(m.get(), None);
        m.update(ms(20));
        // The member's own stream queues behind the link: samples of 100 to 250 ms.
        for i in 0..20 {
            m.update(ms(100 + i * 10));
        }
        assert_eq!(m.get(), Some(ms(20)));
        // The path itself grew to 60 ms: once the old samples leave the window, it shows.
        for _ in 0..RECENT_SAMPLES {
            m.update(ms(60));
        }
        assert_eq!(m.get(), Some(ms(60)));
    }

    proptest! {
        /// Exactly the smallest of the last samples, whatever they are.
        #[test]
        fn is_the_minimum_of_the_latest_samples(
            samples in proptest::collection::vec(0u64..5_000_000_000, 1..100)
        ) {
            let mut m = RecentMin::default();
            for &s in &samples {
                m.update(Duration::from_micros(s));
            }
            let start = samples.len().saturating_sub(RECENT_SAMPLES);
            let expected = samples[start..].iter().map(|&s| s.min(u64::from(u32::MAX))).min();
            prop_assert_eq!(m.get(), expected.map(Duration::from_micros));
        }
    }
}
