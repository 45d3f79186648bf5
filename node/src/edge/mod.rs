//! Client-facing pieces the applications share; they know `media` and the runtime's status, not
//! the protocols: the hardened HTTP server ([`http_server`], over [`timed_io`]), rate-limited
//! logs for what strangers trigger ([`log_limit`]) and the Prometheus page writer. Planned here:
//! the browser edge (WebRTC, WHIP and WHEP) and the HLS endpoint.

pub mod http_server;
pub mod log_limit;
pub mod prometheus;
pub mod timed_io;
