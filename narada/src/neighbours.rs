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

    /// Remove `slot`.
    pub(crate) fn remove(&mut self, slot: Slot) {
        if let Some(w) = self.words.get_mut((slot / 64) as usize) {
            *w &= !(1 << (slot % 64));
        }
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
    pub(crate) theirs: BTreeMap<Handle, Slot>,
    /// Member-table version up to which this neighbour has been sent membership news.
    pub(crate) sent_version: u64,
    /// Pings lost in a row with nothing else heard from the neighbour meanwhile.
    pub(crate) lost_pings: u32,
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
            theirs: BTreeMap::new(),
            sent_version: 0,
            lost_pings: 0,
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
}
