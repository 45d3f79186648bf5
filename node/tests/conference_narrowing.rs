//! A browser watching through a link that narrows: a's browser publishes, c's watches through
//! b on an emulated line, and the link from b to c narrows for 15 s (c's download in the
//! emulated network, or b's operator cap on what it sends to c), then opens again. c's browser
//! must get the small picture (or the base layer) without long freezes, and the whole picture
//! back once the link opens.
//!
//! Needs Debian's `chromium` (else SKIPPED, unless `ESM_REQUIRE_CHROMIUM` is set); `.ci/run`
//! installs it.

mod conference_common;

use std::time::{Duration, Instant};

use node::demo::process::MemberProcess;

use conference_common::chromium::Chromium;
use conference_common::line_world::{line_world_changing, stalls};
use conference_common::*;

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
