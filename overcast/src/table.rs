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
        let mut h = 0x9e37_79b9_7f4a_7c15u64;
        for chunk in node.as_bytes().chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            h = (h ^ u64::from_le_bytes(word)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            h ^= h >> 31;
        }
        self.count = self.count.wrapping_add(1);
        self.hash ^= h;
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
#[derive(Clone, Debug)]
pub struct DescendantTable {
    me: NodeId,
    entries: BTreeMap<NodeId, Entry>,
}

impl DescendantTable {
    /// An empty table of node `me`.
    pub fn new(me: NodeId) -> Self {
        Self {
            me,
            entries: BTreeMap::new(),
        }
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
        self.entries.values().filter(|e| e.alive()).count()
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
                self.entries.insert(node, entry);
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
                                self.entries.insert(node, Entry { via: side, ..e });
                                return Applied::Unchanged;
                            }
                            // Its new parent is on the same side: it moved inside that child's
                            // subtree (a node below did not know where the new parent was).
                            Some(_) => {
                                self.entries.insert(node, Entry { seq, ..e });
                                return Applied::Unchanged;
                            }
                            None => State::Absent,
                        }
                    }
                };
                self.entries.insert(node, Entry { seq, state, ..e });
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
                self.entries.insert(node, Entry { seq, info, ..e });
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
        self.entries.insert(
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
        self.entries.insert(
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
        self.entries.insert(
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
        for (node, e) in &mut self.entries {
            if e.alive() && e.via == *child {
                e.state = if node == child { state } else { State::Absent };
                gone.push((*node, e.seq));
            }
        }
        gone.sort_by_key(|(n, _)| *n != *child);
        gone
    }

    /// The digest of the live entries under `child` (the child included).
    pub fn digest_under(&self, child: &NodeId) -> Digest {
        let mut digest = Digest::default();
        for (node, _) in self.live().filter(|(_, e)| e.via == *child) {
            digest.add(node);
        }
        digest
    }

    /// The digest of this node's subtree: its live entries and itself.
    pub fn digest_of_subtree(&self) -> Digest {
        let mut digest = Digest::default();
        digest.add(&self.me);
        for (node, _) in self.live() {
            digest.add(node);
        }
        digest
    }

    /// Entries under `from` now hang under `to` (a child moved under another child's subtree).
    pub fn repoint(&mut self, from: &NodeId, to: NodeId) {
        for e in self.entries.values_mut() {
            if e.alive() && e.via == *from {
                e.via = to;
            }
        }
    }

    /// Child `child` listed its whole subtree: entries under it that are not in `listed` (nor
    /// the child itself) left it. Returns those, now absent, with their sequence numbers.
    pub fn prune_under(&mut self, child: &NodeId, listed: &BTreeSet<NodeId>) -> Vec<(NodeId, u32)> {
        let mut gone = Vec::new();
        for (node, e) in &mut self.entries {
            if e.alive() && e.via == *child && node != child && !listed.contains(node) {
                e.state = State::Absent;
                gone.push((*node, e.seq));
            }
        }
        gone
    }

    /// Forget dead entries (after long enough that no stale certificate can still arrive).
    pub fn forget_dead(&mut self) {
        self.entries.retain(|_, e| e.alive());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(i: u64) -> NodeId {
        NodeId::from_index(i)
    }

    fn birth(node: u64, _parent: u64, seq: u32) -> CertBody {
        CertBody::Birth {
            node: id(node),
            seq,
            info: NodeInfo::default(),
        }
    }

    fn death(node: u64, seq: u32, cause: DeathCause) -> CertBody {
        CertBody::Death {
            node: id(node),
            seq,
            cause,
        }
    }

    #[test]
    fn a_child_inventing_ids_fills_the_table_to_its_bound_and_no_further() {
        let mut t = DescendantTable::new(id(0));
        t.adopt(id(1), 1, NodeInfo::default());
        for n in 2..(MAX_ENTRIES as u64 + 100) {
            let _ = t.apply(id(1), &birth(n, 1, 1));
        }
        assert_eq!(t.len(), MAX_ENTRIES);
        assert_eq!(t.apply(id(1), &birth(u64::MAX, 1, 1)), Applied::TableFull);
        // A known node's news still goes in; a dead one makes room.
        assert_eq!(
            t.apply(id(1), &death(2, 2, DeathCause::Silent)),
            Applied::Changed
        );
        assert_eq!(t.apply(id(1), &birth(u64::MAX, 1, 1)), Applied::Changed);
    }

    #[test]
    fn a_stale_listing_never_takes_a_direct_child_away() {
        // Node 3 is this node's child (seq 2); a node that moved under child 1 still lists 3 at
        // the same number (it has not heard 3 left it). 3 stays a direct child here, while a
        // deeper descendant listed at the same number is re-pointed (it moved with a subtree).
        let mut t = DescendantTable::new(id(0));
        t.adopt(id(1), 1, NodeInfo::default());
        t.adopt(id(3), 2, NodeInfo::default());
        assert_eq!(t.apply(id(1), &birth(3, 9, 2)), Applied::Stale);
        assert_eq!(t.via(&id(3)), Some(id(3)));
        assert_eq!(t.apply(id(3), &birth(7, 3, 1)), Applied::Changed);
        assert_eq!(t.apply(id(1), &birth(7, 9, 1)), Applied::Unchanged);
        assert_eq!(t.via(&id(7)), Some(id(1)));
    }

    #[test]
    fn a_move_to_a_parent_on_the_same_side_keeps_the_node() {
        // 5 and 7 both hang under child 1; 5 moves under 7 and a node below did not know 7 was
        // on that side, so the departure reaches this table: 5 is still below, under child 1.
        let mut t = DescendantTable::new(id(0));
        t.adopt(id(1), 1, NodeInfo::default());
        t.apply(id(1), &birth(5, 1, 1));
        t.apply(id(1), &birth(7, 1, 1));
        let moved = DeathCause::Moved {
            new_parent: id(7),
            mover: id(5),
            meet: Some(id(1)),
        };
        assert_eq!(t.apply(id(1), &death(5, 1, moved)), Applied::Unchanged);
        assert!(t.get(&id(5)).unwrap().alive());
        assert_eq!(t.via(&id(5)), Some(id(1)));
    }

    #[test]
    fn a_full_listing_revives_what_news_from_elsewhere_took_away() {
        let mut t = DescendantTable::new(id(0));
        t.adopt(id(1), 1, NodeInfo::default());
        t.apply(id(1), &birth(5, 1, 3));
        t.apply(id(1), &death(5, 3, DeathCause::Orphaned));
        assert!(!t.get(&id(5)).unwrap().alive());
        // Child 1 lists 5 at an older number (another path's numbers ran ahead): alive again,
        // at the higher number, so later news from either path compares right.
        assert_eq!(
            t.revive_under(id(1), id(5), 2, NodeInfo::default()),
            Some(3)
        );
        assert!(t.get(&id(5)).unwrap().alive());
        // Nothing to revive when it is alive, or unknown.
        assert_eq!(t.revive_under(id(1), id(5), 4, NodeInfo::default()), None);
        assert_eq!(t.revive_under(id(1), id(9), 1, NodeInfo::default()), None);
    }

    #[test]
    fn a_late_death_never_undoes_a_newer_birth_whatever_the_order() {
        // Root 0 with children 1 and 2; node 5 moves from under 1 (seq 1) to under 2 (seq 2),
        // while its old parent declares it dead (it missed the lease during the move).
        for death_first in [false, true] {
            let mut t = DescendantTable::new(id(0));
            t.adopt(id(1), 1, NodeInfo::default());
            t.adopt(id(2), 1, NodeInfo::default());
            assert_eq!(t.apply(id(1), &birth(5, 1, 1)), Applied::Changed);
            let late = death(5, 1, DeathCause::Silent);
            if death_first {
                assert_eq!(t.apply(id(1), &late), Applied::Changed);
                assert_eq!(t.apply(id(2), &birth(5, 2, 2)), Applied::Changed);
            } else {
                assert_eq!(t.apply(id(2), &birth(5, 2, 2)), Applied::Unchanged);
                assert_eq!(t.apply(id(1), &late), Applied::Stale);
            }
            assert!(t.get(&id(5)).unwrap().alive(), "death first: {death_first}");
            assert_eq!(t.via(&id(5)), Some(id(2)));
        }
    }

    #[test]
    fn a_move_inside_the_subtree_is_quashed_in_either_order() {
        for departure_first in [false, true] {
            let mut t = DescendantTable::new(id(0));
            t.adopt(id(1), 1, NodeInfo::default());
            t.adopt(id(2), 1, NodeInfo::default());
            t.apply(id(2), &birth(3, 2, 1));
            t.apply(id(1), &birth(5, 1, 1));
            t.apply(id(1), &birth(6, 5, 1));
            // 5 (with 6 below it) moves under 3.
            let moved = DeathCause::Moved {
                new_parent: id(3),
                mover: id(5),
                meet: Some(id(0)),
            };
            let mut verdicts = Vec::new();
            if departure_first {
                verdicts.push(t.apply(id(1), &death(5, 1, moved)));
                verdicts.push(t.apply(id(1), &death(6, 1, moved)));
            }
            verdicts.push(t.apply(id(2), &birth(5, 3, 2)));
            verdicts.push(t.apply(id(2), &birth(6, 5, 1)));
            if !departure_first {
                verdicts.push(t.apply(id(1), &death(5, 1, moved)));
                verdicts.push(t.apply(id(1), &death(6, 1, moved)));
            }
            assert!(
                verdicts
                    .iter()
                    .all(|v| matches!(v, Applied::Unchanged | Applied::Stale)),
                "{verdicts:?}"
            );
            assert_eq!(t.via(&id(5)), Some(id(2)));
            assert_eq!(t.via(&id(6)), Some(id(2)));
        }
    }

    #[test]
    fn silent_children_take_their_subtree_and_only_newer_births_revive_them() {
        let mut t = DescendantTable::new(id(0));
        t.adopt(id(1), 1, NodeInfo::default());
        assert_eq!(t.apply(id(1), &birth(5, 1, 1)), Applied::Changed);
        assert_eq!(t.apply(id(1), &birth(5, 1, 1)), Applied::Unchanged);
        assert_eq!(t.apply(id(1), &birth(6, 5, 3)), Applied::Changed);
        assert_eq!(t.live_count(), 3);
        let gone = t.remove_child(&id(1), State::Dead);
        assert_eq!(gone[0], (id(1), 1));
        assert_eq!(gone.len(), 3);
        assert_eq!(t.live_count(), 0);
        // The dead child itself needs a newer number.
        assert!(!t.adopt(id(1), 1, NodeInfo::default()));
        assert!(t.adopt(id(1), 2, NodeInfo::default()));
        // Its old subtree, gone with it, may come back at the same numbers.
        assert_eq!(t.apply(id(1), &birth(5, 1, 1)), Applied::Changed);
        assert_eq!(t.apply(id(1), &birth(6, 5, 3)), Applied::Changed);
        assert_eq!(t.live_count(), 3);
    }

    #[test]
    fn bad_certificates_are_refused() {
        let mut t = DescendantTable::new(id(0));
        t.adopt(id(1), 1, NodeInfo::default());
        t.adopt(id(2), 1, NodeInfo::default());
        t.apply(id(2), &birth(7, 2, 1));
        // Child 1 declares dead a node under child 2.
        assert_eq!(
            t.apply(id(1), &death(7, 2, DeathCause::Silent)),
            Applied::OutsideSubtree
        );
        // A number from the future.
        assert_eq!(t.apply(id(2), &birth(7, 2, u32::MAX)), Applied::FromFuture);
        // About this node itself.
        assert_eq!(t.apply(id(1), &birth(0, 1, 1)), Applied::OutsideSubtree);
        // Extra information about a node under another child.
        let extra = CertBody::Extra {
            node: id(7),
            seq: 1,
            info: NodeInfo {
                first: 0,
                content: 9,
                load: 0,
                ..NodeInfo::default()
            },
        };
        assert_eq!(t.apply(id(1), &extra), Applied::OutsideSubtree);
        assert_eq!(t.apply(id(2), &extra), Applied::Changed);
        assert!(t.get(&id(7)).unwrap().alive());
    }
}
