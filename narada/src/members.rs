//! The member table: every member this member knows, its latest sequence number, when that last
//! advanced here, and whether it is alive, dead or gone.
//!
//! Each member is a *slot*: a small number in this member's numbering, used as its handle on the
//! wire (see [`crate::message`]). Slot 0 is this member. Slots are never reused, so a handle a
//! neighbour learned always means the same member; records of dead members are kept for
//! `dead_retention` (so a stale refresh cannot resurrect them) and then purged.

use std::collections::HashMap;

use overlay_core::{NodeId, Time};

use crate::message::Liveness;

/// A member's number in this member's table (and its handle on the wire).
pub type Slot = u32;

/// This member's own slot.
pub const SELF_SLOT: Slot = 0;

/// What this member believes of another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Named by a neighbour, but no sequence number heard yet.
    Unconfirmed,
    /// Alive.
    Alive,
    /// Declared dead.
    Dead,
    /// Left gracefully.
    Left,
}

/// One member's record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Its identity.
    pub id: NodeId,
    /// The highest sequence number heard.
    pub seq: u64,
    /// What it is believed to be.
    pub status: Status,
    /// When its sequence number last advanced here (or it was added).
    pub heard_at: Time,
    /// When its status last changed.
    pub status_since: Time,
    /// The table version at its last change, for sending deltas.
    pub version: u64,
    /// The neighbour the last change came from (not sent back to it).
    pub learned_from: Option<Slot>,
    /// Other neighbours that sent the same news since (not sent to them either: they hold
    /// it). Cleared at every change; at most [`ALSO_HEARD_MAX`].
    pub also_heard_from: Vec<Slot>,
}

/// Most neighbours remembered per member as holding its latest news (beyond the first).
pub const ALSO_HEARD_MAX: usize = 8;

/// What taking in a member entry did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Observed {
    /// Nothing: stale, or no news.
    Nothing,
    /// A member not known before, alive.
    Joined,
    /// A known member's sequence number advanced.
    Advanced,
    /// A member was reported dead or gone.
    Died,
    /// A member believed dead is alive after all (a higher sequence number).
    Revived,
    /// Somebody believes this member dead; it refuted that by raising its own number.
    Refuted,
}

/// The table.
#[derive(Clone, Debug)]
pub struct MemberTable {
    records: Vec<Option<Record>>,
    /// Whether each slot may appear in a usable route ([`MemberTable::is_routable`]), kept
    /// beside the records: routing asks it for every hop of every path it weighs, and a
    /// record is a cache line of its own.
    routable: Vec<bool>,
    /// Slots by id. Only looked up, never iterated, so the hash order cannot reach any
    /// output; every message asks it once, and a hash costs one probe where a B-tree of
    /// 32-byte keys costs a dozen comparisons.
    by_id: HashMap<NodeId, Slot>,
    version: u64,
    sorted_live: Option<Vec<Slot>>,
}

impl MemberTable {
    /// A table holding only this member, alive at sequence number 0.
    pub fn new(me: NodeId, now: Time) -> Self {
        let record = Record {
            id: me,
            seq: 0,
            status: Status::Alive,
            heard_at: now,
            status_since: now,
            version: 1,
            learned_from: None,
            also_heard_from: Vec::new(),
        };
        Self {
            records: vec![Some(record)],
            routable: vec![true],
            by_id: HashMap::from([(me, SELF_SLOT)]),
            version: 1,
            sorted_live: None,
        }
    }

    /// This member's id.
    pub fn me(&self) -> NodeId {
        self.record(SELF_SLOT)
            .map(|r| r.id)
            .unwrap_or(NodeId::from_bytes([0; 32]))
    }

    /// The record of `slot`, if it exists.
    pub fn record(&self, slot: Slot) -> Option<&Record> {
        self.records.get(slot as usize)?.as_ref()
    }

    /// The slot of `id`, if known.
    pub fn slot_of(&self, id: &NodeId) -> Option<Slot> {
        self.by_id.get(id).copied()
    }

    /// The id of `slot`.
    pub fn id_of(&self, slot: Slot) -> Option<NodeId> {
        self.record(slot).map(|r| r.id)
    }

    /// Whether `slot` is believed alive.
    pub fn is_alive(&self, slot: Slot) -> bool {
        self.record(slot).is_some_and(|r| r.status == Status::Alive)
    }

    /// Whether `slot` may appear in a usable route (alive or not yet confirmed).
    pub fn is_routable(&self, slot: Slot) -> bool {
        self.routable.get(slot as usize).copied().unwrap_or(false)
    }

    /// Bring `slot`'s entry of [`MemberTable::routable`] up to date with its record.
    fn sync_routable(&mut self, slot: Slot) {
        let routable = self.records.get(slot as usize).is_some_and(|r| {
            r.as_ref()
                .is_some_and(|r| matches!(r.status, Status::Alive | Status::Unconfirmed))
        });
        if let Some(entry) = self.routable.get_mut(slot as usize) {
            *entry = routable;
        }
    }

    /// The current table version (increases with every change).
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Number of slots ever allocated.
    pub fn slots(&self) -> usize {
        self.records.len()
    }

    /// Slots of existing records, ascending.
    pub fn existing(&self) -> impl Iterator<Item = (Slot, &Record)> + '_ {
        self.records
            .iter()
            .enumerate()
            .filter_map(|(s, r)| r.as_ref().map(|r| (s as Slot, r)))
    }

    /// Number of members believed alive, this member included: the group size estimate.
    pub fn alive_count(&self) -> usize {
        self.records
            .iter()
            .flatten()
            .filter(|r| r.status == Status::Alive)
            .count()
    }

    /// The slot for `id`, creating an unconfirmed record if it is new.
    pub fn intern(&mut self, id: NodeId, now: Time) -> Slot {
        if let Some(&slot) = self.by_id.get(&id) {
            return slot;
        }
        let slot = self.records.len() as Slot;
        self.records.push(Some(Record {
            id,
            seq: 0,
            status: Status::Unconfirmed,
            heard_at: now,
            status_since: now,
            version: self.version,
            learned_from: None,
            also_heard_from: Vec::new(),
        }));
        self.routable.push(true);
        self.by_id.insert(id, slot);
        slot
    }

    fn touch(&mut self, slot: Slot) {
        self.version += 1;
        let version = self.version;
        if let Some(Some(r)) = self.records.get_mut(slot as usize) {
            r.version = version;
            r.also_heard_from.clear();
        }
        self.sorted_live = None;
    }

    /// Take in `(seq, liveness)` for `slot`, heard from neighbour `from` (`None`: first hand).
    pub fn observe(
        &mut self,
        slot: Slot,
        seq: u64,
        liveness: Liveness,
        from: Option<Slot>,
        now: Time,
    ) -> Observed {
        let Some(Some(r)) = self.records.get_mut(slot as usize) else {
            return Observed::Nothing;
        };
        if slot == SELF_SLOT {
            if liveness != Liveness::Alive && seq >= r.seq {
                // A rumour at the last number cannot be outbid: leave it (saturating, so a
                // peer's u64::MAX is no panic).
                let Some(next) = seq.checked_add(1) else {
                    return Observed::Nothing;
                };
                r.seq = next;
                self.touch(SELF_SLOT);
                return Observed::Refuted;
            }
            return Observed::Nothing;
        }
        let new_status = match liveness {
            Liveness::Alive => Status::Alive,
            Liveness::Dead => Status::Dead,
            Liveness::Left => Status::Left,
        };
        let was = r.status;
        let newer = seq > r.seq || (was == Status::Unconfirmed && seq >= r.seq);
        // At the same number, a death or leave overrides life (it was declared at that number),
        // but life never overrides a death at the same number: only a higher number does.
        let same_but_ends = seq == r.seq && was == Status::Alive && new_status != Status::Alive;
        if !newer && !same_but_ends {
            // The same news again, from another neighbour: it need not be told.
            if seq == r.seq
                && new_status == was
                && let Some(n) = from
                && r.learned_from != Some(n)
                && !r.also_heard_from.contains(&n)
                && r.also_heard_from.len() < ALSO_HEARD_MAX
            {
                r.also_heard_from.push(n);
            }
            return Observed::Nothing;
        }
        r.seq = seq;
        r.learned_from = from;
        if newer {
            r.heard_at = now;
        }
        if new_status != was {
            r.status = new_status;
            r.status_since = now;
        }
        self.touch(slot);
        self.sync_routable(slot);
        match (was, new_status) {
            (Status::Unconfirmed, Status::Alive) => Observed::Joined,
            (Status::Alive, Status::Alive) => Observed::Advanced,
            (Status::Dead | Status::Left, Status::Alive) => Observed::Revived,
            (Status::Alive | Status::Unconfirmed, Status::Dead | Status::Left) => Observed::Died,
            _ => Observed::Advanced,
        }
    }

    /// Declare `slot` dead, first hand.
    pub fn declare_dead(&mut self, slot: Slot, now: Time) -> bool {
        if slot == SELF_SLOT {
            return false;
        }
        let Some(Some(r)) = self.records.get_mut(slot as usize) else {
            return false;
        };
        if matches!(r.status, Status::Dead | Status::Left) {
            return false;
        }
        r.status = Status::Dead;
        r.status_since = now;
        r.learned_from = None;
        self.touch(slot);
        self.sync_routable(slot);
        true
    }

    /// Raise this member's own sequence number (the heartbeat); returns the new number.
    pub fn bump_own(&mut self, now: Time) -> u64 {
        let Some(Some(r)) = self.records.get_mut(SELF_SLOT as usize) else {
            return 0;
        };
        r.seq = r.seq.saturating_add(1);
        r.heard_at = now;
        let seq = r.seq;
        self.touch(SELF_SLOT);
        seq
    }

    /// Mark this member as leaving; returns its final sequence number.
    pub fn leave_own(&mut self, now: Time) -> u64 {
        let seq = self.bump_own(now);
        if let Some(Some(r)) = self.records.get_mut(SELF_SLOT as usize) {
            r.status = Status::Left;
            r.status_since = now;
        }
        self.sync_routable(SELF_SLOT);
        seq
    }

    /// Forget dead and departed members older than `retention`; returns their slots.
    pub fn purge(&mut self, now: Time, retention: std::time::Duration) -> Vec<Slot> {
        let mut purged = Vec::new();
        for (slot, entry) in self.records.iter_mut().enumerate().skip(1) {
            let expired = entry.as_ref().is_some_and(|r| {
                matches!(r.status, Status::Dead | Status::Left)
                    && now.saturating_since(r.status_since) >= retention
            });
            if expired {
                if let Some(r) = entry.take() {
                    self.by_id.remove(&r.id);
                }
                if let Some(routable) = self.routable.get_mut(slot) {
                    *routable = false;
                }
                purged.push(slot as Slot);
            }
        }
        if !purged.is_empty() {
            self.sorted_live = None;
        }
        purged
    }

    /// Live members (this one included), sorted by id: the order of digest-matched tables.
    pub fn sorted_live(&mut self) -> &[Slot] {
        let records = &self.records;
        self.sorted_live.get_or_insert_with(|| {
            let mut live: Vec<(NodeId, Slot)> = records
                .iter()
                .enumerate()
                .filter_map(|(s, r)| {
                    r.as_ref()
                        .filter(|r| r.status == Status::Alive)
                        .map(|r| (r.id, s as Slot))
                })
                .collect();
            live.sort_unstable();
            live.into_iter().map(|(_, s)| s).collect()
        })
    }

    /// FNV-1a digest of the sorted live ids: two members with the same view get the same digest.
    pub fn live_digest(&mut self) -> u64 {
        let slots = self.sorted_live().to_vec();
        let mut hash = crate::fnv::Fnv1a::new();
        for slot in slots {
            if let Some(r) = self.record(slot) {
                hash.eat(r.id.as_bytes());
            }
        }
        hash.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// One change to a member table, on one of a few members.
    #[derive(Clone, Debug)]
    enum Change {
        Intern(u64),
        Observe(u64, u64, Liveness),
        DeclareDead(u64),
        Purge(u64),
        LeaveOwn,
    }

    fn change() -> impl Strategy<Value = Change> {
        let liveness = prop_oneof![
            Just(Liveness::Alive),
            Just(Liveness::Dead),
            Just(Liveness::Left)
        ];
        prop_oneof![
            (0u64..6).prop_map(Change::Intern),
            (0u64..6, 0u64..4, liveness).prop_map(|(m, seq, l)| Change::Observe(m, seq, l)),
            (0u64..6).prop_map(Change::DeclareDead),
            (0u64..3).prop_map(Change::Purge),
            Just(Change::LeaveOwn),
        ]
    }

    proptest! {
        /// The routable flags kept beside the records always say what the records say.
        #[test]
        fn routable_flags_follow_the_records(changes in proptest::collection::vec(change(), 0..60)) {
            let mut t = MemberTable::new(NodeId::from_index(0), Time::ZERO);
            let mut now = Time::ZERO;
            for c in changes {
                now += std::time::Duration::from_secs(1);
                let slot_of = |t: &MemberTable, m: u64| t.slot_of(&NodeId::from_index(m));
                match c {
                    Change::Intern(m) => {
                        t.intern(NodeId::from_index(m), now);
                    }
                    Change::Observe(m, seq, l) => {
                        if let Some(s) = slot_of(&t, m) {
                            t.observe(s, seq, l, None, now);
                        }
                    }
                    Change::DeclareDead(m) => {
                        if let Some(s) = slot_of(&t, m) {
                            t.declare_dead(s, now);
                        }
                    }
                    Change::Purge(secs) => {
                        t.purge(now, std::time::Duration::from_secs(secs));
                    }
                    Change::LeaveOwn => {
                        t.leave_own(now);
                    }
                }
                for s in 0..t.slots() as Slot + 2 {
                    let from_record = t
                        .record(s)
                        .is_some_and(|r| matches!(r.status, Status::Alive | Status::Unconfirmed));
                    prop_assert_eq!(t.is_routable(s), from_record, "slot {}", s);
                }
            }
        }
    }

    #[test]
    fn sequence_numbers_at_the_top_of_the_range_are_no_panic() {
        let (mut t, b) = table();
        // A rumour that this member died at the last number: it cannot be outbid.
        assert_eq!(
            t.observe(SELF_SLOT, u64::MAX, Liveness::Dead, Some(b), Time::ZERO),
            Observed::Nothing
        );
        assert_eq!(
            t.observe(SELF_SLOT, u64::MAX - 1, Liveness::Dead, Some(b), Time::ZERO),
            Observed::Refuted
        );
        assert_eq!(t.bump_own(Time::ZERO), u64::MAX);
        assert_eq!(t.bump_own(Time::ZERO), u64::MAX);
        assert_eq!(
            t.observe(b, u64::MAX, Liveness::Alive, None, Time::ZERO),
            Observed::Joined
        );
    }

    fn table() -> (MemberTable, Slot) {
        let mut t = MemberTable::new(NodeId::from_index(0), Time::ZERO);
        let b = t.intern(NodeId::from_index(1), Time::ZERO);
        (t, b)
    }

    #[test]
    fn sequence_numbers_only_move_forward() {
        let (mut t, b) = table();
        let now = Time::from_secs(1);
        assert_eq!(
            t.observe(b, 5, Liveness::Alive, Some(3), now),
            Observed::Joined
        );
        assert_eq!(
            t.observe(b, 4, Liveness::Alive, None, now),
            Observed::Nothing
        );
        assert_eq!(
            t.observe(b, 5, Liveness::Alive, None, now),
            Observed::Nothing
        );
        assert_eq!(
            t.observe(b, 6, Liveness::Alive, None, now),
            Observed::Advanced
        );
        assert_eq!(t.record(b).unwrap().seq, 6);
        assert_eq!(t.alive_count(), 2);
    }

    #[test]
    fn the_dead_stay_dead_until_a_newer_number() {
        let (mut t, b) = table();
        t.observe(b, 5, Liveness::Alive, None, Time::ZERO);
        assert_eq!(
            t.observe(b, 5, Liveness::Dead, None, Time::ZERO),
            Observed::Died
        );
        // A stale refresh at the same or an older number cannot resurrect it.
        assert_eq!(
            t.observe(b, 5, Liveness::Alive, None, Time::ZERO),
            Observed::Nothing
        );
        assert_eq!(
            t.observe(b, 3, Liveness::Alive, None, Time::ZERO),
            Observed::Nothing
        );
        assert_eq!(
            t.observe(b, 6, Liveness::Alive, None, Time::ZERO),
            Observed::Revived
        );
        assert!(t.declare_dead(b, Time::from_secs(1)));
        assert!(!t.declare_dead(b, Time::from_secs(1)));
        assert_eq!(
            t.purge(Time::from_secs(100), std::time::Duration::from_secs(300)),
            Vec::<Slot>::new()
        );
        assert_eq!(
            t.purge(Time::from_secs(302), std::time::Duration::from_secs(300)),
            vec![b]
        );
        assert_eq!(t.slot_of(&NodeId::from_index(1)), None);
        // A new slot if it ever comes back: handles are never reused.
        assert_eq!(t.intern(NodeId::from_index(1), Time::ZERO), 2);
    }

    #[test]
    fn a_member_refutes_its_own_death() {
        let (mut t, _) = table();
        t.bump_own(Time::ZERO);
        assert_eq!(
            t.observe(SELF_SLOT, 1, Liveness::Dead, None, Time::ZERO),
            Observed::Refuted
        );
        assert_eq!(t.record(SELF_SLOT).unwrap().seq, 2);
        assert_eq!(
            t.observe(SELF_SLOT, 9, Liveness::Alive, None, Time::ZERO),
            Observed::Nothing
        );
    }

    #[test]
    fn digests_agree_on_equal_views() {
        let (mut a, b) = table();
        a.observe(b, 1, Liveness::Alive, None, Time::ZERO);
        let mut c = MemberTable::new(NodeId::from_index(1), Time::ZERO);
        let x = c.intern(NodeId::from_index(0), Time::ZERO);
        c.observe(x, 1, Liveness::Alive, None, Time::ZERO);
        assert_eq!(a.live_digest(), c.live_digest());
        assert_eq!(a.sorted_live().len(), 2);
        a.declare_dead(b, Time::ZERO);
        assert_ne!(a.live_digest(), c.live_digest());
    }

    #[test]
    fn neighbours_that_sent_the_same_news_are_remembered_until_it_changes() {
        let (mut t, b) = table();
        let (n1, n2, n3) = (
            t.intern(NodeId::from_index(2), Time::ZERO),
            t.intern(NodeId::from_index(3), Time::ZERO),
            t.intern(NodeId::from_index(4), Time::ZERO),
        );
        let heard = |t: &MemberTable| {
            let r = t.record(b).unwrap();
            (r.learned_from, r.also_heard_from.clone())
        };
        t.observe(b, 5, Liveness::Alive, Some(n1), Time::ZERO);
        t.observe(b, 5, Liveness::Alive, Some(n2), Time::ZERO);
        t.observe(b, 5, Liveness::Alive, Some(n2), Time::ZERO);
        t.observe(b, 5, Liveness::Alive, Some(n1), Time::ZERO);
        // Older news says nothing of what a neighbour holds now.
        t.observe(b, 4, Liveness::Alive, Some(n3), Time::ZERO);
        assert_eq!(heard(&t), (Some(n1), vec![n2]));
        // A death at the same number is news: nobody is known to hold it yet but its teller.
        t.observe(b, 5, Liveness::Dead, Some(n3), Time::ZERO);
        assert_eq!(heard(&t), (Some(n3), vec![]));
        t.observe(b, 6, Liveness::Alive, Some(n2), Time::ZERO);
        t.observe(b, 6, Liveness::Alive, Some(n1), Time::ZERO);
        assert_eq!(heard(&t), (Some(n2), vec![n1]));
        t.declare_dead(b, Time::ZERO);
        assert_eq!(heard(&t), (None, vec![]));
    }
}
