//! The HTTP side of broadcast nodes under attack-shaped load, with real `esm` processes and a
//! synthetic MPEG-TS stream (no external tool needed):
//!
//! - a relay started under `ulimit -n 1024` is hit with 2000 idle connections and 300 slowloris
//!   ones (a request head dribbled a byte at a time): it closes them on its header timeout,
//!   keeps storing, a viewer reading throughout and one arriving mid-attack get the bytes the
//!   root was fed, and its memory stays bounded (RSS before, during, after);
//! - 600 concurrent live GETs at the root are redirected within a stated memory figure; the
//!   redirect's requests per second are printed beside `/metrics`' in the same run;
//! - viewers that never read are closed after the write timeout and cost a bounded amount;
//! - a redirect passes on the `from` it parsed (`%2B1000` as `1000`), and a full node sends a
//!   viewer elsewhere or answers 503 with `Retry-After`.
//!
//! The figures are printed (`cargo test -p node --test http_limits -- --nocapture`); they vary
//! with how busy the machine is.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use node::demo::process::{MemberProcess, http_get, rss_kb};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::{ChildStdin, Command};
use tokio::task::JoinHandle;

mod http_client;
use http_client::{
    ATTACK, Fate, attacker, code_and, drain_connections, get, hammer, head_of, listen_overflows,
};

/// These tests load the machine with hundreds of connections and measure memory and requests
/// per second: they take turns, or one's load fails another's clients (the 600 GETs lost 86
/// clients to timeouts while the slowloris test ran beside them on two cores).
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const SECRET: &str = "http-limits-test-secret";
const P: usize = 188;

struct Node {
    http: SocketAddr,
    quic: String,
    process: MemberProcess,
}

impl Node {
    fn pid(&self) -> u32 {
        self.process.pid().expect("a running process")
    }
}

/// Starts `esm ARGS` (under `ulimit -n LIMIT` if given) with its key and store in `dir`.
async fn start(dir: &Path, args: &[&str], name: &str, ulimit: Option<u32>) -> Node {
    let esm = env!("CARGO_BIN_EXE_esm");
    let mut cmd = match ulimit {
        Some(n) => {
            let mut c = Command::new("sh");
            c.args(["-c", &format!("ulimit -n {n} && exec \"$0\" \"$@\""), esm]);
            c
        }
        None => Command::new(esm),
    };
    cmd.args(args)
        .arg("--key")
        .arg(dir.join(format!("{name}.key")))
        .arg("--store")
        .arg(dir.join(format!("store-{name}")))
        .env("ESM_SECRET", SECRET)
        .stdin(Stdio::piped())
        .stderr(Stdio::inherit());
    let process = MemberProcess::spawn_ready(cmd).await.unwrap();
    Node {
        http: process.http.expect("an HTTP address"),
        quic: process.quic.to_string(),
        process,
    }
}

/// A root reading its stream from stdin (or `input`), with `extra` flags.
async fn root(dir: &Path, input: Option<&Path>, extra: &[&str]) -> Node {
    let input = input.map_or_else(|| "-".to_owned(), |p| p.display().to_string());
    let mut args = vec!["broadcast", "--channel", "tv", "--listen", "127.0.0.1:0"];
    args.extend_from_slice(&["--http", "127.0.0.1:0", "--input", &input]);
    args.extend_from_slice(extra);
    start(dir, &args, "root", None).await
}

/// A relay under `root`, with `extra` flags.
async fn relay(dir: &Path, root: &Node, extra: &[&str], ulimit: Option<u32>) -> Node {
    let mut args = vec!["relay", "--channel", "tv", "--listen", "127.0.0.1:0"];
    args.extend_from_slice(&["--http", "127.0.0.1:0", "--root", &root.quic]);
    args.extend_from_slice(extra);
    start(dir, &args, "relay", ulimit).await
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("esm-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Synthetic TS packets `from..from + n` of PID 0x100, numbered in their payload; every 50th
/// opens a random-access point.
fn packets(from: usize, n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n * P);
    for i in from..from + n {
        let mut p = [0u8; P];
        p[..4].copy_from_slice(&[0x47, 0x01, 0x00, 0x10 | (i as u8 & 0x0f)]);
        if i % 50 == 0 {
            p[1] = 0x41;
            p[3] |= 0x20;
            p[4..10].copy_from_slice(&[1, 0x40, 0, 0, 1, 0xe0]);
        }
        for (k, b) in p[12..].iter_mut().enumerate() {
            *b = (i as u8).wrapping_add(k as u8);
        }
        p[10..12].copy_from_slice(&(i as u16).to_be_bytes());
        out.extend_from_slice(&p);
    }
    out
}

/// Feeds the root's stdin at `bytes_per_s` until `stop` is set; what was fed.
fn feed(mut stdin: ChildStdin, bytes_per_s: usize, stop: Arc<AtomicBool>) -> JoinHandle<Vec<u8>> {
    tokio::spawn(async move {
        let per_tick = (bytes_per_s / 50 / P).max(1);
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        let mut fed = Vec::new();
        let mut n = 0;
        while !stop.load(Ordering::Relaxed) {
            tick.tick().await;
            let chunk = packets(n, per_tick);
            n += per_tick;
            if stdin.write_all(&chunk).await.is_err() {
                break;
            }
            fed.extend_from_slice(&chunk);
        }
        fed
    })
}

fn rss_mb(pid: u32) -> f64 {
    rss_kb(pid).unwrap_or(0) as f64 / 1024.0
}

fn descriptors(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count)
}

/// Bytes in a store's segment files, read from the disk (not over HTTP, which an attack fills).
fn store_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir.join("tv")).map_or(0, |files| {
        files
            .filter_map(|f| f.ok()?.metadata().ok())
            .map(|m| m.len())
            .sum()
    })
}

async fn status(node: &Node) -> serde_json::Value {
    serde_json::from_str(&http_get(node.http, "/status").await.unwrap()).unwrap()
}

/// Waits up to `within` for `done` to hold of `node`'s status; the status.
async fn wait_status(
    node: &Node,
    within: Duration,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let t0 = Instant::now();
    loop {
        let s = status(node).await;
        if done(&s) {
            return s;
        }
        assert!(t0.elapsed() < within, "never came: {s}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Samples a process's RSS and descriptors every 100 ms until `stop`: (peak RSS MB, peak fds).
fn sample(pid: u32, stop: Arc<AtomicBool>) -> JoinHandle<(f64, usize)> {
    tokio::spawn(async move {
        let (mut rss, mut fds) = (0f64, 0usize);
        while !stop.load(Ordering::Relaxed) {
            rss = rss.max(rss_mb(pid));
            fds = fds.max(descriptors(pid));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        (rss, fds)
    })
}
/// Whether this process may open `n` descriptors (raising its soft limit if it can).
fn room_for(n: u64) -> bool {
    let limit = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(0);
    if limit < n {
        eprintln!("SKIPPED: this test needs {n} descriptors; the hard limit allows {limit}");
        return false;
    }
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_with_1024_descriptors_sheds_2000_idle_and_300_slowloris_connections_and_keeps_storing()
 {
    let _turn = ONE_AT_A_TIME.lock().await;
    if !room_for(3000) {
        return;
    }
    let dir = scratch("limits-flood");
    let mut root = root(&dir, None, &["--idle-end", "3s"]).await;
    let stop_feed = Arc::new(AtomicBool::new(false));
    let fed = feed(
        root.process.take_stdin().unwrap(),
        250_000,
        stop_feed.clone(),
    );
    let relay = relay(&dir, &root, &["--idle-end", "3s"], Some(1024)).await;
    let pid = relay.pid();
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let open_files = limits.lines().find(|l| l.starts_with("Max open files"));
    println!("relay: {}", open_files.unwrap_or("?"));
    assert!(open_files.is_some_and(|l| l.split_whitespace().nth(3) == Some("1024")));
    let store = dir.join("store-relay");
    wait_status(&relay, Duration::from_secs(20), |s| {
        s["stored"].as_u64() > Some(0)
    })
    .await;
    let cap = status(&relay).await["http"]["max_connections"].clone();
    // A viewer reading from the start throughout.
    let url = "/channels/tv?here=1&from=start";
    let before_viewer = tokio::spawn(get(relay.http, url));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (rss_before, fds_before) = (rss_mb(pid), descriptors(pid));
    let stored_before = store_bytes(&store);

    let stop_sampling = Arc::new(AtomicBool::new(false));
    let sampler = sample(pid, stop_sampling.clone());
    let t0 = Instant::now();
    let mut attackers = Vec::new();
    for i in 0..2300 {
        attackers.push(tokio::spawn(attacker(relay.http, i >= 2000)));
    }
    // A viewer arriving mid-attack waits for a place, then gets the stream.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let during_viewer = tokio::spawn(get(relay.http, url));
    let mut fates = Vec::new();
    for a in attackers {
        fates.push(a.await.unwrap());
    }
    let attack_took = t0.elapsed();
    stop_sampling.store(true, Ordering::Relaxed);
    let (rss_peak, fds_peak) = sampler.await.unwrap();
    let stored_during = store_bytes(&store);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (rss_after, fds_after) = (rss_mb(pid), descriptors(pid));

    stop_feed.store(true, Ordering::Relaxed);
    let fed = fed.await.unwrap();
    let (_, got_before, _) = before_viewer.await.unwrap();
    let (head, got_during, waited) = during_viewer.await.unwrap();
    let (_, got_after, _) = get(relay.http, url).await;
    let s = status(&relay).await;

    let count = |f: fn(&Fate) -> bool| fates.iter().filter(|x| f(x)).count();
    let closed = count(|f| matches!(f, Fate::Closed(_)));
    let poked = count(|f| *f == Fate::EndedWhenPoked);
    let (open, unconnected) = (
        count(|f| *f == Fate::Open),
        count(|f| *f == Fate::NotConnected),
    );
    let slowest = fates
        .iter()
        .filter_map(|f| match f {
            Fate::Closed(d) => Some(*d),
            _ => None,
        })
        .max()
        .unwrap_or_default();
    println!(
        "2000 idle + 300 slowloris against a relay under ulimit -n 1024 (connection cap {cap}): \
         {closed} closed by the relay (the last {:.1} s after connecting), {poked} ended when \
         poked after {ATTACK:?} (dropped in the kernel's handshake), {open} open, {unconnected} \
         never connected; {:.1} s in all; {}",
        slowest.as_secs_f64(),
        attack_took.as_secs_f64(),
        s["http"]
    );
    println!(
        "relay RSS {rss_before:.1} MB before, {rss_peak:.1} MB peak during, {rss_after:.1} MB \
         after; descriptors {fds_before} / {fds_peak} / {fds_after}; store {stored_before} -> \
         {stored_during} bytes during the attack; the viewer arriving mid-attack waited {:.1} s",
        waited.as_secs_f64()
    );
    assert_eq!((open, unconnected), (0, 0), "connections left open");
    // Every connection the relay took, it closed on its header timeout: the 2300, less those
    // its kernel dropped, plus the pokes it took.
    let timeouts = s["http"]["header_timeouts"].as_u64().unwrap_or(0) as usize;
    assert!(timeouts >= closed, "{}", s["http"]);
    assert!(s["store_error"].is_null(), "{s}");
    assert!(stored_during > stored_before, "the relay stopped storing");
    assert!(fds_peak < 1024, "{fds_peak} descriptors");
    assert!(head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"));
    assert_eq!(got_before.len(), fed.len());
    assert!(
        got_before == fed,
        "the viewer's bytes differ from what the root was fed"
    );
    assert!(got_during == fed && got_after == fed);
    assert!(rss_peak < rss_before + 64.0, "{rss_peak:.1} MB peak");
    assert!(rss_after < rss_before + 32.0, "{rss_after:.1} MB after");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn six_hundred_concurrent_live_gets_at_the_root_are_redirected_within_bounded_memory() {
    let _turn = ONE_AT_A_TIME.lock().await;
    if !room_for(2000) {
        return;
    }
    let dir = scratch("limits-redirect");
    let mut root = root(&dir, None, &[]).await;
    let stop_feed = Arc::new(AtomicBool::new(false));
    // 4 Mbit/s, so the store grows between requests.
    let fed = feed(
        root.process.take_stdin().unwrap(),
        500_000,
        stop_feed.clone(),
    );
    let relay = relay(&dir, &root, &[], None).await;
    let t0 = Instant::now();
    loop {
        let head = head_of(root.http, "/channels/tv").await;
        if code_and(&head, "location").0 == 302 {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "no redirect: {head}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let pid = root.pid();
    let rss_before = rss_mb(pid);
    let stop_sampling = Arc::new(AtomicBool::new(false));
    let sampler = sample(pid, stop_sampling.clone());
    let run = Duration::from_secs(4);
    let overflows_before = listen_overflows();
    let live = hammer(root.http, "/channels/tv", 600, run).await;
    // The two loads are separate phases: the second starts once the root has closed the
    // first's connections (on a busy 2-core CI machine that took seconds, and 600 new clients
    // then queued at the connection cap behind the old ones until their 10 s ran out).
    let drained = drain_connections(root.http, 50, Duration::from_secs(20)).await;
    let metrics = hammer(root.http, "/metrics", 600, run).await;
    stop_sampling.store(true, Ordering::Relaxed);
    let (rss_peak, _) = sampler.await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_after = rss_mb(pid);
    // The server's own account of connections it cut or kept waiting, for a failure's message.
    let (_, body, _) = get(root.http, "/metrics").await;
    let cuts: Vec<String> = String::from_utf8_lossy(&body)
        .lines()
        .filter(|l| {
            l.starts_with("esm_http_timeouts_total")
                || l.starts_with("esm_http_waited_at_cap_total")
        })
        .map(str::to_owned)
        .collect();
    let overflows = overflows_before
        .zip(listen_overflows())
        .map(|(a, b)| b.saturating_sub(a));
    println!(
        "the root's HTTP counters: {cuts:?}; handshakes the kernel dropped at full accept \
         queues meanwhile (any listener): {overflows:?}"
    );
    println!(
        "600 concurrent keep-alive clients at the root for {run:?} each: live redirect \
         {:.0} requests/s {:?}, {} retried on a new connection (its connections closed within \
         {drained:?}), /metrics {:.0} requests/s {:?}, {} retried; root RSS {rss_before:.1} MB \
         before, {rss_peak:.1} MB peak, {rss_after:.1} MB after",
        live.rate, live.codes, live.retried, metrics.rate, metrics.codes, metrics.retried
    );
    // Every answer is the right one. A client whose exchange did not finish (code 0: no answer
    // within 10 s, a broken answer, or a new connection closed unanswered) ends. A kept-alive
    // connection the server closed between requests is retried, as browsers and curl do. Two
    // CI runs lost 65 and 96 of the 600 (header timeouts, answers past 10 s): the listen
    // backlog was mio's 128, the kernel dropped the handshakes past it, and those clients
    // waited for their SYN retransmits (now `http_server::LISTEN_BACKLOG`; the kernel's drop
    // count is printed above). Up to a tenth may fail.
    for (load, right, page) in [(&live, 302, "live"), (&metrics, 200, "/metrics")] {
        let codes = &load.codes;
        assert!(
            codes.keys().all(|&c| c == right || c == 0),
            "{page}: {codes:?} {cuts:?}"
        );
        assert!(
            codes.get(&right).copied().unwrap_or(0) > 0,
            "{page}: {codes:?}"
        );
        assert!(
            codes.get(&0).copied().unwrap_or(0) <= 60,
            "{page}: more than a tenth of the clients failed: {codes:?}, {} retried {cuts:?}",
            load.retried
        );
    }
    assert!(rss_peak < rss_before + 48.0, "{rss_peak:.1} MB peak");
    stop_feed.store(true, Ordering::Relaxed);
    let _ = fed.await;
    drop(relay);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewers_that_never_read_cost_a_bounded_amount_and_are_closed_after_the_write_timeout() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let dir = scratch("limits-stall");
    let input = dir.join("in.ts");
    std::fs::write(&input, packets(0, 40_000)).unwrap();
    let extra = ["--fast", "--idle-end", "30s", "--http-write-timeout", "3s"];
    let root = root(&dir, Some(&input), &extra).await;
    wait_status(&root, Duration::from_secs(20), |s| {
        s["stored"].as_u64() == Some(40_000 * P as u64)
    })
    .await;
    let pid = root.pid();
    let rss_before = rss_mb(pid);
    const VIEWERS: usize = 100;
    let mut stalled = Vec::new();
    for _ in 0..VIEWERS {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let mut s = socket.connect(root.http).await.unwrap();
        s.write_all(b"GET /channels/tv?from=start HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        stalled.push(s);
    }
    let t0 = Instant::now();
    let held = wait_status(&root, Duration::from_secs(5), |s| {
        s["clients"].as_u64() == Some(VIEWERS as u64)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let rss_during = rss_mb(pid);
    let s = wait_status(&root, Duration::from_secs(20), |s| {
        s["clients"].as_u64() == Some(0)
    })
    .await;
    let closed_after = t0.elapsed();
    let rss_after = rss_mb(pid);
    let per_viewer_kb = (rss_during - rss_before) * 1024.0 / VIEWERS as f64;
    println!(
        "{VIEWERS} viewers that never read: {} held, all closed {:.1} s after they connected \
         (write timeout 3 s); root RSS {rss_before:.1} MB before, {rss_during:.1} MB while they \
         stalled ({per_viewer_kb:.0} kB each), {rss_after:.1} MB after; {}",
        held["clients"],
        closed_after.as_secs_f64(),
        s["http"]
    );
    assert_eq!(s["http"]["write_timeouts"].as_u64(), Some(VIEWERS as u64));
    assert!(closed_after < Duration::from_secs(12), "{closed_after:?}");
    assert!(per_viewer_kb < 200.0, "{per_viewer_kb:.0} kB a viewer");
    // The server closed them: each reads what was buffered, then the end.
    for mut s in stalled {
        let mut sink = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut sink)).await;
        assert!(read.is_ok(), "a stalled viewer was left open");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_passes_on_the_start_it_parsed_and_a_full_node_sends_viewers_elsewhere_or_asks_them_to_retry()
 {
    let _turn = ONE_AT_A_TIME.lock().await;
    let dir = scratch("limits-redirect-cap");
    let input = dir.join("in.ts");
    let stream = packets(0, 20_000);
    std::fs::write(&input, &stream).unwrap();
    // The root streams to nobody itself; the relay to one viewer.
    let root = root(&dir, Some(&input), &["--fast", "--max-viewers", "0"]).await;
    let relay = relay(
        &dir,
        &root,
        &["--max-viewers", "1", "--idle-end", "2s"],
        None,
    )
    .await;
    let t0 = Instant::now();
    let relay_url = format!("http://{}/channels/tv?here=1", relay.http);
    let location = loop {
        let head = head_of(root.http, "/channels/tv?from=%2B1000").await;
        if let (302, Some(l)) = code_and(&head, "location") {
            break l;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "no redirect: {head}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_eq!(location, format!("{relay_url}&from=1000"));
    // Following it works: the stream from byte 1000 (rounded to nothing: a byte offset is kept).
    wait_status(&relay, Duration::from_secs(20), |s| {
        s["stored"].as_u64() == Some(stream.len() as u64)
    })
    .await;
    let (head, body, _) = get(relay.http, "/channels/tv?here=1&from=1000").await;
    assert!(head.contains(" 200 "), "{head}");
    assert!(body == stream[1000..], "the bytes from 1000 differ");
    let head = head_of(root.http, "/channels/tv?from=start").await;
    assert_eq!(
        code_and(&head, "location").1,
        Some(format!("{relay_url}&from=start"))
    );
    let head = head_of(root.http, "/channels/tv?from=%20").await;
    assert_eq!(code_and(&head, "").0, 400, "{head}");

    // The full root sends even a viewer asking for it to the relay.
    let head = head_of(root.http, "/channels/tv?here=1").await;
    assert_eq!(code_and(&head, "location"), (302, Some(relay_url.clone())));
    // The relay holds one viewer (who does not read); the next is asked to retry.
    let mut first = TcpStream::connect(relay.http).await.unwrap();
    first
        .write_all(b"GET /channels/tv?here=1&from=start HTTP/1.0\r\n\r\n")
        .await
        .unwrap();
    wait_status(&relay, Duration::from_secs(5), |s| {
        s["clients"].as_u64() == Some(1)
    })
    .await;
    let (head, body, _) = get(relay.http, "/channels/tv?here=1").await;
    println!(
        "a full relay answers: {}",
        head.lines().next().unwrap_or("")
    );
    assert_eq!(code_and(&head, "retry-after"), (503, Some("5".to_owned())));
    assert!(!body.is_empty());
    let (root_s, relay_s) = (status(&root).await, status(&relay).await);
    assert_eq!(root_s["viewers_sent_elsewhere"].as_u64(), Some(1));
    assert_eq!(relay_s["viewers_refused"].as_u64(), Some(1));
    let metrics = http_get(relay.http, "/metrics").await.unwrap();
    assert!(metrics.contains("esm_broadcast_viewers_turned_away_total{outcome=\"refused\"} 1"));
    drop(first);
    let _ = std::fs::remove_dir_all(&dir);
}
