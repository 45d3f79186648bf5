//! The front end on a loopback port, asked by a DNS client (hickory's message codec over UDP,
//! and `dig` when it is installed): a known name, an unknown one, a foreign one, garbage, EDNS
//! of a known and an unknown version, SRV, and how much larger than its query a reply is.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::process::Command;
use std::time::Duration;

use anycast_dns::{AnswerSource, DnsFrontEnd, EDNS_PAYLOAD, FixedTable, Lookup, Server, serve_udp};
use anycast_resolver::AnycastName;
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use tokio::net::UdpSocket;

fn table() -> FixedTable {
    FixedTable::new(BTreeMap::from([(
        "web%example.org".parse().unwrap(),
        vec!["192.0.2.7:4433".parse().unwrap()],
    )]))
}

/// The reply to `bytes`, and its length.
async fn ask_sized(server: SocketAddr, bytes: &[u8]) -> Option<(Message, usize)> {
    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    client.send_to(bytes, server).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let got = tokio::time::timeout(Duration::from_secs(2), client.recv_from(&mut buf)).await;
    let (n, _) = got.ok()?.ok()?;
    Some((
        Message::from_vec(&buf[..n]).expect("a well-formed response"),
        n,
    ))
}

async fn ask(server: SocketAddr, bytes: &[u8]) -> Option<Message> {
    Some(ask_sized(server, bytes).await?.0)
}

fn query_with(id: u16, name: &str, t: RecordType, edns: Option<Edns>) -> Vec<u8> {
    let mut m = Message::new();
    m.set_id(id)
        .set_message_type(MessageType::Query)
        .set_op_code(OpCode::Query)
        .set_recursion_desired(true)
        .add_query(Query::query(Name::from_ascii(name).unwrap(), t));
    if let Some(edns) = edns {
        m.set_edns(edns);
    }
    m.to_vec().unwrap()
}

fn query(id: u16, name: &str, t: RecordType) -> Vec<u8> {
    query_with(id, name, t, None)
}

fn edns(version: u8) -> Edns {
    let mut e = Edns::new();
    e.set_max_payload(4096).set_version(version);
    e
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edns_is_answered_with_edns_srv_carries_the_port_and_replies_stay_small() {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let _server = serve_udp(socket, DnsFrontEnd::new(table(), 5));
    let web = "web._anycast.example.org.";

    // EDNS in, EDNS out (version 0, our payload size); none in, none out.
    let with = ask(addr, &query_with(1, web, RecordType::A, Some(edns(0))))
        .await
        .unwrap();
    assert_eq!(with.response_code(), ResponseCode::NoError);
    let answered = with
        .extensions()
        .as_ref()
        .expect("an OPT record in the reply");
    assert_eq!(
        (answered.version(), answered.max_payload()),
        (0, EDNS_PAYLOAD)
    );
    let without = ask(addr, &query(2, web, RecordType::A)).await.unwrap();
    assert!(without.extensions().is_none());
    // A version this server does not speak: BADVERS, with EDNS.
    let newer = ask(addr, &query_with(3, web, RecordType::A, Some(edns(1))))
        .await
        .unwrap();
    // (16 is BADVERS in an OPT record's context; hickory's decoder names it BADSIG.)
    assert_eq!(u16::from(newer.response_code()), 16, "{newer:?}");
    assert!(newer.extensions().is_some());
    assert!(newer.answers().is_empty());

    // SRV: the port, and the target's address in the additional section.
    let srv = ask(addr, &query(4, web, RecordType::SRV)).await.unwrap();
    let RData::SRV(record) = srv.answers()[0].data() else {
        panic!("{srv:?}")
    };
    assert_eq!(record.port(), 4433);
    let target = record.target().to_ascii();
    assert_eq!(target, "s0.web._anycast.example.org.");
    assert!(
        matches!(srv.additionals()[0].data(), RData::A(a) if a.0 == std::net::Ipv4Addr::new(192, 0, 2, 7))
    );
    let by_target = ask(addr, &query(5, &target, RecordType::A)).await.unwrap();
    assert!(
        matches!(by_target.answers()[0].data(), RData::A(a) if a.0 == std::net::Ipv4Addr::new(192, 0, 2, 7))
    );

    // No amplifier: each reply against its query (SRV, with its additional record and a
    // target name that may not be compressed, is the largest).
    let mut worst: f64 = 0.0;
    for t in [RecordType::A, RecordType::SRV, RecordType::ANY] {
        for e in [None, Some(edns(0))] {
            let with_edns = e.is_some();
            let q = query_with(6, web, t, e);
            let (_, n) = ask_sized(addr, &q).await.unwrap();
            let ratio = n as f64 / q.len() as f64;
            println!(
                "{t} (EDNS {with_edns}): {} byte query, {n} byte reply, {ratio:.2}",
                q.len()
            );
            worst = worst.max(ratio);
        }
    }
    assert!(
        worst <= anycast_dns::MAX_REPLY_RATIO,
        "a reply {worst:.2} times its query"
    );
}

/// Every name answers with one IPv6 server whose label is as long as a live resolver's.
struct LongestAnswers;

#[async_trait::async_trait]
impl AnswerSource for LongestAnswers {
    async fn lookup(&self, _: &AnycastName) -> Lookup {
        Lookup::Server(Server {
            label: "0123456789abcdef".to_owned(),
            address: "[2001:db8::1]:4433".parse().unwrap(),
        })
    }

    async fn member(&self, _: &AnycastName, _: &str) -> Option<SocketAddr> {
        None
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worst_case_reply_stays_within_the_stated_ratio() {
    // The shortest anycast name, SRV without EDNS, an AAAA target: the largest reply a query
    // can draw against the smallest query.
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let _server = serve_udp(socket, DnsFrontEnd::new(LongestAnswers, 5));
    let q = query(1, "a._anycast.b.", RecordType::SRV);
    let (reply, n) = ask_sized(addr, &q).await.unwrap();
    assert_eq!(reply.answers().len(), 1);
    assert_eq!(reply.additionals().len(), 1);
    let ratio = n as f64 / q.len() as f64;
    println!(
        "worst case: {} byte query, {n} byte reply, {ratio:.2}",
        q.len()
    );
    assert!(ratio <= anycast_dns::MAX_REPLY_RATIO, "{ratio:.2}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_clients_get_answers_errors_and_refusals() {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let _server = serve_udp(socket, DnsFrontEnd::new(table(), 5));

    let known = ask(addr, &query(1, "web._anycast.example.org.", RecordType::A))
        .await
        .unwrap();
    assert_eq!(
        (known.id(), known.response_code()),
        (1, ResponseCode::NoError)
    );
    let ips: Vec<IpAddr> = known
        .answers()
        .iter()
        .filter_map(|r| match r.data() {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            _ => None,
        })
        .collect();
    assert_eq!(ips, ["192.0.2.7".parse::<IpAddr>().unwrap()]);
    assert_eq!(known.answers()[0].ttl(), 5);

    let unknown = ask(addr, &query(2, "mail._anycast.example.org.", RecordType::A))
        .await
        .unwrap();
    assert_eq!(unknown.response_code(), ResponseCode::NXDomain);
    let foreign = ask(addr, &query(3, "www.example.org.", RecordType::A))
        .await
        .unwrap();
    assert_eq!(foreign.response_code(), ResponseCode::Refused);
    let nodata = ask(
        addr,
        &query(4, "web._anycast.example.org.", RecordType::AAAA),
    )
    .await
    .unwrap();
    assert_eq!(nodata.response_code(), ResponseCode::NoError);
    assert!(nodata.answers().is_empty());

    // Garbage and a truncated query: whatever comes back (an error or nothing), the server
    // goes on answering.
    let _ = ask(addr, b"\x00\x01garbage").await;
    let _ = ask(
        addr,
        &query(5, "web._anycast.example.org.", RecordType::A)[..14],
    )
    .await;
    let again = ask(addr, &query(6, "web._anycast.example.org.", RecordType::A))
        .await
        .unwrap();
    assert_eq!(
        (again.id(), again.response_code()),
        (6, ResponseCode::NoError)
    );

    // dig, when installed.
    let port = addr.port().to_string();
    let dig = Command::new("dig")
        .args([
            "@127.0.0.1",
            "-p",
            &port,
            "+short",
            "+tries=1",
            "+time=2",
            "web._anycast.example.org",
            "A",
        ])
        .output();
    match dig {
        Ok(out) if out.status.success() => {
            let text = String::from_utf8_lossy(&out.stdout);
            assert_eq!(text.trim(), "192.0.2.7", "dig said {text:?}");
        }
        _ => eprintln!("dig is not installed: checked with hickory's codec only"),
    }
}
