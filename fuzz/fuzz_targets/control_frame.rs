//! A control stream as a member reads it: length-prefixed frames one after another, before
//! admission (the small limit) and after (the full limit), until the bytes end or one fails.
#![no_main]

use libfuzzer_sys::fuzz_target;
use node::transport::frame::{ADMISSION_FRAME_LIMIT, Frame, read_frame, read_frame_within};

fuzz_target!(|data: &[u8]| {
    esm_fuzz::block_on(async {
        let mut r = data;
        let _ = read_frame_within::<(), _>(&mut r, ADMISSION_FRAME_LIMIT).await;
        let mut r = data;
        for _ in 0..64 {
            let frame: Result<Frame<narada::Message>, _> = read_frame(&mut r).await;
            if frame.is_err() {
                break;
            }
        }
    });
});
