//! Available bandwidth of one overlay link, for conferencing trees.
//!
//! On a mesh link that carries data the estimate is *passive*: the sending neighbour reports the
//! rate it sent, the receiver measures the rate it got, and the lower of the two is what the
//! link is known to carry. If much less arrived than was sent, the link is congested and the
//! received rate *is* its capacity; otherwise the link carries at least that rate, and the
//! estimate only rises. A neighbour's claim can therefore never lift the estimate above what was
//! measured. Links without data get an *active* probe, capped at the source rate; so does, once,
//! a link known only by such lower bounds below the full level (a stream slower than the
//! nominal rate came over it before it was probed), whose probe then replaces them (as does the
//! first congested sample). A sample that reached a ceiling the receiver knows for certain (its
//! own download, narrower than the stream) sets the estimate at once. Other samples are
//! smoothed and discretised into levels (by default a tenth of the source rate) with hysteresis,
//! so noise does not change routes and a persistent change does.

use overlay_core::{Bandwidth, Time};
use serde::{Deserialize, Serialize};

use crate::{Ewma, LevelQuantizer};

/// Settings of a [`LinkBandwidth`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LinkBandwidthConfig {
    /// The rate of the stream the tree carries: levels are fractions of it, and nothing above it
    /// matters.
    pub stream_rate: Bandwidth,
    /// Number of levels up to the stream rate (10: a level is 10% of the rate).
    pub levels: u16,
    /// Smoothing weight of each new sample.
    pub alpha: f64,
    /// A received rate under this share of the reported sent rate means congestion.
    pub congestion_ratio: f64,
}

impl Default for LinkBandwidthConfig {
    fn default() -> Self {
        Self {
            stream_rate: Bandwidth::from_kbps(1200),
            levels: 10,
            alpha: 0.3,
            congestion_ratio: 0.9,
        }
    }
}

/// What one sample taught.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sample {
    /// Too little data flowed to learn anything.
    Idle,
    /// Less arrived than was sent: the link is congested at the received rate.
    Congested(Bandwidth),
    /// Everything arrived: the link carries at least this.
    AtLeast(Bandwidth),
}

/// The estimate of one link.
#[derive(Clone, Debug, PartialEq)]
pub struct LinkBandwidth {
    config: LinkBandwidthConfig,
    smoothed: Ewma,
    quantizer: LevelQuantizer,
    updated_at: Option<Time>,
    /// Everything known comes from passive samples that arrived whole: lower bounds (what was
    /// offered), not the link's capacity.
    lower_bounds_only: bool,
    /// The highest level the link was ever measured at: a link below it lost bandwidth it had
    /// (and may get it back), unlike one that never had more.
    widest: Option<u16>,
}

impl LinkBandwidth {
    /// A link not yet measured.
    pub fn new(config: LinkBandwidthConfig) -> Self {
        let step = (config.stream_rate.bps_f64() / f64::from(config.levels.max(1))).max(1.0);
        Self {
            config,
            smoothed: Ewma::new(config.alpha),
            quantizer: LevelQuantizer::new(step, 0.3),
            updated_at: None,
            lower_bounds_only: false,
            widest: None,
        }
    }

    /// The highest level (the stream rate or more).
    pub fn full_level(&self) -> u16 {
        self.config.levels.max(1)
    }

    fn take(&mut self, now: Time, bps: f64) {
        let capped = bps.min(self.config.stream_rate.bps_f64());
        if let Some(v) = self.smoothed.update(capped) {
            // Round to the nearest level, except that the top level (full rate) needs 95% of the
            // rate: a path that is "full" must carry nearly the whole stream, not most of it.
            let rate = self.config.stream_rate.bps_f64();
            let step = self.quantizer.step();
            let nudged = if v >= 0.95 * rate {
                rate + step
            } else {
                (v + step * 0.5).min(rate - step * 0.5)
            };
            self.quantizer.update(nudged);
            self.widest = self.widest.max(self.level());
        }
        self.updated_at = Some(now);
    }

    /// A passive sample: the neighbour says it sent at `claimed_sent`; `received` arrived.
    pub fn on_report(&mut self, now: Time, claimed_sent: Bandwidth, received: Bandwidth) -> Sample {
        let floor = self.config.stream_rate.bps_f64() * 0.05;
        let known = claimed_sent.min(received);
        if claimed_sent.bps_f64() < floor {
            return Sample::Idle;
        }
        if received.bps_f64() < self.config.congestion_ratio * claimed_sent.bps_f64() {
            // The first measure of the link itself replaces what only bounded it from below.
            if std::mem::take(&mut self.lower_bounds_only) {
                self.smoothed = Ewma::new(self.config.alpha);
            }
            self.take(now, received.bps_f64());
            return Sample::Congested(received);
        }
        // Everything arrived: a lower bound; it raises the estimate, never lowers it.
        let Some(current) = self.smoothed.value() else {
            // The first thing known of the link: only that it carried what it was offered.
            self.lower_bounds_only = true;
            self.take(now, known.bps_f64());
            return Sample::AtLeast(known);
        };
        if known.bps_f64() > current {
            self.take(now, known.bps_f64());
        } else {
            self.updated_at = Some(now);
        }
        Sample::AtLeast(known)
    }

    /// An active probe's result (capped at the probe's rate, the stream rate). Above an
    /// estimate made only of lower bounds (a link that carried less than the stream rate and
    /// delivered all of it, or one [`LinkBandwidth::await_recovery`] marked), the probe is the
    /// first measure of the link itself and replaces it.
    pub fn on_probe(&mut self, now: Time, measured: Bandwidth) {
        let bound = self.smoothed.value().unwrap_or(0.0);
        if std::mem::take(&mut self.lower_bounds_only) && measured.bps_f64() > bound {
            self.smoothed = Ewma::new(self.config.alpha);
        }
        self.take(now, measured.bps_f64());
    }

    /// The link, idle since it lost bandwidth, is about to be probed to learn whether it got
    /// it back: what it was measured at is now only a lower bound, so a probe that finds more
    /// replaces it instead of being averaged in (averaged at the smoothing weight, a link cut
    /// to a quarter took four probes a minute apart to look full again, and trees kept their
    /// detours around it long after it recovered). A probe that finds less is smoothed in as
    /// usual.
    pub fn await_recovery(&mut self) {
        if self.smoothed.value().is_some() {
            self.lower_bounds_only = true;
        }
    }

    /// A sample that reached a ceiling known for certain (the receiving member's own download,
    /// narrower than the stream, filled while this link was measured): the link carries all that
    /// can ever reach the member, whatever was measured before, so the estimate becomes the
    /// ceiling at once instead of averaging it with samples the download's other traffic cut.
    pub fn on_ceiling(&mut self, now: Time, ceiling: Bandwidth) {
        self.lower_bounds_only = false;
        self.smoothed = Ewma::new(self.config.alpha);
        self.take(now, ceiling.bps_f64());
    }

    /// The link was measured wider than `bound` while it carried nothing, and something it may
    /// share with a link now congested at `bound` (the receiving member's own download) makes
    /// that measure doubtful: it is taken to carry `bound` until measured again, and that is
    /// only a lower bound, so the next probe replaces it (see [`LinkBandwidth::on_probe`]).
    /// An estimate at or below `bound` stays.
    pub fn doubt(&mut self, now: Time, bound: Bandwidth) {
        if self.smoothed.value().is_none_or(|v| v <= bound.bps_f64()) {
            return;
        }
        self.smoothed = Ewma::new(self.config.alpha);
        self.take(now, bound.bps_f64());
        self.lower_bounds_only = true;
    }

    /// Whether all that is known of the link are lower bounds below the full level: it carried
    /// less than the stream rate, delivered all of it, and was never probed (an active probe
    /// would tell what it can carry).
    pub fn only_lower_bounds(&self) -> bool {
        self.lower_bounds_only && self.level().is_some_and(|l| l < self.full_level())
    }

    /// Whether the link was once measured at a higher level than now: it lost bandwidth (a
    /// congestion episode, a neighbour's upload taken by others) rather than never having had
    /// it, so its recovery is worth watching for.
    pub fn lost_bandwidth(&self) -> bool {
        self.widest
            .is_some_and(|w| self.level().is_some_and(|l| l < w))
    }

    /// The bandwidth level, if anything was measured.
    pub fn level(&self) -> Option<u16> {
        self.quantizer
            .level()
            .map(|l| (l.min(u32::from(self.full_level()))) as u16)
    }

    /// The smoothed estimate, if anything was measured.
    pub fn estimate(&self) -> Option<Bandwidth> {
        self.smoothed.value().map(Bandwidth::from_bps_f64)
    }

    /// When the last sample arrived.
    pub fn updated_at(&self) -> Option<Time> {
        self.updated_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn mbps(x: f64) -> Bandwidth {
        Bandwidth::from_bps_f64(x * 1e6)
    }

    fn link() -> LinkBandwidth {
        LinkBandwidth::new(LinkBandwidthConfig {
            stream_rate: mbps(2.4),
            ..LinkBandwidthConfig::default()
        })
    }

    #[test]
    fn congestion_lowers_and_full_delivery_raises() {
        let mut l = link();
        assert_eq!(l.level(), None);
        l.on_probe(Time::ZERO, mbps(2.4));
        assert_eq!(l.level(), Some(10));
        // Congested at 1.2 Mbps for a while: the level falls to about half.
        for i in 1..20 {
            assert_eq!(
                l.on_report(Time::from_secs(i), mbps(2.4), mbps(1.2)),
                Sample::Congested(mbps(1.2))
            );
        }
        assert_eq!(l.level(), Some(5));
        assert!(l.lost_bandwidth(), "it was full before");
        // Full delivery at 2.4 again: back up.
        for i in 20..40 {
            l.on_report(Time::from_secs(i), mbps(2.4), mbps(2.4));
        }
        assert_eq!(l.level(), Some(10));
        assert!(!l.lost_bandwidth());
        // A link that never carried more than half the stream lost nothing.
        let mut slow = link();
        slow.on_probe(Time::ZERO, mbps(1.2));
        slow.on_report(Time::from_secs(1), mbps(2.4), mbps(1.2));
        assert_eq!(slow.level(), Some(5));
        assert!(!slow.lost_bandwidth());
        // Idle links teach nothing.
        assert_eq!(
            l.on_report(Time::from_secs(50), mbps(0.01), mbps(0.01)),
            Sample::Idle
        );
    }

    #[test]
    fn a_probe_replaces_lower_bounds_but_is_smoothed_into_measures() {
        // A link first learnt by carrying 0.72 of the stream, all of it delivered.
        let mut l = link();
        l.on_report(Time::ZERO, mbps(0.72), mbps(0.72));
        assert_eq!(l.level(), Some(3));
        assert!(l.only_lower_bounds());
        // The probe finds the whole stream rate: the link is full at once.
        l.on_probe(Time::from_secs(1), mbps(2.4));
        assert_eq!(l.level(), Some(10));
        assert!(!l.only_lower_bounds());
        // A link measured congested keeps smoothing: one probe does not wipe the measure out.
        let mut l = link();
        l.on_report(Time::ZERO, mbps(2.4), mbps(0.72));
        assert!(!l.only_lower_bounds());
        l.on_probe(Time::from_secs(1), mbps(2.4));
        assert!(l.level().unwrap() < 10, "{:?}", l.level());
        // Awaiting its recovery, a probe that finds more describes the link alone...
        l.await_recovery();
        l.on_probe(Time::from_secs(60), mbps(2.4));
        assert_eq!(l.level(), Some(10));
        assert!(!l.only_lower_bounds());
        // ... and one that finds less is smoothed in.
        l.await_recovery();
        l.on_probe(Time::from_secs(120), mbps(0.72));
        assert!(l.level().unwrap() > 3, "{:?}", l.level());
        // Nothing measured yet: nothing to bound.
        let mut fresh = link();
        fresh.await_recovery();
        assert!(!fresh.only_lower_bounds());
    }

    #[test]
    fn congestion_replaces_lower_bounds_and_a_ceiling_replaces_everything() {
        // Half a window of data first: a lower bound of 0.24 of the stream.
        let mut l = link();
        l.on_report(Time::ZERO, mbps(0.24), mbps(0.24));
        assert_eq!(l.level(), Some(1));
        // Then congested at half the stream: the first measure of the link itself.
        l.on_report(Time::from_secs(1), mbps(2.4), mbps(1.2));
        assert_eq!(l.level(), Some(5));
        // Congested lower again: smoothed with the measure before.
        l.on_report(Time::from_secs(2), mbps(2.4), mbps(0.48));
        assert_eq!(l.level(), Some(4));
        // A known ceiling reached (the receiver's download filled): the estimate at once.
        l.on_ceiling(Time::from_secs(3), mbps(1.44));
        assert_eq!(l.level(), Some(6));
        assert!(!l.only_lower_bounds());
    }

    #[test]
    fn claims_are_bounded_by_what_arrived() {
        let mut l = link();
        l.on_probe(Time::ZERO, mbps(1.2));
        // A neighbour claiming 1 Tbps while 1.2 Mbps arrives does not lift the estimate.
        for i in 1..10 {
            l.on_report(
                Time::from_secs(i),
                Bandwidth::from_bps(1_000_000_000_000),
                mbps(1.2),
            );
        }
        assert_eq!(l.level(), Some(5));
        // Nor can anything exceed the stream rate.
        l.on_probe(Time::from_secs(20), mbps(100.0));
        assert!(l.estimate().unwrap() <= mbps(2.4));
    }

    #[test]
    fn one_noisy_sample_does_not_move_the_level() {
        let mut l = link();
        l.on_probe(Time::ZERO, mbps(2.4));
        l.on_report(Time::from_secs(1), mbps(2.4), mbps(2.0));
        assert_eq!(l.level(), Some(10));
    }

    proptest! {
        /// The level never exceeds what was measured plus a level of hysteresis, whatever is
        /// claimed.
        #[test]
        fn level_is_bounded_by_measurements(reports in proptest::collection::vec((0u64..10_000_000_000, 0u64..3_000_000), 1..50)) {
            let mut l = link();
            let mut max_received = 0u64;
            for (i, (claimed, received)) in reports.into_iter().enumerate() {
                l.on_report(Time::from_secs(i as u64), Bandwidth::from_bps(claimed), Bandwidth::from_bps(received));
                max_received = max_received.max(received.min(claimed));
            }
            if let Some(level) = l.level() {
                let step = 240_000.0;
                prop_assert!(f64::from(level) * step <= max_received as f64 + step * 1.5);
            }
        }
    }
}
