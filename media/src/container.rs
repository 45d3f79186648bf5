//! Files a recording member writes, so tools nobody here wrote (ffprobe, ffplay, VLC) read a
//! source back: IVF for VP8, VP9 and AV1 video, and Ogg for Opus audio (RFC 7845). H.264 needs
//! no container (its Annex B byte stream is the file). Only bytes are made here; the caller
//! writes them.

/// An IVF file: a 32-byte header, then each frame with a 12-byte header.
#[derive(Clone, Debug)]
pub struct IvfWriter {
    started: bool,
    fourcc: [u8; 4],
}

/// The timebase of IVF timestamps written here: microseconds.
const IVF_TIMEBASE: u32 = 1_000_000;

impl IvfWriter {
    /// A writer for `fourcc` (`VP80`, `VP90` or `AV01`).
    pub fn new(fourcc: [u8; 4]) -> Self {
        Self {
            started: false,
            fourcc,
        }
    }

    /// The bytes to append for a frame captured at `timestamp_us` (the file header first, with
    /// the picture size read from a VP8 keyframe where it can be).
    pub fn frame(&mut self, timestamp_us: u64, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(44 + data.len());
        if !self.started {
            self.started = true;
            let (w, h) = if &self.fourcc == b"VP80" {
                vp8_size(data).unwrap_or((0, 0))
            } else {
                (0, 0)
            };
            out.extend_from_slice(b"DKIF");
            out.extend_from_slice(&0u16.to_le_bytes());
            out.extend_from_slice(&32u16.to_le_bytes());
            out.extend_from_slice(&self.fourcc);
            out.extend_from_slice(&w.to_le_bytes());
            out.extend_from_slice(&h.to_le_bytes());
            out.extend_from_slice(&IVF_TIMEBASE.to_le_bytes());
            out.extend_from_slice(&1u32.to_le_bytes());
            out.extend_from_slice(&0u32.to_le_bytes());
            out.extend_from_slice(&0u32.to_le_bytes());
        }
        let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&timestamp_us.to_le_bytes());
        out.extend_from_slice(&data[..len as usize]);
        out
    }
}

/// A VP8 keyframe's picture size (RFC 6386 §9.1), if `frame` is one.
pub fn vp8_size(frame: &[u8]) -> Option<(u16, u16)> {
    let keyframe = frame.first()? & 1 == 0;
    if !keyframe || frame.get(3..6)? != [0x9d, 0x01, 0x2a] {
        return None;
    }
    let w = u16::from_le_bytes([*frame.get(6)?, *frame.get(7)?]) & 0x3fff;
    let h = u16::from_le_bytes([*frame.get(8)?, *frame.get(9)?]) & 0x3fff;
    Some((w, h))
}

/// An Ogg Opus stream (RFC 7845): the identification and comment headers, then one packet
/// per page with its granule position in 48 kHz samples.
#[derive(Clone, Debug)]
pub struct OggOpusWriter {
    serial: u32,
    page: u32,
    first_us: Option<u64>,
}

/// Samples of one Opus frame as browsers send it (20 ms at 48 kHz), for the last packet's end.
const OPUS_FRAME_SAMPLES: u64 = 960;

impl OggOpusWriter {
    /// A writer whose stream has serial number `serial`.
    pub fn new(serial: u32) -> Self {
        Self {
            serial,
            page: 0,
            first_us: None,
        }
    }

    /// The bytes to append for an Opus packet captured at `timestamp_us` (the two header
    /// pages first).
    pub fn packet(&mut self, timestamp_us: u64, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let first = *self.first_us.get_or_insert(timestamp_us);
        if self.page == 0 {
            let mut head = b"OpusHead".to_vec();
            head.push(1); // version
            head.push(2); // channels
            head.extend_from_slice(&0u16.to_le_bytes()); // pre-skip
            head.extend_from_slice(&48_000u32.to_le_bytes());
            head.extend_from_slice(&0i16.to_le_bytes()); // gain
            head.push(0); // mapping family
            out.extend(self.page_of(&head, 0, 0x02));
            let vendor = b"esm";
            let mut tags = b"OpusTags".to_vec();
            tags.extend_from_slice(&(vendor.len() as u32).to_le_bytes());
            tags.extend_from_slice(vendor);
            tags.extend_from_slice(&0u32.to_le_bytes());
            out.extend(self.page_of(&tags, 0, 0));
        }
        let samples = (timestamp_us.saturating_sub(first).saturating_mul(48) / 1000)
            .saturating_add(OPUS_FRAME_SAMPLES);
        out.extend(self.page_of(data, samples, 0));
        out
    }

    /// One page holding `packet` (up to 255 × 255 bytes; the rest of a longer one is cut).
    fn page_of(&mut self, packet: &[u8], granule: u64, flags: u8) -> Vec<u8> {
        let packet = &packet[..packet.len().min(255 * 255 - 1)];
        let mut lacing = vec![255u8; packet.len() / 255];
        lacing.push((packet.len() % 255) as u8);
        let mut page = Vec::with_capacity(27 + lacing.len() + packet.len());
        page.extend_from_slice(b"OggS");
        page.push(0);
        page.push(flags);
        page.extend_from_slice(&granule.to_le_bytes());
        page.extend_from_slice(&self.serial.to_le_bytes());
        page.extend_from_slice(&self.page.to_le_bytes());
        page.extend_from_slice(&0u32.to_le_bytes());
        page.push(lacing.len() as u8);
        page.extend_from_slice(&lacing);
        page.extend_from_slice(packet);
        let crc = ogg_crc(&page);
        page[22..26].copy_from_slice(&crc.to_le_bytes());
        self.page += 1;
        page
    }
}

/// Ogg's CRC-32: polynomial 0x04c11db7, initial 0, no reflection, no final xor.
pub(crate) fn ogg_crc(bytes: &[u8]) -> u32 {
    crc32_msb_first(0, bytes)
}

/// The CRC-32 of polynomial 0x04c11db7 computed most significant bit first, without
/// reflection or a final xor, from `initial`: Ogg's (from 0) and MPEG-TS tables' (from all
/// ones) differ only there.
pub(crate) fn crc32_msb_first(initial: u32, bytes: &[u8]) -> u32 {
    let mut crc = initial;
    for &b in bytes {
        crc ^= u32::from(b) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 {
                (crc << 1) ^ 0x04c1_1db7
            } else {
                crc << 1
            };
        }
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ivf_starts_with_its_header_and_reads_a_vp8_keyframes_size() {
        let keyframe = [
            0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0x68, 0x01, 7, 7,
        ];
        assert_eq!(vp8_size(&keyframe), Some((640, 360)));
        let mut w = IvfWriter::new(*b"VP80");
        let first = w.frame(0, &keyframe);
        assert_eq!(&first[..4], b"DKIF");
        assert_eq!(u16::from_le_bytes([first[12], first[13]]), 640);
        assert_eq!(first.len(), 32 + 12 + keyframe.len());
        let second = w.frame(33_333, &[1, 2, 3]);
        assert_eq!(second.len(), 12 + 3);
        assert_eq!(
            u64::from_le_bytes(second[4..12].try_into().unwrap()),
            33_333
        );
    }

    #[test]
    fn ogg_pages_carry_the_crc_and_granule_of_their_packets() {
        // The CRC of "OggS" pages is the one libogg computes: check a known value.
        assert_eq!(ogg_crc(b"123456789"), 0x89a1_897f);
        let mut w = OggOpusWriter::new(7);
        let start = w.packet(1_000_000, &[0xfc; 300]);
        assert_eq!(&start[..4], b"OggS");
        assert_eq!(start[5], 0x02, "the first page begins the stream");
        assert_eq!(&start[28..36], b"OpusHead");
        let next = w.packet(1_020_000, &[0xfc; 10]);
        // One page: header, 1 lacing value, 10 bytes; granule 20 ms + one frame.
        assert_eq!(next.len(), 27 + 1 + 10);
        assert_eq!(
            u64::from_le_bytes(next[6..14].try_into().unwrap()),
            960 + 960
        );
        let mut zeroed = next.clone();
        zeroed[22..26].copy_from_slice(&[0; 4]);
        assert_eq!(ogg_crc(&zeroed).to_le_bytes(), next[22..26]);
    }
}

/// Why bytes are not an IVF file.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IvfError {
    /// The file does not start with an IVF header.
    #[error("not an IVF file (no DKIF header)")]
    NotIvf,
    /// The header's length is outside 32..=1024.
    #[error("IVF header length {0}")]
    HeaderLength(u16),
    /// The header's timebase has a zero.
    #[error("IVF timebase {0}/{1}")]
    Timebase(u32, u32),
    /// A frame is larger than [`MAX_IVF_FRAME`].
    #[error("IVF frame of {0} bytes (at most {MAX_IVF_FRAME})")]
    FrameTooLarge(u32),
}

/// Largest IVF frame taken.
pub const MAX_IVF_FRAME: u32 = 8 << 20;

/// An IVF file's header fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IvfHeader {
    /// The codec's four characters (`VP80`, `VP90`, `AV01`).
    pub fourcc: [u8; 4],
    /// Timestamps are in units of `numerator / denominator` seconds.
    pub numerator: u32,
    /// See `numerator`.
    pub denominator: u32,
}

/// Reads an IVF stream as its bytes come (a file, or a pipe from ffmpeg): frames with their
/// timestamps in microseconds. Total: bad bytes give an error, never a panic, and nothing
/// larger than [`MAX_IVF_FRAME`] is held.
#[derive(Clone, Debug, Default)]
pub struct IvfReader {
    buffer: Vec<u8>,
    header: Option<IvfHeader>,
}

impl IvfReader {
    /// An empty reader.
    pub fn new() -> Self {
        Self::default()
    }

    /// More bytes of the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    /// The header, once read.
    pub fn header(&self) -> Option<IvfHeader> {
        self.header
    }

    /// The next whole frame (timestamp in microseconds, bytes), if its bytes have all come.
    pub fn next_frame(&mut self) -> Result<Option<(u64, Vec<u8>)>, IvfError> {
        let header = match self.header {
            Some(h) => h,
            None => {
                if self.buffer.len() < 32 {
                    return Ok(None);
                }
                if &self.buffer[..4] != b"DKIF" {
                    return Err(IvfError::NotIvf);
                }
                let len = u16::from_le_bytes([self.buffer[6], self.buffer[7]]);
                if !(32..=1024).contains(&len) {
                    return Err(IvfError::HeaderLength(len));
                }
                if self.buffer.len() < usize::from(len) {
                    return Ok(None);
                }
                let word = |at: usize| {
                    u32::from_le_bytes([
                        self.buffer[at],
                        self.buffer[at + 1],
                        self.buffer[at + 2],
                        self.buffer[at + 3],
                    ])
                };
                let (denominator, numerator) = (word(16), word(20));
                if denominator == 0 || numerator == 0 {
                    return Err(IvfError::Timebase(numerator, denominator));
                }
                let header = IvfHeader {
                    fourcc: [
                        self.buffer[8],
                        self.buffer[9],
                        self.buffer[10],
                        self.buffer[11],
                    ],
                    numerator,
                    denominator,
                };
                self.buffer.drain(..usize::from(len));
                self.header = Some(header);
                header
            }
        };
        if self.buffer.len() < 12 {
            return Ok(None);
        }
        let size = u32::from_le_bytes([
            self.buffer[0],
            self.buffer[1],
            self.buffer[2],
            self.buffer[3],
        ]);
        if size > MAX_IVF_FRAME {
            return Err(IvfError::FrameTooLarge(size));
        }
        let end = 12 + size as usize;
        if self.buffer.len() < end {
            return Ok(None);
        }
        let mut pts = [0u8; 8];
        pts.copy_from_slice(&self.buffer[4..12]);
        let pts = u64::from_le_bytes(pts);
        let us = u128::from(pts) * u128::from(header.numerator) * 1_000_000
            / u128::from(header.denominator);
        let data = self.buffer[12..end].to_vec();
        self.buffer.drain(..end);
        Ok(Some((u64::try_from(us).unwrap_or(u64::MAX), data)))
    }
}

#[cfg(test)]
mod reader_tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn what_the_writer_wrote_the_reader_reads_back_in_any_pieces() {
        let mut w = IvfWriter::new(*b"VP80");
        let mut file = w.frame(0, &[0x10, 1, 2]);
        file.extend(w.frame(40_000, &[0x11, 3]));
        let mut r = IvfReader::new();
        let mut got = Vec::new();
        for piece in file.chunks(5) {
            r.push(piece);
            while let Some(f) = r.next_frame().unwrap() {
                got.push(f);
            }
        }
        assert_eq!(r.header().unwrap().fourcc, *b"VP80");
        assert_eq!(got, vec![(0, vec![0x10, 1, 2]), (40_000, vec![0x11, 3])]);
    }

    proptest! {
        #[test]
        fn any_bytes_are_read_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let mut r = IvfReader::new();
            let mut with_header = b"DKIF\0\0\x20\0VP80".to_vec();
            with_header.extend_from_slice(&bytes);
            r.push(&with_header);
            for _ in 0..50 {
                match r.next_frame() {
                    Ok(Some(_)) => {}
                    Ok(None) | Err(_) => break,
                }
            }
        }
    }
}
