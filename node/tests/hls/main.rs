//! HLS with real clients nobody here wrote. ffmpeg makes an H.264 (High, yuv420p, B-frames,
//! 2-s GOPs)/AAC MPEG-TS stream: `testsrc` alone would make libx264 pick High 4:4:4, which
//! this Chromium's software decoder happens to play but many hardware decoders refuse; a root
//! and relays carry it over QUIC and cut it into segments at its keyframes. Debian's Chromium
//! has H.264 and AAC in Media Source Extensions, so hls.js plays it (transmuxed to fMP4).
//!
//! - `ffprobe` reads the root's event playlist (redirected to a relay) and counts the same
//!   video and audio frames as in the source file; the segments put end to end are the source's
//!   bytes, each begins with a PAT and decodes alone, and two relays number them the same.
//! - A stream that does not repeat its tables before keyframes still gives segments that
//!   decode alone: they carry the tables as a prefix.
//! - Headless Chromium opens the root's page, is redirected to a relay and plays the live
//!   stream with hls.js: `currentTime` advances by at least 8 s within 12 s, frames are
//!   decoded, no fatal player error; then `?from=start` plays the event playlist from its
//!   beginning (see `chromium.rs` for how Chromium is driven).
//!
//! Needs ffmpeg and ffprobe (else SKIPPED, unless `ESM_REQUIRE_FFMPEG` is set) and, for the
//! browser test, Debian's `chromium` (else SKIPPED, unless `ESM_REQUIRE_CHROMIUM` is set);
//! `.ci/run` installs them and sets both.

mod chromium;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use node::demo::process::MemberProcess;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

use chromium::{CHROMIUM, Chromium};

const SECRET: &str = "hls-test-secret-0123456789";
const PACKET: usize = 188;

fn have(tool: &str) -> bool {
    std::process::Command::new(tool)
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether ffmpeg and ffprobe are here; without them the test is skipped (said on stderr),
/// unless `ESM_REQUIRE_FFMPEG` is set.
fn ffmpeg_here() -> bool {
    if have("ffmpeg") && have("ffprobe") {
        return true;
    }
    assert!(
        std::env::var_os("ESM_REQUIRE_FFMPEG").is_none(),
        "ffmpeg and ffprobe are required here"
    );
    eprintln!("SKIPPED: ffmpeg or ffprobe is missing");
    false
}

/// Whether Debian's Chromium is here; without it the test is skipped, unless
/// `ESM_REQUIRE_CHROMIUM` is set.
fn chromium_here() -> bool {
    let ok = std::process::Command::new(CHROMIUM)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var_os("ESM_REQUIRE_CHROMIUM").is_none(),
            "chromium is required here"
        );
        eprintln!("SKIPPED: chromium is missing");
    }
    ok
}

struct Node {
    quic: String,
    http: SocketAddr,
    _process: MemberProcess,
}

async fn start(dir: &Path, args: &[&str], name: &str) -> Node {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_esm"));
    cmd.args(args)
        .args(["--listen", "127.0.0.1:0", "--http", "127.0.0.1:0"])
        .args(["--channel", "tv", "--idle-end", "2s"])
        .arg("--key")
        .arg(dir.join(format!("{name}.key")))
        .arg("--store")
        .arg(dir.join(format!("store-{name}")))
        .env("ESM_SECRET", SECRET)
        .stderr(Stdio::inherit());
    let process = MemberProcess::spawn_ready(cmd).await.unwrap();
    Node {
        quic: process.quic.to_string(),
        http: process.http.expect("an HTTP address"),
        _process: process,
    }
}

/// A root publishing `input`, `--fast` or at the stream's own rate.
async fn root(dir: &Path, input: &Path, fast: bool) -> Node {
    let mut args = vec!["broadcast", "--input", input.to_str().unwrap()];
    if fast {
        args.push("--fast");
    }
    start(dir, &args, "root").await
}

async fn relay(dir: &Path, root: &Node, name: &str) -> Node {
    start(dir, &["relay", "--root", &root.quic], name).await
}

/// `seconds` of 320x240 25 fps test picture (2-s GOPs, B-frames) and a tone.
fn make_stream(dir: &Path, seconds: u32) -> PathBuf {
    let src = dir.join("src.ts");
    let ok = std::process::Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
        ])
        .arg(format!("testsrc=duration={seconds}:size=320x240:rate=25"))
        .args(["-f", "lavfi", "-i"])
        .arg(format!("sine=frequency=1000:duration={seconds}"))
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "superfast",
            "-pix_fmt",
            "yuv420p",
        ])
        .args(["-g", "50", "-c:a", "aac", "-f", "mpegts"])
        .arg(&src)
        .status()
        .unwrap();
    assert!(ok.success(), "ffmpeg failed to make the test stream");
    src
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("esm-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Video and audio frames ffprobe counts in `input` (a file or a URL).
fn count_frames(input: &str) -> (u64, u64) {
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-show_entries"])
        .args(["stream=codec_type,nb_read_frames", "-of", "csv=p=0"])
        .arg(input)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let mut counts = BTreeMap::new();
    for line in text.lines() {
        if let Some((kind, n)) = line.split_once(',') {
            counts.insert(kind.to_owned(), n.trim().parse::<u64>().unwrap_or(0));
        }
    }
    let get = |k: &str| counts.get(k).copied().unwrap_or(0);
    (get("video"), get("audio"))
}

/// An HTTP response as it came.
#[derive(Debug)]
struct Response {
    status: u16,
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", String::as_str)
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// `GET path` from `addr`, without following redirects.
async fn get(addr: SocketAddr, path: &str) -> Response {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut raw))
        .await
        .expect("an answer within 10 s")
        .unwrap();
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a header end");
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Response {
        status,
        headers,
        body: raw[end + 4..].to_vec(),
    }
}

/// `GET http://addr/path`, following one redirect; returns the answer and where it came from.
async fn get_following(addr: SocketAddr, path: &str) -> (Response, String) {
    let first = get(addr, path).await;
    if first.status != 302 {
        return (first, format!("http://{addr}{path}"));
    }
    let location = first.header("location").to_owned();
    let rest = location.strip_prefix("http://").expect("an http location");
    let (host, path) = rest.split_at(rest.find('/').unwrap());
    (get(host.parse().unwrap(), path).await, location)
}

async fn status(node: &Node) -> serde_json::Value {
    serde_json::from_slice(&get(node.http, "/status").await.body).unwrap()
}

/// Waits until `check` holds, or panics with `what` after `within`.
async fn wait_for<F: AsyncFnMut() -> bool>(what: &str, within: Duration, mut check: F) -> f64 {
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < within, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    started.elapsed().as_secs_f64()
}

/// The segment names (`START-END`, the bytes each covers) a playlist lists.
fn listed(playlist: &str) -> Vec<String> {
    playlist
        .lines()
        .filter_map(|l| Some(l.strip_prefix("seg/")?.strip_suffix(".ts")?.to_owned()))
        .collect()
}

fn pid(packet: &[u8]) -> u16 {
    (u16::from(packet[1] & 0x1f) << 8) | u16::from(packet[2])
}

/// The PMT's PID, from the first PAT (ffmpeg's: one program, no adaptation field).
fn pmt_pid(stream: &[u8]) -> u16 {
    let pat = stream
        .chunks_exact(PACKET)
        .find(|p| pid(p) == 0)
        .expect("a PAT");
    (u16::from(pat[15] & 0x1f) << 8) | u16::from(pat[16])
}

/// Whether `segment` opens with tables only (PAT, SDT, PMT) and has a PAT, then a PMT, before
/// its first media packet: what a demuxer needs to decode it alone.
fn opens_with_tables(segment: &[u8], pmt: u16) -> bool {
    let head: Vec<u16> = segment
        .chunks_exact(PACKET)
        .map(pid)
        .take_while(|&p| p == 0 || p == 0x11 || p == pmt)
        .collect();
    let pat = head.iter().position(|&p| p == 0);
    let pmt = head.iter().rposition(|&p| p == pmt);
    matches!((pat, pmt), (Some(a), Some(b)) if a < b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffprobe_counts_the_sources_frames_through_the_roots_event_playlist() {
    if !ffmpeg_here() {
        return;
    }
    let dir = scratch("hls-ffprobe");
    let src = make_stream(&dir, 20);
    let source = std::fs::read(&src).unwrap();
    let pmt = pmt_pid(&source);
    let root = root(&dir, &src, true).await;
    let relays = [
        relay(&dir, &root, "relay0").await,
        relay(&dir, &root, "relay1").await,
    ];
    // Every relay holds the stream, the root lists them, and their playlists ended.
    let size = source.len() as u64;
    for r in &relays {
        wait_for(
            "a relay stores the stream",
            Duration::from_secs(40),
            async || status(r).await["stored"].as_u64() == Some(size),
        )
        .await;
    }
    wait_for(
        "the root lists both relays",
        Duration::from_secs(20),
        async || {
            status(&root).await["live_nodes"]
                .as_array()
                .map_or(0, Vec::len)
                == 2
        },
    )
    .await;
    for r in &relays {
        wait_for(
            "a relay's event playlist ends",
            Duration::from_secs(10),
            async || {
                get(r.http, "/channels/tv/event.m3u8")
                    .await
                    .text()
                    .ends_with("#EXT-X-ENDLIST\n")
            },
        )
        .await;
    }

    // The root redirects the playlist to a relay; ffprobe follows and counts every frame.
    let redirect = get(root.http, "/channels/tv/event.m3u8").await;
    assert_eq!(redirect.status, 302);
    assert_eq!(redirect.header("access-control-allow-origin"), "*");
    let location = redirect.header("location");
    assert!(
        relays
            .iter()
            .any(|r| location == format!("http://{}/channels/tv/event.m3u8?here=1", r.http)),
        "{location}"
    );
    let url = format!("http://{}/channels/tv/event.m3u8", root.http);
    let (from_source, from_hls) = (count_frames(src.to_str().unwrap()), count_frames(&url));
    println!("ffprobe: source {from_source:?} (video, audio) frames, {url} {from_hls:?}");
    assert!(from_source.0 >= 500, "{from_source:?}");
    assert_eq!(from_hls, from_source);

    // The playlist as served, and both relays number the segments the same.
    let (event, _) = get_following(root.http, "/channels/tv/event.m3u8").await;
    assert_eq!(event.status, 200);
    assert_eq!(
        event.header("content-type"),
        "application/vnd.apple.mpegurl"
    );
    assert_eq!(event.header("cache-control"), "no-cache");
    assert_eq!(event.header("access-control-allow-origin"), "*");
    let text = event.text();
    println!("the event playlist:\n{text}");
    assert!(
        text.contains("#EXT-X-PLAYLIST-TYPE:EVENT\n") && text.contains("#EXT-X-MEDIA-SEQUENCE:0\n")
    );
    let seqs = listed(&text);
    assert_eq!(seqs.len(), 10, "ten 2-s segments");
    // Named by the bytes they cover, end to end from byte 0 to the last.
    let mut next = 0;
    for name in &seqs {
        let (start, end) = name.split_once('-').unwrap();
        assert_eq!(start.parse::<u64>().unwrap(), next, "{name}");
        next = end.parse().unwrap();
    }
    assert_eq!(next, size);
    assert_eq!(text.matches("#EXTINF:2.000,").count(), 10);
    let other = get(relays[1].http, "/channels/tv/event.m3u8").await.text();
    assert_eq!(
        get(relays[0].http, "/channels/tv/event.m3u8").await.text(),
        other
    );
    let live = get(relays[0].http, "/channels/tv/index.m3u8").await.text();
    assert_eq!(listed(&live), seqs[4..], "a window of six");
    assert!(live.contains("#EXT-X-MEDIA-SEQUENCE:4\n") && live.ends_with("#EXT-X-ENDLIST\n"));

    // The segments end to end are the source; each starts with a PAT and decodes alone. The
    // root sends a segment request to a relay it knows holds the whole segment (what relays
    // hold reaches it with their check-ins), so wait until it knows.
    wait_for(
        "the root knows the relays hold it all",
        Duration::from_secs(30),
        async || {
            let s = status(&root).await;
            let nodes = s["live_nodes"].as_array().cloned().unwrap_or_default();
            nodes.iter().all(|n| n["content"].as_u64() == Some(size))
        },
    )
    .await;
    let mut joined = Vec::new();
    for seq in &seqs {
        let path = format!("/channels/tv/seg/{seq}.ts");
        let (seg, from) = get_following(root.http, &path).await;
        assert_eq!(seg.status, 200, "{from}");
        assert!(from.ends_with("?here=1"), "{from}");
        assert_eq!(seg.header("content-type"), "video/mp2t");
        assert_eq!(seg.header("cache-control"), "public, max-age=3600");
        assert_eq!(seg.header("content-length"), seg.body.len().to_string());
        assert!(
            opens_with_tables(&seg.body, pmt),
            "segment {seq} does not open with PAT and PMT"
        );
        let same = get(relays[1].http, &path).await.body;
        assert_eq!(seg.body, same, "relays disagree on segment {seq}");
        joined.extend_from_slice(&seg.body);
    }
    assert!(joined == source, "the segments differ from the source");
    let alone = count_frames(&format!(
        "http://{}/channels/tv/seg/{}.ts",
        relays[0].http, seqs[5]
    ));
    println!("segment 5 alone: {alone:?} frames");
    assert_eq!(alone.0, 50);

    // What nobody should get: another channel, a segment that is not one, one never cut.
    for bad in [
        "/channels/nope/event.m3u8",
        "/channels/nope/",
        "/channels/tv/seg/10.ts",
        "/channels/tv/seg/0-188.ts",
        format!("/channels/tv/seg/0-{size}.ts").as_str(),
        "/channels/tv/seg/abc.ts",
        "/channels/tv/seg/-1.ts",
        "/channels/tv/seg/+1.ts",
        "/channels/tv/seg/1",
        "/channels/tv/seg/.ts",
        "/channels/tv/seg/99999999999999999999999999.ts",
    ] {
        assert_eq!(get(relays[0].http, bad).await.status, 404, "{bad}");
    }

    // The page: the root redirects it (keeping `from=start`), a relay serves it, the scripts.
    let page = get(root.http, "/channels/tv/?from=start").await;
    assert_eq!(page.status, 302);
    let location = page.header("location").to_owned();
    assert!(
        location.ends_with("/channels/tv/?here=1&from=start"),
        "{location}"
    );
    let page = get(relays[0].http, "/channels/tv/").await;
    assert_eq!(page.header("content-type"), "text/html; charset=utf-8");
    assert!(page.text().contains("<span id=\"channel\">tv</span>"));
    let hls_js = get(relays[0].http, "/assets/hls.js/1.7.4/hls.min.js").await;
    assert_eq!(hls_js.status, 200);
    assert!(hls_js.text().contains("\"1.7.4\""));
    assert_eq!(
        get(relays[0].http, "/assets/esm-player.js").await.status,
        200
    );
    drop((root, relays));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_without_tables_before_its_keyframes_gets_them_as_a_prefix() {
    if !ffmpeg_here() {
        return;
    }
    let dir = scratch("hls-prefix");
    let full = make_stream(&dir, 10);
    // Keep only the first PAT and PMT: ffmpeg's repeats (before every keyframe, every 0.1 s)
    // go, as some muxers never write them.
    let bytes = std::fs::read(&full).unwrap();
    let pmt = pmt_pid(&bytes);
    let mut seen = (false, false);
    let mut stripped = Vec::new();
    for p in bytes.chunks_exact(PACKET) {
        let keep = match pid(p) {
            0 => !std::mem::replace(&mut seen.0, true),
            id if id == pmt => !std::mem::replace(&mut seen.1, true),
            _ => true,
        };
        if keep {
            stripped.extend_from_slice(p);
        }
    }
    let src = dir.join("stripped.ts");
    std::fs::write(&src, &stripped).unwrap();
    let root = root(&dir, &src, true).await;
    wait_for(
        "the root's event playlist ends",
        Duration::from_secs(20),
        async || {
            get(root.http, "/channels/tv/event.m3u8")
                .await
                .text()
                .ends_with("#EXT-X-ENDLIST\n")
        },
    )
    .await;
    let event = get(root.http, "/channels/tv/event.m3u8").await.text();
    let seqs = listed(&event);
    assert_eq!(seqs.len(), 5, "{event}");
    for seq in &seqs[1..] {
        let seg = get(root.http, &format!("/channels/tv/seg/{seq}.ts")).await;
        assert_eq!(
            (pid(&seg.body), pid(&seg.body[PACKET..])),
            (0, pmt),
            "segment {seq} begins with the PAT and the PMT"
        );
        assert!(opens_with_tables(&seg.body, pmt));
        assert_eq!(seg.header("content-length"), seg.body.len().to_string());
    }
    let alone = count_frames(&format!(
        "http://{}/channels/tv/seg/{}.ts",
        root.http, seqs[2]
    ));
    let (source, hls) = (
        count_frames(src.to_str().unwrap()),
        count_frames(&format!("http://{}/channels/tv/event.m3u8", root.http)),
    );
    println!(
        "without repeated tables: source {source:?}, playlist {hls:?}, segment 2 alone {alone:?}"
    );
    assert_eq!(hls, source);
    assert_eq!(alone.0, 50);
    drop(root);
    let _ = std::fs::remove_dir_all(&dir);
}

/// What the page reports, sampled over the DevTools protocol.
const SAMPLE: &str = r#"(() => {
  const v = document.querySelector('video');
  const q = v && v.getVideoPlaybackQuality ? v.getVideoPlaybackQuality() : null;
  const p = window.esmPlayer || {};
  return {
    href: location.href,
    time: v ? v.currentTime : -1,
    ready: v ? v.readyState : -1,
    frames: q ? q.totalVideoFrames : 0,
    dropped: q ? q.droppedVideoFrames : 0,
    engine: p.engine || null,
    state: p.state || null,
    status: (document.getElementById('status') || {}).textContent || null,
    fatal: p.fatal || [],
    errors: p.errors || [],
  };
})()"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_opens_the_roots_page_and_plays_the_live_stream_from_a_relay() {
    if !ffmpeg_here() || !chromium_here() {
        return;
    }
    let dir = scratch("hls-chromium");
    let src = make_stream(&dir, 45);
    // Published at the stream's own rate: a live broadcast.
    let root = root(&dir, &src, false).await;
    let relay = relay(&dir, &root, "relay").await;
    wait_for(
        "the root lists the relay",
        Duration::from_secs(20),
        async || {
            status(&root).await["live_nodes"]
                .as_array()
                .map_or(0, Vec::len)
                == 1
        },
    )
    .await;
    wait_for(
        "the relay lists three segments",
        Duration::from_secs(20),
        async || listed(&get(relay.http, "/channels/tv/index.m3u8").await.text()).len() >= 3,
    )
    .await;

    let mut browser = Chromium::launch(&dir.join("chromium-profile"), &[]).await;
    let page = format!("http://{}/channels/tv/", root.http);
    let _tab = browser.open(&page).await;
    let opened = Instant::now();
    let mut first: Option<(f64, f64)> = None;
    let mut last = serde_json::Value::Null;
    let mut largest_step: f64 = 0.0;
    // How far currentTime ran ahead of the wall clock between two samples: a seek, not play
    // (a slow sample on a loaded machine spaces two samples far apart, and play covers it).
    let mut largest_lead: f64 = 0.0;
    let mut previous: Option<(f64, Instant)> = None;
    while opened.elapsed() < Duration::from_secs(12) {
        let s = browser.eval(SAMPLE).await;
        let sampled = Instant::now();
        let time = s["time"].as_f64().unwrap_or(-1.0);
        if first.is_none() && s["ready"].as_i64().unwrap_or(0) >= 2 {
            first = Some((opened.elapsed().as_secs_f64(), time));
        }
        if let Some((p, at)) = previous {
            largest_step = largest_step.max(time - p);
            largest_lead = largest_lead.max(time - p - sampled.duration_since(at).as_secs_f64());
        }
        // Steps count from the first playable sample on: before it, currentTime is 0 while
        // hls.js picks its start near the live edge (2.17 s in one run, read as a seek).
        previous = first.is_some().then_some((time, sampled));
        last = s;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let (started_at, start_time) = first.unwrap_or((f64::NAN, f64::NAN));
    let advance = last["time"].as_f64().unwrap_or(0.0) - start_time;
    let frames = last["frames"].as_u64().unwrap_or(0);
    println!(
        "chromium: {} via {}; playable {started_at:.1} s after opening at t={start_time:.2} s; \
         currentTime advanced {advance:.2} s by 12 s (largest step between samples {largest_step:.2} s, \
         at most {largest_lead:.2} s ahead of the wall clock); \
         {frames} frames decoded, {} dropped; status {:?}; errors {}",
        last["engine"], last["href"], last["dropped"], last["status"], last["errors"]
    );
    for line in &browser.console {
        println!("  {line}");
    }
    let href = last["href"].as_str().unwrap_or("");
    assert_eq!(href, format!("http://{}/channels/tv/?here=1", relay.http));
    assert_eq!(last["engine"], "hls.js 1.7.4");
    assert_eq!(last["fatal"], serde_json::json!([]), "fatal player errors");
    assert!(advance >= 8.0, "currentTime advanced only {advance:.2} s");
    // Samples are a quarter second apart: play never runs more than a little ahead of the
    // clock between them (hls.js may speed up slightly to catch the live edge).
    assert!(
        largest_lead < 1.5,
        "playback jumped {largest_lead:.2} s ahead of the wall clock between two samples \
         (step {largest_step:.2} s): a seek, not play"
    );
    assert!(frames >= 150, "only {frames} frames decoded");

    // From the start: the event playlist, from its first segment.
    browser
        .navigate(&format!("http://{}/channels/tv/?from=start", root.http))
        .await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    let s = browser.eval(SAMPLE).await;
    println!(
        "chromium from the start: {} at t={} s, {} frames decoded, status {}",
        s["href"], s["time"], s["frames"], s["status"]
    );
    assert_eq!(
        s["href"],
        format!("http://{}/channels/tv/?here=1&from=start", relay.http)
    );
    assert_eq!(s["fatal"], serde_json::json!([]), "fatal player errors");
    let time = s["time"].as_f64().unwrap_or(0.0);
    assert!(
        (2.0..8.0).contains(&time),
        "t={time} s is not near the start"
    );
    drop((browser, relay, root));
    let _ = std::fs::remove_dir_all(&dir);
}
