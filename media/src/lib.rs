//! The media model of the overlay.
//!
//! - [`MediaPacket`] and [`Priority`]: a frame's slices with stream, sequence number, media
//!   timestamp and drop priority (keyframe, base layer, enhancement layers), and their codec;
//! - [`SyntheticSource`]: a constant-bit-rate source with keyframes, layers and frame timing;
//! - [`PriorityPacer`]: rate adaptation by dropping, lowest priority first, for one outgoing
//!   link whose rate the congestion controller (or the simulator's fair share) sets;
//! - [`FrameSlicer`] and [`FrameAssembler`]: a real codec's whole frames (audio, video
//!   keyframes and delta frames, in temporal layers, a simulcast publisher's two encodings on
//!   streams of their own) as packets and back, waiting for a keyframe after a base frame's
//!   loss and for a layer sync after an upper layer's;
//! - [`IvfWriter`] and [`OggOpusWriter`]: a recorded source's frames as files other tools read;
//!   [`IvfReader`], [`OggOpusReader`] and [`MpegTsReader`] (H.264 and Opus in MPEG-TS): files
//!   (or ffmpeg's pipes) a member sends;
//! - [`h264_profile`] and [`best_h264_payload`]: an H.264 stream's profile and the payload type
//!   a browser agreed that decodes it;
//! - [`ShedPackets`]: what one link shed, so a repair of it is not sent into that link again;
//! - [`Receiver`]: playout deadlines and counters (on time, late, lost, delay).
//!
//! Like the protocol crates it never reads a clock: time is passed in.

#![forbid(unsafe_code)]

mod container;
mod frame;
mod h264;
mod mpegts;
mod ogg;
mod pacer;
mod packet;
mod receiver;
mod shed;
mod source;

pub use container::{
    IvfError, IvfHeader, IvfReader, IvfWriter, MAX_IVF_FRAME, OggOpusWriter, vp8_size,
};
pub use frame::{
    Assembled, AssemblyCounts, Codec, Frame, FrameAssembler, FrameSlicer, MAX_ENCODINGS,
    MAX_LAYERS, MAX_PUBLISHERS, encoding_stream, stream_place, stream_publisher, track_stream,
};
pub use h264::{H264Profile, best_h264_payload, h264_is_keyframe, h264_profile, nal_units};
pub use mpegts::{
    MAX_TS_AUDIO_UNIT, MAX_TS_UNIT, MpegTsError, MpegTsReader, TS_PACKET, stream_type_name,
};
pub use ogg::{MAX_OGG_PACKET, OggError, OggOpusReader, opus_packet_samples};
pub use pacer::{BURST, PriorityPacer};
pub use packet::{MAX_PAYLOAD, MediaError, MediaPacket, Priority};
pub use receiver::{
    CONVERSATION_PLAYOUT, CONVERSATION_PLAYOUT_GROWTH, Playout, Receiver, StreamStats,
};
pub use shed::{SHED_REMEMBERED, ShedPackets};
pub use source::{SourceConfig, SyntheticSource};
