//! One WebRTC session with a browser or a WHIP/WHEP client: str0m's `Rtc` and what it is for
//! (publishing its camera and microphone, or watching one source).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use media::{Codec, Frame};
use str0m::bwe::{Bitrate, BweKind};
use str0m::change::SdpOffer;
use str0m::media::{Direction, KeyframeRequestKind, MediaKind, MediaTime, Mid, Pt, Rids};
use str0m::{Candidate, Event, Rtc};

use super::encoding_choice::EncodingChoice;
use super::layer_choice::LayerChoice;
use super::rid_ladder::RidLadder;
use super::{EdgeError, SourceKey};

/// What a session is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// It sends its camera and microphone (WHIP), as this member's publisher `n`.
    Publish(u16),
    /// It receives one source (WHEP).
    Watch(SourceKey),
}

/// A watcher's leg is taken to carry this much until its feedback says otherwise.
const INITIAL_ESTIMATE_KBPS: u64 = 1_500;

/// Keyframe requests to one publisher at most this often (merged), as browsers' own receivers
/// do.
const KEYFRAME_REQUEST_GAP: Duration = Duration::from_secs(1);
/// The same for the small picture of a publisher that sends two (simulcast): its keyframes
/// are a few kilobytes, and a watcher leaving the large picture waits for one.
const SMALL_KEYFRAME_REQUEST_GAP: Duration = Duration::from_millis(250);

/// One session.
pub(super) struct Session {
    pub(super) rtc: Rtc,
    pub(super) role: Role,
    /// Its media lines: what this side receives (publish) or sends (watch), by kind.
    mids: BTreeMap<MediaKindKey, Mid>,
    /// ICE and DTLS are up: media may be written.
    pub(super) connected: bool,
    /// A watcher was given its source's keyframe group.
    started: bool,
    /// When a keyframe of each encoding was last asked of a publisher.
    last_keyframe_request: [Option<Instant>; media::MAX_ENCODINGS as usize],
    /// Keyframes asked for within the gap after the last request: sent once it has passed
    /// (merged, not dropped: a watcher switching encodings waits for this one).
    keyframe_pending: [bool; media::MAX_ENCODINGS as usize],
    /// Which layers of its source a watcher gets, from its leg's bandwidth estimate.
    pub(super) layers: LayerChoice,
    /// Which simulcast encoding of its source a watcher gets.
    pub(super) encodings: EncodingChoice,
    /// A publisher's simulcast encodings, ranked by picture size.
    rids: RidLadder,
    /// The H.264 payload type chosen for the source's profile (at its last sequence parameter
    /// set), so its delta frames follow in the same one.
    h264_pt: Option<Pt>,
}

/// `MediaKind` as an ordered key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum MediaKindKey {
    Audio,
    Video,
}

impl From<MediaKind> for MediaKindKey {
    fn from(k: MediaKind) -> Self {
        match k {
            MediaKind::Audio => Self::Audio,
            MediaKind::Video => Self::Video,
        }
    }
}

/// What a session's event means to the edge.
pub(super) enum Happened {
    /// Nothing the edge acts on.
    Nothing,
    /// ICE and DTLS came up.
    Connected,
    /// A frame from a publishing session.
    Frame(Frame),
    /// A watching session's browser asks for a keyframe.
    KeyframeWanted,
    /// A watching session's leg is estimated to carry this many bits per second.
    Estimate(u64),
    /// The session ended.
    Ended,
}

impl Session {
    /// A session answering `offer`, reachable at `candidates`; its SDP answer.
    pub(super) fn answer(
        offer: &str,
        role: Role,
        candidates: &[std::net::SocketAddr],
        now: Instant,
    ) -> Result<(Self, String), EdgeError> {
        let offer = SdpOffer::from_sdp_string(offer)
            .map_err(|e| EdgeError::Offer(format!("not an SDP offer: {e}")))?;
        let mut config = Rtc::builder()
            .set_ice_lite(true)
            .clear_codecs()
            .enable_opus(true, false)
            .enable_vp8(true)
            .enable_h264(true);
        if matches!(role, Role::Watch(_)) {
            // What the leg to a watcher carries, from the browser's transport-wide feedback:
            // its layers are chosen by it (starting above any one browser's stream).
            config = config.enable_bwe(Some(Bitrate::kbps(INITIAL_ESTIMATE_KBPS)));
        }
        // str0m's H.264 set stops at High; Chromium built on OpenH264 offers to decode High
        // 4:4:4 Predictive (a superset of High) but not High itself, and libx264 writes High.
        config
            .codec_config()
            .add_h264(37.into(), Some(38.into()), true, 0xf4001f);
        let mut rtc = config.build(now);
        for &addr in candidates {
            let candidate = Candidate::host(addr, "udp")
                .map_err(|e| EdgeError::Offer(format!("candidate {addr}: {e}")))?;
            rtc.add_local_candidate(candidate);
        }
        let answer = rtc
            .sdp_api()
            .accept_offer(offer)
            .map_err(|e| EdgeError::Offer(format!("offer refused: {e}")))?;
        let session = Self {
            rtc,
            role,
            mids: BTreeMap::new(),
            connected: false,
            started: false,
            last_keyframe_request: [None; media::MAX_ENCODINGS as usize],
            keyframe_pending: [false; media::MAX_ENCODINGS as usize],
            layers: LayerChoice::default(),
            encodings: EncodingChoice::default(),
            rids: RidLadder::default(),
            h264_pt: None,
        };
        Ok((session, answer.to_sdp_string()))
    }

    /// What `event` means.
    pub(super) fn on_event(&mut self, event: Event, now: Instant) -> Happened {
        match event {
            Event::Connected => {
                self.connected = true;
                Happened::Connected
            }
            Event::IceConnectionStateChange(str0m::IceConnectionState::Disconnected)
            | Event::Closed => Happened::Ended,
            Event::MediaAdded(added) => {
                let wanted = match self.role {
                    Role::Publish(_) => Direction::RecvOnly,
                    Role::Watch(_) => Direction::SendOnly,
                };
                if added.direction == wanted || added.direction == Direction::SendRecv {
                    self.mids.insert(added.kind.into(), added.mid);
                }
                Happened::Nothing
            }
            Event::MediaData(data) => {
                if !matches!(self.role, Role::Publish(_)) {
                    return Happened::Nothing;
                }
                let Some(codec) = codec_of(data.params.spec().codec) else {
                    return Happened::Nothing;
                };
                // A browser sending simulcast marks each frame with its encoding's rid.
                let encoding = match data.rid {
                    None => 0,
                    Some(rid) => {
                        let size = (codec == Codec::Vp8)
                            .then(|| media::vp8_size(&data.data))
                            .flatten();
                        let place = self.rtc.media(data.mid).and_then(|m| match m.rids_rx() {
                            Rids::Specific(rids) => rids.iter().position(|r| *r == rid),
                            _ => None,
                        });
                        match self.rids.encoding_of(rid, size, place) {
                            Some(e) => e,
                            None => return Happened::Nothing,
                        }
                    }
                };
                if !data.contiguous {
                    self.request_keyframe(Some(encoding), now);
                }
                // A browser sending VP8 with temporal layers (`L1T2`) marks each frame's.
                let (layer, layer_sync) = match &data.codec_extra {
                    str0m::format::CodecExtra::Vp8(vp8) => (vp8.layer_index, vp8.sync),
                    _ => (0, false),
                };
                Happened::Frame(Frame {
                    codec,
                    keyframe: codec.is_audio() || data.is_keyframe(),
                    timestamp_us: data.time.as_micros(),
                    data: bytes::Bytes::copy_from_slice(&data.data),
                    layer,
                    layer_sync,
                    encoding: if codec.is_audio() { 0 } else { encoding },
                })
            }
            Event::KeyframeRequest(_) => Happened::KeyframeWanted,
            Event::EgressBitrateEstimate(
                BweKind::Twcc { estimate, .. } | BweKind::Remb { estimate, .. },
            ) => Happened::Estimate(estimate.as_u64()),
            _ => Happened::Nothing,
        }
    }

    /// Whether a watcher can now be given its start (connected, its video line known), once.
    pub(super) fn take_start(&mut self) -> bool {
        let ready = matches!(self.role, Role::Watch(_))
            && self.connected
            && self.mids.contains_key(&MediaKindKey::Video)
            && !self.started;
        self.started |= ready;
        ready
    }

    /// Sends the keyframe requests that waited for their gap to pass.
    pub(super) fn flush_keyframe_requests(&mut self, now: Instant) {
        for e in 0..media::MAX_ENCODINGS {
            if self.keyframe_pending[usize::from(e)] {
                self.request_keyframe(Some(e), now);
            }
        }
    }

    /// Asks a publishing browser for a keyframe of one simulcast encoding, or of every one
    /// (`None`); of each at most one a second (one asked sooner is sent when the second is
    /// up).
    pub(super) fn request_keyframe(&mut self, encoding: Option<u8>, now: Instant) {
        let Some(&mid) = self.mids.get(&MediaKindKey::Video) else {
            return;
        };
        let encodings = match encoding {
            Some(e) => e.min(media::MAX_ENCODINGS - 1)..=e.min(media::MAX_ENCODINGS - 1),
            None => 0..=media::MAX_ENCODINGS - 1,
        };
        for e in encodings {
            let gap = if e == 0 && self.rids.is_simulcast() {
                SMALL_KEYFRAME_REQUEST_GAP
            } else {
                KEYFRAME_REQUEST_GAP
            };
            let last = &mut self.last_keyframe_request[usize::from(e)];
            if last.is_some_and(|t| now.saturating_duration_since(t) < gap) {
                self.keyframe_pending[usize::from(e)] = true;
                continue;
            }
            self.keyframe_pending[usize::from(e)] = false;
            // A publisher without simulcast has no rids: its one stream is encoding 0.
            let rid = self.rids.rid_of(e);
            if rid.is_none() && e > 0 {
                continue;
            }
            if let Some(mut writer) = self.rtc.writer(mid)
                && writer.is_request_keyframe_possible(KeyframeRequestKind::Pli)
                && writer
                    .request_keyframe(rid, KeyframeRequestKind::Pli)
                    .is_ok()
            {
                *last = Some(now);
            }
        }
    }

    /// Sends `frame` to a watching browser with media timestamp `timestamp_us`, in the payload
    /// type it agreed for the codec; whether it was written.
    pub(super) fn write(&mut self, frame: &Frame, timestamp_us: u64, now: Instant) -> bool {
        let kind = if frame.codec.is_audio() {
            MediaKindKey::Audio
        } else {
            MediaKindKey::Video
        };
        let Some(&mid) = self.mids.get(&kind) else {
            return false;
        };
        let Some(writer) = self.rtc.writer(mid) else {
            return false;
        };
        let pt = if frame.codec == Codec::H264 {
            // Of the H.264 payload types agreed, one whose decoder takes the stream's profile
            // (a High-profile stream in a payload type agreed as constrained baseline is one
            // a browser may refuse).
            let profile = media::h264_profile(&frame.data);
            if profile.is_some() || self.h264_pt.is_none() {
                let agreed: Vec<(Pt, Option<u32>, Option<u8>)> = writer
                    .payload_params()
                    .filter(|p| p.spec().codec == str0m::format::Codec::H264)
                    .map(|p| {
                        let format = p.spec().format;
                        (p.pt(), format.profile_level_id, format.packetization_mode)
                    })
                    .collect();
                self.h264_pt = media::best_h264_payload(profile, &agreed).or(self.h264_pt);
            }
            self.h264_pt
        } else {
            writer
                .payload_params()
                .find(|p| codec_of(p.spec().codec) == Some(frame.codec))
                .map(|p| p.pt())
        };
        let Some(pt) = pt else {
            return false;
        };
        let data: Arc<[u8]> = Arc::from(&frame.data[..]);
        writer
            .write(pt, now, MediaTime::from_micros(timestamp_us), data)
            .is_ok()
    }
}

/// Our codec for str0m's, where we carry it.
fn codec_of(codec: str0m::format::Codec) -> Option<Codec> {
    use str0m::format::Codec as C;
    Some(match codec {
        C::Opus => Codec::Opus,
        C::Vp8 => Codec::Vp8,
        C::Vp9 => Codec::Vp9,
        C::H264 => Codec::H264,
        C::Av1 => Codec::Av1,
        _ => return None,
    })
}
