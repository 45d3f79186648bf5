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
        let samples = timestamp_us.saturating_sub(first) * 48 / 1000 + OPUS_FRAME_SAMPLES;
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
fn ogg_crc(bytes: &[u8]) -> u32 {
    let mut crc = 0u32;
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
