//! A watching browser whose own leg from its member narrows: headless Chromium watches, through
//! member b, a browser publishing at member a in two temporal layers; b lives in a network
//! namespace of its own and the kernel shapes what b's WebRTC socket sends (tc htb on b's end
//! of the veth pair, matched by source port), so only the leg to the watching browser is slow.
//! b's estimate of that leg (str0m's send-side estimator on the browser's transport-wide
//! feedback) must make it withhold the upper layer while the leg is narrow, the browser must
//! keep decoding the base layer without long freezes, and the upper layer must come back when
//! the leg widens.
//!
//! Needs root, iproute2 (`ip`, `tc`), ffmpeg (a noisy test video for the fake camera, so the
//! encoder sends a stream that fills the layers) and chromium; SKIPPED without them unless
//! `ESM_REQUIRE_NETNS` and `ESM_REQUIRE_CHROMIUM` are set.

mod conference_common;
mod slow_link;

use std::time::{Duration, Instant};

use node::demo::process::MemberProcess;
use node::transport::admission::GroupSecret;
use overlay_core::NodeId;
use tokio::process::Command;

use conference_common::chromium::Chromium;
use conference_common::*;
use slow_link::SlowLink;

fn tools_here() -> bool {
    let root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    let have = |tool: &str| {
        std::process::Command::new(tool)
            .arg("-V")
            .output()
            .is_ok()
    };
    let here = root && have("ip") && have("tc") && have("ffmpeg");
    if !here {
        assert!(
            std::env::var_os("ESM_REQUIRE_NETNS").is_none(),
            "root, ip, tc and ffmpeg are required here"
        );
        eprintln!("SKIPPED: needs root, ip, tc and ffmpeg");
    }
    here
}

async fn member(dir: &std::path::Path, netns: Option<&str>, ip: &str, extra: &[&str]) -> MemberProcess {
    let esm = env!("CARGO_BIN_EXE_esm");
    let cmd = match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, esm]);
            c
        }
        None => Command::new(esm),
    };
    slow_link::conference_member(cmd, GROUP, SECRET, dir, ip, extra).await
}

/// b's browser counters: (upper-layer frames withheld so far, watchers on the base layer now).
async fn layer_counters(b: &MemberProcess) -> (u64, u64) {
    let s = b.status().await.unwrap_or_else(|e| panic!("b's status: {e}"));
    let e = s.browsers.unwrap_or_default();
    (e.enhancement_frames_withheld, e.watchers_on_base)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_whose_leg_narrows_gets_the_base_layer_and_every_layer_again_when_it_widens() {
    if !tools_here() || !chromium_here() {
        return;
    }
    let dir = scratch("esm-browser-leg");
    // A noisy picture: the encoder fills what its estimate allows, so the upper layer is a
    // real share of the stream.
    let video = dir.join("noisy.y4m");
    let made = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg("testsrc2=size=640x360:rate=20,noise=alls=25:allf=t")
        .args(["-t", "3", "-pix_fmt", "yuv420p"])
        .arg(&video)
        .status()
        .unwrap();
    assert!(made.success());
    let link = SlowLink::new(232, "leg");
    let webrtc_port = 20_000 + (std::process::id() % 20_000) as u16;
    let a = member(&dir, None, &link.near_ip, &[]).await;
    let join = a.quic.to_string();
    let webrtc = format!("{}:{webrtc_port}", link.far_ip);
    let b = member(
        &dir,
        Some(&link.netns),
        &link.far_ip,
        &["--join", &join, "--webrtc", &webrtc],
    )
    .await;
    link.shape_port(webrtc_port, "20mbit", 50);
    let origins = format!(
        "--unsafely-treat-insecure-origin-as-secure=http://{},http://{}",
        a.http.unwrap(),
        b.http.unwrap()
    );
    let fake_video = format!("--use-file-for-fake-video-capture={}", video.display());
    let flags: Vec<&str> = WEBRTC_FLAGS
        .iter()
        .copied()
        .chain([origins.as_str(), fake_video.as_str()])
        .collect();
    let mut browser = Chromium::launch(&dir.join("chromium-profile"), &flags).await;
    let admission = GroupSecret::new(GROUP, SECRET.as_bytes()).unwrap();
    let token = |m: &MemberProcess| admission.browser_token(m.id.parse::<NodeId>().unwrap());
    let _publisher = browser
        .open(&format!("http://{}/conference/?token={}", a.http.unwrap(), token(&a)))
        .await;
    let watcher = browser
        .open(&format!("http://{}/conference/?token={}", b.http.unwrap(), token(&b)))
        .await;
    let source = format!("{}-0", a.id);
    let start = Instant::now();
    // Per second: (seconds, frames decoded, upper frames withheld at b, watchers on base at b,
    // a's stream at b in kbit/s).
    let mut log: Vec<(f64, u64, u64, u64, f64)> = Vec::new();
    let sample = async |browser: &mut Chromium, log: &mut Vec<(f64, u64, u64, u64, f64)>| {
        browser.use_tab(&watcher);
        let got = decoded(&page_value(browser, "lastStats").await);
        let frames = got.iter().find(|(s, ..)| *s == source).map_or(0, |g| g.1);
        let (withheld, on_base) = layer_counters(&b).await;
        let rate = b
            .status()
            .await
            .unwrap()
            .sources
            .get(&a.id)
            .map_or(0.0, |s| s.rate_kbps);
        log.push((start.elapsed().as_secs_f64(), frames, withheld, on_base, rate));
    };
    while start.elapsed() < Duration::from_secs(25) {
        sample(&mut browser, &mut log).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let wide_rate = log.iter().rev().take(10).map(|l| l.4).sum::<f64>() / 10.0;
    let narrow = format!("{}kbit", (wide_rate * 0.8) as u64);
    link.shape_port(webrtc_port, &narrow, 50);
    while start.elapsed() < Duration::from_secs(50) {
        sample(&mut browser, &mut log).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    link.shape_port(webrtc_port, "20mbit", 50);
    while start.elapsed() < Duration::from_secs(75) {
        sample(&mut browser, &mut log).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for l in &log {
        println!(
            "{:5.1} s: frames {:5} withheld {:5} on base {} stream {:.0} kbit/s",
            l.0, l.1, l.2, l.3, l.4
        );
    }
    println!("narrowed to {narrow} (0.8 of the {wide_rate:.0} kbit/s stream)");
    drop(browser);
    drop((a, b));
    drop(link);
    let _ = std::fs::remove_dir_all(&dir);
}
