//! What the simulator counts of the traffic it carries: messages and bytes per class, per
//! member and per kind of message, and what it dropped and why.

use std::collections::BTreeMap;

use crate::TrafficClass;

/// Messages and bytes counted per traffic class.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrafficStats {
    /// Messages sent, per class (indexed as [`TrafficClass::ALL`]).
    pub messages: [u64; 3],
    /// Bytes sent, per class.
    pub bytes: [u64; 3],
    /// Bytes sent per member, per class.
    pub member_bytes: Vec<[u64; 3]>,
    /// Messages dropped: addressed to an unknown or crashed member.
    pub dropped: u64,
    /// Messages dropped because a network partition separated sender and receiver.
    pub partitioned: u64,
    /// Data packets dropped because their link's share was used up (lowest priority first).
    pub shaped: u64,
    /// Messages lost because their sender or receiver was silenced (a fault).
    pub silenced: u64,
    /// Messages lost to the drop filter (a fault).
    pub filtered: u64,
    /// Bytes of active bandwidth probes (also counted as probe traffic).
    pub bandwidth_probe_bytes: u64,
    /// Bytes sent per class and kind of message
    /// ([`WireMessage::kind_name`](crate::wire::WireMessage::kind_name); active bandwidth
    /// probes as `bandwidth-probe`).
    pub by_kind: BTreeMap<(TrafficClass, &'static str), u64>,
}

impl TrafficStats {
    /// Bytes of one class.
    pub fn bytes_of(&self, class: TrafficClass) -> u64 {
        self.bytes[class_index(class)]
    }

    pub(super) fn count(
        &mut self,
        member: usize,
        class: TrafficClass,
        kind: &'static str,
        bytes: u64,
    ) {
        *self.by_kind.entry((class, kind)).or_default() += bytes;
        let c = class_index(class);
        self.messages[c] += 1;
        self.bytes[c] += bytes;
        self.member_bytes[member][c] += bytes;
    }
}

fn class_index(class: TrafficClass) -> usize {
    match class {
        TrafficClass::Control => 0,
        TrafficClass::Probe => 1,
        TrafficClass::Data => 2,
    }
}
