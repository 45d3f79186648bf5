//! H.264 access units as Annex B bytes (NAL units after `00 00 01` start codes), as ffmpeg
//! writes them in MPEG-TS and as WebRTC stacks hand them over: whether a unit starts a picture
//! a decoder can begin at, which profile its sequence parameter set declares, and which of the
//! payload types a browser agreed (each with a `profile-level-id`) can carry a stream of that
//! profile (RFC 6184 §8.1).

/// NAL unit types read here.
const NAL_IDR: u8 = 5;
const NAL_SPS: u8 = 7;

/// The NAL units of an Annex B access unit, without their start codes (empty ones skipped).
pub fn nal_units(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = data;
    std::iter::from_fn(move || {
        loop {
            let start = start_code(rest)?;
            let body = &rest[start..];
            let end = next_start(body).unwrap_or(body.len());
            rest = &body[end..];
            // A four-byte start code leaves its leading zero at the end of the previous unit.
            let mut unit = &body[..end];
            while let [head @ .., 0] = unit {
                unit = head;
            }
            if !unit.is_empty() {
                return Some(unit);
            }
        }
    })
}

/// Where the bytes after the first start code in `data` begin.
fn start_code(data: &[u8]) -> Option<usize> {
    data.windows(3).position(|w| w == [0, 0, 1]).map(|i| i + 3)
}

/// Where the next start code (its `00 00 01`) begins in `data`.
fn next_start(data: &[u8]) -> Option<usize> {
    data.windows(3).position(|w| w == [0, 0, 1])
}

/// Whether an access unit holds an IDR picture (a decoder can start there).
pub fn h264_is_keyframe(data: &[u8]) -> bool {
    nal_units(data).any(|nal| nal[0] & 0x1f == NAL_IDR)
}

/// The profile the access unit's sequence parameter set declares, if it carries one.
pub fn h264_profile(data: &[u8]) -> Option<H264Profile> {
    nal_units(data)
        .find(|nal| nal[0] & 0x1f == NAL_SPS)
        .and_then(|sps| Some(H264Profile::from_idc(*sps.get(1)?, *sps.get(2)?)))
}

/// An H.264 profile as WebRTC negotiates them (RFC 6184's `profile-level-id`: the profile's
/// number and its constraint flags; the level is left to the decoder).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum H264Profile {
    /// Baseline without its error-resilience tools (what browsers and `-profile:v baseline`
    /// send).
    ConstrainedBaseline,
    /// Baseline with FMO/ASO allowed.
    Baseline,
    /// Main.
    Main,
    /// High without B-frames (constraint flags 4 and 5).
    ConstrainedHigh,
    /// High (libx264's default).
    High,
    /// High 4:4:4 Predictive: its decoders take every profile above but Baseline (H.264
    /// A.2.7); what Chromium on OpenH264 offers beyond Main.
    High444,
    /// Any other profile, by its `profile_idc`.
    Other(u8),
}

impl H264Profile {
    /// The profile of `profile_idc` with the constraint-flags byte `iop`.
    pub fn from_idc(idc: u8, iop: u8) -> Self {
        let flag = |n: u8| iop & (0x80 >> n) != 0;
        match idc {
            0x42 if flag(1) => Self::ConstrainedBaseline,
            0x42 => Self::Baseline,
            0x4d if flag(0) => Self::ConstrainedBaseline,
            0x4d => Self::Main,
            0x58 if flag(0) && flag(1) => Self::ConstrainedBaseline,
            0x58 if flag(0) => Self::Baseline,
            0x64 if flag(4) && flag(5) => Self::ConstrainedHigh,
            0x64 => Self::High,
            0xf4 => Self::High444,
            other => Self::Other(other),
        }
    }

    /// The profile of an SDP `profile-level-id` (three bytes: idc, constraints, level).
    pub fn from_profile_level_id(id: u32) -> Self {
        Self::from_idc((id >> 16) as u8, (id >> 8) as u8)
    }

    /// Whether a decoder agreed for `self` decodes a stream of `stream`'s profile (each
    /// profile's tools are a superset of those before it: constrained baseline, main, high).
    pub fn decodes(self, stream: Self) -> bool {
        self == stream
            || matches!(
                (self, stream),
                (
                    Self::Baseline | Self::Main | Self::ConstrainedHigh | Self::High,
                    Self::ConstrainedBaseline
                ) | (Self::ConstrainedHigh | Self::High, Self::Main)
                    | (Self::High, Self::ConstrainedHigh)
                    | (
                        Self::High444,
                        Self::ConstrainedBaseline | Self::Main | Self::ConstrainedHigh | Self::High
                    )
            )
    }
}

/// Of the H.264 payload types a browser agreed (each with its `profile-level-id` and
/// `packetization-mode`, if given), the one to send a stream of profile `stream` in: one of
/// exactly that profile, else the least one whose decoder takes it, else (nothing fits, or the
/// stream's profile is not known yet) the most capable; those allowing fragmented NAL units
/// (packetization mode 1) before the rest, and the first of equals. `None` only if there is
/// none.
pub fn best_h264_payload<T: Copy>(
    stream: Option<H264Profile>,
    agreed: &[(T, Option<u32>, Option<u8>)],
) -> Option<T> {
    let score = |&(_, id, mode): &(T, Option<u32>, Option<u8>)| {
        let fragments = mode == Some(1);
        let profile = id.map(H264Profile::from_profile_level_id);
        let rank = profile.map_or(0, H264Profile::rank);
        match (stream, profile) {
            (Some(s), Some(p)) if p == s => (fragments, 2, 0),
            (Some(s), Some(p)) if p.decodes(s) => (fragments, 1, -rank),
            _ => (fragments, 0, rank),
        }
    };
    // The first of the best: `max_by_key` keeps the last of equals, so go in reverse.
    agreed.iter().rev().max_by_key(|a| score(a)).map(|a| a.0)
}

impl H264Profile {
    /// How much a decoder of this profile takes (more is more; unknown profiles least).
    fn rank(self) -> i32 {
        match self {
            Self::Other(_) => 0,
            Self::ConstrainedBaseline => 1,
            Self::Baseline => 2,
            Self::Main => 3,
            Self::ConstrainedHigh => 4,
            Self::High => 5,
            Self::High444 => 6,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An SPS NAL of `idc`/`iop` at level 3.1, then an IDR slice, with a four-byte start code
    /// first as ffmpeg writes.
    fn idr_unit(idc: u8, iop: u8) -> Vec<u8> {
        let mut unit = vec![0, 0, 0, 1, 0x09, 0xf0];
        unit.extend([0, 0, 0, 1, 0x67, idc, iop, 0x1f, 0xac, 0xd9]);
        unit.extend([0, 0, 1, 0x68, 0xeb, 0xe3]);
        unit.extend([0, 0, 1, 0x65, 0x88, 0x84, 0x00]);
        unit
    }

    #[test]
    fn nal_units_are_split_at_both_kinds_of_start_code() {
        let unit = idr_unit(0x64, 0);
        let types: Vec<u8> = nal_units(&unit).map(|n| n[0] & 0x1f).collect();
        assert_eq!(types, vec![9, 7, 8, 5]);
        // Zero bytes after a unit are not its own (a four-byte start code's first, or the
        // stream's trailing_zero_8bits, H.264 B.1).
        assert_eq!(nal_units(&unit).last(), Some(&[0x65, 0x88, 0x84][..]));
        assert_eq!(nal_units(&[]).count(), 0);
        assert_eq!(nal_units(&[0, 0, 1]).count(), 0);
        assert_eq!(nal_units(&[1, 2, 3]).count(), 0, "no start code");
    }

    #[test]
    fn keyframes_and_profiles_are_read_from_the_units() {
        let idr = idr_unit(0x64, 0);
        assert!(h264_is_keyframe(&idr));
        assert_eq!(h264_profile(&idr), Some(H264Profile::High));
        assert_eq!(
            h264_profile(&idr_unit(0x42, 0xc0)),
            Some(H264Profile::ConstrainedBaseline)
        );
        let delta = [0, 0, 0, 1, 0x09, 0xf0, 0, 0, 1, 0x41, 0x9a, 0x02];
        assert!(!h264_is_keyframe(&delta));
        assert_eq!(h264_profile(&delta), None);
        assert_eq!(h264_profile(&[0, 0, 1, 0x67]), None, "an SPS cut short");
    }

    #[test]
    fn profile_level_ids_name_the_profiles_browsers_offer() {
        use H264Profile as P;
        for (id, profile) in [
            (0x42001f, P::Baseline),
            (0x42e01f, P::ConstrainedBaseline),
            (0x4d001f, P::Main),
            (0x64001f, P::High),
            (0x640c1f, P::ConstrainedHigh),
            (0xf4001f, P::High444),
            (0x6e001f, P::Other(0x6e)),
        ] {
            assert_eq!(P::from_profile_level_id(id), profile, "{id:06x}");
        }
        assert!(P::High.decodes(P::Main) && P::High.decodes(P::ConstrainedBaseline));
        assert!(!P::Main.decodes(P::High) && !P::ConstrainedBaseline.decodes(P::Baseline));
        assert!(P::High444.decodes(P::High) && !P::High444.decodes(P::Baseline));
        assert!(P::Other(0x6e).decodes(P::Other(0x6e)) && !P::High.decodes(P::Other(0x6e)));
    }

    #[test]
    fn the_payload_type_of_the_streams_profile_is_chosen_fragmenting_first() {
        use H264Profile as P;
        // What str0m agrees with Chromium: baseline, constrained baseline, main and high, some
        // in packetization mode 0.
        let agreed = [
            (127, Some(0x42001f), Some(1)),
            (125, Some(0x42001f), Some(0)),
            (108, Some(0x42e01f), Some(1)),
            (123, Some(0x4d001f), Some(1)),
            (114, Some(0x64001f), Some(1)),
            (115, Some(0x64001f), Some(0)),
        ];
        assert_eq!(best_h264_payload(Some(P::High), &agreed), Some(114));
        assert_eq!(best_h264_payload(Some(P::Main), &agreed), Some(123));
        assert_eq!(
            best_h264_payload(Some(P::ConstrainedBaseline), &agreed),
            Some(108)
        );
        assert_eq!(
            best_h264_payload(Some(P::ConstrainedHigh), &agreed),
            Some(114)
        );
        // Nothing known of the stream, or nothing that fits: the most capable fragmenting one.
        assert_eq!(best_h264_payload(None, &agreed), Some(114));
        assert_eq!(best_h264_payload(Some(P::Other(0x6e)), &agreed), Some(114));
        // What Chromium on OpenH264 agrees: no High, but High 4:4:4 Predictive, which takes
        // High; without it, Main is the nearest.
        let chromium = [
            (103, Some(0x42001f), Some(1)),
            (109, Some(0x42e01f), Some(1)),
            (117, Some(0x4d001f), Some(1)),
            (41, Some(0xf4001f), Some(1)),
        ];
        assert_eq!(best_h264_payload(Some(P::High), &chromium), Some(41));
        assert_eq!(best_h264_payload(Some(P::Main), &chromium), Some(117));
        assert_eq!(best_h264_payload(Some(P::High), &chromium[..3]), Some(117));
        assert_eq!(best_h264_payload::<u8>(Some(P::High), &[]), None);
        // Only one agreed, its packetization mode not given (so 0): still the one sent.
        assert_eq!(
            best_h264_payload(Some(P::High), &[(96, Some(0x42e01f), None)]),
            Some(96)
        );
    }
}
