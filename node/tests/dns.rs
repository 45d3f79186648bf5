//! The live resolver over DNS, asked by clients nobody here wrote: in a network namespace this
//! test creates (its `/etc/resolv.conf` points at the resolver, through `ip netns exec`'s
//! `/etc/netns/NAME/resolv.conf`), `esm resolver --dns 127.0.0.1:53` and three members that
//! register with it; glibc (`getent ahosts`) resolves `talk._anycast.esm.internal` to a live
//! member, `dig` shows the OPT record and the SRV port, and once the member answered most is
//! SIGKILLed, answers leave it out (within the transport's 4 s idle timeout and a query round;
//! the time is printed). In a second namespace, `esm resolve --serve 127.0.0.1:53` forwards to a
//! resolver that speaks only QUIC, and glibc and `dig` resolve through it. A dnsperf benchmark
//! (ignored) compares the live resolver with a fixed table.
//!
//! Needs root and iproute2 (for the namespace) and `dig` (dnsutils): without them it says
//! SKIPPED, unless `ESM_REQUIRE_NETNS=1` (set by `.ci/run` when it runs as root) makes that a
//! failure.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use node::demo::process::MemberProcess;
use tokio::process::Command;

mod slow_link;

const SECRET: &str = "dns-test-secret-walnut-orbit";
const NAME: &str = "talk._anycast.esm.internal";

/// A network namespace with its loopback up and a resolv.conf of its own naming 127.0.0.1;
/// both go when this is dropped.
struct Namespace {
    name: String,
    etc: std::path::PathBuf,
}

impl Namespace {
    /// The namespace `tag` of this process, or why it could not be made.
    fn new(tag: &str) -> Result<Self, String> {
        let name = format!("esm-{tag}-{}", std::process::id() % 100_000);
        let run = |args: &[&str]| -> Result<(), String> {
            let out = std::process::Command::new(args[0])
                .args(&args[1..])
                .output()
                .map_err(|e| format!("{}: {e}", args[0]))?;
            if out.status.success() {
                Ok(())
            } else {
                Err(format!(
                    "`{}`: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&out.stderr).trim()
                ))
            }
        };
        run(&["ip", "netns", "add", &name])?;
        let etc = Path::new("/etc/netns").join(&name);
        let ns = Self { name, etc };
        run(&[
            "ip", "netns", "exec", &ns.name, "ip", "link", "set", "lo", "up",
        ])?;
        std::fs::create_dir_all(&ns.etc).map_err(|e| format!("{}: {e}", ns.etc.display()))?;
        std::fs::write(
            ns.etc.join("resolv.conf"),
            "nameserver 127.0.0.1\noptions attempts:1 timeout:2\n",
        )
        .map_err(|e| format!("resolv.conf: {e}"))?;
        Ok(ns)
    }

    /// A command that runs `program` inside.
    fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }

    /// `getent ahosts NAME` inside: the addresses glibc's resolver returned (none when the
    /// name did not resolve).
    async fn getent(&self, name: &str) -> Vec<String> {
        let out = self
            .command("getent")
            .args(["ahosts", name])
            .output()
            .await
            .expect("getent runs");
        let mut ips: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
            .collect();
        ips.dedup();
        ips
    }

    /// `dig` inside with `args`, its output.
    async fn dig(&self, args: &[&str]) -> String {
        let out = self
            .command("dig")
            .args(["@127.0.0.1", "+tries=1", "+time=2"])
            .args(args)
            .output()
            .await
            .expect("dig runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
        let _ = std::fs::remove_dir_all(&self.etc);
    }
}

/// A fresh scratch folder for test `tag`.
fn scratch(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("esm-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A namespace for test `tag`, or `None` (after saying SKIPPED) when this machine cannot make
/// one or has no `dig`; with `ESM_REQUIRE_NETNS` set, that is a failure instead.
fn namespace_or_skip(tag: &str) -> Option<Namespace> {
    let dig_there = std::process::Command::new("dig").arg("-v").output().is_ok();
    let made = if dig_there {
        Namespace::new(tag)
    } else {
        Err("dig is not installed".to_owned())
    };
    match made {
        Ok(ns) => Some(ns),
        Err(why) if std::env::var_os("ESM_REQUIRE_NETNS").is_some() => {
            panic!("ESM_REQUIRE_NETNS is set, but {why}")
        }
        Err(why) => {
            eprintln!("SKIPPED: needs root, iproute2 and dig ({why})");
            None
        }
    }
}

/// `cmd` (the `esm` binary, or a wrapper running it) made an `esm resolver` for group `talk`
/// on a loopback port, keeping its key in `dir`, with `flags` added.
fn resolver_command(mut cmd: Command, dir: &Path, flags: &[&str]) -> Command {
    cmd.args(["resolver", "--group", "talk", "--listen", "127.0.0.1:0"])
        .args(flags)
        .arg("--key")
        .arg(dir.join("resolver.key"))
        .env("ESM_SECRET", SECRET)
        .stderr(std::process::Stdio::inherit());
    cmd
}

/// How many of `rounds` lookups named each address.
async fn tally(ns: &Namespace, rounds: usize) -> BTreeMap<String, usize> {
    let mut seen = BTreeMap::new();
    for _ in 0..rounds {
        for ip in ns.getent(NAME).await {
            *seen.entry(ip).or_insert(0) += 1;
        }
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn glibc_and_dig_resolve_live_members_and_a_killed_one_leaves_the_answers() {
    let Some(ns) = namespace_or_skip("dns") else {
        return;
    };
    let dir = scratch("dns");
    let esm = env!("CARGO_BIN_EXE_esm");
    let cmd = resolver_command(ns.command(esm), &dir, &["--dns", "127.0.0.1:53"]);
    let resolver = MemberProcess::spawn_ready(cmd).await.unwrap();
    assert_eq!(resolver.dns, Some("127.0.0.1:53".parse().unwrap()));
    let at = resolver.quic.to_string();
    let by_name = ["--resolver", at.as_str(), "--join-by-name"];
    let mut members = Vec::new();
    for ip in ["127.0.0.2", "127.0.0.3", "127.0.0.4"] {
        let m =
            slow_link::conference_member(ns.command(esm), "talk", SECRET, &dir, ip, &by_name).await;
        members.push((ip.to_owned(), m));
    }
    let member_ips: Vec<&str> = members.iter().map(|(ip, _)| ip.as_str()).collect();

    // glibc finds a live member once they registered.
    let start = Instant::now();
    let seen = loop {
        let seen = tally(&ns, 10).await;
        if seen.len() >= 2 || start.elapsed() > Duration::from_secs(20) {
            break seen;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    println!("getent ahosts {NAME}, 10 lookups: {seen:?}");
    assert!(!seen.is_empty(), "glibc resolved nothing");
    for ip in seen.keys() {
        assert!(member_ips.contains(&ip.as_str()), "{ip} is no member");
    }
    assert!(ns.getent("nobody._anycast.esm.internal").await.is_empty());

    // dig: EDNS answered with EDNS; SRV gives a member's port and a target that resolves.
    let a = ns.dig(&["+edns=0", NAME, "A"]).await;
    assert!(
        a.contains("OPT PSEUDOSECTION") && a.contains("EDNS: version: 0"),
        "{a}"
    );
    assert!(a.contains("status: NOERROR") && a.contains(" aa"), "{a}");
    let srv = ns.dig(&["+short", NAME, "SRV"]).await;
    let fields: Vec<&str> = srv.split_whitespace().collect();
    let [_, _, port, target] = fields[..] else {
        panic!("SRV answer {srv:?}")
    };
    assert!(
        members
            .iter()
            .any(|(_, m)| m.quic.port().to_string() == port),
        "SRV port {port} is no member's"
    );
    let by_target = ns.dig(&["+short", target, "A"]).await;
    assert!(
        member_ips.contains(&by_target.trim()),
        "{target} -> {by_target:?}"
    );
    println!("dig SRV: {}", srv.trim());

    // Kill the member answered most: the answers leave it.
    let (victim_ip, _) = seen.iter().max_by_key(|(_, n)| **n).unwrap();
    let victim_ip = victim_ip.clone();
    let victim = members.iter_mut().find(|(ip, _)| *ip == victim_ip).unwrap();
    victim.1.kill().await;
    let killed = Instant::now();
    // When the first of two rounds of ten lookups, each answered, without it began.
    let mut clean_since = None;
    let gone_after = loop {
        let round = killed.elapsed();
        let seen = tally(&ns, 10).await;
        if seen.contains_key(&victim_ip) || seen.is_empty() {
            clean_since = None;
        } else if let Some(since) = clean_since {
            break Some(since);
        } else {
            clean_since = Some(round);
        }
        if killed.elapsed() > Duration::from_secs(30) {
            break None;
        }
    };
    let gone_after = gone_after.expect("the killed member was still answered 30 s later");
    println!(
        "killed {victim_ip}: left the answers {:.1} s later (20 lookups without it)",
        gone_after.as_secs_f64()
    );
    // The transport notices in its 4 s idle timeout (a lookup round takes a moment more).
    assert!(gone_after < Duration::from_secs(6), "{gone_after:?}");
    drop(members);
    drop(resolver);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `esm resolve --serve`: a local caching forwarder in front of a resolver that speaks only
/// QUIC, serving port 53 of a namespace whose resolv.conf names it: glibc (`getent`) and `dig`
/// resolve through it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_forwarder_answers_glibc_and_dig_from_the_resolver_it_asks_over_quic() {
    let Some(ns) = namespace_or_skip("forwarder") else {
        return;
    };
    let dir = scratch("forwarder");
    let esm = env!("CARGO_BIN_EXE_esm");
    let resolver = MemberProcess::spawn_ready(resolver_command(ns.command(esm), &dir, &[]))
        .await
        .unwrap();
    let at = resolver.quic.to_string();
    let by_name = ["--resolver", at.as_str(), "--join-by-name"];
    let member =
        slow_link::conference_member(ns.command(esm), "talk", SECRET, &dir, "127.0.0.6", &by_name)
            .await;
    let mut cmd = ns.command(esm);
    cmd.args(["resolve", "--serve", "127.0.0.1:53", "--resolver", &at])
        .args(["--group", "talk", "--ttl", "2"])
        .env("ESM_SECRET", SECRET)
        .stderr(std::process::Stdio::inherit());
    let forwarder = MemberProcess::spawn_ready(cmd).await.unwrap();
    assert_eq!(forwarder.dns, Some("127.0.0.1:53".parse().unwrap()));

    let start = Instant::now();
    let found = loop {
        let found = ns.getent(NAME).await;
        if !found.is_empty() || start.elapsed() > Duration::from_secs(15) {
            break found;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_eq!(found, ["127.0.0.6"], "getent through the forwarder");
    let full = ns.dig(&["+edns=0", NAME, "A"]).await;
    assert!(
        full.contains("EDNS: version: 0") && full.contains("ANSWER: 1"),
        "{full}"
    );
    let record = format!("{NAME}. 2 IN A 127.0.0.6");
    let answered = full
        .lines()
        .any(|l| l.split_whitespace().collect::<Vec<_>>().join(" ") == record);
    assert!(answered, "{full}");
    let srv = ns.dig(&["+short", NAME, "SRV"]).await;
    let fields: Vec<&str> = srv.split_whitespace().collect();
    let [_, _, srv_port, target] = fields[..] else {
        panic!("SRV answer {srv:?}")
    };
    assert_eq!(srv_port, member.quic.port().to_string());
    let by_target = ns.dig(&["+short", target, "A"]).await;
    assert_eq!(by_target.trim(), "127.0.0.6");
    let unknown = ns.dig(&["nobody._anycast.esm.internal", "A"]).await;
    assert!(unknown.contains("status: NXDOMAIN"), "{unknown}");
    let foreign = ns.dig(&["www.example.org", "A"]).await;
    assert!(foreign.contains("status: REFUSED"), "{foreign}");
    drop((member, forwarder, resolver));
    let _ = std::fs::remove_dir_all(&dir);
}

/// What dnsperf measured: queries per second, the lost queries and the response codes, as its
/// report states them.
struct DnsperfFigures {
    qps: f64,
    lost: String,
    codes: String,
}

fn dnsperf_figures(report: &str) -> Option<DnsperfFigures> {
    let field = |name: &str| {
        report
            .lines()
            .find_map(|l| l.trim().strip_prefix(name))
            .map(|v| v.trim().to_owned())
    };
    Some(DnsperfFigures {
        qps: field("Queries per second:")?.parse().ok()?,
        lost: field("Queries lost:")?,
        codes: field("Response codes:")?,
    })
}

/// Runs dnsperf for `seconds` against `port` on loopback with `queries` (its data file).
async fn dnsperf(port: u16, queries: &Path, seconds: u32) -> DnsperfFigures {
    let out = Command::new("dnsperf")
        .args(["-s", "127.0.0.1", "-p", &port.to_string()])
        .arg("-d")
        .arg(queries)
        .args([
            "-l",
            &seconds.to_string(),
            "-c",
            "4",
            "-q",
            "200",
            "-t",
            "2",
        ])
        .output()
        .await
        .expect("dnsperf runs (Debian package dnsperf)");
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    dnsperf_figures(&report).unwrap_or_else(|| panic!("no figures in dnsperf's report: {report}"))
}

/// The live resolver under dnsperf with 8 members registered, against the same front end
/// answering from a fixed table in this process (the baseline, measured in the same run).
/// Run with `cargo test --release -p node --test dns -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a 20 s benchmark that prints figures; needs dnsperf"]
async fn dnsperf_against_the_live_resolver_and_a_fixed_table() {
    let dir = scratch("dnsperf");
    let esm = env!("CARGO_BIN_EXE_esm");
    let mut cmd = resolver_command(Command::new(esm), &dir, &["--dns", "127.0.0.1:0"]);
    cmd.stderr(std::process::Stdio::null());
    let resolver = MemberProcess::spawn_ready(cmd).await.unwrap();
    let dns = resolver.dns.unwrap();
    let at = resolver.quic.to_string();
    let by_name = ["--resolver", at.as_str(), "--join-by-name"];
    let mut members = Vec::new();
    for i in 0..8 {
        let ip = format!("127.0.0.{}", 10 + i);
        let mut cmd = Command::new(esm);
        cmd.stderr(std::process::Stdio::null());
        members.push(slow_link::conference_member(cmd, "talk", SECRET, &dir, &ip, &by_name).await);
    }
    // Every member registered: each answers a probe within a few seconds.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let queries = dir.join("queries.txt");
    let lines: String = (0..1000)
        .map(|i| match i % 4 {
            0 => format!("{NAME} SRV\n"),
            3 => "nobody._anycast.esm.internal A\n".to_owned(),
            _ => format!("{NAME} A\n"),
        })
        .collect();
    std::fs::write(&queries, lines).unwrap();
    let live = dnsperf(dns.port(), &queries, 10).await;

    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let fixed_port = socket.local_addr().unwrap().port();
    let table = anycast_dns::FixedTable::new(BTreeMap::from([(
        "talk%esm.internal".parse().unwrap(),
        members.iter().map(|m| m.quic).collect(),
    )]));
    let _fixed = anycast_dns::serve_udp(socket, anycast_dns::DnsFrontEnd::new(table, 5));
    let fixed = dnsperf(fixed_port, &queries, 10).await;
    for (name, f) in [("live resolver", &live), ("fixed table", &fixed)] {
        println!(
            "dnsperf 10 s, 8 members started: {name} {:.0} queries/s, lost {}, codes {}",
            f.qps, f.lost, f.codes
        );
    }
    println!("live/fixed {:.2}", live.qps / fixed.qps);
    // The live resolver answered from its table (its members registered), not NXDOMAIN alone.
    assert!(live.codes.contains("NOERROR"), "{}", live.codes);
    drop(members);
    let _ = std::fs::remove_dir_all(&dir);
}
