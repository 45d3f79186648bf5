//! Exact-output tests of the placement part: each drives one input through [`Placement`] over a
//! [`Core`] and asserts everything the node then hands its driver, in order.

use std::time::Duration;

use overlay_core::{Bandwidth, MeasureRequest, NodeId, Output, Time};

use super::{PathCaps, Placement, Timer};
use crate::certificate::{NodeInfo, SimulatedSignatures};
use crate::message::Message;
use crate::node::Event;
use crate::node::core::Core;
use crate::{OvercastConfig, PathBandwidth};

fn id(i: u64) -> NodeId {
    NodeId::from_index(i)
}

fn mbps(m: u64) -> Bandwidth {
    Bandwidth::from_mbps(m)
}

/// The sample a node asks the root for under the default settings.
const SAMPLE_COUNT: u16 = 16;

#[test]
fn the_sample_asked_for_is_the_default_sample_size() {
    assert_eq!(
        usize::from(SAMPLE_COUNT),
        OvercastConfig::default().sample_size
    );
}

fn ms(m: u64) -> Duration {
    Duration::from_millis(m)
}

/// The shared part of node `me` under the default settings with these linear roots.
fn core(me: NodeId, roots: Vec<NodeId>) -> Core {
    let config = OvercastConfig {
        roots,
        ..OvercastConfig::default()
    };
    Core::new(
        me,
        config,
        Box::new(SimulatedSignatures::new(1, me)),
        Box::new(SimulatedSignatures::new(1, me)),
    )
}

/// Node `me` attached below `ancestors` (top root first, ending with its parent).
fn attached(me: NodeId, ancestors: Vec<NodeId>) -> Core {
    let mut cx = core(me, ancestors[..1].to_vec());
    cx.parent = ancestors.last().copied();
    cx.ancestors = ancestors;
    cx
}

/// Everything the node hands its driver now, in order.
fn drain(cx: &mut Core) -> Vec<Output<Message, Event>> {
    std::iter::from_fn(|| cx.outbox.pop()).collect()
}

fn send(to: NodeId, msg: Message) -> Output<Message, Event> {
    Output::Send { to, msg }
}

/// A measurement as the default settings ask for it.
fn measure(peer: NodeId) -> Output<Message, Event> {
    let config = OvercastConfig::default();
    Output::Measure {
        peer,
        request: MeasureRequest::Bandwidth {
            max_rate: config.probe_rate,
            duration: config.probe_duration,
        },
    }
}

fn caps(
    children: &[(NodeId, PathBandwidth)],
    sender: PathBandwidth,
    sender_parent: PathBandwidth,
) -> PathCaps {
    PathCaps {
        children: children.iter().copied().collect(),
        sender,
        sender_parent,
        sender_parent_rtt: None,
    }
}

#[test]
fn a_join_goes_down_to_a_child_as_good_and_closer_then_attaches() {
    let (root, a, b, me) = (id(0), id(1), id(2), id(9));
    let mut cx = core(me, vec![root]);
    let mut placement = Placement::default();
    let now = Time::ZERO;

    placement.start(&mut cx, now);
    assert_eq!(drain(&mut cx), vec![send(root, Message::ChildrenQuery)]);

    // The root lists two children: `a` can carry no more than 80 Mbit/s from the root, `b` is
    // not limited.
    let answer = caps(
        &[
            (a, PathBandwidth::Limited(mbps(80))),
            (b, PathBandwidth::Unlimited),
        ],
        PathBandwidth::Unlimited,
        PathBandwidth::Unlimited,
    );
    placement.on_children(&mut cx, now, root, vec![a, b], vec![root], answer);
    // The reference first, then the children in identifier order.
    let (first, second) = if a < b { (a, b) } else { (b, a) };
    assert_eq!(
        drain(&mut cx),
        vec![measure(root), measure(first), measure(second)]
    );

    placement.on_measured(&mut cx, now, root, mbps(100), ms(50));
    assert_eq!(drain(&mut cx), vec![]);
    placement.on_measured(&mut cx, now, a, mbps(100), ms(10));
    assert_eq!(drain(&mut cx), vec![]);
    // With the round measured, this node knows its landmark time; it asks the nearest node
    // measured (`a`, not the root) for its own nearest, then the root for nodes near it, headed
    // by those, before deciding.
    placement.on_measured(&mut cx, now, b, mbps(95), ms(20));
    assert_eq!(cx.landmark_rtt_us, 50_000);
    assert_eq!(drain(&mut cx), vec![send(a, Message::NearQuery)]);
    let d = id(4);
    placement.on_near(&mut cx, now, a, vec![d, me]);
    let ask = Message::SampleQuery {
        count: SAMPLE_COUNT,
        near: 50_000,
        about: vec![d, a, b],
    };
    assert_eq!(drain(&mut cx), vec![send(root, ask)]);
    // The sample names `a` (measured already) and `c` in another branch.
    let c = id(3);
    let sample = vec![(a, 80_000_000), (c, 100_000_000)];
    placement.on_sample(&mut cx, now, root, sample);
    assert_eq!(drain(&mut cx), vec![measure(c)]);
    // The last measurement decides: 100 Mbit/s direct sets the floor at 90; `a` is capped at
    // 80; `b` carries 95 and `c` 96, both closer than the root; `b` is the closer, so the
    // search goes down to `b` (and asks for no second sample).
    placement.on_measured(&mut cx, now, c, mbps(96), ms(30));
    assert_eq!(drain(&mut cx), vec![send(b, Message::ChildrenQuery)]);

    let answer = caps(
        &[],
        PathBandwidth::Limited(mbps(95)),
        PathBandwidth::Unlimited,
    );
    placement.on_children(&mut cx, now, b, vec![], vec![root, b], answer);
    assert_eq!(drain(&mut cx), vec![measure(b)]);

    // No child below `b`: ask it to adopt this node, falling back to the root.
    placement.on_measured(&mut cx, now, b, mbps(92), ms(20));
    let info = NodeInfo {
        landmark_rtt_us: 50_000,
        ..NodeInfo::default()
    };
    assert_eq!(
        drain(&mut cx),
        vec![send(b, Message::Attach { seq: 1, info })]
    );
    assert!(placement.is_moving());

    placement.on_adopted(&mut cx, now, b, vec![root, b], 95_000_000, 1);
    assert_eq!(
        drain(&mut cx),
        vec![
            send(b, Message::Subtree { births: vec![] }),
            send(b, Message::Fetch { stream: 0, from: 0 }),
            Output::Emit(Event::Attached {
                parent: b,
                rounds: 2,
                moved: false,
            }),
        ]
    );
    assert!(!placement.is_moving());
    assert_eq!(cx.parent, Some(b));
    assert_eq!(cx.seq, 1);
    // The smaller of the parent's 95 and the measured hop's 92.
    assert_eq!(cx.path_bandwidth(), PathBandwidth::Limited(mbps(92)));
}

#[test]
fn a_join_goes_to_an_as_good_node_of_the_sample_beside_it_and_down_equally_near_children() {
    let (root, far, near, beside, me) = (id(0), id(1), id(2), id(3), id(9));
    let mut cx = core(me, vec![root]);
    let mut placement = Placement::default();
    let now = Time::ZERO;
    placement.start(&mut cx, now);
    drain(&mut cx);
    let unlimited = PathBandwidth::Unlimited;
    let answer = caps(&[(far, unlimited)], unlimited, unlimited);
    placement.on_children(&mut cx, now, root, vec![far], vec![root], answer);
    drain(&mut cx);
    placement.on_measured(&mut cx, now, root, mbps(100), ms(50));
    placement.on_measured(&mut cx, now, far, mbps(100), ms(40));
    assert_eq!(drain(&mut cx), vec![send(far, Message::NearQuery)]);
    // `far` never answers: at the round's timeout the root is asked all the same.
    placement.on_search_timeout(&mut cx, now);
    let ask = Message::SampleQuery {
        count: SAMPLE_COUNT,
        near: 50_000,
        about: vec![far],
    };
    assert_eq!(drain(&mut cx), vec![send(root, ask)]);
    // The root's sample has a node on this node's router, as good as the root.
    placement.on_sample(&mut cx, now, root, vec![(near, 100_000_000)]);
    assert_eq!(drain(&mut cx), vec![measure(near)]);
    placement.on_measured(&mut cx, now, near, mbps(100), ms(1));
    assert_eq!(drain(&mut cx), vec![send(near, Message::ChildrenQuery)]);
    // Its child `beside` is exactly as near (the same router): going down to it keeps the
    // upload of `near` for one child.
    let answer = caps(&[(beside, unlimited)], unlimited, unlimited);
    placement.on_children(&mut cx, now, near, vec![beside], vec![root, near], answer);
    assert_eq!(drain(&mut cx), vec![measure(near), measure(beside)]);
    placement.on_measured(&mut cx, now, near, mbps(50), ms(1));
    placement.on_measured(&mut cx, now, beside, mbps(100), ms(1));
    assert_eq!(drain(&mut cx), vec![send(beside, Message::ChildrenQuery)]);
}

#[test]
fn a_reevaluation_moves_under_the_widest_clearly_better_candidate() {
    let (root, parent, sibling, sampled, me) = (id(0), id(1), id(2), id(3), id(9));
    let mut cx = attached(me, vec![root, parent]);
    cx.parent_path_bw = PathBandwidth::Limited(mbps(50));
    let mut placement = Placement::default();
    let now = Time::ZERO;

    placement.start_reevaluation(&mut cx, now);
    assert_eq!(
        drain(&mut cx),
        vec![
            send(parent, Message::ChildrenQuery),
            send(
                root,
                Message::SampleQuery {
                    count: SAMPLE_COUNT,
                    near: 0,
                    about: Vec::new()
                }
            ),
        ]
    );

    // The parent lists this node and a sibling; the grandparent (the root) is measured too.
    let answer = caps(
        &[
            (me, PathBandwidth::Limited(mbps(50))),
            (sibling, PathBandwidth::Limited(mbps(50))),
        ],
        PathBandwidth::Limited(mbps(50)),
        PathBandwidth::Unlimited,
    );
    placement.on_children(
        &mut cx,
        now,
        parent,
        vec![me, sibling],
        vec![root, parent],
        answer,
    );
    assert_eq!(
        drain(&mut cx),
        vec![measure(parent), measure(root), measure(sibling)]
    );

    // The root's sample names the parent (skipped) and one node in another branch.
    placement.on_sample(
        &mut cx,
        now,
        root,
        vec![(parent, 50_000_000), (sampled, 60_000_000)],
    );
    assert_eq!(drain(&mut cx), vec![measure(sampled)]);

    placement.on_measured(&mut cx, now, parent, mbps(40), ms(30));
    placement.on_measured(&mut cx, now, root, mbps(40), ms(80));
    placement.on_measured(&mut cx, now, sibling, mbps(48), ms(10));
    assert_eq!(drain(&mut cx), vec![]);
    // Through the parent: 40. Clearly better is above 44: the sibling gives 48, the sampled
    // node 55 (its hop, under its own 60); the wider wins.
    placement.on_measured(&mut cx, now, sampled, mbps(55), ms(5));
    // The root's round-trip time, the first measured, is this node's landmark time.
    let info = NodeInfo {
        path_bw: 40_000_000,
        landmark_rtt_us: 80_000,
        ..NodeInfo::default()
    };
    assert_eq!(
        drain(&mut cx),
        vec![send(sampled, Message::Attach { seq: 1, info })]
    );
    assert_eq!(cx.link_bw, PathBandwidth::Limited(mbps(40)));
}

#[test]
fn a_lost_parent_is_left_for_the_grandparent() {
    let (root, grandparent, parent, me) = (id(0), id(1), id(2), id(9));
    let mut cx = attached(me, vec![root, grandparent, parent]);
    let mut placement = Placement::default();
    let now = Time::ZERO;

    placement.on_parent_lost(&mut cx, now, parent);
    let info = NodeInfo::default();
    assert_eq!(
        drain(&mut cx),
        vec![
            Output::Emit(Event::ParentLost { parent }),
            send(grandparent, Message::Attach { seq: 1, info }),
        ]
    );
    // Each ancestor gets the climb's short timeout, not the answer timeout of a search.
    assert_eq!(
        cx.timers.get(Timer::Attach),
        Some(now + cx.config.climb_timeout)
    );
    assert!(cx.config.climb_timeout * 2 < cx.config.lease);

    // The grandparent stays silent: the next ancestor up is asked. This node is far from the
    // root (300 ms), so the step waits three round trips instead.
    cx.landmark_rtt_us = 300_000;
    let info = NodeInfo {
        landmark_rtt_us: 300_000,
        ..info
    };
    placement.on_attach_timeout(&mut cx, now);
    assert_eq!(
        drain(&mut cx),
        vec![send(root, Message::Attach { seq: 2, info })]
    );
    assert_eq!(cx.timers.get(Timer::Attach), Some(now + ms(900)));

    // The root refuses and nothing is left to climb: search afresh from the root.
    placement.on_refused(&mut cx, now, root);
    assert_eq!(drain(&mut cx), vec![send(root, Message::ChildrenQuery)]);
}

/// One re-evaluation round of a node under `parent` (which receives 25 Mbit/s and has one other
/// child, `sibling`, as near as the parent): the hop from the parent measures 12.5 Mbit/s (its
/// upload is shared), the sibling's hop `sibling_hop`. Returns what the node sent at the end.
fn round_beside_the_parent(sibling_hop: Bandwidth) -> Vec<Output<Message, Event>> {
    round_with_a_sibling(sibling_hop, ms(8))
}

/// A re-evaluation round of a node 8 ms from its parent (both sharing the parent's 25 Mbit/s
/// upload) and a sibling whose hop and round-trip time are given; what the node then sends.
fn round_with_a_sibling(
    sibling_hop: Bandwidth,
    sibling_rtt: Duration,
) -> Vec<Output<Message, Event>> {
    let (root, parent, sibling, me) = (id(0), id(1), id(2), id(9));
    let mut cx = attached(me, vec![root, parent]);
    cx.config.sample_size = 0;
    let mut placement = Placement::default();
    let now = Time::ZERO;
    placement.start_reevaluation(&mut cx, now);
    drain(&mut cx);
    let half = PathBandwidth::Limited(Bandwidth::from_bps(12_500_000));
    let answer = caps(
        &[(me, half), (sibling, half)],
        PathBandwidth::Limited(mbps(25)),
        PathBandwidth::Unlimited,
    );
    let children = vec![me, sibling];
    placement.on_children(&mut cx, now, parent, children, vec![root, parent], answer);
    drain(&mut cx);
    placement.on_measured(&mut cx, now, parent, Bandwidth::from_bps(12_500_000), ms(8));
    placement.on_measured(&mut cx, now, root, mbps(10), ms(20));
    placement.on_measured(&mut cx, now, sibling, sibling_hop, sibling_rtt);
    drain(&mut cx)
}

/// Whether the node asked `to` to adopt it.
fn attaches_to(sent: &[Output<Message, Event>], to: NodeId) -> bool {
    sent.iter()
        .any(|o| matches!(o, Output::Send { to: t, msg: Message::Attach { .. } } if *t == to))
}

#[test]
fn an_as_good_sibling_must_be_closer_by_the_floor_as_well_as_the_band() {
    // As good (the same 12.5 Mbit/s through it) and 10% closer, but only 0.8 ms: the node stays.
    let sent = round_with_a_sibling(
        Bandwidth::from_bps(12_500_000),
        Duration::from_micros(7_200),
    );
    assert!(!attaches_to(&sent, id(2)), "{sent:?}");
    // 1.5 ms closer: past the 1 ms floor and the band; it moves.
    let sent = round_with_a_sibling(
        Bandwidth::from_bps(12_500_000),
        Duration::from_micros(6_500),
    );
    assert!(attaches_to(&sent, id(2)), "{sent:?}");
}

#[test]
fn a_reevaluation_moves_under_an_equally_near_sibling_only_when_its_hop_is_clearly_wider() {
    // The sibling's own hop is twice the parent's: the parent's shared upload is the limit, and
    // moving under the sibling (which loses nothing) takes a flow off it.
    let sent = round_beside_the_parent(mbps(25));
    assert!(attaches_to(&sent, id(2)), "{sent:?}");
    // Alike hops: the limit is elsewhere on the path; the node stays.
    let sent = round_beside_the_parent(Bandwidth::from_bps(13_000_000));
    assert!(
        !sent.iter().any(|o| matches!(
            o,
            Output::Send {
                msg: Message::Attach { .. },
                ..
            }
        )),
        "{sent:?}"
    );
}

#[test]
fn a_reevaluation_asks_the_nearest_node_for_its_neighbours_and_the_root_for_their_bandwidth() {
    let (root, parent, x, y, z, stranger, me) = (id(0), id(1), id(2), id(3), id(4), id(5), id(9));
    let mut cx = attached(me, vec![root, parent]);
    let mut placement = Placement::default();
    let now = Time::ZERO;
    // Measurements from earlier rounds: the parent is nearest, then x, then y.
    placement.on_measured(&mut cx, now, parent, mbps(50), ms(2));
    placement.on_measured(&mut cx, now, y, mbps(50), ms(9));
    placement.on_measured(&mut cx, now, x, mbps(50), ms(5));

    placement.start_reevaluation(&mut cx, now);
    let about = vec![x, y];
    assert_eq!(
        drain(&mut cx),
        vec![
            send(x, Message::NearQuery),
            send(parent, Message::ChildrenQuery),
            send(
                root,
                Message::SampleQuery {
                    count: SAMPLE_COUNT,
                    near: 0,
                    about
                }
            ),
        ],
        "the parent is no candidate; the nearest other is asked for its neighbours"
    );
    // Only the node asked is heard; it names this node, a known node and a new one.
    placement.on_near(&mut cx, now, stranger, vec![id(7)]);
    placement.on_near(&mut cx, now, x, vec![me, y, z]);
    assert_eq!(placement.near_list(parent), vec![x, y]);
    let next = placement.near.candidates(4, |n| *n != parent);
    assert_eq!(
        next,
        vec![z, x, y],
        "the new neighbour first, then the nearest known"
    );
}

#[test]
fn nodes_that_never_answer_a_measurement_are_no_longer_near() {
    let (root, parent, x, me) = (id(0), id(1), id(2), id(9));
    let mut cx = attached(me, vec![root, parent]);
    let mut placement = Placement::default();
    let now = Time::ZERO;
    placement.on_measured(&mut cx, now, x, mbps(50), ms(5));
    placement.start_reevaluation(&mut cx, now);
    drain(&mut cx);
    let unlimited = PathBandwidth::Unlimited;
    let answer = caps(&[(me, unlimited)], unlimited, unlimited);
    placement.on_children(&mut cx, now, parent, vec![me], vec![root, parent], answer);
    placement.on_sample(&mut cx, now, root, vec![(x, 50_000_000)]);
    drain(&mut cx);
    // The parent answers; x (dead) never does, and the round ends at its timeout.
    placement.on_measured(&mut cx, now, parent, mbps(50), ms(3));
    placement.finish_reevaluation(&mut cx, now);
    assert_eq!(placement.near_list(me), vec![parent]);
}

#[test]
fn a_node_on_the_way_from_the_grandparent_to_its_parent_moves_up_ahead_of_it() {
    let (root, grandparent, parent, me) = (id(0), id(1), id(2), id(9));
    let mut cx = attached(me, vec![root, grandparent, parent]);
    cx.parent_path_bw = PathBandwidth::Limited(mbps(50));
    let mut placement = Placement::default();
    let now = Time::ZERO;
    let half = PathBandwidth::Limited(mbps(50));
    let ask = |placement: &mut Placement, cx: &mut Core, parent_to_g: u64, to_g: u64| {
        placement.start_reevaluation(cx, now);
        drain(cx);
        let mut answer = caps(&[], half, half);
        answer.sender_parent_rtt = Some(ms(parent_to_g));
        placement.on_children(
            cx,
            now,
            parent,
            Vec::new(),
            vec![root, grandparent, parent],
            answer,
        );
        assert_eq!(drain(cx), vec![measure(parent), measure(grandparent)]);
        // Through either: 50 (the grandparent's hop shares its upload); the parent is 4 ms away.
        placement.on_measured(cx, now, parent, mbps(50), ms(4));
        placement.on_measured(cx, now, grandparent, mbps(50), ms(to_g));
        drain(cx)
    };
    // The parent is 10 ms from the grandparent and this node 8 ms, off the way (8 + 4 > 11):
    // stay.
    assert_eq!(ask(&mut placement, &mut cx, 10, 8), vec![]);
    assert_eq!(
        cx.parent_rtt,
        Some(ms(4)),
        "the parent's round trip is kept for answers"
    );
    // The parent is 12 ms from the grandparent, this node 8 ms and on the way (8 + 4 <= 13.2):
    // up under the grandparent.
    let info = NodeInfo {
        path_bw: 50_000_000,
        ..NodeInfo::default()
    };
    assert_eq!(
        ask(&mut placement, &mut cx, 12, 8),
        vec![send(grandparent, Message::Attach { seq: 1, info })]
    );
}
