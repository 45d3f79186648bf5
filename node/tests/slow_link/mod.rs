//! What the slow-link tests share (`emulation.rs`, `emulation_relay.rs`, `kernel_shaping.rs`):
//! a source sending 1.2 Mbit/s to a member behind a 600 kbit/s link (directly or through a
//! relay), what was sent and what arrived of the frames of the same ten seconds by layer, the
//! check that rate adaptation kept the keyframes and the base layer in time while the
//! enhancement layers gave way, and the check that a member on a fast link got everything.

#![allow(dead_code, unreachable_pub)]

use std::ops::Range;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use node::app::conference::{ByClass, ConferenceStatus, MediaSecond, SourceStatus};
use node::demo::process::MemberProcess;
use tokio::process::Command;

/// Start an `esm conference` member of `group` through `cmd` (the `esm` binary, or a wrapper
/// that runs it): it listens and serves HTTP on `ip`, keeps its key in `dir`, shares `secret`
/// with the group, and takes the `extra` arguments; returns once it is ready.
pub async fn conference_member(
    mut cmd: Command,
    group: &str,
    secret: &str,
    dir: &Path,
    ip: &str,
    extra: &[&str],
) -> MemberProcess {
    cmd.arg("conference")
        .args(["--group", group, "--listen", &format!("{ip}:0")])
        .args(["--http", &format!("{ip}:0")])
        .arg("--key")
        .arg(dir.join(format!("{ip}.key")))
        .args(extra)
        .env("ESM_SECRET", secret)
        .stderr(Stdio::inherit());
    let mut member = MemberProcess::spawn_ready(cmd).await.unwrap();
    // Its /status answers this machine's loopback, and others (into a namespace) with its token.
    let admission = node::transport::admission::GroupSecret::new(group, secret.as_bytes()).unwrap();
    member.set_status_token(admission.status_token(member.id.parse().unwrap()));
    member
}

/// As [`conference_member`], the `esm` binary run in network namespace `netns` if one is
/// given (`ip netns exec`).
pub async fn member_in(
    netns: Option<&str>,
    group: &str,
    secret: &str,
    dir: &Path,
    ip: &str,
    extra: &[&str],
) -> MemberProcess {
    let esm = env!("CARGO_BIN_EXE_esm");
    let cmd = match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, esm]);
            c
        }
        None => Command::new(esm),
    };
    conference_member(cmd, group, secret, dir, ip, extra).await
}

/// Start an `esm conference` member of `group` in the emulated world `spec` (a place of which
/// is at `ip`), as [`conference_member`] does.
pub async fn emulated_member(
    group: &str,
    secret: &str,
    dir: &Path,
    spec: &Path,
    ip: &str,
    extra: &[&str],
) -> MemberProcess {
    let spec = spec.to_str().expect("a UTF-8 temporary path");
    let args = [&["--emulate", spec][..], extra].concat();
    let esm = Command::new(env!("CARGO_BIN_EXE_esm"));
    conference_member(esm, group, secret, dir, ip, &args).await
}

/// The frames of ten seconds past the join, at both ends.
pub struct SlowLinkWindow {
    /// Their packets that arrived at the receiver, by layer.
    pub got: ByClass,
    /// Of them, those in time to play.
    pub played: ByClass,
    /// Their packets the source sent, by layer.
    pub out: ByClass,
    /// The receiver's view of the source at the end.
    pub from_source: SourceStatus,
    /// The source's status at the end.
    pub source: ConferenceStatus,
    /// The receiver's status at the end.
    pub receiver: ConferenceStatus,
}

fn unix_now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("a clock after 1970")
}

/// The packets of the frames captured in `seconds`, by layer: `pick` chooses which count of
/// each second.
fn over(seconds: &[MediaSecond], range: &Range<u64>, pick: fn(&MediaSecond) -> ByClass) -> ByClass {
    seconds
        .iter()
        .filter(|s| range.contains(&s.second))
        .map(pick)
        .fold(ByClass::default(), |a, c| ByClass {
            keyframe: a.keyframe + c.keyframe,
            base: a.base + c.base,
            enhancement: a.enhancement + c.enhancement,
        })
}

/// Past the join, the frames `source` captured over ten whole seconds: how many packets of
/// each layer it sent and how many arrived at `receiver` (counted by the second the frames
/// were captured at both ends, so what was on its way at either end is neither lost nor
/// counted twice).
pub async fn measure(source: &MemberProcess, receiver: &MemberProcess) -> SlowLinkWindow {
    let mut windows = measure_after(Duration::from_secs(6), source, &[receiver]).await;
    windows.pop().expect("one window per receiver")
}

/// As [`measure`], for each of `receivers`, over the same ten seconds, which start `settle`
/// from now.
pub async fn measure_after(
    settle: Duration,
    source: &MemberProcess,
    receivers: &[&MemberProcess],
) -> Vec<SlowLinkWindow> {
    tokio::time::sleep(settle).await;
    let from = unix_now().as_secs() + 1;
    let seconds = from..from + 10;
    // Until the last second's frames have been played or given up (a playout waits at most
    // 700 ms), well within the seconds the members keep.
    let end = Duration::from_secs(seconds.end) + Duration::from_millis(1500);
    tokio::time::sleep(end.saturating_sub(unix_now())).await;
    let source_status = source.status().await.unwrap();
    let mut windows = Vec::new();
    for receiver in receivers {
        let receiver_status = receiver.status().await.unwrap();
        let from_source = receiver_status
            .sources
            .get(&source.id)
            .cloned()
            .unwrap_or_default();
        windows.push(SlowLinkWindow {
            got: over(&from_source.by_media_second, &seconds, |s| s.packets),
            played: over(&from_source.by_media_second, &seconds, |s| s.played),
            out: over(&source_status.sent_by_media_second, &seconds, |s| s.packets),
            from_source,
            source: source_status.clone(),
            receiver: receiver_status,
        });
    }
    windows
}

impl SlowLinkWindow {
    /// One line of the figures: rate, delay, each layer received and in time, the source's
    /// paced rate towards `receiver_id` and its pacer's counters.
    pub fn describe(&self, receiver_id: &str) -> String {
        let (got, played, out, s) = (self.got, self.played, self.out, &self.from_source);
        let paced = self
            .source
            .transport
            .peers
            .iter()
            .find(|p| p.id == receiver_id)
            .map_or(0.0, |p| p.paced_bps / 1e3);
        let c = &self.source.transport.counters;
        format!(
            "from the source {:.0} kbit/s, one-way delay {:.1} ms, loss {:.3}; received \
             keyframe {}/{}, base {}/{}, enhancement {}/{} (in time to play: {}, {}, {}); the \
             source's link paced at {paced:.0} kbit/s, {} shaped, {} late, {} dropped",
            s.rate_kbps,
            s.delay_ms,
            s.loss,
            got.keyframe,
            out.keyframe,
            got.base,
            out.base,
            got.enhancement,
            out.enhancement,
            played.keyframe,
            played.base,
            played.enhancement,
            c.sends_shaped,
            c.sends_late,
            c.sends_dropped,
        )
    }

    /// Every layer came, in time to play: at least `share` of the packets of each.
    pub fn assert_full_rate(&self, share: f64) {
        let (played, out) = (self.played, self.out);
        let of = |got: u64, out: u64| got as f64 / out.max(1) as f64;
        assert!(
            out.keyframe > 0 && out.base > 0 && out.enhancement > 0,
            "the source sent every class in the window: {out:?}"
        );
        for (class, got, sent) in [
            ("keyframes", played.keyframe, out.keyframe),
            ("base layer", played.base, out.base),
            ("enhancement layers", played.enhancement, out.enhancement),
        ] {
            assert!(
                of(got, sent) >= share,
                "{class} in time at a member on a fast link: {played:?} of {out:?}"
            );
        }
    }

    /// What the link could not carry was the enhancement layers, not keyframes or the base,
    /// and what came, came in time to play; no more arrived than 600 kbit/s carries.
    pub fn assert_layers_kept(&self) {
        let (got, played, out) = (self.got, self.played, self.out);
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
        let rate = self.from_source.rate_kbps;
        assert!(
            rate > 200.0 && rate < 620.0,
            "a 600 kbit/s link carries no more: {rate}"
        );
    }
}

/// A network namespace behind a veth pair from this one; both are deleted when this is
/// dropped. Nothing is shaped until asked ([`SlowLink::shape_near`], [`SlowLink::shape_port`]).
pub struct SlowLink {
    /// The namespace's name.
    pub netns: String,
    /// The pair's end in this namespace, and its address.
    pub near: String,
    pub near_ip: String,
    /// The pair's end in the namespace, and its address.
    pub far: String,
    pub far_ip: String,
}

/// Runs a command that must succeed (this kind of test needs root and iproute2).
pub fn run(args: &[&str]) {
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
    /// A fresh namespace behind a veth pair, nothing shaped; `net` picks the /24 (10.231.net.0
    /// for the kernel-shaping test, others their own) so tests in parallel do not clash.
    pub fn new(net: u8, tag: &str) -> Self {
        let id = std::process::id() % 100_000;
        let link = Self {
            netns: format!("esm-{tag}-{id}"),
            near: format!("esm{tag}n{id}"),
            near_ip: format!("10.{net}.{}.1", id % 250),
            far: format!("esm{tag}f{id}"),
            far_ip: format!("10.{net}.{}.2", id % 250),
        };
        let ns = link.netns.as_str();
        run(&["ip", "netns", "add", ns]);
        run(&[
            "ip", "link", "add", &link.near, "type", "veth", "peer", "name", &link.far,
        ]);
        run(&["ip", "link", "set", &link.far, "netns", ns]);
        run(&[
            "ip",
            "addr",
            "add",
            &format!("{}/24", link.near_ip),
            "dev",
            &link.near,
        ]);
        run(&["ip", "link", "set", &link.near, "up"]);
        link.inside(&[
            "ip",
            "addr",
            "add",
            &format!("{}/24", link.far_ip),
            "dev",
            &link.far,
        ]);
        link.inside(&["ip", "link", "set", &link.far, "up"]);
        link.inside(&["ip", "link", "set", "lo", "up"]);
        link
    }

    /// Runs a command in the namespace.
    pub fn inside(&self, args: &[&str]) {
        let mut all = vec!["ip", "netns", "exec", self.netns.as_str()];
        all.extend_from_slice(args);
        run(&all);
    }

    /// Everything towards the namespace through a token bucket of `rate` (tc's syntax) whose
    /// queue holds 100 ms.
    pub fn shape_near(&self, rate: &str) {
        run(&[
            "tc", "qdisc", "add", "dev", &self.near, "root", "tbf", "rate", rate, "burst", "3000",
            "latency", "100ms",
        ]);
    }

    /// What the namespace sends from UDP or TCP source port `port` through `kbps` kbit/s
    /// (htb, bursts of 5 ms at that rate and at least 3 000 bytes, a queue of `queue`
    /// packets), the rest unshaped; called again, it changes the rate.
    pub fn shape_port(&self, port: u16, kbps: u64, queue: usize) {
        let far = self.far.as_str();
        let port = port.to_string();
        let queue = queue.to_string();
        let rate = format!("{kbps}kbit");
        let burst = (kbps * 1000 / 8 / 200).max(3000).to_string();
        let verb = if self.port_shaped() { "change" } else { "add" };
        if verb == "add" {
            self.inside(&[
                "tc", "qdisc", "add", "dev", far, "root", "handle", "1:", "htb", "default", "1",
            ]);
            self.inside(&[
                "tc", "class", "add", "dev", far, "parent", "1:", "classid", "1:1", "htb", "rate",
                "10gbit",
            ]);
        }
        self.inside(&[
            "tc", "class", verb, "dev", far, "parent", "1:", "classid", "1:2", "htb", "rate",
            &rate, "ceil", &rate, "burst", &burst,
        ]);
        if verb == "add" {
            self.inside(&[
                "tc", "qdisc", "add", "dev", far, "parent", "1:2", "handle", "20:", "pfifo",
                "limit", &queue,
            ]);
            self.inside(&[
                "tc", "filter", "add", "dev", far, "parent", "1:", "protocol", "ip", "u32",
                "match", "ip", "sport", &port, "0xffff", "flowid", "1:2",
            ]);
        }
    }

    /// Whether [`SlowLink::shape_port`] has set up its classes.
    fn port_shaped(&self) -> bool {
        std::process::Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.netns,
                "tc",
                "class",
                "show",
                "dev",
                &self.far,
            ])
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("1:2"))
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
