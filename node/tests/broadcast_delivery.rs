//! Delivery that cannot wedge, with real processes: a relay that joins after a 200 MiB stream
//! was published as fast as it reads (far more than a connection's queue holds) gets every
//! byte, and a relay killed with SIGKILL mid-stream and started again resumes from its store
//! and serves bytes identical to the source. `curl` reads what they serve; `sha256sum` checks
//! it.
//!
//! Needs ffmpeg and curl (see `broadcast.rs`).

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;

/// A stream of `size` bytes of MPEG-TS packets (sync byte, a PID, a counter, a payload that
/// differs packet by packet): a root publishing `--fast` checks only the packet framing.
fn synthetic_stream(dir: &Path, size: u64) -> PathBuf {
    let path = dir.join("large.ts");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    let mut packet = [0u8; 188];
    for i in 0..size / 188 {
        packet[0] = 0x47;
        packet[1] = 0x01;
        packet[2] = 0x00;
        packet[3] = 0x10 | (i % 16) as u8;
        for (j, b) in packet[4..].iter_mut().enumerate() {
            *b = (i as usize).wrapping_mul(31).wrapping_add(j) as u8;
        }
        out.write_all(&packet).unwrap();
    }
    out.flush().unwrap();
    path
}

/// What `node` serves from the start (curl) is the source's bytes (sha256).
async fn assert_serves(node: &Node, src: &Path, dir: &Path, what: &str) {
    let got = dir.join("served.ts");
    let url = format!("http://{}/channels/tv?here=1&from=start", node.http);
    let outcome = curl_follow(&url, &got).await;
    assert!(outcome.starts_with("200"), "{outcome}");
    assert_eq!(sha256(&got), sha256(src), "{what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_joining_after_a_large_stream_was_published_gets_every_byte() {
    if !tools(&["curl"]) {
        return;
    }
    let dir = scratch("delivery-late");
    let src = synthetic_stream(&dir, 200 << 20);
    let size = std::fs::metadata(&src).unwrap().len();
    let root = root(&dir, &src, &["--fast"], "root").await;
    // The whole stream is in the root's store (and memory) before the relay exists.
    wait_stored(&[&root], size, Duration::from_secs(120)).await;
    let started = Instant::now();
    let late = relay(&dir, &[&root], "late").await;
    let took = wait_stored(&[&late], size, Duration::from_secs(180)).await;
    let root_status = status(&root).await;
    let late_status = status(&late).await;
    println!(
        "a late relay got {size} bytes in {took:.1} s ({:.0} MB/s) after joining {:.1} s ago; \
         root sends dropped {}, relay gaps {}, root resends {}",
        size as f64 / took / 1e6,
        started.elapsed().as_secs_f64(),
        root_status["transport"]["counters"]["sends_dropped"],
        late_status["delivery"]["gaps"],
        root_status["delivery"]["resends"],
    );
    assert_serves(&late, &src, &dir, "the late relay serves the whole stream").await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_killed_and_restarted_resumes_from_its_store() {
    if !tools(&["ffmpeg", "curl"]) {
        return;
    }
    let dir = scratch("delivery-restart");
    let src = make_stream(&dir);
    let size = std::fs::metadata(&src).unwrap().len();
    // Paced at the stream's own rate: 20 seconds of it.
    let root = root(&dir, &src, &[], "root").await;
    let mut first = relay(&dir, &[&root], "relay").await;
    let wait = Instant::now();
    let held = loop {
        let stored = status(&first).await["stored"].as_u64().unwrap_or(0);
        if stored > size / 3 {
            break stored;
        }
        assert!(
            wait.elapsed() < Duration::from_secs(30),
            "the relay stored nothing"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    first.process.kill().await;
    // The same key and store: it resumes from what it held.
    let again = relay(&dir, &[&root], "relay").await;
    let resumed = status(&again).await;
    wait_stored(&[&again], size, Duration::from_secs(60)).await;
    let s = status(&again).await;
    println!(
        "killed at {held} bytes stored; restarted holding from byte {} in memory, store from {}; \
         stored {} of {size}",
        resumed["content_first"], s["first_kept"], s["stored"]
    );
    assert!(
        resumed["content_first"].as_u64().unwrap() > 0,
        "it resumed where its store ended, not from the start: {resumed}"
    );
    assert_eq!(
        s["first_kept"].as_u64(),
        Some(0),
        "it kept what it stored: {s}"
    );
    assert_serves(
        &again,
        &src,
        &dir,
        "the resumed relay serves the source's bytes",
    )
    .await;
    let _ = std::fs::remove_dir_all(&dir);
}
