//! The HTTP pages of a member: `/status` (JSON) and `/metrics` (Prometheus text format), for the
//! operator only (see [`crate::edge::operator`]).

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use super::StatusBoard;
use crate::edge::operator::{OperatorGate, require_operator};
use crate::edge::prometheus;

/// The member's router: its pages behind `gate`.
pub fn router(board: Arc<StatusBoard>, gate: OperatorGate) -> Router {
    Router::new()
        .route("/status", get(status))
        .route("/metrics", get(metrics))
        .route_layer(axum::middleware::from_fn_with_state(gate, require_operator))
        .with_state(board)
}

async fn status(State(board): State<Arc<StatusBoard>>) -> impl IntoResponse {
    axum::Json(board.status())
}

async fn metrics(State(board): State<Arc<StatusBoard>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, prometheus::CONTENT_TYPE)],
        board.metrics(),
    )
}
