//! Anycast as deployed, in the simulator: every server runs `AnycastServer` (registration,
//! probe replies, signed pushes) in front of its queue; every client has a `Resolver` on its
//! own host (the paper's resolver in the client's domain, which probes the servers from
//! there) and asks it through a caching `LocalResolver`, whose pipeline picks the server. Every
//! message crosses the map with its path's delay; the probe object queues at the server like
//! any request, so its reply leaves when it is served.

use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use anycast_resolver::{
    AnycastName, AnycastServer, EstimatorConfig, LocalCommand, LocalConfig, LocalEvent,
    LocalResolver, Message, Model, Pipeline, PushConfig, Resolver, ResolverConfig, ServerCommand,
};
use overlay_core::rng::{derive_seed, rng_from_seed};
use overlay_core::signature::SimulatedSignatures;
use overlay_core::{Bandwidth, LinkEvent, NodeId, Output, Protocol, Time, TimerTable};
use rand::RngExt;

use super::AnycastArgs;
use super::replay::Replay;
use super::world::{ServerQueue, World};
use crate::sim::{EventQueue, MatrixPaths, SimConfig, Simulator};

/// The anycast domain of the simulated group.
const DOMAIN: &str = "anycast.sim";
/// One-way delay between two programs on one host.
const SAME_HOST: Duration = Duration::from_micros(50);
/// Servers register with every resolver within this long of the start (spread at random).
const JOIN_SPREAD_S: f64 = 2.0;

fn at(t: f64) -> Time {
    Time::ZERO + Duration::from_secs_f64(t.max(0.0))
}

fn secs(t: Time) -> f64 {
    t.saturating_since(Time::ZERO).as_secs_f64()
}

/// How the clients' resolvers choose.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Selection {
    /// The local resolver's pipeline.
    pub(super) pipeline: Pipeline,
    /// How probes calibrate pushes.
    pub(super) model: Model,
}

/// What arrives at a server's queue and when it is first read.
#[derive(Clone, Copy, Debug)]
enum Work {
    /// A client's request.
    Request,
    /// A resolver's probe object.
    Probe { from: NodeId, nonce: u64 },
}

/// A server host's timers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum HostTimer {
    /// Each second: the spare capacity is measured and the background moves on.
    Measure,
    /// Each quarter second: the delay a request arriving now would see is reported, so the
    /// figure falls as the queue drains even when no request arrives.
    Sample,
}

/// How often a server host samples its queue's delay.
const SAMPLE_EVERY: Duration = Duration::from_millis(250);

/// A server host: its queue and background, and `AnycastServer` telling resolvers about it.
#[derive(Debug)]
pub(super) struct ServerHost {
    inner: AnycastServer,
    queue: ServerQueue,
    /// Background load each minute.
    background: Vec<f64>,
    /// Probe objects in the queue, by when their first read comes: the resolver, the probe's
    /// nonce, its delay.
    reading: EventQueue<(NodeId, u64, Duration)>,
    /// Probes whose connection is being set up, by when their request arrives: the resolver
    /// and the probe's nonce.
    connecting: EventQueue<(NodeId, u64)>,
    /// The round trip to each resolver: a probe fetches its object over a fresh connection,
    /// as a client does, so its request reaches the queue one round trip after it was sent.
    handshake: BTreeMap<NodeId, Duration>,
    /// The once-a-second measurement and the quarter-second sample.
    ticks: TimerTable<HostTimer>,
    events: VecDeque<SiteEvent>,
}

impl ServerHost {
    /// `work` arrives at `now`: it waits its turn. The server knows the work ahead of it, so
    /// it knows the delay at once and reports it then (not at the first read, which would
    /// tell the resolvers of a queue as late as the queue is long).
    fn take(&mut self, now: Time, work: Work) -> Duration {
        let d = self.queue.serve(secs(now));
        let delay = Duration::from_secs_f64(d);
        self.inner
            .handle_command(now, ServerCommand::Served { tufr: delay });
        if let Work::Probe { from, nonce } = work {
            self.reading.push(now + delay, (from, nonce, delay));
        }
        delay
    }
}

/// The next output of `poll` that is not an event (events dropped).
fn without_events<E>(
    mut poll: impl FnMut() -> Option<Output<Message, E>>,
) -> Option<Output<Message, SiteEvent>> {
    loop {
        match poll()? {
            Output::Emit(_) => {}
            Output::Send { to, msg } => return Some(Output::Send { to, msg }),
            Output::Connect { peer } => return Some(Output::Connect { peer }),
            Output::Disconnect { peer } => return Some(Output::Disconnect { peer }),
            Output::Measure { peer, request } => return Some(Output::Measure { peer, request }),
        }
    }
}

/// A program of the simulated world.
#[derive(Debug)]
pub(super) enum Site {
    /// A server host.
    Server(Box<ServerHost>),
    /// A client's resolver.
    Resolver(Box<Resolver>),
    /// A client's local resolver.
    Local(Box<LocalResolver>),
}

/// What the scenario tells a program.
#[derive(Debug)]
pub(super) enum SiteCommand {
    /// To a server's `AnycastServer`.
    Server(ServerCommand),
    /// To a local resolver.
    Local(LocalCommand),
    /// A client's request `token` reaches a server.
    Request {
        /// The request.
        token: u64,
    },
}

/// What a program tells the scenario.
#[derive(Debug)]
pub(super) enum SiteEvent {
    /// A local resolver's answer.
    Local(LocalEvent),
    /// A server took request `token`; it waits `delay` before its first read.
    Taken {
        /// The request.
        token: u64,
        /// Queueing and service.
        delay: Duration,
    },
}

impl Protocol for Site {
    type Message = Message;
    type Command = SiteCommand;
    type Event = SiteEvent;

    fn id(&self) -> NodeId {
        match self {
            Self::Server(s) => s.inner.id(),
            Self::Resolver(r) => r.id(),
            Self::Local(l) => l.id(),
        }
    }

    fn handle_message(&mut self, now: Time, from: NodeId, msg: Message) {
        match self {
            Self::Server(s) => match msg {
                // The probe object is fetched like any object: a connection first, then the
                // request waits in the queue.
                Message::Probe { nonce } => {
                    let rtt = s.handshake.get(&from).copied().unwrap_or_default();
                    s.connecting.push(now + rtt, (from, nonce));
                }
                other => s.inner.handle_message(now, from, other),
            },
            Self::Resolver(r) => r.handle_message(now, from, msg),
            Self::Local(l) => l.handle_message(now, from, msg),
        }
    }

    fn handle_command(&mut self, now: Time, cmd: SiteCommand) {
        match (self, cmd) {
            (Self::Server(s), SiteCommand::Server(cmd)) => s.inner.handle_command(now, cmd),
            (Self::Server(s), SiteCommand::Request { token }) => {
                let delay = s.take(now, Work::Request);
                s.events.push_back(SiteEvent::Taken { token, delay });
            }
            (Self::Local(l), SiteCommand::Local(cmd)) => l.handle_command(now, cmd),
            (site, cmd) => unreachable!("{cmd:?} sent to {}", site.id()),
        }
    }

    fn handle_link(&mut self, now: Time, peer: NodeId, event: LinkEvent) {
        match self {
            Self::Server(s) => s.inner.handle_link(now, peer, event),
            Self::Resolver(r) => r.handle_link(now, peer, event),
            Self::Local(l) => l.handle_link(now, peer, event),
        }
    }

    fn handle_timeout(&mut self, now: Time) {
        match self {
            Self::Server(s) => {
                while let Some(timer) = s.ticks.pop_expired(now) {
                    let t = secs(now);
                    match timer {
                        HostTimer::Measure => {
                            let minute = ((t / 60.0) as usize).min(s.background.len() - 1);
                            let spare = s.queue.tick(t, s.background[minute]);
                            // Saturating: a negative spare states none.
                            let mrps = (spare.max(0.0) * 1000.0) as u64;
                            s.inner.handle_command(now, ServerCommand::Spare { mrps });
                            s.ticks.set(timer, now + Duration::from_secs(1));
                        }
                        HostTimer::Sample => {
                            let tufr = Duration::from_secs_f64(s.queue.delay(t));
                            s.inner.handle_command(now, ServerCommand::Served { tufr });
                            s.ticks.set(timer, now + SAMPLE_EVERY);
                        }
                    }
                }
                // Probe requests in after their handshake.
                while s.connecting.peek_time().is_some_and(|t| t <= now) {
                    if let Some((_, (from, nonce))) = s.connecting.pop() {
                        s.take(now, Work::Probe { from, nonce });
                    }
                }
                // Probe objects read: each reply leaves with the probe's own delay as body.
                while s.reading.peek_time().is_some_and(|t| t <= now) {
                    let Some((_, (resolver, nonce, tufr))) = s.reading.pop() else {
                        break;
                    };
                    let answer = ServerCommand::AnswerProbe {
                        resolver,
                        nonce,
                        tufr,
                    };
                    s.inner.handle_command(now, answer);
                }
                if s.inner.poll_timeout().is_some_and(|d| d <= now) {
                    s.inner.handle_timeout(now);
                }
            }
            Self::Resolver(r) => r.handle_timeout(now),
            Self::Local(l) => l.handle_timeout(now),
        }
    }

    fn poll_output(&mut self) -> Option<Output<Message, SiteEvent>> {
        match self {
            Self::Server(s) => s
                .events
                .pop_front()
                .map(Output::Emit)
                .or_else(|| without_events(|| s.inner.poll_output())),
            // The resolver's registrations are not the scenario's business.
            Self::Resolver(r) => without_events(|| r.poll_output()),
            Self::Local(l) => l.poll_output().map(|o| o.map(|m| m, SiteEvent::Local)),
        }
    }

    fn poll_timeout(&self) -> Option<Time> {
        match self {
            Self::Server(s) => [
                s.ticks.next_deadline(),
                s.reading.peek_time(),
                s.connecting.peek_time(),
                s.inner.poll_timeout(),
            ]
            .into_iter()
            .flatten()
            .min(),
            Self::Resolver(r) => r.poll_timeout(),
            Self::Local(l) => l.poll_timeout(),
        }
    }
}

/// Replay `world`'s requests through the protocols, the clients' local resolvers choosing with
/// `selection`.
pub(super) fn replay(
    world: &World,
    selection: &Selection,
    args: &AnycastArgs,
    seed: u64,
) -> Replay {
    let n = world.clients;
    let k = world.capacity.len();
    // Slots: local resolvers 0..n and resolvers n..2n on the clients' hosts, then the servers.
    let local = |c: usize| c;
    let resolver = |c: usize| n + c;
    let server = |s: usize| 2 * n + s;
    let host = |slot: usize| if slot < 2 * n { slot % n } else { slot - n };
    let slots = 2 * n + k;
    let delay = (0..slots)
        .map(|a| {
            (0..slots)
                .map(|b| {
                    if host(a) == host(b) {
                        SAME_HOST
                    } else {
                        Duration::from_secs_f64(world.rtt[host(a)][host(b)] / 2.0)
                    }
                })
                .collect()
        })
        .collect();
    let paths = MatrixPaths {
        delay,
        bandwidth: vec![vec![Bandwidth::from_mbps(100); slots]; slots],
    };
    let mut sim: Simulator<Site, MatrixPaths> = Simulator::new(
        paths,
        SimConfig {
            seed,
            ..SimConfig::default()
        },
    );
    sim.set_record_events(true);
    let id = |slot: usize| Simulator::<Site, MatrixPaths>::member_id(slot);
    let secret = derive_seed(seed, 0x516);
    let name: AnycastName = format!("web%{DOMAIN}")
        .parse()
        .unwrap_or_else(|e| unreachable!("a fixed valid name: {e}"));
    for c in 0..n {
        let config = ResolverConfig {
            domain: DOMAIN.to_owned(),
            estimator: EstimatorConfig {
                model: selection.model,
                ..EstimatorConfig::default()
            },
            probe_interval: args.probe_interval,
            answer_ttl: args.answer_ttl,
            pipeline: Pipeline::default(),
            seed: sim.member_seed(resolver(c)),
            ..ResolverConfig::default()
        };
        let verifier = SimulatedSignatures::new(secret, id(resolver(c)));
        let r = Resolver::new(id(resolver(c)), config, Box::new(verifier));
        sim.add_member(resolver(c), Site::Resolver(Box::new(r)));
        let config = LocalConfig {
            authorities: [(DOMAIN.to_owned(), id(resolver(c)))].into(),
            pipeline: selection.pipeline.clone(),
            seed: sim.member_seed(local(c)),
            ..LocalConfig::default()
        };
        let l = LocalResolver::new(id(local(c)), config);
        sim.add_member(local(c), Site::Local(Box::new(l)));
    }
    let mut rng = rng_from_seed(derive_seed(seed, 0x901));
    for s in 0..k {
        let push = PushConfig {
            threshold: args.push_threshold,
            min_gap: args.push_gap,
            ..PushConfig::default()
        };
        let signer = SimulatedSignatures::new(secret, id(server(s)));
        let mut ticks = TimerTable::default();
        ticks.set(HostTimer::Measure, at(1.0));
        ticks.set(HostTimer::Sample, at(0.0) + SAMPLE_EVERY);
        let hosted = ServerHost {
            inner: AnycastServer::new(id(server(s)), push, Box::new(signer)),
            queue: ServerQueue::new(world.capacity[s], world.background[s][0]),
            background: world.background[s].clone(),
            reading: EventQueue::default(),
            connecting: EventQueue::default(),
            handshake: (0..n)
                .map(|c| {
                    let rtt = world.rtt[c][world.server_host(s)];
                    (id(resolver(c)), Duration::from_secs_f64(rtt))
                })
                .collect(),
            ticks,
            events: VecDeque::new(),
        };
        sim.add_member(server(s), Site::Server(Box::new(hosted)));
        let address = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, s as u8)), 443);
        for c in 0..n {
            let join = ServerCommand::Join {
                name: name.clone(),
                address,
                resolver: id(resolver(c)),
            };
            let when = at(rng.random_range(0.0..JOIN_SPREAD_S));
            sim.schedule_command(when, server(s), SiteCommand::Server(join));
        }
    }
    for (i, &(t, c)) in world.requests.iter().enumerate() {
        let resolve = LocalCommand::Resolve {
            token: i as u64,
            name: name.clone(),
        };
        sim.schedule_command(at(t), local(c), SiteCommand::Local(resolve));
    }
    let server_of = |node: NodeId| (0..k).find(|&s| id(server(s)) == node);
    let mut out = Replay::new(world);
    let mut fallback = rng_from_seed(derive_seed(seed, 0xfa11));
    // Which request each server took, to record when its delay is known.
    let mut taken_by: BTreeMap<u64, usize> = BTreeMap::new();
    let end = at(args.duration.as_secs_f64() + 1.0);
    while sim.now() <= end && sim.step() {
        for e in sim.take_events() {
            let request = |token: u64| {
                usize::try_from(token)
                    .ok()
                    .filter(|&i| i < world.requests.len())
            };
            match e.event {
                SiteEvent::Local(LocalEvent::Resolved {
                    token,
                    server: chosen,
                    ..
                }) => {
                    let s = server_of(chosen).unwrap_or(0);
                    taken_by.insert(token, s);
                    sim.schedule_command(e.at, server(s), SiteCommand::Request { token });
                }
                SiteEvent::Local(LocalEvent::Failed { token, .. }) => {
                    // A client with no answer tries any server.
                    out.failed += 1;
                    let s = fallback.random_range(0..k);
                    taken_by.insert(token, s);
                    sim.schedule_command(e.at, server(s), SiteCommand::Request { token });
                }
                SiteEvent::Local(LocalEvent::Advised { .. }) => {}
                SiteEvent::Taken { token, delay } => {
                    if let (Some(i), Some(s)) = (request(token), taken_by.remove(&token)) {
                        out.record(world, i, world.requests[i].0, s, delay.as_secs_f64());
                    }
                }
            }
        }
    }
    let traffic = sim.traffic();
    out.overhead = traffic.messages.iter().sum();
    out
}
