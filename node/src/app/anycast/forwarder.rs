//! `esm resolve --serve ADDR`: a local caching forwarder for programs that cannot be changed.
//! A machine's resolver (or `dig`, `getent` with a resolv.conf naming it) asks it DNS; it runs
//! the local anycast resolver ([`LocalResolver`](anycast_resolver::LocalResolver): answers cached for their TTL, one query in
//! flight per name, its own pick among the servers an answer lists) against the group's
//! authoritative resolver over QUIC, and answers each query with the server it picked.
//!
//! Bounded: at most [`MAX_WAITING`] queries wait on the authoritative resolver at once (more
//! get SERVFAIL at once), each at most [`WAIT`]; the servers it handed out (what SRV targets
//! resolve to) are remembered [`MAX_HANDED`] at most, for their TTL.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anycast_dns::{AnswerSource, Lookup, Server, member_label};
use anycast_resolver::{AnycastName, LocalCommand, LocalEvent, LocalFailure};
use tokio::sync::{mpsc, oneshot};

use crate::runtime::Control;

/// Queries waiting on the authoritative resolver at once, at most.
pub const MAX_WAITING: usize = 1024;
/// The longest a query waits for the local resolver's answer (its own query timeout is 3 s).
pub const WAIT: Duration = Duration::from_secs(4);
/// Servers remembered for their SRV target names, at most.
pub const MAX_HANDED: usize = 4096;

#[derive(Debug, Default)]
struct Waiting {
    next: u64,
    by_token: BTreeMap<u64, oneshot::Sender<LocalEvent>>,
}

/// The forwarder's answer source: each DNS query becomes a request to the local resolver the
/// runtime drives.
#[derive(Debug)]
pub struct Forwarder {
    control: mpsc::Sender<Control<LocalCommand>>,
    waiting: Arc<Mutex<Waiting>>,
    /// Servers handed out, by group and label: their address and until when.
    handed: Mutex<BTreeMap<(AnycastName, String), (SocketAddr, Instant)>>,
    ttl: Duration,
}

impl Forwarder {
    /// A forwarder asking through `control`, reading the local resolver's `events` (a task
    /// hands each answer to its query), remembering what it handed out for `ttl`.
    pub fn new(
        control: mpsc::Sender<Control<LocalCommand>>,
        mut events: mpsc::UnboundedReceiver<LocalEvent>,
        ttl: Duration,
    ) -> Self {
        let waiting = Arc::new(Mutex::new(Waiting::default()));
        let answers = waiting.clone();
        tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                let token = match &event {
                    LocalEvent::Resolved { token, .. } | LocalEvent::Failed { token, .. } => *token,
                    LocalEvent::Advised { .. } => continue,
                };
                let waiter = answers
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .by_token
                    .remove(&token);
                if let Some(waiter) = waiter {
                    let _ = waiter.send(event);
                }
            }
        });
        Self {
            control,
            waiting,
            handed: Mutex::new(BTreeMap::new()),
            ttl,
        }
    }

    /// Remembers that `address` was handed out for `name` under `label`.
    fn hand_out(&self, name: &AnycastName, label: &str, address: SocketAddr) {
        let now = Instant::now();
        let mut handed = self.handed.lock().unwrap_or_else(PoisonError::into_inner);
        if handed.len() >= MAX_HANDED {
            handed.retain(|_, (_, until)| *until > now);
        }
        if handed.len() >= MAX_HANDED {
            // Still full of live entries: forget the one that expires first.
            if let Some(first) = handed
                .iter()
                .min_by_key(|(_, (_, until))| *until)
                .map(|(k, _)| k.clone())
            {
                handed.remove(&first);
            }
        }
        handed.insert((name.clone(), label.to_owned()), (address, now + self.ttl));
    }
}

#[async_trait::async_trait]
impl AnswerSource for Forwarder {
    async fn lookup(&self, name: &AnycastName) -> Lookup {
        let (tx, rx) = oneshot::channel();
        let token = {
            let mut w = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
            if w.by_token.len() >= MAX_WAITING {
                return Lookup::Unavailable;
            }
            w.next = w.next.wrapping_add(1);
            let token = w.next;
            w.by_token.insert(token, tx);
            token
        };
        let asked = self
            .control
            .send(Control::Command(LocalCommand::Resolve {
                token,
                name: name.clone(),
            }))
            .await;
        let answer = match asked {
            Ok(()) => tokio::time::timeout(WAIT, rx)
                .await
                .ok()
                .and_then(Result::ok),
            Err(_) => None,
        };
        self.waiting
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .by_token
            .remove(&token);
        match answer {
            Some(LocalEvent::Resolved {
                server, address, ..
            }) => {
                let label = member_label(&server);
                self.hand_out(name, &label, address);
                Lookup::Server(Server { label, address })
            }
            Some(LocalEvent::Failed { reason, .. }) => match reason {
                LocalFailure::NoAuthority(_) | LocalFailure::NoSuchGroup => Lookup::Unknown,
                LocalFailure::NoServer => Lookup::NoServer,
                LocalFailure::Timeout => Lookup::Unavailable,
            },
            Some(LocalEvent::Advised { .. }) | None => Lookup::Unavailable,
        }
    }

    async fn member(&self, name: &AnycastName, label: &str) -> Option<SocketAddr> {
        let handed = self.handed.lock().unwrap_or_else(PoisonError::into_inner);
        let (address, until) = handed.get(&(name.clone(), label.to_owned()))?;
        (*until > Instant::now()).then_some(*address)
    }
}
