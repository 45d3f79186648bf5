//! Broadcast on loopback, in one run: a root fed a live 4 Mbit/s MPEG-TS stream on stdin, 6
//! relays, and 50 HTTP viewers spread over the relays; beside it, the same stream served by the
//! root alone to 50 viewers directly. Each viewer reads the live stream; every TS packet carries
//! the wall-clock time it was written to the root's stdin, so each viewer measures the time from
//! root to client (p50, p99) and its receive rate; CPU per relay comes from /proc.
//!
//! `cargo bench -p node --bench broadcast` (needs the `esm` binary built: the bench builds it).

#![allow(missing_docs)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::spawn;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const RATE_BPS: f64 = 4_000_000.0;
const VIEWERS: usize = 50;
const RELAYS: usize = 6;
const MEASURE: Duration = Duration::from_secs(8);

fn wall_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Writes TS packets (PID 0x100, payload only) at RATE_BPS, each stamped with the wall clock.
async fn feed(mut stdin: tokio::process::ChildStdin, until: Instant) {
    let per_tick = (RATE_BPS / 8.0 / 188.0 / 100.0).round() as usize;
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    let mut cc = 0u8;
    while Instant::now() < until {
        tick.tick().await;
        let mut buf = Vec::with_capacity(per_tick * 188);
        for _ in 0..per_tick {
            let mut p = [0xffu8; 188];
            p[0] = 0x47;
            p[1] = 0x01;
            p[2] = 0x00;
            p[3] = 0x10 | (cc & 0x0f);
            cc = cc.wrapping_add(1);
            p[4..12].copy_from_slice(&wall_ns().to_be_bytes());
            buf.extend_from_slice(&p);
        }
        if stdin.write_all(&buf).await.is_err() {
            return;
        }
    }
}

#[derive(Default)]
struct Seen {
    bytes: u64,
    delays_us: Vec<u64>,
}

async fn view(http: String, seen: Arc<Mutex<Seen>>, until: Instant) {
    let Ok(mut s) = tokio::net::TcpStream::connect(&http).await else {
        return;
    };
    let req = format!("GET /channels/tv?here=1 HTTP/1.0\r\nHost: {http}\r\n\r\n");
    if s.write_all(req.as_bytes()).await.is_err() {
        return;
    }
    let mut buf = vec![0u8; 64 * 1024];
    let mut pending: Vec<u8> = Vec::new();
    let mut in_body = false;
    while Instant::now() < until {
        let n = match tokio::time::timeout(Duration::from_secs(1), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return,
            Ok(Ok(n)) => n,
            Err(_) => continue,
        };
        pending.extend_from_slice(&buf[..n]);
        if !in_body {
            let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") else {
                continue;
            };
            pending.drain(..end + 4);
            in_body = true;
        }
        let now = wall_ns();
        let whole = pending.len() / 188 * 188;
        let mut st = seen.lock().unwrap();
        st.bytes += whole as u64;
        for p in pending[..whole].chunks(188) {
            if p[0] == 0x47 {
                let sent = u64::from_be_bytes(p[4..12].try_into().unwrap());
                st.delays_us.push(now.saturating_sub(sent) / 1000);
            }
        }
        drop(st);
        pending.drain(..whole);
    }
}

fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(vec![], |(_, rest)| rest.split_whitespace().collect());
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

fn quantile(xs: &mut [u64], q: f64) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    xs.sort_unstable();
    xs[((xs.len() - 1) as f64 * q).round() as usize] as f64 / 1e3
}

async fn run(relays: usize) -> (f64, f64, f64, f64, Vec<f64>) {
    let dir = std::env::temp_dir().join(format!("esm-bench-bc-{}-{relays}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut root = spawn(
        &[
            "broadcast",
            "--channel",
            "tv",
            "--listen",
            "127.0.0.1:0",
            "--http",
            "127.0.0.1:0",
            "--input",
            "-",
        ],
        &dir,
        "root",
        true,
    )
    .await;
    let stdin = root.take_stdin().unwrap();
    let root_quic = root.quic.to_string();
    let mut nodes = Vec::new();
    for i in 0..relays {
        nodes.push(
            spawn(
                &[
                    "relay",
                    "--root",
                    &root_quic,
                    "--channel",
                    "tv",
                    "--listen",
                    "127.0.0.1:0",
                    "--http",
                    "127.0.0.1:0",
                ],
                &dir,
                &format!("relay{i}"),
                false,
            )
            .await,
        );
    }
    let warm = Duration::from_secs(3);
    let end = Instant::now() + warm + MEASURE + Duration::from_secs(1);
    tokio::spawn(feed(stdin, end));
    tokio::time::sleep(warm).await;
    let targets: Vec<String> = if nodes.is_empty() {
        vec![root.http.map(|h| h.to_string()).unwrap_or_default()]
    } else {
        nodes
            .iter()
            .map(|n| n.http.map(|h| h.to_string()).unwrap_or_default())
            .collect()
    };
    let cpu0: Vec<f64> = nodes
        .iter()
        .map(|n| cpu_seconds(n.pid().unwrap_or(0)))
        .collect();
    let root_cpu0 = cpu_seconds(root.pid().unwrap_or(0));
    // CPU is divided by the time it was counted over (the viewers may finish a little late).
    let counted_from = Instant::now();
    let seen: Vec<Arc<Mutex<Seen>>> = (0..VIEWERS).map(|_| Arc::default()).collect();
    let until = Instant::now() + MEASURE;
    let mut tasks = Vec::new();
    for (i, s) in seen.iter().enumerate() {
        tasks.push(tokio::spawn(view(
            targets[i % targets.len()].clone(),
            s.clone(),
            until,
        )));
    }
    for t in tasks {
        let _ = t.await;
    }
    let counted = counted_from.elapsed().as_secs_f64();
    let cpu: Vec<f64> = nodes
        .iter()
        .zip(&cpu0)
        .map(|(n, c0)| (cpu_seconds(n.pid().unwrap_or(0)) - c0) / counted)
        .collect();
    let root_cpu = (cpu_seconds(root.pid().unwrap_or(0)) - root_cpu0) / counted;
    let mut delays: Vec<u64> = Vec::new();
    let mut rates = Vec::new();
    for s in &seen {
        let s = s.lock().unwrap();
        // The first second carries the backlog from the live edge on: leave it out of delays.
        let skip = s.delays_us.len() / 8;
        delays.extend_from_slice(&s.delays_us[skip..]);
        rates.push(s.bytes as f64 * 8.0 / MEASURE.as_secs_f64());
    }
    let min_rate = rates.iter().copied().fold(f64::INFINITY, f64::min);
    let mean_rate = rates.iter().sum::<f64>() / rates.len() as f64;
    let p50 = quantile(&mut delays, 0.5);
    let p99 = quantile(&mut delays, 0.99);
    for mut n in nodes {
        n.kill().await;
    }
    root.kill().await;
    let _ = std::fs::remove_dir_all(&dir);
    let mut all_cpu = cpu;
    all_cpu.push(root_cpu);
    (mean_rate, min_rate, p50, p99, all_cpu)
}

fn main() {
    let status = std::process::Command::new("cargo")
        .args(["build", "--release", "-q", "-p", "node", "--bin", "esm"])
        .status();
    assert!(status.is_ok_and(|s| s.success()), "building esm failed");
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "machine: {cores} cores; stream {:.1} Mbit/s; {VIEWERS} viewers; {} s measured",
        RATE_BPS / 1e6,
        MEASURE.as_secs()
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    for relays in [0, RELAYS] {
        let (mean, min, p50, p99, cpu) = rt.block_on(run(relays));
        let (root_cpu, relay_cpu) = cpu
            .split_last()
            .map_or((0.0, &[][..]), |(r, rest)| (*r, rest));
        let label = if relays == 0 {
            "root alone serving all viewers".to_owned()
        } else {
            format!("root -> {relays} relays -> viewers")
        };
        println!(
            "{label}: viewer rate mean {:.2} Mbit/s (lowest {:.2}) = {:.2} of the stream; root to viewer p50 {p50:.1} ms p99 {p99:.1} ms; CPU root {:.0}%{}",
            mean / 1e6,
            min / 1e6,
            min / RATE_BPS,
            root_cpu * 100.0,
            if relay_cpu.is_empty() {
                String::new()
            } else {
                format!(
                    ", per relay {}",
                    relay_cpu
                        .iter()
                        .map(|c| format!("{:.0}%", c * 100.0))
                        .collect::<Vec<_>>()
                        .join(" ")
                )
            }
        );
    }
}
