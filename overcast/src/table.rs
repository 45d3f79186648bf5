//! A node's table of its descendants, kept current by certificates from its children.
//!
//! Each entry records which child of this node the descendant hangs under (`via`), its sequence
//! number, its extra information, and whether it lives. Recording the child rather than the
//! descendant's own parent is what makes quashing safe: a move inside the subtree of one child
//! changes nothing here, so news of it stops below, and a death here never has to guess at a
//! structure it was not told about.
//!
//! Applying a certificate says whether the table changed; only changes go on upward. The rules:
//! - a certificate older than the entry (smaller sequence number) is stale and ignored, so a late
//!   death never undoes a newer birth, whatever the order of arrival;
//! - a death only counts when it comes from the child the entry hangs under;
//! - a birth of a live entry under another child is a move inside this subtree: recorded, quashed;
//! - a departure (the node moved) whose new parent is in this subtree is quashed: the birth from the
//!   other side will move the entry;
//! - a node that died itself returns only with a newer number (it reattached); one that vanished
//!   with an ancestor or moved away may return at the same number (its subtree moved back).

use std::collections::{BTreeMap, BTreeSet};

use overlay_core::NodeId;
use serde::{Deserialize, Serialize};

use crate::certificate::{CertBody, DeathCause, NodeInfo};

/// A certificate's sequence number may run ahead of the known one by at most this much. Moves
/// inside a subtree are quashed below, so an ancestor's number lags; the bound only has to stop a
/// forged number near `u32::MAX` from making an entry immortal.
pub const MAX_SEQ_JUMP: u32 = 1 << 16;

/// Whether an entry lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum State {
    /// Alive, in this subtree.
    Alive,
    /// It died (missed its lease): back only with a newer sequence number.
    Dead,
    /// Gone with a dead ancestor, or moved out of this subtree: back at the same number or newer.
    Absent,
}

/// One descendant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The child of this node it hangs under (itself, for a child).
    pub via: NodeId,
    /// Its sequence number (parent changes) as far as news reached here.
    pub seq: u32,
    /// Its extra information.
    pub info: NodeInfo,
    /// Whether it lives.
    pub state: State,
}

impl Entry {
    /// Whether it lives.
    pub fn alive(&self) -> bool {
        self.state == State::Alive
    }
}

/// An order-independent summary of a set of nodes: how many, and the XOR of a hash of each.
/// A child sends the digest of its subtree at every check-in; a parent whose entries under that
/// child disagree for a while asks for the full list (the safety net under every race).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Digest {
    /// Nodes in the set.
    pub count: u32,
    /// XOR of their hashes.
    pub hash: u64,
}

impl Digest {
    /// Add `node` to the summary.
    pub fn add(&mut self, node: &NodeId) {
        self.count = self.count.wrapping_add(1);
        self.hash ^= Self::node_hash(node);
    }

    /// Take `node` out of a summary it was added to.
    fn remove(&mut self, node: &NodeId) {
        self.count = self.count.wrapping_sub(1);
        self.hash ^= Self::node_hash(node);
    }

    fn node_hash(node: &NodeId) -> u64 {
        let mut h = 0x9e37_79b9_7f4a_7c15u64;
        for chunk in node.as_bytes().chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            h = (h ^ u64::from_le_bytes(word)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            h ^= h >> 31;
        }
        h
    }
}

/// What applying a certificate did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    /// The table changed in a way the ancestors must hear: pass the certificate on.
    Changed,
    /// Nothing the ancestors need (a repeat, or a move inside this subtree): quash it.
    Unchanged,
    /// Older than what is known: ignore it.
    Stale,
    /// About this node, or about a node under another child: drop and count it.
    OutsideSubtree,
    /// A sequence number far ahead of the known one: drop and count it.
    FromFuture,
    /// The birth of a node not yet known, with the table at [`MAX_ENTRIES`]: drop and count
    /// it (a child inventing ids cannot grow the table without bound).
    TableFull,
}

/// The most nodes a table holds (dead ones are forgotten first when it fills).
pub const MAX_ENTRIES: usize = 1 << 16;

/// The descendants of one node.
///
/// Besides the entries, it keeps indexes of the live ones, changed with every entry: their ids
/// in order, their ids by landmark time, and a digest per child they hang under and of them
/// all. A root answers every node's sample query and every child's check-in digest from these,
/// without walking its table (at 10 000 nodes those walks were a quarter of a run's time).
#[derive(Clone, Debug)]
pub struct DescendantTable {
    me: NodeId,
    entries: BTreeMap<NodeId, Entry>,
    /// Ids of the live entries, in order.
    live_ids: Vec<NodeId>,
    /// Live entries with a landmark time, by it.
    by_landmark: BTreeSet<(u32, NodeId)>,
    /// Digest of the live entries under each child (the child included).
    digest_by_via: BTreeMap<NodeId, Digest>,
    /// Digest of all live entries.
    digest_live: Digest,
}

impl DescendantTable {
    /// An empty table of node `me`.
    pub fn new(me: NodeId) -> Self {
        Self {
            me,
            entries: BTreeMap::new(),
            live_ids: Vec::new(),
            by_landmark: BTreeSet::new(),
            digest_by_via: BTreeMap::new(),
            digest_live: Digest::default(),
        }
    }

    /// Set the entry of `node`, keeping the indexes of live entries in step.
    fn put(&mut self, node: NodeId, entry: Entry) {
        let old = self.entries.insert(node, entry);
        self.unindex(node, old);
        self.index(node, entry);
    }

    /// Take a live entry out of the indexes (nothing for another).
    fn unindex(&mut self, node: NodeId, entry: Option<Entry>) {
        let Some(e) = entry.filter(Entry::alive) else {
            return;
        };
        if let Ok(at) = self.live_ids.binary_search(&node) {
            self.live_ids.remove(at);
        }
        if e.info.landmark_rtt_us > 0 {
            self.by_landmark.remove(&(e.info.landmark_rtt_us, node));
        }
        if let Some(d) = self.digest_by_via.get_mut(&e.via) {
            d.remove(&node);
            if d.count == 0 {
                self.digest_by_via.remove(&e.via);
            }
        }
        self.digest_live.remove(&node);
    }

    /// Put a live entry into the indexes (nothing for another).
    fn index(&mut self, node: NodeId, e: Entry) {
        if !e.alive() {
            return;
        }
        if let Err(at) = self.live_ids.binary_search(&node) {
            self.live_ids.insert(at, node);
        }
        if e.info.landmark_rtt_us > 0 {
            self.by_landmark.insert((e.info.landmark_rtt_us, node));
        }
        self.digest_by_via.entry(e.via).or_default().add(&node);
        self.digest_live.add(&node);
    }

    /// Ids of the live entries, in order.
    pub fn live_ids(&self) -> &[NodeId] {
        &self.live_ids
    }

    /// Live entries with a landmark time, nearest `near` first, with their distance from it
    /// (the two sides merged; at equal distance the upper side first).
    pub fn nearest_by_landmark(&self, near: u32) -> impl Iterator<Item = (u32, NodeId)> + '_ {
        let split = (near, NodeId::from_bytes([0; 32]));
        let mut up = self
            .by_landmark
            .range(split..)
            .map(move |&(l, n)| (l - near, n))
            .peekable();
        let mut down = self
            .by_landmark
            .range(..split)
            .rev()
            .map(move |&(l, n)| (near - l, n))
            .peekable();
        std::iter::from_fn(move || match (up.peek(), down.peek()) {
            (Some(u), Some(d)) if d.0 < u.0 => down.next(),
            (Some(_), _) => up.next(),
            (None, _) => down.next(),
        })
    }

    /// The entry of `node`.
    pub fn get(&self, node: &NodeId) -> Option<&Entry> {
        self.entries.get(node)
    }

    /// Live descendants, in id order.
    pub fn live(&self) -> impl Iterator<Item = (&NodeId, &Entry)> + '_ {
        self.entries.iter().filter(|(_, e)| e.alive())
    }

    /// Number of live descendants.
    pub fn live_count(&self) -> usize {
        self.live_ids.len()
    }

    /// Every entry, dead ones included.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the table has no entries at all.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The child a live descendant hangs under.
    pub fn via(&self, node: &NodeId) -> Option<NodeId> {
        self.entries.get(node).filter(|e| e.alive()).map(|e| e.via)
    }

    /// Live descendants under `child` (the child included), in id order.
    pub fn under(&self, child: &NodeId) -> Vec<(NodeId, Entry)> {
        self.entries
            .iter()
            .filter(|(_, e)| e.alive() && e.via == *child)
            .map(|(n, e)| (*n, *e))
            .collect()
    }

    fn check_seq(known: Option<Entry>, seq: u32) -> Option<Applied> {
        let e = known?;
        if seq < e.seq {
            Some(Applied::Stale)
        } else if seq > e.seq.saturating_add(MAX_SEQ_JUMP) {
            Some(Applied::FromFuture)
        } else {
            None
        }
    }

    /// Take in a certificate that arrived from child `child`.
    pub fn apply(&mut self, child: NodeId, body: &CertBody) -> Applied {
        let subject = body.subject();
        if subject == self.me {
            return Applied::OutsideSubtree;
        }
        let known = self.entries.get(&subject).copied();
        if let Some(verdict) = Self::check_seq(known, body.seq()) {
            return verdict;
        }
        match *body {
            CertBody::Birth {
                node, seq, info, ..
            } => {
                let entry = Entry {
                    via: child,
                    seq,
                    info,
                    state: State::Alive,
                };
                if known.is_none() && self.entries.len() >= MAX_ENTRIES {
                    self.forget_dead();
                    if self.entries.len() >= MAX_ENTRIES {
                        return Applied::TableFull;
                    }
                }
                let verdict = match known {
                    // A direct child, known first hand, reported on another side at the same
                    // number: not a move of its own (that raises the number) but a stale
                    // listing from a node that has not yet heard it left. (A descendant further
                    // down may be re-pointed this way: it moves along with a subtree.)
                    Some(e) if e.alive() && e.via == node && e.via != child && seq == e.seq => {
                        return Applied::Stale;
                    }
                    None => Applied::Changed,
                    Some(e) => match e.state {
                        // Already known alive: a repeat or a move inside this subtree.
                        State::Alive if e.info == info || e.via != child => Applied::Unchanged,
                        State::Alive => Applied::Changed,
                        State::Dead if seq == e.seq => return Applied::Stale,
                        State::Dead | State::Absent => Applied::Changed,
                    },
                };
                self.put(node, entry);
                verdict
            }
            CertBody::Death { node, seq, cause } => {
                let Some(e) = known.filter(|e| e.alive()) else {
                    return Applied::Unchanged;
                };
                if e.via != child {
                    // News from a side the node already left (or never was on).
                    return if e.seq >= seq {
                        Applied::Stale
                    } else {
                        Applied::OutsideSubtree
                    };
                }
                let state = match cause {
                    DeathCause::Silent => State::Dead,
                    DeathCause::Orphaned => State::Absent,
                    DeathCause::Moved {
                        new_parent, mover, ..
                    } => {
                        // The old side's last word on the node: anything it said before (a
                        // late birth from the subtree it left) is overruled.
                        let side = if new_parent == self.me {
                            Some(mover)
                        } else {
                            self.via(&new_parent)
                        };
                        match side {
                            // It stays in this subtree, under another child: point there now,
                            // so news from that side applies even before its birth arrives.
                            Some(side) if side != child => {
                                self.put(node, Entry { via: side, ..e });
                                return Applied::Unchanged;
                            }
                            // Its new parent is on the same side: it moved inside that child's
                            // subtree (a node below did not know where the new parent was).
                            Some(_) => {
                                self.put(node, Entry { seq, ..e });
                                return Applied::Unchanged;
                            }
                            None => State::Absent,
                        }
                    }
                };
                self.put(node, Entry { seq, state, ..e });
                Applied::Changed
            }
            CertBody::Extra { node, seq, info } => {
                let Some(e) = known.filter(|e| e.alive()) else {
                    return Applied::Unchanged;
                };
                if e.via != child {
                    return Applied::OutsideSubtree;
                }
                if e.info == info {
                    return Applied::Unchanged;
                }
                self.put(node, Entry { seq, info, ..e });
                Applied::Changed
            }
        }
    }

    /// Record a child this node adopted. Returns whether the ancestors must hear of it (false
    /// when the child was already alive below: a move inside this subtree).
    pub fn adopt(&mut self, child: NodeId, seq: u32, info: NodeInfo) -> bool {
        let known = self.entries.get(&child).copied();
        if known.is_some_and(|e| seq < e.seq || (e.state == State::Dead && seq == e.seq)) {
            return false;
        }
        let news = !known.is_some_and(|e| e.alive());
        self.put(
            child,
            Entry {
                via: child,
                seq,
                info,
                state: State::Alive,
            },
        );
        news
    }

    /// A node this one holds as a child is alive under itself, whatever the table said (a full
    /// listing from the child settles it).
    pub fn reassert_child(&mut self, child: NodeId, seq: u32, info: NodeInfo) {
        self.put(
            child,
            Entry {
                via: child,
                seq,
                info,
                state: State::Alive,
            },
        );
    }

    /// A child's full listing names `node` as alive below it: if this table holds it as gone,
    /// it lives again under `child`, at the higher of the two numbers (returned).
    pub fn revive_under(
        &mut self,
        child: NodeId,
        node: NodeId,
        seq: u32,
        info: NodeInfo,
    ) -> Option<u32> {
        let known = self.entries.get(&node).copied()?;
        if known.alive() || seq > known.seq.saturating_add(MAX_SEQ_JUMP) {
            return None;
        }
        let seq = seq.max(known.seq);
        self.put(
            node,
            Entry {
                via: child,
                seq,
                info,
                state: State::Alive,
            },
        );
        Some(seq)
    }

    /// A child left: it and everything under it become `state` here. Returns the nodes that
    /// changed, child first, with their sequence numbers.
    pub fn remove_child(&mut self, child: &NodeId, state: State) -> Vec<(NodeId, u32)> {
        let mut gone: Vec<(NodeId, u32)> = Vec::new();
        for (node, e) in self.under(child) {
            let state = if node == *child { state } else { State::Absent };
            self.put(node, Entry { state, ..e });
            gone.push((node, e.seq));
        }
        gone.sort_by_key(|(n, _)| *n != *child);
        gone
    }

    /// The digest of the live entries under `child` (the child included).
    pub fn digest_under(&self, child: &NodeId) -> Digest {
        self.digest_by_via.get(child).copied().unwrap_or_default()
    }

    /// The digest of this node's subtree: its live entries and itself.
    pub fn digest_of_subtree(&self) -> Digest {
        let mut digest = self.digest_live;
        digest.add(&self.me);
        digest
    }

    /// Entries under `from` now hang under `to` (a child moved under another child's subtree).
    pub fn repoint(&mut self, from: &NodeId, to: NodeId) {
        for (node, e) in self.under(from) {
            self.put(node, Entry { via: to, ..e });
        }
    }

    /// Child `child` listed its whole subtree: entries under it that are not in `listed` (nor
    /// the child itself) left it. Returns those, now absent, with their sequence numbers.
    pub fn prune_under(&mut self, child: &NodeId, listed: &BTreeSet<NodeId>) -> Vec<(NodeId, u32)> {
        let mut gone = Vec::new();
        for (node, e) in self.under(child) {
            if node != *child && !listed.contains(&node) {
                self.put(
                    node,
                    Entry {
                        state: State::Absent,
                        ..e
                    },
                );
                gone.push((node, e.seq));
            }
        }
        gone
    }

    /// Forget dead entries (after long enough that no stale certificate can still arrive).
    /// The indexes hold live entries only, so they stay as they are.
    pub fn forget_dead(&mut self) {
        self.entries.retain(|_, e| e.alive());
    }
}

#[cfg(test)]
mod tests;
