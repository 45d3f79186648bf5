//! HLS on a broadcast node: a task follows the store as it grows and cuts it into segments
//! (the [`crate::edge::hls`] segmenter, fed packets read with this app's [`super::ts`]
//! parser); the routes serve the live and event playlists, the segments straight from the
//! store, and the player page. At the root, page and playlist requests are redirected to the
//! best live node as live streams are, and a segment request to the best node the root knows
//! to hold the whole segment (else the root serves it); `?here=1` asks for this node. Clients
//! resolve segment URLs against the playlist's final URL, so segment requests rarely reach the
//! root at all; where they do, any node serves the same segment under the same name (the byte
//! range it covers), since the cuts fall on a grid of the stream's own clock. Sequence numbers
//! in the playlists are each node's own.
//!
//! The stream ends, for the playlists' `#EXT-X-ENDLIST`, when the root's input ended or when
//! the store has not grown for the node's idle time under the same parent (`--idle-end`, the
//! rule that also ends a plain viewer's response: a relay cannot tell a finished broadcast from
//! a stall, but it can tell a repair of the tree from one).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use tokio::sync::watch;

use super::Shared;
use super::idle::IdleClock;
use super::serving::Want;
use super::store::{Extent, Read, StoreReader};
use super::ts::{self, PACKET};
use crate::edge::hls::{self, HlsConfig, PacketFacts, Segment, SegmentIndex, Segmenter, page};

/// Bytes the follower reads from the store at a time.
const READ_BYTES: usize = 256 * 1024;
/// How long the follower waits for more bytes once the root's input ended before it closes
/// the last segment: the store's writer is at most a few chunks behind the input.
const INPUT_END_GRACE: Duration = Duration::from_millis(300);
/// How long the follower waits after a failed store read before it tries again.
const RETRY_READ: Duration = Duration::from_secs(1);

/// Whether the root's input ended, and why early if it did (the slot `Shared` keeps).
type InputState = Arc<Mutex<(bool, Option<String>)>>;

/// The segmenter's view of a packet, read with this app's MPEG-TS parser.
pub fn packet_facts(packet: &[u8]) -> PacketFacts {
    PacketFacts {
        pid: ts::pid(packet).unwrap_or(0x1fff),
        random_access: ts::opens_random_access(packet),
        video_start: ts::starts_video_pes(packet),
        pts: ts::pes_pts(packet),
        pcr: ts::pcr(packet),
        psi_table: ts::psi_table(packet),
    }
}

/// A node's HLS index, kept current by a task that follows the store.
#[derive(Clone, Debug)]
pub struct Hls {
    index: Arc<Mutex<SegmentIndex>>,
}

impl Hls {
    /// Starts following `store` (a task on the current tokio runtime, ending with the last
    /// `Hls` clone or the store): `input` says when the root's input ended, `idle` when a
    /// stream that stopped growing counts as ended.
    pub(super) fn follow(store: StoreReader, input: InputState, idle: IdleClock) -> Self {
        let config = HlsConfig::default();
        let index = Arc::new(Mutex::new(SegmentIndex::new(config)));
        let follower = Follower {
            index: Arc::downgrade(&index),
            grown: store.watch(),
            store,
            input,
            idle,
            target: config.target_ticks(),
        };
        tokio::spawn(follower.run());
        Self { index }
    }

    fn with<T>(&self, f: impl FnOnce(&mut SegmentIndex) -> T) -> T {
        f(&mut self.index.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// The live playlist (shared by every request until the index changes).
    pub fn live_playlist(&self) -> Bytes {
        self.with(|i| i.playlists().0)
    }

    /// The event playlist (shared by every request until the index changes).
    pub fn event_playlist(&self) -> Bytes {
        self.with(|i| i.playlists().1)
    }

    /// The kept segment covering bytes `[start, end)`, if there is one.
    pub fn segment(&self, start: u64, end: u64) -> Option<Segment> {
        self.with(|i| i.find(start, end).cloned())
    }
}

/// The task that reads the store behind the writer and cuts segments.
struct Follower {
    index: Weak<Mutex<SegmentIndex>>,
    store: StoreReader,
    grown: watch::Receiver<Extent>,
    input: InputState,
    idle: IdleClock,
    target: u64,
}

/// The first packet boundary at or after `offset` (the stream is whole packets from byte 0;
/// the last one below 2^64 for an offset past it, which a parent's stream start can say).
fn packet_boundary(offset: u64) -> u64 {
    let p = PACKET as u64;
    offset
        .checked_next_multiple_of(p)
        .unwrap_or(u64::MAX - u64::MAX % p)
}

impl Follower {
    async fn run(mut self) {
        let mut pos = packet_boundary(self.store.extent().first);
        let mut segmenter = Segmenter::new(pos, self.target);
        let mut carry: Vec<u8> = Vec::with_capacity(PACKET);
        loop {
            self.grown.borrow_and_update();
            let read = self.store.read(pos, READ_BYTES).await;
            let mut cut = Vec::new();
            match read {
                Ok(Read::Bytes(bytes)) => {
                    feed(&mut segmenter, &mut carry, pos, &bytes, &mut cut);
                    pos += bytes.len() as u64;
                }
                Ok(Read::Behind(extent)) if packet_boundary(extent.first) > pos => {
                    pos = packet_boundary(extent.first);
                    carry.clear();
                    segmenter.skip_to(pos);
                    tracing::warn!(skipped_to = pos, "HLS fell behind the store; skipped ahead");
                }
                Ok(Read::Behind(_)) => {
                    // Not behind what the store says it keeps, yet not there: its file went.
                    tracing::warn!(at = pos, "HLS finds the store's bytes gone; retrying");
                    tokio::time::sleep(RETRY_READ).await;
                }
                Ok(Read::Empty) => {
                    if !self.wait_for_growth(segmenter.ended()).await {
                        cut.extend(segmenter.finish());
                    }
                    if self.grown.has_changed().is_err() {
                        // The store is gone (its writer stopped); the index stays as it is.
                        let _ = self.publish(cut, segmenter.ended());
                        return;
                    }
                }
                Err(e) => {
                    tracing::warn!(at = pos, error = %e, "HLS could not read the store");
                    tokio::time::sleep(RETRY_READ).await;
                }
            }
            if !self.publish(cut, segmenter.ended()) {
                return;
            }
        }
    }

    /// Waits until the store grows; `false` when the stream should be taken as ended first
    /// (the root's input ended, or nothing came for the idle time). Once ended it waits
    /// for growth without limit.
    async fn wait_for_growth(&mut self, ended: bool) -> bool {
        let input_done = self.input.lock().map(|i| i.0).unwrap_or(false);
        if ended {
            let _ = self.grown.changed().await;
            return true;
        }
        if input_done {
            return matches!(
                tokio::time::timeout(INPUT_END_GRACE, self.grown.changed()).await,
                Ok(Ok(()))
            );
        }
        self.idle.wait(&mut self.grown).await
    }

    /// Hands what was cut to the index and trims it to the store; `false` once nobody
    /// holds the index any more.
    fn publish(&self, cut: Vec<Segment>, ended: bool) -> bool {
        let Some(index) = self.index.upgrade() else {
            return false;
        };
        let mut index = index.lock().unwrap_or_else(PoisonError::into_inner);
        for segment in cut {
            index.push(segment);
        }
        index.set_ended(ended);
        index.forget_before(self.store.extent().first);
        true
    }
}

/// Feeds `bytes`, stored from `at`, to the segmenter packet by packet; `carry` holds the start
/// of a packet the previous read cut short. Closed segments go to `cut`.
fn feed(
    segmenter: &mut Segmenter,
    carry: &mut Vec<u8>,
    at: u64,
    bytes: &[u8],
    cut: &mut Vec<Segment>,
) {
    let mut offset = at - carry.len() as u64;
    let mut rest = bytes;
    if !carry.is_empty() {
        let need = PACKET - carry.len();
        if rest.len() < need {
            carry.extend_from_slice(rest);
            return;
        }
        let (head, tail) = rest.split_at(need);
        carry.extend_from_slice(head);
        rest = tail;
        cut.extend(segmenter.push(offset, carry, &packet_facts(carry)));
        offset += PACKET as u64;
        carry.clear();
    }
    let mut packets = rest.chunks_exact(PACKET);
    for packet in &mut packets {
        cut.extend(segmenter.push(offset, packet, &packet_facts(packet)));
        offset += PACKET as u64;
    }
    carry.extend_from_slice(packets.remainder());
}

// ---------------------------------------------------------------------------------------
// Routes (wired in `http::router`).

type Params = Query<HashMap<String, String>>;

/// Adds the header that lets pages elsewhere play what a node serves.
fn cors(mut response: Response) -> Response {
    response.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    response
}

fn not_found(what: String) -> Response {
    cors(
        (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain")],
            what,
        )
            .into_response(),
    )
}

fn no_channel(name: &str) -> Response {
    not_found(format!("no channel {name:?} here\n"))
}

/// At the root, the redirect of a request for `rest` (the path after `/channels/NAME`) to
/// the best live node holding what `needs` names, as `channel` redirects streams; `None` to
/// serve it here (`?here=1`, not the root, or no better node).
fn redirect(shared: &Shared, query: &Params, needs: Want, rest: &str) -> Option<Response> {
    if query.contains_key("here") {
        return None;
    }
    let target = shared.redirect_target(needs)?;
    let mut location = format!("http://{target}/channels/{}{rest}?here=1", shared.channel());
    if query.get("from").is_some_and(|f| f == "start") {
        location.push_str("&from=start");
    }
    Some(cors(
        (StatusCode::FOUND, [(header::LOCATION, location)]).into_response(),
    ))
}

/// `GET /channels/NAME/`: the player page.
pub(super) async fn page(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    query: Params,
) -> Response {
    if name != shared.channel() {
        return no_channel(&name);
    }
    if let Some(r) = redirect(&shared, &query, wanted(&query), "/") {
        return r;
    }
    (
        [
            (header::CONTENT_TYPE, page::PAGE_TYPE),
            (header::CACHE_CONTROL, hls::PAGE_CACHE),
        ],
        page::page(shared.channel()),
    )
        .into_response()
}

/// What a request for the page or a playlist needs of the node it is sent to: the live edge,
/// or (`?from=start`) the stream's first byte.
fn wanted(query: &Params) -> Want {
    if query.get("from").is_some_and(|f| f == "start") {
        Want::Bytes {
            from: 0,
            through: 0,
        }
    } else {
        Want::Live
    }
}

/// A playlist response: `body` is taken only once the request is known to be served here.
fn playlist(
    shared: &Shared,
    name: &str,
    query: &Params,
    rest: &str,
    body: impl FnOnce() -> Bytes,
) -> Response {
    if name != shared.channel() {
        return no_channel(name);
    }
    if let Some(r) = redirect(shared, query, wanted(query), rest) {
        return r;
    }
    cors(
        (
            [
                (header::CONTENT_TYPE, hls::PLAYLIST_TYPE),
                (header::CACHE_CONTROL, hls::PLAYLIST_CACHE),
            ],
            body(),
        )
            .into_response(),
    )
}

/// `GET /channels/NAME/index.m3u8`: the live playlist.
pub(super) async fn live_playlist(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    query: Params,
) -> Response {
    playlist(&shared, &name, &query, "/index.m3u8", || {
        shared.hls().live_playlist()
    })
}

/// `GET /channels/NAME/event.m3u8`: the event playlist, from the first segment kept.
pub(super) async fn event_playlist(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    query: Params,
) -> Response {
    playlist(&shared, &name, &query, "/event.m3u8", || {
        shared.hls().event_playlist()
    })
}

/// The byte range a segment file name (`START-END.ts`) names; `None` for anything else.
fn segment_range(file: &str) -> Option<(u64, u64)> {
    let digits = |n: &str| !n.is_empty() && n.len() <= 20 && n.bytes().all(|b| b.is_ascii_digit());
    let (start, end) = file.strip_suffix(".ts")?.split_once('-')?;
    if !digits(start) || !digits(end) {
        return None;
    }
    let (start, end) = (start.parse().ok()?, end.parse().ok()?);
    (start < end).then_some((start, end))
}

/// `GET /channels/NAME/seg/START-END.ts`: the segment covering those bytes, its prefix (if
/// any) then its stored bytes; at the root, a redirect to a node known to hold all of it, if
/// there is one (which, cutting on the same grid, names the same segment the same).
pub(super) async fn segment(
    State(shared): State<Arc<Shared>>,
    Path((name, file)): Path<(String, String)>,
    query: Params,
) -> Response {
    if name != shared.channel() {
        return no_channel(&name);
    }
    let range = segment_range(&file);
    let Some(segment) = range.and_then(|(start, end)| shared.hls().segment(start, end)) else {
        return not_found("no such segment here\n".to_owned());
    };
    let rest = format!("/seg/{}.ts", segment.name());
    if let Some(r) = redirect(
        &shared,
        &query,
        Want::Bytes {
            from: segment.start,
            through: segment.end,
        },
        &rest,
    ) {
        return r;
    }
    let Some(guard) = shared.try_client() else {
        shared.turned_away(true);
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [
                (
                    header::RETRY_AFTER,
                    super::http::RETRY_AFTER_SECS.to_string(),
                ),
                (header::CONTENT_TYPE, "text/plain".to_owned()),
            ],
            "this node serves as many viewers as it can; retry later\n",
        )
            .into_response();
    };
    let prefix = segment.prefix.clone().map(Bytes::from_owner);
    let body = shared.read_range(prefix, segment.start, segment.end, guard);
    cors(
        (
            [
                (header::CONTENT_TYPE, hls::SEGMENT_TYPE.to_owned()),
                (header::CACHE_CONTROL, hls::SEGMENT_CACHE.to_owned()),
                (header::CONTENT_LENGTH, segment.len().to_string()),
            ],
            Body::from_stream(body),
        )
            .into_response(),
    )
}

/// `GET` the vendored hls.js.
pub(super) async fn hls_js() -> Response {
    (
        [
            (header::CONTENT_TYPE, page::SCRIPT_TYPE),
            (header::CACHE_CONTROL, hls::VENDORED_CACHE),
        ],
        page::HLS_JS,
    )
        .into_response()
}

/// `GET` hls.js's licence.
pub(super) async fn hls_js_license() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, hls::VENDORED_CACHE),
        ],
        page::HLS_JS_LICENSE,
    )
        .into_response()
}

/// `GET` the page's script.
pub(super) async fn player_js() -> Response {
    (
        [
            (header::CONTENT_TYPE, page::SCRIPT_TYPE),
            (header::CACHE_CONTROL, hls::PAGE_CACHE),
        ],
        page::PLAYER_JS,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packet_boundaries_near_the_top_of_the_range_are_no_panic() {
        assert_eq!(packet_boundary(0), 0);
        assert_eq!(packet_boundary(189), 376);
        let last = u64::MAX - u64::MAX % 188;
        assert_eq!(packet_boundary(u64::MAX), last);
        assert_eq!(packet_boundary(last), last);
    }

    /// A packet of `pid`, starting a payload unit with `payload` when given.
    fn packet(pid: u16, payload: Option<&[u8]>, random_access: bool) -> Vec<u8> {
        let mut p = vec![0xffu8; PACKET];
        p[0] = 0x47;
        p[1] = (pid >> 8) as u8 | if payload.is_some() { 0x40 } else { 0 };
        p[2] = pid as u8;
        p[3] = 0x30;
        p[4] = 1;
        p[5] = if random_access { 0x40 } else { 0 };
        if let Some(payload) = payload {
            p[6..6 + payload.len()].copy_from_slice(payload);
        }
        p
    }

    fn pes(stream: u8, pts: u64) -> Vec<u8> {
        let pts = [
            0x21 | ((pts >> 29) & 0x0e) as u8,
            (pts >> 22) as u8,
            ((pts >> 14) as u8) | 1,
            (pts >> 7) as u8,
            ((pts << 1) as u8) | 1,
        ];
        let mut h = vec![0, 0, 1, stream, 0, 0, 0x80, 0x80, 5];
        h.extend_from_slice(&pts);
        h
    }

    #[test]
    fn the_facts_come_from_the_apps_ts_parser() {
        let key = packet(0x100, Some(&pes(0xe0, 123_456)), true);
        assert_eq!(
            packet_facts(&key),
            PacketFacts {
                pid: 0x100,
                random_access: true,
                video_start: true,
                pts: Some(123_456),
                pcr: None,
                psi_table: None,
            }
        );
        let audio = packet_facts(&packet(0x101, Some(&pes(0xc0, 7)), true));
        assert!(!audio.random_access && !audio.video_start && audio.pts == Some(7));
        let pat = packet_facts(&packet(0, Some(&[0, 0x00, 0xb0]), false));
        assert_eq!((pat.pid, pat.psi_table), (0, Some(0x00)));
        let more = packet_facts(&packet(0x100, None, false));
        assert_eq!(
            more,
            PacketFacts {
                pid: 0x100,
                ..PacketFacts::default()
            }
        );
        assert_eq!(packet_facts(&[0u8; 10]).pid, 0x1fff);
    }

    #[test]
    fn segment_file_names_give_byte_ranges_and_nothing_else_does() {
        assert_eq!(segment_range("0-376.ts"), Some((0, 376)));
        assert_eq!(segment_range("1880-3760.ts"), Some((1880, 3760)));
        for bad in [
            "3.ts",
            "376-0.ts",
            "5-5.ts",
            "-5.ts",
            "5-.ts",
            "+1-5.ts",
            "1-5",
            "1-5.ts.ts",
            "1--5.ts",
            "99999999999999999999-99999999999999999999999.ts",
            "18446744073709551616-18446744073709551617.ts",
        ] {
            assert_eq!(segment_range(bad), None, "{bad}");
        }
    }

    #[test]
    fn packets_split_across_reads_are_fed_whole_at_their_offsets() {
        let mut stream = Vec::new();
        stream.extend(packet(0, Some(&[0, 0x00, 0xb0]), false));
        stream.extend(packet(0x1000, Some(&[0, 0x02, 0xb0]), false));
        stream.extend(packet(0x100, Some(&pes(0xe0, 0)), true));
        for i in 1..100u64 {
            if i % 25 == 0 {
                stream.extend(packet(0, Some(&[0, 0x00, 0xb0]), false));
                stream.extend(packet(0x1000, Some(&[0, 0x02, 0xb0]), false));
            }
            stream.extend(packet(0x100, Some(&pes(0xe0, i * 3600)), i % 25 == 0));
        }
        let whole = {
            let mut s = Segmenter::new(0, 90_000);
            let (mut carry, mut cut) = (Vec::new(), Vec::new());
            feed(&mut s, &mut carry, 0, &stream, &mut cut);
            cut
        };
        assert_eq!(whole.len(), 3);
        assert_eq!(
            whole[1].start,
            27 * 188,
            "at the PAT before the second keyframe"
        );
        // Reads of 1000 bytes (not a multiple of 188) give the same cuts.
        let mut s = Segmenter::new(0, 90_000);
        let (mut carry, mut cut) = (Vec::new(), Vec::new());
        for (i, chunk) in stream.chunks(1000).enumerate() {
            feed(&mut s, &mut carry, (i * 1000) as u64, chunk, &mut cut);
        }
        assert_eq!(cut, whole);
        assert_eq!(s.position(), stream.len() as u64);
    }
}
