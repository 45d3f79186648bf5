//! Keyframe requests up a source's tree: a receiver whose decoder lost a frame (or is just
//! starting) asks the source for a keyframe. Each member sends the request to its next hop
//! towards the source, at most one per source and stream every [`KEYFRAME_REQUEST_GAP`], so
//! the requests of a whole subtree merge into one on each link and the source is asked a few
//! times a second at most however many receivers lost the same packet (the application at the
//! source merges further: a browser's large picture at most once a second).

use std::collections::BTreeMap;
use std::time::Duration;

use overlay_core::{NodeId, Time};

use crate::data::SourceTrees;
use crate::members::Slot;
use crate::message::Message;
use crate::node::{Event, Narada, Trees};

/// A request for the same source and stream goes on at most this often from one member (short
/// enough that a receiver asking again, after a browser ignored a request that came just after
/// its last keyframe, is not merged away).
pub const KEYFRAME_REQUEST_GAP: Duration = Duration::from_millis(300);

/// Requests remembered at most (sources × streams asked about within the gap).
const MAX_REMEMBERED: usize = 4096;

/// When each (source, stream) was last asked for here.
#[derive(Clone, Debug, Default)]
pub(crate) struct KeyframeRequests {
    last: BTreeMap<(Slot, u32), Time>,
}

impl KeyframeRequests {
    /// Whether a request for `stream` of `source` goes on now (and, if so, notes it).
    fn admit(&mut self, now: Time, source: Slot, stream: u32) -> bool {
        let fresh = |t: &Time| now.saturating_since(*t) < KEYFRAME_REQUEST_GAP;
        if self.last.get(&(source, stream)).is_some_and(fresh) {
            return false;
        }
        if self.last.len() >= MAX_REMEMBERED {
            self.last.retain(|_, t| fresh(t));
            if self.last.len() >= MAX_REMEMBERED {
                return false;
            }
        }
        self.last.insert((source, stream), now);
        true
    }
}

impl Narada {
    /// The application here wants a keyframe of `stream` from `source`.
    pub(crate) fn request_keyframe(&mut self, now: Time, source: NodeId, stream: u32) {
        if source == self.core.me() {
            self.core.outbox.emit(Event::KeyframeRequested { stream });
            return;
        }
        if let Some(slot) = self.core.members.slot_of(&source) {
            self.forward_keyframe_request(now, slot, stream);
        }
    }

    /// A request for `stream` of the source at `source`, from the application or from a
    /// neighbour below: answered here if this member is the source, else passed up its tree
    /// unless one went up within the gap.
    pub(crate) fn forward_keyframe_request(&mut self, now: Time, source: Slot, stream: u32) {
        if self.core.members.id_of(source) == Some(self.core.me()) {
            self.core.outbox.emit(Event::KeyframeRequested { stream });
            return;
        }
        if !self.keyframes.admit(now, source, stream) {
            self.core.stats.keyframe_requests_merged += 1;
            return;
        }
        let Some(up) = Trees(&self.core).upstream(source) else {
            return;
        };
        self.core.ensure_introduced(up, source);
        self.core.stats.keyframe_requests_sent += 1;
        self.core
            .send(up, Message::KeyframeRequest { source, stream });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_for_one_stream_merge_within_the_gap_and_the_table_is_bounded() {
        let mut r = KeyframeRequests::default();
        let t = |ms: u64| Time::from_millis(ms);
        assert!(r.admit(t(0), 3, 0));
        assert!(!r.admit(t(200), 3, 0));
        assert!(r.admit(t(200), 3, 2), "another stream of the source");
        assert!(r.admit(t(300), 3, 0));
        for s in 0..(MAX_REMEMBERED as u32 + 10) {
            r.admit(t(2000), 4, s);
        }
        assert!(r.last.len() <= MAX_REMEMBERED);
        assert!(r.admit(t(3500), 5, 0), "stale entries make room");
    }
}
