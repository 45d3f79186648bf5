//! `--send ts:FILE`, `--send ivf:FILE` and `--send ogg:FILE`: a participant without a browser.
//! H.264 video and Opus audio from an MPEG-TS file, or VP8 video from an IVF file and Opus
//! audio from an Ogg file (or standard input, as ffmpeg writes any of them) go out as one
//! source, this member's publisher [`FILE_PUBLISHER`]: each frame when its timestamp falls due,
//! cut into media packets like a browser's frames (and shown to the browsers here). Files sent
//! together run on one clock, started by the first frame any of them gives (a pipe's first
//! bytes may come late), so sound and picture made together stay together. An MPEG-TS video
//! frame is whole when the next one starts, so a live pipe adds one frame time.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use media::{
    Codec, Frame, FrameSlicer, H264Profile, IvfReader, MAX_PUBLISHERS, MpegTsReader, OggOpusReader,
    h264_profile, stream_type_name,
};
use narada::Command;
use overlay_core::NodeId;
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;

use super::browser::SourceBoard;
use super::config::{SentFile, SentKind};
use crate::edge::webrtc::{BrowserEdge, SourceKey};
use crate::runtime::Control;

/// The publisher number a sent file takes (browsers take the lower ones).
pub const FILE_PUBLISHER: u16 = MAX_PUBLISHERS - 1;
/// Payload bytes per media packet, as for browsers' frames.
const MTU: usize = 1100;

/// The frames of one file, as its bytes come.
enum FileFrames {
    Ts(TsFrames),
    Ivf(IvfReader),
    Ogg(OggOpusReader),
}

/// An MPEG-TS file's frames, and what was said about them already.
#[derive(Default)]
struct TsFrames {
    reader: MpegTsReader,
    /// The streams not sent were named.
    told_skipped: bool,
    /// The video's profile was checked.
    told_profile: bool,
}

impl TsFrames {
    fn next_frame(&mut self) -> Result<Option<Frame>, String> {
        let frame = self.reader.next_frame().map_err(|e| e.to_string())?;
        let others = || {
            let list: Vec<String> = self
                .reader
                .skipped()
                .map(|(pid, kind)| format!("{} (PID {pid})", stream_type_name(kind)))
                .collect();
            list.join(", ")
        };
        if !self.told_skipped && (self.reader.has_streams() || self.reader.skipped().count() > 0) {
            self.told_skipped = true;
            if !self.reader.has_streams() {
                return Err(format!(
                    "its program has no H.264 video or Opus audio, only {}: encode with -c:v \
                     libx264 -bf 0 -c:a libopus",
                    others()
                ));
            }
            if self.reader.skipped().count() > 0 {
                tracing::warn!(
                    streams = %others(),
                    "MPEG-TS streams not sent: browsers over WebRTC take H.264 video and Opus \
                     audio (-c:v libx264 -bf 0 -c:a libopus)"
                );
            }
        }
        if let Some(f) = &frame
            && f.codec == Codec::H264
            && !self.told_profile
            && let Some(profile) = h264_profile(&f.data)
        {
            self.told_profile = true;
            if matches!(profile, H264Profile::High444 | H264Profile::Other(_)) {
                tracing::warn!(
                    ?profile,
                    "the H.264 stream's profile is beyond High: browsers agree up to High over \
                     WebRTC and not all of them further (4:4:4 is one such): encode with \
                     -pix_fmt yuv420p"
                );
            }
        }
        Ok(frame)
    }
}

impl FileFrames {
    fn new(kind: SentKind) -> Self {
        match kind {
            SentKind::Ts => Self::Ts(TsFrames::default()),
            SentKind::Ivf => Self::Ivf(IvfReader::new()),
            SentKind::Ogg => Self::Ogg(OggOpusReader::new()),
        }
    }

    fn push(&mut self, bytes: &[u8]) {
        match self {
            Self::Ts(r) => r.reader.push(bytes),
            Self::Ivf(r) => r.push(bytes),
            Self::Ogg(r) => r.push(bytes),
        }
    }

    /// The input has ended: frames still being gathered are whole (MPEG-TS); why the file
    /// ends badly, if it does.
    fn end(&mut self) -> Result<(), String> {
        match self {
            Self::Ts(r) => {
                r.reader.end().map_err(|e| e.to_string())?;
                if !r.reader.has_streams() && r.reader.skipped().count() == 0 {
                    return Err(
                        "no H.264 video or Opus audio in it (no program tables, or an empty \
                         program): not MPEG-TS from ffmpeg"
                            .into(),
                    );
                }
                Ok(())
            }
            Self::Ivf(_) | Self::Ogg(_) => Ok(()),
        }
    }

    /// The next whole frame, if its bytes have all come; why the file cannot be sent.
    fn next_frame(&mut self) -> Result<Option<Frame>, String> {
        match self {
            Self::Ts(r) => r.next_frame(),
            Self::Ivf(reader) => {
                let Some((at_us, data)) = reader.next_frame().map_err(|e| e.to_string())? else {
                    return Ok(None);
                };
                if let Some(header) = reader.header()
                    && &header.fourcc != b"VP80"
                {
                    return Err(format!(
                        "only VP8 IVF is sent (this one is {})",
                        String::from_utf8_lossy(&header.fourcc)
                    ));
                }
                Ok(Some(Frame {
                    codec: Codec::Vp8,
                    keyframe: data.first().is_some_and(|b| b & 1 == 0),
                    timestamp_us: at_us,
                    data: Bytes::from(data),
                    layer: 0,
                    layer_sync: false,
                    encoding: 0,
                }))
            }
            Self::Ogg(reader) => {
                let Some((at_us, data)) = reader.next_packet().map_err(|e| e.to_string())? else {
                    return Ok(None);
                };
                Ok(Some(Frame {
                    codec: Codec::Opus,
                    keyframe: false,
                    timestamp_us: at_us,
                    data: Bytes::from(data),
                    layer: 0,
                    layer_sync: false,
                    encoding: 0,
                }))
            }
        }
    }
}

/// Sends `file` until its end, on the clock `start` (set by the first frame of any of the
/// files sent together); why it stopped early, if it did.
pub async fn send_file(
    file: SentFile,
    start: Arc<OnceLock<tokio::time::Instant>>,
    control: mpsc::Sender<Control<Command>>,
    me: NodeId,
    edge: Option<BrowserEdge>,
    sources: Arc<SourceBoard>,
) -> Result<(), String> {
    let path = &file.path;
    let named = |why: String| format!("{}: {why}", path.display());
    let mut input: Box<dyn tokio::io::AsyncRead + Unpin + Send> = if file.is_stdin() {
        Box::new(tokio::io::stdin())
    } else {
        Box::new(
            tokio::fs::File::open(path)
                .await
                .map_err(|e| named(e.to_string()))?,
        )
    };
    let source = SourceKey {
        member: me,
        publisher: FILE_PUBLISHER,
    };
    let mut frames = FileFrames::new(file.kind);
    let mut slicer = FrameSlicer::new(MTU);
    let mut chunk = vec![0u8; 64 * 1024];
    let mut first_us: Option<u64> = None;
    loop {
        let n = input
            .read(&mut chunk)
            .await
            .map_err(|e| named(e.to_string()))?;
        let ended = n == 0;
        if ended {
            frames.end().map_err(named)?;
        }
        frames.push(&chunk[..n]);
        while let Some(frame) = frames.next_frame().map_err(named)? {
            let first = *first_us.get_or_insert(frame.timestamp_us);
            let due = Duration::from_micros(frame.timestamp_us.saturating_sub(first));
            let start = *start.get_or_init(tokio::time::Instant::now);
            tokio::time::sleep_until(start + due).await;
            sources.saw(source, std::time::Instant::now());
            if let Some(edge) = &edge {
                edge.forward(source, frame.clone());
            }
            for packet in slicer.slice(FILE_PUBLISHER, &frame) {
                let command = Command::Publish {
                    priority: packet.priority.class(),
                    payload: packet.encode(),
                };
                if control.send(Control::Command(command)).await.is_err() {
                    return Ok(());
                }
            }
        }
        if ended {
            return Ok(());
        }
    }
}
