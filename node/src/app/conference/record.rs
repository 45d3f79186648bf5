//! `--record DIR`: every other member's sources this member receives, written as files that
//! ffprobe, ffplay or VLC read: `MEMBER-PUBLISHER.ivf` (VP8, VP9, AV1), `.h264` (H.264 Annex
//! B) and `.opus` (Ogg Opus). A browser that publishes two sizes of its picture (simulcast)
//! gives two video files: the small picture in `MEMBER-PUBLISHER.ivf` (every member carries it
//! first) and the whole one in `MEMBER-PUBLISHER.large.ivf` (with gaps where a congested link
//! above this member shed it). Video starts at a keyframe (the frame assembler holds video
//! until one). Each frame is appended as it completes, so a recording killed mid-way is
//! readable up to there.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::PathBuf;

use media::{Codec, Frame, IvfWriter, OggOpusWriter};

use crate::edge::webrtc::SourceKey;

/// Files open at most (a source's audio and video are two).
const MAX_FILES: usize = 256;

enum Format {
    Ivf(IvfWriter),
    AnnexB,
    Ogg(OggOpusWriter),
}

struct Recording {
    file: File,
    format: Format,
    failed: bool,
}

/// Writes the frames of the sources this member receives into a folder.
pub struct Recorder {
    dir: PathBuf,
    /// By source, audio or not, and simulcast encoding.
    files: BTreeMap<(SourceKey, bool, u8), Recording>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("dir", &self.dir)
            .field("files", &self.files.len())
            .finish()
    }
}

impl Recorder {
    /// A recorder into `dir` (created if missing).
    pub fn new(dir: PathBuf) -> std::io::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        Ok(Self {
            dir,
            files: BTreeMap::new(),
        })
    }

    /// Appends `frame` of `source` to its file (opened on its first frame).
    pub fn frame(&mut self, source: SourceKey, frame: &Frame) {
        let audio = frame.codec.is_audio();
        let key = (source, audio, frame.encoding.min(media::MAX_ENCODINGS - 1));
        if !self.files.contains_key(&key) {
            if self.files.len() >= MAX_FILES {
                return;
            }
            let (extension, format) = match frame.codec {
                Codec::Opus => (
                    "opus",
                    Format::Ogg(OggOpusWriter::new(u32::from(source.publisher) + 1)),
                ),
                Codec::Vp8 => ("ivf", Format::Ivf(IvfWriter::new(*b"VP80"))),
                Codec::Vp9 => ("ivf", Format::Ivf(IvfWriter::new(*b"VP90"))),
                Codec::Av1 => ("ivf", Format::Ivf(IvfWriter::new(*b"AV01"))),
                Codec::H264 => ("h264", Format::AnnexB),
            };
            let member = source.member.to_hex();
            let size = if key.2 > 0 { ".large" } else { "" };
            let name = format!("{}-{}{size}.{extension}", &member[..16], source.publisher);
            let path = self.dir.join(name);
            match File::create(&path) {
                Ok(file) => {
                    tracing::info!(path = %path.display(), "recording a source");
                    self.files.insert(
                        key,
                        Recording {
                            file,
                            format,
                            failed: false,
                        },
                    );
                }
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "cannot record a source");
                    return;
                }
            }
        }
        let Some(r) = self.files.get_mut(&key) else {
            return;
        };
        if r.failed {
            return;
        }
        let bytes = match &mut r.format {
            Format::Ivf(w) => w.frame(frame.timestamp_us, &frame.data),
            Format::AnnexB => frame.data.to_vec(),
            Format::Ogg(w) => w.packet(frame.timestamp_us, &frame.data),
        };
        if let Err(e) = r.file.write_all(&bytes) {
            tracing::warn!(error = %e, "recording stopped: cannot write");
            r.failed = true;
        }
    }
}
