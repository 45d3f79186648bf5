//! The segments a node can serve, bounded by what its store keeps and by a count, and the two
//! playlists over them: the live one (a sliding window of the latest segments) and the event
//! one (every segment kept, so a viewer can start from the beginning).

use std::collections::VecDeque;
use std::fmt::Write;

use bytes::Bytes;

use super::HlsConfig;
use super::segmenter::{Segment, TICKS_PER_SECOND};

/// The segments cut so far that the store still holds.
#[derive(Debug)]
pub struct SegmentIndex {
    config: HlsConfig,
    segments: VecDeque<Segment>,
    /// The sequence number the next segment will have.
    next_seq: u64,
    /// Segments dropped from the front, and how many of them began a discontinuity.
    dropped: u64,
    dropped_discontinuities: u64,
    /// The longest segment ever listed (ticks), so the target duration never shrinks.
    longest: u64,
    ended: bool,
    /// The live and event playlists as last rendered, until the index changes: every request
    /// shares them instead of rendering (the event playlist runs to megabytes) its own copy.
    rendered: Option<(Bytes, Bytes)>,
}

impl SegmentIndex {
    /// An empty index.
    pub fn new(config: HlsConfig) -> Self {
        Self {
            config,
            segments: VecDeque::new(),
            next_seq: 0,
            dropped: 0,
            dropped_discontinuities: 0,
            longest: 0,
            ended: false,
            rendered: None,
        }
    }

    /// Adds the segment cut after the last one; beyond the count bound the oldest goes.
    pub fn push(&mut self, segment: Segment) {
        self.rendered = None;
        self.longest = self.longest.max(segment.ticks);
        self.next_seq = segment.seq + 1;
        self.segments.push_back(segment);
        while self.segments.len() > self.config.max_segments.max(1) {
            self.drop_front();
        }
    }

    /// Forgets segments that begin before `first_kept`, the first byte the store still holds.
    pub fn forget_before(&mut self, first_kept: u64) {
        while self.segments.front().is_some_and(|s| s.start < first_kept) {
            self.drop_front();
        }
    }

    fn drop_front(&mut self) {
        if let Some(s) = self.segments.pop_front() {
            self.rendered = None;
            self.dropped += 1;
            self.dropped_discontinuities += u64::from(s.discontinuity);
        }
    }

    /// Says whether the stream ended (the playlists then close with `#EXT-X-ENDLIST`).
    pub fn set_ended(&mut self, ended: bool) {
        if self.ended != ended {
            self.rendered = None;
            self.ended = ended;
        }
    }

    /// Whether the stream ended.
    pub fn ended(&self) -> bool {
        self.ended
    }

    /// Segment `seq`, if it is kept.
    pub fn get(&self, seq: u64) -> Option<&Segment> {
        let first = self.segments.front()?.seq;
        let at = usize::try_from(seq.checked_sub(first)?).ok()?;
        self.segments.get(at).filter(|s| s.seq == seq)
    }

    /// The kept segment covering bytes `[start, end)` exactly (the range its name gives).
    pub fn find(&self, start: u64, end: u64) -> Option<&Segment> {
        let at = self
            .segments
            .binary_search_by_key(&start, |s| s.start)
            .ok()?;
        self.segments.get(at).filter(|s| s.end == end)
    }

    /// Segments kept.
    pub fn len(&self) -> usize {
        self.segments.len()
    }

    /// Whether none is kept.
    pub fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }

    /// `#EXT-X-TARGETDURATION`: whole seconds no segment exceeds once rounded, never below
    /// the configured target, and never shrinking (RFC 8216 forbids changing it).
    pub fn target_duration(&self) -> u64 {
        let target_ms = self.config.target.as_millis();
        let target = u64::try_from(target_ms.div_ceil(1000)).unwrap_or(u64::MAX);
        let longest = (self.longest * 1000 / TICKS_PER_SECOND + 500) / 1000;
        target.max(longest).max(1)
    }

    /// The live and event playlists, rendered once per change of the index.
    pub fn playlists(&mut self) -> (Bytes, Bytes) {
        if self.rendered.is_none() {
            let live = Bytes::from(self.live_playlist());
            let event = Bytes::from(self.event_playlist());
            self.rendered = Some((live, event));
        }
        self.rendered.clone().unwrap_or_default()
    }

    /// The live playlist: the latest segments of the window.
    pub fn live_playlist(&self) -> String {
        let from = self.segments.len().saturating_sub(self.config.window);
        self.render(from, false)
    }

    /// The event playlist: every segment kept. It is typed `EVENT` while it still starts with
    /// the stream's first segment; once the store's retention dropped that one it is a long
    /// sliding window instead (an `EVENT` playlist may only grow).
    pub fn event_playlist(&self) -> String {
        self.render(0, true)
    }

    fn render(&self, from: usize, event: bool) -> String {
        let listed = self.segments.range(from..);
        let first_seq = self.segments.get(from).map_or(self.next_seq, |s| s.seq);
        let discontinuities = self.dropped_discontinuities
            + self
                .segments
                .range(..from)
                .filter(|s| s.discontinuity)
                .count() as u64;
        let mut out = String::with_capacity(128 + 40 * listed.len());
        out.push_str("#EXTM3U\n#EXT-X-VERSION:3\n");
        let _ = writeln!(out, "#EXT-X-TARGETDURATION:{}", self.target_duration());
        let _ = writeln!(out, "#EXT-X-MEDIA-SEQUENCE:{first_seq}");
        if discontinuities > 0 {
            let _ = writeln!(out, "#EXT-X-DISCONTINUITY-SEQUENCE:{discontinuities}");
        }
        if event && self.dropped == 0 {
            out.push_str("#EXT-X-PLAYLIST-TYPE:EVENT\n");
        }
        for s in self.segments.range(from..) {
            if s.discontinuity {
                out.push_str("#EXT-X-DISCONTINUITY\n");
            }
            let ms = s.millis();
            let _ = writeln!(
                out,
                "#EXTINF:{}.{:03},\nseg/{}.ts",
                ms / 1000,
                ms % 1000,
                s.name()
            );
        }
        if self.ended {
            out.push_str("#EXT-X-ENDLIST\n");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn segment(seq: u64, ms: u64, discontinuity: bool) -> Segment {
        Segment {
            seq,
            start: seq * 1000,
            end: seq * 1000 + 1000,
            ticks: ms * 90,
            discontinuity,
            prefix: None,
        }
    }

    fn index(window: usize, max_segments: usize) -> SegmentIndex {
        SegmentIndex::new(HlsConfig {
            target: Duration::from_secs(2),
            window,
            max_segments,
        })
    }

    #[test]
    fn the_live_playlist_slides_and_the_event_playlist_lists_everything() {
        let mut idx = index(3, 100);
        assert_eq!(
            idx.live_playlist(),
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n"
        );
        for seq in 0..5 {
            idx.push(segment(seq, 2000 + seq, false));
        }
        assert_eq!(
            idx.live_playlist(),
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:2\n\
             #EXTINF:2.002,\nseg/2000-3000.ts\n#EXTINF:2.003,\nseg/3000-4000.ts\n#EXTINF:2.004,\nseg/4000-5000.ts\n"
        );
        idx.set_ended(true);
        let event = idx.event_playlist();
        assert!(event.starts_with(
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n\
             #EXT-X-PLAYLIST-TYPE:EVENT\n#EXTINF:2.000,\nseg/0-1000.ts\n"
        ));
        assert!(
            event.ends_with("seg/4000-5000.ts\n#EXT-X-ENDLIST\n"),
            "{event}"
        );
        assert!(idx.live_playlist().ends_with("#EXT-X-ENDLIST\n"));
    }

    #[test]
    fn segments_the_store_dropped_leave_both_playlists_and_their_discontinuities_are_counted() {
        let mut idx = index(2, 100);
        idx.push(segment(0, 2000, false));
        idx.push(segment(1, 2000, true));
        idx.push(segment(2, 2000, false));
        idx.push(segment(3, 2000, true));
        assert_eq!(
            idx.live_playlist(),
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:2\n\
             #EXT-X-DISCONTINUITY-SEQUENCE:1\n#EXTINF:2.000,\nseg/2000-3000.ts\n\
             #EXT-X-DISCONTINUITY\n#EXTINF:2.000,\nseg/3000-4000.ts\n"
        );
        // The store now starts inside segment 1: segments 0 and 1 go.
        idx.forget_before(1500);
        assert_eq!(idx.len(), 2);
        assert!(idx.get(1).is_none() && idx.get(2).is_some() && idx.get(3).is_some());
        assert_eq!(
            idx.event_playlist(),
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:2\n\
             #EXT-X-DISCONTINUITY-SEQUENCE:1\n#EXTINF:2.000,\nseg/2000-3000.ts\n\
             #EXT-X-DISCONTINUITY\n#EXTINF:2.000,\nseg/3000-4000.ts\n"
        );
    }

    #[test]
    fn the_count_bound_holds_and_lookups_outside_it_find_nothing() {
        let mut idx = index(6, 4);
        for seq in 0..10 {
            idx.push(segment(seq, 2000, false));
        }
        assert_eq!(idx.len(), 4);
        assert_eq!(idx.get(6).map(|s| s.seq), Some(6));
        assert_eq!(idx.get(9).map(|s| s.seq), Some(9));
        for missing in [0, 5, 10, u64::MAX] {
            assert!(idx.get(missing).is_none(), "{missing}");
        }
        assert_eq!(idx.find(7000, 8000).map(|s| s.seq), Some(7));
        for (start, end) in [(5000, 6000), (7000, 7999), (7500, 8500), (10_000, 11_000)] {
            assert!(idx.find(start, end).is_none(), "{start}-{end}");
        }
        assert!(!idx.event_playlist().contains("PLAYLIST-TYPE"));
    }

    #[test]
    fn the_target_duration_covers_the_longest_segment_and_never_shrinks() {
        let mut idx = index(2, 100);
        idx.push(segment(0, 2400, false));
        assert_eq!(idx.target_duration(), 2, "2.4 s rounds to 2");
        idx.push(segment(1, 9600, false));
        assert_eq!(idx.target_duration(), 10);
        for seq in 2..6 {
            idx.push(segment(seq, 2000, false));
        }
        assert_eq!(idx.target_duration(), 10);
    }
}
