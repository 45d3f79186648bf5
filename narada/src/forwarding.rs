//! Per-source data state: duplicate suppression, a buffer of recent packets for repairing
//! neighbours' gaps, and the gaps this member itself is waiting to have filled.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use bytes::Bytes;
use overlay_core::Time;
use probe::ArrivalPace;

use crate::members::Slot;

/// Sequence numbers remembered behind the highest one, for duplicate suppression.
pub const WINDOW: u64 = 8192;

/// Most gaps tracked per source; beyond it the oldest are given up.
pub const MAX_MISSING: usize = 4096;

/// Retries of a gap before it is given up.
pub const MAX_NACKS: u8 = 6;

/// A buffered packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Buffered {
    /// Source send time, microseconds.
    pub sent_at_us: u64,
    /// Drop class.
    pub priority: u8,
    /// Payload.
    pub payload: Bytes,
}

/// A gap waiting to be filled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Missing {
    /// When the gap was noticed.
    pub noticed: Time,
    /// When to ask next.
    pub next_nack: Time,
    /// Times asked.
    pub nacks: u8,
}

/// What a received packet is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arrival {
    /// New, in order or ahead (gaps recorded).
    New,
    /// New, and it fills a gap.
    Recovered,
    /// Seen before (or too old to tell): drop.
    Duplicate,
}

/// Data state for one source.
#[derive(Clone, Debug, Default)]
pub struct SourceState {
    highest: Option<u64>,
    /// Bit i of word w: `highest - (64 w + i)` received (bounded by [`WINDOW`]).
    seen: VecDeque<u64>,
    /// Recent packets in order of sequence number, each with when it was kept. Packets come
    /// mostly in order and leave oldest first, so a sorted queue searched by binary search
    /// serves them with no allocation per packet (the map it replaced was 6% of a 256-member
    /// simulation's profile). A packet out of order costs a shift of at most half the
    /// queue, which the capacity bounds.
    buffer: VecDeque<(u64, Time, Buffered)>,
    /// Gaps by sequence number.
    pub missing: BTreeMap<u64, Missing>,
    /// The previous upstream and until when its packets are still accepted.
    pub previous_upstream: Option<(Slot, Time)>,
    /// The upstream packets last came from.
    pub upstream: Option<Slot>,
    /// Gaps given up on.
    pub given_up: u64,
    /// When this source's packets last arrived (or were sent, for this member's own), and
    /// their pace.
    pub pace: ArrivalPace,
    /// The current silence of this source was reported (cleared by its next packet).
    pub silence_reported: bool,
}

impl SourceState {
    /// `Some(seen)`, or `None` when too old to tell.
    fn was_seen(&self, seq: u64) -> Option<bool> {
        let Some(highest) = self.highest else {
            return Some(false);
        };
        if seq > highest {
            return Some(false);
        }
        let behind = highest - seq;
        if behind >= WINDOW {
            return None;
        }
        let (w, b) = ((behind / 64) as usize, behind % 64);
        Some(self.seen.get(w).is_some_and(|word| word & (1 << b) != 0))
    }

    fn mark(&mut self, seq: u64) {
        let highest = self.highest.unwrap_or(seq);
        if seq > highest || self.highest.is_none() {
            let shift = seq - self.highest.unwrap_or(seq);
            self.shift(shift);
            self.highest = Some(seq);
        }
        let behind = self.highest.unwrap_or(seq) - seq;
        let (w, b) = ((behind / 64) as usize, behind % 64);
        if self.seen.is_empty() {
            self.seen.push_back(0);
        }
        while self.seen.len() <= w {
            self.seen.push_back(0);
        }
        self.seen[w] |= 1 << b;
    }

    /// Shift the bitmap so index 0 is `shift` numbers later.
    fn shift(&mut self, shift: u64) {
        if shift == 0 {
            return;
        }
        let words = (WINDOW / 64) as usize;
        if shift >= WINDOW {
            self.seen.clear();
            return;
        }
        let (whole, bits) = ((shift / 64) as usize, shift % 64);
        for _ in 0..whole {
            self.seen.push_front(0);
        }
        if bits > 0 {
            let mut carry = 0u64;
            for word in &mut self.seen {
                let next_carry = *word >> (64 - bits);
                *word = (*word << bits) | carry;
                carry = next_carry;
            }
            if carry != 0 {
                self.seen.push_back(carry);
            }
        }
        self.seen.truncate(words);
    }

    /// A packet of this source came from its upstream at `now` (new or not): the stream is
    /// alive; the gap since the previous one updates its pace.
    pub fn heard(&mut self, now: Time, active_for: Duration) {
        self.pace.arrived(now, active_for);
        self.silence_reported = false;
    }

    /// How long this source may go quiet before its upstream is suspected: `floor`, or if
    /// longer, twice its smoothed gap plus four deviations ([`ArrivalPace::overdue_after`]).
    pub fn silence_limit(&self, floor: Duration) -> Duration {
        self.pace.overdue_after(floor)
    }

    /// Record the arrival of `seq` at `now`; gaps it reveals are asked for after `nack_delay`.
    pub fn arrive(&mut self, seq: u64, now: Time, nack_delay: Duration) -> Arrival {
        match self.was_seen(seq) {
            Some(true) | None => return Arrival::Duplicate,
            Some(false) => {}
        }
        let recovered = self.missing.remove(&seq).is_some();
        if let Some(h) = self.highest
            && seq > h.saturating_add(1)
        {
            {
                // Sequence numbers come off the wire: saturate rather than overflow.
                let first = h
                    .saturating_add(1)
                    .max(seq.saturating_sub(MAX_MISSING as u64));
                for gap in first..seq {
                    self.missing.insert(
                        gap,
                        Missing {
                            noticed: now,
                            next_nack: now + nack_delay,
                            nacks: 0,
                        },
                    );
                }
                while self.missing.len() > MAX_MISSING {
                    self.missing.pop_first();
                    self.given_up += 1;
                }
            }
        }
        self.mark(seq);
        if recovered {
            Arrival::Recovered
        } else {
            Arrival::New
        }
    }

    /// Keep `packet` for repairs as of `now`, holding at most `capacity` packets.
    pub fn keep(&mut self, seq: u64, packet: Buffered, capacity: usize, now: Time) {
        match self.buffer.back() {
            Some(&(last, _, _)) if last >= seq => {
                match self.buffer.binary_search_by_key(&seq, |&(s, _, _)| s) {
                    Ok(at) => self.buffer[at] = (seq, now, packet),
                    Err(at) => self.buffer.insert(at, (seq, now, packet)),
                }
            }
            _ => {
                // The newest: make room first, so the queue never outgrows its capacity.
                while !self.buffer.is_empty() && self.buffer.len() >= capacity {
                    self.buffer.pop_front();
                }
                self.buffer.push_back((seq, now, packet));
            }
        }
        while self.buffer.len() > capacity {
            self.buffer.pop_front();
        }
    }

    /// A buffered packet, if it was kept at `since` or later (older ones are too late to be
    /// worth resending).
    pub fn buffered(&self, seq: u64, since: Time) -> Option<&Buffered> {
        let at = self
            .buffer
            .binary_search_by_key(&seq, |&(s, _, _)| s)
            .ok()?;
        let (_, kept, packet) = &self.buffer[at];
        (*kept >= since).then_some(packet)
    }

    /// Gaps due to be asked for at `now`, as ranges; their next request is scheduled with
    /// exponential backoff, and gaps asked for too often, or noticed more than `max_age` ago
    /// (an answer would come too late to be played), are given up.
    pub fn due_nacks(
        &mut self,
        now: Time,
        nack_delay: Duration,
        max_age: Duration,
    ) -> Vec<(u64, u16)> {
        let mut due = Vec::new();
        let mut give_up = Vec::new();
        for (&seq, m) in &mut self.missing {
            if m.next_nack > now {
                continue;
            }
            if m.nacks >= MAX_NACKS || now.saturating_since(m.noticed) > max_age {
                give_up.push(seq);
                continue;
            }
            m.nacks += 1;
            m.next_nack = now + nack_delay * (1 << m.nacks.min(5));
            due.push(seq);
        }
        for seq in give_up {
            self.missing.remove(&seq);
            self.given_up += 1;
        }
        let mut ranges: Vec<(u64, u16)> = Vec::new();
        for seq in due {
            match ranges.last_mut() {
                Some((first, count))
                    if first.checked_add(u64::from(*count)) == Some(seq) && *count < u16::MAX =>
                {
                    *count += 1
                }
                _ => ranges.push((seq, 1)),
            }
        }
        ranges
    }

    /// The earliest time a gap is due.
    pub fn next_nack(&self) -> Option<Time> {
        self.missing.values().map(|m| m.next_nack).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const D: Duration = Duration::from_millis(100);
    /// A repair age no gap reaches.
    const AGES: Duration = Duration::from_secs(1_000_000);

    #[test]
    fn gaps_are_recorded_asked_for_and_filled() {
        let mut s = SourceState::default();
        let t = Time::from_secs(1);
        assert_eq!(s.arrive(10, t, D), Arrival::New);
        assert_eq!(s.arrive(14, t, D), Arrival::New);
        assert_eq!(
            s.missing.keys().copied().collect::<Vec<_>>(),
            vec![11, 12, 13]
        );
        assert_eq!(s.due_nacks(t, D, AGES), vec![]);
        assert_eq!(s.due_nacks(t + D, D, AGES), vec![(11, 3)]);
        assert_eq!(s.arrive(12, t, D), Arrival::Recovered);
        assert_eq!(s.arrive(12, t, D), Arrival::Duplicate);
        assert_eq!(s.next_nack(), Some(t + D + D * 2));
        for k in 2..=MAX_NACKS + 1 {
            let _ = s.due_nacks(Time::from_secs(u64::from(k) * 100), D, AGES);
        }
        assert!(s.missing.is_empty());
        assert_eq!(s.given_up, 2);
    }

    #[test]
    fn a_gap_too_old_to_be_played_is_given_up_not_asked_for() {
        let mut s = SourceState::default();
        let t = Time::from_secs(1);
        let age = Duration::from_millis(500);
        s.arrive(10, t, D);
        s.arrive(12, t, D);
        assert_eq!(s.due_nacks(t + D, D, age), vec![(11, 1)]);
        // Asked once; by its next turn it is older than the repair age.
        assert_eq!(s.due_nacks(t + D * 6, D, age), vec![]);
        assert!(s.missing.is_empty());
        assert_eq!(s.given_up, 1);
    }

    #[test]
    fn buffer_is_bounded() {
        let mut s = SourceState::default();
        for seq in 0..100 {
            s.keep(
                seq,
                Buffered {
                    sent_at_us: seq,
                    priority: 1,
                    payload: Bytes::new(),
                },
                10,
                Time::from_millis(seq),
            );
        }
        let any = Time::ZERO;
        assert!(s.buffered(89, any).is_none());
        assert_eq!(s.buffered(95, any).unwrap().sent_at_us, 95);
        // Packets kept before `since` are too old to resend.
        assert!(s.buffered(95, Time::from_millis(96)).is_none());
        assert!(s.buffered(96, Time::from_millis(96)).is_some());
    }

    proptest! {
        /// The repair buffer keeps what a map by sequence number bounded to the same capacity
        /// keeps (the highest numbers, a number kept again replacing the first), whatever the
        /// order packets come in.
        #[test]
        fn the_buffer_keeps_what_a_bounded_map_keeps(
            seqs in proptest::collection::vec(0u64..200, 0..300),
            capacity in 0usize..40,
        ) {
            let mut s = SourceState::default();
            let mut model = BTreeMap::new();
            for (i, &q) in seqs.iter().enumerate() {
                let at = Time::from_millis(i as u64);
                let packet = Buffered { sent_at_us: i as u64, priority: 0, payload: Bytes::new() };
                s.keep(q, packet, capacity, at);
                model.insert(q, (at, i as u64));
                while model.len() > capacity {
                    model.pop_first();
                }
                prop_assert!(s.buffer.len() <= capacity);
            }
            for q in 0..200 {
                let got = s.buffered(q, Time::ZERO).map(|b| b.sent_at_us);
                prop_assert_eq!(got, model.get(&q).map(|&(_, i)| i), "seq {}", q);
                if let Some(&(at, _)) = model.get(&q) {
                    prop_assert!(s.buffered(q, at + Duration::from_micros(1)).is_none());
                    prop_assert!(s.buffered(q, at).is_some());
                }
            }
        }

        /// Whatever the arrival order, each number is new exactly once (within the window), and
        /// the gap set is exactly the numbers not yet seen between the first and the highest.
        #[test]
        fn each_number_is_new_once(seqs in proptest::collection::vec(0u64..3000, 1..400)) {
            let mut s = SourceState::default();
            let mut seen = std::collections::BTreeSet::new();
            let first = seqs[0];
            for &q in &seqs {
                let a = s.arrive(q, Time::ZERO, D);
                prop_assert_eq!(a != Arrival::Duplicate, seen.insert(q), "seq {}", q);
            }
            let highest = *seen.iter().max().unwrap();
            let expected: Vec<u64> = (first..highest).filter(|q| !seen.contains(q)).collect();
            let got: Vec<u64> = s.missing.keys().copied().collect();
            prop_assert_eq!(got, expected);
        }

        /// Any numbers a peer may send, up to the largest, are taken and asked for without
        /// overflowing (test builds check overflow).
        #[test]
        fn any_wire_numbers_are_taken_without_overflow(
            seqs in proptest::collection::vec(
                prop_oneof![any::<u64>(), Just(u64::MAX), (u64::MAX - 300)..=u64::MAX, 0u64..300],
                1..200,
            )
        ) {
            let mut s = SourceState::default();
            for &q in &seqs {
                let _ = s.arrive(q, Time::ZERO, D);
            }
            let ranges = s.due_nacks(Time::from_secs(1), D, AGES);
            for (first, count) in ranges {
                prop_assert!(first.checked_add(u64::from(count)).is_some() || count == 1);
            }
        }
    }
}
