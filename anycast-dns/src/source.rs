//! Where the DNS front end's answers come from: a live authoritative resolver (its table, its
//! estimates, one pick per query), a local resolver (through the runtime that drives it), or a
//! fixed table for trying the front end by hand.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use anycast_resolver::{AnycastName, Pipeline, Resolver};
use overlay_core::{NodeId, Time};

/// One server an answer names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Server {
    /// The DNS label that names this server under its group (SRV targets point at
    /// `LABEL.SERVICE._anycast.DOMAIN`, which resolves to it alone): letters and digits only.
    pub label: String,
    /// Its address (the port goes into SRV answers: members may share a host).
    pub address: SocketAddr,
}

/// What the source says of a group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// Use this server.
    Server(Server),
    /// The group exists but no server is available now.
    NoServer,
    /// No such group.
    Unknown,
    /// The source cannot tell now (its upstream did not answer in time, or too many queries
    /// wait on it): SERVFAIL, which resolvers retry.
    Unavailable,
}

/// Where answers come from.
#[async_trait::async_trait]
pub trait AnswerSource: Send + Sync + 'static {
    /// The server for `name` now (one pick per call: anycast spreads clients by answering
    /// each query on its own).
    async fn lookup(&self, name: &AnycastName) -> Lookup;

    /// The address of the available server of `name` whose label is `label`, if there is one
    /// (what an SRV target resolves to).
    async fn member(&self, name: &AnycastName, label: &str) -> Option<SocketAddr>;
}

/// The label a member's id gets: the first 16 hex digits of its key (64 bits: unique in any
/// group a resolver can hold, and a valid host-name label).
pub fn member_label(id: &NodeId) -> String {
    let mut hex = id.to_hex();
    hex.truncate(16);
    hex
}

/// A live authoritative resolver as the answer source: each query picks a server with
/// `pipeline` from the resolver's current table and estimates, at the time `clock` reads
/// (the clock the runtime driving the resolver gives it, so estimates age alike).
pub struct LiveResolver {
    resolver: Arc<Mutex<Resolver>>,
    pipeline: Pipeline,
    clock: fn() -> Time,
}

impl std::fmt::Debug for LiveResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveResolver")
            .field("pipeline", &self.pipeline)
            .finish_non_exhaustive()
    }
}

impl LiveResolver {
    /// Answers from `resolver` (shared with whatever drives it), picking with `pipeline` at
    /// the time `clock` reads.
    pub fn new(resolver: Arc<Mutex<Resolver>>, pipeline: Pipeline, clock: fn() -> Time) -> Self {
        Self {
            resolver,
            pipeline,
            clock,
        }
    }

    fn locked(&self) -> std::sync::MutexGuard<'_, Resolver> {
        // A panic elsewhere while holding the lock leaves the table as it was: keep answering.
        self.resolver.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait::async_trait]
impl AnswerSource for LiveResolver {
    async fn lookup(&self, name: &AnycastName) -> Lookup {
        let now = (self.clock)();
        let mut resolver = self.locked();
        if !resolver.serves(name) {
            return Lookup::Unknown;
        }
        match resolver.pick(now, name, &self.pipeline) {
            Err(_) => Lookup::Unknown,
            Ok(None) => Lookup::NoServer,
            Ok(Some((id, address))) => Lookup::Server(Server {
                label: member_label(&id),
                address,
            }),
        }
    }

    async fn member(&self, name: &AnycastName, label: &str) -> Option<SocketAddr> {
        let resolver = self.locked();
        resolver
            .available_servers(name)?
            .into_iter()
            .find(|(id, _)| member_label(id) == label)
            .map(|(_, address)| address)
    }
}

/// A fixed table of groups and their servers, each query answered with the next server of
/// its group in turn (for trying the front end with DNS tools; no estimates).
#[derive(Debug, Default)]
pub struct FixedTable {
    groups: BTreeMap<AnycastName, Vec<SocketAddr>>,
    turn: AtomicUsize,
}

impl FixedTable {
    /// A table of `groups` (a group with no servers exists but has none available).
    pub fn new(groups: BTreeMap<AnycastName, Vec<SocketAddr>>) -> Self {
        Self {
            groups,
            turn: AtomicUsize::new(0),
        }
    }

    /// The label of a group's `index`th server.
    fn label(index: usize) -> String {
        format!("s{index}")
    }
}

#[async_trait::async_trait]
impl AnswerSource for FixedTable {
    async fn lookup(&self, name: &AnycastName) -> Lookup {
        match self.groups.get(name) {
            None => Lookup::Unknown,
            Some(servers) if servers.is_empty() => Lookup::NoServer,
            Some(servers) => {
                let index = self.turn.fetch_add(1, Ordering::Relaxed) % servers.len();
                Lookup::Server(Server {
                    label: Self::label(index),
                    address: servers[index],
                })
            }
        }
    }

    async fn member(&self, name: &AnycastName, label: &str) -> Option<SocketAddr> {
        let servers = self.groups.get(name)?;
        (0..servers.len())
            .find(|&i| Self::label(i) == label)
            .map(|i| servers[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anycast_resolver::{Message, ResolverConfig};
    use overlay_core::signature::SimulatedSignatures;
    use overlay_core::{Output, Protocol};

    fn zero() -> Time {
        Time::ZERO + std::time::Duration::from_millis(30)
    }

    #[tokio::test]
    async fn a_live_resolver_answers_once_its_server_was_probed() {
        let mut r = Resolver::new(
            NodeId::from_index(100),
            ResolverConfig {
                domain: "example.org".to_owned(),
                ..ResolverConfig::default()
            },
            Box::new(SimulatedSignatures::new(1, NodeId::from_index(100))),
        );
        let server = NodeId::from_index(1);
        let address: SocketAddr = "192.0.2.9:4433".parse().unwrap();
        r.handle_message(
            Time::ZERO,
            server,
            Message::Register {
                name: "web%example.org".parse().unwrap(),
                address,
            },
        );
        let resolver = Arc::new(Mutex::new(r));
        let live = LiveResolver::new(resolver.clone(), Pipeline::equivalent(0.5), zero);
        let web: AnycastName = "web%example.org".parse().unwrap();
        // Its link down: the group exists, nobody is available.
        resolver
            .lock()
            .unwrap()
            .handle_link(Time::ZERO, server, overlay_core::LinkEvent::Down);
        assert_eq!(live.lookup(&web).await, Lookup::NoServer);
        assert_eq!(live.member(&web, &member_label(&server)).await, None);
        // Up again, probed, the probe answered: available.
        {
            let mut r = resolver.lock().unwrap();
            r.handle_link(Time::ZERO, server, overlay_core::LinkEvent::Up);
            r.handle_timeout(Time::ZERO);
            let mut nonce = None;
            while let Some(o) = r.poll_output() {
                if let Output::Send {
                    msg: Message::Probe { nonce: n },
                    ..
                } = o
                {
                    nonce = Some(n);
                }
            }
            r.handle_message(
                zero(),
                server,
                Message::ProbeReply {
                    nonce: nonce.unwrap(),
                    tufr_us: 10_000,
                },
            );
        }
        let label = member_label(&server);
        assert_eq!(
            live.lookup(&web).await,
            Lookup::Server(Server {
                label: label.clone(),
                address
            })
        );
        assert_eq!(live.member(&web, &label).await, Some(address));
        assert_eq!(live.member(&web, "0123456789abcdef").await, None);
        assert_eq!(
            live.lookup(&"mail%example.org".parse().unwrap()).await,
            Lookup::Unknown
        );
        // Another domain is not this resolver's, even for a group of the same service.
        assert_eq!(
            live.lookup(&"web%other.net".parse().unwrap()).await,
            Lookup::Unknown
        );
    }

    #[tokio::test]
    async fn a_fixed_table_answers_its_servers_in_turn_and_each_by_its_label() {
        let web: AnycastName = "web%example.org".parse().unwrap();
        let a: SocketAddr = "192.0.2.1:80".parse().unwrap();
        let b: SocketAddr = "192.0.2.2:81".parse().unwrap();
        let table = FixedTable::new(BTreeMap::from([(web.clone(), vec![a, b])]));
        let mut seen = Vec::new();
        for _ in 0..4 {
            let Lookup::Server(s) = table.lookup(&web).await else {
                panic!("no server")
            };
            assert_eq!(table.member(&web, &s.label).await, Some(s.address));
            seen.push(s.address);
        }
        assert_eq!(seen, [a, b, a, b]);
        assert_eq!(table.member(&web, "s9").await, None);
    }
}
