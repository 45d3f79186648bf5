//! Which temporal layers of its source one watching browser gets, from the bandwidth the browser's
//! leg is estimated to carry (str0m's transport-wide congestion control, or the browser's REMB):
//! the base layer and sound always; the frames above the base while the whole stream fits. A leg
//! that no longer carries the stream stops getting the upper layer (at once if the estimate is 20%
//! short, after two seconds if less, or six if the dip starts within ten seconds of the layer's
//! return; dropping it breaks nothing: base frames never refer to upper ones); the upper layer
//! comes back once the estimate has carried the whole stream for three seconds and shows 15% more,
//! at an upper frame marked as a layer sync (it refers only to the base) or a keyframe, so the
//! browser never gets an upper frame whose reference it lacks. Sans-IO: time comes in.

use std::time::{Duration, Instant};

use media::Frame;

/// An estimate this far below the whole stream stops the upper layer at once; one less far
/// below, only after [`DIP_TOLERATED`] (an estimator riding just above what it is sent dips
/// below it now and then, and a second with a keyframe in it sends more than the mean).
pub(super) const SHORT_AT_ONCE: f64 = 0.8;
/// How long an estimate may dip just below the whole stream.
pub(super) const DIP_TOLERATED: Duration = Duration::from_secs(2);
/// How long a dip that starts within [`SETTLE_AFTER_UP`] of a move up may last: an estimator
/// that was held at a lower rate, and meets the higher one's keyframe and rate at once, dips
/// below it for a few seconds before it finds the leg's room (a browser-leg test run, its leg
/// widened to 20 Mbit/s, saw the estimate just short of the whole picture 3 to 6.6 s after the
/// move up, and the watcher moved down and up again).
pub(super) const DIP_TOLERATED_SETTLING: Duration = Duration::from_secs(6);
/// How long after a move up a dip counts as the estimator settling.
pub(super) const SETTLE_AFTER_UP: Duration = Duration::from_secs(10);
/// Headroom the estimate must show over the whole stream before the upper layer comes back.
pub(super) const RESUME_HEADROOM: f64 = 1.15;
/// How long the estimate must have carried the whole stream before that.
pub(super) const RESUME_AFTER: Duration = Duration::from_secs(3);
/// While the upper layer is off, the leg is probed for room this often.
pub(super) const PROBE_EVERY: Duration = Duration::from_secs(4);
/// Bytes on the wire per byte of frame: RTP, SRTP, UDP and IP headers on ~1 200-byte
/// packets, and RTCP.
const WIRE_OVERHEAD: f64 = 1.08;

/// The leg's rule for leaving what it carries: at once when the estimate is
/// [`SHORT_AT_ONCE`] of what is needed or less, else once it has been short for
/// [`DIP_TOLERATED`] ([`DIP_TOLERATED_SETTLING`] for a dip that starts soon after a move up).
#[derive(Clone, Debug, Default)]
pub(super) struct DipRule {
    /// Since when the estimate has been just short.
    short_since: Option<Instant>,
    /// When the leg last moved up to carry more.
    up_at: Option<Instant>,
}

impl DipRule {
    /// The leg now carries more (a layer or an encoding up).
    pub(super) fn moved_up(&mut self, now: Instant) {
        self.up_at = Some(now);
        self.short_since = None;
    }

    /// Forgets a dip under way (the leg no longer carries what it was measured against).
    pub(super) fn clear(&mut self) {
        self.short_since = None;
    }

    /// Whether the leg, estimated at `estimate` where it needs `needed`, should carry less.
    pub(super) fn too_short(&mut self, estimate: f64, needed: f64, now: Instant) -> bool {
        if estimate >= needed {
            self.short_since = None;
            return false;
        }
        let since = *self.short_since.get_or_insert(now);
        let settling = self
            .up_at
            .is_some_and(|up| since.saturating_duration_since(up) < SETTLE_AFTER_UP);
        let tolerated = if settling {
            DIP_TOLERATED_SETTLING
        } else {
            DIP_TOLERATED
        };
        let short =
            estimate < needed * SHORT_AT_ONCE || now.saturating_duration_since(since) >= tolerated;
        if short {
            self.short_since = None;
        }
        short
    }
}

/// One watcher's choice of layers.
#[derive(Clone, Debug)]
pub(super) struct LayerChoice {
    /// Frames above the base layer are sent.
    upper: bool,
    /// The estimate has room again: the upper layer resumes at its next sync or keyframe.
    resuming: bool,
    /// Since when the estimate has carried the whole stream (while the upper layer is off).
    room_since: Option<Instant>,
    /// When the estimate falls short of the whole stream (while it is on).
    dip: DipRule,
    /// When the leg was last probed for room.
    probed_at: Option<Instant>,
    /// The leg's last estimate.
    estimate_bps: u64,
}

impl Default for LayerChoice {
    fn default() -> Self {
        Self {
            upper: true,
            resuming: false,
            room_since: None,
            dip: DipRule::default(),
            probed_at: None,
            estimate_bps: 0,
        }
    }
}

impl LayerChoice {
    /// The leg's estimate is `estimate_bps`; the source sends `stream_bps` of frames now (all
    /// layers and its sound).
    pub(super) fn on_estimate(&mut self, estimate_bps: u64, stream_bps: f64, now: Instant) {
        let needed = stream_bps * WIRE_OVERHEAD;
        self.estimate_bps = estimate_bps;
        let estimate = estimate_bps as f64;
        if self.upper {
            if self.dip.too_short(estimate, needed, now) {
                self.upper = false;
                self.resuming = false;
                self.room_since = None;
            }
            return;
        }
        if estimate >= needed {
            let since = *self.room_since.get_or_insert(now);
            if now.saturating_duration_since(since) >= RESUME_AFTER
                && estimate >= needed * RESUME_HEADROOM
            {
                self.resuming = true;
            }
        } else {
            self.room_since = None;
            self.resuming = false;
        }
    }

    /// Whether `frame` goes to the browser.
    pub(super) fn admit(&mut self, frame: &Frame, now: Instant) -> bool {
        if frame.codec.is_audio() {
            return true;
        }
        if self.resuming && (frame.keyframe || (frame.layer > 0 && frame.layer_sync)) {
            self.upper = true;
            self.resuming = false;
            self.room_since = None;
            self.dip.moved_up(now);
        }
        frame.layer == 0 || self.upper
    }

    /// Whether the leg should be probed for room now: every [`PROBE_EVERY`] while the upper
    /// layer is off or the browser gets a lower simulcast encoding than its source's top
    /// (`below_top`; after losses, str0m's estimator held at the base layer's rate finds no
    /// room by itself; restarted, it probes at a multiple of its estimate).
    pub(super) fn probe_due(&mut self, now: Instant, below_top: bool) -> bool {
        if self.upper && !below_top {
            self.probed_at = None;
            return false;
        }
        let due = self
            .probed_at
            .is_none_or(|t| now.saturating_duration_since(t) >= PROBE_EVERY);
        if due {
            self.probed_at = Some(now);
        }
        due
    }

    /// The leg's last estimate, bits per second.
    pub(super) fn estimate(&self) -> u64 {
        self.estimate_bps
    }

    /// Whether frames above the base layer are being sent.
    pub(super) fn sends_upper(&self) -> bool {
        self.upper
    }

    /// What the leg's estimator should keep the leg at (`minimum`, padding if media is less)
    /// and aim for (`desired`), bits per second, for a source whose largest encoding takes
    /// `stream_bps`: while the upper layer is off or the browser gets a lower encoding
    /// (`below_top`), enough to show that it would fit again.
    pub(super) fn probe_rates(&self, stream_bps: f64, below_top: bool) -> (u64, u64) {
        let needed = stream_bps * WIRE_OVERHEAD;
        let desired = (needed * RESUME_HEADROOM * 1.2) as u64;
        if self.upper && !below_top {
            (0, desired)
        } else {
            ((needed * RESUME_HEADROOM * 1.05) as u64, desired)
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use media::Codec;

    use super::*;

    fn frame(layer: u8, sync: bool, keyframe: bool) -> Frame {
        Frame {
            codec: Codec::Vp8,
            keyframe,
            timestamp_us: 0,
            data: Bytes::from_static(b"x"),
            layer,
            layer_sync: sync,
            encoding: 0,
        }
    }

    #[test]
    fn the_upper_layer_stops_when_the_stream_does_not_fit_and_resumes_at_a_sync() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut c = LayerChoice::default();
        let stream = 600_000.0;
        c.on_estimate(1_000_000, stream, at(0));
        assert!(c.admit(&frame(1, false, false), t0), "it fits: every layer");
        // A dip just below the stream (needed: 648 kbit/s with headers) is tolerated for two
        // seconds, then not.
        let ms = |m: u64| t0 + Duration::from_millis(m);
        c.on_estimate(630_000, stream, ms(100));
        c.on_estimate(700_000, stream, ms(600));
        c.on_estimate(550_000, stream, ms(700));
        c.on_estimate(630_000, stream, ms(2600));
        assert!(c.sends_upper(), "short dips");
        c.on_estimate(630_000, stream, ms(2800));
        assert!(!c.sends_upper(), "two seconds short");
        let mut c = LayerChoice::default();
        c.on_estimate(500_000, stream, at(1));
        assert!(!c.sends_upper());
        assert!(c.admit(&frame(0, false, false), t0), "the base always");
        assert!(!c.admit(&frame(1, true, false), t0), "the upper layer not");
        let mut sound = frame(0, false, false);
        sound.codec = Codec::Opus;
        assert!(c.admit(&sound, t0));
        // Room, but not for long enough; then long enough.
        c.on_estimate(900_000, stream, at(2));
        c.on_estimate(900_000, stream, at(4));
        assert!(!c.admit(&frame(1, true, false), t0), "two seconds of room");
        // A dip below the stream starts the wait again; room without the headroom is not
        // enough.
        c.on_estimate(600_000, stream, at(5));
        c.on_estimate(700_000, stream, at(6));
        c.on_estimate(700_000, stream, at(9));
        assert!(!c.admit(&frame(1, true, false), t0), "no headroom");
        c.on_estimate(900_000, stream, at(9));
        assert!(
            !c.admit(&frame(1, false, false), t0),
            "an upper frame that is no sync"
        );
        assert!(c.admit(&frame(1, true, false), t0), "resumed at a sync");
        assert!(c.admit(&frame(1, false, false), t0));
        // And after a keyframe as well.
        c.on_estimate(100_000, stream, at(10));
        c.on_estimate(900_000, stream, at(10));
        c.on_estimate(900_000, stream, at(13));
        assert!(c.admit(&frame(0, false, true), t0));
        assert!(c.admit(&frame(1, false, false), t0));
    }

    /// A dip just short soon after a move up is the estimator settling: tolerated six seconds,
    /// not two; later ones two again; a leg 20% short still moves at once.
    #[test]
    fn a_dip_soon_after_a_move_up_is_tolerated_longer() {
        let t0 = Instant::now();
        let ms = |m: u64| t0 + Duration::from_millis(m);
        let stream = 600_000.0;
        let mut c = LayerChoice::default();
        c.on_estimate(500_000, stream, ms(0));
        c.on_estimate(900_000, stream, ms(100));
        c.on_estimate(900_000, stream, ms(3_100));
        assert!(c.admit(&frame(1, true, false), ms(3_200)), "moved up");
        // Needed: 648 kbit/s with headers. Just short from 4.2 s: still up at 10.1 s.
        c.on_estimate(630_000, stream, ms(4_200));
        c.on_estimate(630_000, stream, ms(10_100));
        assert!(c.sends_upper(), "settling");
        c.on_estimate(630_000, stream, ms(10_200));
        assert!(!c.sends_upper(), "six seconds short");
        // Up again; a dip that starts long after the move gets two seconds.
        c.on_estimate(900_000, stream, ms(10_300));
        c.on_estimate(900_000, stream, ms(13_300));
        assert!(c.admit(&frame(1, true, false), ms(13_400)));
        c.on_estimate(630_000, stream, ms(23_400));
        c.on_estimate(630_000, stream, ms(25_400));
        assert!(!c.sends_upper(), "two seconds short, long after the move");
        // 20% short right after a move up: at once.
        c.on_estimate(900_000, stream, ms(25_500));
        c.on_estimate(900_000, stream, ms(28_500));
        assert!(c.admit(&frame(1, true, false), ms(28_600)));
        c.on_estimate(500_000, stream, ms(28_700));
        assert!(!c.sends_upper(), "far short");
    }

    #[test]
    fn probing_asks_for_room_above_the_stream_only_while_the_upper_layer_is_off() {
        let mut c = LayerChoice::default();
        let (minimum, desired) = c.probe_rates(600_000.0, false);
        assert_eq!(minimum, 0);
        assert!(desired as f64 > 600_000.0 * WIRE_OVERHEAD * RESUME_HEADROOM);
        // On a lower simulcast encoding the leg is probed for the top one.
        let now = Instant::now();
        let (minimum, _) = c.probe_rates(600_000.0, true);
        assert!(minimum as f64 > 600_000.0 * WIRE_OVERHEAD * RESUME_HEADROOM);
        assert!(c.probe_due(now, true) && !c.probe_due(now, true));
        assert!(!c.probe_due(now, false));
        c.on_estimate(100_000, 600_000.0, now);
        let (minimum, _) = c.probe_rates(600_000.0, false);
        assert!(minimum as f64 > 600_000.0 * WIRE_OVERHEAD * RESUME_HEADROOM);
    }
}
