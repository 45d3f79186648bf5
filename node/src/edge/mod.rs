//! Client-facing pieces the applications share; they know `media` and the runtime's status, not
//! the protocols: the hardened HTTP server ([`http_server`], over [`timed_io`]), rate-limited
//! logs for what strangers trigger ([`log_limit`]), [`hls`] (segments and playlists cut from a
//! stored MPEG-TS stream, and the player page) and [`prometheus`] (the `/metrics` writer).
//! Planned here: the browser edge for conferences (WebRTC, WHIP and WHEP).

pub mod hls;
pub mod http_server;
pub mod log_limit;
pub mod prometheus;
pub mod timed_io;
