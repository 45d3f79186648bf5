//! Reading an MPEG transport stream (ISO/IEC 13818-1) as its bytes come, from a file or a pipe
//! from `ffmpeg -f mpegts`: the program's H.264 video as access units and its Opus audio as
//! packets (the mapping ffmpeg and VLC share: stream type 6 registered as `Opus`, a control
//! header before each packet), each with its time from the stream's presentation time stamps,
//! so a sender can pace both on one clock.
//!
//! Only what a participant sends is taken: the first program of the PAT, its first H.264
//! stream and its first Opus stream. Other streams (AAC, MP3, HEVC, MPEG-2 video, ...) are
//! listed by [`MpegTsReader::skipped`] so the caller can say why they are not sent. A unit
//! cut by a lost packet (a continuity-counter gap) is dropped and counted, not sent damaged.
//!
//! Total: bad bytes give an error that says what and at which byte, never a panic; a table is
//! at most 1 024 bytes and a unit at most [`MAX_TS_UNIT`] (audio [`MAX_TS_AUDIO_UNIT`]), and no
//! more than one of each per stream is held.

use std::collections::{BTreeMap, VecDeque};

use bytes::Bytes;

use crate::container::crc32_msb_first;
use crate::frame::{Codec, Frame};
use crate::h264::h264_is_keyframe;
use crate::ogg::opus_packet_samples;

/// Bytes in a transport-stream packet.
pub const TS_PACKET: usize = 188;
/// Largest video unit (an access unit) taken.
pub const MAX_TS_UNIT: usize = 4 << 20;
/// Largest PES of audio packets taken (ffmpeg's are a few kilobytes; each packet in one
/// becomes a frame, so a small cap bounds how many frames one PES makes).
pub const MAX_TS_AUDIO_UNIT: usize = 64 << 10;
/// Largest PSI section (ISO/IEC 13818-1 2.4.4: section_length at most 1 021).
const MAX_SECTION: usize = 1024;
/// Streams the PMT may list that are remembered as skipped.
const MAX_SKIPPED: usize = 32;
/// The sync byte every packet starts with.
const SYNC: u8 = 0x47;
/// Presentation time stamps count at 90 kHz and wrap at 2^33.
const PTS_WRAP: u64 = 1 << 33;

/// Why bytes are not a transport stream this reader can send.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MpegTsError {
    /// A packet does not start with the sync byte.
    #[error("not an MPEG-TS stream: byte {at} is {found:#04x}, not the sync byte 0x47")]
    Sync {
        /// Where the packet starts.
        at: u64,
        /// The byte found there.
        found: u8,
    },
    /// The input ended inside a packet.
    #[error("the input ends inside a packet: {got} of 188 bytes at byte {at}")]
    Truncated {
        /// Where the packet starts.
        at: u64,
        /// Bytes of it that came.
        got: usize,
    },
    /// A packet's own fields are inconsistent.
    #[error("MPEG-TS packet at byte {at}: {why}")]
    Packet {
        /// Where the packet starts.
        at: u64,
        /// What is wrong.
        why: &'static str,
    },
    /// A program table (PAT or PMT) is malformed.
    #[error("MPEG-TS {table} in the packet at byte {at}: {why}")]
    Table {
        /// Which table.
        table: &'static str,
        /// Where its last packet starts.
        at: u64,
        /// What is wrong.
        why: &'static str,
    },
    /// A PES packet is malformed.
    #[error("MPEG-TS PES of PID {pid} starting at byte {at}: {why}")]
    Pes {
        /// The stream's PID.
        pid: u16,
        /// Where its first packet starts.
        at: u64,
        /// What is wrong.
        why: &'static str,
    },
    /// A unit is larger than [`MAX_TS_UNIT`] (video) or [`MAX_TS_AUDIO_UNIT`] (audio).
    #[error("MPEG-TS PES of PID {pid} starting at byte {at} is over {limit} bytes")]
    UnitTooLarge {
        /// The stream's PID.
        pid: u16,
        /// Where its first packet starts.
        at: u64,
        /// The largest taken for its stream.
        limit: usize,
    },
    /// The video's frames are sent in another order than shown (B-frames).
    #[error(
        "the H.264 stream reorders frames (B-frames: the PES at byte {at} decodes at another \
         time than it is shown); WebRTC plays frames in the order they come: encode with -bf 0"
    )]
    Reordered {
        /// Where the PES starts.
        at: u64,
    },
}

/// What a stream the PMT lists is sent as.
#[derive(Clone, Debug)]
struct Stream {
    codec: Codec,
    /// The last continuity counter seen with a payload.
    counter: Option<u8>,
    /// The PES being gathered and where its first packet starts.
    unit: Option<(Vec<u8>, u64)>,
    /// Whether a packet of the PES being gathered was lost.
    damaged: bool,
}

/// A PSI section being gathered.
#[derive(Clone, Debug, Default)]
struct Section {
    bytes: Option<Vec<u8>>,
}

/// Reads a transport stream as its bytes come: H.264 access units and Opus packets as
/// [`Frame`]s with their times in microseconds (on the stream's clock, not from zero).
#[derive(Clone, Debug, Default)]
pub struct MpegTsReader {
    buffer: Vec<u8>,
    /// Bytes of the stream consumed before `buffer`.
    offset: u64,
    pmt_pid: Option<u16>,
    pat: Section,
    pmt: Section,
    streams: BTreeMap<u16, Stream>,
    skipped: BTreeMap<u16, u8>,
    ready: VecDeque<Frame>,
    /// The last time stamp read, unwrapped (90 kHz, one wrap added so it can go back).
    last_pts: Option<u64>,
    damaged: u64,
}

impl MpegTsReader {
    /// An empty reader.
    pub fn new() -> Self {
        Self::default()
    }

    /// More bytes of the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    /// The streams of the program that are not sent: (PID, stream type), in PID order.
    pub fn skipped(&self) -> impl Iterator<Item = (u16, u8)> + '_ {
        self.skipped.iter().map(|(&pid, &kind)| (pid, kind))
    }

    /// Whether the PMT listed a stream that is sent.
    pub fn has_streams(&self) -> bool {
        !self.streams.is_empty()
    }

    /// Units dropped because a packet of theirs was lost.
    pub fn damaged(&self) -> u64 {
        self.damaged
    }

    /// The next whole frame, if its bytes have all come (a video unit is whole when the next
    /// one starts, or at [`MpegTsReader::end`]).
    pub fn next_frame(&mut self) -> Result<Option<Frame>, MpegTsError> {
        let mut used = 0;
        let result = loop {
            if let Some(frame) = self.ready.pop_front() {
                break Ok(Some(frame));
            }
            let Some(packet) = self.buffer.get(used..used + TS_PACKET) else {
                break Ok(None);
            };
            let packet: [u8; TS_PACKET] = packet.try_into().unwrap_or([0; TS_PACKET]);
            let at = self.offset + used as u64;
            used += TS_PACKET;
            if let Err(e) = self.packet(&packet, at) {
                break Err(e);
            }
        };
        self.buffer.drain(..used);
        self.offset += used as u64;
        result
    }

    /// The input has ended: units still being gathered are complete (take them with
    /// [`MpegTsReader::next_frame`]); an error if it ended inside a packet.
    pub fn end(&mut self) -> Result<(), MpegTsError> {
        let pending: Vec<u16> = self.streams.keys().copied().collect();
        for pid in pending {
            self.finish_unit(pid)?;
        }
        let left = self.buffer.len() % TS_PACKET;
        if left != 0 {
            return Err(MpegTsError::Truncated {
                at: self.offset + (self.buffer.len() - left) as u64,
                got: left,
            });
        }
        Ok(())
    }

    /// Takes in one packet starting at byte `at`.
    fn packet(&mut self, p: &[u8; TS_PACKET], at: u64) -> Result<(), MpegTsError> {
        if p[0] != SYNC {
            return Err(MpegTsError::Sync { at, found: p[0] });
        }
        let errored = p[1] & 0x80 != 0;
        let unit_start = p[1] & 0x40 != 0;
        let pid = u16::from(p[1] & 0x1f) << 8 | u16::from(p[2]);
        let control = (p[3] >> 4) & 3;
        let counter = p[3] & 0x0f;
        let mut start = 4;
        if control & 2 != 0 {
            start = 5 + usize::from(p[4]);
            if start > TS_PACKET {
                return Err(MpegTsError::Packet {
                    at,
                    why: "its adaptation field is longer than the packet",
                });
            }
        }
        if control & 1 == 0 {
            return Ok(());
        }
        let payload = &p[start..];
        if errored {
            // The link below marked it damaged: a gap in whatever it belonged to.
            if let Some(stream) = self.streams.get_mut(&pid) {
                stream.damaged = true;
            }
            return Ok(());
        }
        if pid == 0 {
            if let Some(section) = gather(&mut self.pat, payload, unit_start, at, "PAT")? {
                self.read_pat(&section, at)?;
            }
        } else if Some(pid) == self.pmt_pid {
            if let Some(section) = gather(&mut self.pmt, payload, unit_start, at, "PMT")? {
                self.read_pmt(&section, at)?;
            }
        } else if self.streams.contains_key(&pid) {
            self.stream_packet(pid, payload, unit_start, counter, at)?;
        }
        Ok(())
    }

    /// A packet of a stream that is sent.
    fn stream_packet(
        &mut self,
        pid: u16,
        payload: &[u8],
        unit_start: bool,
        counter: u8,
        at: u64,
    ) -> Result<(), MpegTsError> {
        let Some(stream) = self.streams.get_mut(&pid) else {
            return Ok(());
        };
        if let Some(last) = stream.counter {
            if counter == last && !unit_start {
                return Ok(()); // a repeated packet (allowed once, 2.4.3.3)
            }
            if counter != (last + 1) & 0x0f {
                stream.damaged = true;
            }
        }
        stream.counter = Some(counter);
        if unit_start {
            self.finish_unit(pid)?;
            if let Some(stream) = self.streams.get_mut(&pid) {
                stream.damaged = false;
                stream.unit = Some((payload.to_vec(), at));
            }
        } else if let Some((unit, first)) = &mut stream.unit {
            let limit = if stream.codec.is_audio() {
                MAX_TS_AUDIO_UNIT
            } else {
                MAX_TS_UNIT
            };
            if unit.len() + payload.len() > limit {
                return Err(MpegTsError::UnitTooLarge {
                    pid,
                    at: *first,
                    limit,
                });
            }
            unit.extend_from_slice(payload);
        }
        // A PES that says its length is whole as soon as that many bytes came (audio).
        let whole = self
            .streams
            .get(&pid)
            .and_then(|s| s.unit.as_ref())
            .is_some_and(|(unit, _)| match unit.get(4..6) {
                Some(&[hi, lo]) => {
                    let length = usize::from(u16::from_be_bytes([hi, lo]));
                    length != 0 && unit.len() >= 6 + length
                }
                _ => false,
            });
        if whole {
            self.finish_unit(pid)?;
        }
        Ok(())
    }

    /// Ends the PES being gathered on `pid`: its frames join the ready ones (none if damaged).
    fn finish_unit(&mut self, pid: u16) -> Result<(), MpegTsError> {
        let Some(stream) = self.streams.get_mut(&pid) else {
            return Ok(());
        };
        let Some((unit, at)) = stream.unit.take() else {
            return Ok(());
        };
        if std::mem::take(&mut stream.damaged) {
            self.damaged += 1;
            return Ok(());
        }
        let codec = stream.codec;
        let bad = |why| MpegTsError::Pes { pid, at, why };
        if unit.get(..3) != Some(&[0, 0, 1]) {
            return Err(bad("no PES start code"));
        }
        let (Some(&flags), Some(&header_length)) = (unit.get(7), unit.get(8)) else {
            return Err(bad("its header is cut short"));
        };
        let length = usize::from(u16::from_be_bytes([unit[4], unit[5]]));
        let end = if length == 0 {
            unit.len()
        } else {
            (6 + length).min(unit.len())
        };
        let body_start = 9 + usize::from(header_length);
        if body_start > end {
            return Err(bad("its header is longer than the packet"));
        }
        let times = flags >> 6;
        let pts = match times {
            2 | 3 => Some(time_stamp(unit.get(9..14)).ok_or_else(|| bad("its PTS is cut short"))?),
            _ => None,
        };
        if times == 3 {
            let dts = time_stamp(unit.get(14..19)).ok_or_else(|| bad("its DTS is cut short"))?;
            if codec == Codec::H264 && Some(dts) != pts {
                return Err(MpegTsError::Reordered { at });
            }
        }
        let ticks = match pts {
            Some(raw) => self.unwrap_time(raw),
            None => self.last_pts.unwrap_or(PTS_WRAP),
        };
        let at_us = ticks * 1_000 / 90;
        let body = &unit[body_start..end];
        match codec {
            Codec::Opus => {
                self.opus_packets(body, at_us, |why| MpegTsError::Pes { pid, at, why })?
            }
            _ => {
                if body.is_empty() {
                    return Ok(());
                }
                self.ready.push_back(Frame {
                    codec,
                    keyframe: h264_is_keyframe(body),
                    timestamp_us: at_us,
                    data: Bytes::copy_from_slice(body),
                    layer: 0,
                    layer_sync: false,
                    encoding: 0,
                });
            }
        }
        Ok(())
    }

    /// The Opus packets of one PES, each after its control header; the first at `at_us`, the
    /// rest after the ones before them.
    fn opus_packets(
        &mut self,
        mut body: &[u8],
        at_us: u64,
        bad: impl Fn(&'static str) -> MpegTsError,
    ) -> Result<(), MpegTsError> {
        let mut samples = 0u64;
        while !body.is_empty() {
            let [0x7f, flags, rest @ ..] = body else {
                return Err(bad("an Opus packet without its control header (0x7fe0)"));
            };
            if flags & 0xe0 != 0xe0 {
                return Err(bad("an Opus packet without its control header (0x7fe0)"));
            }
            let mut rest = rest;
            let mut size = 0usize;
            loop {
                let Some((&b, tail)) = rest.split_first() else {
                    return Err(bad("an Opus control header cut short"));
                };
                rest = tail;
                size += usize::from(b);
                if b != 0xff {
                    break;
                }
            }
            let trims = 2 * usize::from(flags & 0x10 != 0) + 2 * usize::from(flags & 0x08 != 0);
            rest = rest
                .get(trims..)
                .ok_or_else(|| bad("an Opus control header cut short"))?;
            if flags & 0x04 != 0 {
                let (&extension, tail) = rest
                    .split_first()
                    .ok_or_else(|| bad("an Opus control header cut short"))?;
                rest = tail
                    .get(usize::from(extension)..)
                    .ok_or_else(|| bad("an Opus control header cut short"))?;
            }
            let packet = rest
                .get(..size)
                .ok_or_else(|| bad("an Opus packet longer than its PES"))?;
            let duration = opus_packet_samples(packet)
                .ok_or_else(|| bad("an Opus packet with no valid frame count"))?;
            self.ready.push_back(Frame {
                codec: Codec::Opus,
                keyframe: false,
                timestamp_us: at_us + samples * 1_000_000 / 48_000,
                data: Bytes::copy_from_slice(packet),
                layer: 0,
                layer_sync: false,
                encoding: 0,
            });
            samples += u64::from(duration);
            body = &rest[size..];
        }
        Ok(())
    }

    /// A 33-bit time stamp as a count that goes on past its wrap (the nearest to the last).
    fn unwrap_time(&mut self, raw: u64) -> u64 {
        let value = match self.last_pts {
            None => PTS_WRAP + raw,
            Some(last) => {
                let same = (last & !(PTS_WRAP - 1)) | raw;
                [same.saturating_sub(PTS_WRAP), same, same + PTS_WRAP]
                    .into_iter()
                    .min_by_key(|v| v.abs_diff(last))
                    .unwrap_or(same)
            }
        };
        self.last_pts = Some(value);
        value
    }

    /// The PAT: its first program's PMT PID.
    fn read_pat(&mut self, section: &[u8], at: u64) -> Result<(), MpegTsError> {
        let bad = |why| MpegTsError::Table {
            table: "PAT",
            at,
            why,
        };
        if section[0] != 0 {
            return Err(bad("not a program association section (table id)"));
        }
        let entries = section.get(8..section.len() - 4).unwrap_or(&[]);
        let pmt = entries
            .chunks_exact(4)
            .find(|e| e[0] != 0 || e[1] != 0)
            .map(|e| u16::from(e[2] & 0x1f) << 8 | u16::from(e[3]));
        if pmt.is_some() && pmt != self.pmt_pid {
            self.pmt_pid = pmt;
            self.pmt = Section::default();
            self.streams.clear();
            self.skipped.clear();
        }
        Ok(())
    }

    /// The PMT: which of its streams are sent, keeping those already being read.
    fn read_pmt(&mut self, section: &[u8], at: u64) -> Result<(), MpegTsError> {
        let bad = |why| MpegTsError::Table {
            table: "PMT",
            at,
            why,
        };
        if section[0] != 2 {
            return Err(bad("not a program map section (table id)"));
        }
        let body = section.get(..section.len() - 4).unwrap_or(&[]);
        let info = match body.get(10..12) {
            Some(&[hi, lo]) => usize::from(u16::from_be_bytes([hi & 0x0f, lo])),
            _ => return Err(bad("cut short before its program info")),
        };
        let mut rest = body
            .get(12 + info..)
            .ok_or_else(|| bad("program info past its end"))?;
        let mut streams = BTreeMap::new();
        let mut skipped = BTreeMap::new();
        while !rest.is_empty() {
            let [kind, pid_hi, pid_lo, info_hi, info_lo, tail @ ..] = rest else {
                return Err(bad("a stream entry cut short"));
            };
            let pid = u16::from(pid_hi & 0x1f) << 8 | u16::from(*pid_lo);
            let info = usize::from(u16::from_be_bytes([info_hi & 0x0f, *info_lo]));
            let descriptors = tail
                .get(..info)
                .ok_or_else(|| bad("stream descriptors past its end"))?;
            rest = &tail[info..];
            let codec = match kind {
                0x1b => Some(Codec::H264),
                0x06 if registered_opus(descriptors) => Some(Codec::Opus),
                _ => None,
            };
            let taken = streams.values().any(|s: &Stream| Some(s.codec) == codec);
            match codec {
                Some(codec) if !taken => {
                    let stream = match self.streams.remove(&pid) {
                        Some(old) if old.codec == codec => old,
                        _ => Stream {
                            codec,
                            counter: None,
                            unit: None,
                            damaged: false,
                        },
                    };
                    streams.insert(pid, stream);
                }
                _ if skipped.len() < MAX_SKIPPED => {
                    skipped.insert(pid, *kind);
                }
                _ => {}
            }
        }
        self.streams = streams;
        self.skipped = skipped;
        Ok(())
    }
}

/// What a PMT's stream type is (ISO/IEC 13818-1 table 2-34 and common registrations), to
/// name streams that are not sent.
pub fn stream_type_name(kind: u8) -> &'static str {
    match kind {
        0x01 => "MPEG-1 video",
        0x02 => "MPEG-2 video",
        0x03 | 0x04 => "MPEG audio (MP2/MP3)",
        0x06 => "private data (not Opus)",
        0x0f => "AAC audio",
        0x10 => "MPEG-4 video",
        0x11 => "AAC (LATM) audio",
        0x15 => "metadata",
        0x1b => "a second H.264 video",
        0x24 => "HEVC video",
        0x81 => "AC-3 audio",
        0x86 => "SCTE-35 cues",
        0x87 => "E-AC-3 audio",
        _ => "an unknown stream type",
    }
}

/// Whether a stream's descriptors hold the registration `Opus` (tag 5).
fn registered_opus(mut descriptors: &[u8]) -> bool {
    while let [tag, length, rest @ ..] = descriptors {
        let Some(body) = rest.get(..usize::from(*length)) else {
            return false;
        };
        if *tag == 5 && body.starts_with(b"Opus") {
            return true;
        }
        descriptors = &rest[usize::from(*length)..];
    }
    false
}

/// Gathers a PSI section over packets; the whole section once its bytes have come and its
/// CRC holds.
fn gather(
    section: &mut Section,
    payload: &[u8],
    unit_start: bool,
    at: u64,
    table: &'static str,
) -> Result<Option<Vec<u8>>, MpegTsError> {
    let bad = |why| MpegTsError::Table { table, at, why };
    if unit_start {
        let (&pointer, rest) = payload
            .split_first()
            .ok_or_else(|| bad("an empty payload"))?;
        let start = rest
            .get(usize::from(pointer)..)
            .ok_or_else(|| bad("its pointer field points past the packet"))?;
        section.bytes = Some(start.to_vec());
    } else if let Some(bytes) = &mut section.bytes {
        bytes.extend_from_slice(payload);
    } else {
        return Ok(None);
    }
    let Some(bytes) = &section.bytes else {
        return Ok(None);
    };
    if bytes.first() == Some(&0xff) {
        section.bytes = None; // stuffing: no section
        return Ok(None);
    }
    let Some(&[_, hi, lo]) = bytes.get(..3) else {
        return Ok(None);
    };
    let length = 3 + usize::from(u16::from_be_bytes([hi & 0x0f, lo]));
    if length > MAX_SECTION {
        section.bytes = None;
        return Err(bad("a section longer than 1024 bytes"));
    }
    if length < 12 {
        section.bytes = None;
        return Err(bad("a section too short for its fixed fields"));
    }
    if bytes.len() < length {
        if bytes.len() > MAX_SECTION {
            section.bytes = None;
        }
        return Ok(None);
    }
    let whole = bytes[..length].to_vec();
    section.bytes = None;
    if mpeg_crc(&whole) != 0 {
        return Err(bad("CRC mismatch (the stream is damaged)"));
    }
    Ok(Some(whole))
}

/// The CRC-32 of PSI sections (polynomial 0x04c11db7, initial all ones, not reflected): zero
/// over a whole section with its CRC.
pub(crate) fn mpeg_crc(bytes: &[u8]) -> u32 {
    crc32_msb_first(0xffff_ffff, bytes)
}

/// A PES time stamp's 33 bits from its five bytes.
fn time_stamp(bytes: Option<&[u8]>) -> Option<u64> {
    let &[a, b, c, d, e] = bytes? else {
        return None;
    };
    Some(
        (u64::from(a >> 1) & 7) << 30
            | u64::from(b) << 22
            | u64::from(c >> 1) << 15
            | u64::from(d) << 7
            | u64::from(e >> 1),
    )
}

#[cfg(test)]
#[path = "mpegts_tests.rs"]
mod tests;
