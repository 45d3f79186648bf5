//! Available-bandwidth estimation: smoothing of active samples, and a passive meter of the rate
//! at which data actually arrives.

use std::collections::VecDeque;
use std::time::Duration;

use overlay_core::{Bandwidth, Time, duration_micros};
use serde::{Deserialize, Serialize};

use crate::Ewma;

/// Smoothed available bandwidth from samples (active probes or passive meter readings).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct BandwidthEstimator {
    average: Ewma,
    last_sample_at: Option<Time>,
}

impl BandwidthEstimator {
    /// An estimator giving weight `alpha` to each new sample.
    pub fn new(alpha: f64) -> Self {
        Self {
            average: Ewma::new(alpha),
            last_sample_at: None,
        }
    }

    /// Take in a sample measured at `now`; returns the new estimate.
    pub fn update(&mut self, now: Time, sample: Bandwidth) -> Bandwidth {
        self.last_sample_at = Some(now);
        Bandwidth::from_bps_f64(self.average.update(sample.bps_f64()).unwrap_or(0.0))
    }

    /// The current estimate, if any sample arrived.
    pub fn estimate(&self) -> Option<Bandwidth> {
        self.average.value().map(Bandwidth::from_bps_f64)
    }

    /// The smoothed deviation of samples, in bits per second.
    pub fn deviation(&self) -> Bandwidth {
        Bandwidth::from_bps_f64(self.average.deviation())
    }

    /// When the last sample arrived.
    pub fn last_sample_at(&self) -> Option<Time> {
        self.last_sample_at
    }
}

/// Measures the rate at which bytes are actually delivered, over a sliding window.
///
/// Bytes are counted into a fixed number of buckets covering the window, so memory is bounded
/// whatever the packet rate. Before a full window has passed, the rate is taken over the time
/// since the first byte, so a fresh meter is not biased low.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateMeter {
    bucket_micros: u64,
    buckets: usize,
    /// (bucket index, bytes), oldest first, at most `buckets` entries.
    counts: VecDeque<(u64, u64)>,
    first_at: Option<Time>,
}

impl RateMeter {
    /// A meter over `window`, counted in `buckets` slices (at least one).
    pub fn new(window: Duration, buckets: usize) -> Self {
        let buckets = buckets.max(1);
        let bucket_micros = (duration_micros(window) / buckets as u64).max(1);
        Self {
            bucket_micros,
            buckets,
            counts: VecDeque::with_capacity(buckets + 1),
            first_at: None,
        }
    }

    /// Count `bytes` delivered at `now`.
    pub fn record(&mut self, now: Time, bytes: u64) {
        self.first_at.get_or_insert(now);
        let bucket = now.as_micros() / self.bucket_micros;
        match self.counts.back_mut() {
            Some((b, count)) if *b == bucket => *count = count.saturating_add(bytes),
            _ => self.counts.push_back((bucket, bytes)),
        }
        self.expire(bucket);
    }

    /// The delivered rate over the window ending at `now`; `None` before anything arrived.
    pub fn rate(&mut self, now: Time) -> Option<Bandwidth> {
        let first = self.first_at?;
        let bucket = now.as_micros() / self.bucket_micros;
        self.expire(bucket);
        let window = self.bucket_micros * self.buckets as u64;
        let since_first = now
            .as_micros()
            .saturating_sub(first.as_micros())
            .max(self.bucket_micros);
        let span = since_first.min(window);
        let bytes: u64 = self.counts.iter().map(|&(_, c)| c).sum();
        Some(Bandwidth::from_bps_f64(
            bytes as f64 * 8.0 * 1e6 / span as f64,
        ))
    }

    fn expire(&mut self, current: u64) {
        let oldest_kept = current.saturating_sub(self.buckets as u64 - 1);
        while self.counts.front().is_some_and(|&(b, _)| b < oldest_kept) {
            self.counts.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn estimator_smooths_and_seeds_with_first_sample() {
        let mut bw = BandwidthEstimator::new(0.5);
        assert_eq!(bw.estimate(), None);
        assert_eq!(
            bw.update(Time::ZERO, Bandwidth::from_mbps(10)),
            Bandwidth::from_mbps(10)
        );
        assert_eq!(
            bw.update(Time::from_secs(1), Bandwidth::from_mbps(20)),
            Bandwidth::from_mbps(15)
        );
        assert_eq!(bw.last_sample_at(), Some(Time::from_secs(1)));
    }

    #[test]
    fn meter_reads_a_steady_stream() {
        // 1250 bytes every 10 ms = 1 Mbps.
        let mut meter = RateMeter::new(Duration::from_secs(2), 20);
        for i in 0..500u64 {
            meter.record(Time::from_millis(i * 10), 1250);
        }
        let rate = meter.rate(Time::from_millis(5000)).unwrap().bps_f64();
        assert!((rate - 1e6).abs() / 1e6 < 0.06, "{rate}");
        // A fresh meter is not biased low: after 100 ms of the same stream it reads about 1 Mbps.
        let mut fresh = RateMeter::new(Duration::from_secs(2), 20);
        for i in 0..10u64 {
            fresh.record(Time::from_millis(i * 10), 1250);
        }
        let early = fresh.rate(Time::from_millis(100)).unwrap().bps_f64();
        assert!((early - 1e6).abs() / 1e6 < 0.15, "{early}");
    }

    #[test]
    fn meter_decays_to_zero_when_the_stream_stops() {
        let mut meter = RateMeter::new(Duration::from_secs(1), 10);
        meter.record(Time::ZERO, 10_000);
        assert_eq!(meter.rate(Time::from_secs(5)), Some(Bandwidth::ZERO));
    }

    proptest! {
        /// Memory stays bounded by the bucket count whatever arrives.
        #[test]
        fn meter_memory_is_bounded(events in proptest::collection::vec((0u64..1_000_000, 0u64..100_000), 0..500)) {
            let mut meter = RateMeter::new(Duration::from_millis(500), 8);
            let mut now = 0;
            for (gap, bytes) in events {
                now += gap;
                meter.record(Time::from_micros(now), bytes);
                prop_assert!(meter.counts.len() <= 8);
            }
            let _ = meter.rate(Time::from_micros(now));
        }
    }
}
