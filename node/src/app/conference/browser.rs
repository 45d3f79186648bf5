//! Browsers in a conference: the page (`GET /conference/`), WHIP to publish
//! (`POST /conference/whip`), WHEP to watch one source (`POST /conference/whep/{source}`),
//! `DELETE /conference/sessions/{id}` to leave, and the list of sources
//! (`GET /conference/sources`); and the bridge between the browser edge and the overlay:
//! publishers' frames become media packets down the member's tree, and whole frames of other
//! members' sources go to the browsers watching them.
//!
//! Admission: every call but the page carries the member's browser token
//! ([`GroupSecret::browser_token`]) as `Authorization: Bearer` or `?token=`; the page reads it
//! from its own address, so no secret is in a page.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use media::{FrameAssembler, FrameSlicer, MediaPacket, encoding_stream, stream_publisher};
use narada::Command;
use overlay_core::NodeId;
use tokio::sync::mpsc;

use crate::edge::webrtc::{BrowserEdge, EdgeError, EdgeEvent, SourceKey};
use crate::runtime::Control;
use crate::transport::admission::GroupSecret;

/// The page.
const PAGE: &str = include_str!("page.html");
/// Largest SDP offer taken.
const MAX_OFFER: usize = 64 * 1024;
/// A source is listed while a frame of it arrived this recently.
const SOURCE_FRESH: Duration = Duration::from_secs(5);
/// Sources remembered at most.
const MAX_SOURCES: usize = 1024;
/// The header naming the source a WHIP session publishes.
const SOURCE_HEADER: &str = "esm-source";
/// Payload bytes per media packet (one QUIC datagram with the overlay's headers).
const MTU: usize = 1100;

/// Sources seen recently, for the page's list.
#[derive(Debug, Default)]
pub struct SourceBoard {
    seen: Mutex<BTreeMap<SourceKey, Instant>>,
}

impl SourceBoard {
    pub(super) fn saw(&self, source: SourceKey, now: Instant) {
        if let Ok(mut seen) = self.seen.lock() {
            if seen.len() >= MAX_SOURCES && !seen.contains_key(&source) {
                seen.retain(|_, t| now.saturating_duration_since(*t) < SOURCE_FRESH);
                if seen.len() >= MAX_SOURCES {
                    return;
                }
            }
            seen.insert(source, now);
        }
    }

    /// The sources a frame arrived from within the last 5 s.
    pub fn fresh(&self, now: Instant) -> Vec<SourceKey> {
        self.seen
            .lock()
            .map(|seen| {
                seen.iter()
                    .filter(|(_, t)| now.saturating_duration_since(**t) < SOURCE_FRESH)
                    .map(|(k, _)| *k)
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// What the browser routes share.
#[derive(Clone, Debug)]
pub struct BrowserState {
    /// The edge.
    pub edge: BrowserEdge,
    /// This member.
    pub me: NodeId,
    /// The group's admission (for the browser token).
    pub admission: GroupSecret,
    /// Sources seen.
    pub sources: Arc<SourceBoard>,
}

/// The browser routes.
pub fn router(state: BrowserState) -> Router {
    Router::new()
        .route("/conference/", get(page))
        .route("/conference", get(page))
        .route("/conference/sources", get(sources).options(preflight))
        .route("/conference/whip", post(whip).options(preflight))
        .route("/conference/whep/{source}", post(whep).options(preflight))
        .route(
            "/conference/sessions/{id}",
            delete(leave).options(preflight),
        )
        .layer(DefaultBodyLimit::max(MAX_OFFER))
        .with_state(state)
}

/// CORS headers every browser-facing answer carries (WHIP clients in other origins).
fn cors(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST, DELETE, OPTIONS"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("Authorization, Content-Type"),
    );
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("Location, Esm-Source"),
    );
    response
}

fn text(status: StatusCode, body: impl Into<String>) -> Response {
    cors((status, body.into()).into_response())
}

async fn preflight() -> Response {
    cors(StatusCode::NO_CONTENT.into_response())
}

async fn page() -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], PAGE).into_response()
}

/// Whether the request carries this member's browser token.
fn admitted(state: &BrowserState, headers: &HeaderMap, query: &BTreeMap<String, String>) -> bool {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let token = bearer.or_else(|| query.get("token").map(String::as_str));
    token.is_some_and(|t| state.admission.verify_browser_token(state.me, t.trim()))
}

const REFUSED: &str =
    "a browser token for this member is needed (Authorization: Bearer or ?token=)\n";

async fn sources(
    State(state): State<BrowserState>,
    headers: HeaderMap,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    if !admitted(&state, &headers, &query) {
        return text(StatusCode::UNAUTHORIZED, REFUSED);
    }
    let list: Vec<String> = state
        .sources
        .fresh(Instant::now())
        .iter()
        .map(SourceKey::to_string)
        .collect();
    cors(
        axum::Json(serde_json::json!({ "member": state.me.to_hex(), "sources": list }))
            .into_response(),
    )
}

async fn whip(
    State(state): State<BrowserState>,
    headers: HeaderMap,
    Query(query): Query<BTreeMap<String, String>>,
    body: Bytes,
) -> Response {
    open(state, headers, query, body, None).await
}

async fn whep(
    State(state): State<BrowserState>,
    Path(source): Path<String>,
    headers: HeaderMap,
    Query(query): Query<BTreeMap<String, String>>,
    body: Bytes,
) -> Response {
    match source.parse::<SourceKey>() {
        Ok(source) => open(state, headers, query, body, Some(source)).await,
        Err(why) => text(StatusCode::NOT_FOUND, format!("{why}\n")),
    }
}

async fn open(
    state: BrowserState,
    headers: HeaderMap,
    query: BTreeMap<String, String>,
    body: Bytes,
    watch: Option<SourceKey>,
) -> Response {
    if !admitted(&state, &headers, &query) {
        return text(StatusCode::UNAUTHORIZED, REFUSED);
    }
    let sdp = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/sdp"));
    if !sdp {
        return text(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "the offer must be sent as application/sdp\n",
        );
    }
    let Ok(offer) = String::from_utf8(body.to_vec()) else {
        return text(StatusCode::BAD_REQUEST, "the offer is not UTF-8\n");
    };
    match state.edge.open(offer, watch).await {
        Ok(opened) => {
            let mut response = (
                StatusCode::CREATED,
                [
                    (header::CONTENT_TYPE, "application/sdp".to_owned()),
                    (
                        header::LOCATION,
                        format!("/conference/sessions/{}", opened.id),
                    ),
                ],
                opened.answer,
            )
                .into_response();
            // The page skips its own source in the list.
            if let Some(source) = opened.publishes
                && let Ok(v) = HeaderValue::from_str(&source.to_string())
            {
                response.headers_mut().insert(SOURCE_HEADER, v);
            }
            cors(response)
        }
        Err(EdgeError::Offer(why)) => text(StatusCode::BAD_REQUEST, format!("{why}\n")),
        Err(EdgeError::Full(why)) => text(StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")),
        Err(EdgeError::Stopped) => text(
            StatusCode::SERVICE_UNAVAILABLE,
            "the browser edge has stopped\n",
        ),
    }
}

async fn leave(
    State(state): State<BrowserState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    if !admitted(&state, &headers, &query) {
        return text(StatusCode::UNAUTHORIZED, REFUSED);
    }
    match id.parse::<u64>() {
        Ok(id) if state.edge.close(id).await => text(StatusCode::OK, "left\n"),
        _ => text(StatusCode::NOT_FOUND, "no such session\n"),
    }
}

/// Publishers' frames out to the group: each cut into media packets published with its
/// priority (audio and keyframes kept longest on a congested link).
pub async fn publish_frames(
    mut events: mpsc::Receiver<EdgeEvent>,
    control: mpsc::Sender<Control<Command>>,
    me: NodeId,
    sources: Arc<SourceBoard>,
) {
    let mut slicer = FrameSlicer::new(MTU);
    while let Some(event) = events.recv().await {
        match event {
            EdgeEvent::Published { publisher, frame } => {
                sources.saw(
                    SourceKey {
                        member: me,
                        publisher,
                    },
                    Instant::now(),
                );
                for packet in slicer.slice(publisher, &frame) {
                    let command = Command::Publish {
                        priority: packet.priority.class(),
                        payload: packet.encode(),
                    };
                    if control.send(Control::Command(command)).await.is_err() {
                        return;
                    }
                }
            }
            EdgeEvent::KeyframeWanted { source, encoding } => {
                let _ = control.try_send(Control::Command(keyframe_request(source, encoding)));
            }
        }
    }
}

/// The request for a keyframe of `source`'s video in simulcast encoding `encoding`, up its
/// tree.
fn keyframe_request(source: SourceKey, encoding: u8) -> Command {
    Command::RequestKeyframe {
        source: source.member,
        stream: encoding_stream(source.publisher, encoding),
    }
}

/// A member asks for a keyframe of one source at most this often (narada merges them further
/// on the way up).
const KEYFRAME_ASK_GAP: Duration = Duration::from_millis(250);
/// A higher simulcast encoding that keeps breaking (a congested link above sheds it first) is
/// asked for a keyframe less and less often, up to this gap; the lower one plays meanwhile.
/// A gap this long without breaking starts the backoff afresh.
const HIGHER_ASK_GAP_MAX: Duration = Duration::from_secs(16);
/// Frames in a row of a broken encoding that come whole show the link carries it again: its
/// keyframe is asked for at once, and the backoff starts afresh.
const WHOLE_AGAIN: u16 = 10;

/// When a keyframe of one source's encoding was last asked for, and the gap before the next.
#[derive(Clone, Copy, Debug)]
struct Asked {
    at: Instant,
    gap: Duration,
}

/// Whole frames of other members' sources, for the browsers here and the recording.
#[derive(Debug, Default)]
pub struct FrameReceiver {
    assemblers: BTreeMap<NodeId, FrameAssembler>,
    asked: BTreeMap<(SourceKey, u8), Asked>,
    /// Higher simulcast encodings that lost a frame and wait for a keyframe (the edge was
    /// told once).
    broken: std::collections::BTreeSet<(SourceKey, u8)>,
    recorder: Option<super::record::Recorder>,
}

impl FrameReceiver {
    /// A receiver that also writes what it puts together with `recorder`.
    pub fn new(recorder: Option<super::record::Recorder>) -> Self {
        Self {
            recorder,
            ..Self::default()
        }
    }

    /// Takes a packet `source` sent; hands the frames it completes to `edge`, and asks the
    /// source for a keyframe (through `control`) when its video lost a frame or has not
    /// started.
    pub fn take(
        &mut self,
        source: NodeId,
        packet: &MediaPacket,
        edge: Option<&BrowserEdge>,
        sources: &SourceBoard,
        control: &mpsc::Sender<Control<Command>>,
    ) {
        if stream_publisher(packet.stream).is_none() {
            return;
        }
        let assembled = self
            .assemblers
            .entry(source)
            .or_default()
            .push(packet.clone());
        let key = SourceKey {
            member: source,
            publisher: assembled.publisher,
        };
        let now = Instant::now();
        if !assembled.frames.is_empty() {
            sources.saw(key, now);
        }
        let track = (key, assembled.encoding);
        if assembled.keyframe_needed && assembled.encoding > 0 && self.broken.insert(track) {
            if let Some(edge) = edge {
                edge.encoding_broken(key, assembled.encoding);
            }
        } else if !assembled.frames.is_empty() {
            self.broken.remove(&track);
        }
        if assembled.keyframe_needed
            && let Some(gap) = next_ask(
                self.asked.get(&(key, assembled.encoding)).copied(),
                assembled.encoding,
                assembled.whole_while_waiting >= WHOLE_AGAIN,
                now,
            )
        {
            self.asked
                .insert((key, assembled.encoding), Asked { at: now, gap });
            let _ = control.try_send(Control::Command(keyframe_request(key, assembled.encoding)));
        }
        for frame in assembled.frames {
            if let Some(recorder) = &mut self.recorder {
                recorder.frame(key, &frame);
            }
            if let Some(edge) = edge {
                edge.forward(key, frame);
            }
        }
    }

    /// Forgets a member that left or died.
    pub fn forget(&mut self, member: &NodeId) {
        self.assemblers.remove(member);
        self.asked.retain(|(k, _), _| k.member != *member);
        self.broken.retain(|(k, _)| k.member != *member);
    }
}

/// Whether a keyframe of an encoding may be asked for now, after the last ask (`last`), and
/// the gap to keep before the next one: [`KEYFRAME_ASK_GAP`] for the lowest encoding; for a
/// higher one, doubling with each ask up to [`HIGHER_ASK_GAP_MAX`] (a link that sheds it
/// would otherwise have its large keyframes sent to every member again and again), unless its
/// frames come whole again (`whole_again`).
fn next_ask(
    last: Option<Asked>,
    encoding: u8,
    whole_again: bool,
    now: Instant,
) -> Option<Duration> {
    let Some(last) = last else {
        return Some(KEYFRAME_ASK_GAP);
    };
    let since = now.saturating_duration_since(last.at);
    let wait = if whole_again {
        KEYFRAME_ASK_GAP
    } else {
        last.gap
    };
    if since < wait {
        return None;
    }
    if encoding == 0 || whole_again || since >= last.gap + HIGHER_ASK_GAP_MAX {
        return Some(KEYFRAME_ASK_GAP);
    }
    Some((last.gap * 2).min(HIGHER_ASK_GAP_MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_higher_encoding_that_keeps_breaking_is_asked_for_less_and_less_often() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        // The lowest encoding: every 250 ms, however often it breaks.
        let mut last = None;
        let mut asks = Vec::new();
        for ms in (0..2_000).step_by(50) {
            if let Some(gap) = next_ask(last, 0, false, at(ms)) {
                last = Some(Asked { at: at(ms), gap });
                asks.push(ms);
            }
        }
        assert_eq!(asks, [0, 250, 500, 750, 1000, 1250, 1500, 1750]);
        // The higher one: the gaps double up to 16 s.
        let mut last = None;
        let mut asks = Vec::new();
        for ms in (0..60_000).step_by(50) {
            if let Some(gap) = next_ask(last, 1, false, at(ms)) {
                last = Some(Asked { at: at(ms), gap });
                asks.push(ms);
            }
        }
        assert_eq!(asks, [0, 250, 750, 1750, 3750, 7750, 15750, 31750, 47750]);
        // Quiet for longer than the gap and 16 s more: the backoff starts afresh.
        let quiet = Asked {
            at: t0,
            gap: HIGHER_ASK_GAP_MAX,
        };
        assert_eq!(
            next_ask(Some(quiet), 1, false, at(20_000)),
            Some(HIGHER_ASK_GAP_MAX)
        );
        assert_eq!(
            next_ask(Some(quiet), 1, false, at(32_000)),
            Some(KEYFRAME_ASK_GAP)
        );
        // Its frames whole again: asked for at once, the backoff afresh.
        assert_eq!(next_ask(Some(quiet), 1, false, at(1_000)), None);
        assert_eq!(
            next_ask(Some(quiet), 1, true, at(1_000)),
            Some(KEYFRAME_ASK_GAP)
        );
        assert_eq!(next_ask(Some(quiet), 1, true, at(100)), None);
    }
}
