//! One DNS question and its reply, before either is on the wire (tested without sockets).
//!
//! - `SERVICE._anycast.DOMAIN`: A or AAAA gives the picked server's address, SRV its port with
//!   the server's own name as target (and that name's address in the additional section), ANY
//!   the address; another type, or a server of the other family: NOERROR with no answer.
//! - `LABEL.SERVICE._anycast.DOMAIN` (an SRV target): that one server's address, while it is
//!   available; NXDOMAIN once it is not.
//! - An `_anycast` name whose group is unknown, or whose labels are not host-name labels:
//!   NXDOMAIN; a source that cannot tell now (a forwarder whose upstream is silent): SERVFAIL. Any other name, a class other than IN: REFUSED. An operation other than a
//!   standard query: NOTIMP.

use std::net::IpAddr;

use anycast_resolver::{AnycastName, NameError};
use hickory_proto::op::{OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, SRV};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

use crate::source::{AnswerSource, Lookup};

/// What a name asks about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Subject {
    /// A group: pick one of its servers.
    Group(AnycastName),
    /// One server of a group, by its label.
    Member {
        /// The server's label.
        label: String,
        /// Its group.
        group: AnycastName,
    },
}

impl Subject {
    /// What `qname` asks about, or the response code a name that is none of ours gets.
    pub fn parse(qname: &str) -> Result<Self, ResponseCode> {
        match AnycastName::from_dns(qname) {
            Ok(name) => Ok(Self::Group(name)),
            Err(NameError::NotAnycast { .. }) => {
                let Some((label, rest)) = qname.split_once('.') else {
                    return Err(ResponseCode::Refused);
                };
                match AnycastName::from_dns(rest) {
                    Ok(group) if is_member_label(label) => Ok(Self::Member {
                        label: label.to_ascii_lowercase(),
                        group,
                    }),
                    Ok(_) => Err(ResponseCode::NXDomain),
                    Err(NameError::NotAnycast { .. }) => Err(ResponseCode::Refused),
                    Err(_) => Err(ResponseCode::NXDomain),
                }
            }
            Err(_) => Err(ResponseCode::NXDomain),
        }
    }
}

/// Whether `label` could name a server: letters and digits, 1 to 63 of them.
fn is_member_label(label: &str) -> bool {
    (1..=63).contains(&label.len()) && label.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// How a question is answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// NOERROR (authoritative) with these answers (possibly none) and additional records.
    Records {
        /// The answer section.
        answers: Vec<Record>,
        /// The additional section (an SRV target's address).
        additionals: Vec<Record>,
    },
    /// An error response code.
    Error(ResponseCode),
}

impl Reply {
    fn empty() -> Self {
        Self::Records {
            answers: Vec::new(),
            additionals: Vec::new(),
        }
    }
}

/// The address record of `owner` for `ip`, if it answers a `qtype` question.
fn address_record(owner: &Name, ip: IpAddr, qtype: RecordType, ttl: u32) -> Option<Record> {
    let rdata = match (qtype, ip) {
        (RecordType::A | RecordType::ANY, IpAddr::V4(v4)) => RData::A(A(v4)),
        (RecordType::AAAA | RecordType::ANY, IpAddr::V6(v6)) => RData::AAAA(AAAA(v6)),
        _ => return None,
    };
    Some(Record::from_rdata(owner.clone(), ttl, rdata))
}

/// The reply to one question: `qname` (as it came, for the records' owner), of `qtype` and
/// `qclass` in an `op` message, answered from `source` with records valid for `ttl` seconds.
pub async fn decide(
    source: &dyn AnswerSource,
    op: OpCode,
    qname: &Name,
    qtype: RecordType,
    qclass: DNSClass,
    ttl: u32,
) -> Reply {
    if op != OpCode::Query {
        return Reply::Error(ResponseCode::NotImp);
    }
    let subject = match Subject::parse(&qname.to_ascii()) {
        Ok(s) => s,
        Err(code) => return Reply::Error(code),
    };
    if qclass != DNSClass::IN {
        return Reply::Error(ResponseCode::Refused);
    }
    match subject {
        Subject::Group(name) => match source.lookup(&name).await {
            Lookup::Unknown => Reply::Error(ResponseCode::NXDomain),
            Lookup::Unavailable => Reply::Error(ResponseCode::ServFail),
            Lookup::NoServer => Reply::empty(),
            Lookup::Server(server) => {
                let ip = server.address.ip();
                if qtype == RecordType::SRV {
                    let Ok(target) = Name::from_ascii(&server.label)
                        .and_then(|label| label.append_domain(qname))
                    else {
                        return Reply::empty();
                    };
                    let srv = SRV::new(0, 0, server.address.port(), target.clone());
                    Reply::Records {
                        answers: vec![Record::from_rdata(qname.clone(), ttl, RData::SRV(srv))],
                        additionals: address_record(&target, ip, RecordType::ANY, ttl)
                            .into_iter()
                            .collect(),
                    }
                } else {
                    Reply::Records {
                        answers: address_record(qname, ip, qtype, ttl).into_iter().collect(),
                        additionals: Vec::new(),
                    }
                }
            }
        },
        Subject::Member { label, group } => match source.member(&group, &label).await {
            None => Reply::Error(ResponseCode::NXDomain),
            Some(address) => Reply::Records {
                answers: address_record(qname, address.ip(), qtype, ttl)
                    .into_iter()
                    .collect(),
                additionals: Vec::new(),
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::Server;

    struct Table;

    #[async_trait::async_trait]
    impl AnswerSource for Table {
        async fn lookup(&self, name: &AnycastName) -> Lookup {
            let server = |address: &str| {
                Lookup::Server(Server {
                    label: "m1".to_owned(),
                    address: address.parse().unwrap(),
                })
            };
            match name.service() {
                "web" => server("192.0.2.1:4433"),
                "v6" => server("[2001:db8::1]:4433"),
                "idle" => Lookup::NoServer,
                "busy" => Lookup::Unavailable,
                _ => Lookup::Unknown,
            }
        }

        async fn member(&self, name: &AnycastName, label: &str) -> Option<std::net::SocketAddr> {
            (name.service() == "web" && label == "m1").then(|| "192.0.2.1:4433".parse().unwrap())
        }
    }

    async fn ask(name: &str, t: RecordType) -> Reply {
        let name = Name::from_ascii(name).unwrap();
        decide(&Table, OpCode::Query, &name, t, DNSClass::IN, 5).await
    }

    fn answers(reply: &Reply) -> Vec<String> {
        match reply {
            Reply::Records {
                answers,
                additionals,
            } => answers
                .iter()
                .chain(additionals)
                .map(|r| format!("{} {} {}", r.name(), r.ttl(), r.data()))
                .collect(),
            Reply::Error(code) => vec![format!("{code}")],
        }
    }

    #[tokio::test]
    async fn every_kind_of_question_gets_its_answer() {
        let web = "web._anycast.example.org.";
        assert_eq!(
            answers(&ask(web, RecordType::A).await),
            ["web._anycast.example.org. 5 192.0.2.1"]
        );
        // Case does not matter; the answer keeps the question's spelling.
        assert_eq!(
            answers(&ask("WEB._anycast.Example.org.", RecordType::A).await),
            ["WEB._anycast.Example.org. 5 192.0.2.1"]
        );
        assert!(answers(&ask(web, RecordType::AAAA).await).is_empty());
        assert_eq!(
            answers(&ask("v6._anycast.example.org.", RecordType::AAAA).await),
            ["v6._anycast.example.org. 5 2001:db8::1"]
        );
        assert!(answers(&ask(web, RecordType::TXT).await).is_empty());
        assert!(answers(&ask("idle._anycast.example.org.", RecordType::A).await).is_empty());
        for (name, code) in [
            ("mail._anycast.example.org.", ResponseCode::NXDomain),
            ("b_d._anycast.example.org.", ResponseCode::NXDomain),
            ("www.example.org.", ResponseCode::Refused),
            ("example.", ResponseCode::Refused),
            ("busy._anycast.example.org.", ResponseCode::ServFail),
        ] {
            assert_eq!(ask(name, RecordType::A).await, Reply::Error(code), "{name}");
        }
        let name = Name::from_ascii(web).unwrap();
        let asked = |op, class| decide(&Table, op, &name, RecordType::A, class, 5);
        assert_eq!(
            asked(OpCode::Update, DNSClass::IN).await,
            Reply::Error(ResponseCode::NotImp)
        );
        assert_eq!(
            asked(OpCode::Query, DNSClass::CH).await,
            Reply::Error(ResponseCode::Refused)
        );
    }

    #[tokio::test]
    async fn srv_gives_the_port_and_a_target_that_names_the_one_server() {
        let web = "web._anycast.example.org.";
        assert_eq!(
            answers(&ask(web, RecordType::SRV).await),
            [
                "web._anycast.example.org. 5 0 0 4433 m1.web._anycast.example.org.",
                "m1.web._anycast.example.org. 5 192.0.2.1"
            ]
        );
        assert_eq!(
            answers(&ask("M1.web._anycast.example.org.", RecordType::A).await),
            ["M1.web._anycast.example.org. 5 192.0.2.1"]
        );
        // A server that is gone, or a label that cannot be one: NXDOMAIN.
        for name in [
            "m2.web._anycast.example.org.",
            "m-1.web._anycast.example.org.",
            "m1.mail._anycast.example.org.",
        ] {
            assert_eq!(
                ask(name, RecordType::A).await,
                Reply::Error(ResponseCode::NXDomain),
                "{name}"
            );
        }
        assert_eq!(
            ask("m1.web.example.org.", RecordType::A).await,
            Reply::Error(ResponseCode::Refused)
        );
    }
}
