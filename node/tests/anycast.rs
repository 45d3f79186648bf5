//! Anycast between processes: an `esm resolver`, two members that register with it (the second
//! joining by name), and `esm resolve` finding one of them; an unknown group and a wrong secret
//! are refused with a reason.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use node::demo::process::{MemberProcess, MemberSpec, key_path};

const SECRET: &str = "anycast-test-secret";

async fn esm_resolve(name: &str, resolver: std::net::SocketAddr, secret: &str) -> (bool, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_esm"))
        .args(["resolve", name, "--resolver", &resolver.to_string()])
        .args(["--group", "talk"])
        .env("ESM_SECRET", secret)
        .output()
        .await
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_register_join_by_name_and_are_found() {
    let dir = std::env::temp_dir().join(format!("esm-anycast-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_esm"));
    let resolver = MemberProcess::start_resolver(&exe, "talk", SECRET, &dir.join("r.key"), &[])
        .await
        .unwrap();
    let spec = |i: usize| MemberSpec {
        exe: exe.clone(),
        group: "talk".into(),
        secret: SECRET.into(),
        key: key_path(&dir, i),
        join: Vec::new(),
        send: Some("synthetic:200kbps".into()),
        port: 0,
        resolver: Some(resolver.quic),
        ip: std::net::Ipv4Addr::LOCALHOST.into(),
        emulate: None,
        flags: Vec::new(),
    };
    let first = MemberProcess::start(&spec(0)).await.unwrap();
    // Wait until the resolver answers with the founder.
    let start = Instant::now();
    let (ok, text) = loop {
        let (ok, text) = esm_resolve("talk%esm.internal", resolver.quic, SECRET).await;
        if ok || start.elapsed() > Duration::from_secs(15) {
            break (ok, text);
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert!(ok, "{text}");
    assert!(text.contains(&first.quic.to_string()), "{text}");
    assert!(text.contains(&first.id), "{text}");
    // The second member joins by name, through the founder.
    let second = MemberProcess::start(&spec(1)).await.unwrap();
    let start = Instant::now();
    let mut joined = false;
    while start.elapsed() < Duration::from_secs(20) {
        if let Ok(s) = second.status().await
            && s.members.contains(&first.id)
            && s.sources
                .get(&first.id)
                .is_some_and(|x| x.rate_kbps > 150.0)
        {
            joined = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        joined,
        "the member that joined by name never received the founder"
    );
    // Both are answers now.
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..12 {
        let (ok, text) = esm_resolve("talk%esm.internal", resolver.quic, SECRET).await;
        assert!(ok, "{text}");
        for m in [&first, &second] {
            if text.contains(&m.id) {
                seen.insert(m.id.clone());
            }
        }
        if seen.len() == 2 {
            break;
        }
    }
    println!("answers named {} of the 2 members", seen.len());
    assert!(!seen.is_empty());
    let (ok, text) = esm_resolve("nobody%esm.internal", resolver.quic, SECRET).await;
    assert!(!ok && text.contains("no such anycast group"), "{text}");
    let (ok, text) = esm_resolve(
        "talk%esm.internal",
        resolver.quic,
        "wrong-secret-here-quartz-fable",
    )
    .await;
    assert!(!ok && text.contains("admission refused"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `esm resolver` on a fixed address (a restarted resolver keeps its address and key).
async fn resolver_at(listen: std::net::SocketAddr, key: &std::path::Path) -> MemberProcess {
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_esm"));
    MemberProcess::start_resolver_at(&exe, "talk", SECRET, key, listen, &[])
        .await
        .unwrap()
}

/// Whether `esm resolve` names `member` within `limit`, and how long it took.
async fn found_within(
    resolver: std::net::SocketAddr,
    member: &str,
    limit: Duration,
) -> (bool, Duration, String) {
    let start = Instant::now();
    loop {
        let (ok, text) = esm_resolve("talk%esm.internal", resolver, SECRET).await;
        if ok && text.contains(member) {
            return (true, start.elapsed(), text);
        }
        if start.elapsed() > limit {
            return (false, start.elapsed(), text);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_register_again_after_the_resolver_restarts() {
    let dir = std::env::temp_dir().join(format!("esm-anycast-restart-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // A free UDP port for the resolver to keep across its restart.
    let listen = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let key = dir.join("r.key");
    let mut resolver = resolver_at(listen, &key).await;
    let member = MemberProcess::start(&MemberSpec {
        exe: PathBuf::from(env!("CARGO_BIN_EXE_esm")),
        group: "talk".into(),
        secret: SECRET.into(),
        key: key_path(&dir, 0),
        join: Vec::new(),
        send: None,
        port: 0,
        resolver: Some(listen),
        ip: std::net::Ipv4Addr::LOCALHOST.into(),
        emulate: None,
        flags: Vec::new(),
    })
    .await
    .unwrap();
    let (ok, took, text) = found_within(listen, &member.id, Duration::from_secs(15)).await;
    assert!(ok, "never registered: {text}");
    println!("registered in {:.1} s", took.as_secs_f64());
    // The resolver restarts with nothing registered; the member notices its connection end
    // and registers again.
    resolver.kill().await;
    let restarted = Instant::now();
    let _resolver = resolver_at(listen, &key).await;
    let (ok, _, text) = found_within(listen, &member.id, Duration::from_secs(40)).await;
    assert!(ok, "not registered again after the restart: {text}");
    println!(
        "found again {:.1} s after the resolver restarted",
        restarted.elapsed().as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
