//! Media counted by the second of its capture: for each of the last few seconds of a source's
//! media clock (its frames' timestamps, on the wall clock members share), how many packets of
//! each layer the source sent, or a receiver got and played in time.
//!
//! Comparing what arrived with what was sent over a span of wall-clock time is off by whatever
//! was on its way at either end of the span, and a keyframe is one burst: a window of a few
//! seconds then counts one keyframe too many or too few, a quarter of them over eight seconds.
//! Counted by capture second at both ends, the same frames are compared, whatever their delay.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::status::ByClass;

/// Seconds kept: enough for a poll every few seconds to see every second once it is complete.
pub const SECONDS_KEPT: usize = 20;

/// The packets of one second of a source's media.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaSecond {
    /// The second: its frames' capture time in whole seconds since the Unix epoch.
    pub second: u64,
    /// Its packets: sent, at the source; arrived (duplicates not counted), at a receiver.
    pub packets: ByClass,
    /// Of them, those that arrived in time to play (receivers only).
    #[serde(default)]
    pub played: ByClass,
}

/// The last [`SECONDS_KEPT`] seconds of one source's media, counted by layer.
#[derive(Clone, Debug, Default)]
pub(super) struct MediaSeconds {
    seconds: BTreeMap<u64, MediaSecond>,
}

impl MediaSeconds {
    /// Counts a packet of drop class `class` captured at `timestamp_us` (microseconds since
    /// the Unix epoch), and whether it played in time. A packet older than every second kept,
    /// when the table is full, is not counted (its second was already let go).
    pub(super) fn count(&mut self, timestamp_us: u64, class: u8, played: bool) {
        let second = timestamp_us / 1_000_000;
        let full = self.seconds.len() >= SECONDS_KEPT;
        if full
            && self
                .seconds
                .first_key_value()
                .is_some_and(|(&s, _)| second < s)
        {
            return;
        }
        let entry = self.seconds.entry(second).or_insert_with(|| MediaSecond {
            second,
            ..MediaSecond::default()
        });
        entry.packets.count(class);
        if played {
            entry.played.count(class);
        }
        while self.seconds.len() > SECONDS_KEPT {
            self.seconds.pop_first();
        }
    }

    /// The seconds kept, oldest first.
    pub(super) fn list(&self) -> Vec<MediaSecond> {
        self.seconds.values().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_count_by_capture_second_and_only_the_last_seconds_are_kept() {
        let mut s = MediaSeconds::default();
        // Second 100: a keyframe packet played, a base packet late; second 101: enhancement.
        s.count(100_000_000, 0, true);
        s.count(100_999_999, 1, false);
        s.count(101_000_000, 2, true);
        let list = s.list();
        assert_eq!(list.len(), 2);
        assert_eq!((list[0].second, list[1].second), (100, 101));
        assert_eq!(
            (
                list[0].packets.keyframe,
                list[0].packets.base,
                list[0].played.base
            ),
            (1, 1, 0)
        );
        assert_eq!(
            (list[0].played.keyframe, list[1].played.enhancement),
            (1, 1)
        );
        // Seconds come and go: the table keeps the last twenty.
        for second in 102..130u64 {
            s.count(second * 1_000_000, 1, true);
        }
        let list = s.list();
        assert_eq!(list.len(), SECONDS_KEPT);
        assert_eq!(list[0].second, 130 - SECONDS_KEPT as u64);
        // A straggler from a second let go is not counted; one from a kept second is.
        s.count(100_500_000, 1, true);
        s.count(120_500_000, 1, true);
        let list = s.list();
        assert_eq!(list.len(), SECONDS_KEPT);
        assert_eq!(list[0].second, 110);
        assert_eq!(list[10].packets.base, 2);
    }
}
