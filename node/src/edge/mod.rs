//! Client-facing pieces the applications share; they know `media` and the runtime's status, not
//! the protocols. Planned here: the browser edge (WebRTC, WHIP and WHEP) and the HLS endpoint.

pub mod hls;
pub mod prometheus;
