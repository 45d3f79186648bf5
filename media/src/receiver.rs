//! The receiving end: a playout deadline per packet (a jitter buffer's worth of delay after the
//! first packet), and counters of what arrived, what came too late, what was lost, and how long
//! packets took.

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
}

/// Sequence numbers remembered for duplicate detection.
const WINDOW: u64 = 16_384;

/// A receiver of any number of streams.
#[derive(Clone, Debug)]
pub struct Receiver {
    playout_delay: Duration,
    streams: BTreeMap<u32, StreamState>,
}

impl Receiver {
    /// A receiver playing each packet `playout_delay` after its frame's place in the stream.
    pub fn new(playout_delay: Duration) -> Self {
        Self {
            playout_delay,
            streams: BTreeMap::new(),
        }
    }

    /// Take in a packet arriving at `now`.
    pub fn on_packet(&mut self, now: Time, packet: &MediaPacket) -> Playout {
        let state = self.streams.entry(packet.stream).or_default();
        let (first_arrival, first_ts) = *state.anchor.get_or_insert((now, packet.timestamp_us));
        if state.seen.is_empty() {
            (state.lowest, state.highest) = (packet.seq, packet.seq);
        }
        let too_old = packet.seq + WINDOW < state.highest;
        if too_old || !state.seen.insert(packet.seq) {
            state.stats.duplicates += 1;
            return Playout::Duplicate;
        }
        state.lowest = state.lowest.min(packet.seq);
        state.highest = state.highest.max(packet.seq);
        while state
            .seen
            .first()
            .is_some_and(|&s| s + WINDOW < state.highest)
        {
            state.seen.pop_first();
        }
        let offset = Duration::from_micros(packet.timestamp_us.saturating_sub(first_ts));
        let deadline = first_arrival + offset + self.playout_delay;
        if now > deadline {
            state.stats.late += 1;
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
        let expected = state.highest - state.lowest + 1;
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
    }
}
