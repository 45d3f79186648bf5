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

/// A member of the emulated world `spec` at `ip` (its QUIC over the emulated paths; its HTTP
/// and WebRTC sockets on `ip`, reached by the browser directly).
async fn emulated(
    dir: &std::path::Path,
    spec: &std::path::Path,
    ip: &str,
    join: Option<&MemberProcess>,
    flags: &[&str],
) -> MemberProcess {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_esm"));
    cmd.arg("conference")
        .args(flags)
        .args(["--group", GROUP, "--listen", &format!("{ip}:0")])
        .args(["--http", &format!("{ip}:0")])
        .arg("--emulate")
        .arg(spec)
        .arg("--key")
        .arg(dir.join(format!("{ip}.key")))
        .env("ESM_SECRET", SECRET)
        .stderr(std::process::Stdio::inherit());
    if let Some(j) = join {
        cmd.args(["--join", &j.quic.to_string()]);
    }
    MemberProcess::spawn_ready(cmd).await.unwrap()
}

/// Three members on an emulated line (their keys in `dir`; `a_flags` added to a's command and
/// `flags` to every member's): a and c are 80 ms apart one way, b is 15 ms from each, so the
/// trees between a and c run through b; returns once c's route to a does.
async fn line_world(
    dir: &std::path::Path,
    a_flags: &[&str],
    flags: &[&str],
) -> (MemberProcess, MemberProcess, MemberProcess) {
    let (a, b, c, _) = line_world_changing(dir, a_flags, flags, "[]", 100_000).await;
    (a, b, c)
}

/// As [`line_world`], c's download changing as `c_down_changes` says (the spec's JSON list,
/// times from c's start), every access link's queue holding `queue_us`; also returns when c
/// started.
async fn line_world_changing(
    dir: &std::path::Path,
    a_flags: &[&str],
    flags: &[&str],
    c_down_changes: &str,
    queue_us: u64,
) -> (MemberProcess, MemberProcess, MemberProcess, Instant) {
    let spec = dir.join("world.json");
    std::fs::write(
        &spec,
        r#"{"name": "a line",
            "places": [
              {"ip": "127.0.0.2", "name": "a", "up_bps": 50000000, "down_bps": 50000000},
              {"ip": "127.0.0.3", "name": "b", "up_bps": 50000000, "down_bps": 50000000},
              {"ip": "127.0.0.4", "name": "c", "up_bps": 50000000, "down_bps": 50000000,
               "down_changes": C_CHANGES}],
            "one_way_us": [[0, 15000, 80000], [15000, 0, 15000], [80000, 15000, 0]],
            "queue_us": QUEUE_US}"#
            .replace("C_CHANGES", c_down_changes)
            .replace("QUEUE_US", &queue_us.to_string()),
    )
    .unwrap();
    let a_flags = [a_flags, flags].concat();
    let a = emulated(dir, &spec, "127.0.0.2", None, &a_flags).await;
    let b = emulated(dir, &spec, "127.0.0.3", Some(&a), flags).await;
    let c_starts = Instant::now();
    let c = emulated(dir, &spec, "127.0.0.4", Some(&b), flags).await;
    let t0 = Instant::now();
    loop {
        let st = c.status().await.unwrap();
        let via_b = st
            .routes
            .iter()
            .any(|r| r.dest == a.id && r.next_hop.as_deref() == Some(b.id.as_str()));
        if via_b {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "c never routed to a through b: {:?}",
            st.routes
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    (a, b, c, c_starts)
}

/// What c had of a's media at one moment: when, the frames its browser decoded, and the
/// overlay packets that reached c by layer (keyframes and audio, base, enhancement).
#[derive(Clone, Copy, Debug)]
struct Tally {
    at: Instant,
    frames: u64,
    /// The width of the picture the tab shows now.
    width: u64,
    keyframe: u64,
    base: u64,
    enhancement: u64,
}

impl Tally {
    async fn take(browser: &mut Chromium, tab: &str, c: &MemberProcess, a: &MemberProcess) -> Self {
        let s = stalls(browser, tab).await;
        let frames = s.first().map_or(0, |x| x.1);
        let width = decoded(&page_value(browser, "lastStats").await)
            .first()
            .map_or(0, |x| x.3);
        let st = c.status().await.unwrap();
        let by = st
            .sources
            .get(&a.id)
            .map(|s| s.by_class)
            .unwrap_or_default();
        Self {
            at: Instant::now(),
            frames,
            width,
            keyframe: by.keyframe,
            base: by.base,
            enhancement: by.enhancement,
        }
    }

    /// Per second from `before` to this: (frames decoded, keyframe, base and enhancement
    /// packets).
    fn rates_since(&self, before: &Self) -> (f64, f64, f64, f64) {
        let secs = self.at.duration_since(before.at).as_secs_f64().max(0.001);
        let per = |a: u64, b: u64| a.saturating_sub(b) as f64 / secs;
        (
            per(self.frames, before.frames),
            per(self.keyframe, before.keyframe),
            per(self.base, before.base),
            per(self.enhancement, before.enhancement),
        )
    }
}

/// Sleep until `secs` after `from`.
async fn sleep_until(from: Instant, secs: u64) {
    let at = from + Duration::from_secs(secs);
    tokio::time::sleep(at.saturating_duration_since(Instant::now())).await;
}

/// The download below the watching browser's member, while narrowed: meant to lie between what
/// the base layer and the sound take and the whole stream (about 270 kbit/s; the base and the
/// sound are 70 of its 87 packets a second, their bytes not measured apart).
const NARROWED_BPS: u64 = 240_000;

/// The width of the noisy camera's picture (`noisy_camera`): the whole picture.
const NOISY_CAMERA_WIDTH: u64 = 640;

/// How the link from b to c narrows from 20 s to 35 s after c starts.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Narrowing {
    /// c's download in the emulated network drops to [`NARROWED_BPS`]: b's pacer must find
    /// the new rate from the connection (the browser at a sends Chromium's light picture).
    Download,
    /// b's operator caps what b sends to c at this share of a's stream (`POST /links/limit`):
    /// the pacer knows the rate (the browser at a sends a noisy picture in two sizes, about
    /// 0.9 Mbit/s in all, most of it the large one's).
    OperatorCap(f64),
}

// Measured 2026-12-05 (7 runs of 7 passed once Narada doubted idle links, 2 of 14 earlier that
// day; in 2 of 7 runs a member was declared dead behind the full download before `Heard`): after
// the switch the longest stall 0.2-0.7 s; the switch itself 1.1-2.3 s (not asserted here: the
// pacer finds the new rate from losses and the queue, where the operator's cap tells it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_below_a_narrowed_link_gets_the_small_picture_and_the_whole_one_again() {
    below_a_narrow_link(Narrowing::Download).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_below_a_capped_link_gets_the_small_picture_and_the_whole_one_again() {
    below_a_narrow_link(Narrowing::OperatorCap(0.7)).await;
}

/// a's browser publishes, c's watches through b; the link from b to c narrows as `how` says
/// for 15 s, then opens again.
async fn below_a_narrow_link(how: Narrowing) {
    if !chromium_here() {
        return;
    }
    let _turn = browser_turn().await;
    let dir = scratch("esm-webrtc-narrowed");
    let (a, b, c, c_starts) = match how {
        Narrowing::Download => {
            // c's download narrows 20 s after c starts and opens again at 35 s.
            let changes = format!(
                r#"[{{"after_ms": 20000, "bps": {NARROWED_BPS}}}, {{"after_ms": 35000, "bps": 50000000}}]"#
            );
            // A slow DSL line's modem holds about ten full datagrams (400 ms at 240 kbit/s;
            // the default 100 ms would hold two and a half, less than one frame and its sound).
            line_world_changing(&dir, &[], &[], &changes, 400_000).await
        }
        Narrowing::OperatorCap(_) => line_world_changing(&dir, &[], &[], "[]", 100_000).await,
    };
    let camera = match how {
        Narrowing::Download => None,
        Narrowing::OperatorCap(_) => Some(noisy_camera(&dir)),
    };
    let flags: Vec<&str> = WEBRTC_FLAGS
        .iter()
        .copied()
        .chain(camera.as_deref())
        .collect();
    let mut browser = Chromium::launch(&dir.join("chromium-profile"), &flags).await;
    let mut tabs = Vec::new();
    for m in [&a, &c] {
        tabs.push(browser.open(&page_url(m)).await);
    }
    let tab = tabs[1].clone();
    sleep_until(c_starts, 14).await;
    let mut start = Tally::take(&mut browser, &tab, &c, &a).await;
    assert!(
        start.frames >= 50,
        "the browser at c did not decode a's video through b before the link narrowed: {start:?}; \
         console {:?}",
        browser.console
    );
    // a's stream as c receives it, kbit/s.
    let rate_at_c = async || {
        c.status()
            .await
            .unwrap()
            .sources
            .get(&a.id)
            .map_or(0.0, |s| s.rate_kbps)
    };
    let rate = rate_at_c().await;
    let cap = async |kbps: u64| {
        let path = format!("/links/limit?peer={}&kbps={kbps}", c.id);
        let said = node::demo::process::http_post(b.http.unwrap(), &path).await;
        assert!(said.is_ok(), "b's operator page refused the cap: {said:?}");
    };
    sleep_until(c_starts, 19).await;
    // The cap is the test's to place: under the whole suite's load the watcher may not have
    // the whole picture yet at 19 s (one clean-clone run had the small one, 160 wide, there),
    // and a narrowing judged against the small picture proves nothing. Wait for the whole
    // picture (up to 20 s more), then measure 5 s of it; everything after shifts by the wait.
    let mut shift = 0;
    if how != Narrowing::Download {
        let mut seen = Tally::take(&mut browser, &tab, &c, &a).await;
        while seen.width < NOISY_CAMERA_WIDTH && shift < 20 {
            shift += 1;
            sleep_until(c_starts, 19 + shift).await;
            seen = Tally::take(&mut browser, &tab, &c, &a).await;
        }
        assert!(
            seen.width >= NOISY_CAMERA_WIDTH,
            "the watcher never had the whole picture before the cap: {seen:?}"
        );
        if shift > 0 {
            println!("the whole picture came {shift} s late; the cap waits for it");
            start = seen;
            shift += 5;
            sleep_until(c_starts, 19 + shift).await;
        }
    }
    let full = Tally::take(&mut browser, &tab, &c, &a).await;
    browser.use_tab(&tab);
    browser.eval("esmConference.resetStalls()").await;
    // The link narrows at 20 s; the pacer above it settles within a few seconds.
    sleep_until(c_starts, 20 + shift).await;
    // The cap is a share of the lower of the stream's rate at 14 s and its rate now: the
    // browser's encoder varies its rate, and a cap above what it sends by the time the cap
    // comes would shape nothing (one clean-clone run's did, and nothing fell).
    let rate_now = rate_at_c().await;
    let narrowed_kbps = match how {
        Narrowing::Download => NARROWED_BPS / 1000,
        Narrowing::OperatorCap(share) => (rate.min(rate_now) * share) as u64,
    };
    if how != Narrowing::Download {
        cap(narrowed_kbps).await;
    }
    sleep_until(c_starts, 24 + shift).await;
    // The longest stall while it narrowed (the switch to the small picture included).
    let switch_stall_ms = stalls(&mut browser, &tab)
        .await
        .first()
        .map_or(f64::MAX, |s| s.2);
    let narrowed_from = Tally::take(&mut browser, &tab, &c, &a).await;
    let b_from = Tally::take(&mut browser, &tab, &b, &a).await;
    browser.use_tab(&tab);
    browser.eval("esmConference.resetStalls()").await;
    sleep_until(c_starts, 34 + shift).await;
    let narrowed = Tally::take(&mut browser, &tab, &c, &a).await;
    let at_b = Tally::take(&mut browser, &tab, &b, &a)
        .await
        .rates_since(&b_from);
    // What b's pacer towards c made of the narrowed link.
    if let Ok(st) = b.status().await {
        for p in st.transport.peers.iter().filter(|p| p.id == c.id) {
            println!(
                "b towards c, narrowed: paced {:.0} kbit/s (cap {:?}), window over the round \
                 trip {:.0} kbit/s, rtt {:.0} ms, {} shaped by rate and {} by buffer, {} \
                 repairs of shed packets not sent, {} of {} packets lost",
                p.paced_bps / 1e3,
                p.limit_bps.map(|b| b / 1e3),
                p.path_bps / 1e3,
                p.rtt_ms,
                p.shaped_by_rate,
                p.shaped_by_buffer,
                p.repairs_refused,
                p.lost_packets,
                p.sent_packets
            );
        }
    }
    let longest_stall_ms = stalls(&mut browser, &tab)
        .await
        .first()
        .map_or(f64::MAX, |s| s.2);
    // A member taken for dead (and back) moves the trees: say so, it explains a long stall.
    let mut membership = String::new();
    for (name, m) in [("a", &a), ("b", &b), ("c", &c)] {
        if let Ok(st) = m.status().await {
            membership.push_str(&format!("{name}: {:?}; ", st.membership));
        }
    }
    println!("membership changes by 34 s: {membership}");
    // Open again at 35 s: the pacer grows back (about 10% a second) to the whole stream.
    sleep_until(c_starts, 35 + shift).await;
    if how != Narrowing::Download {
        cap(0).await;
    }
    sleep_until(c_starts, 45 + shift).await;
    let recovered_from = Tally::take(&mut browser, &tab, &c, &a).await;
    sleep_until(c_starts, 50 + shift).await;
    let recovered = Tally::take(&mut browser, &tab, &c, &a).await;
    // The whole picture comes back once the watcher's leg has carried the whole stream for a
    // few seconds and a keyframe of the larger encoding came. Alone this takes under 15 s;
    // under the whole suite's load the leg's estimate can climb slower, so the picture has
    // until 65 s (30 s after the link opened) before it counts as lost.
    let mut wide_again = recovered.width;
    let mut wide_by_s = 50;
    while wide_again < full.width && wide_by_s < 65 {
        wide_by_s += 1;
        sleep_until(c_starts, wide_by_s + shift).await;
        wide_again = Tally::take(&mut browser, &tab, &c, &a).await.width;
    }
    let before = full.rates_since(&start);
    let during = narrowed.rates_since(&narrowed_from);
    let after = recovered.rates_since(&recovered_from);
    let show = |(f, k, b, e): (f64, f64, f64, f64)| {
        format!(
            "{f:.1} frames/s; packets/s: keyframe and audio {k:.1}, base {b:.1}, enhancement {e:.1}"
        )
    };
    // At b only the packets count (the frames are the browser's, at c).
    let (_, kb, bb, eb) = at_b;
    println!(
        "{how:?}: a's stream at c ({rate:.0} kbit/s at 14 s, {rate_now:.0} at the cap): whole \
         {}, {} pixels wide; the link at {} kbit/s {}, {} wide (packets/s arriving at b meanwhile: keyframe and audio \
         {kb:.1}, base {bb:.1}, enhancement {eb:.1}), longest stall {:.2} s while it narrowed \
         and {:.2} s after; open again {}, {} wide at 50 s, {wide_again} wide at {wide_by_s} s",
        show(before),
        full.width,
        narrowed_kbps,
        show(during),
        narrowed.width,
        switch_stall_ms / 1e3,
        longest_stall_ms / 1e3,
        show(after),
        recovered.width
    );
    // Narrowed, the browser plays the small picture of a's two (simulcast) or its base layer:
    // a narrower picture or fewer frames a second, never a freeze of a second; what the link
    // shed was the large picture or the upper layer, while keyframes, sound and the base came.
    assert!(
        during.0 < 0.75 * before.0 || narrowed.width < full.width,
        "neither the picture nor the frame rate fell: {during:?} {before:?}, {} then {} wide",
        full.width,
        narrowed.width
    );
    assert!(
        during.0 > 0.3 * before.0,
        "the base layer did not play: {during:?} {before:?}"
    );
    assert!(
        longest_stall_ms <= 1000.0,
        "a stall of {longest_stall_ms} ms (membership changes: {membership})"
    );
    // Where the pacer knows the new rate at once (the operator's cap), the switch itself
    // freezes nothing for a second either.
    if how != Narrowing::Download {
        assert!(
            switch_stall_ms <= 1000.0,
            "a stall of {switch_stall_ms} ms as the link narrowed"
        );
    }
    // What the narrowed link shed: c's packets against what b received over the same
    // seconds (the browser's encoder itself varies its frames from one window to the next, so
    // the window before is no baseline for this). b's own counts must be there: a member that
    // forgot a's stream, as one declared dead by mistake does, would make every comparison
    // below pass for nothing.
    assert!(
        bb > 0.0 && kb > 0.0 && eb > 0.0,
        "b counted none of a's packets while the link was narrowed: {at_b:?}"
    );
    assert!(
        during.2 >= 0.95 * bb,
        "base packets lost on the link: {during:?}, {bb:.1} a second arrived at b"
    );
    assert!(
        during.1 >= 0.95 * kb,
        "keyframe or audio packets lost on the link: {during:?}, {kb:.1} a second arrived at b"
    );
    // (Counted in packets: what of the large picture still passes the pacer counts, though
    // its frames are broken.)
    assert!(
        during.3 < 0.75 * eb,
        "the upper layer was not shed: {during:?}, {eb:.1} a second arrived at b"
    );
    // Open again, the whole stream comes back.
    assert!(
        after.0 >= 0.85 * before.0,
        "the frame rate did not recover: {after:?} {before:?}"
    );
    assert!(
        wide_again >= full.width,
        "the picture did not widen again by {wide_by_s} s: {} then {wide_again}",
        full.width
    );
    assert!(
        after.3 >= 0.85 * before.3,
        "the upper layer did not come back: {after:?}"
    );
    drop(browser);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Each watched source's figures in a tab: frames decoded and the longest stall so far (ms).
async fn stalls(browser: &mut Chromium, tab: &str) -> Vec<(String, u64, f64)> {
    browser.use_tab(tab);
    page_value(browser, "stalls")
        .await
        .as_object()
        .map(|o| {
            o.iter()
                .map(|(k, s)| {
                    (
                        k.clone(),
                        s["frames"].as_u64().unwrap_or(0),
                        s["longestMs"].as_f64().unwrap_or(0.0),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
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
