//! The packets one link shed, remembered so that a repair of one is not sent into it.
//!
//! Rate adaptation drops what a link cannot carry; a receiver then asks for the gap (the
//! overlays repair keyframes and the base layer, which a decoder needs), and the repair comes
//! back through the same link. On a link narrower than what it must carry the repair pushes out
//! the next packets, which are asked for in turn: a storm that crowds out current media. A link
//! that remembers what it shed refuses such a repair; a repair through another link, or of a
//! packet lost elsewhere, still goes. The runtime's per-link pacer and the simulator's shaper
//! both keep one per outgoing link.

use std::collections::{BTreeSet, VecDeque};

/// Packets remembered by default: a few seconds of a stream's packets, longer than repairs are
/// asked for.
pub const SHED_REMEMBERED: usize = 4096;

/// A bounded memory of the packets one link shed, as (flow, sequence number).
#[derive(Clone, Debug)]
pub struct ShedPackets {
    limit: usize,
    shed: BTreeSet<(u64, u64)>,
    order: VecDeque<(u64, u64)>,
    refused: u64,
}

impl Default for ShedPackets {
    fn default() -> Self {
        Self::new(SHED_REMEMBERED)
    }
}

impl ShedPackets {
    /// A memory of at most `limit` packets (the oldest forgotten first).
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            shed: BTreeSet::new(),
            order: VecDeque::new(),
            refused: 0,
        }
    }

    /// Notes that the link shed `packet`.
    pub fn remember(&mut self, packet: (u64, u64)) {
        if self.limit == 0 {
            return;
        }
        if self.shed.insert(packet) {
            self.order.push_back(packet);
        }
        while self.order.len() > self.limit {
            if let Some(old) = self.order.pop_front() {
                self.shed.remove(&old);
            }
        }
    }

    /// Whether `packet` is one the link shed (`None`: not a numbered packet, never refused); a
    /// refusal is counted.
    pub fn refuses(&mut self, packet: Option<(u64, u64)>) -> bool {
        let refused = packet.is_some_and(|p| self.shed.contains(&p));
        if refused {
            self.refused += 1;
        }
        refused
    }

    /// Repairs refused so far.
    pub fn refused(&self) -> u64 {
        self.refused
    }

    /// Packets remembered now.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repair_of_a_shed_packet_is_refused_and_the_oldest_are_forgotten() {
        let mut shed = ShedPackets::new(3);
        shed.remember((1, 5));
        assert!(shed.refuses(Some((1, 5))));
        assert!(!shed.refuses(Some((1, 6))), "another packet of the flow");
        assert!(
            !shed.refuses(Some((2, 5))),
            "the same number in another flow"
        );
        assert!(!shed.refuses(None), "not a numbered packet");
        assert_eq!(shed.refused(), 1);
        shed.remember((1, 5));
        assert_eq!(shed.len(), 1, "a packet shed twice is remembered once");
        for seq in 0..3 {
            shed.remember((3, seq));
        }
        assert!(!shed.refuses(Some((1, 5))), "forgotten");
        assert!(shed.refuses(Some((3, 0))));
        assert_eq!(shed.len(), 3);
        let mut none = ShedPackets::new(0);
        none.remember((1, 1));
        assert!(none.is_empty() && !none.refuses(Some((1, 1))));
    }
}
