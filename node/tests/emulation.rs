//! Real `esm conference` processes over the emulated wide-area network: two members on their
//! own loopback addresses, 60 ms apart one way, the second behind a 600 kbit/s download. QUIC
//! measures the round trip the emulation makes, a source's packets arrive after the one-way
//! delay, and the slow member receives no more than its link carries.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use node::app::conference::{ByClass, ConferenceStatus};
use node::demo::process::MemberProcess;
use tokio::process::Command;

const SECRET: &str = "emulation-test-secret";

async fn member(dir: &Path, spec: &Path, ip: &str, extra: &[&str]) -> MemberProcess {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_esm"));
    cmd.arg("conference")
        .args(["--group", "emulated", "--listen", &format!("{ip}:0")])
        .args(["--http", &format!("{ip}:0")])
        .arg("--emulate")
        .arg(spec)
        .arg("--key")
        .arg(dir.join(format!("{ip}.key")))
        .args(extra)
        .env("ESM_SECRET", SECRET)
        .stderr(Stdio::inherit());
    MemberProcess::spawn_ready(cmd).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_far_apart_see_the_emulated_delay_and_a_slow_link_limits_what_arrives() {
    let dir = std::env::temp_dir().join(format!("esm-emulation-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let spec = dir.join("world.json");
    std::fs::write(
        &spec,
        r#"{"name": "two places",
            "places": [
              {"ip": "127.0.0.2", "name": "here", "up_bps": 20000000, "down_bps": 20000000},
              {"ip": "127.0.0.3", "name": "far", "up_bps": 20000000, "down_bps": 600000}],
            "one_way_us": [[0, 60000], [60000, 0]]}"#,
    )
    .unwrap();
    let a = member(&dir, &spec, "127.0.0.2", &["--send", "synthetic:1200kbps"]).await;
    let b = member(&dir, &spec, "127.0.0.3", &["--join", &a.quic.to_string()]).await;
    // Past the join, count what was sent over ten seconds, and what arrived over the same ten
    // seconds a second later (what was on its way at either end is counted once).
    tokio::time::sleep(Duration::from_secs(6)).await;
    let a0: ConferenceStatus = a.status().await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let b0: ConferenceStatus = b.status().await.unwrap();
    tokio::time::sleep(Duration::from_secs(9)).await;
    let sent: ConferenceStatus = a.status().await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let s: ConferenceStatus = b.status().await.unwrap();
    let peer = s
        .transport
        .peers
        .iter()
        .find(|p| p.id == a.id)
        .expect("the far member is connected to the source");
    let from_a = s.sources.get(&a.id).cloned().unwrap_or_default();
    let before = b0.sources.get(&a.id).cloned().unwrap_or_default();
    let minus = |x: ByClass, y: ByClass| ByClass {
        keyframe: x.keyframe - y.keyframe,
        base: x.base - y.base,
        enhancement: x.enhancement - y.enhancement,
    };
    let (got, played, out) = (
        minus(from_a.by_class, before.by_class),
        minus(from_a.played_by_class, before.played_by_class),
        minus(sent.sent_by_class, a0.sent_by_class),
    );
    println!(
        "QUIC RTT {:.1} ms; from the source: {:.0} kbit/s, one-way delay {:.1} ms, loss {:.3}; \
         received keyframe {}/{}, base {}/{}, enhancement {}/{} (in time to play: {}, {}, {}); \
         the source's link paced at {:.0} kbit/s, {} shaped, {} late, {} dropped",
        peer.rtt_ms,
        from_a.rate_kbps,
        from_a.delay_ms,
        from_a.loss,
        got.keyframe,
        out.keyframe,
        got.base,
        out.base,
        got.enhancement,
        out.enhancement,
        played.keyframe,
        played.base,
        played.enhancement,
        sent.transport
            .peers
            .iter()
            .find(|p| p.id == b.id)
            .map_or(0.0, |p| p.paced_bps / 1e3),
        sent.transport.counters.sends_shaped,
        sent.transport.counters.sends_late,
        sent.transport.counters.sends_dropped,
    );
    assert!(
        (115.0..250.0).contains(&peer.rtt_ms),
        "the round trip is the emulated 120 ms: {}",
        peer.rtt_ms
    );
    assert!(
        (59.0..400.0).contains(&from_a.delay_ms),
        "packets take the emulated 60 ms, and wait in no queue for long: {}",
        from_a.delay_ms
    );
    // What the link could not carry was the enhancement layers, not keyframes or the base,
    // and what came, came in time to play. (Measured: keyframes 90 of 90, base 591 of 590 (the
    // two windows are a second apart), enhancement 0.16-0.20, all of it in time; before the
    // base layer could wait behind a keyframe and borrow half as far as keyframes, base
    // 0.91-0.92.)
    assert!(
        out.keyframe > 0 && out.base > 0 && out.enhancement > 0,
        "the source sent every class in the window: {out:?}"
    );
    let share = |got: u64, out: u64| got as f64 / out.max(1) as f64;
    assert!(
        share(played.keyframe, out.keyframe) >= 0.95,
        "keyframes in time: {played:?} of {out:?}"
    );
    assert!(
        share(played.base, out.base) >= 0.98,
        "base layer in time: {played:?} of {out:?}"
    );
    assert!(
        share(got.enhancement, out.enhancement) < 0.3,
        "enhancement dropped first: {got:?} of {out:?}"
    );
    assert!(
        from_a.rate_kbps > 200.0 && from_a.rate_kbps < 620.0,
        "a 600 kbit/s download carries no more: {}",
        from_a.rate_kbps
    );
    let _ = std::fs::remove_dir_all(&dir);
}
