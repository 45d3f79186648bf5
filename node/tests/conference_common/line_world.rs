//! Three members on an emulated line, a to b to c, for the tests of what c's browser sees
//! when the link from b narrows or b dies; and a tab's stall figures.

use std::time::{Duration, Instant};

use node::demo::process::MemberProcess;

use super::chromium::Chromium;
use super::{GROUP, SECRET, page_value};

/// A member of the emulated world `spec` at `ip` (its QUIC over the emulated paths; its HTTP
/// and WebRTC sockets on `ip`, reached by the browser directly).
pub async fn emulated(
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
pub async fn line_world(
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
pub async fn line_world_changing(
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

/// Each watched source's figures in a tab: frames decoded and the longest stall so far (ms).
pub async fn stalls(browser: &mut Chromium, tab: &str) -> Vec<(String, u64, f64)> {
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
