//! Whole frames of a real codec (what a browser or an encoder hands over) carried as media
//! packets down the trees, and put back together at each receiving member.
//!
//! [`FrameSlicer`] cuts a [`Frame`] into packets of at most an MTU, each marked with the drop
//! priority of its kind: audio and keyframes are kept longest, delta frames of the base
//! temporal layer next, higher temporal layers (a browser's VP8 `L1T2`: every other frame) as
//! enhancement, shed first by a congested link. The first packet of a frame starts with a
//! six-byte header (codec, flags and layer, the frame's number in its layer, the number of the
//! base-layer frame it builds on) so a receiver knows how to hand the frame on, and which
//! frames it needs, without any other announcement.
//!
//! [`FrameAssembler`] takes packets of one source in any order and gives back whole frames,
//! oldest first: a frame missing a packet when a later one completes is dropped (never waited
//! for: live media skips what is late). After a base-layer frame is lost nothing but a keyframe
//! goes out until one arrives, since a decoder cannot use delta frames that follow a hole;
//! after a higher layer's frame is lost only that layer (and those above) waits, until a frame
//! of it that builds on the base layer alone (VP8's layer sync), and the base plays on at its
//! lower frame rate.
//!
//! Like the rest of the crate it reads no clock and never panics on what the network sends.

use std::collections::BTreeMap;

use bytes::{BufMut, Bytes, BytesMut};

use crate::{MediaPacket, Priority};

/// The codecs a frame may be in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Codec {
    /// Opus audio, 48 kHz RTP clock.
    Opus,
    /// VP8 video, 90 kHz.
    Vp8,
    /// VP9 video, 90 kHz.
    Vp9,
    /// H.264 video, 90 kHz.
    H264,
    /// AV1 video, 90 kHz.
    Av1,
}

impl Codec {
    /// Its code in a frame header.
    fn code(self) -> u8 {
        match self {
            Self::Opus => 1,
            Self::Vp8 => 2,
            Self::Vp9 => 3,
            Self::H264 => 4,
            Self::Av1 => 5,
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            1 => Self::Opus,
            2 => Self::Vp8,
            3 => Self::Vp9,
            4 => Self::H264,
            5 => Self::Av1,
            _ => return None,
        })
    }

    /// Whether it is an audio codec.
    pub fn is_audio(self) -> bool {
        matches!(self, Self::Opus)
    }

    /// Its RTP clock rate, Hz.
    pub fn clock_rate(self) -> u32 {
        if self.is_audio() { 48_000 } else { 90_000 }
    }
}

/// Publishers one member may carry (a browser, an encoder): each has a video stream
/// (`2 × publisher`) and an audio stream (`2 × publisher + 1`).
pub const MAX_PUBLISHERS: u16 = 16;

/// The stream of `publisher`'s audio or video frames (its video's only or lowest simulcast
/// encoding).
pub fn track_stream(publisher: u16, audio: bool) -> u32 {
    u32::from(publisher) * 2 + u32::from(audio)
}

/// Simulcast encodings of one publisher's video a member carries: 0, its only or lowest
/// encoding, and 1, a higher one (a browser sending two resolutions).
pub const MAX_ENCODINGS: u8 = 2;

/// The stream of `publisher`'s video frames in simulcast encoding `encoding` (0 is
/// [`track_stream`]'s video; 1 lies past every publisher's two streams; higher numbers count
/// as the top one).
pub fn encoding_stream(publisher: u16, encoding: u8) -> u32 {
    if encoding == 0 {
        track_stream(publisher, false)
    } else {
        u32::from(MAX_PUBLISHERS) * 2 + u32::from(publisher)
    }
}

/// The publisher whose frames travel in `stream`, if it is one of a publisher's.
pub fn stream_publisher(stream: u32) -> Option<u16> {
    stream_place(stream).map(|(publisher, _)| publisher)
}

/// The publisher and the video encoding of `stream` (the encoding is 0 for audio), if it is
/// one of a publisher's.
pub fn stream_place(stream: u32) -> Option<(u16, u8)> {
    let publishers = u32::from(MAX_PUBLISHERS);
    if stream < publishers * 2 {
        Some(((stream / 2) as u16, 0))
    } else if stream < publishers * 3 {
        Some(((stream - publishers * 2) as u16, 1))
    } else {
        None
    }
}

fn is_video_stream(stream: u32) -> bool {
    stream.is_multiple_of(2) || stream >= u32::from(MAX_PUBLISHERS) * 2
}

/// Bytes of header at the start of a frame's first packet: codec, flags, the frame's number in
/// its layer (16 bits, wrapping), the number of the base-layer frame it builds on.
const HEADER: usize = 6;
/// Flag bit: the frame is a keyframe.
const KEYFRAME: u8 = 1;
/// Flag bit: the frame builds on the base layer only.
const LAYER_SYNC: u8 = 2;
/// Where the layer sits in the flags (two bits).
const LAYER_SHIFT: u8 = 2;

/// One whole frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// Its codec.
    pub codec: Codec,
    /// Whether a decoder can start at it (always true of audio).
    pub keyframe: bool,
    /// Capture time, microseconds of the source's media clock.
    pub timestamp_us: u64,
    /// The codec's bytes (depacketised: what a decoder takes).
    pub data: Bytes,
    /// Its temporal layer: 0 the base, which decodes alone; frames of higher layers may be
    /// dropped (at most [`MAX_LAYERS`] layers; higher numbers count as the top one).
    pub layer: u8,
    /// A frame of a higher layer that builds on the base layer only (VP8's layer sync bit):
    /// after its layer lost a frame, the layer decodes again from here.
    pub layer_sync: bool,
    /// Its simulcast encoding (video): 0 the only or the lowest, which every member carries
    /// first; 1 a higher one, shed before any frame of encoding 0 (see [`MAX_ENCODINGS`]).
    pub encoding: u8,
}

/// Temporal layers a frame may be in (VP8 has at most four).
pub const MAX_LAYERS: u8 = 4;

impl Frame {
    /// The drop priority of its packets: audio and keyframes kept longest, then the base
    /// layer, then each higher layer. A higher simulcast encoding comes after the lowest's
    /// base and first upper layer (a browser's `L1T2`): its keyframes and base layer as the
    /// second enhancement layer, each of its upper layers one further (a congested link sheds
    /// the large picture, keyframes included, before the small one stutters).
    pub fn priority(&self) -> Priority {
        if self.encoding > 0 && !self.codec.is_audio() {
            let layer = if self.keyframe { 0 } else { self.layer };
            Priority::Enhancement(2 + layer.min(MAX_LAYERS - 1))
        } else if self.keyframe || self.codec.is_audio() {
            Priority::Keyframe
        } else if self.layer == 0 {
            Priority::Base
        } else {
            Priority::Enhancement(self.layer.min(MAX_LAYERS - 1))
        }
    }
}

/// Where a stream's numbering stands at the slicer.
#[derive(Clone, Copy, Debug, Default)]
struct Numbering {
    /// The next packet.
    seq: u64,
    /// The next frame.
    frame: u64,
    /// The next frame of each layer.
    layer: [u16; MAX_LAYERS as usize],
}

/// Cuts frames of one source into packets.
#[derive(Clone, Debug)]
pub struct FrameSlicer {
    mtu: usize,
    /// Numbering, per stream.
    next: BTreeMap<u32, Numbering>,
}

impl FrameSlicer {
    /// A slicer whose packets carry at most `mtu` payload bytes (at least 64).
    pub fn new(mtu: usize) -> Self {
        Self {
            mtu: mtu.clamp(64, crate::MAX_PAYLOAD),
            next: BTreeMap::new(),
        }
    }

    /// The packets of `publisher`'s `frame`, in order. A frame too large for 65535 packets is
    /// cut short there (far beyond any real frame: 70 MB at a 1100-byte MTU).
    pub fn slice(&mut self, publisher: u16, frame: &Frame) -> Vec<MediaPacket> {
        let stream = if frame.codec.is_audio() {
            track_stream(publisher, true)
        } else {
            encoding_stream(publisher, frame.encoding.min(MAX_ENCODINGS - 1))
        };
        let next = self.next.entry(stream).or_default();
        // A keyframe starts the base layer afresh, whatever its encoder called it.
        let layer = if frame.keyframe {
            0
        } else {
            frame.layer.min(MAX_LAYERS - 1)
        };
        let in_layer = next.layer[usize::from(layer)];
        next.layer[usize::from(layer)] = in_layer.wrapping_add(1);
        // The base frame it builds on: itself, or the latest of the base layer.
        let base = next.layer[0].wrapping_sub(1);
        let mut flags = layer << LAYER_SHIFT;
        if frame.keyframe {
            flags |= KEYFRAME;
        }
        if frame.layer_sync {
            flags |= LAYER_SYNC;
        }
        let mut whole = BytesMut::with_capacity(HEADER + frame.data.len());
        whole.put_u8(frame.codec.code());
        whole.put_u8(flags);
        whole.put_u16(in_layer);
        whole.put_u16(base);
        whole.put_slice(&frame.data);
        let whole = whole.freeze();
        let chunks = whole
            .len()
            .div_ceil(self.mtu)
            .clamp(1, usize::from(u16::MAX));
        let fragments = chunks as u16;
        let packets = (0..chunks)
            .map(|i| {
                let from = i * self.mtu;
                let to = (from + self.mtu).min(whole.len());
                let packet = MediaPacket {
                    stream,
                    seq: next.seq,
                    frame: next.frame,
                    timestamp_us: frame.timestamp_us,
                    priority: frame.priority(),
                    fragment: i as u16,
                    fragments,
                    payload: whole.slice(from..to),
                };
                next.seq += 1;
                packet
            })
            .collect();
        next.frame += 1;
        packets
    }
}

/// Frames of one stream still missing packets, at most this many (older ones are given up).
const PENDING_FRAMES: usize = 16;
/// Bytes of one stream's pending frames at most; past it the oldest are given up.
const PENDING_BYTES: usize = 4 << 20;

/// What [`FrameAssembler::push`] made of a packet.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Assembled {
    /// The publisher whose stream the packet was in.
    pub publisher: u16,
    /// The video encoding of that stream (0 for audio).
    pub encoding: u8,
    /// Frames now whole and playable, oldest first.
    pub frames: Vec<Frame>,
    /// Whether the publisher's video in that encoding lost a frame (or has not started), so a
    /// keyframe is needed before it plays again.
    pub keyframe_needed: bool,
    /// While it waits for a keyframe: how many frames in a row have since come whole (a link
    /// that had been shedding it carries it again).
    pub whole_while_waiting: u16,
}

/// Counts of what an assembler dropped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AssemblyCounts {
    /// Frames handed on whole.
    pub frames: u64,
    /// Frames never completed (a packet lost or too late).
    pub incomplete: u64,
    /// Whole frames held back because the video waited for a keyframe.
    pub awaiting_keyframe: u64,
    /// Whole frames of a higher layer held back because that layer lost a frame and waited
    /// for one that builds on the base layer alone.
    pub awaiting_layer_sync: u64,
    /// Packets that were not a frame's (bad header, inconsistent counts, or stale).
    pub rejected: u64,
}

#[derive(Clone, Debug, Default)]
struct Partial {
    parts: Vec<Option<Bytes>>,
    have: usize,
    bytes: usize,
    timestamp_us: u64,
}

#[derive(Clone, Debug, Default)]
struct StreamAssembly {
    pending: BTreeMap<u64, Partial>,
    /// The last frame handed on or given up.
    done: Option<u64>,
    /// Video lost a frame of its base layer: only a keyframe goes out next.
    broken: bool,
    /// The number of the last frame of each layer that came whole.
    last_in_layer: [Option<u16>; MAX_LAYERS as usize],
    /// Layers (above the base) that lost a frame and wait for a layer sync.
    layer_broken: [bool; MAX_LAYERS as usize],
    /// The last base-layer frame handed on.
    base_played: Option<u16>,
    /// Frames in a row that came whole while it waited for a keyframe.
    whole_run: u16,
}

/// What a whole video frame's header says of where it sits.
#[derive(Clone, Copy, Debug)]
struct Place {
    layer: u8,
    sync: bool,
    in_layer: u16,
    base: u16,
}

impl StreamAssembly {
    /// Whether the whole video `frame` at `place` can be decoded now; `None` when it waits
    /// for a keyframe, `Some(false)` when its layer waits for a layer sync.
    fn decodable(&mut self, keyframe: bool, place: Place) -> Option<bool> {
        let at = usize::from(place.layer);
        let gap = self.last_in_layer[at].is_some_and(|p| p.wrapping_add(1) != place.in_layer);
        self.last_in_layer[at] = Some(place.in_layer);
        if keyframe {
            self.broken = false;
            self.whole_run = 0;
            self.layer_broken = [false; MAX_LAYERS as usize];
            self.base_played = Some(place.base);
            return Some(true);
        }
        if place.layer == 0 {
            self.broken |= gap;
            if self.broken {
                return None;
            }
            self.base_played = Some(place.in_layer);
            return Some(true);
        }
        // A higher layer's frame whose base frame never played: the base lost it.
        if self.base_played != Some(place.base) {
            self.broken = true;
        }
        if self.broken {
            return None;
        }
        self.layer_broken[at] = (self.layer_broken[at] || gap) && !place.sync;
        Some(!self.layer_broken[1..=at].iter().any(|&b| b))
    }
}

/// Puts one source's packets back into whole frames.
#[derive(Clone, Debug, Default)]
pub struct FrameAssembler {
    streams: BTreeMap<u32, StreamAssembly>,
    counts: AssemblyCounts,
}

impl FrameAssembler {
    /// An empty assembler.
    pub fn new() -> Self {
        Self::default()
    }

    /// What it has done so far.
    pub fn counts(&self) -> AssemblyCounts {
        self.counts
    }

    /// Takes one packet; the frames it completed (and any older frames given up).
    pub fn push(&mut self, packet: MediaPacket) -> Assembled {
        let mut out = Assembled::default();
        let Some((publisher, encoding)) = stream_place(packet.stream) else {
            self.counts.rejected += 1;
            return out;
        };
        out.publisher = publisher;
        out.encoding = encoding;
        let video = is_video_stream(packet.stream);
        let counts = &mut self.counts;
        // Video starts broken: a decoder needs a keyframe first.
        let s = self
            .streams
            .entry(packet.stream)
            .or_insert_with(|| StreamAssembly {
                broken: video,
                ..StreamAssembly::default()
            });
        if s.done.is_some_and(|d| packet.frame <= d)
            || packet.fragment >= packet.fragments
            || packet.fragments == 0
        {
            counts.rejected += 1;
            return out;
        }
        // The slots a sender's fragment count asks for are memory too: counted with the
        // payload against PENDING_BYTES (65 535 of them are 2 MiB).
        let partial = s.pending.entry(packet.frame).or_insert_with(|| Partial {
            parts: vec![None; usize::from(packet.fragments)],
            timestamp_us: packet.timestamp_us,
            bytes: usize::from(packet.fragments) * size_of::<Option<Bytes>>(),
            ..Partial::default()
        });
        let at = usize::from(packet.fragment);
        if partial.parts.len() != usize::from(packet.fragments) || partial.parts[at].is_some() {
            counts.rejected += 1;
            return out;
        }
        partial.bytes += packet.payload.len();
        partial.have += 1;
        partial.parts[at] = Some(packet.payload);
        // Bound what waits: the oldest pending frames go first.
        while s.pending.len() > PENDING_FRAMES
            || s.pending.values().map(|p| p.bytes).sum::<usize>() > PENDING_BYTES
        {
            let Some((&oldest, _)) = s.pending.first_key_value() else {
                break;
            };
            s.pending.remove(&oldest);
            counts.incomplete += 1;
            s.done = Some(s.done.map_or(oldest, |d| d.max(oldest)));
        }
        // Hand on every frame now whole, oldest first; older frames still missing packets
        // are given up when a newer one completes.
        while let Some((&number, _)) = s.pending.iter().find(|(_, p)| p.have == p.parts.len()) {
            let older: Vec<u64> = s.pending.range(..number).map(|(&n, _)| n).collect();
            // Every frame between the last one done and this one is lost (pending or never
            // seen); before the first, only those pending count.
            let lost = match s.done {
                Some(d) => number.saturating_sub(d + 1),
                None => older.len() as u64,
            };
            for n in older {
                s.pending.remove(&n);
            }
            // Which layer lost them shows in the layers' numbers of the frames that follow.
            counts.incomplete += lost;
            if lost > 0 {
                s.whole_run = 0;
            }
            s.done = Some(number);
            let Some(whole) = s.pending.remove(&number) else {
                break;
            };
            let Some((mut frame, place)) = whole_frame(whole) else {
                counts.rejected += 1;
                continue;
            };
            frame.encoding = encoding;
            if frame.codec.is_audio() == video {
                counts.rejected += 1;
                continue;
            }
            if frame.codec.is_audio() {
                counts.frames += 1;
                out.frames.push(frame);
                continue;
            }
            match s.decodable(frame.keyframe, place) {
                None => {
                    counts.awaiting_keyframe += 1;
                    out.keyframe_needed = true;
                    s.whole_run = s.whole_run.saturating_add(1);
                    out.whole_while_waiting = s.whole_run;
                }
                Some(false) => counts.awaiting_layer_sync += 1,
                Some(true) => {
                    counts.frames += 1;
                    out.frames.push(frame);
                }
            }
        }
        out
    }
}

/// A complete frame's packets joined and its header read.
fn whole_frame(partial: Partial) -> Option<(Frame, Place)> {
    let mut joined = BytesMut::with_capacity(partial.bytes);
    for part in partial.parts {
        joined.put_slice(&part?);
    }
    if joined.len() < HEADER {
        return None;
    }
    let codec = Codec::from_code(joined[0])?;
    let flags = joined[1];
    let keyframe = flags & KEYFRAME != 0 || codec.is_audio();
    let place = Place {
        layer: (flags >> LAYER_SHIFT) & (MAX_LAYERS - 1),
        sync: flags & LAYER_SYNC != 0,
        in_layer: u16::from_be_bytes([joined[2], joined[3]]),
        base: u16::from_be_bytes([joined[4], joined[5]]),
    };
    let data = joined.freeze().slice(HEADER..);
    let frame = Frame {
        codec,
        keyframe,
        timestamp_us: partial.timestamp_us,
        data,
        layer: place.layer,
        layer_sync: place.sync,
        encoding: 0,
    };
    Some((frame, place))
}

#[cfg(test)]
#[path = "frame_tests.rs"]
mod tests;
