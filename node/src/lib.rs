//! The real runtime: members over QUIC. A persistent Ed25519 identity per member
//! ([`identity`]), TLS where a member is its key ([`tls`]), group admission by a shared secret
//! ([`admission`]), admitted connections ([`connect`]), control-stream frames ([`frame`]), the
//! driver that runs any sans-IO protocol over them ([`runtime`]), and the conferencing member
//! with its status page ([`conference`]).
#![forbid(unsafe_code)]

pub mod admission;
pub mod anycast;
pub mod broadcast;
pub mod broadcast_http;
pub mod conference;
pub mod connect;
pub mod demo;
pub mod frame;
pub mod http;
pub mod identity;
pub mod process;
pub mod runtime;
pub mod signing;
pub mod store;
pub mod tls;
pub mod transport_status;
pub mod ts;
