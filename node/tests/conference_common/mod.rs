//! What the conference tests share: members started as processes in one group, headless
//! Chromium with a fake camera and microphone, a tab's decoding statistics, and ffprobe's
//! reading of recorded files.

#![allow(dead_code, unreachable_pub)]

#[path = "../hls/chromium.rs"]
pub mod chromium;
pub mod line_world;

use std::path::PathBuf;

use node::demo::process::{MemberSpec, key_path};
use serde_json::Value;

use chromium::{CHROMIUM, Chromium};

pub const GROUP: &str = "webrtc";
pub const SECRET: &str = "webrtc-test-secret-0123456789";

/// WebRTC in headless Chromium: a fake camera and microphone granted without asking, host
/// candidates on loopback, and no throttling of the tabs that are not in front.
pub const WEBRTC_FLAGS: &[&str] = &[
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--allow-loopback-in-peer-connection",
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
];

/// Browser tests of one test binary take turns: a browser's encoder lowers its rate and frame
/// rate on a machine busy with another test's browsers and members (a share of a stream meant
/// to shed its large picture then sheds nothing), and stalls lengthen.
static BROWSER_TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Waits for this test's turn with browsers (held until the guard drops).
pub async fn browser_turn() -> tokio::sync::MutexGuard<'static, ()> {
    BROWSER_TURN.lock().await
}

pub fn chromium_here() -> bool {
    let here = std::process::Command::new(CHROMIUM)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    here_or_skipped(here, "ESM_REQUIRE_CHROMIUM", "chromium")
}

/// `here`, saying SKIPPED when it is false, unless the environment variable `required_by` is
/// set (`.ci/run` sets it where it installed the tools): then the test fails, naming `what`
/// it lacked.
pub fn here_or_skipped(here: bool, required_by: &str, what: &str) -> bool {
    if !here {
        assert!(
            std::env::var_os(required_by).is_none(),
            "{what} is required here ({required_by} is set)"
        );
        eprintln!("SKIPPED: needs {what}");
    }
    here
}

pub fn spec(dir: &std::path::Path, i: usize, join: Vec<std::net::SocketAddr>) -> MemberSpec {
    MemberSpec {
        exe: PathBuf::from(env!("CARGO_BIN_EXE_esm")),
        group: GROUP.into(),
        secret: SECRET.into(),
        key: key_path(dir, i),
        join,
        send: None,
        port: 0,
        resolver: None,
        ip: std::net::Ipv4Addr::LOCALHOST.into(),
        emulate: None,
        flags: Vec::new(),
    }
}

/// A fresh folder for one test's keys, files and browser profile.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The page's `esmConference[field]` in the current tab (`Null` before the page set it).
pub async fn page_value(browser: &mut Chromium, field: &str) -> Value {
    let v = browser
        .eval(&format!(
            "JSON.stringify(window.esmConference && esmConference.{field} || {{}})"
        ))
        .await;
    v.as_str()
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or(Value::Null)
}

/// What a tab decoded of each source it watches: (frames, keyframes, width, audio samples).
pub fn decoded(stats: &Value) -> Vec<(String, u64, u64, u64, u64)> {
    let Some(sources) = stats.as_object() else {
        return Vec::new();
    };
    sources
        .iter()
        .map(|(source, s)| {
            let n = |k: &str| s[k].as_u64().unwrap_or(0);
            (
                source.clone(),
                n("framesDecoded"),
                n("keyFramesDecoded"),
                n("frameWidth"),
                n("totalSamplesReceived"),
            )
        })
        .collect()
}

/// ffprobe's count of frames (video) or packets (audio) of the first stream in `path`, and its
/// codec name; `None` where ffprobe is missing (SKIPPED unless `ESM_REQUIRE_FFMPEG` is set).
pub fn probe(path: &std::path::Path, video: bool) -> Option<(String, u64)> {
    let entries = if video {
        "stream=codec_name,nb_read_frames"
    } else {
        "stream=codec_name,nb_read_packets"
    };
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            if video { "v:0" } else { "a:0" },
        ])
        .args([if video {
            "-count_frames"
        } else {
            "-count_packets"
        }])
        .args(["-show_entries", entries, "-of", "csv=p=0"])
        .arg(path)
        .output();
    let Ok(out) = out else {
        assert!(
            std::env::var_os("ESM_REQUIRE_FFMPEG").is_none(),
            "ffprobe is required here"
        );
        eprintln!("SKIPPED: no ffprobe");
        return None;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let mut fields = text.trim().split(',');
    let codec = fields.next().unwrap_or("").to_owned();
    let count = fields.next().and_then(|n| n.parse().ok()).unwrap_or(0);
    Some((codec, count))
}

/// A fake camera that plays `seconds` of a noisy 640x360 test picture at 20 frames/s (made
/// with ffmpeg under `dir`), as Chromium's flag: the encoder sends what its estimate allows
/// (about 1.7 Mbit/s here, half the frames in the upper temporal layer), where Chromium's own
/// fake picture makes a light stream (about 270 kbit/s, a seventh of the frames upper).
pub fn noisy_camera(dir: &std::path::Path) -> String {
    let video = dir.join("noisy.y4m");
    let made = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg("testsrc2=size=640x360:rate=20,noise=alls=25:allf=t")
        .args(["-t", "3", "-pix_fmt", "yuv420p"])
        .arg(&video)
        .status()
        .expect("ffmpeg runs");
    assert!(made.success(), "ffmpeg made the noisy test picture");
    format!("--use-file-for-fake-video-capture={}", video.display())
}

/// The page a browser opens to take part at member `m`, with the token the group's secret
/// gives that member's browsers.
pub fn page_url(m: &node::demo::process::MemberProcess) -> String {
    let admission = node::transport::admission::GroupSecret::new(GROUP, SECRET.as_bytes()).unwrap();
    let token = admission.browser_token(m.id.parse().unwrap());
    format!("http://{}/conference/?token={token}", m.http.unwrap())
}
