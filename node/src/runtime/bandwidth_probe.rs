//! Active bandwidth probes, as Narada measures a link: a member asks a peer for a probe, and
//! the peer writes a short train of frames (about the paper's 10 KB) back to back on the
//! control stream; the path's bottleneck spaces them out, so the asker, timing the first and
//! last frames' arrival, knows the rate the path from the peer carries now (its slowest link,
//! queues of other traffic included). Without it the runtime could only offer QUIC's
//! congestion window over the round trip, which on a link that carries little or nothing says
//! how much was sent, not what the path allows, and widest-path trees then chained through the
//! few links already busy.
//!
//! State is one probe each way per peer; a train that never completes times out and the asker
//! falls back to the congestion window's figure. A peer answers at most one ask a second.

use std::time::Duration;

use overlay_core::Time;

/// Frames in a train.
pub(super) const TRAIN: u16 = 8;
/// Filler bytes per frame (a train is about 10 KB).
pub(super) const FILL: usize = 1250;
/// A probe whose train has not come by then is given up.
pub(super) const TIMEOUT: Duration = Duration::from_secs(3);
/// A member sends a peer at most one train this often, whatever it asks.
pub(super) const MIN_SPACING: Duration = Duration::from_secs(1);

/// A probe this member asked for and awaits the train of.
#[derive(Clone, Copy, Debug)]
pub(super) struct Outgoing {
    /// Which probe.
    pub(super) id: u32,
    /// When it was asked for.
    pub(super) at: Time,
    /// The most the protocol wants to know (the probe's cap).
    pub(super) max_bps: f64,
}

/// A train arriving from a peer.
#[derive(Clone, Copy, Debug)]
pub(super) struct Incoming {
    id: u32,
    first: Time,
    last: Time,
    /// Bytes that arrived after the first frame.
    bytes_after_first: u64,
    frames: u16,
}

impl Incoming {
    /// Takes in frame `index` of `count` of probe `id`, `bytes` long, arriving at `now`;
    /// returns the rate (bits per second) once the train's last frame is in. A frame of
    /// another probe starts over; one that arrives twice or past the count is ignored.
    pub(super) fn take(
        slot: &mut Option<Self>,
        id: u32,
        index: u16,
        count: u16,
        bytes: usize,
        now: Time,
    ) -> Option<u64> {
        if count < 2 || index >= count {
            return None;
        }
        let state = match slot {
            Some(s) if s.id == id => s,
            _ => slot.insert(Self {
                id,
                first: now,
                last: now,
                bytes_after_first: 0,
                frames: 0,
            }),
        };
        state.frames = state.frames.saturating_add(1);
        if state.frames > 1 {
            state.bytes_after_first += bytes as u64;
            state.last = now;
        }
        if index + 1 < count {
            return None;
        }
        let done = *state;
        *slot = None;
        let seconds = done.last.saturating_since(done.first).as_secs_f64();
        // Frames that came in one read are not spread: the path is faster than the clock can
        // tell, so say so with the fastest rate the reading allows (a millisecond's spacing).
        let seconds = seconds.max(1e-3);
        (done.frames >= 2).then(|| (done.bytes_after_first as f64 * 8.0 / seconds).round() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_train_spaced_by_a_bottleneck_reports_its_rate() {
        let mut slot = None;
        // 1250-byte frames 10 ms apart: 1 Mbit/s.
        let mut out = None;
        for i in 0..TRAIN {
            let at = Time::from_millis(1_000 + 10 * u64::from(i));
            out = Incoming::take(&mut slot, 7, i, TRAIN, FILL, at);
            if i + 1 < TRAIN {
                assert_eq!(out, None);
            }
        }
        assert_eq!(out, Some(1_000_000));
        assert!(slot.is_none(), "the train is forgotten once reported");
    }

    #[test]
    fn another_probe_starts_over_and_nonsense_is_ignored() {
        let mut slot = None;
        let t = Time::from_millis;
        assert_eq!(Incoming::take(&mut slot, 1, 0, 4, 1000, t(0)), None);
        // A new probe: the old train is dropped.
        assert_eq!(Incoming::take(&mut slot, 2, 0, 4, 1000, t(100)), None);
        assert_eq!(Incoming::take(&mut slot, 2, 1, 4, 1000, t(108)), None);
        // Out of range, or a train of one: nothing.
        assert_eq!(Incoming::take(&mut slot, 2, 9, 4, 1000, t(110)), None);
        assert_eq!(Incoming::take(&mut slot, 3, 0, 1, 1000, t(110)), None);
        // A lost frame: the rate is over what did arrive.
        let rate = Incoming::take(&mut slot, 2, 3, 4, 1000, t(116)).unwrap();
        assert_eq!(rate, 1_000_000);
        // All in one read: a millisecond's spacing is assumed.
        assert_eq!(Incoming::take(&mut slot, 5, 0, 2, 1000, t(200)), None);
        assert_eq!(
            Incoming::take(&mut slot, 5, 1, 2, 1000, t(200)),
            Some(8_000_000)
        );
    }
}
