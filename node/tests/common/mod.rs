//! What the broadcast tests share: starting `esm` roots, standbys and relays as processes,
//! reading their status, making and checking streams with ffmpeg, ffprobe, curl and sha256sum.

#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use node::demo::process::MemberProcess;
use node::demo::process::http_get;
use tokio::process::Command;

pub const SECRET: &str = "broadcast-test-secret-quartz-fable";

pub fn have(tool: &str) -> bool {
    ["-version", "--version"].iter().any(|flag| {
        std::process::Command::new(tool)
            .arg(flag)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// Whether the tools are here; without them the test is skipped (said on stderr), unless
/// `ESM_REQUIRE_FFMPEG` is set.
pub fn tools(list: &[&str]) -> bool {
    if list.iter().all(|t| have(t)) {
        return true;
    }
    assert!(
        std::env::var_os("ESM_REQUIRE_FFMPEG").is_none(),
        "{list:?} are required here"
    );
    eprintln!("SKIPPED: one of {list:?} is missing");
    false
}

pub struct Node {
    pub quic: String,
    pub http: String,
    pub process: MemberProcess,
}

pub async fn start(dir: &Path, args: &[&str], name: &str) -> Node {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_esm"));
    cmd.args(args)
        .arg("--key")
        .arg(dir.join(format!("{name}.key")))
        .arg("--store")
        .arg(dir.join(format!("store-{name}")))
        .env("ESM_SECRET", SECRET)
        .stderr(Stdio::inherit());
    let process = MemberProcess::spawn_ready(cmd).await.unwrap();
    Node {
        quic: process.quic.to_string(),
        http: process.http.expect("an HTTP address").to_string(),
        process,
    }
}

/// A root publishing `input` (`--fast` and the like in `extra`).
pub async fn root(dir: &Path, input: &Path, extra: &[&str], name: &str) -> Node {
    let mut args = vec![
        "broadcast",
        "--channel",
        "tv",
        "--listen",
        "127.0.0.1:0",
        "--http",
        "127.0.0.1:0",
        "--input",
    ];
    let input = input.to_str().unwrap();
    args.push(input);
    args.extend_from_slice(extra);
    start(dir, &args, name).await
}

/// A standby root for `root`, second in the chain.
pub async fn standby(dir: &Path, root: &Node, name: &str) -> Node {
    let args = [
        "broadcast",
        "--channel",
        "tv",
        "--listen",
        "127.0.0.1:0",
        "--http",
        "127.0.0.1:0",
        "--standby-for",
        &root.quic,
        "--idle-end",
        "3s",
    ];
    start(dir, &args, name).await
}

/// A relay under the root chain `roots`.
pub async fn relay(dir: &Path, roots: &[&Node], name: &str) -> Node {
    let mut args = vec![
        "relay",
        "--channel",
        "tv",
        "--listen",
        "127.0.0.1:0",
        "--http",
        "127.0.0.1:0",
        "--idle-end",
        "3s",
    ];
    for r in roots {
        args.push("--root");
        args.push(&r.quic);
    }
    start(dir, &args, name).await
}

pub async fn curl_follow(url: &str, to: &Path) -> String {
    let out = Command::new("curl")
        .args(["-sSL", "-o"])
        .arg(to)
        .args(["-w", "%{http_code} %{num_redirects} %{url_effective}"])
        .arg(url)
        .output()
        .await
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub async fn status(node: &Node) -> serde_json::Value {
    let body = http_get(node.http.parse().unwrap(), "/status")
        .await
        .unwrap();
    serde_json::from_str(&body).unwrap()
}

pub fn sha256(path: &Path) -> String {
    let out = std::process::Command::new("sha256sum")
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

pub fn probe(path: &Path) -> (String, String) {
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-select_streams", "v:0"])
        .args(["-show_entries", "stream=nb_read_frames:format=duration"])
        .args(["-of", "default=noprint_wrappers=1"])
        .arg(path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let get = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(k))
            .unwrap_or("?")
            .to_owned()
    };
    (get("duration="), get("nb_read_frames="))
}

pub fn make_stream(dir: &Path) -> PathBuf {
    let src = dir.join("src.ts");
    let ok = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args([
            "-f",
            "lavfi",
            "-i",
            "testsrc=duration=20:size=320x240:rate=25",
        ])
        .args(["-f", "lavfi", "-i", "sine=frequency=1000:duration=20"])
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            "50",
            "-c:a",
            "aac",
        ])
        .args(["-f", "mpegts"])
        .arg(&src)
        .status()
        .unwrap();
    assert!(ok.success(), "ffmpeg failed to make the test stream");
    src
}

pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("esm-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Waits until every node in `nodes` stored `size` bytes (and `also` holds), or panics.
pub async fn wait_stored(nodes: &[&Node], size: u64, within: Duration) -> f64 {
    let start = Instant::now();
    loop {
        let mut all = true;
        for n in nodes {
            all &= status(n).await["stored"].as_u64() == Some(size);
        }
        if all {
            return start.elapsed().as_secs_f64();
        }
        assert!(
            start.elapsed() < within,
            "the stream never reached every node"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The head of the answer to `GET path` at `addr` (status line and headers), without waiting
/// for the body (a stream may not end).
pub async fn http_get_raw(addr: &str, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    let read = async {
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = s.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
        }
    };
    tokio::time::timeout(Duration::from_secs(5), read)
        .await
        .expect("an answer's head within 5 s");
    let text = String::from_utf8_lossy(&head).into_owned();
    text.split("\r\n\r\n").next().unwrap_or_default().to_owned()
}
