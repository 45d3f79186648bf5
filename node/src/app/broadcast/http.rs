//! The HTTP face of a broadcast node: `GET /channels/NAME` (a redirect at the root, the stream
//! elsewhere), `/status` and `/metrics`; HLS (`/channels/NAME/`, its playlists and segments,
//! the player's scripts) is served by [`super::hls`]. A full node (at its viewer cap) sends a
//! viewer to another live node when it is the root and knows one, else answers `503` with
//! `Retry-After`.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::serving::Want;
use super::{Shared, hls};
use crate::edge::hls::page;
use crate::edge::operator::{OperatorGate, require_operator};
use crate::edge::prometheus::{self, Kind, MetricsPage};

/// The node's router: viewers' routes for anyone, `/status` and `/metrics` behind `gate`.
pub fn router(shared: Arc<Shared>, gate: OperatorGate) -> Router {
    let operator = Router::new()
        .route("/status", get(status))
        .route("/metrics", get(metrics))
        .route_layer(axum::middleware::from_fn_with_state(gate, require_operator));
    Router::new()
        .merge(operator)
        .route("/channels/{name}", get(channel))
        // The node's id, for anyone (the root checks HTTP addresses by it: `vouch`).
        .route("/id", get(id))
        // HLS: the player page, the live and event playlists, segments, the page's scripts.
        .route("/channels/{name}/", get(hls::page))
        .route("/channels/{name}/index.m3u8", get(hls::live_playlist))
        .route("/channels/{name}/event.m3u8", get(hls::event_playlist))
        .route("/channels/{name}/seg/{file}", get(hls::segment))
        .route(page::HLS_JS_PATH, get(hls::hls_js))
        .route(page::HLS_JS_LICENSE_PATH, get(hls::hls_js_license))
        .route(page::PLAYER_JS_PATH, get(hls::player_js))
        .with_state(shared)
}

fn text(code: StatusCode, body: String) -> Response {
    (code, [(header::CONTENT_TYPE, "text/plain")], body).into_response()
}

/// Where a viewer asks to start (`?from=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartAt {
    /// The live edge (`live`, or no `from`).
    Live,
    /// The first byte kept (`start`).
    Beginning,
    /// A byte offset.
    Byte(u64),
}

/// A `from` that is not `start`, `live` or a byte offset.
#[derive(Debug, thiserror::Error)]
#[error("give `start`, `live` or a byte offset")]
pub struct BadStart;

impl FromStr for StartAt {
    type Err = BadStart;

    fn from_str(s: &str) -> Result<Self, BadStart> {
        match s {
            "live" => Ok(Self::Live),
            "start" => Ok(Self::Beginning),
            n => n.parse().map(Self::Byte).map_err(|_| BadStart),
        }
    }
}

/// The canonical form, as a redirect passes it on (`+1000` becomes `1000`: a `+` in a query
/// would read as a space).
impl fmt::Display for StartAt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Live => f.write_str("live"),
            Self::Beginning => f.write_str("start"),
            Self::Byte(n) => write!(f, "{n}"),
        }
    }
}

/// Seconds a full node asks a viewer to wait before trying again: places free as viewers leave
/// or reach the end of the stream (`--idle-end`, 5 s by default), and a player retrying every 5
/// s costs the node one short response each time.
pub(super) const RETRY_AFTER_SECS: u32 = 5;

async fn channel(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if name != shared.channel() {
        return text(StatusCode::NOT_FOUND, format!("no channel {name:?} here\n"));
    }
    let asked = query.get("from");
    let from = match asked.map(|f| f.parse::<StartAt>()) {
        None => StartAt::Live,
        Some(Ok(from)) => from,
        Some(Err(e)) => {
            let f = asked.map_or("", String::as_str);
            return text(StatusCode::BAD_REQUEST, format!("from={f:?}: {e}\n"));
        }
    };
    // A viewer of the live edge may go to any live node (each reaches the edge within its
    // tree delay); one asking for earlier bytes only to a node that holds them.
    let needs = match from {
        StartAt::Byte(n) => {
            let n = n.min(shared.stored());
            Want::Bytes {
                from: n,
                through: n,
            }
        }
        StartAt::Beginning => Want::Bytes {
            from: 0,
            through: 0,
        },
        StartAt::Live => Want::Live,
    };
    let redirect = |target| {
        let mut location = format!("http://{target}/channels/{name}?here=1");
        if asked.is_some() {
            location.push_str(&format!("&from={from}"));
        }
        (StatusCode::FOUND, [(header::LOCATION, location)]).into_response()
    };
    if !query.contains_key("here")
        && let Some(target) = shared.redirect_target(needs)
    {
        return redirect(target);
    }
    let Some(guard) = shared.try_client() else {
        let elsewhere = shared.redirect_target(needs);
        shared.turned_away(elsewhere.is_none());
        return match elsewhere {
            Some(target) => redirect(target),
            None => (
                StatusCode::SERVICE_UNAVAILABLE,
                [
                    (header::RETRY_AFTER, RETRY_AFTER_SECS.to_string()),
                    (header::CONTENT_TYPE, "text/plain".to_owned()),
                ],
                "this node streams to as many viewers as it can; retry later\n",
            )
                .into_response(),
        };
    };
    let start = match from {
        StartAt::Live => shared.live_start().await,
        StartAt::Beginning => 0,
        StartAt::Byte(n) => n.min(shared.stored()),
    };
    (
        [(header::CONTENT_TYPE, "video/mp2t")],
        Body::from_stream(shared.stream_from(start, guard)),
    )
        .into_response()
}

async fn id(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    axum::Json(serde_json::json!({ "id": shared.id().to_hex() }))
}

async fn status(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    axum::Json(shared.status())
}

async fn metrics(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    let s = shared.status();
    let mut page = MetricsPage::new();
    page.single(
        Kind::Gauge,
        "esm_broadcast_content_bytes",
        "Bytes of the stream held.",
        s.content_end as f64,
    )
    .single(
        Kind::Gauge,
        "esm_broadcast_stored_bytes",
        "Bytes written to the store.",
        s.stored as f64,
    )
    .single(
        Kind::Gauge,
        "esm_broadcast_clients",
        "HTTP clients being served.",
        s.clients as f64,
    )
    .single(
        Kind::Gauge,
        "esm_broadcast_max_viewers",
        "The most viewers this node streams to at once.",
        s.max_viewers as f64,
    )
    .labelled(
        Kind::Counter,
        "esm_broadcast_viewers_turned_away_total",
        "Viewers that came to this node when it was full.",
        "outcome",
        [
            ("refused", s.viewers_refused as f64),
            ("sent_elsewhere", s.viewers_sent_elsewhere as f64),
        ],
    )
    .single(
        Kind::Gauge,
        "esm_broadcast_children",
        "Children in the tree.",
        s.children.len() as f64,
    )
    .single(
        Kind::Gauge,
        "esm_broadcast_live_nodes",
        "Live nodes in the root's table.",
        s.live_nodes.len() as f64,
    );
    prometheus::write_transport(&mut page, &s.transport);
    s.http.write_metrics(&mut page);
    (
        [(header::CONTENT_TYPE, prometheus::CONTENT_TYPE)],
        page.finish(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_start_parses_from_its_forms_and_is_passed_on_in_canonical_form() {
        for (asked, parsed, passed) in [
            ("live", StartAt::Live, "live"),
            ("start", StartAt::Beginning, "start"),
            ("1000", StartAt::Byte(1000), "1000"),
            ("+1000", StartAt::Byte(1000), "1000"),
            ("0", StartAt::Byte(0), "0"),
        ] {
            let from: StartAt = asked.parse().unwrap();
            assert_eq!(from, parsed, "{asked}");
            assert_eq!(from.to_string(), passed, "{asked}");
        }
        for bad in [
            "",
            " 1000",
            "-1",
            "x",
            "1e3",
            "18446744073709551616",
            "Start",
        ] {
            assert!(bad.parse::<StartAt>().is_err(), "{bad:?}");
        }
    }
}
