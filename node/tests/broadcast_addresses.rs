//! Addresses the root can trust: a relay bound to the wildcard address is known by where its
//! connections come from (never `0.0.0.0`); a relay that advertises an address it is reached
//! at is sent viewers there; one that advertises an address where it does not answer is never
//! sent a viewer (the root checks each address by asking it for its id).
//!
//! Needs ffmpeg (see `broadcast.rs`).

mod common;

use std::time::{Duration, Instant};

use common::*;

fn relay_args<'a>(
    root: &'a str,
    listen: &'a str,
    http: &'a str,
    extra: &[&'a str],
) -> Vec<&'a str> {
    let mut args = vec![
        "relay",
        "--channel",
        "tv",
        "--root",
        root,
        "--listen",
        listen,
        "--http",
        http,
    ];
    args.extend_from_slice(extra);
    args
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_root_sends_viewers_only_to_addresses_that_answer_as_the_node_that_named_them() {
    if !tools(&["ffmpeg"]) {
        return;
    }
    let dir = scratch("addresses");
    let src = make_stream(&dir);
    let root = root(&dir, &src, &[], "root").await;
    // Bound to the wildcard: named by where its connections come from.
    let wild = start(
        &dir,
        &relay_args(&root.quic, "0.0.0.0:0", "0.0.0.0:0", &[]),
        "wild",
    )
    .await;
    // Bound to the wildcard, advertising another loopback address it answers at.
    let advertised = start(
        &dir,
        &relay_args(
            &root.quic,
            "0.0.0.0:0",
            "0.0.0.0:0",
            &["--advertise", "127.0.0.5"],
        ),
        "advertised",
    )
    .await;
    // Bound to 127.0.0.1 only, advertising an address where it does not answer.
    let liar = start(
        &dir,
        &relay_args(
            &root.quic,
            "127.0.0.1:0",
            "127.0.0.1:0",
            &["--advertise", "127.0.0.9"],
        ),
        "liar",
    )
    .await;
    let port = |n: &Node| n.http.rsplit(':').next().unwrap().to_owned();
    let (wild_at, advertised_at, liar_at) = (
        format!("127.0.0.1:{}", port(&wild)),
        format!("127.0.0.5:{}", port(&advertised)),
        format!("127.0.0.9:{}", port(&liar)),
    );
    let id_of = |n: &Node| n.process.id.clone();
    let wait = Instant::now();
    let nodes = loop {
        let s = status(&root).await;
        let nodes: Vec<serde_json::Value> = s["live_nodes"].as_array().cloned().unwrap_or_default();
        let vouched = |id: &str| nodes.iter().any(|n| n["id"] == id && n["vouched"] == true);
        // The liar joined last: wait until the root knows it too.
        let known = |id: &str| nodes.iter().any(|n| n["id"] == id);
        if vouched(&id_of(&wild)) && vouched(&id_of(&advertised)) && known(&id_of(&liar)) {
            break nodes;
        }
        assert!(
            wait.elapsed() < Duration::from_secs(30),
            "the root never vouched for the honest relays: {s}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let named = |n: &Node| {
        nodes
            .iter()
            .find(|x| x["id"] == id_of(n).as_str())
            .map(|x| {
                (
                    x["http"].as_str().unwrap_or("").to_owned(),
                    x["vouched"] == true,
                )
            })
    };
    println!(
        "the root knows: wild {:?}, advertised {:?}, liar {:?}",
        named(&wild),
        named(&advertised),
        named(&liar)
    );
    assert_eq!(named(&wild), Some((wild_at.clone(), true)));
    assert_eq!(named(&advertised), Some((advertised_at.clone(), true)));
    assert_eq!(named(&liar), Some((liar_at.clone(), false)));
    for _ in 0..20 {
        let head = http_get_raw(&root.http, "/channels/tv").await;
        let location = head
            .lines()
            .find_map(|l| {
                l.strip_prefix("location: ")
                    .or_else(|| l.strip_prefix("Location: "))
            })
            .unwrap_or_default()
            .to_owned();
        assert!(
            location.contains(&wild_at) || location.contains(&advertised_at),
            "a viewer was sent to {location:?}: {head}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
