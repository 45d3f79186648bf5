//! The nodes this node found nearest: every measurement (join rounds and re-evaluations alike)
//! teaches it a round-trip time, and it keeps the few nearest. Each re-evaluation asks one of
//! them for its own list (nodes near a near node are likely near too), a new nearest first and
//! then the others in turn, and has the root report the bandwidth of a few of them beside its
//! sample, so a node walks towards its neighbourhood a few hops of the metric at a time instead
//! of waiting for a random draw from the whole table to land there.

use std::collections::VecDeque;
use std::time::Duration;

use overlay_core::NodeId;

/// How many nearest measured nodes a node remembers (and names when asked).
pub(super) const NEAR_KEPT: usize = 6;

/// How many nodes heard of from a neighbour, not yet measured, a node keeps.
const HEARD_KEPT: usize = 8;

/// The nodes a node found nearest, and those it heard of from them.
#[derive(Clone, Debug, Default)]
pub(super) struct Near {
    /// Measured nodes, nearest first (at most [`NEAR_KEPT`]).
    known: Vec<(NodeId, Duration)>,
    /// Nodes a near node named that this node has not measured yet, oldest first.
    heard: VecDeque<NodeId>,
    /// Measured nodes asked for their lists since the last time all of them had been.
    asked: Vec<NodeId>,
}

impl Near {
    /// A measurement of `peer`: keep it if it is among the nearest.
    pub(super) fn learn(&mut self, peer: NodeId, rtt: Duration) {
        self.heard.retain(|h| *h != peer);
        self.known.retain(|(n, _)| *n != peer);
        let at = self
            .known
            .iter()
            .position(|&(n, r)| (r, n) > (rtt, peer))
            .unwrap_or(self.known.len());
        if at < NEAR_KEPT {
            self.known.insert(at, (peer, rtt));
            self.known.truncate(NEAR_KEPT);
        }
    }

    /// `peer` did not answer a measurement: forget it.
    pub(super) fn forget(&mut self, peer: &NodeId) {
        self.known.retain(|(n, _)| n != peer);
        self.heard.retain(|h| h != peer);
    }

    /// Nodes a near node named: remember the new ones (not `me`, not already measured).
    pub(super) fn hear(&mut self, me: NodeId, nodes: impl IntoIterator<Item = NodeId>) {
        for node in nodes.into_iter().take(NEAR_KEPT) {
            let known = self.known.iter().any(|(n, _)| *n == node);
            if node == me || known || self.heard.contains(&node) {
                continue;
            }
            if self.heard.len() == HEARD_KEPT {
                self.heard.pop_front();
            }
            self.heard.push_back(node);
        }
    }

    /// The nearest measured node that `usable` accepts: whom to ask for its neighbours.
    pub(super) fn nearest(&self, usable: impl Fn(&NodeId) -> bool) -> Option<NodeId> {
        self.known.iter().map(|(n, _)| *n).find(|n| usable(n))
    }

    /// Whom a re-evaluation asks for its neighbours: the nearest measured node that `usable`
    /// accepts, unless it was asked already, then each of the others once, nearest first,
    /// before starting over. A list changes slowly, so asking the same node every round mostly
    /// hears names already known; the next nearest know other parts of the neighbourhood.
    pub(super) fn next_to_ask(&mut self, usable: impl Fn(&NodeId) -> bool) -> Option<NodeId> {
        let known = &self.known;
        self.asked.retain(|a| known.iter().any(|(n, _)| n == a));
        let mut fresh = self.known.iter().map(|(n, _)| *n).filter(|n| usable(n));
        let pick = match fresh.clone().find(|n| !self.asked.contains(n)) {
            Some(node) => node,
            None => {
                self.asked.clear();
                fresh.next()?
            }
        };
        self.asked.push(pick);
        Some(pick)
    }

    /// Up to `count` nodes to measure this round: those heard of first (each handed out once),
    /// then the nearest measured ones again (their bandwidth may have changed), all accepted by
    /// `usable`.
    pub(super) fn candidates(
        &mut self,
        count: usize,
        usable: impl Fn(&NodeId) -> bool,
    ) -> Vec<NodeId> {
        let mut picked = Vec::with_capacity(count);
        while picked.len() < count {
            let Some(node) = self.heard.pop_front() else {
                break;
            };
            if usable(&node) {
                picked.push(node);
            }
        }
        for (node, _) in &self.known {
            if picked.len() >= count {
                break;
            }
            if usable(node) && !picked.contains(node) {
                picked.push(*node);
            }
        }
        picked
    }

    /// The measured nodes, nearest first, other than `asker`: the answer to a neighbour.
    pub(super) fn list(&self, asker: NodeId) -> Vec<NodeId> {
        self.known
            .iter()
            .map(|(n, _)| *n)
            .filter(|n| *n != asker)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(b: u8) -> NodeId {
        NodeId::from_bytes([b; 32])
    }

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn keeps_the_nearest_and_updates_a_remeasured_node() {
        let mut near = Near::default();
        for i in 0..10u8 {
            near.learn(id(i), ms(100 - u64::from(i)));
        }
        assert_eq!(
            near.list(id(99)),
            vec![id(9), id(8), id(7), id(6), id(5), id(4)]
        );
        // Measured again, farther: it drops to the end (the others forgotten stay forgotten).
        near.learn(id(9), ms(200));
        assert_eq!(
            near.list(id(99)),
            vec![id(8), id(7), id(6), id(5), id(4), id(9)]
        );
        // A nearer newcomer pushes the farthest out.
        near.learn(id(20), ms(1));
        assert_eq!(
            near.list(id(99)),
            vec![id(20), id(8), id(7), id(6), id(5), id(4)]
        );
        near.forget(&id(8));
        assert_eq!(near.list(id(7)), vec![id(20), id(6), id(5), id(4)]);
    }

    #[test]
    fn heard_nodes_come_first_once_then_the_nearest_known() {
        let mut near = Near::default();
        near.learn(id(1), ms(5));
        near.learn(id(2), ms(7));
        near.hear(id(0), [id(0), id(1), id(3), id(4), id(3)]);
        let first = near.candidates(3, |n| *n != id(4));
        assert_eq!(
            first,
            vec![id(3), id(1), id(2)],
            "self, known and duplicates skipped"
        );
        let second = near.candidates(3, |_| true);
        assert_eq!(second, vec![id(1), id(2)], "heard ones are handed out once");
        assert_eq!(near.nearest(|n| *n != id(1)), Some(id(2)));
    }

    #[test]
    fn asks_a_new_nearest_first_then_each_other_once_then_starts_over() {
        let mut near = Near::default();
        near.learn(id(1), ms(5));
        near.learn(id(2), ms(7));
        near.learn(id(3), ms(9));
        let all = |_: &NodeId| true;
        assert_eq!(near.next_to_ask(all), Some(id(1)));
        assert_eq!(near.next_to_ask(all), Some(id(2)));
        // A nearer node is asked at once, then the walk goes on where it was.
        near.learn(id(4), ms(1));
        assert_eq!(near.next_to_ask(all), Some(id(4)));
        assert_eq!(near.next_to_ask(all), Some(id(3)));
        // Everyone asked: start over from the nearest, skipping what is not usable.
        assert_eq!(near.next_to_ask(|n| *n != id(4)), Some(id(1)));
        assert_eq!(near.next_to_ask(all), Some(id(4)));
        // A forgotten node leaves the record; nothing usable asks no one.
        near.forget(&id(2));
        assert_eq!(near.next_to_ask(all), Some(id(3)));
        assert_eq!(near.next_to_ask(|_| false), None);
    }

    #[test]
    fn heard_nodes_are_bounded() {
        let mut near = Near::default();
        for round in 0..10u8 {
            near.hear(id(0), (0..NEAR_KEPT as u8).map(|i| id(10 + round * 10 + i)));
        }
        assert_eq!(near.candidates(100, |_| true).len(), HEARD_KEPT);
    }
}
