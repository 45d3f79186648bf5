//! The emulation's bandwidth part checked against the kernel's: two real `esm conference`
//! processes, the second in a network namespace of its own that this test creates, reached
//! over a veth pair whose near end shapes everything towards it with `tc` tbf at 600 kbit/s
//! (no delay: netem is not available here). With the kernel's queue as the bottleneck instead
//! of the user-space emulation's, the slow member must still get every keyframe and the base
//! layer in time and lose the enhancement layers, as `tests/emulation.rs` asks of the
//! emulated link. Needs root and `ip`/`tc` (iproute2); traffic stays on the veth pair.
//!
//! Two cases: the member does not know its download (only the rate control of the source's
//! link meets tbf), and it does (`--download 600kbps`: it tells the source the share of its
//! download the stream may fill, 85% of it). Ignored in CI (needs root). Measured, four runs
//! each: knowing its download, keyframes 90 of 90 and base 589 of 590 every time, paced at
//! 510 kbit/s; not knowing it, three of four pass (keyframes 89-90, base 584-587 in time) and
//! one misses the base by a hair (578 of 590 in time, asks 0.98), paced at 473-654 kbit/s.
//! Run them with
//! `cargo test --release -p node --test kernel_shaping -- --ignored --nocapture --test-threads 1`.

mod slow_link;

use slow_link::SlowLink;

const GROUP: &str = "shaped";
const SECRET: &str = "kernel-shaping-test-secret";

/// A source on the near end sends 1.2 Mbit/s to a member in the namespace, started with
/// `slow_flags`; the member must get the keyframes and the base layer in time.
async fn slow_member_behind_tbf(label: &str, slow_flags: &[&str]) {
    let dir = std::env::temp_dir().join(format!("esm-kernel-shaping-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let link = SlowLink::new(231, "slow");
    // A token bucket of 600 kbit/s whose queue holds 100 ms, as the emulation's does.
    link.shape_near("600kbit");
    let a = slow_link::member_in(
        None,
        GROUP,
        SECRET,
        &dir,
        &link.near_ip,
        &["--send", "synthetic:1200kbps"],
    )
    .await;
    let source = a.quic.to_string();
    let join = [&["--join", source.as_str()][..], slow_flags].concat();
    let b = slow_link::member_in(Some(&link.netns), GROUP, SECRET, &dir, &link.far_ip, &join).await;
    let w = slow_link::measure(&a, &b).await;
    println!("kernel tbf 600 kbit/s, {label}: {}", w.describe(&b.id));
    drop((a, b));
    drop(link);
    let _ = std::fs::remove_dir_all(&dir);
    w.assert_layers_kept();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root; passes three runs in four (the rate control alone overshoots tbf)"]
async fn behind_a_kernel_shaped_600_kbits_link_a_member_gets_keyframes_and_base_in_time() {
    slow_member_behind_tbf("download unknown", &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root"]
async fn a_member_that_knows_its_600_kbits_download_gets_keyframes_and_base_in_time() {
    // It tells the source the share of its download the stream may fill (85% of it).
    slow_member_behind_tbf("--download 600kbps", &["--download", "600kbps"]).await;
}
