//! Broadcasting for a long while, as people watch it: a root paced through an ffmpeg-made
//! 4 Mbit/s H.264/AAC stream, a standby root, 3 relays from the start and 3 more joining at 5,
//! 10 and 20 minutes, one relay SIGKILLed and started again (same key and store) every 5
//! minutes, 50 HTTP viewers asking the root for the stream from where it is now (redirected to
//! relays), reading a while, leaving and coming back, and 5 HLS viewers following the live
//! playlist. Every viewer's bytes are checked against the source file (HTTP) or against the
//! root's own segments (HLS); at the end every relay's stored bytes are checked against the
//! source, and each process's resident memory is compared with its value once it had run 5
//! minutes.
//!
//! `cargo bench -p node --bench soak` runs 30 minutes; `-- --minutes M` scales every time in it
//! (joins, kills) to M minutes. Not part of CI. Writes `target/soak/summary.json`. Every node
//! keeps 64 MiB of the stream in memory (`--memory-limit`), so memory is steady by minute 5.
//! HLS segments are compared by name (the byte range each covers): a relay's segment must be
//! byte for byte the root's segment of that name.

#![allow(missing_docs)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::spawn;
use node::demo::process::{MemberProcess, rss_kb};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const HTTP_VIEWERS: usize = 50;
const HLS_VIEWERS: usize = 5;
/// Bytes of the stream each node keeps in memory (64 MiB: about two minutes at 4 Mbit/s, so
/// memory reaches its steady state before minute 5, where RSS is first taken).
const MEMORY_LIMIT: &str = "67108864";

/// How long a process runs before its RSS is first taken: real minutes, not scaled, since
/// memory fills at the stream's rate (64 MiB at 4 Mbit/s takes about two minutes).
const RSS_AFTER: Duration = Duration::from_secs(5 * 60);

/// What the viewers saw, in all.
#[derive(Default)]
struct Tally {
    sessions: AtomicU64,
    bytes: AtomicU64,
    mismatched: AtomicU64,
    failed: AtomicU64,
    segments: AtomicU64,
    segments_mismatched: AtomicU64,
    segments_failed: AtomicU64,
    /// Segments a relay listed that the root did not cut the same (a relay's first segment
    /// after it began or resumed mid-stream, which starts where the root's grid does not).
    segments_not_at_root: AtomicU64,
}

/// One answer: status, headers (lowercase names), and the body read until `limit` or its end.
struct Answer {
    status: u16,
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

/// `GET path` at `addr`, reading at most `limit` body bytes or for at most `within`.
async fn get(addr: &str, path: &str, limit: usize, within: Duration) -> Option<Answer> {
    let mut s = tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect(addr))
        .await
        .ok()?
        .ok()?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await
        .ok()?;
    let mut data = Vec::new();
    let mut buf = vec![0u8; 64 << 10];
    let deadline = tokio::time::Instant::now() + within;
    let mut head_end = None;
    loop {
        let Ok(Ok(n)) = tokio::time::timeout_at(deadline, s.read(&mut buf)).await else {
            break;
        };
        if n == 0 {
            break;
        }
        data.extend_from_slice(&buf[..n]);
        if head_end.is_none() {
            head_end = data.windows(4).position(|w| w == b"\r\n\r\n");
        }
        if head_end.is_some_and(|h| data.len() - h - 4 >= limit) {
            break;
        }
    }
    let h = head_end?;
    let head = String::from_utf8_lossy(&data[..h]).into_owned();
    let mut lines = head.lines();
    let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = data[h + 4..].to_vec();
    body.truncate(limit);
    Some(Answer {
        status,
        headers,
        body,
    })
}

/// `GET path` at the root, following one redirect: the answer and the node that gave it.
async fn get_via(
    root: &str,
    path: &str,
    limit: usize,
    within: Duration,
) -> Option<(Answer, String)> {
    let first = get(root, path, limit, within).await?;
    if first.status != 302 {
        return Some((first, root.to_owned()));
    }
    let location = first.headers.get("location")?;
    let rest = location.strip_prefix("http://")?;
    let (host, path) = rest.split_at(rest.find('/')?);
    let answer = get(host, path, limit, within).await?;
    Some((answer, host.to_owned()))
}

async fn status(addr: &str) -> Option<serde_json::Value> {
    let a = get(addr, "/status", 1 << 20, Duration::from_secs(5)).await?;
    serde_json::from_slice(&a.body).ok()
}

/// An HTTP viewer: asks the root for the stream from where it is now, reads for a while,
/// checks what came against the source, leaves, comes back; until `until`.
async fn http_viewer(
    root: String,
    source: Arc<Vec<u8>>,
    tally: Arc<Tally>,
    until: Instant,
    seed: u64,
) {
    let mut n = seed;
    while Instant::now() < until {
        n = n
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let read_for = Duration::from_secs(20 + (n >> 33) % 70);
        let Some(root_status) = status(&root).await else {
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        };
        let stored = root_status["stored"].as_u64().unwrap_or(0);
        let from = stored - stored % 188;
        let path = format!("/channels/tv?from={from}");
        let limit = (source.len() as u64 - from.min(source.len() as u64)) as usize;
        tally.sessions.fetch_add(1, Ordering::Relaxed);
        match get_via(&root, &path, limit, read_for).await {
            Some((answer, _)) if answer.status == 200 => {
                let got = &answer.body;
                let want = &source[from as usize..from as usize + got.len()];
                tally.bytes.fetch_add(got.len() as u64, Ordering::Relaxed);
                if got.as_slice() != want {
                    tally.mismatched.fetch_add(1, Ordering::Relaxed);
                }
            }
            _ => {
                tally.failed.fetch_add(1, Ordering::Relaxed);
            }
        }
        tokio::time::sleep(Duration::from_millis(200 + (n >> 40) % 3000)).await;
    }
}

/// The segments a live playlist lists, as (first byte, name): names are the byte ranges
/// they cover, the same on every node.
fn listed(playlist: &str) -> Vec<(u64, String)> {
    playlist
        .lines()
        .filter_map(|l| {
            let name = l.strip_prefix("seg/")?.strip_suffix(".ts")?;
            Some((name.split_once('-')?.0.parse().ok()?, name.to_owned()))
        })
        .collect()
}

/// An HLS viewer: follows the live playlist (asking the root, which sends it to a relay), and
/// fetches each new segment from the relay and, to check it, from the root itself.
async fn hls_viewer(root: String, tally: Arc<Tally>, until: Instant) {
    // Segments are checked in byte order, whichever relay's playlist lists them.
    let mut seen = 0u64;
    while Instant::now() < until {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let Some((playlist, node)) = get_via(
            &root,
            "/channels/tv/index.m3u8",
            1 << 20,
            Duration::from_secs(5),
        )
        .await
        else {
            continue;
        };
        if playlist.status != 200 {
            continue;
        }
        let text = String::from_utf8_lossy(&playlist.body).into_owned();
        let new: Vec<(u64, String)> = listed(&text)
            .into_iter()
            .filter(|(start, _)| *start >= seen)
            .collect();
        for (start, name) in new {
            seen = start + 1;
            let path = format!("/channels/tv/seg/{name}.ts?here=1");
            let there = get(&node, &path, 64 << 20, Duration::from_secs(10)).await;
            let here = get(&root, &path, 64 << 20, Duration::from_secs(10)).await;
            match (there, here) {
                (Some(a), Some(b)) if a.status == 200 && b.status == 200 => {
                    tally.segments.fetch_add(1, Ordering::Relaxed);
                    if a.body != b.body {
                        tally.segments_mismatched.fetch_add(1, Ordering::Relaxed);
                    }
                }
                (Some(a), Some(b)) if a.status == 200 && b.status == 404 => {
                    tally.segments_not_at_root.fetch_add(1, Ordering::Relaxed);
                }
                _ => {
                    tally.segments_failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
}

fn make_source(dir: &Path, seconds: u64) -> PathBuf {
    let src = dir.join("source.ts");
    let started = Instant::now();
    let ok = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(["-f", "lavfi", "-i"])
        .arg(format!("testsrc=duration={seconds}:size=640x360:rate=25"))
        .args(["-f", "lavfi", "-i"])
        .arg(format!("sine=frequency=440:duration={seconds}"))
        .args(["-c:v", "libx264", "-preset", "ultrafast", "-g", "50"])
        .args(["-b:v", "3800k", "-minrate", "3800k", "-maxrate", "3800k"])
        .args(["-bufsize", "1900k", "-x264-params", "nal-hrd=cbr"])
        .args([
            "-c:a", "aac", "-b:a", "128k", "-f", "mpegts", "-muxrate", "4000k",
        ])
        .arg(&src)
        .status()
        .expect("ffmpeg");
    assert!(ok.success(), "ffmpeg failed");
    let size = std::fs::metadata(&src).map(|m| m.len()).unwrap_or(0);
    println!(
        "source: {seconds} s, {size} bytes ({:.2} Mbit/s), made in {:.0} s",
        size as f64 * 8.0 / seconds as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    src
}

struct Relays {
    dir: PathBuf,
    roots: Vec<String>,
    running: BTreeMap<usize, MemberProcess>,
}

impl Relays {
    async fn start(&mut self, i: usize) {
        let name = format!("relay{i}");
        let mut args = vec![
            "relay",
            "--channel",
            "tv",
            "--listen",
            "127.0.0.1:0",
            "--http",
            "127.0.0.1:0",
            "--memory-limit",
            MEMORY_LIMIT,
        ];
        for r in &self.roots {
            args.push("--root");
            args.push(r);
        }
        let p = spawn(&args, &self.dir, &name, false).await;
        self.running.insert(i, p);
    }
}

#[tokio::main]
async fn main() {
    let minutes: f64 = std::env::args()
        .skip_while(|a| a != "--minutes")
        .nth(1)
        .and_then(|m| m.parse().ok())
        .unwrap_or(30.0);
    let scale = |m: f64| Duration::from_secs_f64(m * 60.0 * minutes / 30.0);
    let total = scale(30.0);
    let dir = std::env::temp_dir().join(format!("esm-soak-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let src = make_source(&dir, total.as_secs() + 10);
    let source = Arc::new(std::fs::read(&src).unwrap());
    let src_arg = src.to_string_lossy().into_owned();
    let root = spawn(
        &[
            "broadcast",
            "--channel",
            "tv",
            "--listen",
            "127.0.0.1:0",
            "--http",
            "127.0.0.1:0",
            "--input",
            &src_arg,
            "--memory-limit",
            MEMORY_LIMIT,
        ],
        &dir,
        "root",
        false,
    )
    .await;
    let root_quic = root.quic.to_string();
    let root_http = root.http.unwrap().to_string();
    let standby = spawn(
        &[
            "broadcast",
            "--channel",
            "tv",
            "--listen",
            "127.0.0.1:0",
            "--http",
            "127.0.0.1:0",
            "--standby-for",
            &root_quic,
            "--memory-limit",
            MEMORY_LIMIT,
        ],
        &dir,
        "standby",
        false,
    )
    .await;
    let mut relays = Relays {
        dir: dir.clone(),
        roots: vec![root_quic.clone(), standby.quic.to_string()],
        running: BTreeMap::new(),
    };
    for i in 0..3 {
        relays.start(i).await;
    }
    let started = Instant::now();
    let until = started + total;
    let tally = Arc::new(Tally::default());
    let mut viewers = Vec::new();
    for v in 0..HTTP_VIEWERS {
        viewers.push(tokio::spawn(http_viewer(
            root_http.clone(),
            source.clone(),
            tally.clone(),
            until,
            v as u64 + 1,
        )));
    }
    for _ in 0..HLS_VIEWERS {
        viewers.push(tokio::spawn(hls_viewer(
            root_http.clone(),
            tally.clone(),
            until,
        )));
    }
    let joins = [(scale(5.0), 3), (scale(10.0), 4), (scale(20.0), 5)];
    let mut next_kill = scale(5.0);
    let mut killed = 0usize;
    let mut rss_at_5: BTreeMap<u32, (String, u64)> = BTreeMap::new();
    let mut first_seen: BTreeMap<u32, Instant> = BTreeMap::new();
    let mut kills = Vec::new();
    while Instant::now() < until {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let t = started.elapsed();
        for &(at, i) in &joins {
            if t >= at && !relays.running.contains_key(&i) {
                relays.start(i).await;
                println!("{:>6.0} s  relay{i} joins", t.as_secs_f64());
            }
        }
        // Each process's RSS once it has run five minutes: its memory is steady by then, so
        // what it gains after is growth.
        let mut procs = vec![
            ("root".to_owned(), root.pid()),
            ("standby".to_owned(), standby.pid()),
        ];
        procs.extend(
            relays
                .running
                .iter()
                .map(|(i, p)| (format!("relay{i}"), p.pid())),
        );
        for (name, pid) in procs {
            let Some(pid) = pid else { continue };
            let seen = *first_seen.entry(pid).or_insert_with(Instant::now);
            if seen.elapsed() >= RSS_AFTER
                && !rss_at_5.contains_key(&pid)
                && let Some(kb) = rss_kb(pid)
            {
                rss_at_5.insert(pid, (name, kb));
            }
        }
        if t >= next_kill && t + Duration::from_secs(30) < total {
            // Rotate over relays 0..3 (the ones there from the start).
            let victim = killed % 3;
            killed += 1;
            next_kill += scale(5.0);
            if let Some(mut p) = relays.running.remove(&victim) {
                p.kill().await;
                println!("{:>6.0} s  SIGKILL to relay{victim}", t.as_secs_f64());
                tokio::time::sleep(Duration::from_secs(3)).await;
                relays.start(victim).await;
                println!(
                    "{:>6.0} s  relay{victim} started again",
                    started.elapsed().as_secs_f64()
                );
                kills.push(victim);
            }
        }
    }
    for v in viewers {
        let _ = v.await;
    }
    // The end: every relay's store against the source.
    let size = source.len() as u64;
    let wait = Instant::now();
    let mut stores = BTreeMap::new();
    loop {
        let mut done = true;
        for (i, p) in &relays.running {
            let s = status(&p.http.unwrap().to_string())
                .await
                .unwrap_or_default();
            done &= s["stored"].as_u64() == Some(size);
            stores.insert(*i, s);
        }
        if done || wait.elapsed() > Duration::from_secs(120) {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let mut lost = 0u64;
    let mut mismatched_relays = 0;
    for (i, p) in &relays.running {
        let s = &stores[i];
        let first = s["first_kept"].as_u64().unwrap_or(0);
        let stored = s["stored"].as_u64().unwrap_or(0);
        lost += size - stored.min(size);
        let http = p.http.unwrap().to_string();
        let path = format!("/channels/tv?here=1&from={first}");
        let got = get(
            &http,
            &path,
            (size - first) as usize,
            Duration::from_secs(60),
        )
        .await;
        let ok = got.is_some_and(|a| a.body.as_slice() == &source[first as usize..]);
        if !ok {
            mismatched_relays += 1;
        }
        println!("relay{i}: holds [{first}, {stored}) of {size}; bytes match the source: {ok}");
    }
    let mut rss = Vec::new();
    // Processes killed since have no RSS now and are left out.
    for (pid, (name, kb5)) in &rss_at_5 {
        if let Some(kb) = rss_kb(*pid) {
            rss.push(
                serde_json::json!({"process": name, "rss_kb_at_5": kb5, "rss_kb_at_end": kb,
                "ratio": kb as f64 / *kb5 as f64}),
            );
            println!(
                "{name}: RSS {kb5} kB after 5 minutes, {kb} kB at the end ({:+.1}%)",
                (kb as f64 / *kb5 as f64 - 1.0) * 100.0
            );
        }
    }
    let t = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let summary = serde_json::json!({
        "minutes": minutes,
        "source_bytes": size,
        "relays_killed_and_restarted": kills,
        "bytes_lost": lost,
        "relays_whose_bytes_differ": mismatched_relays,
        "http_sessions": t(&tally.sessions),
        "http_bytes": t(&tally.bytes),
        "http_sessions_mismatched": t(&tally.mismatched),
        "http_sessions_failed": t(&tally.failed),
        "hls_segments_checked": t(&tally.segments),
        "hls_segments_mismatched": t(&tally.segments_mismatched),
        "hls_segments_failed": t(&tally.segments_failed),
        "hls_segments_not_at_root": t(&tally.segments_not_at_root),
        "rss": rss,
    });
    println!("{}", serde_json::to_string_pretty(&summary).unwrap());
    // Benches run in the package directory; the summary goes to the workspace's target.
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/soak");
    let _ = std::fs::create_dir_all(&out);
    let _ = std::fs::write(
        out.join("summary.json"),
        serde_json::to_string_pretty(&summary).unwrap(),
    );
    let _ = std::fs::remove_dir_all(&dir);
}
