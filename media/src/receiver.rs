//! The receiving end: a playout deadline per packet (a jitter buffer's worth of delay after the
//! first packet), and counters of what arrived, what came too late, what was lost, and how long
//! packets took. An adaptive receiver, as a real player's jitter buffer does, delays its
//! playout by as much as a late packet missed it by (up to a bound), so a path that became
//! longer, or a link whose keyframes take a quarter of a second to cross, costs a few late
//! packets once rather than every keyframe.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use overlay_core::Time;

use crate::packet::MediaPacket;

/// What became of an arriving packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Playout {
    /// In time for its deadline.
    OnTime,
    /// After its deadline: counted, not played.
    Late,
    /// Seen before (or too old to tell): ignored.
    Duplicate,
}

/// Counters of one stream.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StreamStats {
    /// Packets in time.
    pub on_time: u64,
    /// Packets after their deadline.
    pub late: u64,
    /// Duplicates ignored.
    pub duplicates: u64,
    /// Payload bytes in time.
    pub bytes: u64,
    /// How much an adaptive receiver has delayed this stream's playout beyond its initial
    /// delay.
    pub playout_added: Duration,
    /// Sequence numbers never received between the first and highest seen.
    pub lost: u64,
    /// Mean end-to-end delay of packets in time (capture to arrival).
    pub mean_delay: Duration,
    /// Largest end-to-end delay of packets in time.
    pub max_delay: Duration,
}

#[derive(Clone, Debug, Default)]
struct StreamState {
    /// Arrival of the first packet and its media timestamp.
    anchor: Option<(Time, u64)>,
    lowest: u64,
    highest: u64,
    seen: BTreeSet<u64>,
    stats: StreamStats,
    delay_sum_us: u128,
    /// Playout delay added since the first packet (adaptive receivers).
    added: Duration,
}

/// A conference receiver's playout delay after a stream's first packet: a jitter buffer within
/// a conversation's budget.
pub const CONVERSATION_PLAYOUT: Duration = Duration::from_millis(400);
/// The most a conference receiver delays its playout further when packets come late (a path
/// that grew longer, a keyframe crossing a slow link).
pub const CONVERSATION_PLAYOUT_GROWTH: Duration = Duration::from_millis(300);

impl Receiver {
    /// A conference member's receiver: [`CONVERSATION_PLAYOUT`], adapting by up to
    /// [`CONVERSATION_PLAYOUT_GROWTH`].
    pub fn conversation() -> Self {
        Self::new(CONVERSATION_PLAYOUT).with_adaptive_playout(CONVERSATION_PLAYOUT_GROWTH)
    }
}

/// Sequence numbers remembered for duplicate detection.
const WINDOW: u64 = 16_384;

/// A receiver of any number of streams.
#[derive(Clone, Debug)]
pub struct Receiver {
    playout_delay: Duration,
    /// The most an adaptive receiver adds to `playout_delay` (zero: it does not adapt).
    max_added: Duration,
    streams: BTreeMap<u32, StreamState>,
}

impl Receiver {
    /// A receiver playing each packet `playout_delay` after its frame's place in the stream.
    pub fn new(playout_delay: Duration) -> Self {
        Self {
            playout_delay,
            max_added: Duration::ZERO,
            streams: BTreeMap::new(),
        }
    }

    /// Adapts each stream's playout: a packet late by `x` delays the stream's playout by `x`
    /// from then on, up to `max_added` in all (the packet itself still counts as late).
    pub fn with_adaptive_playout(mut self, max_added: Duration) -> Self {
        self.max_added = max_added;
        self
    }

    /// Take in a packet arriving at `now`.
    pub fn on_packet(&mut self, now: Time, packet: &MediaPacket) -> Playout {
        let state = self.streams.entry(packet.stream).or_default();
        let (first_arrival, first_ts) = *state.anchor.get_or_insert((now, packet.timestamp_us));
        if state.seen.is_empty() {
            (state.lowest, state.highest) = (packet.seq, packet.seq);
        }
        let too_old = state.highest.saturating_sub(packet.seq) > WINDOW;
        if too_old || !state.seen.insert(packet.seq) {
            state.stats.duplicates += 1;
            return Playout::Duplicate;
        }
        state.lowest = state.lowest.min(packet.seq);
        state.highest = state.highest.max(packet.seq);
        while state
            .seen
            .first()
            .is_some_and(|&s| state.highest.saturating_sub(s) > WINDOW)
        {
            state.seen.pop_first();
        }
        let offset = Duration::from_micros(packet.timestamp_us.saturating_sub(first_ts));
        let deadline = first_arrival + offset + self.playout_delay + state.added;
        if now > deadline {
            state.stats.late += 1;
            state.added = (state.added + now.saturating_since(deadline)).min(self.max_added);
            return Playout::Late;
        }
        let delay = now.as_micros().saturating_sub(packet.timestamp_us);
        state.stats.on_time += 1;
        state.stats.bytes += packet.payload.len() as u64;
        state.delay_sum_us += u128::from(delay);
        state.stats.max_delay = state.stats.max_delay.max(Duration::from_micros(delay));
        Playout::OnTime
    }

    /// The counters of `stream`.
    pub fn stats(&self, stream: u32) -> Option<StreamStats> {
        let state = self.streams.get(&stream)?;
        let mut stats = state.stats.clone();
        stats.playout_added = state.added;
        let expected = (state.highest - state.lowest).saturating_add(1);
        stats.lost = expected.saturating_sub(stats.on_time + stats.late);
        if stats.on_time > 0 {
            stats.mean_delay =
                Duration::from_micros((state.delay_sum_us / u128::from(stats.on_time)) as u64);
        }
        Some(stats)
    }

    /// Streams heard from.
    pub fn streams(&self) -> impl Iterator<Item = u32> + '_ {
        self.streams.keys().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_numbers_at_the_top_of_the_range_are_no_panic() {
        let mut r = Receiver::new(Duration::from_millis(100));
        let now = Time::from_millis(10);
        r.on_packet(now, &packet(u64::MAX, 0));
        r.on_packet(now, &packet(0, 0));
        r.on_packet(now, &packet(u64::MAX - 1, 0));
        let stats = r.stats(1).unwrap();
        // 0 is far behind the highest (u64::MAX): too old, counted as a duplicate.
        assert_eq!(stats.duplicates, 1, "{stats:?}");
        assert_eq!(stats.lost, 0, "{stats:?}");
    }
    use crate::packet::Priority;
    use bytes::Bytes;

    fn packet(seq: u64, ts_ms: u64) -> MediaPacket {
        MediaPacket {
            stream: 1,
            seq,
            frame: seq,
            timestamp_us: ts_ms * 1000,
            priority: Priority::Base,
            fragment: 0,
            fragments: 1,
            payload: Bytes::from_static(&[0; 100]),
        }
    }

    #[test]
    fn deadlines_duplicates_loss_and_delay() {
        let mut r = Receiver::new(Duration::from_millis(100));
        let at = |ms| Time::from_millis(ms);
        assert_eq!(r.on_packet(at(50), &packet(0, 0)), Playout::OnTime);
        assert_eq!(r.on_packet(at(90), &packet(1, 33)), Playout::OnTime);
        assert_eq!(r.on_packet(at(90), &packet(1, 33)), Playout::Duplicate);
        // Frame at 66 ms is due at 50 + 66 + 100 = 216 ms.
        assert_eq!(r.on_packet(at(220), &packet(2, 66)), Playout::Late);
        assert_eq!(r.on_packet(at(150), &packet(4, 132)), Playout::OnTime);
        let s = r.stats(1).unwrap();
        assert_eq!((s.on_time, s.late, s.duplicates, s.lost), (3, 1, 1, 1));
        assert_eq!(s.bytes, 300);
        assert_eq!(s.max_delay, Duration::from_millis(57));
        assert_eq!(
            s.mean_delay,
            Duration::from_micros((50_000 + 57_000 + 18_000) / 3)
        );
        assert_eq!(s.playout_added, Duration::ZERO);
    }

    #[test]
    fn an_adaptive_receiver_delays_its_playout_by_what_it_missed_up_to_a_bound() {
        let mut r = Receiver::new(Duration::from_millis(100))
            .with_adaptive_playout(Duration::from_millis(50));
        let at = |ms| Time::from_millis(ms);
        assert_eq!(r.on_packet(at(50), &packet(0, 0)), Playout::OnTime);
        // Due at 216 ms, 30 ms late: late, and the playout moves 30 ms later.
        assert_eq!(r.on_packet(at(246), &packet(2, 66)), Playout::Late);
        // The same lateness again now plays.
        assert_eq!(r.on_packet(at(279), &packet(3, 99)), Playout::OnTime);
        // 40 ms past the new deadline: late, and the playout moves up to its bound.
        assert_eq!(r.on_packet(at(352), &packet(4, 132)), Playout::Late);
        assert_eq!(r.stats(1).unwrap().playout_added, Duration::from_millis(50));
        // 50 ms late plays now; 51 ms does not.
        assert_eq!(r.on_packet(at(365), &packet(5, 165)), Playout::OnTime);
        assert_eq!(r.on_packet(at(399), &packet(6, 198)), Playout::Late);
    }
}
