//! Which simulcast encoding of its source one watching browser gets: the higher one while it
//! arrives whole at this member and the browser's leg carries it, else the lower one (the
//! small picture, which every member carries first). A switch waits for a keyframe of the
//! encoding switched to (asked for), and until it comes the browser keeps the one it has; the
//! frames written after the switch carry on the browser's timeline (their timestamps are
//! moved to follow the last frame written by the wall-clock time between them), since a
//! browser's encodings need not share a media clock.
//!
//! The leg's rules are [`super::layer_choice`]'s: down at once when the estimate is 20% short of
//! the higher encoding (and its sound), or after two seconds just short (six for a dip that starts
//! within ten seconds of the move up: the estimator settling); up after three seconds of carrying
//! it with 15% to spare. A higher encoding that has not arrived for [`STARVED_AFTER`] while the
//! lower did (counted from [`KEYFRAME_SPELL`] after its last keyframe, if later) counts as absent
//! (a congested link above this member sheds it first; a source quiet as a whole is not helped by a
//! move); one quiet for [`HEDGE_AFTER`] while the lower still comes already has the lower's
//! keyframe asked for, and the browser takes it if the higher is still quiet when it comes (a
//! switch then costs a round trip to the publisher, not the wait as well), unless the quiet began
//! within [`KEYFRAME_SPELL`] of a keyframe (a big keyframe on its way, or an encoder skipping
//! frames after one, is no sign of a link above shedding the higher encoding). Sources that send
//! one encoding are untouched. Sans-IO: time comes in.

use std::time::{Duration, Instant};

use media::Frame;

use super::layer_choice::{DipRule, RESUME_AFTER, RESUME_HEADROOM};

/// A higher encoding with no whole frame here this long is taken as not arriving.
pub(super) const STARVED_AFTER: Duration = Duration::from_millis(600);
/// A higher encoding quiet this long has the lower's keyframe asked for, as a hedge.
pub(super) const HEDGE_AFTER: Duration = Duration::from_millis(250);
/// How long after a keyframe of either encoding the higher's quiet starts no hedge: a big
/// keyframe takes a while to reach this member, and the encoder skips frames after one (the
/// kernel-shaped leg test saw the higher quiet 0.14-0.28 s before its keyframes and up to
/// 0.42 s after them, and a hedge taken then moved the watcher down for seconds).
pub(super) const KEYFRAME_SPELL: Duration = Duration::from_millis(700);
/// A keyframe of the higher encoding to switch to is asked for at most this often.
pub(super) const SWITCH_ASK_GAP: Duration = Duration::from_secs(2);
/// The same for the lower one (small keyframes; one is asked again soon because a browser may
/// ignore a request that comes just after its last keyframe: Chromium answered none that came
/// 0.19 s after one, in a trace of the capped-link test).
pub(super) const LOWER_ASK_GAP: Duration = Duration::from_millis(500);
/// Bytes on the wire per byte of frame (as [`super::layer_choice`] counts them).
const WIRE_OVERHEAD: f64 = 1.08;

/// Why a watcher left the higher encoding for the lower.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Down {
    /// Its leg's estimate fell short of the higher encoding.
    Short,
    /// The higher encoding stopped arriving whole at this member.
    Starved,
    /// The higher encoding was quiet when the lower's keyframe (asked for as a hedge) came.
    Hedged,
}

/// How quiet the higher encoding is at this member.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Quiet {
    /// No whole frame of it for [`HEDGE_AFTER`], or it lost one.
    pub(super) higher: bool,
    /// A keyframe of the source came within [`KEYFRAME_SPELL`]: quiet then starts no hedge
    /// (one started earlier holds).
    pub(super) keyframes_due: bool,
}

/// One watcher's choice of encoding.
#[derive(Clone, Debug, Default)]
pub(super) struct EncodingChoice {
    /// The encoding written to the browser now (`None` before its start).
    current: Option<u8>,
    /// The encoding it should have: switched to at its next keyframe.
    target: u8,
    /// Since when the leg has carried the higher encoding (while on the lower).
    room_since: Option<Instant>,
    /// When the leg falls short of it (while on the higher).
    dip: DipRule,
    /// Added to the current encoding's video timestamps, microseconds.
    offset_us: i64,
    /// The last video timestamp written (after the offset) and when.
    last_out: Option<(u64, Instant)>,
    /// When a keyframe of the target was last asked for.
    asked_at: Option<Instant>,
    /// On the higher encoding, which has been quiet for [`HEDGE_AFTER`]: the lower's next
    /// keyframe is taken.
    hedge: bool,
    /// The last decision to leave the higher encoding, not yet taken by [`Self::take_down`].
    down: Option<Down>,
}

impl EncodingChoice {
    /// The browser starts on `encoding` (its first frames are that encoding's keyframe group).
    pub(super) fn start(&mut self, encoding: u8) {
        self.current = Some(encoding);
        self.target = encoding;
    }

    /// Reviews the choice: the leg carries `estimate_bps`; `higher_bps` is what the higher
    /// encoding and the sound take, if the source sends one and it arrives here, and `quiet`
    /// how quiet it is. The encoding whose keyframe should be asked for now, if any.
    pub(super) fn review(
        &mut self,
        estimate_bps: u64,
        higher_bps: Option<f64>,
        quiet: Quiet,
        now: Instant,
    ) -> Option<u8> {
        let estimate = estimate_bps as f64;
        match higher_bps {
            None => {
                if self.on_higher() {
                    self.down = Some(Down::Starved);
                }
                self.target = 0;
                self.room_since = None;
                self.dip.clear();
            }
            Some(rate) => {
                let needed = rate * WIRE_OVERHEAD;
                if self.target == 1 {
                    self.room_since = None;
                    if self.dip.too_short(estimate, needed, now) {
                        if self.on_higher() {
                            self.down = Some(Down::Short);
                        }
                        self.target = 0;
                    }
                } else {
                    self.dip.clear();
                    if estimate >= needed * RESUME_HEADROOM {
                        let since = *self.room_since.get_or_insert(now);
                        if now.saturating_duration_since(since) >= RESUME_AFTER {
                            self.target = 1;
                            self.room_since = None;
                        }
                    } else {
                        self.room_since = None;
                    }
                }
            }
        }
        let switching = self.current.is_some_and(|c| c != self.target);
        self.hedge = self.current == Some(1)
            && self.target == 1
            && quiet.higher
            && (self.hedge || !quiet.keyframes_due);
        if !switching && !self.hedge {
            self.asked_at = None;
            return None;
        }
        let wanted = if self.hedge { 0 } else { self.target };
        let gap = if wanted == 0 {
            LOWER_ASK_GAP
        } else {
            SWITCH_ASK_GAP
        };
        if self
            .asked_at
            .is_some_and(|t| now.saturating_duration_since(t) < gap)
        {
            return None;
        }
        self.asked_at = Some(now);
        Some(wanted)
    }

    /// Whether `frame` goes to the browser, and the timestamp it goes with.
    pub(super) fn admit(&mut self, frame: &Frame, now: Instant) -> Option<u64> {
        if frame.codec.is_audio() {
            return Some(frame.timestamp_us);
        }
        let current = self.current?;
        if frame.encoding != current {
            let hedged = self.hedge && frame.encoding == 0;
            if !frame.keyframe || (frame.encoding != self.target && !hedged) {
                return None;
            }
            if hedged {
                self.target = 0;
                self.hedge = false;
                self.down = Some(Down::Hedged);
            }
            // The switch: this keyframe follows the last frame written by the time between.
            self.offset_us = match self.last_out {
                Some((last, at)) => {
                    let due =
                        last.saturating_add(now.saturating_duration_since(at).as_micros() as u64);
                    due.max(last + 1) as i64 - frame.timestamp_us as i64
                }
                None => 0,
            };
            self.current = Some(frame.encoding);
            self.asked_at = None;
            if frame.encoding == 1 {
                self.dip.moved_up(now);
            }
        }
        let out = (frame.timestamp_us as i64)
            .saturating_add(self.offset_us)
            .max(0) as u64;
        self.last_out = Some((out, now));
        Some(out)
    }

    /// On the higher encoding and staying there (a switch up still waiting for its keyframe
    /// is not there yet: giving it up moves nobody).
    fn on_higher(&self) -> bool {
        self.current == Some(1) && self.target == 1
    }

    /// Why the watcher last decided to leave the higher encoding, once per decision.
    pub(super) fn take_down(&mut self) -> Option<Down> {
        self.down.take()
    }

    /// The encoding written now.
    pub(super) fn current(&self) -> Option<u8> {
        self.current
    }

    /// Whether the browser gets (or is about to get) a lower encoding than its source's top.
    pub(super) fn below_top(&self, source_has_higher: bool) -> bool {
        source_has_higher && (self.current != Some(1) || self.target != 1)
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use media::Codec;

    use super::*;

    fn q(higher: bool) -> Quiet {
        Quiet {
            higher,
            keyframes_due: false,
        }
    }

    fn frame(encoding: u8, keyframe: bool, ts: u64) -> Frame {
        Frame {
            codec: Codec::Vp8,
            keyframe,
            timestamp_us: ts,
            data: Bytes::from_static(b"x"),
            layer: 0,
            layer_sync: false,
            encoding,
        }
    }

    #[test]
    fn a_watcher_moves_up_with_room_down_when_short_or_starved_at_keyframes_on_one_timeline() {
        let t0 = Instant::now();
        let ms = |m: u64| t0 + Duration::from_millis(m);
        let mut c = EncodingChoice::default();
        c.start(0);
        // The higher encoding takes 1 Mbit/s; the leg carries 2. After three seconds of room
        // the higher one's keyframe is asked for, once per two seconds.
        assert_eq!(c.review(2_000_000, Some(1e6), q(false), ms(0)), None);
        assert_eq!(c.review(2_000_000, Some(1e6), q(false), ms(2_000)), None);
        assert_eq!(c.review(2_000_000, Some(1e6), q(false), ms(3_000)), Some(1));
        assert_eq!(c.review(2_000_000, Some(1e6), q(false), ms(4_000)), None);
        assert_eq!(c.review(2_000_000, Some(1e6), q(false), ms(5_000)), Some(1));
        // A switch up given up before its keyframe came moves nobody down.
        let mut pending = c.clone();
        pending.review(2_000_000, None, q(true), ms(5_000));
        assert_eq!(pending.take_down(), None);
        // Until its keyframe the lower one plays; the higher one's deltas are withheld.
        assert_eq!(c.admit(&frame(0, false, 900_000), ms(5_000)), Some(900_000));
        assert_eq!(c.admit(&frame(1, false, 7_000_000), ms(5_010)), None);
        // The keyframe switches, and continues the timeline 40 ms on.
        assert_eq!(
            c.admit(&frame(1, true, 7_040_000), ms(5_040)),
            Some(940_000)
        );
        assert_eq!(
            c.admit(&frame(1, false, 7_080_000), ms(5_080)),
            Some(980_000)
        );
        assert_eq!(c.admit(&frame(0, false, 980_000), ms(5_080)), None);
        assert_eq!(c.current(), Some(1));
        // Starved (the higher encoding no longer arrives): back to the lower at its keyframe.
        assert_eq!(c.review(2_000_000, None, q(true), ms(6_000)), Some(0));
        assert_eq!(c.take_down(), Some(Down::Starved));
        assert_eq!(c.take_down(), None, "each decision is counted once");
        assert!(c.below_top(true));
        // The lower one's keyframe is asked again after half a second (a browser may ignore
        // a request too close to its last keyframe).
        assert_eq!(c.review(2_000_000, None, q(true), ms(6_400)), None);
        assert_eq!(c.review(2_000_000, None, q(true), ms(6_500)), Some(0));
        assert_eq!(c.admit(&frame(0, false, 1_900_000), ms(6_000)), None);
        assert_eq!(
            c.admit(&frame(0, true, 1_940_000), ms(6_040)),
            Some(1_940_000)
        );
        assert_eq!(c.current(), Some(0));
        // A leg 20% short of the higher encoding leaves it at once; one just short, after two
        // seconds.
        let mut c = EncodingChoice::default();
        c.start(1);
        assert_eq!(
            c.review(1_000_000, Some(1e6), q(false), ms(0)),
            None,
            "1.08 Mbit/s needed"
        );
        assert_eq!(c.review(1_000_000, Some(1e6), q(false), ms(1_900)), None);
        assert_eq!(c.review(1_000_000, Some(1e6), q(false), ms(2_000)), Some(0));
        assert_eq!(c.take_down(), Some(Down::Short));
        let mut c = EncodingChoice::default();
        c.start(1);
        assert_eq!(c.review(800_000, Some(1e6), q(false), ms(0)), Some(0));
        // Quiet for a moment (a hedge): the lower's keyframe is asked for and taken if it comes
        // while the higher is still quiet; nothing else of the lower passes meanwhile.
        let mut c = EncodingChoice::default();
        c.start(1);
        assert_eq!(c.review(2_000_000, Some(1e6), q(false), ms(0)), None);
        assert_eq!(c.admit(&frame(1, false, 100), ms(0)), Some(100));
        assert_eq!(c.review(2_000_000, Some(1e6), q(true), ms(300)), Some(0));
        assert_eq!(c.admit(&frame(0, false, 5), ms(310)), None);
        assert_eq!(c.take_down(), None, "a hedge alone is no move");
        assert_eq!(c.admit(&frame(0, true, 9), ms(350)), Some(350_100));
        assert_eq!(c.take_down(), Some(Down::Hedged));
        assert_eq!(c.current(), Some(0));
        assert_eq!(c.review(2_000_000, Some(1e6), q(false), ms(400)), None);
        // Not taken once the higher is back before the keyframe.
        let mut c = EncodingChoice::default();
        c.start(1);
        assert_eq!(c.review(2_000_000, Some(1e6), q(true), ms(0)), Some(0));
        assert_eq!(c.review(2_000_000, Some(1e6), q(false), ms(100)), None);
        assert_eq!(c.admit(&frame(0, true, 9), ms(150)), None);
        assert_eq!(c.current(), Some(1));
        // Quiet just after a keyframe starts no hedge (the higher's big keyframe may be on its
        // way, or its encoder skipping frames after one); a hedge already started holds.
        let spell = Quiet {
            higher: true,
            keyframes_due: true,
        };
        let mut c = EncodingChoice::default();
        c.start(1);
        assert_eq!(c.review(2_000_000, Some(1e6), spell, ms(0)), None);
        assert_eq!(c.admit(&frame(0, true, 9), ms(50)), None);
        assert_eq!(c.current(), Some(1));
        assert_eq!(c.review(2_000_000, Some(1e6), q(true), ms(100)), Some(0));
        assert_eq!(c.review(2_000_000, Some(1e6), spell, ms(150)), None);
        assert_eq!(c.admit(&frame(0, true, 9), ms(200)), Some(9));
        assert_eq!(c.take_down(), Some(Down::Hedged));
        let mut c = EncodingChoice::default();
        c.start(1);
        // Sound passes whatever the choice, with its own timestamps.
        let mut sound = frame(0, true, 123);
        sound.codec = Codec::Opus;
        assert_eq!(c.admit(&sound, ms(0)), Some(123));
        // A source with one encoding: nothing to switch.
        let mut c = EncodingChoice::default();
        c.start(0);
        assert_eq!(c.review(100_000, None, q(true), ms(0)), None);
        assert_eq!(c.admit(&frame(0, false, 5), ms(0)), Some(5));
        assert!(!c.below_top(false));
    }

    /// Just short of the higher encoding soon after the move up to it: the estimator settling,
    /// tolerated six seconds; a leg 20% short still moves down at once.
    #[test]
    fn a_dip_soon_after_the_move_up_is_tolerated_longer() {
        let t0 = Instant::now();
        let ms = |m: u64| t0 + Duration::from_millis(m);
        let mut c = EncodingChoice::default();
        c.start(0);
        assert_eq!(c.review(2_000_000, Some(1e6), q(false), ms(0)), None);
        assert_eq!(c.review(2_000_000, Some(1e6), q(false), ms(3_000)), Some(1));
        assert_eq!(c.admit(&frame(1, true, 100), ms(3_100)), Some(100));
        // 1.08 Mbit/s needed; just short from 4 s on.
        assert_eq!(c.review(1_000_000, Some(1e6), q(false), ms(4_000)), None);
        assert_eq!(c.review(1_000_000, Some(1e6), q(false), ms(9_900)), None);
        assert_eq!(c.take_down(), None, "settling");
        assert_eq!(
            c.review(1_000_000, Some(1e6), q(false), ms(10_000)),
            Some(0)
        );
        assert_eq!(c.take_down(), Some(Down::Short));
        // Up again, and 20% short at once.
        assert!(c.admit(&frame(0, true, 200), ms(10_100)).is_some());
        assert_eq!(c.review(2_000_000, Some(1e6), q(false), ms(10_200)), None);
        assert_eq!(
            c.review(2_000_000, Some(1e6), q(false), ms(13_200)),
            Some(1)
        );
        assert!(c.admit(&frame(1, true, 300), ms(13_300)).is_some());
        assert_eq!(c.current(), Some(1));
        assert_eq!(c.review(800_000, Some(1e6), q(false), ms(13_400)), Some(0));
        assert_eq!(c.take_down(), Some(Down::Short));
    }
}
