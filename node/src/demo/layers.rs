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

/// One poll of a receiver: when, what had played, what had arrived.
type Polled = (Instant, ByClass, ByClass);

/// What the sources sent and the receivers played, as the demo polled them.
#[derive(Debug, Default)]
pub struct LayerLedger {
    /// Per source: its cumulative sent counts at each poll, oldest first.
    sent: BTreeMap<String, Vec<(Instant, ByClass)>>,
    /// Per (receiver, source): its cumulative counts at its first and last poll in the window,
    /// of packets that played and of packets that arrived at all.
    played: BTreeMap<(usize, String), [Polled; 2]>,
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

    /// Receiver `receiver` had played `played` of `source` by `at` and received `arrived`
    /// (a poll inside the window).
    pub fn record_played(
        &mut self,
        receiver: usize,
        source: &str,
        at: Instant,
        played: ByClass,
        arrived: ByClass,
    ) {
        let poll = (at, played, arrived);
        self.played
            .entry((receiver, source.to_owned()))
            .or_insert([poll; 2])[1] = poll;
    }

    /// The share of each layer `receiver` played of what `source` sent, with packets taking
    /// `delay` from the one to the other (none: polled once, or the source's polls do not
    /// cover the shifted window).
    pub fn on_time(&self, receiver: usize, source: &str, delay: Duration) -> Option<LayerShares> {
        self.shares(receiver, source, delay, |p| p.1)
    }

    /// The same for what arrived at all, in time or late.
    pub fn arrived(&self, receiver: usize, source: &str, delay: Duration) -> Option<LayerShares> {
        self.shares(receiver, source, delay, |p| p.2)
    }

    fn shares(
        &self,
        receiver: usize,
        source: &str,
        delay: Duration,
        counts: fn(&Polled) -> ByClass,
    ) -> Option<LayerShares> {
        let [a, b] = self.played.get(&(receiver, source.to_owned()))?;
        let (from, first, until, last) = (a.0, counts(a), b.0, counts(b));
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
        // of the enhancement over 2-8 s of its clock.
        // Everything else arrived, late.
        let played = [
            (2_000, (17, 170, 100)),
            (5_000, (40, 400, 300)),
            (8_000, (77, 764, 700)),
        ];
        let arrived = [(17, 170, 100), (40, 403, 700), (77, 770, 1300)];
        for ((ms, (k, b, e)), (ka, ba, ea)) in played.into_iter().zip(arrived) {
            ledger.record_played(1, "src", at(ms), counts(k, b, e), counts(ka, ba, ea));
        }
        let s = ledger
            .on_time(1, "src", Duration::from_millis(250))
            .unwrap();
        // Sent in 1.75-7.75 s: 60 keyframe, 600 base, 1200 enhancement packets.
        assert!((s.keyframe.unwrap() - 1.0).abs() < 1e-9, "{s:?}");
        assert!((s.base.unwrap() - 0.99).abs() < 1e-9, "{s:?}");
        assert!((s.enhancement.unwrap() - 0.5).abs() < 1e-9, "{s:?}");
        let all = ledger
            .arrived(1, "src", Duration::from_millis(250))
            .unwrap();
        for share in [all.keyframe, all.base, all.enhancement] {
            assert!((share.unwrap() - 1.0).abs() < 1e-9, "{all:?}");
        }
        // A window the source's polls do not cover, and a pair never polled.
        assert!(
            ledger
                .on_time(1, "src", Duration::from_millis(2_500))
                .is_none()
        );
        assert!(ledger.on_time(2, "src", Duration::ZERO).is_none());
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
