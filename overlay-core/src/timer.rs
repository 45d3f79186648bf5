//! A table of named deadlines, so a protocol can answer `poll_timeout` in one lookup.

use std::collections::{BTreeMap, BTreeSet};

use crate::Time;

/// Deadlines keyed by `K` (an enum of timer kinds, possibly carrying a peer), at most one per key.
///
/// Setting a key again moves its deadline. [`TimerTable::next_deadline`] and
/// [`TimerTable::pop_expired`] cost `O(log n)`, and iteration order is fixed (time, then key), so
/// a protocol that handles expired timers in a loop is deterministic.
#[derive(Debug, Clone)]
pub struct TimerTable<K: Ord + Copy> {
    by_key: BTreeMap<K, Time>,
    by_time: BTreeSet<(Time, K)>,
}

impl<K: Ord + Copy> Default for TimerTable<K> {
    fn default() -> Self {
        Self {
            by_key: BTreeMap::new(),
            by_time: BTreeSet::new(),
        }
    }
}

impl<K: Ord + Copy> TimerTable<K> {
    /// Arm `key` to fire at `at`, replacing any earlier deadline for the same key.
    pub fn set(&mut self, key: K, at: Time) {
        if let Some(old) = self.by_key.insert(key, at) {
            self.by_time.remove(&(old, key));
        }
        self.by_time.insert((at, key));
    }

    /// Disarm `key`; returns its deadline if it was armed.
    pub fn cancel(&mut self, key: K) -> Option<Time> {
        let at = self.by_key.remove(&key)?;
        self.by_time.remove(&(at, key));
        Some(at)
    }

    /// The deadline of `key`, if armed.
    pub fn get(&self, key: K) -> Option<Time> {
        self.by_key.get(&key).copied()
    }

    /// Whether `key` is armed.
    pub fn is_armed(&self, key: K) -> bool {
        self.by_key.contains_key(&key)
    }

    /// The earliest deadline of all keys.
    pub fn next_deadline(&self) -> Option<Time> {
        self.by_time.first().map(|&(at, _)| at)
    }

    /// Disarm and return the earliest key whose deadline is at or before `now`.
    pub fn pop_expired(&mut self, now: Time) -> Option<K> {
        let &(at, key) = self.by_time.first()?;
        if at > now {
            return None;
        }
        self.by_time.pop_first();
        self.by_key.remove(&key);
        Some(key)
    }

    /// Disarm every key that `keep` rejects.
    pub fn retain(&mut self, mut keep: impl FnMut(&K) -> bool) {
        let by_time = &mut self.by_time;
        self.by_key.retain(|key, at| {
            let kept = keep(key);
            if !kept {
                by_time.remove(&(*at, *key));
            }
            kept
        });
    }

    /// Number of armed keys.
    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    /// Whether no key is armed.
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
    enum Kind {
        Refresh,
        Probe(u8),
    }

    #[test]
    fn fires_in_deadline_order_and_moves_on_reset() {
        let mut timers = TimerTable::default();
        timers.set(Kind::Refresh, Time::from_secs(5));
        timers.set(Kind::Probe(1), Time::from_secs(3));
        timers.set(Kind::Probe(2), Time::from_secs(4));
        timers.set(Kind::Probe(1), Time::from_secs(6));
        assert_eq!(timers.next_deadline(), Some(Time::from_secs(4)));
        assert_eq!(timers.pop_expired(Time::from_secs(3)), None);
        assert_eq!(
            timers.pop_expired(Time::from_secs(10)),
            Some(Kind::Probe(2))
        );
        assert_eq!(timers.pop_expired(Time::from_secs(10)), Some(Kind::Refresh));
        assert_eq!(timers.cancel(Kind::Probe(1)), Some(Time::from_secs(6)));
        assert!(timers.is_empty());
        assert_eq!(timers.next_deadline(), None);
    }

    proptest! {
        /// Whatever the sequence of sets and cancels, the table agrees with a plain map.
        #[test]
        fn agrees_with_a_plain_map(ops in proptest::collection::vec((0u8..8, proptest::option::of(0u64..100)), 0..200)) {
            let mut timers = TimerTable::default();
            let mut model = BTreeMap::new();
            for (key, at) in ops {
                match at {
                    Some(at) => { timers.set(key, Time::from_secs(at)); model.insert(key, Time::from_secs(at)); }
                    None => { prop_assert_eq!(timers.cancel(key), model.remove(&key)); }
                }
                prop_assert_eq!(timers.len(), model.len());
                prop_assert_eq!(timers.next_deadline(), model.values().min().copied());
            }
            let mut last = Time::ZERO;
            while let Some(key) = timers.pop_expired(Time::MAX) {
                let at = model.remove(&key).unwrap();
                prop_assert!(at >= last);
                last = at;
            }
            prop_assert!(model.is_empty());
        }
    }
}
