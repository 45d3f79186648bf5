//! The authoritative anycast resolver of a domain (sans-IO): it keeps each group's servers,
//! takes their signed pushes, probes each one now and then to calibrate its estimate, and answers
//! queries with the servers its filters keep, estimates included, for local resolvers to cache
//! and filter further. It can also pick one server itself (for the DNS front end).

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;

use overlay_core::rng::{ProtocolRng, rng_from_seed};
use overlay_core::signature::Verifier;
use overlay_core::{LinkEvent, NodeId, Outbox, Output, Protocol, Time, TimerTable};
use rand::RngExt;
use serde::{Deserialize, Serialize};

use crate::estimate::{EstimatorConfig, ServerEstimate};
use crate::filter::{Candidate, Pipeline, SelectState};
use crate::message::{Message, ServerRecord};
use crate::name::AnycastName;

/// Settings of an authoritative resolver.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ResolverConfig {
    /// The domain it answers for: groups of other domains are refused.
    pub domain: String,
    /// The estimate's settings.
    pub estimator: EstimatorConfig,
    /// Time between two probes of one server (jittered ±25%).
    pub probe_interval: Duration,
    /// A probe not answered within this is lost; a server that loses one is left out of
    /// answers until a probe comes back.
    pub probe_timeout: Duration,
    /// How long a local resolver may cache an answer.
    pub answer_ttl: Duration,
    /// A server unreachable this long (no probe answered, or its link down) is dropped from
    /// every group, as if it had left: the table does not fill with the dead. A server that
    /// lives on sees its link closed and registers again.
    pub forget_after: Duration,
    /// The filters applied before answering (the local resolver applies its own after).
    pub pipeline: Pipeline,
    /// Seed of the probe jitter and random filters.
    pub seed: u64,
}

impl Default for ResolverConfig {
    fn default() -> Self {
        Self {
            domain: String::new(),
            estimator: EstimatorConfig::default(),
            probe_interval: Duration::from_secs(60),
            probe_timeout: Duration::from_secs(10),
            answer_ttl: Duration::from_secs(5),
            forget_after: Duration::from_secs(600),
            pipeline: Pipeline::default(),
            seed: 0,
        }
    }
}

/// What a resolver refused or lost, by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ResolverStats {
    /// Pushes taken.
    pub pushes: u64,
    /// Pushes whose signature did not verify, or from unregistered servers.
    pub pushes_unsigned: u64,
    /// Pushes with absurd figures or old numbers.
    pub pushes_refused: u64,
    /// Probes sent.
    pub probes: u64,
    /// Probes that timed out.
    pub probes_lost: u64,
    /// Probe replies with absurd figures, or matching no probe.
    pub replies_refused: u64,
    /// Queries answered.
    pub queries: u64,
    /// Queries for unknown groups or other domains.
    pub unknown: u64,
    /// Servers taken out of answers because their connection went down.
    pub links_lost: u64,
    /// Servers dropped after being unreachable for `forget_after`.
    pub forgotten: u64,
    /// Registrations refused because the tables were full ([`MAX_SERVERS`], [`MAX_GROUPS`],
    /// [`MAX_GROUPS_PER_SERVER`]).
    pub registrations_refused: u64,
}

/// The most servers a resolver keeps (each is an admitted key; an insider can make many).
pub const MAX_SERVERS: usize = 4096;
/// The most groups a resolver keeps.
pub const MAX_GROUPS: usize = 1024;
/// The most groups one server may register for.
pub const MAX_GROUPS_PER_SERVER: usize = 16;

/// The authoritative resolver's timers, keyed by server (ties fire in declaration order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    /// When to probe this registered server (at once when it registers, then every probe
    /// interval with ±25% jitter).
    Probe(NodeId),
    /// When the outstanding probe of this server counts as lost and the server as unreachable
    /// (the probe timeout after it left), unless its reply came first.
    ProbeLost(NodeId),
}

#[derive(Clone, Debug)]
struct Server {
    address: SocketAddr,
    groups: BTreeSet<AnycastName>,
    estimate: ServerEstimate,
    /// An outstanding probe: its nonce and when it left.
    probing: Option<(u64, Time)>,
    /// Whether the last probe came back (and the link has not gone down since).
    reachable: bool,
    /// Since when it has been unreachable.
    unreachable_since: Option<Time>,
    /// Whether this resolver holds a link to it (asked for at registration and at each probe
    /// without one), so the driver reports the connection's end at once.
    linked: bool,
}

/// Events an authoritative resolver reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResolverEvent {
    /// A server registered for a group.
    Registered {
        /// The server.
        server: NodeId,
        /// The group.
        name: AnycastName,
    },
}

/// An authoritative anycast resolver.
#[derive(Debug)]
pub struct Resolver {
    id: NodeId,
    config: ResolverConfig,
    verifier: Box<dyn Verifier>,
    rng: ProtocolRng,
    groups: BTreeMap<AnycastName, BTreeSet<NodeId>>,
    servers: BTreeMap<NodeId, Server>,
    select: SelectState,
    next_nonce: u64,
    timers: TimerTable<Timer>,
    outbox: Outbox<Message, ResolverEvent>,
    stats: ResolverStats,
}

impl Resolver {
    /// The resolver `id`, checking pushes with `verifier`.
    pub fn new(id: NodeId, config: ResolverConfig, verifier: Box<dyn Verifier>) -> Self {
        Self {
            id,
            rng: rng_from_seed(config.seed),
            config,
            verifier,
            groups: BTreeMap::new(),
            servers: BTreeMap::new(),
            select: SelectState::default(),
            next_nonce: 1,
            timers: TimerTable::default(),
            outbox: Outbox::default(),
            stats: ResolverStats::default(),
        }
    }

    /// What it refused and lost.
    pub fn stats(&self) -> ResolverStats {
        self.stats
    }

    /// Whether `name` belongs to this resolver's domain.
    pub fn serves(&self, name: &AnycastName) -> bool {
        self.config.domain.is_empty() || name.domain() == self.config.domain.to_ascii_lowercase()
    }

    /// The servers of `name` as filters see them at `now` (reachable ones only), or `None` for
    /// an unknown group.
    pub fn candidates(&self, now: Time, name: &AnycastName) -> Option<Vec<Candidate>> {
        Some(
            self.reachable(name)?
                .map(|(id, s)| {
                    let estimate = s.estimate.estimate(&self.config.estimator, now);
                    Candidate {
                        server: *id,
                        estimate: estimate.map(|e| e.rt),
                        rtt: None,
                        spare_rps: estimate.and_then(|e| e.spare_rps),
                    }
                })
                .collect(),
        )
    }

    /// The servers of `name` available now (the last probe came back and the link is up),
    /// with their addresses, or `None` for an unknown group.
    pub fn available_servers(&self, name: &AnycastName) -> Option<Vec<(NodeId, SocketAddr)>> {
        Some(
            self.reachable(name)?
                .map(|(id, s)| (*id, s.address))
                .collect(),
        )
    }

    /// The reachable servers of `name`, or `None` for an unknown group.
    fn reachable<'a>(
        &'a self,
        name: &AnycastName,
    ) -> Option<impl Iterator<Item = (&'a NodeId, &'a Server)>> {
        let members = self.groups.get(name)?;
        Some(
            members
                .iter()
                .filter_map(|id| self.servers.get(id).map(|s| (id, s)))
                .filter(|(_, s)| s.reachable),
        )
    }

    /// The servers an answer for `name` lists at `now`, after this resolver's filters.
    pub fn records(&mut self, now: Time, name: &AnycastName) -> Option<Vec<ServerRecord>> {
        let candidates = self.candidates(now, name)?;
        let kept = self
            .config
            .pipeline
            .apply(candidates, &mut self.select, &mut self.rng);
        Some(
            kept.into_iter()
                .filter_map(|c| {
                    let address = self.servers.get(&c.server)?.address;
                    Some(ServerRecord {
                        server: c.server,
                        address,
                        estimate_us: c
                            .estimate
                            .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX)),
                        spare_mrps: c.spare_rps.map(|s| (s * 1000.0) as u64),
                    })
                })
                .collect(),
        )
    }

    /// One server for `name` chosen by `pipeline` (the DNS front end's answer): `Ok(None)` when
    /// the group has no reachable server, `Err` when the group is unknown.
    pub fn pick(
        &mut self,
        now: Time,
        name: &AnycastName,
        pipeline: &Pipeline,
    ) -> Result<Option<(NodeId, SocketAddr)>, UnknownGroup> {
        let candidates = self
            .candidates(now, name)
            .ok_or_else(|| UnknownGroup(name.clone()))?;
        let chosen = pipeline.choose(candidates, &mut self.select, &mut self.rng);
        Ok(chosen.and_then(|id| self.servers.get(&id).map(|s| (id, s.address))))
    }

    fn on_register(&mut self, now: Time, from: NodeId, name: AnycastName, address: SocketAddr) {
        if !self.serves(&name) {
            self.stats.unknown += 1;
            return;
        }
        let fresh = !self.servers.contains_key(&from);
        let new_group = !self.groups.contains_key(&name);
        let server_full = self
            .servers
            .get(&from)
            .is_some_and(|s| !s.groups.contains(&name) && s.groups.len() >= MAX_GROUPS_PER_SERVER);
        if (fresh && self.servers.len() >= MAX_SERVERS)
            || (new_group && self.groups.len() >= MAX_GROUPS)
            || server_full
        {
            self.stats.registrations_refused += 1;
            return;
        }
        let server = self.servers.entry(from).or_insert_with(|| Server {
            address,
            groups: BTreeSet::new(),
            estimate: ServerEstimate::default(),
            probing: None,
            reachable: true,
            unreachable_since: None,
            linked: false,
        });
        server.address = address;
        if !server.linked {
            server.linked = true;
            self.outbox.connect(from);
        }
        server.groups.insert(name.clone());
        self.groups.entry(name.clone()).or_default().insert(from);
        if fresh {
            // Calibrate at once: a server is answered with as soon as one probe came back.
            self.timers.set(Timer::Probe(from), now);
        }
        self.outbox
            .emit(ResolverEvent::Registered { server: from, name });
    }

    /// Drop `server` from every group (it was unreachable for `forget_after`).
    fn forget(&mut self, server: NodeId) {
        let groups: Vec<AnycastName> = self
            .servers
            .get(&server)
            .map(|s| s.groups.iter().cloned().collect())
            .unwrap_or_default();
        for name in &groups {
            self.on_unregister(server, name);
        }
        self.stats.forgotten += 1;
    }

    fn on_unregister(&mut self, from: NodeId, name: &AnycastName) {
        if let Some(members) = self.groups.get_mut(name) {
            members.remove(&from);
            if members.is_empty() {
                self.groups.remove(name);
            }
        }
        let gone = self.servers.get_mut(&from).is_some_and(|s| {
            s.groups.remove(name);
            s.groups.is_empty()
        });
        if gone {
            if self.servers.remove(&from).is_some_and(|s| s.linked) {
                self.outbox.disconnect(from);
            }
            self.timers.cancel(Timer::Probe(from));
            self.timers.cancel(Timer::ProbeLost(from));
        }
    }

    fn probe(&mut self, now: Time, server: NodeId) {
        let Some(s) = self.servers.get_mut(&server) else {
            return;
        };
        if s.unreachable_since
            .is_some_and(|since| now.saturating_since(since) >= self.config.forget_after)
        {
            self.forget(server);
            return;
        }
        if !s.linked {
            s.linked = true;
            self.outbox.connect(server);
        }
        let nonce = self.next_nonce;
        self.next_nonce += 1;
        s.probing = Some((nonce, now));
        self.stats.probes += 1;
        self.outbox.send(server, Message::Probe { nonce });
        self.timers
            .set(Timer::ProbeLost(server), now + self.config.probe_timeout);
        let base = self.config.probe_interval.as_secs_f64();
        let next = base * self.rng.random_range(0.75..1.25);
        self.timers
            .set(Timer::Probe(server), now + Duration::from_secs_f64(next));
    }

    fn on_probe_reply(&mut self, now: Time, from: NodeId, nonce: u64, tufr_us: u64) {
        let config = &self.config.estimator;
        let Some(s) = self.servers.get_mut(&from) else {
            self.stats.replies_refused += 1;
            return;
        };
        let Some((_, sent)) = s.probing.filter(|&(n, _)| n == nonce) else {
            self.stats.replies_refused += 1;
            return;
        };
        s.probing = None;
        self.timers.cancel(Timer::ProbeLost(from));
        let rt = now.saturating_since(sent);
        match s
            .estimate
            .on_probe(config, now, rt, Duration::from_micros(tufr_us))
        {
            Ok(()) => {
                s.reachable = true;
                s.unreachable_since = None;
            }
            Err(_) => self.stats.replies_refused += 1,
        }
    }

    fn on_push(&mut self, now: Time, push: &crate::push::Push) {
        let Some(s) = self.servers.get_mut(&push.server) else {
            self.stats.pushes_unsigned += 1;
            return;
        };
        if !push.verify(self.verifier.as_ref()) {
            self.stats.pushes_unsigned += 1;
            return;
        }
        match s.estimate.on_push(
            &self.config.estimator,
            now,
            push.seq,
            push.tufr(),
            push.spare_mrps,
        ) {
            Ok(()) => self.stats.pushes += 1,
            Err(_) => self.stats.pushes_refused += 1,
        }
    }
}

/// A query for a group the resolver does not hold.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("no anycast group {0}")]
pub struct UnknownGroup(pub AnycastName);

impl Protocol for Resolver {
    type Message = Message;
    type Command = ();
    type Event = ResolverEvent;

    fn id(&self) -> NodeId {
        self.id
    }

    fn handle_message(&mut self, now: Time, from: NodeId, msg: Message) {
        match msg {
            Message::Register { name, address } => self.on_register(now, from, name, address),
            Message::Unregister { name } => self.on_unregister(from, &name),
            Message::Push(push) => self.on_push(now, &push),
            Message::ProbeReply { nonce, tufr_us } => {
                self.on_probe_reply(now, from, nonce, tufr_us);
            }
            Message::Query { id, name } => match self.records(now, &name) {
                Some(servers) if self.serves(&name) => {
                    self.stats.queries += 1;
                    let ttl_ms =
                        u32::try_from(self.config.answer_ttl.as_millis()).unwrap_or(u32::MAX);
                    self.outbox.send(
                        from,
                        Message::Answer {
                            id,
                            name,
                            servers,
                            ttl_ms,
                        },
                    );
                }
                _ => {
                    self.stats.unknown += 1;
                    self.outbox.send(from, Message::NoSuchGroup { id, name });
                }
            },
            // Messages meant for servers or clients.
            Message::Probe { .. }
            | Message::Answer { .. }
            | Message::NoSuchGroup { .. }
            | Message::RouteAdvice { .. } => {}
        }
    }

    fn handle_command(&mut self, _now: Time, (): ()) {}

    /// A registered server's connection going down takes it out of answers at once (a
    /// killed process is gone in the transport's idle timeout, not the next probe's); it
    /// comes back when a probe is answered, and one leaves as soon as the link is up again.
    fn handle_link(&mut self, now: Time, peer: NodeId, event: LinkEvent) {
        let Some(s) = self.servers.get_mut(&peer) else {
            return;
        };
        match event {
            LinkEvent::Down => {
                if s.reachable {
                    self.stats.links_lost += 1;
                }
                s.linked = false;
                s.reachable = false;
                s.unreachable_since.get_or_insert(now);
                s.probing = None;
                self.timers.cancel(Timer::ProbeLost(peer));
            }
            LinkEvent::Up => {
                if !s.reachable && s.probing.is_none() {
                    self.timers.set(Timer::Probe(peer), now);
                }
            }
            // Reachability is the probes' to judge.
            LinkEvent::Heard => {}
        }
    }

    fn handle_timeout(&mut self, now: Time) {
        while let Some(timer) = self.timers.pop_expired(now) {
            match timer {
                Timer::Probe(server) => self.probe(now, server),
                Timer::ProbeLost(server) => {
                    if let Some(s) = self.servers.get_mut(&server) {
                        s.probing = None;
                        s.reachable = false;
                        s.unreachable_since.get_or_insert(now);
                        self.stats.probes_lost += 1;
                    }
                }
            }
        }
    }

    fn poll_output(&mut self) -> Option<Output<Message, ResolverEvent>> {
        self.outbox.pop()
    }

    fn poll_timeout(&self) -> Option<Time> {
        self.timers.next_deadline()
    }
}
