//! Files (or ffmpeg's pipes) a conference member sends: MPEG-TS (H.264 and Opus), IVF video and
//! Ogg Opus sound, fed to their readers in pieces of the sizes the input's first byte picks, as
//! a pipe delivers them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use media::{IvfReader, MpegTsReader, OggOpusReader};

fuzz_target!(|data: &[u8]| {
    let Some((&piece, data)) = data.split_first() else {
        return;
    };
    let piece = usize::from(piece).max(1) * 16;
    let mut ivf = IvfReader::new();
    let mut ogg = OggOpusReader::new();
    let mut ts = MpegTsReader::new();
    let (mut ivf_failed, mut ogg_failed, mut ts_failed) = (false, false, false);
    let mut ts_bytes = 0usize;
    for chunk in data.chunks(piece) {
        if !ts_failed {
            ts.push(chunk);
            loop {
                match ts.next_frame() {
                    // Frames never hold more than the bytes that came.
                    Ok(Some(frame)) => {
                        ts_bytes += frame.data.len();
                        assert!(ts_bytes <= data.len());
                    }
                    Ok(None) => break,
                    Err(_) => {
                        ts_failed = true;
                        break;
                    }
                }
            }
        }
        if !ivf_failed {
            ivf.push(chunk);
            loop {
                match ivf.next_frame() {
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(_) => {
                        ivf_failed = true;
                        break;
                    }
                }
            }
        }
        if !ogg_failed {
            ogg.push(chunk);
            loop {
                match ogg.next_packet() {
                    Ok(Some((_, packet))) => assert!(packet.len() <= media::MAX_OGG_PACKET),
                    Ok(None) => break,
                    Err(_) => {
                        ogg_failed = true;
                        break;
                    }
                }
            }
        }
    }
    if !ts_failed && ts.end().is_ok() {
        while let Ok(Some(frame)) = ts.next_frame() {
            ts_bytes += frame.data.len();
            assert!(ts_bytes <= data.len());
        }
    }
});
