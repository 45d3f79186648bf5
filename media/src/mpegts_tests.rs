use proptest::prelude::*;

use super::*;

const VIDEO: u16 = 0x100;
const AUDIO: u16 = 0x101;
const AAC: u16 = 0x102;
const PMT: u16 = 0x1000;

/// A tiny multiplexer, as ffmpeg lays a stream out: tables, then PES packets cut into
/// 184-byte payloads, the last padded with an adaptation field.
#[derive(Default)]
struct Mux {
    counters: BTreeMap<u16, u8>,
    out: Vec<u8>,
}

impl Mux {
    fn packets(&mut self, pid: u16, bytes: &[u8]) {
        for (i, chunk) in bytes.chunks(184).enumerate() {
            let counter = self.counters.entry(pid).or_insert(0);
            let mut p = vec![SYNC, (pid >> 8) as u8, pid as u8, 0x10 | *counter];
            *counter = (*counter + 1) & 0x0f;
            if i == 0 {
                p[1] |= 0x40;
            }
            if chunk.len() < 184 {
                p[3] |= 0x20;
                let stuffing = 184 - chunk.len() - 1;
                p.push(stuffing as u8);
                if stuffing > 0 {
                    p.push(0);
                    p.extend(std::iter::repeat_n(0xff, stuffing - 1));
                }
            }
            p.extend_from_slice(chunk);
            assert_eq!(p.len(), TS_PACKET);
            self.out.extend(p);
        }
    }

    fn section(&mut self, pid: u16, table: u8, body: &[u8]) {
        let length = 5 + body.len() + 4;
        let mut s = vec![
            table,
            0xb0 | (length >> 8) as u8,
            length as u8,
            0,
            1,
            0xc1,
            0,
            0,
        ];
        s.extend_from_slice(body);
        let crc = mpeg_crc(&s);
        s.extend(crc.to_be_bytes());
        let mut payload = vec![0];
        payload.extend(s);
        self.packets(pid, &payload);
    }

    fn tables(&mut self) {
        self.section(0, 0, &[0, 1, 0xe0 | (PMT >> 8) as u8, PMT as u8]);
        let mut pmt = vec![0xe1, 0x00, 0xf0, 0];
        pmt.extend([0x1b, 0xe1, 0x00, 0xf0, 0]);
        pmt.extend([
            0x06, 0xe1, 0x01, 0xf0, 10, 5, 4, b'O', b'p', b'u', b's', 0x7f, 2, 0x80, 2,
        ]);
        pmt.extend([0x0f, 0xe1, 0x02, 0xf0, 0]);
        self.section(PMT, 2, &pmt);
    }

    fn pes(&mut self, pid: u16, pts: u64, dts: Option<u64>, body: &[u8]) {
        let video = pid == VIDEO;
        let header = if dts.is_some() { 10 } else { 5 };
        let mut pes = vec![0, 0, 1, if video { 0xe0 } else { 0xbd }];
        let length = if video { 0 } else { 3 + header + body.len() };
        pes.extend((length as u16).to_be_bytes());
        pes.extend([0x80, if dts.is_some() { 0xc0 } else { 0x80 }, header as u8]);
        pes.extend(stamp(if dts.is_some() { 0x31 } else { 0x21 }, pts));
        if let Some(dts) = dts {
            pes.extend(stamp(0x11, dts));
        }
        pes.extend_from_slice(body);
        self.packets(pid, &pes);
    }
}

fn stamp(prefix: u8, t: u64) -> [u8; 5] {
    [
        prefix | ((t >> 29) & 0x0e) as u8,
        (t >> 22) as u8,
        ((t >> 14) as u8) | 1,
        (t >> 7) as u8,
        ((t << 1) as u8) | 1,
    ]
}

/// An access unit of `size` bytes: an IDR picture or a delta picture.
fn access_unit(idr: bool, size: usize) -> Vec<u8> {
    let mut unit = vec![0, 0, 0, 1, 0x09, 0xf0, 0, 0, 0, 1];
    unit.push(if idr { 0x65 } else { 0x41 });
    unit.extend((0..size).map(|i| (i % 251) as u8 | 0x80));
    unit
}

/// Opus packets of 20 ms (TOC config 31, one frame), each after its control header.
fn opus_body(packets: &[&[u8]]) -> Vec<u8> {
    let mut body = Vec::new();
    for p in packets {
        body.extend([0x7f, 0xe0]);
        let mut size = p.len();
        while size >= 255 {
            body.push(0xff);
            size -= 255;
        }
        body.push(size as u8);
        body.extend_from_slice(p);
    }
    body
}

fn read_all(stream: &[u8], chunk: usize) -> Result<Vec<Frame>, MpegTsError> {
    let mut reader = MpegTsReader::new();
    let mut frames = Vec::new();
    for part in stream.chunks(chunk.max(1)) {
        reader.push(part);
        while let Some(f) = reader.next_frame()? {
            frames.push(f);
        }
    }
    reader.end()?;
    while let Some(f) = reader.next_frame()? {
        frames.push(f);
    }
    Ok(frames)
}

/// Three video frames at 25 fps (an IDR over several packets first) and two audio PES of two
/// 20 ms packets each (one longer than 255 bytes), starting at ffmpeg's 1.4 s.
fn sample() -> (Vec<u8>, Vec<Vec<u8>>) {
    let mut mux = Mux::default();
    mux.tables();
    let t0 = 126_000;
    let a0 = [0xf8u8, 1, 2, 3];
    let a1: Vec<u8> = std::iter::once(0xf8)
        .chain((0..300).map(|i| i as u8))
        .collect();
    let units = vec![
        access_unit(true, 900),
        access_unit(false, 50),
        access_unit(false, 60),
    ];
    mux.pes(VIDEO, t0, None, &units[0]);
    mux.pes(AUDIO, t0, None, &opus_body(&[&a0, &a1]));
    mux.pes(VIDEO, t0 + 3600, None, &units[1]);
    mux.pes(AUDIO, t0 + 3600, None, &opus_body(&[&a0, &a0]));
    mux.pes(VIDEO, t0 + 7200, None, &units[2]);
    mux.tables();
    (mux.out, units)
}

#[test]
fn video_and_opus_come_out_with_their_times_and_the_rest_is_listed() {
    let (stream, units) = sample();
    let frames = read_all(&stream, stream.len()).unwrap();
    let seen: Vec<(Codec, u64, bool, usize)> = frames
        .iter()
        .map(|f| (f.codec, f.timestamp_us, f.keyframe, f.data.len()))
        .collect();
    let t0 = (PTS_WRAP + 126_000) * 1_000 / 90;
    assert_eq!(
        seen,
        vec![
            (Codec::Opus, t0, false, 4),
            (Codec::Opus, t0 + 20_000, false, 301),
            (Codec::H264, t0, true, units[0].len()),
            (Codec::Opus, t0 + 40_000, false, 4),
            (Codec::Opus, t0 + 60_000, false, 4),
            (Codec::H264, t0 + 40_000, false, units[1].len()),
            (Codec::H264, t0 + 80_000, false, units[2].len()),
        ]
    );
    assert_eq!(frames[2].data, units[0]);
    let mut reader = MpegTsReader::new();
    reader.push(&stream);
    while reader.next_frame().unwrap().is_some() {}
    assert!(reader.has_streams());
    assert_eq!(reader.skipped().collect::<Vec<_>>(), vec![(AAC, 0x0f)]);
}

#[test]
fn any_cut_of_the_bytes_gives_the_same_frames() {
    let (stream, _) = sample();
    let whole = read_all(&stream, stream.len()).unwrap();
    for chunk in [1, 7, 187, 188, 189, 1000] {
        assert_eq!(
            read_all(&stream, chunk).unwrap(),
            whole,
            "chunks of {chunk}"
        );
    }
}

#[test]
fn time_goes_on_across_the_33_bit_wrap() {
    let mut mux = Mux::default();
    mux.tables();
    let last = PTS_WRAP - 1800;
    mux.pes(VIDEO, last, None, &access_unit(true, 10));
    mux.pes(VIDEO, 1800, None, &access_unit(false, 10));
    mux.pes(VIDEO, 5400, None, &access_unit(false, 10));
    let frames = read_all(&mux.out, 4096).unwrap();
    let times: Vec<u64> = frames.iter().map(|f| f.timestamp_us).collect();
    assert_eq!(times[1] - times[0], 40_000);
    assert_eq!(times[2] - times[1], 40_000);
}

#[test]
fn reordered_video_is_refused_with_the_fix() {
    let mut mux = Mux::default();
    mux.tables();
    mux.pes(VIDEO, 9000, Some(5400), &access_unit(true, 10));
    mux.pes(VIDEO, 12600, Some(9000), &access_unit(false, 10));
    let err = read_all(&mux.out, 4096).unwrap_err();
    assert_eq!(err, MpegTsError::Reordered { at: 376 });
    assert!(err.to_string().contains("-bf 0"), "{err}");
    // A DTS equal to the PTS is no reordering.
    let mut mux = Mux::default();
    mux.tables();
    mux.pes(VIDEO, 9000, Some(9000), &access_unit(true, 10));
    assert_eq!(read_all(&mux.out, 4096).unwrap().len(), 1);
}

#[test]
fn a_unit_that_lost_a_packet_is_dropped_and_counted() {
    let mut mux = Mux::default();
    mux.tables();
    mux.pes(VIDEO, 0, None, &access_unit(true, 600));
    mux.pes(VIDEO, 3600, None, &access_unit(false, 10));
    mux.pes(VIDEO, 7200, None, &access_unit(false, 10));
    let mut stream = mux.out;
    // The IDR's second packet (after the two tables' packets and its first) is lost.
    stream.drain(3 * TS_PACKET..4 * TS_PACKET);
    let mut reader = MpegTsReader::new();
    reader.push(&stream);
    let mut frames = Vec::new();
    while let Some(f) = reader.next_frame().unwrap() {
        frames.push(f);
    }
    reader.end().unwrap();
    while let Some(f) = reader.next_frame().unwrap() {
        frames.push(f);
    }
    assert_eq!(reader.damaged(), 1);
    assert_eq!(frames.len(), 2);
    assert!(frames.iter().all(|f| !f.keyframe));
}

#[test]
fn bad_bytes_are_named_with_where_they_are() {
    let (stream, _) = sample();
    let mut bad = stream.clone();
    bad[2 * TS_PACKET] = 0x48;
    assert_eq!(
        read_all(&bad, 4096).unwrap_err(),
        MpegTsError::Sync {
            at: 376,
            found: 0x48
        }
    );
    let cut = &stream[..stream.len() - 100];
    assert_eq!(
        read_all(cut, 4096).unwrap_err(),
        MpegTsError::Truncated {
            at: (stream.len() - TS_PACKET) as u64,
            got: 88
        }
    );
    let mut crc = stream.clone();
    crc[2 * TS_PACKET - 10] ^= 1; // inside the PMT section, at its end
    let err = read_all(&crc, 4096).unwrap_err();
    assert!(
        err.to_string().contains("PMT") && err.to_string().contains("CRC"),
        "{err}"
    );
    let mut mux = Mux::default();
    mux.tables();
    mux.pes(AUDIO, 0, None, &[0x12, 0x34, 0x56]);
    let err = read_all(&mux.out, 4096).unwrap_err();
    assert!(err.to_string().contains("control header"), "{err}");
    assert!(err.to_string().contains("PID 257"), "{err}");
}

#[test]
fn a_stream_without_h264_or_opus_gives_nothing_and_says_what_it_had() {
    let mut mux = Mux::default();
    mux.section(0, 0, &[0, 1, 0xe0 | (PMT >> 8) as u8, PMT as u8]);
    mux.section(
        PMT,
        2,
        &[
            0xe1, 0, 0xf0, 0, 0x0f, 0xe1, 0x02, 0xf0, 0, 0x24, 0xe1, 0x03, 0xf0, 0,
        ],
    );
    mux.pes(AAC, 0, None, &[1, 2, 3]);
    let mut reader = MpegTsReader::new();
    reader.push(&mux.out);
    assert_eq!(reader.next_frame().unwrap(), None);
    assert!(!reader.has_streams());
    assert_eq!(
        reader.skipped().collect::<Vec<_>>(),
        vec![(AAC, 0x0f), (0x103, 0x24)]
    );
}

#[test]
fn an_audio_pes_over_its_cap_is_refused() {
    let mut mux = Mux::default();
    mux.tables();
    let one = [0xf8u8, 1, 2, 3];
    let many: Vec<&[u8]> = std::iter::repeat_n(&one[..], MAX_TS_AUDIO_UNIT / 7 + 10).collect();
    // The PES length field cannot say this much: written without one, as video's are.
    let mut pes = vec![0, 0, 1, 0xbd, 0, 0, 0x80, 0x80, 5];
    pes.extend(stamp(0x21, 0));
    pes.extend(opus_body(&many));
    mux.packets(AUDIO, &pes);
    let err = read_all(&mux.out, 1 << 20).unwrap_err();
    assert!(
        matches!(
            err,
            MpegTsError::UnitTooLarge {
                pid: AUDIO,
                limit: MAX_TS_AUDIO_UNIT,
                ..
            }
        ),
        "{err}"
    );
}

proptest! {
    #[test]
    fn any_bytes_give_frames_or_an_error_never_a_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..3000),
        chunk in 1usize..400,
    ) {
        if let Ok(frames) = read_all(&bytes, chunk) {
            // Frames never hold more than the bytes that came.
            prop_assert!(frames.iter().map(|f| f.data.len()).sum::<usize>() <= bytes.len());
        }
    }

    #[test]
    fn a_damaged_stream_never_panics(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..20),
        chunk in 1usize..400,
    ) {
        let (mut stream, _) = sample();
        for (at, byte) in flips {
            let i = at.index(stream.len());
            stream[i] = byte;
        }
        // Sync bytes kept, so the damage reaches the tables and units.
        for p in stream.chunks_mut(TS_PACKET) {
            p[0] = SYNC;
        }
        if let Ok(frames) = read_all(&stream, chunk) {
            prop_assert!(frames.iter().map(|f| f.data.len()).sum::<usize>() <= stream.len());
        }
    }
}
