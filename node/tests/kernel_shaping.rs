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

use std::path::Path;

use node::demo::process::MemberProcess;
use tokio::process::Command;

mod slow_link;

const SECRET: &str = "kernel-shaping-test-secret";

/// A namespace and the veth pair into it; both are deleted when this is dropped.
struct SlowLink {
    netns: String,
    near: String,
    near_ip: String,
    far_ip: String,
}

fn run(args: &[&str]) {
    let out = std::process::Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{} could not run: {e}", args[0]));
    assert!(
        out.status.success(),
        "`{}` failed (this test needs root and iproute2): {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
}

impl SlowLink {
    /// A namespace behind a veth pair shaped to `rate` (tc's syntax) towards it.
    fn new(rate: &str) -> Self {
        let tag = std::process::id() % 100_000;
        let link = Self {
            netns: format!("esm-slow-{tag}"),
            near: format!("esmn{tag}"),
            near_ip: format!("10.231.{}.1", tag % 250),
            far_ip: format!("10.231.{}.2", tag % 250),
        };
        let far = format!("esmf{tag}");
        let ns = link.netns.as_str();
        run(&["ip", "netns", "add", ns]);
        run(&[
            "ip", "link", "add", &link.near, "type", "veth", "peer", "name", &far,
        ]);
        run(&["ip", "link", "set", &far, "netns", ns]);
        run(&[
            "ip",
            "addr",
            "add",
            &format!("{}/24", link.near_ip),
            "dev",
            &link.near,
        ]);
        run(&["ip", "link", "set", &link.near, "up"]);
        let inside = |args: &[&str]| {
            let mut all = vec!["ip", "netns", "exec", ns];
            all.extend_from_slice(args);
            run(&all);
        };
        inside(&[
            "ip",
            "addr",
            "add",
            &format!("{}/24", link.far_ip),
            "dev",
            &far,
        ]);
        inside(&["ip", "link", "set", &far, "up"]);
        inside(&["ip", "link", "set", "lo", "up"]);
        // A token bucket of 600 kbit/s whose queue holds 100 ms, as the emulation's does.
        run(&[
            "tc", "qdisc", "add", "dev", &link.near, "root", "tbf", "rate", rate, "burst", "3000",
            "latency", "100ms",
        ]);
        link
    }
}

impl Drop for SlowLink {
    fn drop(&mut self) {
        // Deleting the namespace deletes the veth pair with it.
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &self.netns])
            .output();
        let _ = std::process::Command::new("ip")
            .args(["link", "del", &self.near])
            .output();
    }
}

async fn member(dir: &Path, netns: Option<&str>, ip: &str, extra: &[&str]) -> MemberProcess {
    let esm = env!("CARGO_BIN_EXE_esm");
    let cmd = match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, esm]);
            c
        }
        None => Command::new(esm),
    };
    slow_link::conference_member(cmd, "shaped", SECRET, dir, ip, extra).await
}

/// A source on the near end sends 1.2 Mbit/s to a member in the namespace, started with
/// `slow_flags`; the member must get the keyframes and the base layer in time.
async fn slow_member_behind_tbf(label: &str, slow_flags: &[&str]) {
    let dir = std::env::temp_dir().join(format!("esm-kernel-shaping-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let link = SlowLink::new("600kbit");
    let a = member(&dir, None, &link.near_ip, &["--send", "synthetic:1200kbps"]).await;
    let source = a.quic.to_string();
    let join = [&["--join", source.as_str()][..], slow_flags].concat();
    let b = member(&dir, Some(&link.netns), &link.far_ip, &join).await;
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
