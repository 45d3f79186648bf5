//! Browsers in a conference, with a real browser nobody here wrote: headless Chromium (fake
//! camera and microphone) opens each member's page, publishes by WHIP to its member and
//! watches every other source by WHEP; the media crosses the overlay between members as
//! whole frames cut into media packets.
//!
//! Needs Debian's `chromium` (else SKIPPED, unless `ESM_REQUIRE_CHROMIUM` is set); `.ci/run`
//! installs it.

mod conference_common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use node::demo::process::MemberProcess;
use node::transport::admission::GroupSecret;
use overlay_core::NodeId;

use conference_common::chromium::Chromium;
use conference_common::line_world::{line_world, stalls};
use conference_common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_browsers_on_three_members_see_and_hear_each_other() {
    if !chromium_here() {
        return;
    }
    let _turn = browser_turn().await;
    let dir = scratch("esm-webrtc");
    // A chain of joins: b through a, c through b.
    let a = MemberProcess::start(&spec(&dir, 0, vec![])).await.unwrap();
    let b = MemberProcess::start(&spec(&dir, 1, vec![a.quic]))
        .await
        .unwrap();
    let c = MemberProcess::start(&spec(&dir, 2, vec![b.quic]))
        .await
        .unwrap();
    let members = [&a, &b, &c];
    let mut browser = Chromium::launch(&dir.join("chromium-profile"), WEBRTC_FLAGS).await;
    let mut tabs = Vec::new();
    let opened = Instant::now();
    for m in members {
        tabs.push(browser.open(&page_url(m)).await);
    }
    // Every tab decodes the two other sources: 50 frames, a keyframe, and audio.
    let mut last = Vec::new();
    let took = loop {
        last.clear();
        for tab in &tabs {
            browser.use_tab(tab);
            last.push(decoded(&page_value(&mut browser, "lastStats").await));
        }
        let done = last.iter().all(|tab| {
            tab.len() == 2
                && tab
                    .iter()
                    .all(|&(_, frames, keys, _, samples)| frames >= 50 && keys >= 1 && samples > 0)
        });
        if done {
            break opened.elapsed();
        }
        if opened.elapsed() > Duration::from_secs(40) {
            let errors = browser
                .eval("JSON.stringify(window.esmConference && esmConference.errors)")
                .await;
            panic!(
                "not every browser decoded the other two within 40 s: {last:?}; errors {errors}; \
                 console {:?}",
                browser.console
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    println!(
        "3 browsers on 3 members: each decoded the other two sources (>= 50 frames, a keyframe, \
         audio) {:.1} s after the pages opened: {last:?}",
        took.as_secs_f64()
    );
    // Each member's /status counts its browser's sessions: one publishing, two watching.
    for m in members {
        let st = m.status().await.unwrap();
        let b = st.browsers.expect("a member with HTTP serves browsers");
        println!(
            "member {}: {} members, browsers {b:?}",
            &m.id[..8],
            st.members.len()
        );
        assert_eq!(b.sessions_open, 3, "{b:?}");
        assert!(b.frames_in > 0 && b.frames_out > 0, "{b:?}");
        // The page publishes video in two temporal layers: every other video frame is above
        // the base and marked so, for the pacers to shed first (30-32 of about 220 frames,
        // sound included, in the runs here; none without L1T2).
        assert!(
            b.enhancement_frames_in * 20 > b.frames_in,
            "few frames of the upper temporal layer: {b:?}"
        );
    }
    drop(browser);
    let _ = std::fs::remove_dir_all(&dir);
}

/// ffmpeg with the WHIP muxer (9.x; Debian's 5.1 has none): `ESM_FFMPEG_WHIP` names it
/// (`.ci/run` unpacks the static build of the PyPI package imageio-ffmpeg); without it the
/// test is SKIPPED unless `ESM_REQUIRE_FFMPEG_WHIP` is set.
fn ffmpeg_whip() -> Option<PathBuf> {
    let exe = std::env::var_os("ESM_FFMPEG_WHIP").map(PathBuf::from);
    let works = exe.as_ref().is_some_and(|exe| {
        std::process::Command::new(exe)
            .args(["-hide_banner", "-h", "muxer=whip"])
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("WHIP"))
    });
    if !works {
        assert!(
            std::env::var_os("ESM_REQUIRE_FFMPEG_WHIP").is_none(),
            "an ffmpeg with the WHIP muxer is required here (ESM_FFMPEG_WHIP)"
        );
        eprintln!("SKIPPED: no ffmpeg with the WHIP muxer (set ESM_FFMPEG_WHIP)");
        return None;
    }
    exe
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_publishes_h264_and_opus_by_whip_and_a_browser_on_another_member_decodes_it() {
    let Some(ffmpeg) = ffmpeg_whip() else {
        return;
    };
    if !chromium_here() {
        return;
    }
    let _turn = browser_turn().await;
    let dir = scratch("esm-whip");
    let a = MemberProcess::start(&spec(&dir, 0, vec![])).await.unwrap();
    let b = MemberProcess::start(&spec(&dir, 1, vec![a.quic]))
        .await
        .unwrap();
    let admission = GroupSecret::new(GROUP, SECRET.as_bytes()).unwrap();
    let token = |m: &MemberProcess| admission.browser_token(m.id.parse::<NodeId>().unwrap());
    // 320x240 test pattern and a tone, as a publisher would send them (baseline H.264 without
    // B-frames, a keyframe every 2 s, Opus).
    let mut publisher = tokio::process::Command::new(&ffmpeg)
        .args(["-hide_banner", "-loglevel", "error", "-re"])
        .args(["-f", "lavfi", "-i", "testsrc=size=320x240:rate=25"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args([
            "-c:v",
            "libx264",
            "-profile:v",
            "baseline",
            "-bf",
            "0",
            "-g",
            "50",
        ])
        .args(["-tune", "zerolatency", "-pix_fmt", "yuv420p"])
        .args(["-c:a", "libopus", "-ar", "48000", "-ac", "2"])
        .args(["-authorization", &token(&a)])
        .args(["-f", "whip"])
        .arg(format!("http://{}/conference/whip", a.http.unwrap()))
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("ffmpeg starts");
    let mut browser = Chromium::launch(&dir.join("chromium-profile"), WEBRTC_FLAGS).await;
    let opened = Instant::now();
    let _tab = browser.open(&page_url(&b)).await;
    let source = format!("{}-0", a.id);
    let took = loop {
        let got = decoded(&page_value(&mut browser, "lastStats").await);
        let ffmpeg_source = got.iter().find(|(s, ..)| *s == source);
        if let Some(&(_, frames, keys, width, samples)) = ffmpeg_source
            && frames >= 50
            && keys >= 1
            && samples > 0
        {
            assert_eq!(width, 320, "the browser shows ffmpeg's 320x240 picture");
            break opened.elapsed();
        }
        if let Ok(Some(status)) = publisher.try_wait() {
            panic!("ffmpeg ended ({status}) before the browser decoded its stream: {got:?}");
        }
        assert!(
            opened.elapsed() < Duration::from_secs(40),
            "the browser on the other member did not decode ffmpeg's stream in 40 s: {got:?}; \
             console {:?}",
            browser.console
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    println!(
        "ffmpeg published H.264 + Opus by WHIP to one member; a browser on another decoded \
         50 frames, a keyframe and audio {:.1} s after its page opened",
        took.as_secs_f64()
    );
    let _ = publisher.kill().await;
    drop(browser);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_middle_member_dies_the_browsers_beyond_it_decode_again() {
    if !chromium_here() {
        return;
    }
    let _turn = browser_turn().await;
    let dir = scratch("esm-webrtc-kill");
    let (a, mut b, c) = line_world(&dir, &[], &[]).await;
    let mut browser = Chromium::launch(&dir.join("chromium-profile"), WEBRTC_FLAGS).await;
    let mut tabs = Vec::new();
    for m in [&a, &c] {
        tabs.push(browser.open(&page_url(m)).await);
    }
    // Both decode the other's video.
    let t0 = Instant::now();
    loop {
        let mut ready = true;
        for tab in &tabs {
            let s = stalls(&mut browser, tab).await;
            ready &= s.len() == 1 && s[0].1 >= 50;
        }
        if ready {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(40),
            "the browsers at a and c did not decode each other through b: console {:?}",
            browser.console
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let mut before = Vec::new();
    for tab in &tabs {
        browser.use_tab(tab);
        browser.eval("esmConference.resetStalls()").await;
        before.push(stalls(&mut browser, tab).await);
    }
    b.kill().await;
    let killed = Instant::now();
    tokio::time::sleep(Duration::from_secs(15)).await;
    let mut worst = 0.0f64;
    for (tab, at) in tabs.iter().zip(["a", "c"]) {
        let s = stalls(&mut browser, tab).await;
        assert_eq!(s.len(), 1, "{at} still watches the other: {s:?}");
        let (_, frames, longest_ms) = &s[0];
        let frames_before = before
            .iter()
            .flatten()
            .find(|(k, ..)| *k == s[0].0)
            .map_or(0, |x| x.1);
        println!(
            "browser at {at}: {} frames decoded in the {:.0} s after b was killed, longest stall \
             {:.2} s",
            frames.saturating_sub(frames_before),
            killed.elapsed().as_secs_f64(),
            longest_ms / 1e3
        );
        if *frames < frames_before + 100 {
            let routes = |m: &MemberProcess| {
                let m = m.http.unwrap();
                async move { node::demo::process::http_get(m, "/status").await }
            };
            panic!(
                "the browser at {at} decodes again after b died: {s:?}\na: {:?}\nc: {:?}",
                routes(&a).await,
                routes(&c).await
            );
        }
        worst = worst.max(*longest_ms);
    }
    println!(
        "the middle member SIGKILLed: decoding resumed in both browsers; the longest stall was \
         {:.2} s",
        worst / 1e3
    );
    // The goal: 3 s. Measured 1.4-2.0 s in eight runs on 2026-12-05 with pings every 400 ms
    // (2.7 s in the same session at the simulator's one-second pings).
    assert!(
        worst <= 3000.0,
        "decoding stalled {:.2} s after the middle member was SIGKILLed",
        worst / 1e3
    );
    drop(browser);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_records_a_browsers_video_and_audio_as_files_ffprobe_reads() {
    if !chromium_here() {
        return;
    }
    let _turn = browser_turn().await;
    let dir = scratch("esm-record");
    let recordings = dir.join("recordings");
    let a = MemberProcess::start(&spec(&dir, 0, vec![])).await.unwrap();
    let mut recorder_spec = spec(&dir, 1, vec![a.quic]);
    recorder_spec.flags = vec!["--record".into(), recordings.display().to_string()];
    let _b = MemberProcess::start(&recorder_spec).await.unwrap();
    let mut browser = Chromium::launch(&dir.join("chromium-profile"), WEBRTC_FLAGS).await;
    let _tab = browser.open(&page_url(&a)).await;
    let stem = format!("{}-0", &a.id[..16]);
    // The page publishes two sizes (simulcast): the small picture, the whole one and sound.
    let (video, large, audio) = (
        recordings.join(format!("{stem}.ivf")),
        recordings.join(format!("{stem}.large.ivf")),
        recordings.join(format!("{stem}.opus")),
    );
    // Eight seconds of recording once the files exist.
    let t0 = Instant::now();
    while !(video.exists() && large.exists() && audio.exists()) {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "no recording of the browser at a: {:?}",
            std::fs::read_dir(&recordings).map(|d| d.count())
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    tokio::time::sleep(Duration::from_secs(8)).await;
    let Some((vcodec, frames)) = probe(&video, true) else {
        return;
    };
    let Some((lcodec, large_frames)) = probe(&large, true) else {
        return;
    };
    let Some((acodec, packets)) = probe(&audio, false) else {
        return;
    };
    println!(
        "member b recorded the browser at a: {vcodec} video, {frames} frames, and the whole \
         picture {lcodec}, {large_frames} frames; {acodec} audio, {packets} packets (about 8 s)"
    );
    assert_eq!(vcodec, "vp8");
    assert_eq!(lcodec, "vp8");
    // A busy machine's headless encoder lowers its frame rate (20 fps here): 100 frames is
    // 8 s at 12.5 fps.
    assert!(frames >= 100, "about 8 s of video: {frames}");
    assert!(
        large_frames >= 100,
        "about 8 s of the whole picture: {large_frames}"
    );
    assert_eq!(acodec, "opus");
    assert!(packets >= 200, "about 8 s of 20 ms packets: {packets}");
    drop(browser);
    let _ = std::fs::remove_dir_all(&dir);
}

/// CPU seconds (user + system) process `pid` has used.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) : utime and stime are 14 and 15.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

/// The one-way delay of `source`'s media at `b` and at `c` over `window` (each the mean over
/// the packets that arrived in it, from the source's send time), and its rate at each.
async fn window_delays(
    b: &MemberProcess,
    c: &MemberProcess,
    source: &str,
    window: Duration,
) -> ((f64, f64), (f64, f64)) {
    let totals = |st: &node::app::conference::ConferenceStatus| {
        st.sources
            .get(source)
            .map(|s| (s.delay_total_ms, s.packets as f64, s.rate_kbps))
            .unwrap_or_else(|| panic!("{source}'s media has not arrived: {:?}", st.sources))
    };
    let (b0, c0) = (
        totals(&b.status().await.unwrap()),
        totals(&c.status().await.unwrap()),
    );
    tokio::time::sleep(window).await;
    let (b1, c1) = (
        totals(&b.status().await.unwrap()),
        totals(&c.status().await.unwrap()),
    );
    let mean = |x: (f64, f64, f64), y: (f64, f64, f64)| ((y.0 - x.0) / (y.1 - x.1).max(1.0), y.2);
    (mean(b0, b1), mean(c0, c1))
}

/// A benchmark, not run by CI (`cargo test --release -p node --test conference_browser
/// benchmark -- --ignored --nocapture`): without browsers, a synthetic source at a (at 300
/// kbit/s and at 1.2 Mbit/s) on the emulated line a - b - c, and the delay the hop through b
/// adds beyond its 15 ms link (the mean one-way delay at c less that at b over 10 s), each case
/// three times. The baseline for the browser benchmark below: what the members' own path adds,
/// with no browser sharing the machine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: prints figures"]
async fn benchmark_latency_per_hop_without_browsers() {
    // Every member measuring bandwidth against the rate sent (as the README asks), and b and c
    // left at the default 500 kbit/s while a sends 300 kbit/s (as browsers' rates vary).
    let runs = [("300kbps", true), ("1200kbps", true), ("300kbps", false)];
    for (rate, told) in runs.repeat(3) {
        let dir = scratch("esm-hop-bench");
        let send = format!("synthetic:{rate}");
        let told_flags = ["--stream-rate", rate];
        let flags: &[&str] = if told { &told_flags } else { &[] };
        let (a, b, c) = line_world(&dir, &["--send", &send], flags).await;
        // b's own route to a must be the direct link too (early on it may run through c).
        let t0 = Instant::now();
        while !b
            .status()
            .await
            .unwrap()
            .routes
            .iter()
            .any(|r| r.dest == a.id && r.next_hop.as_deref() == Some(a.id.as_str()))
        {
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "b never routed to a directly"
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
        let ((delay_b, rate_b), (delay_c, rate_c)) =
            window_delays(&b, &c, &a.id, Duration::from_secs(10)).await;
        println!(
            "synthetic {rate} from a{}: mean one-way delay at b {delay_b:.1} ms ({rate_b:.0} \
             kbit/s), at c {delay_c:.1} ms ({rate_c:.0} kbit/s): a's sending and the 15 ms link \
             {:.1} ms beyond it, the hop through b {:.1} ms beyond its 15 ms link",
            if told {
                ""
            } else {
                " (b and c at the default stream rate)"
            },
            delay_b - 15.0,
            delay_c - delay_b - 15.0
        );
        drop((a, b, c));
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// A benchmark, not run by CI (`cargo test --release -p node --test conference_browser
/// benchmark -- --ignored --nocapture`): 4 browsers (two at a, two at c) on 3 members of the
/// emulated line a - b - c, so b relays 4 sources (two each way); the delay the hop through b
/// adds beyond its link (the mean one-way delay at c less that at b over 10 s, measured by the
/// members from the source's send time), and b's CPU per forwarded source against b idle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: prints figures"]
async fn benchmark_latency_per_hop_and_cpu_per_forwarded_stream() {
    if !chromium_here() {
        return;
    }
    let _turn = browser_turn().await;
    let dir = scratch("esm-webrtc-bench");
    let (a, b, c) = line_world(&dir, &[], &[]).await;
    let b_pid = b.pid().unwrap();
    let idle0 = cpu_seconds(b_pid);
    tokio::time::sleep(Duration::from_secs(10)).await;
    let idle = (cpu_seconds(b_pid) - idle0) / 10.0;
    let mut browser = Chromium::launch(&dir.join("chromium-profile"), WEBRTC_FLAGS).await;
    for m in [&a, &a, &c, &c] {
        let _tab = browser.open(&page_url(m)).await;
    }
    tokio::time::sleep(Duration::from_secs(10)).await;
    let busy0 = cpu_seconds(b_pid);
    let ((delay_b, rate_b), (delay_c, rate_c)) =
        window_delays(&b, &c, &a.id, Duration::from_secs(10)).await;
    let busy = (cpu_seconds(b_pid) - busy0) / 10.0;
    let added = delay_c - delay_b - 15.0;
    let forwarded = 4.0;
    println!(
        "a's two browsers' media: mean one-way delay at b {delay_b:.1} ms ({rate_b:.0} kbit/s), at c \
         {delay_c:.1} ms ({rate_c:.0} kbit/s): the hop through b adds {added:.1} ms beyond its \
         15 ms link"
    );
    println!(
        "b relaying 4 browsers' streams (two each way): {:.1}% of a core against {:.1}% idle, \
         {:.2}% per forwarded stream (x{:.1} idle)",
        busy * 100.0,
        idle * 100.0,
        (busy - idle) * 100.0 / forwarded,
        busy / idle.max(1e-6)
    );
    drop(browser);
    let _ = std::fs::remove_dir_all(&dir);
}
