//! Who may read a node's `/status` and `/metrics`: they name every member, its address and
//! each relay's HTTP address, which is for the operator, not for viewers on the same port. A
//! request from this machine (loopback) is the operator's; from anywhere else it must carry
//! the node's status token as `Authorization: Bearer TOKEN` (a Prometheus scrape config's
//! `authorization: {credentials: TOKEN}`). Anyone else gets 401 and nothing else.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Decides whether a request is the operator's.
#[derive(Clone)]
pub struct OperatorGate {
    check: Arc<dyn Fn(&str) -> bool + Send + Sync>,
}

impl std::fmt::Debug for OperatorGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OperatorGate").finish_non_exhaustive()
    }
}

impl OperatorGate {
    /// A gate that admits loopback clients and bearers of a token `check` accepts.
    pub fn new(check: impl Fn(&str) -> bool + Send + Sync + 'static) -> Self {
        Self {
            check: Arc::new(check),
        }
    }

    /// Whether a request from `remote` (unknown: not loopback) with `headers` is admitted.
    pub fn admits(&self, remote: Option<SocketAddr>, headers: &HeaderMap) -> bool {
        let local = remote.is_some_and(|a| a.ip().to_canonical().is_loopback());
        local
            || headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .is_some_and(|token| (self.check)(token.trim()))
    }
}

/// Middleware (`axum::middleware::from_fn_with_state`) that lets only the operator through.
pub async fn require_operator(
    State(gate): State<OperatorGate>,
    request: Request,
    next: Next,
) -> Response {
    let remote = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    if gate.admits(remote, request.headers()) {
        next.run(request).await
    } else {
        (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "the status is for the operator: ask from this machine, or with Authorization: Bearer \
             and the node's status token\n",
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_and_token_bearers_are_admitted_and_no_one_else() {
        let gate = OperatorGate::new(|t| t == "right");
        let far: SocketAddr = "192.0.2.9:5000".parse().unwrap();
        let near: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let mapped: SocketAddr = "[::ffff:127.0.0.1]:5000".parse().unwrap();
        let none = HeaderMap::new();
        let bearer = |t: &str| {
            let mut h = HeaderMap::new();
            h.insert(
                header::AUTHORIZATION,
                format!("Bearer {t}").parse().unwrap(),
            );
            h
        };
        assert!(gate.admits(Some(near), &none));
        assert!(gate.admits(Some(mapped), &none));
        assert!(!gate.admits(Some(far), &none));
        assert!(!gate.admits(None, &none));
        assert!(gate.admits(Some(far), &bearer("right")));
        assert!(!gate.admits(Some(far), &bearer("wrong")));
    }
}
