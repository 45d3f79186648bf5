//! A group member's side (sans-IO): it registers with the authoritative resolvers of its
//! groups, answers their probes with the probe object (whose body is its processing delay),
//! pushes that delay when its push agent says so, and tells a connected client of a better
//! entry point when it knows one (route advice).

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use overlay_core::signature::Signer;
use overlay_core::{LinkEvent, NodeId, Outbox, Output, Protocol, Time, TimerTable};

use crate::message::Message;
use crate::name::AnycastName;
use crate::push::{PushAgent, PushConfig};

/// How often the push agent is asked whether a push is due.
const PUSH_CHECK: Duration = Duration::from_millis(250);

/// What the server's application tells it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerCommand {
    /// Serve group `name` at `address`, registered with `resolver`.
    Join {
        /// The group.
        name: AnycastName,
        /// Where clients reach this server.
        address: SocketAddr,
        /// The group's authoritative resolver.
        resolver: NodeId,
    },
    /// Leave group `name`.
    Leave {
        /// The group.
        name: AnycastName,
    },
    /// A request was served; its first read came `tufr` after it arrived.
    Served {
        /// Time until first read.
        tufr: Duration,
    },
    /// The application measured the requests per second it could take beyond its present
    /// load (capacity less the arrival rate), in thousandths of a request per second.
    Spare {
        /// The spare capacity.
        mrps: u64,
    },
    /// The application served resolver `resolver`'s probe `nonce` itself, through its queue:
    /// reply with the probe's own delay `tufr` as the body (ignored unless `resolver` is one
    /// this server registered with).
    AnswerProbe {
        /// The probing resolver.
        resolver: NodeId,
        /// The probe's nonce.
        nonce: u64,
        /// The probe's own time until first read.
        tufr: Duration,
    },
    /// Tell `client` that `better` (at `address`) serves `name` better.
    Advise {
        /// The client.
        client: NodeId,
        /// The group.
        name: AnycastName,
        /// The better server.
        better: NodeId,
        /// Its address.
        address: SocketAddr,
    },
}

/// What a server tells its application.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerEvent {
    /// The connection to a resolver this server registered with went down (the resolver
    /// stopped or restarted, or the path failed): the application should reach it again and
    /// join once more, since a restarted resolver holds no registration.
    ResolverLost {
        /// The resolver.
        resolver: NodeId,
    },
}

/// A member of anycast groups.
#[derive(Debug)]
pub struct AnycastServer {
    id: NodeId,
    agent: PushAgent,
    /// (group, resolver) registrations.
    joined: BTreeSet<(AnycastName, NodeId)>,
    /// One timer: when to check whether a push is due (every `PUSH_CHECK` while the server is
    /// registered anywhere).
    timers: TimerTable<()>,
    outbox: Outbox<Message, ServerEvent>,
    probes_answered: u64,
}

impl AnycastServer {
    /// The server `id`, signing its pushes with `signer`.
    pub fn new(id: NodeId, config: PushConfig, signer: Box<dyn Signer>) -> Self {
        Self {
            id,
            agent: PushAgent::new(id, config, signer),
            joined: BTreeSet::new(),
            timers: TimerTable::default(),
            outbox: Outbox::default(),
            probes_answered: 0,
        }
    }

    /// Probes answered so far.
    pub fn probes_answered(&self) -> u64 {
        self.probes_answered
    }

    fn resolvers(&self) -> BTreeSet<NodeId> {
        self.joined.iter().map(|(_, r)| *r).collect()
    }

    /// Reply to `resolver`'s probe `nonce` with body `tufr` (0 for none yet), if this server
    /// registered with it: only its own resolvers may probe it.
    fn answer_probe(&mut self, resolver: NodeId, nonce: u64, tufr: Option<Duration>) {
        if !self.resolvers().contains(&resolver) {
            return;
        }
        self.probes_answered += 1;
        let tufr_us = tufr.map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
        self.outbox
            .send(resolver, Message::ProbeReply { nonce, tufr_us });
    }
}

impl Protocol for AnycastServer {
    type Message = Message;
    type Command = ServerCommand;
    type Event = ServerEvent;

    fn id(&self) -> NodeId {
        self.id
    }

    fn handle_message(&mut self, _now: Time, from: NodeId, msg: Message) {
        if let Message::Probe { nonce } = msg {
            // The body: the smoothed delay (an application that serves the probe object
            // through its queue answers with `AnswerProbe` and the probe's own delay instead).
            let smoothed = self.agent.current();
            self.answer_probe(from, nonce, smoothed);
        }
    }

    fn handle_command(&mut self, now: Time, cmd: ServerCommand) {
        match cmd {
            ServerCommand::Join {
                name,
                address,
                resolver,
            } => {
                self.outbox.send(
                    resolver,
                    Message::Register {
                        name: name.clone(),
                        address,
                    },
                );
                self.joined.insert((name, resolver));
                if !self.timers.is_armed(()) {
                    self.timers.set((), now + PUSH_CHECK);
                }
            }
            ServerCommand::Leave { name } => {
                let leaving: Vec<(AnycastName, NodeId)> = self
                    .joined
                    .iter()
                    .filter(|(n, _)| *n == name)
                    .cloned()
                    .collect();
                for (n, resolver) in leaving {
                    self.outbox
                        .send(resolver, Message::Unregister { name: n.clone() });
                    self.joined.remove(&(n, resolver));
                }
            }
            ServerCommand::Served { tufr } => self.agent.on_served(tufr),
            ServerCommand::AnswerProbe {
                resolver,
                nonce,
                tufr,
            } => self.answer_probe(resolver, nonce, Some(tufr)),
            ServerCommand::Spare { mrps } => self.agent.on_spare(mrps as f64 / 1000.0),
            ServerCommand::Advise {
                client,
                name,
                better,
                address,
            } => self.outbox.send(
                client,
                Message::RouteAdvice {
                    name,
                    better,
                    address,
                },
            ),
        }
    }

    fn handle_timeout(&mut self, now: Time) {
        while self.timers.pop_expired(now).is_some() {
            if self.joined.is_empty() {
                continue;
            }
            if let Some(push) = self.agent.poll_push(now) {
                for resolver in self.resolvers() {
                    self.outbox.send(resolver, Message::Push(push.clone()));
                }
            }
            self.timers.set((), now + PUSH_CHECK);
        }
    }

    fn handle_link(&mut self, _now: Time, peer: NodeId, event: LinkEvent) {
        if event == LinkEvent::Down && self.resolvers().contains(&peer) {
            self.outbox
                .emit(ServerEvent::ResolverLost { resolver: peer });
        }
    }

    fn poll_output(&mut self) -> Option<Output<Message, ServerEvent>> {
        self.outbox.pop()
    }

    fn poll_timeout(&self) -> Option<Time> {
        self.timers.next_deadline()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use overlay_core::signature::SimulatedSignatures;

    fn at(ms: u64) -> Time {
        Time::ZERO + Duration::from_millis(ms)
    }

    fn sent(s: &mut AnycastServer) -> Vec<(NodeId, Message)> {
        let mut out = Vec::new();
        while let Some(o) = s.poll_output() {
            if let Output::Send { to, msg } = o {
                out.push((to, msg));
            }
        }
        out
    }

    #[test]
    fn registers_answers_its_resolvers_probes_pushes_and_advises() {
        let (me, resolver, stranger, client) = (
            NodeId::from_index(1),
            NodeId::from_index(100),
            NodeId::from_index(66),
            NodeId::from_index(7),
        );
        let mut s = AnycastServer::new(
            me,
            PushConfig::default(),
            Box::new(SimulatedSignatures::new(3, me)),
        );
        let name: AnycastName = "web%example.org".parse().unwrap();
        let address: SocketAddr = "192.0.2.1:443".parse().unwrap();
        s.handle_command(
            at(0),
            ServerCommand::Join {
                name: name.clone(),
                address,
                resolver,
            },
        );
        assert!(matches!(&sent(&mut s)[..], [(r, Message::Register { .. })] if *r == resolver));
        s.handle_command(
            at(10),
            ServerCommand::Served {
                tufr: Duration::from_millis(80),
            },
        );
        s.handle_message(at(20), resolver, Message::Probe { nonce: 5 });
        s.handle_message(at(20), stranger, Message::Probe { nonce: 6 });
        assert_eq!(
            sent(&mut s),
            [(
                resolver,
                Message::ProbeReply {
                    nonce: 5,
                    tufr_us: 80_000
                }
            )]
        );
        s.handle_timeout(at(300));
        let pushes = sent(&mut s);
        assert!(
            matches!(&pushes[..], [(r, Message::Push(p))] if *r == resolver && p.tufr_us == 80_000)
        );
        s.handle_command(
            at(400),
            ServerCommand::Advise {
                client,
                name: name.clone(),
                better: NodeId::from_index(2),
                address,
            },
        );
        assert!(matches!(&sent(&mut s)[..], [(c, Message::RouteAdvice { .. })] if *c == client));
        // A resolver's connection going down is reported; a stranger's is not.
        s.handle_link(at(440), stranger, LinkEvent::Down);
        s.handle_link(at(440), resolver, LinkEvent::Down);
        let mut events = Vec::new();
        while let Some(o) = s.poll_output() {
            if let Output::Emit(e) = o {
                events.push(e);
            }
        }
        assert_eq!(events, [ServerEvent::ResolverLost { resolver }]);
        // A probe the application served itself carries its own delay.
        s.handle_command(
            at(450),
            ServerCommand::AnswerProbe {
                resolver,
                nonce: 8,
                tufr: Duration::from_millis(300),
            },
        );
        assert_eq!(
            sent(&mut s),
            [(
                resolver,
                Message::ProbeReply {
                    nonce: 8,
                    tufr_us: 300_000
                }
            )]
        );
        s.handle_command(at(500), ServerCommand::Leave { name: name.clone() });
        assert_eq!(sent(&mut s), [(resolver, Message::Unregister { name })]);
        // No group left: probes are no longer answered.
        s.handle_message(at(600), resolver, Message::Probe { nonce: 9 });
        assert!(sent(&mut s).is_empty());
    }
}
