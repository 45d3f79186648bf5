//! The HTTP pages of a member, for the operator only (see [`crate::edge::operator`]):
//! `/status` (JSON), `/metrics` (Prometheus text format), and `POST /links/limit?peer=ID&kbps=N`,
//! which caps what this member sends to one peer (`kbps=0` lifts the cap): that link's pacer
//! then sheds the upper layers first, as on a narrow path (a metered link, or a test).

use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use overlay_core::NodeId;
use tokio::sync::{mpsc, oneshot};

use super::StatusBoard;
use crate::edge::operator::{OperatorGate, require_operator};
use crate::edge::prometheus;
use crate::runtime::{Control, LinkLimitOutcome};
use narada::Command;

/// What the pages read and drive.
#[derive(Clone)]
struct Pages {
    board: Arc<StatusBoard>,
    control: mpsc::Sender<Control<Command>>,
}

/// The member's router: its pages behind `gate`.
pub fn router(
    board: Arc<StatusBoard>,
    control: mpsc::Sender<Control<Command>>,
    gate: OperatorGate,
) -> Router {
    Router::new()
        .route("/status", get(status))
        .route("/metrics", get(metrics))
        .route("/links/limit", post(limit_link))
        .route_layer(axum::middleware::from_fn_with_state(gate, require_operator))
        .with_state(Pages { board, control })
}

async fn status(State(pages): State<Pages>) -> impl IntoResponse {
    axum::Json(pages.board.status())
}

/// `POST /links/limit`'s query.
#[derive(serde::Deserialize)]
struct LinkLimit {
    /// The peer's id (64 hex digits, as `/status` names it).
    peer: String,
    /// The cap, kbit/s; 0 lifts it.
    kbps: u64,
}

async fn limit_link(
    State(pages): State<Pages>,
    Query(limit): Query<LinkLimit>,
) -> (StatusCode, String) {
    let peer: NodeId = match limit.peer.parse() {
        Ok(id) => id,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("peer: {e}\n")),
    };
    let bps = (limit.kbps > 0).then(|| limit.kbps.saturating_mul(1000));
    let (reply, outcome) = oneshot::channel();
    let stopping = (
        StatusCode::SERVICE_UNAVAILABLE,
        "the member is stopping\n".to_owned(),
    );
    if pages
        .control
        .send(Control::LimitLink { peer, bps, reply })
        .await
        .is_err()
    {
        return stopping;
    }
    let peer = peer.to_hex();
    match outcome.await {
        Ok(LinkLimitOutcome::Capped(bps)) => (
            StatusCode::OK,
            format!("what goes to {peer} is capped at {} kbit/s\n", bps / 1000),
        ),
        Ok(LinkLimitOutcome::Lifted) => (StatusCode::OK, format!("the cap on {peer} is lifted\n")),
        Ok(LinkLimitOutcome::TooMany) => (
            StatusCode::TOO_MANY_REQUESTS,
            "as many peers as a member keeps caps for are capped already: lift one first\n"
                .to_owned(),
        ),
        Err(_) => stopping,
    }
}

async fn metrics(State(pages): State<Pages>) -> impl IntoResponse {
    let board = pages.board;
    (
        [(header::CONTENT_TYPE, prometheus::CONTENT_TYPE)],
        board.metrics(),
    )
}
