//! HLS for browsers: media segments cut from a stored MPEG-TS stream at video keyframes
//! without re-encoding, live and event playlists over them, and a page with a player.
//!
//! The pieces know bytes and MPEG-TS facts, not the protocols that carried the bytes: an
//! application feeds [`Segmenter`] the stream's packets with the [`PacketFacts`] its parser
//! reads off them, keeps the [`Segment`]s it cuts in a [`SegmentIndex`] bounded to what its
//! store keeps, and serves the playlists, the segments' byte ranges (with [`Segment::prefix`]
//! first), the [`page`] and the vendored hls.js with the content types and cache rules here.
//!
//! Modules: [`segmenter`] (where cuts fall), [`index`] (the bounded list and its playlists),
//! [`page`] (the player page and its scripts).

pub mod index;
pub mod page;
pub mod segmenter;

use std::time::Duration;

pub use index::SegmentIndex;
pub use segmenter::{PacketFacts, Segment, Segmenter, TICKS_PER_SECOND};

/// `Content-Type` of a playlist.
pub const PLAYLIST_TYPE: &str = "application/vnd.apple.mpegurl";
/// `Content-Type` of a media segment.
pub const SEGMENT_TYPE: &str = "video/mp2t";
/// `Cache-Control` of a playlist: a live one changes with every segment, so a cache must ask
/// again each time.
pub const PLAYLIST_CACHE: &str = "no-cache";
/// `Cache-Control` of a segment: its bytes never change while the node runs; an hour, not a
/// year, because a node restarted for another broadcast of the same channel numbers its
/// segments from 0 again.
pub const SEGMENT_CACHE: &str = "public, max-age=3600";
/// `Cache-Control` of the page and the player script: small, and they change with the node's
/// version.
pub const PAGE_CACHE: &str = "no-cache";
/// `Cache-Control` of the vendored hls.js, whose path names its version.
pub const VENDORED_CACHE: &str = "public, max-age=31536000, immutable";

/// How segments are cut and how many a live playlist lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HlsConfig {
    /// A segment is cut at the first keyframe at least this long after its start. 2 s: a
    /// player starts three segments behind the live edge (hls.js's default), so this keeps
    /// live viewers about 6 s behind; it matches the common 2-s keyframe interval (`-g 50` at
    /// 25 fps), and streams with longer intervals get one segment per keyframe interval.
    pub target: Duration,
    /// Segments in the live playlist. 6: RFC 8216 (6.2.2) keeps at least three target
    /// durations listed, and a player three segments behind the edge then still has three
    /// more to fall back on before its next segment leaves the window.
    pub window: usize,
    /// Segments the index remembers at most, besides the store's own bound. 43,200: a day of
    /// 2-s segments, about 3 MB of index and a 1.5 MB event playlist, whatever the stream's
    /// time stamps claim.
    pub max_segments: usize,
}

impl Default for HlsConfig {
    fn default() -> Self {
        Self {
            target: Duration::from_secs(2),
            window: 6,
            max_segments: 43_200,
        }
    }
}

impl HlsConfig {
    /// The target in 90 kHz ticks.
    pub fn target_ticks(&self) -> u64 {
        (self.target.as_micros() * u128::from(TICKS_PER_SECOND) / 1_000_000)
            .try_into()
            .unwrap_or(u64::MAX)
    }
}
