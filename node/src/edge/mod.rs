//! Client-facing pieces the applications share; they know `media` and the runtime's status, not
//! the protocols: the hardened HTTP server ([`http_server`], over [`timed_io`]), who may read
//! status pages ([`operator`]), [`hls`] (segments and playlists cut from a
//! stored MPEG-TS stream, and the player page) and [`prometheus`] (the `/metrics` writer).
//! [`webrtc`]: the browser edge of a conference (WebRTC sessions for WHIP and WHEP on one UDP
//! socket).

pub mod hls;
pub mod http_server;
pub mod operator;
pub mod prometheus;
pub mod timed_io;
pub mod webrtc;
