//! Client-facing pieces the applications share. Planned here: the browser edge (WebRTC, WHIP
//! and WHEP) and the HLS endpoint, which know `media`, not the protocols.

pub mod prometheus;
