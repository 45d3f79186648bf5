//! Which layers of each source reach each receiver in time to play over the demo's
//! measurement window: per second of the source's media clock (its frames' capture time), what
//! the receiver counted arrived and in time against what the source counted sent, both as the
//! members report them (`MediaSecond`), over the whole seconds inside the window. The same
//! frames are compared at both ends, so a keyframe on its way at a window's edge is neither
//! missed nor counted twice.

use std::collections::BTreeMap;
use std::ops::Range;

use serde::Serialize;

use crate::app::conference::{ByClass, MediaSecond};

/// Seconds kept per source and per pair (a day of media); older ones are dropped.
const LEDGER_SECONDS: usize = 86_400;

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

/// What the sources sent and the receivers got, by capture second, merged from the demo's
/// polls (each poll's counts of a second replace the earlier ones: they only grow).
#[derive(Debug, Default)]
pub struct LayerLedger {
    /// Per source: its packets sent, by second.
    sent: BTreeMap<String, BTreeMap<u64, ByClass>>,
    /// Per (receiver, source): the packets that arrived and those in time, by second.
    received: BTreeMap<(usize, String), BTreeMap<u64, (ByClass, ByClass)>>,
}

fn keep<V>(series: &mut BTreeMap<u64, V>) {
    while series.len() > LEDGER_SECONDS {
        series.pop_first();
    }
}

impl LayerLedger {
    /// The source `source` reported `seconds` of what it sent.
    pub fn record_sent(&mut self, source: &str, seconds: &[MediaSecond]) {
        let series = self.sent.entry(source.to_owned()).or_default();
        for s in seconds {
            series.insert(s.second, s.packets);
        }
        keep(series);
    }

    /// The member `receiver` reported `seconds` of what arrived from `source`.
    pub fn record_received(&mut self, receiver: usize, source: &str, seconds: &[MediaSecond]) {
        let series = self
            .received
            .entry((receiver, source.to_owned()))
            .or_default();
        for s in seconds {
            series.insert(s.second, (s.packets, s.played));
        }
        keep(series);
    }

    /// The share of each layer of `source`'s frames captured in `seconds` (whole seconds since
    /// the Unix epoch) that reached `receiver`, in time to play and at all (none: the source
    /// reported nothing sent over them).
    pub fn shares(
        &self,
        receiver: usize,
        source: &str,
        seconds: Range<u64>,
    ) -> Option<(LayerShares, LayerShares)> {
        let sent = self.sent.get(source)?;
        let total = |counts: &mut dyn Iterator<Item = ByClass>| {
            counts.fold([0u64; 3], |acc, c| {
                [acc[0] + c.keyframe, acc[1] + c.base, acc[2] + c.enhancement]
            })
        };
        let out = total(&mut sent.range(seconds.clone()).map(|(_, c)| *c));
        if out == [0; 3] {
            return None;
        }
        let got = self.received.get(&(receiver, source.to_owned()));
        let got_range = || got.into_iter().flat_map(|r| r.range(seconds.clone()));
        let arrived = total(&mut got_range().map(|(_, c)| c.0));
        let played = total(&mut got_range().map(|(_, c)| c.1));
        let shares = |counts: [u64; 3]| {
            let share = |i: usize| (out[i] > 0).then(|| counts[i] as f64 / out[i] as f64);
            LayerShares {
                keyframe: share(0),
                base: share(1),
                enhancement: share(2),
            }
        };
        Some((shares(played), shares(arrived)))
    }
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

    fn second(second: u64, packets: ByClass, played: ByClass) -> MediaSecond {
        MediaSecond {
            second,
            packets,
            played,
        }
    }

    #[test]
    fn shares_compare_the_same_seconds_of_media_at_both_ends() {
        let mut ledger = LayerLedger::default();
        // The source sends a keyframe of 10 packets every other second, 100 base and 200
        // enhancement packets a second; its first poll saw second 104 half sent.
        let sent = |s: u64, part: u64| {
            second(
                s,
                counts(
                    if s.is_multiple_of(2) { 10 } else { 0 } / part,
                    100 / part,
                    200 / part,
                ),
                ByClass::default(),
            )
        };
        ledger.record_sent("src", &[sent(100, 1), sent(104, 2)]);
        ledger.record_sent("src", &(100..110).map(|s| sent(s, 1)).collect::<Vec<_>>());
        // The receiver got every keyframe and base packet and half the enhancement of seconds
        // 100-107, all in time but one base packet a second; nothing of second 105 (an outage).
        let got = |s: u64| {
            let k = if s.is_multiple_of(2) { 10 } else { 0 };
            second(s, counts(k, 100, 100), counts(k, 99, 100))
        };
        let seconds: Vec<_> = (100..108).filter(|&s| s != 105).map(got).collect();
        ledger.record_received(3, "src", &seconds[..2]);
        ledger.record_received(3, "src", &seconds);
        let (played, arrived) = ledger.shares(3, "src", 100..105).unwrap();
        assert_eq!(arrived.keyframe, Some(1.0));
        assert_eq!(played.base, Some(0.99));
        assert_eq!(played.enhancement, Some(0.5));
        // Over 104-106 the outage costs a third of the base layer; keyframes came at 104 and
        // 106 only, both whole.
        let (played, arrived) = ledger.shares(3, "src", 104..107).unwrap();
        assert_eq!(arrived.keyframe, Some(1.0));
        assert!((arrived.base.unwrap() - 2.0 / 3.0).abs() < 1e-9);
        assert!((played.base.unwrap() - 1.98 / 3.0).abs() < 1e-9);
        // A second with no keyframe has no keyframe share; an unknown pair got nothing; an
        // unknown source or a span it sent nothing in has no shares.
        let (played, _) = ledger.shares(3, "src", 105..106).unwrap();
        assert_eq!((played.keyframe, played.base), (None, Some(0.0)));
        assert_eq!(ledger.shares(4, "src", 100..105).unwrap().1.base, Some(0.0));
        assert!(ledger.shares(3, "other", 100..105).is_none());
        assert!(ledger.shares(3, "src", 200..205).is_none());
        let worse = LayerShares {
            keyframe: Some(0.5),
            base: None,
            enhancement: Some(0.9),
        };
        let (played, _) = ledger.shares(3, "src", 100..105).unwrap();
        assert_eq!(
            played.min(worse),
            LayerShares {
                keyframe: Some(0.5),
                base: Some(0.99),
                enhancement: Some(0.5)
            }
        );
    }
}
