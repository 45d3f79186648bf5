//! The DNS front end of application-layer anycast. Unmodified applications and DNS tools resolve
//! `service._anycast.domain` (the DNS form of `Service%Domain`) through it:
//!
//! - A or AAAA for a known group: the address of the server the resolver picks (TTL as
//!   configured, short, since the best server changes); no record of that family: NOERROR with
//!   no answer;
//! - another record type for a known group: NOERROR with no answer;
//! - an `_anycast` name whose group is unknown, or whose labels are not host-name labels:
//!   NXDOMAIN;
//! - any other name, class other than IN, or an operation other than a standard query:
//!   REFUSED or NOTIMP, well formed.
//!
//! What to answer comes from an [`AnswerSource`]; [`DnsFrontEnd`] adapts it to hickory's server.

#![forbid(unsafe_code)]

use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use anycast_resolver::{AnycastName, NameError, Pipeline, Resolver};
use hickory_proto::op::{Header, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA};
use hickory_proto::rr::{DNSClass, RData, Record, RecordType};
use hickory_server::authority::MessageResponseBuilder;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use overlay_core::Time;

/// What the resolver says of a group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// Use this server.
    Server(IpAddr),
    /// The group exists but no server is available now.
    NoServer,
    /// No such group.
    Unknown,
}

/// Where answers come from (an authoritative or local anycast resolver behind a lock, or a
/// fixed table in tests).
pub trait AnswerSource: Send + Sync + 'static {
    /// The server for `name` now.
    fn lookup(&self, name: &AnycastName) -> Lookup;
}

impl<F> AnswerSource for F
where
    F: Fn(&AnycastName) -> Lookup + Send + Sync + 'static,
{
    fn lookup(&self, name: &AnycastName) -> Lookup {
        self(name)
    }
}

/// A live authoritative resolver as the answer source: each query picks a server with
/// `pipeline` from the resolver's current estimates (its clock counts from `start`).
#[derive(Debug)]
pub struct LiveResolver {
    resolver: Arc<Mutex<Resolver>>,
    pipeline: Pipeline,
    start: Instant,
}

impl LiveResolver {
    /// Answers from `resolver`, whose protocol time started at `start`.
    pub fn new(resolver: Arc<Mutex<Resolver>>, pipeline: Pipeline, start: Instant) -> Self {
        Self {
            resolver,
            pipeline,
            start,
        }
    }
}

impl AnswerSource for LiveResolver {
    fn lookup(&self, name: &AnycastName) -> Lookup {
        let now = Time::ZERO + self.start.elapsed();
        // A panic elsewhere while holding the lock leaves the table as it was: keep answering.
        let mut resolver = self.resolver.lock().unwrap_or_else(PoisonError::into_inner);
        match resolver.pick(now, name, &self.pipeline) {
            Err(_) => Lookup::Unknown,
            Ok(None) => Lookup::NoServer,
            Ok(Some((_, address))) => Lookup::Server(address.ip()),
        }
    }
}

/// How a query is answered, before it is put on the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// NOERROR with these addresses (possibly none).
    Addresses(Vec<IpAddr>),
    /// An error response code.
    Error(ResponseCode),
}

/// Decide the reply to one question (the wire-free part, tested on its own).
pub fn decide(
    source: &dyn AnswerSource,
    op: OpCode,
    qname: &str,
    qtype: RecordType,
    qclass: DNSClass,
) -> Reply {
    if op != OpCode::Query {
        return Reply::Error(ResponseCode::NotImp);
    }
    let name = match AnycastName::from_dns(qname) {
        Ok(name) => name,
        Err(NameError::NotAnycast { .. }) => return Reply::Error(ResponseCode::Refused),
        Err(_) => return Reply::Error(ResponseCode::NXDomain),
    };
    if qclass != DNSClass::IN {
        return Reply::Error(ResponseCode::Refused);
    }
    match source.lookup(&name) {
        Lookup::Unknown => Reply::Error(ResponseCode::NXDomain),
        Lookup::NoServer => Reply::Addresses(Vec::new()),
        Lookup::Server(ip) => {
            let fits = matches!(
                (qtype, ip),
                (RecordType::A, IpAddr::V4(_)) | (RecordType::AAAA, IpAddr::V6(_))
            );
            Reply::Addresses(if fits { vec![ip] } else { Vec::new() })
        }
    }
}

/// A hickory request handler answering anycast names from `source`.
#[derive(Clone)]
pub struct DnsFrontEnd {
    source: Arc<dyn AnswerSource>,
    ttl: u32,
}

impl std::fmt::Debug for DnsFrontEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DnsFrontEnd")
            .field("ttl", &self.ttl)
            .finish()
    }
}

impl DnsFrontEnd {
    /// Answers from `source`, each valid for `ttl` seconds.
    pub fn new(source: impl AnswerSource, ttl: u32) -> Self {
        Self {
            source: Arc::new(source),
            ttl,
        }
    }
}

#[async_trait::async_trait]
impl RequestHandler for DnsFrontEnd {
    async fn handle_request<R: ResponseHandler>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let builder = MessageResponseBuilder::from_message_request(request);
        let header = request.header();
        let failed = |code: ResponseCode| {
            let mut h = Header::response_from_request(header);
            h.set_response_code(code);
            ResponseInfo::from(h)
        };
        if header.message_type() != MessageType::Query {
            return failed(ResponseCode::FormErr);
        }
        let Ok(info) = request.request_info() else {
            let response = builder.error_msg(header, ResponseCode::FormErr);
            return response_handle
                .send_response(response)
                .await
                .unwrap_or_else(|_| failed(ResponseCode::ServFail));
        };
        let qname = info.query.name().to_string();
        let reply = decide(
            self.source.as_ref(),
            header.op_code(),
            &qname,
            info.query.query_type(),
            info.query.query_class(),
        );
        let result = match reply {
            Reply::Error(code) => {
                response_handle
                    .send_response(builder.error_msg(header, code))
                    .await
            }
            Reply::Addresses(ips) => {
                let name = info.query.original().name().clone();
                let records: Vec<Record> = ips
                    .into_iter()
                    .map(|ip| {
                        let rdata = match ip {
                            IpAddr::V4(v4) => RData::A(A(v4)),
                            IpAddr::V6(v6) => RData::AAAA(AAAA(v6)),
                        };
                        Record::from_rdata(name.clone(), self.ttl, rdata)
                    })
                    .collect();
                let mut h = Header::response_from_request(header);
                h.set_authoritative(true);
                let response = builder.build(h, records.iter(), [], [], []);
                response_handle.send_response(response).await
            }
        };
        result.unwrap_or_else(|_| failed(ResponseCode::ServFail))
    }
}

/// Serve `front` on `socket` (UDP) until the returned server is dropped or shut down.
pub fn serve_udp(
    socket: tokio::net::UdpSocket,
    front: DnsFrontEnd,
) -> hickory_server::ServerFuture<DnsFrontEnd> {
    let mut server = hickory_server::ServerFuture::new(front);
    server.register_socket(socket);
    server
}

#[cfg(test)]
mod tests {
    use super::*;
    use anycast_resolver::{Message, ResolverConfig};
    use overlay_core::signature::SimulatedSignatures;
    use overlay_core::{NodeId, Output, Protocol};

    #[test]
    fn a_live_resolver_answers_once_its_server_was_probed() {
        let start = Instant::now();
        let mut r = Resolver::new(
            NodeId::from_index(100),
            ResolverConfig {
                domain: "example.org".to_owned(),
                ..ResolverConfig::default()
            },
            Box::new(SimulatedSignatures::new(1, NodeId::from_index(100))),
        );
        let server = NodeId::from_index(1);
        r.handle_message(
            Time::ZERO,
            server,
            Message::Register {
                name: "web%example.org".parse().unwrap(),
                address: "192.0.2.9:53".parse().unwrap(),
            },
        );
        r.handle_timeout(Time::ZERO);
        let mut nonce = None;
        while let Some(o) = r.poll_output() {
            if let Output::Send {
                msg: Message::Probe { nonce: n },
                ..
            } = o
            {
                nonce = Some(n);
            }
        }
        r.handle_message(
            Time::ZERO + std::time::Duration::from_millis(30),
            server,
            Message::ProbeReply {
                nonce: nonce.unwrap(),
                tufr_us: 10_000,
            },
        );
        let live = LiveResolver::new(Arc::new(Mutex::new(r)), Pipeline::equivalent(0.5), start);
        assert_eq!(
            live.lookup(&"web%example.org".parse().unwrap()),
            Lookup::Server("192.0.2.9".parse().unwrap())
        );
        assert_eq!(
            live.lookup(&"mail%example.org".parse().unwrap()),
            Lookup::Unknown
        );
    }

    fn source(name: &AnycastName) -> Lookup {
        match name.service() {
            "web" => Lookup::Server("192.0.2.1".parse().unwrap()),
            "v6" => Lookup::Server("2001:db8::1".parse().unwrap()),
            "idle" => Lookup::NoServer,
            _ => Lookup::Unknown,
        }
    }

    fn q(name: &str, t: RecordType) -> Reply {
        decide(&source, OpCode::Query, name, t, DNSClass::IN)
    }

    #[test]
    fn every_kind_of_question_gets_its_answer() {
        let web_a = Reply::Addresses(vec!["192.0.2.1".parse().unwrap()]);
        assert_eq!(q("web._anycast.example.org.", RecordType::A), web_a);
        assert_eq!(q("WEB._anycast.Example.org", RecordType::A), web_a);
        assert_eq!(
            q("web._anycast.example.org.", RecordType::AAAA),
            Reply::Addresses(vec![])
        );
        assert_eq!(
            q("v6._anycast.example.org.", RecordType::AAAA),
            Reply::Addresses(vec!["2001:db8::1".parse().unwrap()])
        );
        assert_eq!(
            q("web._anycast.example.org.", RecordType::TXT),
            Reply::Addresses(vec![])
        );
        assert_eq!(
            q("idle._anycast.example.org.", RecordType::A),
            Reply::Addresses(vec![])
        );
        assert_eq!(
            q("mail._anycast.example.org.", RecordType::A),
            Reply::Error(ResponseCode::NXDomain)
        );
        assert_eq!(
            q("b_d._anycast.example.org.", RecordType::A),
            Reply::Error(ResponseCode::NXDomain)
        );
        assert_eq!(
            q("www.example.org.", RecordType::A),
            Reply::Error(ResponseCode::Refused)
        );
        assert_eq!(
            decide(
                &source,
                OpCode::Update,
                "web._anycast.example.org.",
                RecordType::A,
                DNSClass::IN
            ),
            Reply::Error(ResponseCode::NotImp)
        );
        assert_eq!(
            decide(
                &source,
                OpCode::Query,
                "web._anycast.example.org.",
                RecordType::A,
                DNSClass::CH
            ),
            Reply::Error(ResponseCode::Refused)
        );
    }
}
