//! The HTTP pages of a member: `/status` (JSON) and `/metrics` (Prometheus text format).

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use super::StatusBoard;
use crate::edge::prometheus;

/// The member's router.
pub fn router(board: Arc<StatusBoard>) -> Router {
    Router::new()
        .route("/status", get(status))
        .route("/metrics", get(metrics))
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
