//! `--send ivf:FILE`: a participant without a browser. VP8 video from an IVF file (or standard
//! input, as ffmpeg writes it) goes out as this member's publisher [`FILE_PUBLISHER`], each
//! frame when its timestamp falls due, cut into media packets like a browser's frames (and
//! shown to the browsers here).

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use media::{Codec, Frame, FrameSlicer, IvfReader, MAX_PUBLISHERS};
use narada::Command;
use overlay_core::NodeId;
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;

use super::browser::SourceBoard;
use crate::edge::webrtc::{BrowserEdge, SourceKey};
use crate::runtime::Control;

/// The publisher number a sent file takes (browsers take the lower ones).
pub const FILE_PUBLISHER: u16 = MAX_PUBLISHERS - 1;
/// Payload bytes per media packet, as for browsers' frames.
const MTU: usize = 1100;

/// Sends `path` (`-`: standard input) until its end; why it stopped early, if it did.
pub async fn send_ivf(
    path: PathBuf,
    control: mpsc::Sender<Control<Command>>,
    me: NodeId,
    edge: Option<BrowserEdge>,
    sources: std::sync::Arc<SourceBoard>,
) -> Result<(), String> {
    let mut input: Box<dyn tokio::io::AsyncRead + Unpin + Send> = if path.as_os_str() == "-" {
        Box::new(tokio::io::stdin())
    } else {
        Box::new(
            tokio::fs::File::open(&path)
                .await
                .map_err(|e| format!("{}: {e}", path.display()))?,
        )
    };
    let source = SourceKey {
        member: me,
        publisher: FILE_PUBLISHER,
    };
    let mut reader = IvfReader::new();
    let mut slicer = FrameSlicer::new(MTU);
    let mut chunk = vec![0u8; 64 * 1024];
    let mut clock: Option<(tokio::time::Instant, u64)> = None;
    loop {
        let n = input
            .read(&mut chunk)
            .await
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if n == 0 {
            return Ok(());
        }
        reader.push(&chunk[..n]);
        while let Some((at_us, data)) = reader
            .next_frame()
            .map_err(|e| format!("{}: {e}", path.display()))?
        {
            let header = reader.header().unwrap_or(media::IvfHeader {
                fourcc: *b"VP80",
                numerator: 1,
                denominator: 1,
            });
            if &header.fourcc != b"VP80" {
                return Err(format!(
                    "{}: only VP8 IVF is sent (this one is {})",
                    path.display(),
                    String::from_utf8_lossy(&header.fourcc)
                ));
            }
            let (start, first_us) =
                *clock.get_or_insert_with(|| (tokio::time::Instant::now(), at_us));
            tokio::time::sleep_until(start + Duration::from_micros(at_us.saturating_sub(first_us)))
                .await;
            let frame = Frame {
                codec: Codec::Vp8,
                keyframe: data.first().is_some_and(|b| b & 1 == 0),
                timestamp_us: at_us,
                data: Bytes::from(data),
            };
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
    }
}
