//! Messages between servers, resolvers and clients.

use std::net::SocketAddr;

use overlay_core::{NodeId, TrafficClass, WireMessage};
use serde::{Deserialize, Serialize};

use crate::name::AnycastName;
use crate::push::Push;

/// A server as an answer lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerRecord {
    /// The server.
    pub server: NodeId,
    /// Where clients reach it.
    pub address: SocketAddr,
    /// The answering resolver's response-time estimate, microseconds.
    pub estimate_us: Option<u64>,
    /// The spare capacity the server last stated, thousandths of a request per second.
    pub spare_mrps: Option<u64>,
}

/// The anycast messages.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// A server joins group `name`, reachable at `address` (server to authoritative resolver).
    Register {
        /// The group.
        name: AnycastName,
        /// The server's address.
        address: SocketAddr,
    },
    /// A server leaves group `name`.
    Unregister {
        /// The group.
        name: AnycastName,
    },
    /// A server's processing delay (server to the resolvers it registered with).
    Push(Push),
    /// Fetch the probe object (resolver to server); answered with `ProbeReply`.
    Probe {
        /// Matches the reply to the request.
        nonce: u64,
    },
    /// The probe object: its body is the server's processing delay.
    ProbeReply {
        /// The request's nonce.
        nonce: u64,
        /// Time until first read, microseconds: this very probe's where the application served
        /// it through its queue (`ServerCommand::AnswerProbe`), else the server's smoothed
        /// figure; 0 if none yet.
        tufr_us: u64,
    },
    /// Who serves `name`? (local resolver to authoritative resolver.)
    Query {
        /// Matches the answer to the query.
        id: u64,
        /// The group.
        name: AnycastName,
    },
    /// The servers of `name`, with estimates, valid for `ttl_ms`.
    Answer {
        /// The query's id.
        id: u64,
        /// The group.
        name: AnycastName,
        /// Its servers, after the authoritative resolver's filters.
        servers: Vec<ServerRecord>,
        /// How long the answer may be cached, milliseconds.
        ttl_ms: u32,
    },
    /// The authoritative resolver knows no such group.
    NoSuchGroup {
        /// The query's id.
        id: u64,
        /// The group.
        name: AnycastName,
    },
    /// A server that knows a better entry point for a connected client says so.
    RouteAdvice {
        /// The group.
        name: AnycastName,
        /// The better server.
        better: NodeId,
        /// Where to reach it.
        address: SocketAddr,
    },
}

impl WireMessage for Message {
    fn traffic_class(&self) -> TrafficClass {
        match self {
            Self::Probe { .. } | Self::ProbeReply { .. } => TrafficClass::Probe,
            _ => TrafficClass::Control,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn messages_round_trip_through_the_envelope() {
        let name: AnycastName = "web%example.org".parse().unwrap();
        for msg in [
            Message::Register {
                name: name.clone(),
                address: "192.0.2.7:443".parse().unwrap(),
            },
            Message::Answer {
                id: 3,
                name,
                servers: vec![ServerRecord {
                    server: NodeId::from_index(1),
                    address: "[2001:db8::1]:443".parse().unwrap(),
                    estimate_us: Some(120_000),
                    spare_mrps: Some(4_000),
                }],
                ttl_ms: 5000,
            },
            Message::ProbeReply {
                nonce: 9,
                tufr_us: 1,
            },
        ] {
            let frame = overlay_core::wire::encode(&msg).unwrap();
            assert_eq!(overlay_core::wire::decode::<Message>(&frame).unwrap(), msg);
        }
    }

    proptest! {
        #[test]
        fn decoding_any_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = overlay_core::wire::decode::<Message>(&bytes);
        }
    }
}
