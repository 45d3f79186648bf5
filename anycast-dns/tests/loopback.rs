//! The front end on a loopback port, asked by a DNS client (hickory's message codec over UDP,
//! and `dig` when it is installed): a known name, an unknown one, a foreign one, garbage.

use std::net::IpAddr;
use std::process::Command;
use std::time::Duration;

use anycast_dns::{DnsFrontEnd, Lookup, serve_udp};
use anycast_resolver::AnycastName;
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use tokio::net::UdpSocket;

fn source(name: &AnycastName) -> Lookup {
    if name.service() == "web" && name.domain() == "example.org" {
        Lookup::Server("192.0.2.7".parse().unwrap())
    } else {
        Lookup::Unknown
    }
}

async fn ask(server: std::net::SocketAddr, bytes: &[u8]) -> Option<Message> {
    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    client.send_to(bytes, server).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let got = tokio::time::timeout(Duration::from_secs(2), client.recv_from(&mut buf)).await;
    let (n, _) = got.ok()?.ok()?;
    Some(Message::from_vec(&buf[..n]).expect("a well-formed response"))
}

fn query(id: u16, name: &str, t: RecordType) -> Vec<u8> {
    let mut m = Message::new();
    m.set_id(id)
        .set_message_type(MessageType::Query)
        .set_op_code(OpCode::Query)
        .set_recursion_desired(true)
        .add_query(Query::query(Name::from_ascii(name).unwrap(), t));
    m.to_vec().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_clients_get_answers_errors_and_refusals() {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let _server = serve_udp(socket, DnsFrontEnd::new(source, 5));

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
