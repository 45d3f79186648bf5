//! A bandwidth that may be unlimited: a node's bandwidth from the root (the root's own has no
//! limit) and the measured hop from its parent (no limit until measured).

use overlay_core::Bandwidth;

/// A bandwidth with "no limit" as a value of its own. Ordered with every limit below
/// [`PathBandwidth::Unlimited`], so [`Ord::min`] of two is the narrower, as along a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PathBandwidth {
    /// At most this many bits per second.
    Limited(Bandwidth),
    /// No limit: the root's bandwidth from itself, or a hop not measured.
    Unlimited,
}

impl PathBandwidth {
    /// No bandwidth at all (an unplaced node's).
    pub const ZERO: Self = Self::Limited(Bandwidth::ZERO);

    /// `bandwidth`, capped by this limit.
    pub fn cap(self, bandwidth: Bandwidth) -> Bandwidth {
        match self {
            Self::Limited(limit) => bandwidth.min(limit),
            Self::Unlimited => bandwidth,
        }
    }

    /// Bits per second as a float, infinite when unlimited (for ratios and equality bands).
    pub fn bps_f64(self) -> f64 {
        match self {
            Self::Limited(limit) => limit.bps_f64(),
            Self::Unlimited => f64::INFINITY,
        }
    }

    /// As on the wire: bits per second, `u64::MAX` for unlimited.
    pub fn to_wire(self) -> u64 {
        match self {
            Self::Limited(limit) => limit.bps(),
            Self::Unlimited => u64::MAX,
        }
    }

    /// From the wire: `u64::MAX` is unlimited (so is a limit of `u64::MAX` bits per second
    /// after a round trip, which no path reaches).
    pub fn from_wire(bps: u64) -> Self {
        if bps == u64::MAX {
            Self::Unlimited
        } else {
            Self::Limited(Bandwidth::from_bps(bps))
        }
    }

    /// Whether `self` moved beyond the band of `fraction` around `was` (bandwidths within it
    /// count as equal, so a wobble is not news).
    pub fn moved_beyond(self, was: Self, fraction: f64) -> bool {
        let (now, was) = (self.bps_f64(), was.bps_f64());
        now != was && !(now >= was * (1.0 - fraction) && now <= was * (1.0 + fraction))
    }
}

impl From<Bandwidth> for PathBandwidth {
    fn from(bandwidth: Bandwidth) -> Self {
        Self::Limited(bandwidth)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_narrower_is_the_smaller() {
        let slow = PathBandwidth::Limited(Bandwidth::from_mbps(1));
        let fast = PathBandwidth::Limited(Bandwidth::from_mbps(10));
        assert_eq!(slow.min(fast), slow);
        assert_eq!(PathBandwidth::Unlimited.min(fast), fast);
        assert_eq!(
            PathBandwidth::ZERO.min(PathBandwidth::Unlimited),
            PathBandwidth::ZERO
        );
        assert_eq!(slow.cap(Bandwidth::from_mbps(5)), Bandwidth::from_mbps(1));
        assert_eq!(
            PathBandwidth::Unlimited.cap(Bandwidth::from_mbps(5)),
            Bandwidth::from_mbps(5)
        );
    }

    #[test]
    fn wire_form_round_trips_with_max_for_unlimited() {
        for bw in [
            PathBandwidth::ZERO,
            PathBandwidth::Limited(Bandwidth::from_mbps(45)),
            PathBandwidth::Unlimited,
        ] {
            assert_eq!(PathBandwidth::from_wire(bw.to_wire()), bw);
        }
        assert_eq!(PathBandwidth::Unlimited.to_wire(), u64::MAX);
        assert_eq!(PathBandwidth::Unlimited.bps_f64(), f64::INFINITY);
    }

    #[test]
    fn a_wobble_within_the_band_is_not_a_move() {
        let kbps = |k| PathBandwidth::Limited(Bandwidth::from_kbps(k));
        assert!(!kbps(10_000).moved_beyond(kbps(10_000), 0.1));
        assert!(!kbps(10_500).moved_beyond(kbps(10_000), 0.1));
        assert!(!kbps(9_500).moved_beyond(kbps(10_000), 0.1));
        assert!(kbps(12_000).moved_beyond(kbps(10_000), 0.1));
        assert!(kbps(8_000).moved_beyond(kbps(10_000), 0.1));
        assert!(kbps(10_000).moved_beyond(PathBandwidth::Unlimited, 0.1));
        assert!(PathBandwidth::Unlimited.moved_beyond(kbps(10_000), 0.1));
        assert!(!PathBandwidth::Unlimited.moved_beyond(PathBandwidth::Unlimited, 0.1));
        assert!(kbps(1).moved_beyond(PathBandwidth::ZERO, 0.1));
    }
}
