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
//! its upload once they do: it then asks children to move streams elsewhere, as many as bring
//! it back within; a child with no other parent stays. It sheds per stream, not per child:
//! first the streams it relays for other sources, farthest child first (`shed`), and only then
//! its own stream (`shed_own`), never from its nearest child, since every other path to its
//! own stream starts at one of its children. Shedding whole children asked a source on a slow
//! upload to drop every child of its own stream, so none could move and it stayed over.
//!
//! Full is not all or nothing: with it a member tells the bandwidth level a stream through it
//! would get ([`UploadRoom::level`]: the whole streams its upload carries shared by one more
//! child stream, or by the ones it has when it sheds), so among full relays routing prefers
//! the one with the most upload to spare, and a member whose upload cannot carry one stream is
//! the last resort.

use overlay_core::Time;

use std::collections::BTreeMap;

use crate::Message;
use crate::data::SourceTrees;
use crate::members::{SELF_SLOT, Slot};
use crate::message::UploadRoom;
use crate::node::{Narada, Trees};

impl Narada {
    /// The child streams this member forwards now, per child: for each source heard from
    /// lately, the neighbours that route to it through this member, counted apart for this
    /// member's own stream and for the streams it relays.
    fn child_streams(&self, now: Time) -> BTreeMap<Slot, ChildStreams> {
        let trees = Trees(&self.core);
        let mut per_child: BTreeMap<Slot, ChildStreams> = BTreeMap::new();
        for source in self.data.active_sources(now) {
            for child in trees.downstream(source) {
                let entry = per_child.entry(child).or_default();
                if source == SELF_SLOT {
                    entry.own = true;
                } else {
                    entry.relayed += 1;
                }
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
        let used: usize = per_child.values().map(ChildStreams::total).sum();
        let full = used >= slots;
        let far = |c: Slot| self.core.neighbours.get(&c).map_or(0, |nb| nb.cost_us());
        let shed = shed_order(&per_child, used.saturating_sub(slots), far);
        self.core.upload_full = full;
        self.core.upload_used = used;
        let mut news = Vec::new();
        for (&n, nb) in &mut self.core.neighbours {
            let told = shed.get(&n).copied().unwrap_or_default();
            let room = if full {
                let streams = if told.relayed || told.own {
                    used
                } else {
                    used + 1
                };
                UploadRoom {
                    full,
                    shed: told.relayed,
                    shed_own: told.own,
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

/// The streams one child takes from this member.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct ChildStreams {
    /// It takes this member's own stream.
    own: bool,
    /// The streams of other sources it takes through this member.
    relayed: usize,
}

impl ChildStreams {
    fn total(&self) -> usize {
        self.relayed + usize::from(self.own)
    }
}

/// What one child is asked to move.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Shed {
    /// The streams this member relays from other sources.
    relayed: bool,
    /// This member's own stream.
    own: bool,
}

/// Which children to ask to move which streams, `excess` child streams over the upload.
///
/// Relayed streams go first, farthest child first: a child can take them from another relay.
/// This member's own stream goes last, and never from its nearest child: every other path to
/// the stream starts at this member, so with all its children shed none could move, and the
/// member would stay over its upload. One kept child lets the others take the stream from it.
fn shed_order(
    per_child: &BTreeMap<Slot, ChildStreams>,
    mut excess: usize,
    far: impl Fn(Slot) -> u32,
) -> BTreeMap<Slot, Shed> {
    let mut shed: BTreeMap<Slot, Shed> = BTreeMap::new();
    if excess == 0 {
        return shed;
    }
    // Farthest first: they are the likeliest to have a nearer parent with room.
    let mut by_far: Vec<(u32, Slot)> = per_child.keys().map(|&c| (far(c), c)).collect();
    by_far.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for &(_, child) in &by_far {
        if excess == 0 {
            return shed;
        }
        let relayed = per_child[&child].relayed;
        if relayed > 0 {
            shed.entry(child).or_default().relayed = true;
            excess = excess.saturating_sub(relayed);
        }
    }
    let own: Vec<Slot> = by_far
        .iter()
        .map(|&(_, c)| c)
        .filter(|c| per_child[c].own)
        .collect();
    // All but the last, the nearest.
    for &child in own.iter().take(own.len().saturating_sub(1)) {
        if excess == 0 {
            break;
        }
        shed.entry(child).or_default().own = true;
        excess -= 1;
    }
    shed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn streams(own: bool, relayed: usize) -> ChildStreams {
        ChildStreams { own, relayed }
    }

    /// Children 1..=4, child c at c x 10 ms.
    fn far(c: Slot) -> u32 {
        c * 10_000
    }

    fn shed(relayed: bool, own: bool) -> Shed {
        Shed { relayed, own }
    }

    #[test]
    fn within_the_upload_nobody_is_shed() {
        let per_child = BTreeMap::from([(1, streams(true, 2)), (2, streams(false, 1))]);
        assert!(shed_order(&per_child, 0, far).is_empty());
    }

    #[test]
    fn relayed_streams_go_first_farthest_child_first() {
        let per_child = BTreeMap::from([
            (1, streams(true, 1)),
            (2, streams(false, 2)),
            (3, streams(true, 0)),
            (4, streams(false, 1)),
        ]);
        // One over: the farthest child with relayed streams (4), not its own stream's child 3.
        assert_eq!(
            shed_order(&per_child, 1, far),
            BTreeMap::from([(4, shed(true, false))])
        );
        // Two over: 4's one relayed stream and then 2's.
        assert_eq!(
            shed_order(&per_child, 2, far),
            BTreeMap::from([(2, shed(true, false)), (4, shed(true, false))])
        );
    }

    #[test]
    fn the_own_stream_goes_last_and_never_from_the_nearest_child() {
        let per_child = BTreeMap::from([
            (1, streams(true, 1)),
            (2, streams(true, 0)),
            (3, streams(true, 0)),
        ]);
        // Two over: 1's relayed stream, then the own stream from 3 (the farthest).
        assert_eq!(
            shed_order(&per_child, 2, far),
            BTreeMap::from([(1, shed(true, false)), (3, shed(false, true))])
        );
        // Far over: every relayed stream and the own stream from all but the nearest (1).
        assert_eq!(
            shed_order(&per_child, 9, far),
            BTreeMap::from([
                (1, shed(true, false)),
                (2, shed(false, true)),
                (3, shed(false, true)),
            ])
        );
    }
}
