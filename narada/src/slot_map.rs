//! A map keyed by member slot, stored as a vector indexed by slot.
//!
//! Slots are small numbers the member table hands out in order and never beyond its bound
//! ([`crate::MembershipConfig::max_table_entries`]), so a table with an entry for most members
//! (a neighbour's routes, this member's routes) is cheaper as a vector than as a search tree:
//! a lookup is one index, not a walk of several nodes. Iteration goes in slot order, as a
//! `BTreeMap<Slot, V>`'s does, so code that replaced one sees the same order.

use crate::members::Slot;

/// Values by slot, in slot order.
#[derive(Clone, Debug)]
pub(crate) struct SlotMap<V> {
    items: Vec<Option<V>>,
}

impl<V> Default for SlotMap<V> {
    fn default() -> Self {
        Self { items: Vec::new() }
    }
}

impl<V> SlotMap<V> {
    /// The value at `slot`.
    pub(crate) fn get(&self, slot: Slot) -> Option<&V> {
        self.items.get(slot as usize)?.as_ref()
    }

    /// The value at `slot`, to change.
    pub(crate) fn get_mut(&mut self, slot: Slot) -> Option<&mut V> {
        self.items.get_mut(slot as usize)?.as_mut()
    }

    /// Whether `slot` has a value.
    pub(crate) fn contains_key(&self, slot: Slot) -> bool {
        self.get(slot).is_some()
    }

    /// Sets `slot`'s value; the one it replaces.
    pub(crate) fn insert(&mut self, slot: Slot, value: V) -> Option<V> {
        let at = slot as usize;
        if at >= self.items.len() {
            self.items.resize_with(at + 1, || None);
        }
        self.items[at].replace(value)
    }

    /// `slot`'s value, set by `make` first if it had none.
    pub(crate) fn get_or_insert_with(&mut self, slot: Slot, make: impl FnOnce() -> V) -> &mut V {
        if !self.contains_key(slot) {
            self.insert(slot, make());
        }
        self.items[slot as usize]
            .as_mut()
            .expect("a value was just set at this slot")
    }

    /// Takes `slot`'s value out.
    pub(crate) fn remove(&mut self, slot: Slot) -> Option<V> {
        let old = self.items.get_mut(slot as usize)?.take();
        if old.is_some() {
            while self.items.last().is_some_and(Option::is_none) {
                self.items.pop();
            }
        }
        old
    }

    /// Keeps only the values `keep` says yes to.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(Slot, &mut V) -> bool) {
        for (at, item) in self.items.iter_mut().enumerate() {
            if let Some(value) = item
                && !keep(at as Slot, value)
            {
                *item = None;
            }
        }
        while self.items.last().is_some_and(Option::is_none) {
            self.items.pop();
        }
    }

    /// Slots and values, in slot order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (Slot, &V)> + '_ {
        self.items
            .iter()
            .enumerate()
            .filter_map(|(at, item)| Some((at as Slot, item.as_ref()?)))
    }

    /// Slots with a value, in order.
    pub(crate) fn keys(&self) -> impl Iterator<Item = Slot> + '_ {
        self.iter().map(|(slot, _)| slot)
    }

    /// Values, in slot order.
    pub(crate) fn values(&self) -> impl Iterator<Item = &V> + '_ {
        self.items.iter().filter_map(Option::as_ref)
    }

    /// One past the highest slot with a value (0 when empty).
    pub(crate) fn end(&self) -> usize {
        self.items.len()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Any sequence of inserts, removals and retains leaves the same entries, in the same
        /// order, as a `BTreeMap` given the same sequence.
        #[test]
        fn a_slot_map_behaves_as_a_btree_map(
            ops in prop::collection::vec((0u8..4, 0u32..40, any::<u16>()), 0..200),
        ) {
            let mut dense = SlotMap::default();
            let mut tree = BTreeMap::new();
            for (op, slot, value) in ops {
                match op {
                    0 => prop_assert_eq!(dense.insert(slot, value), tree.insert(slot, value)),
                    1 => prop_assert_eq!(dense.remove(slot), tree.remove(&slot)),
                    2 => {
                        let v = dense.get_or_insert_with(slot, || value);
                        *v = v.wrapping_add(1);
                        let v = tree.entry(slot).or_insert(value);
                        *v = v.wrapping_add(1);
                    }
                    _ => {
                        dense.retain(|s, v| (s + u32::from(*v)) % 3 != 0);
                        tree.retain(|s, v| (s + u32::from(*v)) % 3 != 0);
                    }
                }
                prop_assert_eq!(dense.get(slot), tree.get(&slot));
                prop_assert!(dense.iter().map(|(s, v)| (s, *v)).eq(tree.iter().map(|(s, v)| (*s, *v))));
                prop_assert_eq!(dense.end(), tree.keys().last().map_or(0, |&s| s as usize + 1));
            }
        }
    }
}
