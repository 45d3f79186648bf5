//! A local anycast resolver (sans-IO): clients ask it for a group; it answers from its cache
//! while the authoritative resolver's answer is fresh, otherwise asks the authoritative resolver
//! of the name's domain (one query in flight per name, however many clients wait), and picks a
//! server with its own pipeline over the servers and estimates the answer listed.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use overlay_core::rng::{ProtocolRng, rng_from_seed};
use overlay_core::{NodeId, Outbox, Output, Protocol, Time, TimerTable};
use serde::{Deserialize, Serialize};

use crate::filter::{Candidate, Pipeline, SelectState};
use crate::message::{Message, ServerRecord};
use crate::name::AnycastName;

/// Settings of a local resolver.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LocalConfig {
    /// The authoritative resolver of each domain.
    pub authorities: BTreeMap<String, NodeId>,
    /// The filters applied to an answer's servers before the random pick.
    pub pipeline: Pipeline,
    /// The longest an answer is cached, whatever its TTL says.
    pub max_ttl: Duration,
    /// A query unanswered for this long fails the clients waiting on it.
    pub query_timeout: Duration,
    /// Seed of the random choices.
    pub seed: u64,
}

impl Default for LocalConfig {
    fn default() -> Self {
        Self {
            authorities: BTreeMap::new(),
            pipeline: Pipeline::anycast(0.5),
            max_ttl: Duration::from_secs(300),
            query_timeout: Duration::from_secs(3),
            seed: 0,
        }
    }
}

/// What a client asks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LocalCommand {
    /// Resolve `name` for the client's request `token`.
    Resolve {
        /// Returned with the answer.
        token: u64,
        /// The group.
        name: AnycastName,
    },
}

/// What a client is told.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LocalEvent {
    /// Use this server.
    Resolved {
        /// The request.
        token: u64,
        /// The server.
        server: NodeId,
        /// Its address.
        address: SocketAddr,
        /// Whether the answer came from the cache.
        cached: bool,
    },
    /// A server of `name` the client uses advises `better` instead (only taken when both are
    /// in the cached answer for `name`).
    Advised {
        /// The group.
        name: AnycastName,
        /// The better server.
        server: NodeId,
        /// Its address, as the cached answer lists it.
        address: SocketAddr,
    },
    /// No server: the reason says why.
    Failed {
        /// The request.
        token: u64,
        /// Why.
        reason: LocalFailure,
    },
}

/// Why a name could not be resolved.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LocalFailure {
    /// No authoritative resolver is configured for the domain.
    #[error("no authoritative resolver for domain {0}")]
    NoAuthority(String),
    /// The authoritative resolver knows no such group.
    #[error("no such anycast group")]
    NoSuchGroup,
    /// The group has no server the filters keep.
    #[error("no server left after the filters")]
    NoServer,
    /// The authoritative resolver did not answer in time.
    #[error("the authoritative resolver did not answer")]
    Timeout,
}

#[derive(Clone, Debug)]
struct Cached {
    servers: Vec<ServerRecord>,
    until: Time,
}

#[derive(Clone, Debug)]
struct Pending {
    id: u64,
    tokens: Vec<u64>,
}

/// Counters of a local resolver.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LocalStats {
    /// Requests answered from the cache.
    pub hits: u64,
    /// Queries sent to authoritative resolvers.
    pub queries: u64,
    /// Answers matching no query in flight (late, or forged), and route advice not about a
    /// cached group's servers.
    pub stray_answers: u64,
}

/// A local anycast resolver.
#[derive(Debug)]
pub struct LocalResolver {
    id: NodeId,
    config: LocalConfig,
    rng: ProtocolRng,
    select: SelectState,
    cache: BTreeMap<AnycastName, Cached>,
    pending: BTreeMap<AnycastName, Pending>,
    next_id: u64,
    /// When to give up on each query in flight, keyed by its id: the query timeout after it
    /// left, unless its answer came first (its waiting clients are then failed).
    timers: TimerTable<u64>,
    outbox: Outbox<Message, LocalEvent>,
    stats: LocalStats,
}

impl LocalResolver {
    /// The local resolver `id`.
    pub fn new(id: NodeId, config: LocalConfig) -> Self {
        Self {
            id,
            rng: rng_from_seed(config.seed),
            config,
            select: SelectState::default(),
            cache: BTreeMap::new(),
            pending: BTreeMap::new(),
            next_id: 1,
            timers: TimerTable::default(),
            outbox: Outbox::default(),
            stats: LocalStats::default(),
        }
    }

    /// Its counters.
    pub fn stats(&self) -> LocalStats {
        self.stats
    }

    fn answer(&mut self, token: u64, servers: &[ServerRecord], cached: bool) {
        let candidates: Vec<Candidate> = servers
            .iter()
            .map(|s| Candidate {
                server: s.server,
                estimate: s.estimate_us.map(Duration::from_micros),
                rtt: None,
                spare_rps: s.spare_mrps.map(|m| m as f64 / 1000.0),
            })
            .collect();
        let event = match self
            .config
            .pipeline
            .choose(candidates, &mut self.select, &mut self.rng)
            .and_then(|id| servers.iter().find(|s| s.server == id))
        {
            Some(s) => LocalEvent::Resolved {
                token,
                server: s.server,
                address: s.address,
                cached,
            },
            None => LocalEvent::Failed {
                token,
                reason: LocalFailure::NoServer,
            },
        };
        self.outbox.emit(event);
    }

    fn resolve(&mut self, now: Time, token: u64, name: AnycastName) {
        if let Some(hit) = self.cache.get(&name).filter(|c| c.until > now) {
            let servers = hit.servers.clone();
            self.stats.hits += 1;
            self.answer(token, &servers, true);
            return;
        }
        if let Some(p) = self.pending.get_mut(&name) {
            p.tokens.push(token);
            return;
        }
        let Some(&authority) = self.config.authorities.get(name.domain()) else {
            self.outbox.emit(LocalEvent::Failed {
                token,
                reason: LocalFailure::NoAuthority(name.domain().to_owned()),
            });
            return;
        };
        let id = self.next_id;
        self.next_id += 1;
        self.stats.queries += 1;
        self.outbox.send(
            authority,
            Message::Query {
                id,
                name: name.clone(),
            },
        );
        self.timers.set(id, now + self.config.query_timeout);
        self.pending.insert(
            name,
            Pending {
                id,
                tokens: vec![token],
            },
        );
    }

    /// The query `id` for `name` is settled: take its waiting clients (if it was in flight and
    /// came from the domain's authority).
    fn settle(&mut self, from: NodeId, id: u64, name: &AnycastName) -> Option<Vec<u64>> {
        let authority = self.config.authorities.get(name.domain()).copied();
        let matches = self.pending.get(name).is_some_and(|p| p.id == id);
        if !matches || authority != Some(from) {
            self.stats.stray_answers += 1;
            return None;
        }
        self.timers.cancel(id);
        self.pending.remove(name).map(|p| p.tokens)
    }
}

impl Protocol for LocalResolver {
    type Message = Message;
    type Command = LocalCommand;
    type Event = LocalEvent;

    fn id(&self) -> NodeId {
        self.id
    }

    fn handle_message(&mut self, now: Time, from: NodeId, msg: Message) {
        match msg {
            Message::Answer {
                id,
                name,
                servers,
                ttl_ms,
            } => {
                let Some(tokens) = self.settle(from, id, &name) else {
                    return;
                };
                let ttl = Duration::from_millis(u64::from(ttl_ms)).min(self.config.max_ttl);
                self.cache.insert(
                    name,
                    Cached {
                        servers: servers.clone(),
                        until: now + ttl,
                    },
                );
                for token in tokens {
                    self.answer(token, &servers, false);
                }
            }
            Message::NoSuchGroup { id, name } => {
                for token in self.settle(from, id, &name).unwrap_or_default() {
                    self.outbox.emit(LocalEvent::Failed {
                        token,
                        reason: LocalFailure::NoSuchGroup,
                    });
                }
            }
            Message::RouteAdvice { name, better, .. } => {
                // Believe advice only from a server of the group about another of its servers.
                let listed = self.cache.get(&name).map(|c| c.servers.clone());
                let known = listed.as_ref().and_then(|servers| {
                    let from_member = servers.iter().any(|s| s.server == from);
                    let target = servers.iter().find(|s| s.server == better)?;
                    from_member.then_some(target.address)
                });
                match known {
                    Some(address) => self.outbox.emit(LocalEvent::Advised {
                        name,
                        server: better,
                        address,
                    }),
                    None => self.stats.stray_answers += 1,
                }
            }
            _ => {}
        }
    }

    fn handle_command(&mut self, now: Time, cmd: LocalCommand) {
        match cmd {
            LocalCommand::Resolve { token, name } => self.resolve(now, token, name),
        }
    }

    fn handle_timeout(&mut self, now: Time) {
        while let Some(id) = self.timers.pop_expired(now) {
            let Some(name) = self
                .pending
                .iter()
                .find(|(_, p)| p.id == id)
                .map(|(n, _)| n.clone())
            else {
                continue;
            };
            for token in self
                .pending
                .remove(&name)
                .map(|p| p.tokens)
                .unwrap_or_default()
            {
                self.outbox.emit(LocalEvent::Failed {
                    token,
                    reason: LocalFailure::Timeout,
                });
            }
        }
    }

    fn poll_output(&mut self) -> Option<Output<Message, LocalEvent>> {
        self.outbox.pop()
    }

    fn poll_timeout(&self) -> Option<Time> {
        self.timers.next_deadline()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> Time {
        Time::ZERO + Duration::from_millis(ms)
    }

    fn web() -> AnycastName {
        "web%example.org".parse().unwrap()
    }

    fn local() -> LocalResolver {
        LocalResolver::new(
            NodeId::from_index(50),
            LocalConfig {
                authorities: [("example.org".to_owned(), NodeId::from_index(100))].into(),
                ..LocalConfig::default()
            },
        )
    }

    fn drain(l: &mut LocalResolver) -> (Vec<Message>, Vec<LocalEvent>) {
        let (mut sent, mut events) = (Vec::new(), Vec::new());
        while let Some(o) = l.poll_output() {
            match o {
                Output::Send { msg, .. } => sent.push(msg),
                Output::Emit(e) => events.push(e),
                _ => {}
            }
        }
        (sent, events)
    }

    fn answer(id: u64, ttl_ms: u32) -> Message {
        Message::Answer {
            id,
            name: web(),
            servers: vec![ServerRecord {
                server: NodeId::from_index(1),
                address: "192.0.2.1:443".parse().unwrap(),
                estimate_us: Some(100_000),
                spare_mrps: None,
            }],
            ttl_ms,
        }
    }

    #[test]
    fn one_query_serves_every_waiting_client_and_the_cache_until_the_ttl() {
        let mut l = local();
        let authority = NodeId::from_index(100);
        for token in [1, 2] {
            l.handle_command(at(0), LocalCommand::Resolve { token, name: web() });
        }
        let (sent, events) = drain(&mut l);
        assert_eq!(sent, [Message::Query { id: 1, name: web() }]);
        assert!(events.is_empty());
        l.handle_message(at(10), authority, answer(1, 5000));
        let (_, events) = drain(&mut l);
        assert_eq!(events.len(), 2);
        assert!(
            events
                .iter()
                .all(|e| matches!(e, LocalEvent::Resolved { cached: false, .. }))
        );
        l.handle_command(
            at(4000),
            LocalCommand::Resolve {
                token: 3,
                name: web(),
            },
        );
        let (sent, events) = drain(&mut l);
        assert!(sent.is_empty());
        assert!(matches!(
            events[..],
            [LocalEvent::Resolved {
                token: 3,
                cached: true,
                ..
            }]
        ));
        // Expired: a new query.
        l.handle_command(
            at(6000),
            LocalCommand::Resolve {
                token: 4,
                name: web(),
            },
        );
        assert_eq!(drain(&mut l).0, [Message::Query { id: 2, name: web() }]);
        assert_eq!(l.stats().hits, 1);
    }

    #[test]
    fn route_advice_is_taken_only_between_servers_of_the_group() {
        let mut l = local();
        l.handle_command(
            at(0),
            LocalCommand::Resolve {
                token: 1,
                name: web(),
            },
        );
        drain(&mut l);
        let record = |i: u64| ServerRecord {
            server: NodeId::from_index(i),
            address: format!("192.0.2.{i}:443").parse().unwrap(),
            estimate_us: Some(100_000),
            spare_mrps: None,
        };
        l.handle_message(
            at(1),
            NodeId::from_index(100),
            Message::Answer {
                id: 1,
                name: web(),
                servers: vec![record(1), record(2)],
                ttl_ms: 9000,
            },
        );
        drain(&mut l);
        let advice = |better: u64| Message::RouteAdvice {
            name: web(),
            better: NodeId::from_index(better),
            address: "203.0.113.9:443".parse().unwrap(),
        };
        l.handle_message(at(2), NodeId::from_index(1), advice(2));
        assert_eq!(
            drain(&mut l).1,
            [LocalEvent::Advised {
                name: web(),
                server: NodeId::from_index(2),
                address: record(2).address,
            }]
        );
        // From a stranger, or towards a server the group does not list: ignored.
        l.handle_message(at(3), NodeId::from_index(66), advice(2));
        l.handle_message(at(3), NodeId::from_index(1), advice(9));
        assert!(drain(&mut l).1.is_empty());
        assert_eq!(l.stats().stray_answers, 2);
    }

    #[test]
    fn failures_are_reported_and_stray_answers_ignored() {
        let mut l = local();
        let other: AnycastName = "web%other.net".parse().unwrap();
        l.handle_command(
            at(0),
            LocalCommand::Resolve {
                token: 1,
                name: other,
            },
        );
        assert!(matches!(
            drain(&mut l).1[..],
            [LocalEvent::Failed {
                reason: LocalFailure::NoAuthority(_),
                ..
            }]
        ));
        l.handle_command(
            at(0),
            LocalCommand::Resolve {
                token: 2,
                name: web(),
            },
        );
        drain(&mut l);
        // An answer from someone else, or to another query, changes nothing.
        l.handle_message(at(1), NodeId::from_index(66), answer(1, 5000));
        l.handle_message(at(1), NodeId::from_index(100), answer(9, 5000));
        assert!(drain(&mut l).1.is_empty());
        assert_eq!(l.stats().stray_answers, 2);
        l.handle_timeout(at(3000));
        assert!(matches!(
            drain(&mut l).1[..],
            [LocalEvent::Failed {
                token: 2,
                reason: LocalFailure::Timeout
            }]
        ));
        l.handle_command(
            at(4000),
            LocalCommand::Resolve {
                token: 3,
                name: web(),
            },
        );
        drain(&mut l);
        l.handle_message(
            at(4001),
            NodeId::from_index(100),
            Message::NoSuchGroup { id: 2, name: web() },
        );
        assert!(matches!(
            drain(&mut l).1[..],
            [LocalEvent::Failed {
                token: 3,
                reason: LocalFailure::NoSuchGroup
            }]
        ));
    }
}
