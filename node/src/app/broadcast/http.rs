//! The HTTP face of a broadcast node: `GET /channels/NAME` (a redirect at the root, the stream
//! elsewhere), `/status` and `/metrics`; HLS (`/channels/NAME/`, its playlists and segments,
//! the player's scripts) is served by [`super::hls`].

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::{Shared, hls};
use crate::edge::hls::page;
use crate::edge::prometheus::{self, Kind, MetricsPage};

/// The node's router.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/channels/{name}", get(channel))
        .route("/status", get(status))
        .route("/metrics", get(metrics))
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

async fn channel(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if name != shared.channel() {
        return text(StatusCode::NOT_FOUND, format!("no channel {name:?} here\n"));
    }
    let stored = shared.stored();
    let from = match query.get("from").map(String::as_str) {
        None | Some("live") => shared.live_start().await,
        Some("start") => 0,
        Some(n) => match n.parse::<u64>() {
            Ok(n) => n.min(stored),
            Err(_) => {
                return text(
                    StatusCode::BAD_REQUEST,
                    format!("from={n:?}: give `start`, `live` or a byte offset\n"),
                );
            }
        },
    };
    // A viewer of the live edge may go to any live node (each reaches the edge within its
    // tree delay); one asking for earlier bytes only to a node that holds them.
    let needs = if query.get("from").is_some_and(|f| f != "live") {
        from
    } else {
        0
    };
    if !query.contains_key("here")
        && let Some(target) = shared.redirect_target(needs)
    {
        let mut location = format!("http://{target}/channels/{name}?here=1");
        if let Some(f) = query.get("from") {
            location.push_str(&format!("&from={f}"));
        }
        return (StatusCode::FOUND, [(header::LOCATION, location)]).into_response();
    }
    (
        [(header::CONTENT_TYPE, "video/mp2t")],
        Body::from_stream(shared.stream_from(from)),
    )
        .into_response()
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
    (
        [(header::CONTENT_TYPE, prometheus::CONTENT_TYPE)],
        page.finish(),
    )
}
