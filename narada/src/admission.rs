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
//! keep their parent. Trees form before the streams start, so a member can find itself over
//! its upload once they do: it then asks its farthest children, as many as bring it back
//! within, to move too (`shed`); a child with no other parent stays.
//!
//! Full is not all or nothing: with it a member tells the bandwidth level a stream through it
//! would get ([`UploadRoom::level`]: its upload shared by one more child stream, or by the
//! ones it has when it sheds), so among full relays routing prefers the one with the most
//! upload to spare, and a member whose upload cannot carry one stream is the last resort.

use overlay_core::Time;

use std::collections::{BTreeMap, BTreeSet};

use crate::Message;
use crate::data::SourceTrees;
use crate::members::Slot;
use crate::message::UploadRoom;
use crate::node::{Narada, Trees};

impl Narada {
    /// The child streams this member forwards now, per child: for each source heard from
    /// lately, the neighbours that route to it through this member.
    fn child_streams(&self, now: Time) -> BTreeMap<Slot, usize> {
        let trees = Trees(&self.core);
        let mut per_child = BTreeMap::new();
        for source in self.data.active_sources(now) {
            for child in trees.downstream(source) {
                *per_child.entry(child).or_insert(0) += 1;
            }
        }
        per_child
    }

    /// Compare the child streams with what the upload carries, and tell each neighbour when
    /// what it should know changes: whether this member is full, and whether it should move
    /// away although it is a child (the member is over its upload, and this child is among
    /// the farthest whose streams bring it back within).
    pub(crate) fn refresh_upload_room(&mut self, now: Time) {
        let config = &self.core.config;
        let (true, Some(slots)) = (config.routing.metric.uses_bandwidth(), config.child_slots())
        else {
            return;
        };
        let per_child = self.child_streams(now);
        let used: usize = per_child.values().sum();
        let full = used >= slots;
        let mut shed = BTreeSet::new();
        if used > slots {
            // Farthest first: they are the likeliest to have a nearer parent with room.
            let mut children: Vec<(u32, Slot, usize)> = per_child
                .iter()
                .map(|(&c, &n)| {
                    let far = self.core.neighbours.get(&c).map_or(0, |nb| nb.cost_us());
                    (far, c, n)
                })
                .collect();
            children.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
            let mut excess = used - slots;
            for (_, child, streams) in children {
                if excess == 0 {
                    break;
                }
                shed.insert(child);
                excess = excess.saturating_sub(streams);
            }
        }
        self.core.upload_full = full;
        self.core.upload_used = used;
        let mut news = Vec::new();
        for (&n, nb) in &mut self.core.neighbours {
            let shed = shed.contains(&n);
            let room = if full {
                let streams = if shed { used } else { used + 1 };
                UploadRoom {
                    full,
                    shed,
                    level: config.stream_level(streams),
                }
            } else {
                UploadRoom::default()
            };
            if nb.told_room != room {
                nb.told_room = room;
                news.push((n, room));
            }
        }
        for (n, room) in news {
            self.core.send(n, Message::Upload(room));
        }
    }
}
