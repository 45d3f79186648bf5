//! Cutting a stored MPEG-TS byte stream into HLS media segments, packet by packet as the store
//! grows, without touching the bytes: a segment is a byte range of the store (plus, when the
//! stream does not repeat its tables, the tables to send first).
//!
//! **Where cuts fall.** At a video random-access point (a keyframe's first packet) whose
//! presentation time stamp (the PCR where a keyframe carries none) lies in a later slot of a
//! fixed grid than the open segment's first frame: the grid divides the 33-bit clock into
//! slots of the target duration, counted from time stamp 0. The cuts are therefore a function
//! of the bytes alone, not of where a node began indexing them: a relay that joined late, or
//! resumed after a gap, cuts every segment after its first exactly where the root cut it.
//! Segments last about the target (shorter only when keyframes do not fall on the grid, longer
//! when keyframes are rarer than the target). A segment must decode alone, so it has to begin
//! with the program association table (PAT) and the program map table (PMT). ffmpeg writes PAT
//! and PMT just before every keyframe: when only tables (or null packets) lie between the
//! latest PAT, a PMT after it and the keyframe, the cut goes at that PAT and the segment is a
//! plain byte range. Otherwise the cut goes at the keyframe and the segment carries the latest
//! PAT and PMT packets as a prefix to send before its bytes.
//!
//! **Naming.** A segment is named by the byte range it covers (see [`Segment::name`]), so the
//! same name means the same bytes on every node, and a client sent to another node by a
//! redirect finds the same segment there. Media sequence numbers count the segments this node
//! cut; nodes that began at different bytes number differently (see `edge::hls::index`).

use std::sync::Arc;

/// Presentation time stamps and durations count 90 kHz ticks.
pub const TICKS_PER_SECOND: u64 = 90_000;
/// Time stamps are 33 bits wide and wrap (every 26.5 hours).
const TICK_MASK: u64 = (1 << 33) - 1;
/// A jump between two time stamps longer than this (or backwards) is a discontinuity, not
/// elapsed time: ten minutes, far beyond any keyframe interval a live encoder uses.
const MAX_STEP: u64 = 600 * TICKS_PER_SECOND;
/// The PID of null (stuffing) packets.
const NULL_PID: u16 = 0x1fff;
/// The PID of the service description table, which ffmpeg repeats beside PAT and PMT.
const SDT_PID: u16 = 0x11;
/// The table id of a program association table.
const PAT_TABLE: u8 = 0x00;
/// The table id of a program map table.
const PMT_TABLE: u8 = 0x02;
/// Program map tables remembered for a prefix at most (one per program; a broadcast has one).
const MAX_PROGRAMS: usize = 8;

/// What the segmenter needs to know of one 188-byte transport-stream packet. The application
/// that owns the stream reads it with its MPEG-TS parser (the broadcast app with its `ts`
/// module), so this edge holds no parser of its own.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PacketFacts {
    /// The packet identifier.
    pub pid: u16,
    /// The packet opens a video random-access point (a keyframe's first packet).
    pub random_access: bool,
    /// The packet starts a video frame's PES packet (keyframe or not).
    pub video_start: bool,
    /// The presentation time stamp (90 kHz) of the PES packet it starts.
    pub pts: Option<u64>,
    /// The program clock reference (27 MHz) its adaptation field carries.
    pub pcr: Option<u64>,
    /// The table id of the PSI section it starts (0x00 PAT, 0x02 PMT, 0x42 SDT).
    pub psi_table: Option<u8>,
}

/// One media segment: bytes `[start, end)` of the stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Its media sequence number (segments cut before it on this stream).
    pub seq: u64,
    /// Its first byte.
    pub start: u64,
    /// One past its last byte.
    pub end: u64,
    /// Its duration in 90 kHz ticks.
    pub ticks: u64,
    /// It does not continue the one before it (time stamps jumped, bytes were skipped).
    pub discontinuity: bool,
    /// PAT and PMT packets to send before its bytes, when it does not begin with them.
    pub prefix: Option<Arc<[u8]>>,
}

impl Segment {
    /// Its name in URLs: `{start}-{end}`, the byte range it covers, which any node that cut
    /// the same bytes cuts identically.
    pub fn name(&self) -> String {
        format!("{}-{}", self.start, self.end)
    }

    /// Its duration in whole milliseconds, rounded.
    pub fn millis(&self) -> u64 {
        (self.ticks + 45) / 90
    }

    /// Bytes a client receives: the prefix and the stored range.
    pub fn len(&self) -> u64 {
        self.prefix.as_ref().map_or(0, |p| p.len() as u64) + (self.end - self.start)
    }

    /// Whether it holds no bytes (never true of a segment the segmenter cut).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The segment being filled.
#[derive(Debug)]
struct Open {
    start: u64,
    /// The time stamp of its first frame, once one arrived.
    time: Option<u64>,
    /// The latest frame's time stamp, in ticks after `time`.
    last: u64,
    discontinuity: bool,
    prefix: Option<Arc<[u8]>>,
}

/// Cuts segments out of a stream fed packet by packet in byte order.
#[derive(Debug)]
pub struct Segmenter {
    target: u64,
    next_seq: u64,
    open: Option<Open>,
    /// The offset of the latest PAT, while only tables followed it.
    run: Option<u64>,
    /// Whether a PMT followed that PAT.
    run_has_pmt: bool,
    pat: Option<Box<[u8]>>,
    pmts: Vec<(u16, Box<[u8]>)>,
    prefix: Option<Arc<[u8]>>,
    video_pid: Option<u16>,
    /// The latest PCR, as a 90 kHz time stamp.
    pcr: Option<u64>,
    /// The previous video frame's time stamp and the shortest step seen between two.
    last_frame: Option<u64>,
    frame: Option<u64>,
    /// One past the last packet fed.
    at: u64,
    skipped: bool,
    ended: bool,
}

/// The grid slot of time stamp `t`: cuts go at the first keyframe of a later slot.
fn slot(t: u64, target: u64) -> u64 {
    (t & TICK_MASK) / target
}

/// `b - a` on the 33-bit clock, `None` when `b` is before `a` or implausibly far after it.
fn step(a: u64, b: u64) -> Option<u64> {
    let d = b.wrapping_sub(a) & TICK_MASK;
    (d <= MAX_STEP).then_some(d)
}

impl Segmenter {
    /// A segmenter for a stream indexed from byte `from` with segments of at least `target`
    /// ticks. From the stream's first byte (0) the first segment starts there; from later, at
    /// the first random-access point.
    pub fn new(from: u64, target: u64) -> Self {
        Self {
            target: target.max(1),
            next_seq: 0,
            open: (from == 0).then_some(Open {
                start: 0,
                time: None,
                last: 0,
                discontinuity: false,
                prefix: None,
            }),
            run: None,
            run_has_pmt: false,
            pat: None,
            pmts: Vec::new(),
            prefix: None,
            video_pid: None,
            pcr: None,
            last_frame: None,
            frame: None,
            at: from,
            skipped: false,
            ended: false,
        }
    }

    /// Whether [`Segmenter::finish`] closed the stream (and nothing arrived since).
    pub fn ended(&self) -> bool {
        self.ended
    }

    /// One past the last byte fed.
    pub fn position(&self) -> u64 {
        self.at
    }

    /// Feeds the packet at `offset` (the byte after the previous one) with what it carries;
    /// returns the segment it closed, if it closed one.
    pub fn push(&mut self, offset: u64, packet: &[u8], facts: &PacketFacts) -> Option<Segment> {
        if self.ended {
            // The stream went on after all: a new segment from here, marked as a fresh start.
            self.ended = false;
            self.open = Some(Open {
                start: offset,
                time: None,
                last: 0,
                discontinuity: true,
                prefix: self.psi_prefix(),
            });
        }
        self.at = offset + packet.len() as u64;
        if let Some(pcr) = facts.pcr {
            self.pcr = Some((pcr / 300) & TICK_MASK);
        }
        let table = self.note_tables(offset, packet, facts);
        let video = facts.video_start && self.video_pid.is_none_or(|p| p == facts.pid);
        let mut closed = None;
        if video && facts.random_access {
            self.video_pid = Some(facts.pid);
            let time = facts.pts.or(self.pcr);
            closed = self.random_access(offset, time);
        } else if video {
            self.video_pid = Some(facts.pid);
            if let Some(pts) = facts.pts {
                self.frame_at(pts);
            }
        }
        // A run of tables ends at anything else, and at any video frame even on a table's pid
        // (a crafted stream): else a later cut could fall before the open segment's start.
        if !table || video {
            self.run = None;
        }
        closed
    }

    /// The stream skipped to `offset` (the bytes before it are gone): the open segment is
    /// dropped and the next one starts at a random-access point, marked as a fresh start.
    pub fn skip_to(&mut self, offset: u64) {
        self.open = None;
        self.run = None;
        self.last_frame = None;
        self.at = offset;
        self.skipped = true;
        self.ended = false;
    }

    /// The stream ended (for now): closes the open segment at the last byte fed and returns
    /// it. Packets fed later start a new segment. A stream that has not shown a frame since it
    /// started (or skipped) has not ended: it has not begun, and nothing changes.
    pub fn finish(&mut self) -> Option<Segment> {
        if self.ended || self.open.as_ref().is_none_or(|o| o.time.is_none()) {
            return None;
        }
        self.ended = true;
        self.run = None;
        let open = self.open.take()?;
        let ticks = open.last + self.frame.unwrap_or(0);
        Some(self.close(open, self.at, ticks))
    }

    fn close(&mut self, open: Open, end: u64, ticks: u64) -> Segment {
        let seq = self.next_seq;
        self.next_seq += 1;
        Segment {
            seq,
            start: open.start,
            end,
            ticks,
            discontinuity: open.discontinuity,
            prefix: open.prefix,
        }
    }

    /// A keyframe at `offset` with time stamp `time`: cut here (or at the tables before it)
    /// when it lies in a later grid slot than the open segment's first frame.
    fn random_access(&mut self, offset: u64, time: Option<u64>) -> Option<Segment> {
        let (cut, prefix) = match self.run {
            Some(run) if self.run_has_pmt => (run, None),
            _ => (offset, self.psi_prefix()),
        };
        let Some(open) = self.open.as_mut() else {
            // Waiting for the first random-access point after a skip.
            self.open = Some(Open {
                start: cut,
                time,
                last: 0,
                discontinuity: std::mem::take(&mut self.skipped),
                prefix,
            });
            self.note_frame(time);
            return None;
        };
        let (Some(start), Some(time)) = (open.time, time) else {
            if open.time.is_none() {
                open.time = time;
            }
            self.note_frame(time);
            return None;
        };
        let (ticks, discontinuity) = match step(start, time) {
            Some(elapsed) if slot(time, self.target) == slot(start, self.target) => {
                open.last = open.last.max(elapsed);
                self.note_frame(Some(time));
                return None;
            }
            Some(elapsed) => (elapsed, false),
            None => (open.last + self.frame.unwrap_or(0), true),
        };
        let open = self.open.take()?;
        let segment = self.close(open, cut, ticks);
        self.open = Some(Open {
            start: cut,
            time: Some(time),
            last: 0,
            discontinuity,
            prefix,
        });
        self.note_frame(Some(time));
        Some(segment)
    }

    /// A frame that is not a keyframe, at `pts`.
    fn frame_at(&mut self, pts: u64) {
        if let Some(open) = self.open.as_mut() {
            match open.time {
                None => open.time = Some(pts),
                Some(start) => {
                    if let Some(d) = step(start, pts) {
                        open.last = open.last.max(d);
                    }
                }
            }
        }
        self.note_frame(Some(pts));
    }

    /// Learns the frame interval: the shortest forward step between successive frames.
    fn note_frame(&mut self, time: Option<u64>) {
        let Some(time) = time else { return };
        if let Some(d) = self.last_frame.and_then(|last| step(last, time))
            && d > 0
        {
            self.frame = Some(self.frame.map_or(d, |f| f.min(d)));
        }
        self.last_frame = Some(time);
    }

    /// Keeps PAT and PMT for prefixes and follows the run of tables before a keyframe;
    /// returns whether the packet carries tables (or stuffing) rather than media.
    fn note_tables(&mut self, offset: u64, packet: &[u8], facts: &PacketFacts) -> bool {
        match facts.psi_table {
            Some(PAT_TABLE) if facts.pid == 0 => {
                if self.pat.as_deref().is_none_or(|p| !same_table(p, packet)) {
                    self.pat = Some(packet.into());
                    self.prefix = None;
                }
                self.run = Some(offset);
                self.run_has_pmt = false;
                true
            }
            Some(PMT_TABLE) => {
                let room = self.pmts.len() < MAX_PROGRAMS;
                match self.pmts.iter_mut().find(|(pid, _)| *pid == facts.pid) {
                    Some((_, p)) if !same_table(p, packet) => {
                        *p = packet.into();
                        self.prefix = None;
                    }
                    Some(_) => {}
                    None if room => {
                        self.pmts.push((facts.pid, packet.into()));
                        self.prefix = None;
                    }
                    None => {}
                }
                self.run_has_pmt |= self.run.is_some();
                true
            }
            Some(_) => true,
            None => {
                matches!(facts.pid, 0 | SDT_PID | NULL_PID)
                    || self.pmts.iter().any(|(pid, _)| *pid == facts.pid)
            }
        }
    }

    /// The latest PAT and PMT packets, to send before a segment that lacks them.
    fn psi_prefix(&mut self) -> Option<Arc<[u8]>> {
        if self.prefix.is_none() {
            let pat = self.pat.as_deref()?;
            let mut bytes = pat.to_vec();
            for (_, pmt) in &self.pmts {
                bytes.extend_from_slice(pmt);
            }
            self.prefix = Some(bytes.into());
        }
        self.prefix.clone()
    }
}

/// Whether two packets carry the same table (all but the header's continuity counter).
fn same_table(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.get(4..) == b.get(4..) && a.get(..3) == b.get(..3)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: u64 = TICKS_PER_SECOND;

    /// A toy stream: each item one packet, described by its facts; bytes are 188 of the pid.
    #[derive(Default)]
    struct Feed {
        seg: Option<Segmenter>,
        offset: u64,
        cut: Vec<Segment>,
        /// Every packet fed, to replay.
        packets: Vec<(PacketFacts, [u8; 188])>,
    }

    impl Feed {
        fn new(target: u64) -> Self {
            Self {
                seg: Some(Segmenter::new(0, target)),
                ..Self::default()
            }
        }

        fn packet(&mut self, facts: PacketFacts) {
            let mut bytes = [0u8; 188];
            bytes[0] = 0x47;
            bytes[1] = (facts.pid >> 8) as u8;
            bytes[2] = facts.pid as u8;
            bytes[4] = facts.psi_table.unwrap_or(0xee);
            let seg = self.seg.as_mut().unwrap();
            if let Some(s) = seg.push(self.offset, &bytes, &facts) {
                self.cut.push(s);
            }
            self.packets.push((facts, bytes));
            self.offset += 188;
        }

        fn tables(&mut self) {
            self.packet(PacketFacts {
                psi_table: Some(0x42),
                pid: SDT_PID,
                ..PacketFacts::default()
            });
            self.packet(PacketFacts {
                psi_table: Some(PAT_TABLE),
                pid: 0,
                ..PacketFacts::default()
            });
            self.packet(PacketFacts {
                psi_table: Some(PMT_TABLE),
                pid: 0x1000,
                ..PacketFacts::default()
            });
        }

        fn frame(&mut self, pts: u64, key: bool) {
            self.packet(PacketFacts {
                pid: 0x100,
                random_access: key,
                video_start: true,
                pts: Some(pts),
                ..PacketFacts::default()
            });
            self.packet(PacketFacts {
                pid: 0x100,
                ..PacketFacts::default()
            });
        }

        fn audio(&mut self) {
            self.packet(PacketFacts {
                pid: 0x101,
                ..PacketFacts::default()
            });
        }

        /// `gops` groups of `frames` frames at 25 fps, tables before each keyframe when
        /// `tables`, an audio packet after every frame.
        fn gops(&mut self, gops: u64, frames: u64, tables: bool, first_pts: u64) {
            for g in 0..gops {
                for f in 0..frames {
                    let n = g * frames + f;
                    if f == 0 && (tables || n == 0) {
                        self.tables();
                    }
                    self.frame((first_pts + n * SECOND / 25) & TICK_MASK, f == 0);
                    self.audio();
                }
            }
        }
    }

    #[test]
    fn cuts_fall_at_the_tables_before_keyframes_once_the_target_has_passed() {
        let mut feed = Feed::new(2 * SECOND);
        // 1-second GOPs of 25 frames (tables + 2 video + 1 audio packet each frame).
        feed.gops(7, 25, true, 10 * SECOND);
        // Every second keyframe closes a 2 s segment, cut at its PAT (after the SDT).
        let gop_bytes = (3 + 25 * 3) * 188;
        let starts: Vec<u64> = feed.cut.iter().map(|s| s.start).collect();
        assert_eq!(starts, [0, 2 * gop_bytes + 188, 4 * gop_bytes + 188]);
        for (i, s) in feed.cut.iter().enumerate() {
            assert_eq!(s.seq, i as u64);
            assert_eq!(s.ticks, 2 * SECOND);
            assert_eq!(s.millis(), 2000);
            assert!(!s.discontinuity && s.prefix.is_none(), "{s:?}");
        }
        assert_eq!(feed.cut[0].end, feed.cut[1].start);
        // The end closes the last one at the last byte: 1 s of frames.
        let seg = feed.seg.as_mut().unwrap();
        let last = seg.finish().unwrap();
        assert_eq!(
            (last.start, last.end, last.ticks),
            (6 * gop_bytes + 188, feed.offset, SECOND)
        );
        assert!(seg.ended());
        assert_eq!(seg.finish(), None);
    }

    #[test]
    fn keyframes_without_tables_before_them_carry_the_tables_as_a_prefix() {
        let mut feed = Feed::new(2 * SECOND);
        feed.gops(4, 50, false, 0);
        assert_eq!(feed.cut.len(), 3);
        assert!(feed.cut[0].prefix.is_none(), "the first begins at byte 0");
        let gop_bytes = 50 * 3 * 188;
        for s in &feed.cut[1..] {
            assert_eq!(s.start % gop_bytes, 3 * 188, "cut at the keyframe itself");
            let prefix = s.prefix.as_ref().expect("a prefix");
            assert_eq!(prefix.len(), 2 * 188);
            assert_eq!(&prefix[1..3], &[0, 0], "the PAT first");
            assert_eq!(&prefix[188 + 1..188 + 3], &[0x10, 0x00], "then the PMT");
            assert_eq!(s.len(), s.end - s.start + 376);
        }
        // The tables did not change, so every prefix is the same allocation.
        let (a, b) = (&feed.cut[1].prefix, &feed.cut[2].prefix);
        assert!(Arc::ptr_eq(a.as_ref().unwrap(), b.as_ref().unwrap()));
    }

    #[test]
    fn media_between_the_tables_and_the_keyframe_moves_the_cut_to_the_keyframe() {
        let mut feed = Feed::new(SECOND);
        feed.gops(1, 25, true, 0);
        feed.tables();
        feed.audio();
        let key = feed.offset;
        feed.frame(SECOND, true);
        assert_eq!(feed.cut.len(), 1);
        assert_eq!(feed.seg.as_mut().unwrap().finish().unwrap().start, key);
    }

    #[test]
    fn a_time_stamp_jump_closes_the_segment_with_its_measured_length_and_marks_the_next() {
        let mut feed = Feed::new(2 * SECOND);
        feed.gops(1, 25, true, 5 * SECOND);
        // The encoder restarts at time 0 (backwards).
        feed.gops(3, 25, true, 0);
        assert_eq!(feed.cut.len(), 2, "{:?}", feed.cut);
        assert_eq!(feed.cut[0].ticks, SECOND, "24 frame steps plus one frame");
        assert!(feed.cut[1].discontinuity);
        assert_eq!(feed.cut[1].ticks, 2 * SECOND);
        // The 33-bit clock wrapping is time going on, not a jump (and a grid line: the cut
        // at the wrap lasts the second before it).
        let mut feed = Feed::new(2 * SECOND);
        feed.gops(4, 25, true, TICK_MASK + 1 - SECOND);
        let ticks: Vec<u64> = feed.cut.iter().map(|s| s.ticks).collect();
        assert_eq!(ticks, [SECOND, 2 * SECOND]);
        assert!(feed.cut.iter().all(|s| !s.discontinuity));
    }

    #[test]
    fn a_node_that_begins_mid_stream_cuts_every_segment_after_its_first_as_the_root_did() {
        // GOPs of 0.8 s against a 2 s target: keyframes fall on the grid only now and then.
        let mut root = Feed::new(2 * SECOND);
        root.gops(30, 20, true, 7 * SECOND + 1234);
        let root_cuts: Vec<(u64, u64, u64)> =
            root.cut.iter().map(|s| (s.start, s.end, s.ticks)).collect();
        assert!(root_cuts.len() >= 10, "{root_cuts:?}");
        for from in [1, 50, 61, 62, 63, 200, 333, 999] {
            let mut late = Segmenter::new(from as u64 * 188, 2 * SECOND);
            let mut cut = Vec::new();
            for (i, (facts, bytes)) in root.packets.iter().enumerate().skip(from) {
                cut.extend(late.push(i as u64 * 188, bytes, facts));
            }
            assert!(cut.len() >= 2, "from packet {from}");
            for s in &cut[1..] {
                assert!(
                    root_cuts.contains(&(s.start, s.end, s.ticks)),
                    "from packet {from}: {} is not a root segment",
                    s.name()
                );
                assert!(!s.discontinuity);
            }
            assert_eq!(
                cut.last().map(Segment::name),
                root.cut.last().map(Segment::name)
            );
        }
    }

    #[test]
    fn after_a_skip_the_next_segment_starts_at_a_keyframe_and_is_marked() {
        let mut feed = Feed::new(SECOND);
        feed.gops(2, 25, true, 0);
        let seg = feed.seg.as_mut().unwrap();
        seg.skip_to(1_000_000);
        feed.offset = 1_000_000;
        feed.audio();
        feed.frame(5 * SECOND + SECOND / 25, false);
        feed.gops(2, 25, true, 6 * SECOND);
        let after: Vec<&Segment> = feed.cut.iter().filter(|s| s.start >= 1_000_000).collect();
        assert_eq!(after.len(), 1);
        assert!(after[0].discontinuity);
        // Starts at the PAT (after the SDT) before the first keyframe past the skip.
        assert_eq!(after[0].start, 1_000_000 + 3 * 188 + 188);
        assert_eq!(after[0].seq, feed.cut.len() as u64 - 1);
    }

    #[test]
    fn a_stream_that_resumes_after_its_end_goes_on_in_a_new_marked_segment() {
        let mut feed = Feed::new(2 * SECOND);
        feed.gops(3, 25, true, 0);
        let seg = feed.seg.as_mut().unwrap();
        let last = seg.finish().unwrap();
        assert_eq!(last.end, feed.offset);
        let resumed_at = feed.offset;
        feed.gops(3, 25, true, 3 * SECOND);
        let next = feed.cut.last().unwrap();
        assert_eq!(next.start, resumed_at);
        assert!(next.discontinuity);
        assert_eq!(next.seq, last.seq + 1);
        assert!(!feed.seg.as_ref().unwrap().ended());
    }

    #[test]
    fn a_stream_without_frames_is_never_cut_nor_ended() {
        let mut feed = Feed::new(SECOND);
        for _ in 0..1000 {
            feed.audio();
        }
        assert!(feed.cut.is_empty());
        let seg = feed.seg.as_mut().unwrap();
        assert_eq!(seg.finish(), None);
        assert!(!seg.ended(), "it has not begun");
        // Nor has one whose first bytes have not come yet (a relay waiting for its parent):
        // its first segment is no fresh start.
        let mut feed = Feed::new(2 * SECOND);
        assert_eq!(feed.seg.as_mut().unwrap().finish(), None);
        feed.gops(3, 25, true, 0);
        assert!(!feed.cut[0].discontinuity);
    }

    #[test]
    fn video_on_a_tables_pid_still_cuts_forward() {
        // A crafted stream whose video frames ride the PAT's pid: every cut must still come
        // after the previous one, each segment a range with its end past its start.
        let mut f = Feed::new(2 * SECOND);
        f.tables();
        for i in 0..5 {
            f.packet(PacketFacts {
                pid: 0,
                random_access: true,
                video_start: true,
                pts: Some(i * 2 * SECOND),
                ..PacketFacts::default()
            });
            f.packet(PacketFacts {
                pid: 0,
                ..PacketFacts::default()
            });
        }
        assert!(!f.cut.is_empty());
        for pair in f.cut.windows(2) {
            assert_eq!(pair[0].end, pair[1].start, "{:?}", f.cut);
        }
        assert!(f.cut.iter().all(|s| s.start < s.end), "{:?}", f.cut);
    }
}
