//! Reading Ogg Opus (RFC 7845) as its bytes come, from a file or a pipe from ffmpeg: the Opus
//! stream's audio packets, each with the time it starts at (from the packets' own durations,
//! RFC 6716 §3.1), so a sender can pace them. Pages of other logical streams in the same file
//! are skipped. Total: bad bytes give an error that says what and at which byte, never a panic,
//! and no more than one page and one packet of at most [`MAX_OGG_PACKET`] bytes are held.

use crate::container::ogg_crc;

/// Largest Opus packet taken (the largest real one, 120 ms of six 1275-byte frames, is under
/// 8 kB).
pub const MAX_OGG_PACKET: usize = 64 << 10;

/// Opus's sample rate: every duration and granule in Ogg Opus counts at 48 kHz.
const OPUS_RATE: u64 = 48_000;

/// A page's fixed header before its lacing values.
const PAGE_HEADER: usize = 27;

/// Why bytes are not an Ogg Opus stream.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OggError {
    /// No `OggS` where a page should start.
    #[error("not an Ogg page at byte {0} (no OggS capture pattern)")]
    NotOgg(u64),
    /// A page of a stream structure version other than 0.
    #[error("Ogg page at byte {at}: version {version} (only 0 exists)")]
    Version {
        /// Where the page starts.
        at: u64,
        /// Its version.
        version: u8,
    },
    /// A page whose checksum does not match its bytes.
    #[error("Ogg page at byte {0}: checksum mismatch (the file is damaged)")]
    Checksum(u64),
    /// The first pages begin no Opus stream.
    #[error("Ogg page at byte {0}: no Opus stream begins before it (not Ogg Opus)")]
    NotOpus(u64),
    /// The Opus identification header is malformed.
    #[error("Ogg page at byte {0}: a malformed OpusHead")]
    BadHead(u64),
    /// A packet is larger than [`MAX_OGG_PACKET`].
    #[error("Ogg page at byte {0}: an Opus packet over {MAX_OGG_PACKET} bytes")]
    PacketTooLarge(u64),
    /// An audio packet whose table of contents gives no valid duration.
    #[error("Ogg page at byte {0}: an Opus packet with no valid frame count")]
    BadPacket(u64),
}

/// Where the reader is in the Opus stream's headers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Stage {
    /// Waiting for the page that begins the Opus stream.
    #[default]
    Head,
    /// The identification header was read; the comment header comes next.
    Tags,
    /// Audio packets.
    Audio,
}

/// Reads an Ogg Opus stream as its bytes come: audio packets with their start times in
/// microseconds.
#[derive(Clone, Debug, Default)]
pub struct OggOpusReader {
    buffer: Vec<u8>,
    /// Bytes of the stream consumed before `buffer` (for errors' positions).
    consumed: u64,
    /// The Opus stream's serial number, once its first page was seen.
    serial: Option<u32>,
    stage: Stage,
    /// A packet begun on an earlier page.
    partial: Vec<u8>,
    /// The rest of a packet is skipped (it began on a page this reader never saw).
    skipping: bool,
    /// Packets completed and not yet taken, with the byte their page started at.
    ready: std::collections::VecDeque<(u64, Vec<u8>)>,
    /// Channels the identification header declares.
    channels: u8,
    /// Samples (at 48 kHz) of the audio packets taken so far.
    samples: u64,
}

impl OggOpusReader {
    /// An empty reader.
    pub fn new() -> Self {
        Self::default()
    }

    /// More bytes of the stream (call [`Self::next_packet`] until it gives `None` before
    /// pushing more, so at most one page waits here).
    pub fn push(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    /// Channels of the stream, once its identification header was read.
    pub fn channels(&self) -> Option<u8> {
        (self.stage != Stage::Head).then_some(self.channels)
    }

    /// The next audio packet (its start in microseconds from the stream's start, its bytes),
    /// if its bytes have all come.
    pub fn next_packet(&mut self) -> Result<Option<(u64, Vec<u8>)>, OggError> {
        loop {
            while let Some((at, packet)) = self.ready.pop_front() {
                match self.stage {
                    Stage::Head => {
                        self.channels = opus_head_channels(&packet).ok_or(OggError::BadHead(at))?;
                        self.stage = Stage::Tags;
                    }
                    // The comment header says nothing a sender needs.
                    Stage::Tags => self.stage = Stage::Audio,
                    Stage::Audio => {
                        let duration =
                            opus_packet_samples(&packet).ok_or(OggError::BadPacket(at))?;
                        let start_us = self.samples.saturating_mul(1_000_000) / OPUS_RATE;
                        self.samples = self.samples.saturating_add(u64::from(duration));
                        return Ok(Some((start_us, packet)));
                    }
                }
            }
            if !self.next_page()? {
                return Ok(None);
            }
        }
    }

    /// Reads one whole page from the buffer into `ready`; `false` if its bytes have not all
    /// come.
    fn next_page(&mut self) -> Result<bool, OggError> {
        let at = self.consumed;
        let b = &self.buffer;
        if b.len() < PAGE_HEADER {
            return Ok(false);
        }
        if &b[..4] != b"OggS" {
            return Err(OggError::NotOgg(at));
        }
        if b[4] != 0 {
            return Err(OggError::Version { at, version: b[4] });
        }
        let segments = usize::from(b[26]);
        if b.len() < PAGE_HEADER + segments {
            return Ok(false);
        }
        let lacing = &b[PAGE_HEADER..PAGE_HEADER + segments];
        let body: usize = lacing.iter().map(|&l| usize::from(l)).sum();
        let end = PAGE_HEADER + segments + body;
        if b.len() < end {
            return Ok(false);
        }
        let mut zeroed = b[..end].to_vec();
        zeroed[22..26].fill(0);
        let crc = u32::from_le_bytes([b[22], b[23], b[24], b[25]]);
        if ogg_crc(&zeroed) != crc {
            return Err(OggError::Checksum(at));
        }
        let flags = b[5];
        let serial = u32::from_le_bytes([b[14], b[15], b[16], b[17]]);
        let begins_stream = flags & 0x02 != 0;
        let continued = flags & 0x01 != 0;
        let mine = match self.serial {
            Some(s) => s == serial,
            None if begins_stream => {
                let first = &zeroed[PAGE_HEADER + segments..];
                if first.starts_with(b"OpusHead") {
                    self.serial = Some(serial);
                    true
                } else {
                    // Another codec's stream multiplexed beside the Opus one.
                    false
                }
            }
            None => return Err(OggError::NotOpus(at)),
        };
        if mine {
            if !continued {
                // A packet that should have gone on was cut: drop what came of it.
                self.partial.clear();
                self.skipping = false;
            } else if self.partial.is_empty() {
                // A packet goes on that this reader never saw begin: skip its rest.
                self.skipping = true;
            }
            let mut offset = PAGE_HEADER + segments;
            for &len in lacing {
                let piece = &zeroed[offset..offset + usize::from(len)];
                offset += usize::from(len);
                if !self.skipping {
                    if self.partial.len() + piece.len() > MAX_OGG_PACKET {
                        return Err(OggError::PacketTooLarge(at));
                    }
                    self.partial.extend_from_slice(piece);
                }
                if len < 255 {
                    // The packet ends here.
                    if !self.skipping {
                        self.ready
                            .push_back((at, std::mem::take(&mut self.partial)));
                    }
                    self.skipping = false;
                }
            }
        }
        self.buffer.drain(..end);
        self.consumed += end as u64;
        Ok(true)
    }
}

/// The channel count of an Opus identification header (RFC 7845 §5.1), if it is one this
/// reader understands (major version 0, at least one channel).
fn opus_head_channels(packet: &[u8]) -> Option<u8> {
    if packet.len() < 19 || !packet.starts_with(b"OpusHead") || packet[8] & 0xf0 != 0 {
        return None;
    }
    let channels = packet[9];
    (channels > 0).then_some(channels)
}

/// The samples (at 48 kHz) an Opus packet holds, from its table of contents (RFC 6716 §3.1);
/// `None` for an empty packet, a missing frame count or over 120 ms.
pub fn opus_packet_samples(packet: &[u8]) -> Option<u32> {
    let toc = *packet.first()?;
    let config = toc >> 3;
    let per_frame = match config {
        0..=11 => [480, 960, 1920, 2880][usize::from(config % 4)],
        12..=15 => [480, 960][usize::from(config % 2)],
        _ => [120, 240, 480, 960][usize::from(config % 4)],
    };
    let frames = match toc & 0x03 {
        0 => 1,
        1 | 2 => 2,
        _ => u32::from(*packet.get(1)? & 0x3f),
    };
    let samples = per_frame * frames;
    (frames > 0 && samples <= 5760).then_some(samples)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::OggOpusWriter;
    use proptest::prelude::*;

    /// A 20 ms CELT packet (config 31: fullband 20 ms; one frame).
    fn packet(n: u8, len: usize) -> Vec<u8> {
        let mut p = vec![0xf8, n];
        p.resize(len, n);
        p
    }

    fn read_all(reader: &mut OggOpusReader, bytes: &[u8], piece: usize) -> Vec<(u64, Vec<u8>)> {
        let mut got = Vec::new();
        for chunk in bytes.chunks(piece.max(1)) {
            reader.push(chunk);
            while let Some(p) = reader.next_packet().unwrap() {
                got.push(p);
            }
        }
        got
    }

    #[test]
    fn what_the_writer_wrote_the_reader_reads_back_timed_by_the_packets_durations() {
        let mut w = OggOpusWriter::new(9);
        let sent: Vec<Vec<u8>> = (0..5)
            .map(|i| packet(i, 40 + usize::from(i) * 100))
            .collect();
        let mut file = Vec::new();
        for (i, p) in sent.iter().enumerate() {
            file.extend(w.packet(i as u64 * 20_000, p));
        }
        for piece in [1, 7, 4096] {
            let mut r = OggOpusReader::new();
            let got = read_all(&mut r, &file, piece);
            assert_eq!(r.channels(), Some(2));
            let times: Vec<u64> = got.iter().map(|g| g.0).collect();
            assert_eq!(times, vec![0, 20_000, 40_000, 60_000, 80_000]);
            let bytes: Vec<Vec<u8>> = got.into_iter().map(|g| g.1).collect();
            assert_eq!(bytes, sent, "pieces of {piece}");
        }
    }

    /// A page of `serial` with `flags` whose body is `body` cut by `lacing`.
    fn page(serial: u32, flags: u8, lacing: &[u8], body: &[u8]) -> Vec<u8> {
        let mut p = b"OggS".to_vec();
        p.push(0);
        p.push(flags);
        p.extend_from_slice(&0u64.to_le_bytes());
        p.extend_from_slice(&serial.to_le_bytes());
        p.extend_from_slice(&0u32.to_le_bytes());
        p.extend_from_slice(&0u32.to_le_bytes());
        p.push(lacing.len() as u8);
        p.extend_from_slice(lacing);
        p.extend_from_slice(body);
        let crc = ogg_crc(&p);
        p[22..26].copy_from_slice(&crc.to_le_bytes());
        p
    }

    fn opus_head() -> Vec<u8> {
        let mut head = b"OpusHead".to_vec();
        head.extend_from_slice(&[1, 1, 0x38, 0x01, 0x80, 0xbb, 0, 0, 0, 0, 0]);
        head
    }

    #[test]
    fn a_packet_spanning_pages_and_another_stream_beside_it_are_handled() {
        let head = opus_head();
        let mut file = page(5, 0x02, &[head.len() as u8], &head);
        // Another codec's stream begins beside it, and sends a page later.
        file.extend(page(6, 0x02, &[8], b"\x80theora!"));
        file.extend(page(5, 0, &[8], b"OpusTags"));
        // A 300-byte packet: 255 on this page, 45 on the next (continued).
        let long = packet(1, 300);
        file.extend(page(5, 0, &[255], &long[..255]));
        file.extend(page(6, 0, &[3], b"xyz"));
        let short = packet(2, 10);
        let mut body = long[255..].to_vec();
        body.extend_from_slice(&short);
        file.extend(page(5, 0x01, &[45, 10], &body));
        let mut r = OggOpusReader::new();
        let got = read_all(&mut r, &file, 3);
        assert_eq!(r.channels(), Some(1));
        assert_eq!(got, vec![(0, long), (20_000, short)]);
    }

    #[test]
    fn damaged_or_foreign_bytes_are_named_with_their_place() {
        let head = opus_head();
        let mut file = page(5, 0x02, &[head.len() as u8], &head);
        let first_len = file.len() as u64;
        file.extend(page(5, 0, &[8], b"OpusTags"));
        let mut damaged = file.clone();
        let last = damaged.len() - 1;
        damaged[last] ^= 1;
        let mut r = OggOpusReader::new();
        r.push(&damaged);
        assert_eq!(r.next_packet(), Err(OggError::Checksum(first_len)));
        let mut r = OggOpusReader::new();
        r.push(b"DKIF and then some bytes that are not Ogg at all");
        assert_eq!(r.next_packet(), Err(OggError::NotOgg(0)));
        // A stream that begins with another codec only.
        let mut r = OggOpusReader::new();
        let other = page(6, 0x02, &[8], b"\x80theora!");
        r.push(&other);
        r.push(&page(6, 0, &[3], b"xyz"));
        assert_eq!(r.next_packet(), Err(OggError::NotOpus(other.len() as u64)));
        // An audio packet with no frames.
        file.extend(page(5, 0, &[2], &[0xfb, 0x00]));
        let mut r = OggOpusReader::new();
        r.push(&file);
        assert!(matches!(r.next_packet(), Err(OggError::BadPacket(_))));
    }

    #[test]
    fn packet_durations_follow_the_table_of_contents() {
        // SILK 60 ms, one frame; hybrid 10 ms, two frames; CELT 2.5 ms, three frames (code 3).
        assert_eq!(opus_packet_samples(&[3 << 3]), Some(2880));
        assert_eq!(opus_packet_samples(&[(12 << 3) | 1]), Some(960));
        assert_eq!(opus_packet_samples(&[(16 << 3) | 3, 3]), Some(360));
        // Code 3 without its count, with zero frames, or over 120 ms.
        assert_eq!(opus_packet_samples(&[(16 << 3) | 3]), None);
        assert_eq!(opus_packet_samples(&[(16 << 3) | 3, 0]), None);
        assert_eq!(opus_packet_samples(&[(3 << 3) | 3, 3]), None);
        assert_eq!(opus_packet_samples(&[]), None);
    }

    proptest! {
        #[test]
        fn any_bytes_are_read_without_panic_and_within_bounds(
            bytes in proptest::collection::vec(any::<u8>(), 0..2000),
            piece in 1usize..300,
        ) {
            // Valid headers first, so the fuzzing reaches the page and packet parsing.
            let head = opus_head();
            let mut file = page(5, 0x02, &[head.len() as u8], &head);
            file.extend(page(5, 0, &[8], b"OpusTags"));
            file.extend_from_slice(&bytes);
            let mut r = OggOpusReader::new();
            'read: for chunk in file.chunks(piece) {
                r.push(chunk);
                loop {
                    match r.next_packet() {
                        Ok(Some((_, p))) => prop_assert!(p.len() <= MAX_OGG_PACKET),
                        Ok(None) => break,
                        Err(_) => break 'read,
                    }
                }
            }
        }

        #[test]
        fn written_packets_come_back_whatever_their_sizes(
            sizes in proptest::collection::vec(2usize..1500, 1..12),
            piece in 1usize..5000,
        ) {
            let mut w = OggOpusWriter::new(3);
            let mut file = Vec::new();
            let sent: Vec<Vec<u8>> = sizes.iter().enumerate().map(|(i, &n)| packet(i as u8, n)).collect();
            for (i, p) in sent.iter().enumerate() {
                file.extend(w.packet(i as u64 * 20_000, p));
            }
            let mut r = OggOpusReader::new();
            let got: Vec<Vec<u8>> = read_all(&mut r, &file, piece).into_iter().map(|g| g.1).collect();
            prop_assert_eq!(got, sent);
        }
    }
}
