//! Tests of the descendant table.

use super::*;

fn id(i: u64) -> NodeId {
    NodeId::from_index(i)
}

fn birth(node: u64, _parent: u64, seq: u32) -> CertBody {
    CertBody::Birth {
        node: id(node),
        seq,
        info: NodeInfo::default(),
    }
}

fn death(node: u64, seq: u32, cause: DeathCause) -> CertBody {
    CertBody::Death {
        node: id(node),
        seq,
        cause,
    }
}

#[test]
fn a_child_inventing_ids_fills_the_table_to_its_bound_and_no_further() {
    let mut t = DescendantTable::new(id(0));
    t.adopt(id(1), 1, NodeInfo::default());
    for n in 2..(MAX_ENTRIES as u64 + 100) {
        let _ = t.apply(id(1), &birth(n, 1, 1));
    }
    assert_eq!(t.len(), MAX_ENTRIES);
    assert_eq!(t.apply(id(1), &birth(u64::MAX, 1, 1)), Applied::TableFull);
    // A known node's news still goes in; a dead one makes room.
    assert_eq!(
        t.apply(id(1), &death(2, 2, DeathCause::Silent)),
        Applied::Changed
    );
    assert_eq!(t.apply(id(1), &birth(u64::MAX, 1, 1)), Applied::Changed);
}

#[test]
fn a_stale_listing_never_takes_a_direct_child_away() {
    // Node 3 is this node's child (seq 2); a node that moved under child 1 still lists 3 at
    // the same number (it has not heard 3 left it). 3 stays a direct child here, while a
    // deeper descendant listed at the same number is re-pointed (it moved with a subtree).
    let mut t = DescendantTable::new(id(0));
    t.adopt(id(1), 1, NodeInfo::default());
    t.adopt(id(3), 2, NodeInfo::default());
    assert_eq!(t.apply(id(1), &birth(3, 9, 2)), Applied::Stale);
    assert_eq!(t.via(&id(3)), Some(id(3)));
    assert_eq!(t.apply(id(3), &birth(7, 3, 1)), Applied::Changed);
    assert_eq!(t.apply(id(1), &birth(7, 9, 1)), Applied::Unchanged);
    assert_eq!(t.via(&id(7)), Some(id(1)));
}

#[test]
fn a_move_to_a_parent_on_the_same_side_keeps_the_node() {
    // 5 and 7 both hang under child 1; 5 moves under 7 and a node below did not know 7 was
    // on that side, so the departure reaches this table: 5 is still below, under child 1.
    let mut t = DescendantTable::new(id(0));
    t.adopt(id(1), 1, NodeInfo::default());
    t.apply(id(1), &birth(5, 1, 1));
    t.apply(id(1), &birth(7, 1, 1));
    let moved = DeathCause::Moved {
        new_parent: id(7),
        mover: id(5),
        meet: Some(id(1)),
    };
    assert_eq!(t.apply(id(1), &death(5, 1, moved)), Applied::Unchanged);
    assert!(t.get(&id(5)).unwrap().alive());
    assert_eq!(t.via(&id(5)), Some(id(1)));
}

#[test]
fn a_full_listing_revives_what_news_from_elsewhere_took_away() {
    let mut t = DescendantTable::new(id(0));
    t.adopt(id(1), 1, NodeInfo::default());
    t.apply(id(1), &birth(5, 1, 3));
    t.apply(id(1), &death(5, 3, DeathCause::Orphaned));
    assert!(!t.get(&id(5)).unwrap().alive());
    // Child 1 lists 5 at an older number (another path's numbers ran ahead): alive again,
    // at the higher number, so later news from either path compares right.
    assert_eq!(
        t.revive_under(id(1), id(5), 2, NodeInfo::default()),
        Some(3)
    );
    assert!(t.get(&id(5)).unwrap().alive());
    // Nothing to revive when it is alive, or unknown.
    assert_eq!(t.revive_under(id(1), id(5), 4, NodeInfo::default()), None);
    assert_eq!(t.revive_under(id(1), id(9), 1, NodeInfo::default()), None);
}

#[test]
fn a_late_death_never_undoes_a_newer_birth_whatever_the_order() {
    // Root 0 with children 1 and 2; node 5 moves from under 1 (seq 1) to under 2 (seq 2),
    // while its old parent declares it dead (it missed the lease during the move).
    for death_first in [false, true] {
        let mut t = DescendantTable::new(id(0));
        t.adopt(id(1), 1, NodeInfo::default());
        t.adopt(id(2), 1, NodeInfo::default());
        assert_eq!(t.apply(id(1), &birth(5, 1, 1)), Applied::Changed);
        let late = death(5, 1, DeathCause::Silent);
        if death_first {
            assert_eq!(t.apply(id(1), &late), Applied::Changed);
            assert_eq!(t.apply(id(2), &birth(5, 2, 2)), Applied::Changed);
        } else {
            assert_eq!(t.apply(id(2), &birth(5, 2, 2)), Applied::Unchanged);
            assert_eq!(t.apply(id(1), &late), Applied::Stale);
        }
        assert!(t.get(&id(5)).unwrap().alive(), "death first: {death_first}");
        assert_eq!(t.via(&id(5)), Some(id(2)));
    }
}

#[test]
fn a_move_inside_the_subtree_is_quashed_in_either_order() {
    for departure_first in [false, true] {
        let mut t = DescendantTable::new(id(0));
        t.adopt(id(1), 1, NodeInfo::default());
        t.adopt(id(2), 1, NodeInfo::default());
        t.apply(id(2), &birth(3, 2, 1));
        t.apply(id(1), &birth(5, 1, 1));
        t.apply(id(1), &birth(6, 5, 1));
        // 5 (with 6 below it) moves under 3.
        let moved = DeathCause::Moved {
            new_parent: id(3),
            mover: id(5),
            meet: Some(id(0)),
        };
        let mut verdicts = Vec::new();
        if departure_first {
            verdicts.push(t.apply(id(1), &death(5, 1, moved)));
            verdicts.push(t.apply(id(1), &death(6, 1, moved)));
        }
        verdicts.push(t.apply(id(2), &birth(5, 3, 2)));
        verdicts.push(t.apply(id(2), &birth(6, 5, 1)));
        if !departure_first {
            verdicts.push(t.apply(id(1), &death(5, 1, moved)));
            verdicts.push(t.apply(id(1), &death(6, 1, moved)));
        }
        assert!(
            verdicts
                .iter()
                .all(|v| matches!(v, Applied::Unchanged | Applied::Stale)),
            "{verdicts:?}"
        );
        assert_eq!(t.via(&id(5)), Some(id(2)));
        assert_eq!(t.via(&id(6)), Some(id(2)));
    }
}

#[test]
fn silent_children_take_their_subtree_and_only_newer_births_revive_them() {
    let mut t = DescendantTable::new(id(0));
    t.adopt(id(1), 1, NodeInfo::default());
    assert_eq!(t.apply(id(1), &birth(5, 1, 1)), Applied::Changed);
    assert_eq!(t.apply(id(1), &birth(5, 1, 1)), Applied::Unchanged);
    assert_eq!(t.apply(id(1), &birth(6, 5, 3)), Applied::Changed);
    assert_eq!(t.live_count(), 3);
    let gone = t.remove_child(&id(1), State::Dead);
    assert_eq!(gone[0], (id(1), 1));
    assert_eq!(gone.len(), 3);
    assert_eq!(t.live_count(), 0);
    // The dead child itself needs a newer number.
    assert!(!t.adopt(id(1), 1, NodeInfo::default()));
    assert!(t.adopt(id(1), 2, NodeInfo::default()));
    // Its old subtree, gone with it, may come back at the same numbers.
    assert_eq!(t.apply(id(1), &birth(5, 1, 1)), Applied::Changed);
    assert_eq!(t.apply(id(1), &birth(6, 5, 3)), Applied::Changed);
    assert_eq!(t.live_count(), 3);
}

#[test]
fn bad_certificates_are_refused() {
    let mut t = DescendantTable::new(id(0));
    t.adopt(id(1), 1, NodeInfo::default());
    t.adopt(id(2), 1, NodeInfo::default());
    t.apply(id(2), &birth(7, 2, 1));
    // Child 1 declares dead a node under child 2.
    assert_eq!(
        t.apply(id(1), &death(7, 2, DeathCause::Silent)),
        Applied::OutsideSubtree
    );
    // A number from the future.
    assert_eq!(t.apply(id(2), &birth(7, 2, u32::MAX)), Applied::FromFuture);
    // About this node itself.
    assert_eq!(t.apply(id(1), &birth(0, 1, 1)), Applied::OutsideSubtree);
    // Extra information about a node under another child.
    let extra = CertBody::Extra {
        node: id(7),
        seq: 1,
        info: NodeInfo {
            first: 0,
            content: 9,
            load: 0,
            ..NodeInfo::default()
        },
    };
    assert_eq!(t.apply(id(1), &extra), Applied::OutsideSubtree);
    assert_eq!(t.apply(id(2), &extra), Applied::Changed);
    assert!(t.get(&id(7)).unwrap().alive());
}

/// The indexes of live entries: ids, landmark order, digest per child, digest of all.
type Indexes = (
    Vec<NodeId>,
    Vec<(u32, NodeId)>,
    Vec<(NodeId, Digest)>,
    Digest,
);

/// What the indexes of live entries should be, from the entries themselves.
fn indexes_from_scratch(t: &DescendantTable) -> Indexes {
    let live: Vec<(NodeId, Entry)> = t.live().map(|(n, e)| (*n, *e)).collect();
    let ids = live.iter().map(|(n, _)| *n).collect();
    let mut by_landmark: Vec<(u32, NodeId)> = live
        .iter()
        .filter(|(_, e)| e.info.landmark_rtt_us > 0)
        .map(|(n, e)| (e.info.landmark_rtt_us, *n))
        .collect();
    by_landmark.sort_unstable();
    let mut by_via: BTreeMap<NodeId, Digest> = BTreeMap::new();
    let mut all = Digest::default();
    for (n, e) in &live {
        by_via.entry(e.via).or_default().add(n);
        all.add(n);
    }
    (ids, by_landmark, by_via.into_iter().collect(), all)
}

#[derive(Clone, Debug)]
enum Op {
    Birth {
        via: u64,
        node: u64,
        seq: u32,
        landmark: u32,
    },
    Death {
        via: u64,
        node: u64,
        seq: u32,
        how: u8,
        other: u64,
    },
    Extra {
        via: u64,
        node: u64,
        seq: u32,
        landmark: u32,
    },
    Adopt {
        child: u64,
        seq: u32,
    },
    Remove {
        child: u64,
        dead: bool,
    },
    Repoint {
        from: u64,
        to: u64,
    },
    Prune {
        child: u64,
        keep: Vec<u64>,
    },
    Revive {
        child: u64,
        node: u64,
        seq: u32,
    },
    Forget,
}

fn op() -> impl Strategy<Value = Op> {
    let n = || 1u64..12;
    let seq = || 0u32..4;
    let landmark = || prop_oneof![Just(0u32), 1u32..5];
    prop_oneof![
        (n(), n(), seq(), landmark()).prop_map(|(via, node, seq, landmark)| Op::Birth {
            via,
            node,
            seq,
            landmark
        }),
        (n(), n(), seq(), 0u8..4, n()).prop_map(|(via, node, seq, how, other)| Op::Death {
            via,
            node,
            seq,
            how,
            other
        }),
        (n(), n(), seq(), landmark()).prop_map(|(via, node, seq, landmark)| Op::Extra {
            via,
            node,
            seq,
            landmark
        }),
        (n(), seq()).prop_map(|(child, seq)| Op::Adopt { child, seq }),
        (n(), any::<bool>()).prop_map(|(child, dead)| Op::Remove { child, dead }),
        (n(), n()).prop_map(|(from, to)| Op::Repoint { from, to }),
        (n(), proptest::collection::vec(n(), 0..6))
            .prop_map(|(child, keep)| Op::Prune { child, keep }),
        (n(), n(), seq()).prop_map(|(child, node, seq)| Op::Revive { child, node, seq }),
        Just(Op::Forget),
    ]
}

fn info(landmark: u32) -> NodeInfo {
    NodeInfo {
        landmark_rtt_us: landmark,
        ..NodeInfo::default()
    }
}

use proptest::prelude::*;

proptest! {
    /// Whatever certificates and changes of children come, the indexes of live entries
    /// (ids, landmark order, digests per child and in all) are what the entries say.
    #[test]
    fn the_live_indexes_always_match_the_entries(ops in proptest::collection::vec(op(), 0..60)) {
        let mut t = DescendantTable::new(id(0));
        for op in ops {
            match op {
                Op::Birth { via, node, seq, landmark } => {
                    t.apply(id(via), &CertBody::Birth { node: id(node), seq, info: info(landmark) });
                }
                Op::Death { via, node, seq, how, other } => {
                    let cause = match how {
                        0 => DeathCause::Silent,
                        1 => DeathCause::Orphaned,
                        2 => DeathCause::Moved { new_parent: id(other), mover: id(node), meet: None },
                        _ => DeathCause::Moved { new_parent: id(0), mover: id(other), meet: None },
                    };
                    t.apply(id(via), &death(node, seq, cause));
                }
                Op::Extra { via, node, seq, landmark } => {
                    t.apply(id(via), &CertBody::Extra { node: id(node), seq, info: info(landmark) });
                }
                Op::Adopt { child, seq } => {
                    t.adopt(id(child), seq, info(u32::try_from(child).unwrap_or(0)));
                }
                Op::Remove { child, dead } => {
                    t.remove_child(&id(child), if dead { State::Dead } else { State::Absent });
                }
                Op::Repoint { from, to } => t.repoint(&id(from), id(to)),
                Op::Prune { child, keep } => {
                    t.prune_under(&id(child), &keep.into_iter().map(id).collect());
                }
                Op::Revive { child, node, seq } => {
                    t.revive_under(id(child), id(node), seq, info(2));
                }
                Op::Forget => t.forget_dead(),
            }
            let (ids, by_landmark, by_via, all) = indexes_from_scratch(&t);
            prop_assert_eq!(t.live_ids(), &ids[..]);
            prop_assert_eq!(t.by_landmark.iter().copied().collect::<Vec<_>>(), by_landmark);
            prop_assert_eq!(t.digest_by_via.iter().map(|(n, d)| (*n, *d)).collect::<Vec<_>>(), by_via);
            prop_assert_eq!(t.digest_live, all);
            prop_assert_eq!(t.live_count(), t.live().count());
        }
    }
}

#[test]
fn live_entries_come_nearest_the_landmark_time_first_from_both_sides() {
    let mut t = DescendantTable::new(id(0));
    for (node, landmark) in [(1, 10), (2, 14), (3, 7), (4, 0), (5, 20), (6, 12)] {
        t.adopt(id(node), 1, info(landmark));
    }
    t.remove_child(&id(6), State::Dead);
    let order: Vec<(u32, NodeId)> = t.nearest_by_landmark(12).collect();
    // 6 is dead and 4 has no landmark time; 10 and 14 are equally near, the upper first.
    assert_eq!(order, vec![(2, id(2)), (2, id(1)), (5, id(3)), (8, id(5))]);
}
