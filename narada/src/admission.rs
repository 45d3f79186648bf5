//! Admission by upload, across every stream a member forwards.
//!
//! With several sources, one relay's upload is shared by all the trees it serves, but each
//! tree is chosen on its own: a relay whose links each measure wide enough for one stream can
//! collect children of four and starve them all. So a member with a known upload counts its
//! *child streams* (for every source heard from lately, the neighbours it forwards that
//! source to) against the streams its upload carries. Once none is left it tells its
//! neighbours it is full ([`crate::Message::Upload`]); to a neighbour not already its child
//! for a source, a route through it is then worth no bandwidth (see
//! [`crate::routing::LinkCost::full`]), so new children go elsewhere while the ones it has
//! keep their parent.

use overlay_core::Time;

use crate::Message;
use crate::data::SourceTrees;
use crate::node::{Narada, Trees};

impl Narada {
    /// The child streams this member forwards now: for each source heard from lately, the
    /// neighbours that route to it through this member.
    pub(crate) fn child_streams(&self, now: Time) -> usize {
        let trees = Trees(&self.core);
        self.data
            .active_sources(now)
            .map(|source| trees.downstream(source).len())
            .sum()
    }

    /// Compare the child streams with what the upload carries, and tell every neighbour when
    /// this member becomes full or has room again.
    pub(crate) fn refresh_upload_room(&mut self, now: Time) {
        let config = &self.core.config;
        let full = match (config.routing.metric.uses_bandwidth(), config.child_slots()) {
            (true, Some(slots)) => {
                std::env::var_os("ESM_NOADMIT").is_none() && self.child_streams(now) >= slots
            }
            _ => false,
        };
        if full == self.core.upload_full {
            return;
        }
        self.core.upload_full = full;
        let neighbours: Vec<_> = self.core.neighbours.keys().copied().collect();
        for n in neighbours {
            self.core.send(n, Message::Upload { full });
        }
    }
}
