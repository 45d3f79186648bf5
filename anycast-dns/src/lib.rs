//! The DNS front end of application-layer anycast. Unmodified applications and DNS tools resolve
//! `service._anycast.domain` (the DNS form of `Service%Domain`) through it; what each question
//! gets is in [`question`], where answers come from in [`source`], and [`DnsFrontEnd`] puts
//! both on hickory's server: EDNS is answered with EDNS (RFC 6891: the same version, a payload
//! size of [`EDNS_PAYLOAD`]; a higher version gets BADVERS), answers are authoritative, each
//! valid for the configured TTL (short: the best server changes).
//!
//! An answer is one record (two for SRV: the target's address rides along), so a reply is at
//! most [`MAX_REPLY_RATIO`] times its query: the front end is no amplifier.

#![forbid(unsafe_code)]

pub mod question;
pub mod source;

use std::sync::Arc;

use hickory_proto::op::{Edns, Header, MessageType, ResponseCode};
use hickory_server::authority::MessageResponseBuilder;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};

pub use question::{Reply, Subject, decide};
pub use source::{AnswerSource, FixedTable, LiveResolver, Lookup, Server, member_label};

/// The UDP payload size this server states in its EDNS answers (the DNS flag day's 1232:
/// no fragmentation on any common path).
pub const EDNS_PAYLOAD: u16 = 1232;

/// The most a reply can outgrow its query: the worst case is SRV without EDNS for the
/// shortest name, `a._anycast.b` (a 30-byte query): the SRV record repeats the name (hickory
/// copies the question as it came, so nothing points into it) and its target adds a
/// 16-character label (a target is never compressed, RFC 2782), the additional AAAA record
/// names the target again: 119 bytes, 3.97 times (`tests/loopback.rs` measures it).
pub const MAX_REPLY_RATIO: f64 = 5.0;

/// A hickory request handler answering anycast names from a source.
#[derive(Clone)]
pub struct DnsFrontEnd {
    source: Arc<dyn AnswerSource>,
    ttl: u32,
}

impl std::fmt::Debug for DnsFrontEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DnsFrontEnd")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
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

/// The EDNS record answering a query's (`None` when the query had none), and whether the
/// query's EDNS version is one this server does not speak.
fn answer_edns(request: &Request) -> (Option<Edns>, bool) {
    let Some(asked) = request.edns() else {
        return (None, false);
    };
    let mut edns = Edns::new();
    edns.set_version(0);
    edns.set_max_payload(EDNS_PAYLOAD);
    (Some(edns), asked.version() > 0)
}

#[async_trait::async_trait]
impl RequestHandler for DnsFrontEnd {
    async fn handle_request<R: ResponseHandler>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let mut builder = MessageResponseBuilder::from_message_request(request);
        let header = request.header();
        let failed = |code: ResponseCode| {
            let mut h = Header::response_from_request(header);
            h.set_response_code(code);
            ResponseInfo::from(h)
        };
        if header.message_type() != MessageType::Query {
            return failed(ResponseCode::FormErr);
        }
        let (edns, unknown_version) = answer_edns(request);
        if let Some(edns) = edns {
            builder.edns(edns);
        }
        let reply = match request.request_info() {
            _ if unknown_version => Reply::Error(ResponseCode::BADVERS),
            Err(_) => Reply::Error(ResponseCode::FormErr),
            Ok(info) => {
                decide(
                    self.source.as_ref(),
                    header.op_code(),
                    info.query.original().name(),
                    info.query.query_type(),
                    info.query.query_class(),
                    self.ttl,
                )
                .await
            }
        };
        let result = match reply {
            Reply::Error(code) => {
                // (hickory splits a code over four bits, such as BADVERS, between the header
                // and the EDNS record.)
                response_handle
                    .send_response(builder.error_msg(header, code))
                    .await
            }
            Reply::Records {
                answers,
                additionals,
            } => {
                let mut h = Header::response_from_request(header);
                h.set_authoritative(true);
                let response = builder.build(h, answers.iter(), [], [], additionals.iter());
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
