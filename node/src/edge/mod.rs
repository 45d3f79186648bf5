//! Client-facing pieces the applications share; they know `media` and the runtime's status, not
//! the protocols: [`hls`] (segments and playlists cut from a stored MPEG-TS stream, and the
//! player page), [`prometheus`] (the `/metrics` writer). Planned here: the browser edge for
//! conferences (WebRTC, WHIP and WHEP).

pub mod hls;
pub mod prometheus;
