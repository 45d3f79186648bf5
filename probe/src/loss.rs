//! Loss estimation: over the outcomes of recent probes, and over sequence-numbered streams.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// The fraction of the last `capacity` probes that went unanswered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LossWindow {
    capacity: usize,
    outcomes: VecDeque<bool>,
    lost: usize,
}

impl LossWindow {
    /// A window over the last `capacity` outcomes (at least one).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            capacity,
            outcomes: VecDeque::with_capacity(capacity),
            lost: 0,
        }
    }

    /// Record whether a probe was answered.
    pub fn record(&mut self, delivered: bool) {
        if self.outcomes.len() == self.capacity && self.outcomes.pop_front() == Some(false) {
            self.lost -= 1;
        }
        self.outcomes.push_back(delivered);
        if !delivered {
            self.lost += 1;
        }
    }

    /// Fraction lost, in `0.0..=1.0`; `None` before any outcome.
    pub fn loss_rate(&self) -> Option<f64> {
        (!self.outcomes.is_empty()).then(|| self.lost as f64 / self.outcomes.len() as f64)
    }
}

/// Counts loss on a stream of sequence-numbered packets, tolerating reordering and duplicates.
///
/// It remembers which of the last [`SequenceLossMeter::REORDER_WINDOW`] numbers arrived; a packet
/// older than that is counted as late, not as new. [`SequenceLossMeter::take_interval`] reports
/// the loss since the previous call, so loss can be sampled periodically.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SequenceLossMeter {
    highest: Option<u64>,
    /// Bit i set: `highest - i` arrived.
    seen: u128,
    interval_expected_from: Option<u64>,
    interval_received: u64,
    duplicates: u64,
    too_late: u64,
}

impl SequenceLossMeter {
    /// How far behind the highest number a packet may arrive and still count.
    pub const REORDER_WINDOW: u64 = 128;

    /// Record the arrival of packet `seq`.
    pub fn record(&mut self, seq: u64) {
        let Some(highest) = self.highest else {
            self.highest = Some(seq);
            self.seen = 1;
            self.interval_expected_from = Some(seq);
            self.interval_received = 1;
            return;
        };
        if seq > highest {
            let shift = seq - highest;
            self.seen = if shift >= 128 { 0 } else { self.seen << shift };
            self.seen |= 1;
            self.highest = Some(seq);
            self.interval_received += 1;
        } else {
            let behind = highest - seq;
            if behind >= Self::REORDER_WINDOW {
                self.too_late += 1;
            } else if self.seen & (1 << behind) != 0 {
                self.duplicates += 1;
            } else {
                self.seen |= 1 << behind;
                if self.interval_expected_from.is_some_and(|from| seq >= from) {
                    self.interval_received += 1;
                }
            }
        }
    }

    /// Loss over the packets expected since the last call: `(expected, received)`.
    pub fn take_interval(&mut self) -> Option<(u64, u64)> {
        let from = self.interval_expected_from?;
        let highest = self.highest?;
        if highest < from {
            // Nothing new since the last interval.
            return Some((0, 0));
        }
        // Sequence numbers come off the wire: saturate rather than overflow.
        let expected = (highest - from).saturating_add(1);
        let received = self.interval_received.min(expected);
        self.interval_expected_from = Some(highest.saturating_add(1));
        self.interval_received = 0;
        Some((expected, received))
    }

    /// Packets that arrived twice.
    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }

    /// Packets that arrived too far behind the highest to be counted.
    pub fn too_late(&self) -> u64 {
        self.too_late
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn window_counts_the_recent_past_only() {
        let mut w = LossWindow::new(4);
        assert_eq!(w.loss_rate(), None);
        for delivered in [false, false, true, true] {
            w.record(delivered);
        }
        assert_eq!(w.loss_rate(), Some(0.5));
        w.record(true);
        w.record(true);
        assert_eq!(w.loss_rate(), Some(0.0));
    }

    #[test]
    fn sequence_meter_handles_gaps_reordering_and_duplicates() {
        let mut m = SequenceLossMeter::default();
        for seq in [0, 1, 3, 2, 2, 5, 6, 7, 9] {
            m.record(seq);
        }
        // 0..=9 expected (10), 4 and 8 missing.
        assert_eq!(m.take_interval(), Some((10, 8)));
        assert_eq!(m.duplicates(), 1);
        for seq in 10..20 {
            m.record(seq);
        }
        assert_eq!(m.take_interval(), Some((10, 10)));
        m.record(0);
        assert_eq!(m.duplicates(), 2);
        m.record(200);
        m.record(50);
        assert_eq!(m.too_late(), 1);
        // 20..=200 expected; 200 arrived (50 was too late to count).
        assert_eq!(m.take_interval(), Some((181, 1)));
        // An interval with nothing new expects nothing (it used to underflow).
        assert_eq!(m.take_interval(), Some((0, 0)));
        m.record(201);
        assert_eq!(m.take_interval(), Some((1, 1)));
    }

    proptest! {
        /// Measured loss equals the true loss when every kept packet arrives in order.
        #[test]
        fn in_order_loss_is_exact(kept in proptest::collection::vec(any::<bool>(), 1..400)) {
            let mut m = SequenceLossMeter::default();
            let mut w = LossWindow::new(kept.len());
            let mut first = None;
            let mut last = 0;
            for (seq, &k) in kept.iter().enumerate() {
                w.record(k);
                if k { m.record(seq as u64); first.get_or_insert(seq); last = seq; }
            }
            if let Some(first) = first {
                let expected = (last - first + 1) as u64;
                let received = kept[first..=last].iter().filter(|&&k| k).count() as u64;
                prop_assert_eq!(m.take_interval(), Some((expected, received)));
            }
            let lost = kept.iter().filter(|&&k| !k).count() as f64;
            prop_assert!((w.loss_rate().unwrap() - lost / kept.len() as f64).abs() < 1e-12);
        }

        /// Any numbers off the wire, up to the largest, are counted without overflowing.
        #[test]
        fn any_wire_numbers_are_counted_without_overflow(
            seqs in proptest::collection::vec(
                prop_oneof![any::<u64>(), Just(u64::MAX), (u64::MAX - 300)..=u64::MAX],
                1..200,
            )
        ) {
            let mut m = SequenceLossMeter::default();
            for (i, &q) in seqs.iter().enumerate() {
                m.record(q);
                if i % 7 == 0
                    && let Some((expected, received)) = m.take_interval()
                {
                    prop_assert!(received <= expected);
                }
            }
        }
    }
}
