//! The event queue: ordered by time, then by insertion, so equal-time events keep their order and
//! a run is reproducible.
//!
//! The heap holds only keys (time, insertion number, where the event is); the events wait in a
//! slab whose free places are reused. A heap moves its entries at every push and pop, and a
//! protocol's message can be a hundred bytes (Overcast's is 96): with 24-byte keys, a large
//! run's queue moves a fifth of the bytes it did with the events inline.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use crate::Time;

#[derive(Clone, Copy)]
struct Key {
    at: Time,
    seq: u64,
    /// Index of the event in [`EventQueue::events`].
    place: u32,
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl Eq for Key {}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Key {
    /// Reversed, so the max-heap pops the earliest (time, insertion) first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// A min-queue of events keyed by (time, insertion order).
pub struct EventQueue<E> {
    heap: BinaryHeap<Key>,
    /// The pending events, at the places their keys name; `None` at free places.
    events: Vec<Option<E>>,
    /// Places of `events` free for reuse.
    free: Vec<u32>,
    next_seq: u64,
}

impl<E> Default for EventQueue<E> {
    fn default() -> Self {
        Self {
            heap: BinaryHeap::new(),
            events: Vec::new(),
            free: Vec::new(),
            next_seq: 0,
        }
    }
}

impl<E> std::fmt::Debug for EventQueue<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventQueue")
            .field("pending", &self.heap.len())
            .field("next_seq", &self.next_seq)
            .finish()
    }
}

impl<E> EventQueue<E> {
    /// Schedule `event` at `at`.
    ///
    /// # Panics
    /// With more than `u32::MAX` events pending at once (far beyond any memory here).
    pub fn push(&mut self, at: Time, event: E) {
        let place = match self.free.pop() {
            Some(place) => {
                self.events[place as usize] = Some(event);
                place
            }
            None => {
                let place =
                    u32::try_from(self.events.len()).expect("fewer than 2^32 pending events");
                self.events.push(Some(event));
                place
            }
        };
        self.heap.push(Key {
            at,
            seq: self.next_seq,
            place,
        });
        self.next_seq += 1;
    }

    /// The time of the earliest event.
    pub fn peek_time(&self) -> Option<Time> {
        self.heap.peek().map(|k| k.at)
    }

    /// Remove and return the earliest event.
    pub fn pop(&mut self) -> Option<(Time, E)> {
        let key = self.heap.pop()?;
        let event = self.events[key.place as usize].take()?;
        self.free.push(key.place);
        Some((key.at, event))
    }

    /// Number of pending events.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Events come out sorted by time, and equal times in insertion order.
        #[test]
        fn pops_in_time_then_insertion_order(times in proptest::collection::vec(0u64..20, 0..200)) {
            let mut q = EventQueue::default();
            for (i, &t) in times.iter().enumerate() {
                q.push(Time::from_micros(t), i);
            }
            let mut expected: Vec<(u64, usize)> = times.iter().copied().zip(0..).collect();
            expected.sort();
            let got: Vec<(u64, usize)> = std::iter::from_fn(|| q.pop()).map(|(t, i)| (t.as_micros(), i)).collect();
            prop_assert_eq!(got, expected);
        }

        /// Pushes and pops interleaved: every pop gives the earliest (time, insertion) pending,
        /// as a sorted set of the pending keys says.
        #[test]
        fn interleaved_pops_take_the_earliest(ops in proptest::collection::vec(proptest::option::of(0u64..50), 0..400)) {
            let mut q = EventQueue::default();
            let mut model = std::collections::BTreeSet::new();
            for (i, op) in ops.into_iter().enumerate() {
                match op {
                    Some(t) => {
                        q.push(Time::from_micros(t), i);
                        model.insert((t, i));
                    }
                    None => {
                        let got = q.pop().map(|(t, i)| (t.as_micros(), i));
                        prop_assert_eq!(got, model.pop_first());
                    }
                }
                prop_assert_eq!(q.len(), model.len());
                prop_assert_eq!(q.peek_time().map(Time::as_micros), model.first().map(|&(t, _)| t));
            }
        }
    }
}
