//! A slow member below a relay, over the emulated wide-area network: a source sending 1.2 Mbit/s
//! from far away, a relay 60 ms from it, and two members 10 ms from the relay but 150 ms from the
//! source (the detour is shorter, as on real paths that violate the triangle inequality), one
//! of them behind a 600 kbit/s download. The relay feeds both; its pacer towards the slow member
//! drops the enhancement layers there, and its other child still gets the full stream.

use std::path::Path;
use std::time::Duration;

use node::demo::process::MemberProcess;

mod slow_link;

const SECRET: &str = "emulation-relay-test-secret";

async fn member(dir: &Path, spec: &Path, ip: &str, extra: &[&str]) -> MemberProcess {
    slow_link::emulated_member("emulated-relay", SECRET, dir, spec, ip, extra).await
}

/// The member `of` hears `source` from: its next hop towards the source (trees are reverse
/// shortest paths).
fn parent(of: &slow_link::SlowLinkWindow, source: &str) -> Option<String> {
    let routes = &of.receiver.routes;
    routes.iter().find(|r| r.dest == source)?.next_hop.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_member_below_a_relay_keeps_the_base_and_the_relays_other_children_the_full_rate() {
    let dir = std::env::temp_dir().join(format!("esm-emulation-relay-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let spec = dir.join("world.json");
    std::fs::write(
        &spec,
        r#"{"name": "a far source, a relay near it, two members near the relay, one slow",
            "places": [
              {"ip": "127.0.0.2", "name": "source", "up_bps": 20000000, "down_bps": 20000000},
              {"ip": "127.0.0.3", "name": "relay", "up_bps": 20000000, "down_bps": 20000000},
              {"ip": "127.0.0.4", "name": "fast", "up_bps": 20000000, "down_bps": 20000000},
              {"ip": "127.0.0.5", "name": "slow", "up_bps": 20000000, "down_bps": 600000}],
            "one_way_us": [[0, 60000, 150000, 150000],
                           [60000, 0, 10000, 10000],
                           [150000, 10000, 0, 30000],
                           [150000, 10000, 30000, 0]]}"#,
    )
    .unwrap();
    let source = member(&dir, &spec, "127.0.0.2", &["--send", "synthetic:1200kbps"]).await;
    // Every member measures bandwidth levels against the stream's rate.
    let join = [
        "--join",
        &source.quic.to_string(),
        "--stream-rate",
        "1200kbps",
    ];
    let relay = member(&dir, &spec, "127.0.0.3", &join).await;
    let fast = member(&dir, &spec, "127.0.0.4", &join).await;
    let slow = member(&dir, &spec, "127.0.0.5", &join).await;
    let windows =
        slow_link::measure_after(Duration::from_secs(12), &source, &[&relay, &fast, &slow]).await;
    let names = ["relay", "fast", "slow"];
    let ids = [&relay.id, &fast.id, &slow.id];
    let name_of = |id: &str| {
        ids.iter()
            .position(|i| *i == id)
            .map_or(if id == source.id { "source" } else { "?" }, |i| names[i])
    };
    for (name, w) in names.iter().zip(&windows) {
        let from = parent(w, &source.id);
        let width = w
            .receiver
            .routes
            .iter()
            .find(|r| r.dest == source.id)
            .and_then(|r| r.width);
        let neighbours: Vec<String> = w
            .receiver
            .links
            .iter()
            .map(|l| {
                let (m, f, s) = (l.measured, l.full, l.shed);
                let tags = [(m, ""), (!m, " unmeasured"), (f, " full"), (s, " shed")];
                let tags: String = tags.iter().filter(|t| t.0).map(|t| t.1).collect();
                format!(
                    "{} {:.0} ms width {}{tags}",
                    name_of(&l.neighbour),
                    l.latency_ms,
                    l.width
                )
            })
            .collect();
        println!(
            "{name} (neighbours {neighbours:?}), fed by {} (width {width:?}): {}",
            from.as_deref().map_or("nobody", name_of),
            w.describe(&w.receiver.id)
        );
    }
    for (name, w) in names.iter().zip(&windows) {
        for p in w
            .receiver
            .transport
            .peers
            .iter()
            .filter(|p| p.id == slow.id)
        {
            println!(
                "{name} towards slow: paced {:.0} kbit/s, shaped {} by rate and {} by buffer, \
                 {} of {} packets lost",
                p.paced_bps / 1e3,
                p.shaped_by_rate,
                p.shaped_by_buffer,
                p.lost_packets,
                p.sent_packets
            );
        }
    }
    // What the source's QUIC connections think of each path (its pacer spaces the bandwidth
    // probes' trains at about 1.25 congestion windows a round trip).
    if let Ok(st) = source.status().await {
        for p in &st.transport.peers {
            println!(
                "source towards {}: rtt {:.0} ms, cwnd {} B ({:.0} kbit/s a round trip), {} \
                 congestion events, {} of {} packets lost",
                name_of(&p.id),
                p.rtt_ms,
                p.cwnd_bytes,
                p.cwnd_bytes as f64 * 8.0 / (p.rtt_ms.max(0.1) / 1e3) / 1e3,
                p.congestion_events,
                p.lost_packets,
                p.sent_packets
            );
        }
    }
    // The direct paths from the source to the two are far longer than through the relay.
    for (name, w) in names.iter().zip(&windows).skip(1) {
        assert_eq!(
            parent(w, &source.id).as_deref(),
            Some(relay.id.as_str()),
            "{name} hears the source through the relay"
        );
    }
    // The relay's pacer, not the source's, meets the slow link; the relay's other children
    // (and the relay itself) get everything.
    windows[2].assert_layers_kept();
    windows[0].assert_full_rate(0.98);
    windows[1].assert_full_rate(0.98);
    let _ = std::fs::remove_dir_all(&dir);
}
