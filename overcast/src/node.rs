//! The Overcast node: the up/down protocol, linear roots, and reliable in-order content with
//! resumption. Where a node places itself in the tree is in [`placement`].

mod placement;
mod updown;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use bytes::Bytes;
use overlay_core::rng::{ProtocolRng, rng_from_seed};
use overlay_core::{LinkMetrics, NodeId, Outbox, Output, Protocol, Time, TimerTable};
use rand::RngExt;

use crate::OvercastConfig;
use crate::PathBandwidth;
use crate::certificate::{CertBody, Certificate, NodeInfo, Signer, Verifier};
use crate::content::ContentStore;
use crate::message::Message;
use crate::redirect::{self, RedirectRequest};
use crate::table::DescendantTable;
use placement::{Attempt, PathCaps, Reevaluation, Search};

/// What the operator asks a node to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Join the network (roots take their place in the chain; other nodes search from the root).
    Start,
    /// Content for the stream at byte `offset` (given to the root by the source; bytes it
    /// already holds are ignored, bytes beyond what it holds are refused).
    Publish {
        /// Offset of the first byte.
        offset: u64,
        /// The bytes.
        bytes: Bytes,
    },
}

/// What a node reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// Attached under `parent` after `rounds` search rounds (0 for a move or a rejoin).
    Attached {
        /// The new parent.
        parent: NodeId,
        /// Search rounds it took.
        rounds: u32,
        /// Whether this was a re-evaluation move (the node was attached before).
        moved: bool,
    },
    /// The parent stopped answering.
    ParentLost {
        /// The lost parent.
        parent: NodeId,
    },
    /// This node is now the root (the roots above it failed, or it is the first).
    BecameRoot,
}

/// Counters of what a node did and refused.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OvercastStats {
    /// Certificates received from children.
    pub certificates_in: u64,
    /// Birth and death certificates received from children.
    pub membership_certificates_in: u64,
    /// Certificates that changed nothing here and were quashed.
    pub quashed: u64,
    /// Certificates older than what was known.
    pub stale: u64,
    /// Certificates with bad signatures: dropped.
    pub forged: u64,
    /// Certificates about (or by) nodes outside the sender's subtree: dropped.
    pub outside_subtree: u64,
    /// Certificates with sequence numbers from the future: dropped.
    pub from_future: u64,
    /// Check-ins, news, listings and detaches from nodes that are not children: dropped.
    pub non_child_checkins: u64,
    /// Content from nodes that are not the parent: dropped.
    pub stray_data: u64,
    /// Parent changes.
    pub moves: u64,
    /// Search rounds run.
    pub rounds: u64,
    /// Bandwidth measurements asked for.
    pub measurements: u64,
    /// Times this node found itself on a loop of parents and left it.
    pub loops_broken: u64,
    /// Full subtree listings asked of children whose digest kept disagreeing.
    pub resyncs: u64,
}

/// Check-ins in a row that must disagree before a parent asks for a child's full subtree.
const RESYNC_AFTER: u32 = 3;

/// How many recently left parents a node will not return to merely to get closer.
const LEFT_PARENTS_KEPT: usize = 4;

/// The most nodes a `Sample` answer names.
const MAX_SAMPLE: usize = 64;

/// The longest wait between two full listings asked of one child.
const MAX_RESYNC_BACKOFF: Duration = Duration::from_secs(64);

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    CheckIn,
    Search,
    Attach,
    Reevaluate,
    ReevaluationDone,
    Extra,
    News,
}

#[derive(Clone, Debug)]
struct Child {
    lease_until: Time,
    seq: u32,
    /// Check-ins in a row whose digest disagreed with the entries under this child.
    mismatches: u32,
    /// No full listing is asked for before this (backing off while disagreement persists).
    next_resync: Time,
    resync_backoff: Duration,
    /// Next byte to send (`None` until it asks).
    sent: Option<u64>,
    /// The child's bandwidth from the root, as it last reported it.
    path_bw: PathBandwidth,
    /// Whether its full listing arrived (until then this node does not know who is below it,
    /// and must not move: it could land under one of them).
    listed: bool,
}

/// An Overcast node.
#[derive(Debug)]
pub struct Overcast {
    id: NodeId,
    config: OvercastConfig,
    rng: ProtocolRng,
    signer: Box<dyn Signer>,
    verifier: Box<dyn Verifier>,
    started: bool,
    is_root: bool,
    parent: Option<NodeId>,
    /// Top first, ending with the parent.
    ancestors: Vec<NodeId>,
    parent_heard: Time,
    /// The parent's bandwidth from the root, as it last told.
    parent_path_bw: PathBandwidth,
    /// The last measure of the path from the parent (unlimited until one is taken).
    link_bw: PathBandwidth,
    seq: u32,
    /// The highest sequence number offered in an adoption request (each request gets a fresh
    /// one, so a retracted request is never confused with a later one to the same node).
    offered_seq: u32,
    /// Round-trip time to the lowest root, microseconds, as first measured (0: not yet).
    landmark_rtt_us: u32,
    /// Re-evaluations in a row that ended in a move.
    restless: u32,
    /// The last few parents this node moved away from, newest last.
    left_parents: VecDeque<NodeId>,
    search: Option<Search>,
    attempt: Option<Attempt>,
    reevaluation: Option<Reevaluation>,
    suspect_roots: BTreeSet<NodeId>,
    children: BTreeMap<NodeId, Child>,
    table: DescendantTable,
    pending: Vec<Certificate>,
    content: ContentStore,
    reported: NodeInfo,
    timers: TimerTable<Timer>,
    outbox: Outbox<Message, Event>,
    stats: OvercastStats,
}

impl Overcast {
    /// A node `id` that signs with `signer` and checks others with `verifier`.
    pub fn new(
        id: NodeId,
        config: OvercastConfig,
        signer: Box<dyn Signer>,
        verifier: Box<dyn Verifier>,
    ) -> Self {
        Self {
            id,
            rng: rng_from_seed(config.seed),
            content: ContentStore::new(config.store_limit),
            config,
            signer,
            verifier,
            started: false,
            is_root: false,
            parent: None,
            ancestors: Vec::new(),
            parent_heard: Time::ZERO,
            parent_path_bw: PathBandwidth::ZERO,
            link_bw: PathBandwidth::Unlimited,
            seq: 0,
            offered_seq: 0,
            left_parents: VecDeque::new(),
            restless: 0,
            landmark_rtt_us: 0,
            search: None,
            attempt: None,
            reevaluation: None,
            suspect_roots: BTreeSet::new(),
            children: BTreeMap::new(),
            table: DescendantTable::new(id),
            pending: Vec::new(),
            reported: NodeInfo::default(),
            timers: TimerTable::default(),
            outbox: Outbox::default(),
            stats: OvercastStats::default(),
        }
    }

    /// The parent.
    pub fn parent(&self) -> Option<NodeId> {
        self.parent
    }

    /// Ancestors, top first, ending with the parent.
    pub fn ancestors(&self) -> &[NodeId] {
        &self.ancestors
    }

    /// Current children.
    pub fn children(&self) -> impl Iterator<Item = &NodeId> + '_ {
        self.children.keys()
    }

    /// Whether this node is the root now.
    pub fn is_root(&self) -> bool {
        self.is_root
    }

    /// Whether this node is placed in the tree (attached, or the root).
    pub fn is_placed(&self) -> bool {
        self.is_root || self.parent.is_some()
    }

    /// The descendants this node knows of (the root's covers the whole tree).
    pub fn table(&self) -> &DescendantTable {
        &self.table
    }

    /// Content bytes held from the start of the stream.
    pub fn content_end(&self) -> u64 {
        self.content.end()
    }

    /// The content held, from byte `from` on.
    pub fn content_from(&self, from: u64) -> Vec<(u64, Bytes)> {
        self.content.from(from)
    }

    /// Times this node changed parents.
    pub fn seq(&self) -> u32 {
        self.seq
    }

    /// What it counted.
    pub fn stats(&self) -> OvercastStats {
        self.stats
    }

    /// This node's extra information now.
    pub fn info(&self) -> NodeInfo {
        NodeInfo {
            first: self.content.first(),
            content: self.content.end(),
            load: u32::try_from(self.children.len()).unwrap_or(u32::MAX),
            path_bw: self.path_bandwidth().to_wire(),
            landmark_rtt_us: self.landmark_rtt_us,
        }
    }

    /// Where to send a client: a live node in this node's subtree (or this node) that holds the
    /// content the client wants, nearby and lightly loaded. Meaningful at the root, whose table
    /// covers every live node.
    pub fn redirect(&self, request: &RedirectRequest<'_>) -> Option<NodeId> {
        let candidates = self
            .table
            .live()
            .map(|(n, e)| (*n, e.info))
            .chain(std::iter::once((self.id, self.info())));
        redirect::choose(candidates, request)
    }

    fn chain_index(&self) -> Option<usize> {
        self.config.roots.iter().position(|r| *r == self.id)
    }

    fn start(&mut self, now: Time) {
        self.started = true;
        self.timers
            .set(Timer::CheckIn, now + self.config.check_in_interval);
        self.timers
            .set(Timer::Extra, now + self.config.extra_interval);
        match self.chain_index() {
            Some(0) => self.become_root(),
            Some(i) => {
                let fallback: Vec<NodeId> =
                    self.config.roots[..i - 1].iter().rev().copied().collect();
                self.attach_to(
                    now,
                    self.config.roots[i - 1],
                    fallback,
                    0,
                    PathBandwidth::Unlimited,
                );
            }
            None => self.search_from_bottom(now),
        }
    }

    fn become_root(&mut self) {
        self.is_root = true;
        self.parent = None;
        self.ancestors.clear();
        self.attempt = None;
        self.search = None;
        self.pending.clear();
        self.outbox.emit(Event::BecameRoot);
    }

    fn jitter(&mut self, period: Duration) -> Duration {
        period.mul_f64(0.75 + 0.5 * self.rng.random::<f64>())
    }

    /// Whether every child's full listing arrived, so the table knows the whole subtree (a move
    /// decided before then could land under a node below this one).
    pub(super) fn knows_subtree(&self) -> bool {
        self.children.values().all(|c| c.listed)
    }

    /// This node's bandwidth from the root: unlimited at the root, otherwise the smaller of the
    /// parent's and the last measure of the path from the parent; zero while unplaced.
    pub fn path_bandwidth(&self) -> PathBandwidth {
        if self.is_root {
            PathBandwidth::Unlimited
        } else if self.parent.is_some() {
            self.parent_path_bw.min(self.link_bw)
        } else {
            PathBandwidth::ZERO
        }
    }

    fn ancestors_through_me(&self) -> Vec<NodeId> {
        let mut ancestors = self.ancestors.clone();
        ancestors.push(self.id);
        ancestors
    }

    /// A standby root that still has the next root of the chain below it takes no other
    /// children, so every chain member holds the full table.
    fn standby_refuses(&self, asker: &NodeId) -> bool {
        let Some(i) = self.chain_index() else {
            return false;
        };
        let asker_in_chain = self.config.roots.iter().position(|r| r == asker);
        if asker_in_chain.is_some_and(|j| j > i) {
            return false;
        }
        self.children.keys().any(|c| {
            self.config
                .roots
                .iter()
                .position(|r| r == c)
                .is_some_and(|j| j > i)
        })
    }

    fn on_attach(&mut self, now: Time, from: NodeId, seq: u32, info: NodeInfo) {
        // A node in the middle of its own move refuses: two nodes moving under each other at
        // once would otherwise close a loop before either ancestor list shows it.
        if !self.is_placed()
            || self.attempt.is_some()
            || from == self.id
            || self.ancestors.contains(&from)
            || self.standby_refuses(&from)
        {
            self.outbox.send(from, Message::Refused);
            return;
        }
        self.children.insert(
            from,
            Child {
                lease_until: now + self.config.lease,
                seq,
                mismatches: 0,
                next_resync: now,
                resync_backoff: self.config.check_in_interval * RESYNC_AFTER,
                sent: None,
                // An upper bound until its first check-in reports the real figure.
                path_bw: self.path_bandwidth(),
                listed: false,
            },
        );
        if self.table.adopt(from, seq, info) {
            self.certify(CertBody::Birth {
                node: from,
                seq,
                info,
            });
        }
        let ancestors = self.ancestors_through_me();
        let path_bw = self.path_bandwidth().to_wire();
        self.outbox.send(
            from,
            Message::Adopted {
                ancestors,
                path_bw,
                seq,
            },
        );
    }

    /// Adopted by `from`: move there, tell the old parent, and tell the new path about the
    /// subtree that comes along.
    fn on_adopted(
        &mut self,
        now: Time,
        from: NodeId,
        ancestors: Vec<NodeId>,
        path_bw: u64,
        seq: u32,
    ) {
        let matching = self
            .attempt
            .as_ref()
            .is_some_and(|a| a.target == from && a.seq == seq);
        let looped = ancestors.contains(&self.id) || ancestors.last() != Some(&from);
        if !matching || looped {
            // An answer to an abandoned request, or a parent that is below this node now (the
            // tree moved meanwhile): retract, so it does not hold a phantom child whose birth
            // and later silence would mislead its ancestors. The retraction names this node's
            // real parent, where the ancestors re-point it.
            if seq <= self.offered_seq {
                self.outbox.send(
                    from,
                    Message::Detach {
                        seq,
                        new_parent: self.parent.unwrap_or(self.id),
                        certificates: Vec::new(),
                    },
                );
                // Ancestors may have heard of the request's number: stay at or above it.
                self.seq = self.seq.max(seq);
            }
            if matching {
                self.attempt = None;
                self.timers.cancel(Timer::Attach);
            }
            return;
        }
        let Some(attempt) = self.attempt.take() else {
            return;
        };
        self.timers.cancel(Timer::Attach);
        let old = self.parent.replace(from);
        let moved = old.is_some();
        // The old path gets the news up to now and the new path the subtree as it is now, so
        // every change reaches each ancestor through one side only, in order. (After a lost
        // parent there is no old path: its news is dropped.)
        let news = std::mem::take(&mut self.pending);
        if let Some(old) = old.filter(|o| *o != from) {
            if self.left_parents.len() == LEFT_PARENTS_KEPT {
                self.left_parents.pop_front();
            }
            self.left_parents.push_back(old);
            self.outbox.send(
                old,
                Message::Detach {
                    seq: self.seq,
                    new_parent: from,
                    certificates: news,
                },
            );
        }
        let births = self.subtree_births();
        self.outbox.send(from, Message::Subtree { births });
        self.seq = attempt.seq;
        self.stats.moves += 1;
        self.is_root = false;
        self.ancestors = ancestors;
        self.parent_heard = now;
        self.parent_path_bw = PathBandwidth::from_wire(path_bw);
        self.link_bw = attempt.link_bw;
        self.suspect_roots.clear();
        self.outbox.send(
            from,
            Message::Fetch {
                from: self.content.end(),
            },
        );
        self.outbox.emit(Event::Attached {
            parent: from,
            rounds: attempt.rounds,
            moved,
        });
        let next = self.jitter(self.config.reevaluate_interval);
        self.timers.set(Timer::Reevaluate, now + next);
    }

    fn on_parent_lost(&mut self, now: Time, parent: NodeId) {
        self.outbox.emit(Event::ParentLost { parent });
        self.parent = None;
        // News for the lost path; the new parent will get the whole subtree instead.
        self.pending.clear();
        self.reevaluation = None;
        self.timers.cancel(Timer::ReevaluationDone);
        // Climb the ancestor list: grandparent first, then further up.
        let fallback: Vec<NodeId> = match self.chain_index() {
            Some(i) => self.config.roots[..i]
                .iter()
                .rev()
                .filter(|r| **r != parent)
                .copied()
                .collect(),
            None => self
                .ancestors
                .iter()
                .rev()
                .filter(|a| **a != parent)
                .copied()
                .collect(),
        };
        self.suspect_roots.insert(parent);
        self.climb(now, fallback);
    }

    fn send_available(&mut self, child: NodeId) {
        let Some(from) = self.children.get(&child).and_then(|c| c.sent) else {
            return;
        };
        for (offset, bytes) in self.content.from(from) {
            self.outbox.send(child, Message::Data { offset, bytes });
        }
        let end = self.content.end().max(from);
        if let Some(c) = self.children.get_mut(&child) {
            c.sent = Some(end);
        }
    }

    fn forward(&mut self) {
        let children: Vec<NodeId> = self.children.keys().copied().collect();
        for c in children {
            self.send_available(c);
        }
    }

    fn on_data(&mut self, from: NodeId, offset: u64, bytes: Bytes) {
        if Some(from) != self.parent {
            self.stats.stray_data += 1;
            return;
        }
        if self.content.append(offset, bytes) > 0 {
            self.forward();
        }
    }
}

impl Protocol for Overcast {
    type Message = Message;
    type Command = Command;
    type Event = Event;

    fn id(&self) -> NodeId {
        self.id
    }

    fn handle_message(&mut self, now: Time, from: NodeId, msg: Message) {
        if from == self.id {
            return;
        }
        if Some(from) == self.parent {
            self.parent_heard = now;
        }
        match msg {
            Message::ChildrenQuery => {
                let children = self
                    .children
                    .iter()
                    .filter(|(c, _)| **c != from)
                    .map(|(c, child)| (*c, child.path_bw.to_wire()))
                    .collect();
                let ancestors = self.ancestors_through_me();
                let parent_path_bw = if self.is_root {
                    u64::MAX
                } else {
                    self.parent_path_bw.to_wire()
                };
                self.outbox.send(
                    from,
                    Message::Children {
                        children,
                        ancestors,
                        path_bw: self.path_bandwidth().to_wire(),
                        parent_path_bw,
                    },
                );
            }
            Message::Children {
                children,
                ancestors,
                path_bw,
                parent_path_bw,
            } => {
                let caps = PathCaps {
                    children: children
                        .iter()
                        .map(|&(c, bw)| (c, PathBandwidth::from_wire(bw)))
                        .collect(),
                    sender: PathBandwidth::from_wire(path_bw),
                    sender_parent: PathBandwidth::from_wire(parent_path_bw),
                };
                let children = children.into_iter().map(|(c, _)| c).collect();
                self.on_children(now, from, children, ancestors, caps);
            }
            Message::Attach { seq, info } => self.on_attach(now, from, seq, info),
            Message::Adopted {
                ancestors,
                path_bw,
                seq,
            } => self.on_adopted(now, from, ancestors, path_bw, seq),
            Message::Refused => self.on_refused(now, from),
            Message::Detach {
                seq,
                new_parent,
                certificates,
            } => self.on_detach(from, seq, new_parent, certificates),
            Message::CheckIn {
                certificates,
                digest,
                path_bw,
            } => self.on_check_in(now, from, certificates, digest, path_bw),
            Message::SubtreeQuery => {
                if Some(from) == self.parent {
                    let births = self.subtree_births();
                    self.outbox.send(from, Message::Subtree { births });
                }
            }
            Message::Subtree { births } => self.on_subtree(from, births),
            Message::News { certificates } => {
                if self.children.contains_key(&from) {
                    self.take_certificates(from, certificates);
                } else {
                    self.stats.non_child_checkins += 1;
                }
            }
            Message::CheckInAck { ancestors, path_bw } => {
                if Some(from) != self.parent || ancestors.last() != Some(&from) {
                    return;
                }
                if ancestors.contains(&self.id) {
                    // A loop closed by moves racing on stale ancestor lists: the parent's path
                    // runs through this node, so it leads to no root. Leave it.
                    self.stats.loops_broken += 1;
                    self.on_parent_lost(now, from);
                } else {
                    self.ancestors = ancestors;
                    self.parent_path_bw = PathBandwidth::from_wire(path_bw);
                }
            }
            Message::SampleQuery { count, near } => {
                let nodes = self.sample_table(usize::from(count).min(MAX_SAMPLE), from, near);
                self.outbox.send(from, Message::Sample { nodes });
            }
            Message::Sample { nodes } => self.on_sample(now, from, nodes),
            Message::Fetch { from: offset } => {
                if let Some(c) = self.children.get_mut(&from) {
                    c.sent = Some(offset);
                    self.send_available(from);
                }
            }
            Message::Data { offset, bytes } => self.on_data(from, offset, bytes),
        }
        self.hurry_news(now);
    }

    fn handle_command(&mut self, now: Time, cmd: Command) {
        match cmd {
            Command::Start => {
                if !self.started {
                    self.start(now);
                }
            }
            Command::Publish { offset, bytes } => {
                if self.is_root && self.content.append(offset, bytes) > 0 {
                    self.forward();
                }
            }
        }
    }

    fn handle_measurement(&mut self, now: Time, peer: NodeId, metrics: LinkMetrics) {
        if let Some(bandwidth) = metrics.bandwidth {
            self.on_measured(now, peer, bandwidth, metrics.rtt.unwrap_or_default());
        }
    }

    fn handle_timeout(&mut self, now: Time) {
        while let Some(timer) = self.timers.pop_expired(now) {
            match timer {
                Timer::CheckIn => self.check_in(now),
                Timer::Search => self.on_search_timeout(now),
                Timer::Attach => self.on_attach_timeout(now),
                Timer::Reevaluate => self.start_reevaluation(now),
                Timer::ReevaluationDone => self.finish_reevaluation(now),
                Timer::Extra => self.report_extra(now),
                Timer::News => self.send_news(),
            }
        }
        self.hurry_news(now);
    }

    fn poll_output(&mut self) -> Option<Output<Message, Event>> {
        self.outbox.pop()
    }

    fn poll_timeout(&self) -> Option<Time> {
        self.timers.next_deadline()
    }
}
