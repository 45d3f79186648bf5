//! What every part of a node shares: its settings and keys, its place in the tree (root or not,
//! parent, ancestors, bandwidth from the root), its children and the table of its subtree, the
//! news waiting for the parent, the content it holds, and what it hands its driver (outputs,
//! timers, counters, randomness). Placement ([`super::placement::Placement`]) owns the rest of
//! its state and acts through this; [`crate::Overcast`] composes the two. The up/down protocol
//! is this part's own behaviour ([`super::updown`]): its state is exactly what placement reads.

use std::collections::BTreeMap;
use std::time::Duration;

use overlay_core::rng::{ProtocolRng, jitter, rng_from_seed};
use overlay_core::{NodeId, Outbox, Time, TimerTable};
use probe::ArrivalPace;

use super::child_check::ChildChecks;
use super::delivery::{Feed, Intake};
use super::parent_watch::ParentWatch;
use super::{Event, OvercastStats, Timer};
use crate::certificate::{Certificate, NodeInfo, Signer, Verifier};
use crate::content::ContentStore;
use crate::message::Message;
use crate::table::DescendantTable;
use crate::{OvercastConfig, PathBandwidth};

/// A child as its parent keeps it.
#[derive(Clone, Debug)]
pub(super) struct Child {
    /// It is dead, with its subtree, if it has not checked in by then.
    pub(super) lease_until: Time,
    /// Its sequence number when it attached here.
    pub(super) seq: u32,
    /// Check-ins in a row whose digest disagreed with the entries under this child.
    pub(super) mismatches: u32,
    /// When the last check-in whose digest was compared arrived.
    pub(super) compared_at: Option<Time>,
    /// No full listing is asked for before this (backing off while disagreement persists).
    pub(super) next_resync: Time,
    /// How long to wait after the next full listing asked for before asking again.
    pub(super) resync_backoff: Duration,
    /// What it is sent of the stream.
    pub(super) feed: Feed,
    /// The child's bandwidth from the root, as it last reported it.
    pub(super) path_bw: PathBandwidth,
    /// The pace of its acknowledgements of new bytes, which tells a child that stopped
    /// acknowledging (see `child_check`).
    pub(super) acks: ArrivalPace,
    /// Whether its full listing arrived (until then this node does not know who is below it,
    /// and must not move: it could land under one of them).
    pub(super) listed: bool,
}

impl Child {
    /// A child that attached at `now` with sequence number `seq`, its bandwidth from the root
    /// at most `path_bw` until it reports its own.
    pub(super) fn new(now: Time, seq: u32, path_bw: PathBandwidth) -> Self {
        Self {
            lease_until: now,
            seq,
            mismatches: 0,
            compared_at: None,
            next_resync: now,
            resync_backoff: Duration::ZERO,
            feed: Feed::default(),
            path_bw,
            acks: ArrivalPace::default(),
            listed: false,
        }
    }
}

/// A parent that took this node, as placement hands it over to move there.
#[derive(Clone, Debug)]
pub(super) struct Adoption {
    /// The new parent.
    pub(super) parent: NodeId,
    /// The new ancestor list, top first, ending with the parent.
    pub(super) ancestors: Vec<NodeId>,
    /// The parent's bandwidth from the root, as it told.
    pub(super) parent_path_bw: PathBandwidth,
    /// The measured path from the parent (unlimited when the move was not measured).
    pub(super) link_bw: PathBandwidth,
    /// This node's sequence number from now on (the one the request offered).
    pub(super) seq: u32,
    /// Search rounds it took (for the event).
    pub(super) rounds: u32,
}

/// The shared part of an Overcast node.
#[derive(Debug)]
pub(super) struct Core {
    pub(super) id: NodeId,
    pub(super) config: OvercastConfig,
    pub(super) rng: ProtocolRng,
    pub(super) signer: Box<dyn Signer>,
    pub(super) verifier: Box<dyn Verifier>,
    pub(super) is_root: bool,
    pub(super) parent: Option<NodeId>,
    /// Top first, ending with the parent.
    pub(super) ancestors: Vec<NodeId>,
    /// When the parent was last heard from.
    pub(super) parent_heard: Time,
    /// The watch over the stream from the parent, which finds a dead parent by its silence.
    pub(super) watch: ParentWatch,
    /// Checks on children that stopped acknowledging or were reported silent by their own
    /// children.
    pub(super) child_checks: ChildChecks,
    /// When this node last checked in because its parent asked it to.
    pub(super) checked_in_on_request: Option<Time>,
    /// The parent's bandwidth from the root, as it last told.
    pub(super) parent_path_bw: PathBandwidth,
    /// The last measure of the path from the parent (unlimited until one is taken).
    pub(super) link_bw: PathBandwidth,
    /// Times this node changed parents.
    pub(super) seq: u32,
    /// Round-trip time to the lowest root, microseconds, as first measured (0: not yet).
    pub(super) landmark_rtt_us: u32,
    /// Round-trip time to the parent as last measured (`None` until the first re-evaluation
    /// under this parent).
    pub(super) parent_rtt: Option<Duration>,
    pub(super) children: BTreeMap<NodeId, Child>,
    pub(super) table: DescendantTable,
    /// Certificates for the parent, in order.
    pub(super) pending: Vec<Certificate>,
    pub(super) content: ContentStore,
    /// The stream this node holds and what it acknowledged of it.
    pub(super) intake: Intake,
    /// What the driver's store holds (its first byte) and whether it is degraded, as the
    /// driver last said (`None`: it never did; memory stands for the store).
    pub(super) store: Option<(u64, bool)>,
    /// The extra information last reported up.
    pub(super) reported: NodeInfo,
    /// Every timer of the node and its parts, in one table so ties fire in one fixed order
    /// (the declaration order of [`Timer`]).
    pub(super) timers: TimerTable<Timer>,
    pub(super) outbox: Outbox<Message, Event>,
    pub(super) stats: OvercastStats,
}

impl Core {
    /// The shared part of node `id`, not yet started.
    pub(super) fn new(
        id: NodeId,
        config: OvercastConfig,
        signer: Box<dyn Signer>,
        verifier: Box<dyn Verifier>,
    ) -> Self {
        let mut content = ContentStore::new(config.store_limit);
        let mut intake = Intake::default();
        if let Some((stream, end)) = config.resume {
            content.restart(end);
            intake.stream = stream;
            intake.acked = end;
        } else if config.stream != 0 {
            intake.stream = config.stream;
        }
        Self {
            id,
            rng: rng_from_seed(config.seed),
            content,
            intake,
            store: None,
            config,
            signer,
            verifier,
            is_root: false,
            parent: None,
            ancestors: Vec::new(),
            parent_heard: Time::ZERO,
            watch: ParentWatch::default(),
            child_checks: ChildChecks::default(),
            checked_in_on_request: None,
            parent_path_bw: PathBandwidth::ZERO,
            link_bw: PathBandwidth::Unlimited,
            seq: 0,
            landmark_rtt_us: 0,
            parent_rtt: None,
            children: BTreeMap::new(),
            table: DescendantTable::new(id),
            pending: Vec::new(),
            reported: NodeInfo::default(),
            timers: TimerTable::default(),
            outbox: Outbox::default(),
            stats: OvercastStats::default(),
        }
    }

    /// This node's place in the chain of linear roots, if it is one.
    pub(super) fn chain_index(&self) -> Option<usize> {
        self.config.roots.iter().position(|r| *r == self.id)
    }

    /// Whether this node is placed in the tree (attached, or the root).
    pub(super) fn is_placed(&self) -> bool {
        self.is_root || self.parent.is_some()
    }

    /// Take the root's place: no parent, no ancestors, and no news to send up.
    pub(super) fn become_root(&mut self) {
        self.is_root = true;
        self.parent = None;
        self.parent_rtt = None;
        self.ancestors.clear();
        self.pending.clear();
        self.outbox.emit(Event::BecameRoot);
    }

    /// Move under the parent of `adoption`: the old path gets the news up to now and the new
    /// path the subtree as it is now, so every change reaches each ancestor through one side
    /// only, in order (after a lost parent there is no old path: its news is dropped). Returns
    /// the parent left, if this was a move from another.
    pub(super) fn move_under(&mut self, now: Time, adoption: Adoption) -> Option<NodeId> {
        let Adoption {
            parent,
            ancestors,
            parent_path_bw,
            link_bw,
            seq,
            rounds,
        } = adoption;
        let meet = meet_of(&self.ancestors, &ancestors);
        let old = self.parent.replace(parent);
        let moved = old.is_some();
        if old != Some(parent) {
            self.parent_rtt = None;
        }
        let news = std::mem::take(&mut self.pending);
        let left = old.filter(|o| *o != parent);
        if let Some(old) = left {
            self.outbox.send(
                old,
                Message::Detach {
                    seq: self.seq,
                    new_parent: parent,
                    meet,
                    certificates: news,
                },
            );
        }
        let births = self.subtree_births();
        self.outbox.send(parent, Message::Subtree { births });
        self.seq = seq;
        self.stats.moves += 1;
        self.is_root = false;
        self.ancestors = ancestors;
        self.parent_heard = now;
        self.parent_path_bw = parent_path_bw;
        self.link_bw = link_bw;
        self.fetch_from_parent();
        self.outbox.emit(Event::Attached {
            parent,
            rounds,
            moved,
        });
        left
    }

    /// The parent `parent` is gone: no parent, and the news meant for its path is dropped (the
    /// next parent gets the whole subtree instead).
    pub(super) fn lose_parent(&mut self, parent: NodeId) {
        self.outbox.emit(Event::ParentLost { parent });
        self.parent = None;
        self.pending.clear();
    }

    /// `period` ±25%, so nodes' periodic work does not fall in step.
    pub(super) fn jitter(&mut self, period: Duration) -> Duration {
        jitter(&mut self.rng, period)
    }

    /// Whether every child's full listing arrived, so the table knows the whole subtree (a move
    /// decided before then could land under a node below this one).
    pub(super) fn knows_subtree(&self) -> bool {
        self.children.values().all(|c| c.listed)
    }

    /// Whether `node` is below this node (it must never become its parent).
    pub(super) fn is_descendant(&self, node: &NodeId) -> bool {
        self.children.contains_key(node) || self.table.via(node).is_some()
    }

    /// This node's bandwidth from the root: unlimited at the root, otherwise the smaller of the
    /// parent's and the last measure of the path from the parent; zero while unplaced.
    pub(super) fn path_bandwidth(&self) -> PathBandwidth {
        if self.is_root {
            PathBandwidth::Unlimited
        } else if self.parent.is_some() {
            self.parent_path_bw.min(self.link_bw)
        } else {
            PathBandwidth::ZERO
        }
    }

    /// This node's extra information now.
    pub(super) fn info(&self) -> NodeInfo {
        let (first, degraded) = self.store.unwrap_or_else(|| (self.content.first(), false));
        NodeInfo {
            first,
            content: self.content.end(),
            load: u32::try_from(self.children.len()).unwrap_or(u32::MAX),
            path_bw: self.path_bandwidth().to_wire(),
            landmark_rtt_us: self.landmark_rtt_us,
            degraded,
        }
    }

    /// This node's ancestors, then itself: the ancestor list of its children.
    pub(super) fn ancestors_through_me(&self) -> Vec<NodeId> {
        let mut ancestors = self.ancestors.clone();
        ancestors.push(self.id);
        ancestors
    }

    /// Answer a `ChildrenQuery` from `from`: the other children, this node's ancestors, and
    /// the bandwidths from the root of each.
    pub(super) fn answer_children_query(&mut self, from: NodeId) {
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
                parent_rtt_us: self.parent_rtt.map_or(0, rtt_micros),
            },
        );
    }
}

/// A round-trip time in whole microseconds for the wire, where 0 means unknown: at least 1,
/// at most `u32::MAX` (71 minutes).
pub(super) fn rtt_micros(rtt: Duration) -> u32 {
    u32::try_from(rtt.as_micros()).unwrap_or(u32::MAX).max(1)
}

/// The lowest node above two places in the tree, given the ancestor lists of each (top first):
/// the last of their common head (`None` if they share none).
pub(super) fn meet_of(one: &[NodeId], other: &[NodeId]) -> Option<NodeId> {
    one.iter()
        .zip(other)
        .take_while(|(a, b)| a == b)
        .last()
        .map(|(a, _)| *a)
}
