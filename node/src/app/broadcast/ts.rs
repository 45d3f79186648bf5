//! MPEG transport stream input for the broadcast root: 188-byte packets, each checked for its
//! sync byte (a bad one is reported with its byte offset), and the program clock reference (PCR)
//! read from adaptation fields so a file can be paced at its own rate.

use tokio::io::{AsyncRead, AsyncReadExt};

/// Bytes in a transport-stream packet.
pub const PACKET: usize = 188;
/// The sync byte every packet starts with.
pub const SYNC: u8 = 0x47;
/// PCR ticks per second (27 MHz).
pub const PCR_HZ: f64 = 27_000_000.0;

/// Why the input is not a transport stream.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TsError {
    /// A packet did not start with the sync byte.
    #[error("not an MPEG-TS stream: byte {offset} is {found:#04x}, not the sync byte 0x47")]
    Sync {
        /// Offset of the packet in the input.
        offset: u64,
        /// The byte found there.
        found: u8,
    },
    /// The input ended inside a packet.
    #[error("the input ends inside a packet: {got} of 188 bytes at byte {offset}")]
    Truncated {
        /// Offset of the packet.
        offset: u64,
        /// Bytes of it that arrived.
        got: usize,
    },
    /// Reading failed.
    #[error("reading the input at byte {offset}: {reason}")]
    Io {
        /// Where.
        offset: u64,
        /// Why.
        reason: String,
    },
}

/// The PCR of a packet, in 27 MHz ticks, if its adaptation field carries one.
pub fn pcr(packet: &[u8]) -> Option<u64> {
    if packet.len() < 12 || packet[0] != SYNC {
        return None;
    }
    let adaptation = packet[3] & 0x20 != 0;
    if !adaptation || packet[4] < 7 || packet[5] & 0x10 == 0 {
        return None;
    }
    let b = &packet[6..12];
    let base = (u64::from(b[0]) << 25)
        | (u64::from(b[1]) << 17)
        | (u64::from(b[2]) << 9)
        | (u64::from(b[3]) << 1)
        | (u64::from(b[4]) >> 7);
    let ext = (u64::from(b[4] & 0x01) << 8) | u64::from(b[5]);
    Some(base * 300 + ext)
}

/// Whether a packet starts a video PES packet (stream id 0xE0–0xEF) at a random-access point
/// (its adaptation field's random-access indicator, which muxers set on keyframes; audio
/// frames carry it too, hence the stream id check).
pub fn opens_random_access(packet: &[u8]) -> bool {
    if packet.len() != PACKET
        || packet[0] != SYNC
        || packet[1] & 0x40 == 0
        || packet[3] & 0x30 != 0x30
        || packet[4] == 0
        || packet[5] & 0x40 == 0
    {
        return false;
    }
    let payload = 5 + usize::from(packet[4]);
    packet
        .get(payload..payload + 4)
        .is_some_and(|h| h[..3] == [0, 0, 1] && (0xe0..=0xef).contains(&h[3]))
}

/// The packet identifier (PID) of a packet, `None` unless it starts with the sync byte.
pub fn pid(packet: &[u8]) -> Option<u16> {
    match packet {
        [SYNC, b1, b2, ..] => Some((u16::from(*b1 & 0x1f) << 8) | u16::from(*b2)),
        _ => None,
    }
}

/// The payload of a packet that starts a payload unit (a PES packet or a PSI section): what
/// follows the header and the adaptation field, if any.
fn unit_payload(packet: &[u8]) -> Option<&[u8]> {
    if packet.len() != PACKET || packet[0] != SYNC || packet[1] & 0x40 == 0 {
        return None;
    }
    let start = match packet[3] & 0x30 {
        0x10 => 4,
        0x30 => 5 + usize::from(packet[4]),
        _ => return None,
    };
    packet.get(start..)
}

/// The stream id of the PES packet a packet starts, if it starts one.
fn pes_stream_id(packet: &[u8]) -> Option<u8> {
    match unit_payload(packet)? {
        [0, 0, 1, id, ..] => Some(*id),
        _ => None,
    }
}

/// Whether a packet starts a video PES packet (stream id 0xE0–0xEF): the first packet of a
/// video frame, keyframe or not.
pub fn starts_video_pes(packet: &[u8]) -> bool {
    pes_stream_id(packet).is_some_and(|id| (0xe0..=0xef).contains(&id))
}

/// The presentation time stamp (90 kHz, 33 bits) of the PES packet a packet starts, if its
/// header carries one.
pub fn pes_pts(packet: &[u8]) -> Option<u64> {
    let payload = unit_payload(packet)?;
    // Start code, stream id, length, two flag bytes (the first `10xxxxxx` when the optional
    // header is there), the header's length, then the PTS when the flags say so.
    let [0, 0, 1, _, _, _, flags1, flags2, _, b0, b1, b2, b3, b4, ..] = *payload else {
        return None;
    };
    if flags1 & 0xc0 != 0x80 || flags2 & 0x80 == 0 {
        return None;
    }
    Some(
        (u64::from((b0 >> 1) & 0x07) << 30)
            | (u64::from(b1) << 22)
            | (u64::from(b2 >> 1) << 15)
            | (u64::from(b3) << 7)
            | u64::from(b4 >> 1),
    )
}

/// The table id of the PSI section a packet starts (0x00 a program association table, 0x02
/// a program map table, 0x42 a service description table), `None` if it starts a PES packet
/// or nothing.
pub fn psi_table(packet: &[u8]) -> Option<u8> {
    let payload = unit_payload(packet)?;
    if payload.starts_with(&[0, 0, 1]) {
        return None;
    }
    let pointer = usize::from(*payload.first()?);
    payload.get(1 + pointer).copied().filter(|&t| t != 0xff)
}

/// Reads packets one at a time and says where each starts.
#[derive(Debug)]
pub struct TsReader<R> {
    input: R,
    offset: u64,
}

impl<R: AsyncRead + Unpin> TsReader<R> {
    /// A reader over `input`.
    pub fn new(input: R) -> Self {
        Self { input, offset: 0 }
    }

    /// Bytes read so far (the offset of the next packet).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The next packet, `Ok(None)` at a clean end.
    pub async fn next_packet(&mut self) -> Result<Option<[u8; PACKET]>, TsError> {
        let mut packet = [0u8; PACKET];
        let mut got = 0;
        while got < PACKET {
            match self.input.read(&mut packet[got..]).await {
                Ok(0) if got == 0 => return Ok(None),
                Ok(0) => {
                    return Err(TsError::Truncated {
                        offset: self.offset,
                        got,
                    });
                }
                Ok(n) => got += n,
                Err(e) => {
                    return Err(TsError::Io {
                        offset: self.offset + got as u64,
                        reason: e.to_string(),
                    });
                }
            }
        }
        if packet[0] != SYNC {
            return Err(TsError::Sync {
                offset: self.offset,
                found: packet[0],
            });
        }
        self.offset += PACKET as u64;
        Ok(Some(packet))
    }
}

/// Paces packets by their PCR: the first PCR seen is "now", each later one is due that much
/// later. A PCR going backwards or jumping more than ten seconds (a discontinuity, a loop)
/// restarts the clock there.
#[derive(Debug, Default)]
pub struct PcrClock {
    base: Option<(u64, tokio::time::Instant)>,
    last: u64,
}

impl PcrClock {
    /// When the packet with `pcr` is due.
    pub fn due(&mut self, pcr: u64) -> tokio::time::Instant {
        let now = tokio::time::Instant::now();
        match self.base {
            Some((p0, t0))
                if pcr >= self.last && (pcr - self.last) as f64 / PCR_HZ < 10.0 && pcr >= p0 =>
            {
                self.last = pcr;
                t0 + std::time::Duration::from_secs_f64((pcr - p0) as f64 / PCR_HZ)
            }
            _ => {
                self.base = Some((pcr, now));
                self.last = pcr;
                now
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet_with_pcr(pcr: u64) -> [u8; PACKET] {
        let mut p = [0xffu8; PACKET];
        p[0] = SYNC;
        p[1] = 0x01;
        p[2] = 0x00;
        p[3] = 0x20 | 0x10;
        p[4] = 7;
        p[5] = 0x10;
        let (base, ext) = (pcr / 300, pcr % 300);
        p[6] = (base >> 25) as u8;
        p[7] = (base >> 17) as u8;
        p[8] = (base >> 9) as u8;
        p[9] = (base >> 1) as u8;
        p[10] = (((base & 1) << 7) as u8) | 0x7e | ((ext >> 8) as u8);
        p[11] = ext as u8;
        p
    }

    #[test]
    fn the_pcr_round_trips_through_an_adaptation_field() {
        for pcr in [0, 1, 299, 300, 27_000_000 * 95_000 + 123] {
            assert_eq!(pcr_of(&packet_with_pcr(pcr)), Some(pcr));
        }
        let mut plain = [0u8; PACKET];
        plain[0] = SYNC;
        plain[3] = 0x10;
        assert_eq!(pcr_of(&plain), None);
        assert_eq!(pcr_of(&[0u8; 4]), None);
    }

    #[test]
    fn a_random_access_point_is_recognised() {
        let mut p = packet_with_pcr(0);
        p[12..16].copy_from_slice(&[0, 0, 1, 0xe0]);
        assert!(!opens_random_access(&p), "no unit start, no indicator");
        p[1] |= 0x40;
        p[5] |= 0x40;
        assert!(opens_random_access(&p));
        p[15] = 0xc0;
        assert!(!opens_random_access(&p), "an audio stream");
        p[15] = 0xe0;
        p[3] = 0x20;
        assert!(!opens_random_access(&p), "no payload");
    }

    #[test]
    fn pes_time_stamps_tables_and_video_starts_are_read_from_a_unit_start() {
        // A packet without an adaptation field starting a video PES with the largest PTS.
        let pts = (1u64 << 33) - 1;
        let mut p = [0xffu8; PACKET];
        p[..4].copy_from_slice(&[SYNC, 0x41, 0x00, 0x10]);
        p[4..18].copy_from_slice(&[
            0,
            0,
            1,
            0xe0,
            0,
            0,
            0x80,
            0x80,
            5,
            0x21 | ((pts >> 29) & 0x0e) as u8,
            (pts >> 22) as u8,
            ((pts >> 14) as u8) | 1,
            (pts >> 7) as u8,
            ((pts << 1) as u8) | 1,
        ]);
        assert_eq!(pid(&p), Some(0x100));
        assert_eq!(pes_pts(&p), Some(pts));
        assert!(starts_video_pes(&p));
        assert_eq!(psi_table(&p), None);
        // Without the PTS flag, or as the middle of a unit, no time stamp.
        let mut q = p;
        q[11] = 0;
        assert_eq!(pes_pts(&q), None);
        q = p;
        q[1] &= !0x40;
        assert_eq!((pes_pts(&q), starts_video_pes(&q)), (None, false));
        // A PMT section after a pointer field of 2.
        let mut t = [0xffu8; PACKET];
        t[..4].copy_from_slice(&[SYNC, 0x50, 0x00, 0x10]);
        t[4..8].copy_from_slice(&[2, 0xaa, 0xbb, 0x02]);
        assert_eq!((pid(&t), psi_table(&t)), (Some(0x1000), Some(0x02)));
        assert!(!starts_video_pes(&t));
        assert_eq!(pid(&[0x46, 0, 0]), None);
        assert_eq!(psi_table(&[SYNC, 0x40, 0, 0x10]), None);
    }

    fn pcr_of(p: &[u8]) -> Option<u64> {
        pcr(p)
    }

    #[tokio::test]
    async fn bad_input_is_named_with_its_offset() {
        let mut good = Vec::new();
        good.extend(packet_with_pcr(0));
        good.extend(packet_with_pcr(27_000));
        let mut r = TsReader::new(good.as_slice());
        assert!(r.next_packet().await.unwrap().is_some());
        assert!(r.next_packet().await.unwrap().is_some());
        assert_eq!(r.next_packet().await.unwrap(), None);
        let mut bad = good.clone();
        bad[PACKET] = b'G' + 1;
        let mut r = TsReader::new(bad.as_slice());
        r.next_packet().await.unwrap();
        assert_eq!(
            r.next_packet().await.unwrap_err(),
            TsError::Sync {
                offset: 188,
                found: 0x48
            }
        );
        let cut = &good[..300];
        let mut r = TsReader::new(cut);
        r.next_packet().await.unwrap();
        assert_eq!(
            r.next_packet().await.unwrap_err(),
            TsError::Truncated {
                offset: 188,
                got: 112
            }
        );
        let mut r = TsReader::new(&b"#EXTM3U\n"[..]);
        assert!(matches!(
            r.next_packet().await,
            Err(TsError::Truncated { .. })
        ));
    }

    #[tokio::test]
    async fn the_clock_follows_the_pcr_and_restarts_on_a_jump() {
        let mut c = PcrClock::default();
        let t0 = c.due(1_000_000);
        let t1 = c.due(1_000_000 + 27_000_000);
        assert_eq!(t1 - t0, std::time::Duration::from_secs(1));
        // Backwards: a new base, due now.
        let t2 = c.due(5);
        assert!(t2 <= tokio::time::Instant::now());
    }
}
