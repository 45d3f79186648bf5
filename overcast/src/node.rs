//! The Overcast node, composed of two parts: the shared [`core`] (its place in the tree, its
//! subtree, content, timers and outputs), whose behaviour is the up/down protocol
//! ([`updown`]), linear roots, and reliable in-order content with resumption; and
//! [`placement`], which owns where the node places itself in the tree and acts through the
//! core. This module holds the public types and routes each input to its part.

mod child_check;
mod core;
mod delivery;
mod parent_watch;
mod placement;
mod updown;

use bytes::Bytes;
use overlay_core::{LinkEvent, LinkMetrics, NodeId, Output, Protocol, Time};

use self::core::Core;
use crate::certificate::{NodeInfo, Signer, Verifier};
use crate::message::Message;
use crate::redirect::{self, RedirectRequest};
use crate::table::DescendantTable;
use crate::{OvercastConfig, PathBandwidth};
use placement::{PathCaps, Placement};

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
    /// What the driver's store holds of the stream: from byte `first` on, and whether it can
    /// serve clients now (`degraded`: it cannot take the stream; the root sends clients
    /// elsewhere). Reported up with the extra information; a driver says it when it changes
    /// enough to matter to the root's redirects.
    Store {
        /// The first byte the store keeps.
        first: u64,
        /// The store cannot take the stream now.
        degraded: bool,
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
    /// Departures (deaths of nodes that moved) not sent up: this node's parent is where the
    /// old and new places meet, and hears of the move from the new side.
    pub departures_stopped: u64,
    /// Births not sent up: the node was alive under the same child already (it moved inside
    /// that child's subtree) and its information changed too little for the ancestors.
    pub arrivals_stopped: u64,
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
    /// Gaps in the content from the parent (bytes lost on the way), each asked for again.
    pub gaps: u64,
    /// Times a child's feed was sent again from what it acknowledged (bytes lost on the way).
    pub resends: u64,
    /// Times a child's feed fell behind what this node still holds and was moved on.
    pub child_skips: u64,
    /// Bytes of the stream this node never got: its parent no longer held them.
    pub bytes_skipped: u64,
    /// Fetches that asked again for bytes already on their way to the child: ignored (the
    /// resend timer repairs losses), so a child repeating one cannot make the node send its
    /// window over and over.
    pub fetches_coalesced: u64,
    /// Births of unknown nodes dropped because the table was full.
    pub table_full: u64,
    /// Check-ins sent because the stream from the parent stopped (see
    /// [`OvercastConfig::silence_check_in_after`]).
    pub silence_check_ins: u64,
    /// Parents lost because they left those check-ins unanswered (the rest of the lost parents
    /// went by the parent timeout, or by a loop).
    pub silent_parents_lost: u64,
    /// Requests to check in at once sent to children that stopped acknowledging the stream or
    /// were reported silent by their own children (see
    /// [`OvercastConfig::check_silent_children`]).
    pub child_checks: u64,
    /// Children lost because they left those requests unanswered (the rest of the dead
    /// children went by their lease).
    pub silent_children_lost: u64,
    /// Of those requests, the first of a check started because a child stopped acknowledging
    /// the bytes sent to it (the others began with a report from the child's own children).
    pub ack_silences: u64,
    /// Reports of a silent child ignored: not about a child of this node, or not from a node
    /// under it.
    pub silent_reports_ignored: u64,
}

/// The most nodes a `Sample` answer names.
const MAX_SAMPLE: usize = 64;

/// The most nodes of a `SampleQuery`'s wish list looked at.
const MAX_ABOUT: usize = 8;

/// A node's timers, in one table: ties fire in declaration order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    /// When to check in with the parent and expire the children whose lease ran out (every
    /// check-in interval from the start; up/down).
    CheckIn,
    /// When a join round stops waiting: for the candidate's children list (an answer timeout
    /// after asking; then it starts over from the lowest live root), or for the measurements
    /// (an answer timeout plus a probe's duration; then it decides with what came back)
    /// (placement).
    Search,
    /// When an adoption request counts as unanswered and the next fallback is asked (an answer
    /// timeout after asking); for a standby root refused by a live root above it, when to ask
    /// its chain again (placement).
    Attach,
    /// When to re-evaluate this node's place (the re-evaluation period ±25% after each attach
    /// and each round, longer while it keeps moving) (placement).
    Reevaluate,
    /// When a re-evaluation round stops waiting: for the parent's children list (an answer
    /// timeout; then the round is dropped), or for the measurements (an answer timeout plus a
    /// probe's duration; then it decides with what came back) (placement).
    ReevaluationDone,
    /// When to report changed extra information up (every extra-information interval from the
    /// start; up/down).
    Extra,
    /// When to send the news that arose since the last check-in ahead of the next one (the
    /// news delay after it arose, if set; up/down).
    News,
    /// When to acknowledge to the parent the content that arrived (the ack delay after bytes
    /// arrived unacknowledged; delivery).
    Ack,
    /// When to check whether a child acknowledged nothing new for the resend time while bytes
    /// were on their way (the resend time after sending; delivery).
    Resend,
    /// When the stream from the parent counts as silent, or a check-in sent in a silence as
    /// unanswered (armed by content arriving; up/down, [`parent_watch`]).
    ParentSilence,
    /// When a request to check in at once, sent to a child that stopped acknowledging or was
    /// reported silent, counts as unanswered, or a child's acknowledgements are overdue
    /// ([`child_check`]).
    ChildCheck,
}

/// An Overcast node.
#[derive(Debug)]
pub struct Overcast {
    /// What the parts share: place in the tree, subtree, content, timers and outputs.
    core: Core,
    /// Where the node places itself: searches, adoption requests, re-evaluations.
    placement: Placement,
    /// Whether `Command::Start` came.
    started: bool,
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
            core: Core::new(id, config, signer, verifier),
            placement: Placement::default(),
            started: false,
        }
    }

    /// The parent.
    pub fn parent(&self) -> Option<NodeId> {
        self.core.parent
    }

    /// Ancestors, top first, ending with the parent.
    pub fn ancestors(&self) -> &[NodeId] {
        &self.core.ancestors
    }

    /// Current children.
    pub fn children(&self) -> impl Iterator<Item = &NodeId> + '_ {
        self.core.children.keys()
    }

    /// Whether this node is the root now.
    pub fn is_root(&self) -> bool {
        self.core.is_root
    }

    /// Whether this node is placed in the tree (attached, or the root).
    pub fn is_placed(&self) -> bool {
        self.core.is_placed()
    }

    /// The descendants this node knows of (the root's covers the whole tree).
    pub fn table(&self) -> &DescendantTable {
        &self.core.table
    }

    /// Content bytes held from the start of the stream.
    pub fn content_end(&self) -> u64 {
        self.core.content.end()
    }

    /// The first content byte held (a node that joined late, resumed or skipped starts later
    /// than the stream; the oldest bytes go as the memory limit is reached).
    pub fn content_first(&self) -> u64 {
        self.core.content.first()
    }

    /// The content held, from byte `from` on.
    pub fn content_from(&self, from: u64) -> Vec<(u64, Bytes)> {
        self.core.content.from(from)
    }

    /// The held content at `from`, up to `max` bytes in one piece; `None` when not held.
    pub fn content_chunk(&self, from: u64, max: u64) -> Option<(u64, Bytes)> {
        self.core.content.chunk_at(from, max)
    }

    /// The stream this node holds (0: none yet).
    pub fn stream(&self) -> u64 {
        self.core.intake.stream
    }

    /// Times this node changed parents.
    pub fn seq(&self) -> u32 {
        self.core.seq
    }

    /// What it counted.
    pub fn stats(&self) -> OvercastStats {
        self.core.stats
    }

    /// This node's extra information now.
    pub fn info(&self) -> NodeInfo {
        self.core.info()
    }

    /// This node's bandwidth from the root: unlimited at the root, otherwise the smaller of the
    /// parent's and the last measure of the path from the parent; zero while unplaced.
    pub fn path_bandwidth(&self) -> PathBandwidth {
        self.core.path_bandwidth()
    }

    /// Where to send a client: a live node in this node's subtree (or this node) that holds the
    /// content the client wants, nearby and lightly loaded. Meaningful at the root, whose table
    /// covers every live node.
    pub fn redirect(&self, request: &RedirectRequest<'_>) -> Option<NodeId> {
        let candidates = self
            .core
            .table
            .live()
            .map(|(n, e)| (*n, e.info))
            .chain(std::iter::once((self.core.id, self.core.info())));
        redirect::choose(candidates, request)
    }

    fn start(&mut self, now: Time) {
        self.started = true;
        let cx = &mut self.core;
        cx.timers
            .set(Timer::CheckIn, now + cx.config.check_in_interval);
        cx.timers.set(Timer::Extra, now + cx.config.extra_interval);
        self.placement.start(cx, now);
    }
}

impl Protocol for Overcast {
    type Message = Message;
    type Command = Command;
    type Event = Event;

    fn id(&self) -> NodeId {
        self.core.id
    }

    fn handle_message(&mut self, now: Time, from: NodeId, msg: Message) {
        let (cx, placement) = (&mut self.core, &mut self.placement);
        if from == cx.id {
            return;
        }
        if Some(from) == cx.parent {
            cx.parent_heard = now;
            cx.watch.heard(from);
        } else if cx.children.contains_key(&from) {
            cx.child_heard(now, from);
        }
        match msg {
            Message::ChildrenQuery => cx.answer_children_query(from),
            Message::Children {
                children,
                ancestors,
                path_bw,
                parent_path_bw,
                parent_rtt_us,
            } => {
                let caps = PathCaps {
                    children: children
                        .iter()
                        .map(|&(c, bw)| (c, PathBandwidth::from_wire(bw)))
                        .collect(),
                    sender: PathBandwidth::from_wire(path_bw),
                    sender_parent: PathBandwidth::from_wire(parent_path_bw),
                    sender_parent_rtt: (parent_rtt_us > 0)
                        .then(|| std::time::Duration::from_micros(u64::from(parent_rtt_us))),
                };
                let children = children.into_iter().map(|(c, _)| c).collect();
                placement.on_children(cx, now, from, children, ancestors, caps);
            }
            Message::Attach { seq, info } => {
                cx.on_attach(now, from, seq, info, placement.is_moving());
            }
            Message::Adopted {
                ancestors,
                path_bw,
                seq,
            } => placement.on_adopted(cx, now, from, ancestors, path_bw, seq),
            Message::Refused => placement.on_refused(cx, now, from),
            Message::Detach {
                seq,
                new_parent,
                meet,
                certificates,
            } => cx.on_detach(from, seq, new_parent, meet, certificates),
            Message::CheckIn {
                certificates,
                digest,
                path_bw,
            } => cx.on_check_in(now, from, certificates, digest, path_bw),
            Message::SubtreeQuery => {
                if Some(from) == cx.parent {
                    let births = cx.subtree_births();
                    cx.outbox.send(from, Message::Subtree { births });
                }
            }
            Message::Subtree { births } => cx.on_subtree(from, births),
            Message::News { certificates } => {
                if cx.children.contains_key(&from) {
                    cx.take_certificates(from, certificates);
                } else {
                    cx.stats.non_child_checkins += 1;
                }
            }
            Message::CheckInAck { ancestors, path_bw } => {
                if Some(from) != cx.parent || ancestors.last() != Some(&from) {
                    return;
                }
                if ancestors.contains(&cx.id) {
                    // A loop closed by moves racing on stale ancestor lists: the parent's path
                    // runs through this node, so it leads to no root. Leave it.
                    cx.stats.loops_broken += 1;
                    placement.on_parent_lost(cx, now, from);
                } else {
                    cx.ancestors = ancestors;
                    cx.parent_path_bw = PathBandwidth::from_wire(path_bw);
                }
            }
            Message::SampleQuery { count, near, about } => {
                let count = usize::from(count).min(MAX_SAMPLE);
                let about = &about[..about.len().min(MAX_ABOUT)];
                let nodes = cx.sample_table(count, from, near, about);
                cx.outbox.send(from, Message::Sample { nodes });
            }
            Message::Sample { nodes } => placement.on_sample(cx, now, from, nodes),
            Message::NearQuery => {
                let nodes = placement.near_list(from);
                cx.outbox.send(from, Message::Near { nodes });
            }
            Message::Near { nodes } => placement.on_near(cx, now, from, nodes),
            Message::Fetch {
                stream,
                from: offset,
            } => cx.on_fetch(now, from, stream, offset),
            Message::Stream { id, start } => cx.on_stream(now, from, id, start),
            Message::Ack { end } => cx.on_ack(now, from, end),
            Message::Data { offset, bytes } => cx.on_data(now, from, offset, bytes),
            Message::ParentSilent { parent } => cx.on_parent_silent(now, from, parent),
            Message::CheckInNow => cx.on_check_in_now(now, from),
        }
        cx.hurry_news(now);
    }

    fn handle_command(&mut self, now: Time, cmd: Command) {
        match cmd {
            Command::Start => {
                if !self.started {
                    self.start(now);
                }
            }
            Command::Store { first, degraded } => {
                let started = self.started;
                let cx = &mut self.core;
                let changed = cx.store != Some((first, degraded));
                cx.store = Some((first, degraded));
                if changed && started {
                    cx.report_extra(now);
                }
            }
            Command::Publish { offset, bytes } => {
                let cx = &mut self.core;
                if cx.is_root && cx.content.append(offset, bytes) > 0 {
                    cx.own_stream();
                    cx.forward(now);
                }
            }
        }
    }

    fn handle_measurement(&mut self, now: Time, peer: NodeId, metrics: LinkMetrics) {
        if let Some(bandwidth) = metrics.bandwidth {
            let rtt = metrics.rtt.unwrap_or_default();
            self.placement
                .on_measured(&mut self.core, now, peer, bandwidth, rtt);
        }
    }

    /// The transport heard from `peer`: check-ins to a parent whose stream went silent, or
    /// requests to a child being checked on, may have been held up on the way, so their count
    /// starts over.
    fn handle_link(&mut self, _now: Time, peer: NodeId, event: LinkEvent) {
        if event == LinkEvent::Heard {
            if Some(peer) == self.core.parent {
                self.core.watch.heard_by_transport(peer);
            } else {
                self.core.child_checks.heard_by_transport(peer);
            }
        }
    }

    fn handle_timeout(&mut self, now: Time) {
        let (cx, placement) = (&mut self.core, &mut self.placement);
        while let Some(timer) = cx.timers.pop_expired(now) {
            match timer {
                Timer::CheckIn => {
                    if let Some(parent) = cx.check_in(now) {
                        placement.on_parent_lost(cx, now, parent);
                    }
                }
                Timer::Search => placement.on_search_timeout(cx, now),
                Timer::Attach => placement.on_attach_timeout(cx, now),
                Timer::Reevaluate => placement.start_reevaluation(cx, now),
                Timer::ReevaluationDone => placement.finish_reevaluation(cx, now),
                Timer::Extra => cx.report_extra(now),
                Timer::News => cx.send_news(),
                Timer::Ack => cx.send_ack(),
                Timer::Resend => cx.on_resend_timer(now),
                Timer::ParentSilence => {
                    if let Some(parent) = cx.on_parent_silence(now) {
                        placement.on_parent_lost(cx, now, parent);
                    }
                }
                Timer::ChildCheck => cx.on_child_check_timer(now),
            }
        }
        cx.hurry_news(now);
    }

    fn poll_output(&mut self) -> Option<Output<Message, Event>> {
        self.core.outbox.pop()
    }

    fn poll_timeout(&self) -> Option<Time> {
        self.core.timers.next_deadline()
    }
}
