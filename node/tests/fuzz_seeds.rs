//! Writes the fuzzers' seed corpus from real traffic (run by hand, `--ignored`): a peer that
//! knows the group secret dials a real `esm conference` member, opens a link as a member would,
//! and keeps every control frame and datagram the member sends it for a few seconds (Narada's
//! probes, routing updates, media), with the handshake's own frames. Written under
//! `fuzz/seeds/TARGET/` by content hash, so running it again adds rather than duplicates.
//!
//! `cargo test -p node --test fuzz_seeds -- --ignored`

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use node::demo::process::{MemberProcess, MemberSpec, key_path};
use node::transport::admission::{GroupSecret, Role};
use node::transport::connect::{Connector, TransportSettings};
use node::transport::frame::{Frame, encode_frame};
use node::transport::identity::Identity;
use overlay_core::NodeId;
use tokio::io::AsyncReadExt;

const SECRET: &str = "fuzz-seed-secret-quartz-fable-nimbus";

fn seeds(target: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/seeds")
        .join(target);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes `bytes` as a seed of `target`, named by its hash.
fn keep(target: &str, bytes: &[u8]) {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    let name: String = digest.as_ref()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    std::fs::write(seeds(target).join(name), bytes).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "writes fuzz/seeds; run by hand"]
async fn record_a_members_traffic_as_seeds() {
    let dir = std::env::temp_dir().join(format!("esm-seeds-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let member = MemberProcess::start(&MemberSpec {
        exe: PathBuf::from(env!("CARGO_BIN_EXE_esm")),
        group: "seeds".into(),
        secret: SECRET.into(),
        key: key_path(&dir, 0),
        join: Vec::new(),
        send: Some("synthetic:300kbps".into()),
        port: 0,
        resolver: None,
        ip: std::net::Ipv4Addr::LOCALHOST.into(),
        emulate: None,
        flags: Vec::new(),
    })
    .await
    .unwrap();
    let admission = GroupSecret::new("seeds", SECRET.as_bytes()).unwrap();
    // The handshake's messages as the admission target reads them (a split byte, then the
    // SPAKE2 message and a confirmation).
    for role in [Role::Dialer, Role::Acceptor] {
        let (_, message) = admission.start(role, NodeId::from_index(1), NodeId::from_index(2));
        let mut seed = vec![message.len() as u8];
        seed.extend(&message);
        seed.extend([0u8; 32]);
        keep("admission", &seed);
    }
    let connector = Connector::bind(
        "127.0.0.1:0".parse().unwrap(),
        Identity::generate().unwrap(),
        admission,
        TransportSettings::default(),
    )
    .unwrap();
    let mut peer = connector.dial(member.quic, None).await.unwrap();
    let hello: Frame<()> = Frame::Hello {
        pake: vec![0; 33],
        listen: connector.local_addr(),
        http: None,
    };
    keep("control_frame", &encode_frame(&hello).unwrap());
    // A link, then a join request: the member takes this peer as a mesh neighbour and sends
    // it membership and route news, probes and its media.
    let join: Frame<narada::Message> = Frame::Message(narada::Message::LinkRequest {
        reason: narada::message::LinkReason::Join,
        rtt_us: 1000,
        utility_milli: 0,
    });
    for frame in [Frame::LinkOpen, join] {
        peer.send
            .write_all(&encode_frame(&frame).unwrap())
            .await
            .unwrap();
    }
    let until = Instant::now() + Duration::from_secs(5);
    let (mut frames, mut datagrams) = (0, 0);
    let mut stream = Vec::new();
    while Instant::now() < until {
        tokio::select! {
            d = peer.conn.read_datagram() => {
                let Ok(d) = d else { break };
                if datagrams < 40 {
                    keep("wire_message", &d);
                }
                datagrams += 1;
            }
            len = peer.recv.read_u32() => {
                let Ok(len) = len else { break };
                let mut body = vec![0u8; len as usize];
                peer.recv.read_exact(&mut body).await.unwrap();
                if frames < 60 {
                    keep("wire_message", &body);
                    let mut framed = len.to_be_bytes().to_vec();
                    framed.extend(&body);
                    keep("control_frame", &framed);
                    stream.extend(framed);
                }
                frames += 1;
            }
        }
    }
    keep("control_frame", &stream);
    println!("kept seeds from {frames} control frames and {datagrams} datagrams");
    // Media goes only to members in its trees, which a peer that never sends its own news is
    // not: the datagrams are a bonus.
    assert!(frames > 0, "{frames} frames, {datagrams} datagrams");
    let _ = std::fs::remove_dir_all(&dir);
}
