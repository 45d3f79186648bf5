//! The real runtime: the overlay's protocols between processes over QUIC, and the `esm`
//! command's applications. Each folder is one layer and knows only the layers listed before it:
//!
//! - [`transport`]: QUIC below any protocol (identity, TLS where a member is its key, group
//!   admission by PAKE and invite tokens, admitted connections with limits on strangers,
//!   control frames, signatures with the member's key, rate-limited logs);
//! - [`runtime`]: drives any sans-IO [`overlay_core::Protocol`] over the transport (the driver
//!   loop, connections on demand, address gossip, the clock, the transport's status); it knows
//!   no application;
//! - [`edge`]: client-facing pieces every application shares, knowing `media`, not the
//!   protocols (the hardened HTTP server, who may read status pages, the Prometheus writer,
//!   the HLS and browser (WebRTC) edges);
//! - [`app`]: the applications, each knowing one protocol crate: [`app::conference`] (Narada),
//!   [`app::broadcast`] (Overcast), [`app::anycast`] (the anycast resolver);
//! - [`demo`]: the demo and member child processes (for the demo, tests and benchmarks).
#![forbid(unsafe_code)]

pub mod app;
pub mod demo;
pub mod edge;
pub mod runtime;
pub mod transport;
