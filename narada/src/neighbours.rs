//! Per-neighbour state: link latency, the neighbour's handle numbering, and what it was told.

use std::collections::BTreeMap;

use overlay_core::{Bandwidth, Time};
use probe::LinkBandwidth;

use crate::members::Slot;
use crate::message::{Handle, UploadRoom};

/// A set of slots as a bitmap (slots are small and dense).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct SlotSet {
    words: Vec<u64>,
}

impl SlotSet {
    /// Add `slot`; returns whether it was new.
    pub(crate) fn insert(&mut self, slot: Slot) -> bool {
        let (w, b) = ((slot / 64) as usize, slot % 64);
        if w >= self.words.len() {
            self.words.resize(w + 1, 0);
        }
        let new = self.words[w] & (1 << b) == 0;
        self.words[w] |= 1 << b;
        new
    }

    /// Whether `slot` is in.
    pub(crate) fn contains(&self, slot: Slot) -> bool {
        self.words
            .get((slot / 64) as usize)
            .is_some_and(|w| w & (1 << (slot % 64)) != 0)
    }

    /// Remove `slot`.
    pub(crate) fn remove(&mut self, slot: Slot) {
        if let Some(w) = self.words.get_mut((slot / 64) as usize) {
            *w &= !(1 << (slot % 64));
        }
    }
}

/// A neighbour's handles below this are kept in a vector (4 bytes each: 256 KiB at most per
/// neighbour), the rest in a tree.
const DENSE_HANDLES: Handle = 1 << 16;

/// A place of [`HandleMap::dense`] no handle stands at. No member table comes near 2^32 - 1
/// slots (it is bounded by [`crate::MembershipConfig::max_table_entries`]), so no slot is it.
const ABSENT: Slot = Slot::MAX;

/// A neighbour's handles mapped to this member's slots. A neighbour that numbers as this
/// implementation does uses its own slots as handles, small and dense, kept in a vector (a
/// lookup for every hop of every route it advertises); any handle at or above
/// [`DENSE_HANDLES`] (a peer may number as it likes) goes in a tree. The caller bounds the
/// number of entries.
#[derive(Clone, Debug, Default)]
pub(crate) struct HandleMap {
    /// Slots by handle, [`ABSENT`] where none: half the size of `Option<Slot>`, which counts
    /// at a thousand members (a vector per neighbour, read for every hop of every route).
    dense: Vec<Slot>,
    sparse: BTreeMap<Handle, Slot>,
    len: usize,
}

impl HandleMap {
    /// The slot `handle` stands for.
    pub(crate) fn get(&self, handle: Handle) -> Option<Slot> {
        if handle < DENSE_HANDLES {
            self.dense
                .get(handle as usize)
                .copied()
                .filter(|&s| s != ABSENT)
        } else {
            self.sparse.get(&handle).copied()
        }
    }

    /// Whether `handle` was introduced.
    pub(crate) fn contains_key(&self, handle: Handle) -> bool {
        self.get(handle).is_some()
    }

    /// `handle` stands for `slot` from now on (a slot of [`ABSENT`]'s value is not kept).
    pub(crate) fn insert(&mut self, handle: Handle, slot: Slot) {
        if slot == ABSENT {
            return;
        }
        let old = if handle < DENSE_HANDLES {
            let at = handle as usize;
            if at >= self.dense.len() {
                self.dense.resize(at + 1, ABSENT);
            }
            Some(std::mem::replace(&mut self.dense[at], slot)).filter(|&s| s != ABSENT)
        } else {
            self.sparse.insert(handle, slot)
        };
        if old.is_none() {
            self.len += 1;
        }
    }

    /// How many handles are known.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Forgets every handle.
    pub(crate) fn clear(&mut self) {
        *self = Self::default();
    }

    /// Keeps only the handles whose slot `keep` says yes to.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(Slot) -> bool) {
        for entry in &mut self.dense {
            if *entry != ABSENT && !keep(*entry) {
                *entry = ABSENT;
                self.len -= 1;
            }
        }
        let before = self.sparse.len();
        self.sparse.retain(|_, s| keep(*s));
        self.len -= before - self.sparse.len();
    }
}

/// One mesh neighbour.
#[derive(Clone, Debug)]
pub(crate) struct Neighbour {
    /// When the link came up.
    pub(crate) since: Time,
    /// One-way latency measured by pings (half the smallest recent round trip), microseconds.
    pub(crate) measured_us: Option<u32>,
    /// One-way latency to use until measured (from the link handshake), microseconds.
    pub(crate) hint_us: u32,
    /// The neighbour announced it is leaving.
    pub(crate) leaving: bool,
    /// Made to join or repair: dropped once the mesh does as well without it.
    pub(crate) provisional: bool,
    /// Slots of ours this neighbour has been told the id of.
    pub(crate) introduced: SlotSet,
    /// The neighbour's handles, mapped to our slots.
    pub(crate) theirs: HandleMap,
    /// Member-table version up to which this neighbour has been sent membership news.
    pub(crate) sent_version: u64,
    /// Pings lost in a row with nothing else heard from the neighbour meanwhile.
    pub(crate) lost_pings: u32,
    /// A stream it forwarded here stopped and it has not been heard from since: each lost
    /// ping is followed by another at once, until it answers or is declared dead.
    pub(crate) silent: bool,
    /// Bandwidth of the link from this neighbour to this member.
    pub(crate) bandwidth: LinkBandwidth,
    /// Data bytes received from it since its last rate report.
    pub(crate) received_bytes: u64,
    /// Data bytes sent to it since this member's last rate report.
    pub(crate) sent_bytes: u64,
    /// Sources whose packets went to it since the last rate report.
    pub(crate) sent_sources: std::collections::BTreeSet<Slot>,
    /// When the neighbour's latest rate report came.
    pub(crate) last_rate_report: Option<Time>,
    /// When the current run of its rate reports (one every interval while it sends) began.
    pub(crate) carrying_since: Option<Time>,
    /// When this member last probed the link's bandwidth.
    pub(crate) probed_at: Option<Time>,
    /// The link, idle here, is doubted to carry more than this (what a busy link into this
    /// member carries while congested; see `Core::doubt_idle_links`) until it carries data
    /// or a probe finds it clearly wider.
    pub(crate) doubted_above: Option<Bandwidth>,
    /// The latest rate report from it found the link congested.
    pub(crate) congested: bool,
    /// What the neighbour's upload has room for, as it told this member (see
    /// [`crate::Message::Upload`]).
    pub(crate) room: UploadRoom,
    /// What this member last told the neighbour of its own upload.
    pub(crate) told_room: UploadRoom,
    /// When this member last sent the neighbour its whole route table on request
    /// ([`crate::Message::RouteAsk`]); such answers are rate-limited.
    pub(crate) routes_resent_at: Option<Time>,
    /// A handle of this neighbour named a member it never introduced (the introduction was
    /// lost on the way); cleared once what this member holds from it matches its digest.
    pub(crate) unknown_handle: bool,
}

impl Neighbour {
    /// A neighbour whose link came up at `now`, with a latency hint.
    pub(crate) fn new(now: Time, hint_us: u32, bandwidth: LinkBandwidth) -> Self {
        Self {
            since: now,
            measured_us: None,
            hint_us,
            leaving: false,
            provisional: false,
            introduced: SlotSet::default(),
            theirs: HandleMap::default(),
            sent_version: 0,
            lost_pings: 0,
            silent: false,
            bandwidth,
            received_bytes: 0,
            sent_bytes: 0,
            sent_sources: std::collections::BTreeSet::new(),
            last_rate_report: None,
            carrying_since: None,
            probed_at: None,
            doubted_above: None,
            congested: false,
            room: UploadRoom::default(),
            told_room: UploadRoom::default(),
            routes_resent_at: None,
            unknown_handle: false,
        }
    }

    /// The latency routing uses.
    pub(crate) fn cost_us(&self) -> u32 {
        self.measured_us.unwrap_or(self.hint_us)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    #[test]
    fn slot_sets() {
        let mut s = SlotSet::default();
        assert!(s.insert(3));
        assert!(!s.insert(3));
        assert!(s.insert(200));
        assert!(!s.insert(200) && s.insert(4) && s.insert(10_000));
        s.remove(200);
        assert!(s.insert(200));
    }

    proptest! {
        /// Inserts and retains, with handles on both sides of the dense bound, leave the same
        /// mapping and count as a `BTreeMap` given the same sequence.
        #[test]
        fn a_handle_map_behaves_as_a_btree_map(
            ops in prop::collection::vec(
                (any::<bool>(), prop_oneof![0u32..50, DENSE_HANDLES - 5..DENSE_HANDLES + 50], 0u32..20),
                0..200,
            ),
        ) {
            let mut map = HandleMap::default();
            let mut tree = BTreeMap::new();
            for (insert, handle, slot) in ops {
                if insert {
                    map.insert(handle, slot);
                    tree.insert(handle, slot);
                } else {
                    map.retain(|s| s % 3 != slot % 3);
                    tree.retain(|_, s| *s % 3 != slot % 3);
                }
                prop_assert_eq!(map.get(handle), tree.get(&handle).copied());
                prop_assert_eq!(map.len(), tree.len());
            }
            for (h, s) in tree {
                prop_assert_eq!(map.get(h), Some(s));
            }
        }
    }
}
