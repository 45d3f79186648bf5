//! MPEG-TS as a broadcast root ingests it: packets read off the input (resynchronising on
//! garbage), each packet's PCR, PID, PES and PSI facts, and the HLS segmenter cutting them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use node::app::broadcast::ts;

fuzz_target!(|data: &[u8]| {
    esm_fuzz::block_on(async {
        let mut reader = ts::TsReader::new(data);
        let mut segmenter = node::edge::hls::Segmenter::new(0, 180_000);
        let mut offset = 0u64;
        while let Ok(Some(packet)) = reader.next_packet().await {
            let _ = ts::pcr(&packet);
            let _ = ts::pid(&packet);
            let _ = ts::pes_pts(&packet);
            let _ = ts::psi_table(&packet);
            let _ = ts::opens_random_access(&packet);
            let facts = node::app::broadcast::hls::packet_facts(&packet);
            let _ = segmenter.push(offset, &packet, &facts);
            offset += packet.len() as u64;
        }
        let _ = segmenter.finish();
    });
});
