//! Which layers of each source reach each receiver in time to play over the demo's
//! measurement window: the receiver's on-time count of a layer over what the source sent of it
//! in the same span of the source's clock (the receiver's window shifted back by the pair's
//! mean delay, the source's counts interpolated between the demo's polls).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::app::conference::ByClass;

/// Polls kept per source (ten a second: over a quarter of an hour); older ones are dropped.
const SAMPLES_PER_SOURCE: usize = 10_000;

/// The share of each layer that arrived in time to play (none: the source sent none of it).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LayerShares {
    /// Keyframe packets.
    pub keyframe: Option<f64>,
    /// Base-layer packets of delta frames.
    pub base: Option<f64>,
    /// Enhancement-layer packets.
    pub enhancement: Option<f64>,
}

impl LayerShares {
    /// The lower of two shares, layer by layer.
    pub fn min(self, other: Self) -> Self {
        let low = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Self {
            keyframe: low(self.keyframe, other.keyframe),
            base: low(self.base, other.base),
            enhancement: low(self.enhancement, other.enhancement),
        }
    }
}

/// What the sources sent, as the demo polled them; the receivers' counts come from the demo's
/// own first and last polls in the window.
#[derive(Debug, Default)]
pub struct LayerLedger {
    /// Per source: its cumulative sent counts at each poll, oldest first.
    sent: BTreeMap<String, Vec<(Instant, ByClass)>>,
}

impl LayerLedger {
    /// The source `source` had sent `sent` by `at`.
    pub fn record_sent(&mut self, source: &str, at: Instant, sent: ByClass) {
        let series = self.sent.entry(source.to_owned()).or_default();
        if series.len() >= SAMPLES_PER_SOURCE {
            series.remove(0);
        }
        series.push((at, sent));
    }

    /// The share of each layer of `source` that a receiver counted between two of its polls
    /// (`first` and `last`: when, and its cumulative counts by layer, of what played or of
    /// what arrived), against what the source sent over the same span shifted back by
    /// `delay`, the packets' time from the one to the other (none: the polls are not in order,
    /// or the source's polls do not cover the shifted span).
    pub fn shares(
        &self,
        source: &str,
        first: (Instant, ByClass),
        last: (Instant, ByClass),
        delay: Duration,
    ) -> Option<LayerShares> {
        let ((from, first), (until, last)) = (first, last);
        if until <= from {
            return None;
        }
        let series = self.sent.get(source)?;
        let sent_from = sent_at(series, from.checked_sub(delay)?)?;
        let sent_until = sent_at(series, until.checked_sub(delay)?)?;
        let share = |played: (u64, u64), sent: (f64, f64)| {
            let sent = sent.1 - sent.0;
            (sent >= 1.0).then(|| played.1.saturating_sub(played.0) as f64 / sent)
        };
        Some(LayerShares {
            keyframe: share(
                (first.keyframe, last.keyframe),
                (sent_from[0], sent_until[0]),
            ),
            base: share((first.base, last.base), (sent_from[1], sent_until[1])),
            enhancement: share(
                (first.enhancement, last.enhancement),
                (sent_from[2], sent_until[2]),
            ),
        })
    }
}

/// The source's counts (keyframe, base, enhancement) at `at`, interpolated between the polls
/// around it (none: outside them).
fn sent_at(series: &[(Instant, ByClass)], at: Instant) -> Option<[f64; 3]> {
    let after = series.partition_point(|&(t, _)| t < at);
    let (t1, c1) = *series.get(after)?;
    let counts = |c: ByClass| [c.keyframe as f64, c.base as f64, c.enhancement as f64];
    if t1 == at {
        return Some(counts(c1));
    }
    let (t0, c0) = *series.get(after.checked_sub(1)?)?;
    let f = at.duration_since(t0).as_secs_f64() / t1.duration_since(t0).as_secs_f64().max(1e-9);
    let (a, b) = (counts(c0), counts(c1));
    Some([0, 1, 2].map(|i| a[i] + (b[i] - a[i]) * f))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(keyframe: u64, base: u64, enhancement: u64) -> ByClass {
        ByClass {
            keyframe,
            base,
            enhancement,
        }
    }

    #[test]
    fn shares_compare_with_what_the_source_sent_a_delay_earlier() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut ledger = LayerLedger::default();
        // The source sends 10 keyframe, 100 base and 200 enhancement packets a second.
        for s in 0..=20 {
            let ms = s * 500;
            ledger.record_sent("src", at(ms), counts(ms / 100, ms / 10, ms / 5));
        }
        // The receiver, 250 ms behind, plays every keyframe, 99% of the base layer and half
        // of the enhancement over 2-8 s of its clock; everything else arrived, late.
        let delay = Duration::from_millis(250);
        let played = (
            (at(2_000), counts(17, 170, 100)),
            (at(8_000), counts(77, 764, 700)),
        );
        let arrived = (
            (at(2_000), counts(17, 170, 100)),
            (at(8_000), counts(77, 770, 1300)),
        );
        let s = ledger.shares("src", played.0, played.1, delay).unwrap();
        // Sent in 1.75-7.75 s: 60 keyframe, 600 base, 1200 enhancement packets.
        assert!((s.keyframe.unwrap() - 1.0).abs() < 1e-9, "{s:?}");
        assert!((s.base.unwrap() - 0.99).abs() < 1e-9, "{s:?}");
        assert!((s.enhancement.unwrap() - 0.5).abs() < 1e-9, "{s:?}");
        let all = ledger.shares("src", arrived.0, arrived.1, delay).unwrap();
        for share in [all.keyframe, all.base, all.enhancement] {
            assert!((share.unwrap() - 1.0).abs() < 1e-9, "{all:?}");
        }
        // A span the source's polls do not cover, and polls out of order.
        let late = Duration::from_millis(2_500);
        assert!(ledger.shares("src", played.0, played.1, late).is_none());
        assert!(ledger.shares("src", played.1, played.0, delay).is_none());
        assert!(ledger.shares("other", played.0, played.1, delay).is_none());
        let worse = LayerShares {
            keyframe: Some(0.5),
            base: None,
            enhancement: Some(0.9),
        };
        assert_eq!(
            s.min(worse),
            LayerShares {
                keyframe: Some(0.5),
                base: Some(0.99),
                enhancement: Some(0.5)
            }
        );
    }
}
