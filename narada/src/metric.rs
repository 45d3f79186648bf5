//! The routing metric, pluggable: which of two paths is better.
//!
//! A path has a *width* (its bottleneck bandwidth level, higher is better) and a *distance*
//! (additive: latency, hops, or a random weight, lower is better). The metric kind decides how
//! they are compared:
//!
//! | kind | compares | a link's distance |
//! |---|---|---|
//! | `Latency` (Narada, 2000) | distance | one-way latency |
//! | `BandwidthLatency` (conferencing, 2001) | width, then distance | one-way latency |
//! | `BandwidthOnly` | width, then distance | one hop |
//! | `Random` | distance | a fixed random weight per link |
//!
//! Extending a path by a link never improves it (width can only fall, distance grows by at least
//! one), which routing's loop-freedom rests on. Utility and link value use the same order.

use std::cmp::Ordering;

use overlay_core::NodeId;
use serde::{Deserialize, Serialize};

/// Which metric routes, utility and consensus cost follow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MetricKind {
    /// Lowest latency (the original Narada).
    #[default]
    Latency,
    /// Widest path, ties to the lowest latency (shortest-widest, the conferencing paper's).
    BandwidthLatency,
    /// Widest path, ties to the fewest hops.
    BandwidthOnly,
    /// Lowest sum of random per-link weights (a baseline that ignores the network).
    Random,
}

/// A path's quality.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PathMetric {
    /// Bottleneck bandwidth level ([`PathMetric::UNBOUNDED`] for an empty path).
    pub width: u16,
    /// Additive distance in the metric's unit.
    pub dist: u32,
}

impl PathMetric {
    /// The width of a path with no link yet.
    pub const UNBOUNDED: u16 = u16::MAX;

    /// The empty path (a member to itself).
    pub const ZERO: Self = Self {
        width: Self::UNBOUNDED,
        dist: 0,
    };

    /// This path after `link` (width narrows, distance adds; at least one unit per link).
    pub fn extend(self, link: Self) -> Self {
        Self {
            width: self.width.min(link.width),
            dist: self.dist.saturating_add(link.dist.max(1)),
        }
    }
}

impl MetricKind {
    /// Whether bandwidth matters to this kind (so links need bandwidth estimates).
    pub fn uses_bandwidth(self) -> bool {
        matches!(self, Self::BandwidthLatency | Self::BandwidthOnly)
    }

    /// The metric of one link of latency `latency_us` and width `width` between `a` and `b`.
    pub fn link(self, latency_us: u32, width: u16, a: &NodeId, b: &NodeId) -> PathMetric {
        let latency = latency_us.max(1);
        match self {
            Self::Latency => PathMetric {
                width: PathMetric::UNBOUNDED,
                dist: latency,
            },
            Self::BandwidthLatency => PathMetric {
                width,
                dist: latency,
            },
            Self::BandwidthOnly => PathMetric { width, dist: 1 },
            Self::Random => PathMetric {
                width: PathMetric::UNBOUNDED,
                dist: random_weight(a, b),
            },
        }
    }

    /// `Less` when `a` is better than `b`.
    pub fn compare(self, a: PathMetric, b: PathMetric) -> Ordering {
        match self {
            Self::Latency | Self::Random => a.dist.cmp(&b.dist),
            Self::BandwidthLatency | Self::BandwidthOnly => {
                b.width.cmp(&a.width).then(a.dist.cmp(&b.dist))
            }
        }
    }

    /// Whether `new` is better than `current` by more than `tolerance` of distance, or (with a
    /// bandwidth metric) wider by more than `width_margin` levels.
    pub fn clearly_better(
        self,
        new: PathMetric,
        current: PathMetric,
        tolerance: u32,
        width_margin: u16,
    ) -> bool {
        match self {
            Self::Latency | Self::Random => new.dist.saturating_add(tolerance) < current.dist,
            Self::BandwidthLatency | Self::BandwidthOnly => {
                new.width > current.width.saturating_add(width_margin)
                    || (new.width == current.width
                        && new.dist.saturating_add(tolerance) < current.dist)
            }
        }
    }

    /// How much `new` improves on `current` (`None`: unreachable), between 0 and 1: the term of
    /// Narada's utility for one member. A wider path gains its relative width increase; an
    /// equally wide one its relative distance decrease.
    pub fn gain(self, current: Option<PathMetric>, new: PathMetric) -> f64 {
        let Some(cur) = current else { return 1.0 };
        let distance_gain = || {
            if new.dist < cur.dist {
                f64::from(cur.dist - new.dist) / f64::from(cur.dist.max(1))
            } else {
                0.0
            }
        };
        match self {
            Self::Latency | Self::Random => distance_gain(),
            Self::BandwidthLatency | Self::BandwidthOnly => match new.width.cmp(&cur.width) {
                Ordering::Greater => f64::from(new.width - cur.width) / f64::from(new.width.max(1)),
                Ordering::Equal => distance_gain(),
                Ordering::Less => 0.0,
            },
        }
    }
}

/// A weight in 1..100 ms for the link between `a` and `b`, the same seen from either end.
fn random_weight(a: &NodeId, b: &NodeId) -> u32 {
    let (lo, hi) = if a < b { (a, b) } else { (b, a) };
    let mut hash = crate::fnv::Fnv1a::new();
    hash.eat(lo.as_bytes());
    hash.eat(hi.as_bytes());
    1_000 + (hash.finish() % 99_000) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn m(width: u16, dist: u32) -> PathMetric {
        PathMetric { width, dist }
    }

    #[test]
    fn shortest_widest_prefers_width_then_latency() {
        let k = MetricKind::BandwidthLatency;
        assert_eq!(
            k.compare(m(8, 100), m(5, 10)),
            Ordering::Less,
            "wider wins however long"
        );
        assert_eq!(
            k.compare(m(5, 10), m(5, 100)),
            Ordering::Less,
            "equal width: shorter wins"
        );
        assert_eq!(
            MetricKind::Latency.compare(m(8, 100), m(5, 10)),
            Ordering::Greater
        );
        assert_eq!(
            MetricKind::BandwidthOnly
                .link(5000, 7, &NodeId::from_index(1), &NodeId::from_index(2))
                .dist,
            1
        );
    }

    #[test]
    fn small_latency_differences_are_ignored_but_width_is_not() {
        let k = MetricKind::BandwidthLatency;
        assert!(!k.clearly_better(m(5, 95), m(5, 100), 10, 0));
        assert!(k.clearly_better(m(5, 80), m(5, 100), 10, 0));
        assert!(k.clearly_better(m(6, 500), m(5, 100), 10, 0));
        assert!(!MetricKind::Latency.clearly_better(m(9, 95), m(1, 100), 10, 0));
    }

    #[test]
    fn a_wider_path_must_clear_the_width_margin() {
        let k = MetricKind::BandwidthLatency;
        assert!(
            !k.clearly_better(m(6, 50), m(5, 100), 10, 1),
            "one level is within the margin"
        );
        assert!(k.clearly_better(m(7, 500), m(5, 100), 10, 1));
        // Equal width: the latency rule alone decides, whatever the margin.
        assert!(k.clearly_better(m(5, 80), m(5, 100), 10, 1));
        assert!(
            !k.clearly_better(m(4, 10), m(5, 100), 10, 1),
            "a narrower path never is"
        );
        // The margin saturates on an unbounded width (no overflow into a small one).
        let wide = PathMetric::UNBOUNDED;
        assert!(!k.clearly_better(m(wide, 10), m(wide, 100), 100, 1));
    }

    #[test]
    fn gains_are_relative_and_bounded() {
        let k = MetricKind::BandwidthLatency;
        assert_eq!(k.gain(None, m(1, 1)), 1.0);
        assert_eq!(k.gain(Some(m(5, 100)), m(10, 900)), 0.5);
        assert_eq!(k.gain(Some(m(5, 100)), m(5, 75)), 0.25);
        assert_eq!(k.gain(Some(m(5, 100)), m(4, 1)), 0.0);
    }

    #[test]
    fn random_weights_are_symmetric_and_stable() {
        let (a, b) = (NodeId::from_index(3), NodeId::from_index(4));
        let w = MetricKind::Random.link(10, 0, &a, &b);
        assert_eq!(w, MetricKind::Random.link(99, 3, &b, &a));
        assert!((1_000..100_000).contains(&w.dist));
    }

    proptest! {
        /// Extending a path never makes it better, for every kind: the basis of loop freedom.
        #[test]
        fn extension_never_improves(w in any::<u16>(), d in 0u32..1_000_000, lw in any::<u16>(), ld in 0u32..1_000_000) {
            let path = m(w, d);
            let longer = path.extend(m(lw, ld));
            for k in [MetricKind::Latency, MetricKind::BandwidthLatency, MetricKind::BandwidthOnly, MetricKind::Random] {
                prop_assert_eq!(k.compare(path, longer), Ordering::Less);
            }
        }
    }
}
