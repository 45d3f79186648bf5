//! The root sends viewers only to HTTP addresses it has checked: a node names its own HTTP
//! address (any node could name any host), so the root asks `GET /id` there and accepts the
//! address only if the answer carries that node's id (`/id` names the node and nothing else,
//! for anyone; `/status` is the operator's). Checks are repeated now and then, and an
//! address that stops answering as that node is dropped.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use overlay_core::NodeId;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long a check may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);
/// Most bytes of an answer read.
const MAX_ANSWER: u64 = 1 << 20;
/// A vouched address is checked again this often.
const RECHECK: Duration = Duration::from_secs(60);
/// An address that failed its check is tried again after this long.
const RETRY: Duration = Duration::from_secs(5);
/// Most first checks and retries under way at once (re-checks of vouched addresses, one per
/// node a minute, come on top).
const MAX_CHECKS: usize = 16;

/// What the root knows of the addresses it checked.
#[derive(Debug, Default)]
pub struct Vouchers {
    checks: Mutex<BTreeMap<NodeId, Check>>,
}

#[derive(Clone, Copy, Debug)]
struct Check {
    addr: SocketAddr,
    at: Instant,
    /// `None` while under way.
    passed: Option<bool>,
}

impl Vouchers {
    /// Whether `node` answered as itself at `addr` at its last check.
    pub fn vouches(&self, node: &NodeId, addr: SocketAddr) -> bool {
        self.checks.lock().is_ok_and(|c| {
            c.get(node)
                .is_some_and(|k| k.addr == addr && k.passed == Some(true))
        })
    }

    /// Starts the checks due among `nodes` (their ids and the HTTP addresses they named): at
    /// most a few first checks under way at once, and at most one check per node (a vouched
    /// address is checked again once a minute); forgets nodes no longer listed.
    pub fn check(self: &Arc<Self>, nodes: &[(NodeId, SocketAddr)]) {
        let now = Instant::now();
        let due: Vec<(NodeId, SocketAddr)> = {
            let Ok(mut checks) = self.checks.lock() else {
                return;
            };
            checks.retain(|id, _| nodes.iter().any(|(n, _)| n == id));
            let under_way = checks.values().filter(|c| c.passed.is_none()).count();
            let due: Vec<(NodeId, SocketAddr)> = nodes
                .iter()
                .filter(|(id, addr)| {
                    checks.get(id).is_none_or(|c| {
                        c.addr != *addr
                            || match c.passed {
                                Some(true) => now.duration_since(c.at) >= RECHECK,
                                Some(false) => now.duration_since(c.at) >= RETRY,
                                None => false,
                            }
                    })
                })
                .take(MAX_CHECKS.saturating_sub(under_way))
                .copied()
                .collect();
            for &(id, addr) in &due {
                let passed = checks
                    .get(&id)
                    .filter(|c| c.addr == addr)
                    .and_then(|c| c.passed);
                // A vouched address stays vouched while it is checked again.
                checks.insert(
                    id,
                    Check {
                        addr,
                        at: now,
                        passed: passed.filter(|p| *p),
                    },
                );
            }
            due
        };
        for (id, addr) in due {
            let this = self.clone();
            tokio::spawn(async move {
                let passed = answers_as(addr, &id).await;
                if let Ok(mut checks) = this.checks.lock()
                    && let Some(c) = checks.get_mut(&id)
                    && c.addr == addr
                {
                    c.passed = Some(passed);
                    c.at = Instant::now();
                }
            });
        }
    }
}

/// Whether `GET /id` at `addr` answers, within the time and size allowed, with a page
/// whose `id` is `node`.
async fn answers_as(addr: SocketAddr, node: &NodeId) -> bool {
    let ask = async {
        let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
        s.write_all(format!("GET /id HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
            .await
            .ok()?;
        let mut answer = Vec::new();
        s.take(MAX_ANSWER).read_to_end(&mut answer).await.ok()?;
        // Only a 200 counts (a 404 page could carry any id).
        let ok = answer.starts_with(b"HTTP/1.1 200 ") || answer.starts_with(b"HTTP/1.0 200 ");
        if !ok {
            return Some(false);
        }
        let body = answer
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map(|h| &answer[h + 4..])?;
        let status: serde_json::Value = serde_json::from_slice(body).ok()?;
        Some(status["id"].as_str() == Some(node.to_hex().as_str()))
    };
    tokio::time::timeout(CHECK_TIMEOUT, ask)
        .await
        .ok()
        .flatten()
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A status page on loopback that names `id`.
    async fn status_server(id: String) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let body = format!("{{\"id\":\"{id}\"}}");
                let mut request = [0u8; 1024];
                let _ = s.read(&mut request).await;
                let _ = s
                    .write_all(
                        format!(
                            "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                            body.len()
                        )
                        .as_bytes(),
                    )
                    .await;
            }
        });
        addr
    }

    #[tokio::test]
    async fn an_address_is_vouched_for_only_when_it_answers_as_the_node_that_named_it() {
        let (a, b) = (NodeId::from_index(1), NodeId::from_index(2));
        let at_a = status_server(a.to_hex()).await;
        let vouchers = Arc::new(Vouchers::default());
        // b names a's address: a stranger's host, as far as b is concerned.
        let nodes = [(a, at_a), (b, at_a)];
        vouchers.check(&nodes);
        let wait = Instant::now();
        while !vouchers.vouches(&a, at_a) {
            assert!(
                wait.elapsed() < Duration::from_secs(5),
                "a was never vouched for"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(
            !vouchers.vouches(&b, at_a),
            "b named an address that is not its own"
        );
        let nowhere: SocketAddr = "127.0.0.1:9".parse().unwrap();
        assert!(!vouchers.vouches(&a, nowhere), "only the address checked");
    }
}
