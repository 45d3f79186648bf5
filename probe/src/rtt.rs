//! Round-trip time estimation as RFC 6298 specifies it (the estimator TCP and QUIC use).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::RecentMin;

/// Settings of an [`RttEstimator`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RttConfig {
    /// Lower bound of the retransmission timeout. RFC 6298 says 1 s for TCP over the open
    /// Internet; overlay probes tolerate a tighter bound, and 200 ms matches what modern stacks
    /// (Linux TCP, QUIC's timer granularity plus slack) use in practice.
    pub min_rto: Duration,
    /// Upper bound of the retransmission timeout, after backoff (60 s, RFC 6298 section 2.5).
    pub max_rto: Duration,
    /// Timeout used before the first sample (1 s, RFC 6298 section 2.1).
    pub initial_rto: Duration,
    /// Clock granularity G of RFC 6298 (1 ms: our clock counts microseconds).
    pub granularity: Duration,
}

impl Default for RttConfig {
    fn default() -> Self {
        Self {
            min_rto: Duration::from_millis(200),
            max_rto: Duration::from_secs(60),
            initial_rto: Duration::from_secs(1),
            granularity: Duration::from_millis(1),
        }
    }
}

/// Smoothed RTT, its variation, the minimum and latest samples, and a retransmission timeout.
///
/// `srtt = 7/8 srtt + 1/8 r`, `rttvar = 3/4 rttvar + 1/4 |srtt - r|`, and the first sample sets
/// `srtt = r`, `rttvar = r / 2`. Each timeout doubles the RTO until a new sample arrives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RttEstimator {
    config: RttConfig,
    smoothed: Option<Duration>,
    variance: Duration,
    min: Option<Duration>,
    recent_min: RecentMin,
    latest: Option<Duration>,
    backoff: u32,
}

impl Default for RttEstimator {
    fn default() -> Self {
        Self::new(RttConfig::default())
    }
}

impl RttEstimator {
    /// An estimator with no samples.
    pub fn new(config: RttConfig) -> Self {
        Self {
            config,
            smoothed: None,
            variance: Duration::ZERO,
            min: None,
            recent_min: RecentMin::default(),
            latest: None,
            backoff: 0,
        }
    }

    /// Take in a round-trip sample.
    pub fn update(&mut self, sample: Duration) {
        self.latest = Some(sample);
        self.min = Some(self.min.map_or(sample, |m| m.min(sample)));
        self.recent_min.update(sample);
        self.backoff = 0;
        match self.smoothed {
            None => {
                self.smoothed = Some(sample);
                self.variance = sample / 2;
            }
            Some(srtt) => {
                let diff = srtt.abs_diff(sample);
                self.variance = (self.variance * 3 + diff) / 4;
                self.smoothed = Some((srtt * 7 + sample) / 8);
            }
        }
    }

    /// A probe went unanswered: back off the timeout (doubling, up to `max_rto`).
    pub fn on_timeout(&mut self) {
        self.backoff = (self.backoff + 1).min(16);
    }

    /// The smoothed RTT, if any sample arrived.
    pub fn smoothed(&self) -> Option<Duration> {
        self.smoothed
    }

    /// The smoothed mean deviation of samples.
    pub fn variance(&self) -> Duration {
        self.variance
    }

    /// The smallest sample seen: the best estimate of propagation delay.
    pub fn min(&self) -> Option<Duration> {
        self.min
    }

    /// The smallest of the latest samples (see [`RecentMin`]): what routing should take a
    /// link's latency to be.
    pub fn recent_min(&self) -> Option<Duration> {
        self.recent_min.get()
    }

    /// The most recent sample.
    pub fn latest(&self) -> Option<Duration> {
        self.latest
    }

    /// How long to wait for an answer before calling a probe lost.
    pub fn rto(&self) -> Duration {
        let base = match self.smoothed {
            None => self.config.initial_rto,
            Some(srtt) => srtt + self.config.granularity.max(self.variance * 4),
        };
        let backed_off = base.saturating_mul(1 << self.backoff.min(16));
        backed_off.clamp(
            self.config.min_rto,
            self.config.max_rto.max(self.config.min_rto),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn follows_rfc_6298() {
        let mut rtt = RttEstimator::default();
        assert_eq!(rtt.rto(), Duration::from_secs(1));
        rtt.update(MS * 100);
        assert_eq!(rtt.smoothed(), Some(MS * 100));
        assert_eq!(rtt.variance(), MS * 50);
        assert_eq!(rtt.rto(), MS * 300);
        rtt.update(MS * 200);
        // rttvar = 3/4 * 50 + 1/4 * 100 = 62.5; srtt = 7/8 * 100 + 1/8 * 200 = 112.5
        assert_eq!(rtt.variance(), Duration::from_micros(62_500));
        assert_eq!(rtt.smoothed(), Some(Duration::from_micros(112_500)));
        assert_eq!(rtt.min(), Some(MS * 100));
        assert_eq!(rtt.latest(), Some(MS * 200));
    }

    #[test]
    fn timeouts_back_off_and_a_sample_resets_them() {
        let mut rtt = RttEstimator::default();
        rtt.update(MS * 100);
        let base = rtt.rto();
        rtt.on_timeout();
        rtt.on_timeout();
        assert_eq!(rtt.rto(), base * 4);
        for _ in 0..40 {
            rtt.on_timeout();
        }
        assert_eq!(rtt.rto(), Duration::from_secs(60));
        rtt.update(MS * 100);
        assert!(rtt.rto() < base * 2);
    }

    proptest! {
        /// The smoothed value stays between the smallest and largest sample; the RTO stays in bounds.
        #[test]
        fn estimate_is_bounded(samples in proptest::collection::vec(1u64..10_000_000, 1..200)) {
            let mut rtt = RttEstimator::default();
            for &s in &samples { rtt.update(Duration::from_micros(s)); }
            let lo = Duration::from_micros(*samples.iter().min().unwrap());
            let hi = Duration::from_micros(*samples.iter().max().unwrap());
            let srtt = rtt.smoothed().unwrap();
            prop_assert!(srtt >= lo && srtt <= hi);
            prop_assert_eq!(rtt.min(), Some(lo));
            prop_assert!(rtt.rto() >= Duration::from_millis(200) && rtt.rto() <= Duration::from_secs(60));
        }
    }
}
