//! Real `esm conference` processes over the emulated wide-area network: two members on their
//! own loopback addresses, 60 ms apart one way, the second behind a 600 kbit/s download. QUIC
//! measures the round trip the emulation makes, a source's packets arrive after the one-way
//! delay, and the slow member receives no more than its link carries.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use node::app::conference::ConferenceStatus;
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
    tokio::time::sleep(Duration::from_secs(12)).await;
    let s: ConferenceStatus = b.status().await.unwrap();
    let peer = s
        .transport
        .peers
        .iter()
        .find(|p| p.id == a.id)
        .expect("the far member is connected to the source");
    let from_a = s.sources.get(&a.id).cloned().unwrap_or_default();
    println!(
        "QUIC RTT {:.1} ms; from the source: {:.0} kbit/s, one-way delay {:.1} ms, loss {:.3}",
        peer.rtt_ms, from_a.rate_kbps, from_a.delay_ms, from_a.loss
    );
    assert!(
        (115.0..250.0).contains(&peer.rtt_ms),
        "the round trip is the emulated 120 ms: {}",
        peer.rtt_ms
    );
    assert!(
        from_a.delay_ms >= 59.0,
        "packets take the emulated 60 ms: {}",
        from_a.delay_ms
    );
    assert!(
        from_a.rate_kbps > 200.0 && from_a.rate_kbps < 620.0,
        "a 600 kbit/s download carries no more: {}",
        from_a.rate_kbps
    );
    let _ = std::fs::remove_dir_all(&dir);
}
