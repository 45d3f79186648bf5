//! Rule-by-rule tests of a member, driven by the project's simulator (`overlay_core::sim`):
//! members exchange messages over paths of a fixed delay, in order; a test may silence a
//! member, lose chosen packets once, or forge input.

use std::collections::BTreeSet;
use std::time::Duration;

use bytes::Bytes;
use overlay_core::sim::{SimConfig, Simulator, UniformPaths};
use overlay_core::{NodeId, Protocol, Time};

use crate::message::{Liveness, MemberEntry, Message, RouteAdvert, RouteEntry, Update};
use crate::{Command, Event, Narada, NaradaConfig};

const DELAY: Duration = Duration::from_millis(10);

/// A few members on the simulator, with what they emitted so far.
struct Lab {
    sim: Simulator<Narada, UniformPaths>,
    events: Vec<(Time, usize, Event)>,
}

impl Lab {
    fn new(n: usize, config: NaradaConfig) -> Self {
        Self::with(n, config, |_, _| {})
    }

    /// `n` members with `config` (seeded by their index), each changed by `tweak`.
    fn with(n: usize, config: NaradaConfig, tweak: impl Fn(usize, &mut NaradaConfig)) -> Self {
        let paths = UniformPaths {
            members: n,
            delay: DELAY,
        };
        let mut sim = Simulator::new(paths, SimConfig::default());
        for i in 0..n {
            let mut c = NaradaConfig {
                seed: i as u64,
                ..config.clone()
            };
            tweak(i, &mut c);
            sim.add_member(i, Narada::new(Self::id(i), c, Time::ZERO));
        }
        Self {
            sim,
            events: Vec::new(),
        }
    }

    fn id(i: usize) -> NodeId {
        Simulator::<Narada, UniformPaths>::member_id(i)
    }

    fn now(&self) -> Time {
        self.sim.now()
    }

    fn node(&self, i: usize) -> &Narada {
        self.sim.member(i).expect("a live member")
    }

    /// Member `i` is told `cmd` now.
    fn command(&mut self, i: usize, cmd: Command) {
        self.sim.schedule_command(self.now(), i, cmd);
        self.run_until(self.now());
    }

    /// `msg` reaches `to` now, as if `from` had sent it.
    fn inject(&mut self, from: usize, to: usize, msg: Message) {
        self.sim.inject(self.now(), Self::id(from), to, msg);
        self.run_until(self.now());
    }

    /// Each listed data packet, `(receiver, seq)`, is lost once (its repair gets through).
    fn lose_data_once(&mut self, packets: impl IntoIterator<Item = (usize, u64)>) {
        let mut pending: BTreeSet<(usize, u64)> = packets.into_iter().collect();
        self.sim
            .set_drop_filter(Some(Box::new(move |_, to, msg: &Message| {
                matches!(msg, Message::Data(p) if pending.remove(&(to, p.seq)))
            })));
    }

    /// Run until `until`, keeping what members emitted.
    fn run_until(&mut self, until: Time) {
        self.sim.run_until(until);
        self.events.extend(
            self.sim
                .take_events()
                .into_iter()
                .map(|e| (e.at, e.member, e.event)),
        );
    }

    fn events_of(&self, i: usize) -> Vec<&Event> {
        self.events
            .iter()
            .filter(|(_, m, _)| *m == i)
            .map(|(_, _, e)| e)
            .collect()
    }
}

fn joined_pair() -> Lab {
    let mut lab = Lab::new(2, NaradaConfig::default());
    lab.command(0, Command::Join { bootstrap: vec![] });
    lab.command(
        1,
        Command::Join {
            bootstrap: vec![Lab::id(0)],
        },
    );
    lab.run_until(Time::from_secs(2));
    lab
}

#[test]
fn the_first_member_starts_the_group_and_the_second_joins_through_it() {
    let lab = joined_pair();
    assert_eq!(lab.events_of(0)[0], &Event::Joined);
    assert!(lab.events_of(1).contains(&&Event::Joined));
    assert!(lab.events_of(1).contains(&&Event::NeighbourUp(Lab::id(0))));
    assert_eq!(lab.node(0).neighbours(), vec![Lab::id(1)]);
    assert_eq!(lab.node(1).next_hop(&Lab::id(0)), Some(Lab::id(0)));
    assert_eq!(lab.node(0).group_size(), 2);
    assert_eq!(lab.node(1).group_size(), 2);
}

#[test]
fn a_full_member_refuses_and_refers_the_joiner_elsewhere() {
    let config = NaradaConfig {
        mesh: crate::MeshConfig {
            max_degree: 1,
            min_degree: 1,
            ..crate::MeshConfig::default()
        },
        ..NaradaConfig::default()
    };
    let mut lab = Lab::new(3, config);
    lab.command(0, Command::Join { bootstrap: vec![] });
    lab.command(
        1,
        Command::Join {
            bootstrap: vec![Lab::id(0)],
        },
    );
    lab.run_until(Time::from_secs(1));
    lab.command(
        2,
        Command::Join {
            bootstrap: vec![Lab::id(0)],
        },
    );
    lab.run_until(Time::from_secs(10));
    // 0 is full with 1; the refusal named 1, and 2 joined through it... which is also full
    // (degree 1), so 2 keeps retrying and stays out: bounds hold.
    assert_eq!(lab.node(0).degree(), 1);
    assert_eq!(lab.node(1).degree(), 1);
    assert!(!lab.node(2).is_joined());
    assert!((0..3).all(|i| lab.node(i).degree() <= 1));
}

/// A chain 0 - 1 - 2 (max degree 1 at the ends keeps 2 from linking to 0 directly, and min 1
/// lets it stay a chain), settled after five seconds.
fn chain() -> Lab {
    chain_of(3, |i| i == 1)
}

/// The chain 0 - 1 - 2 of [`chain`] among `n` members (those past 2 not yet joined), with
/// room for a second link at the members `wide` names.
fn chain_of(n: usize, wide: impl Fn(usize) -> bool) -> Lab {
    chain_configured(n, wide, NaradaConfig::default())
}

/// [`chain_of`] with `base` for every setting but the degree bounds.
fn chain_configured(n: usize, wide: impl Fn(usize) -> bool, base: NaradaConfig) -> Lab {
    let config = NaradaConfig {
        mesh: crate::MeshConfig {
            max_degree: 1,
            min_degree: 1,
            ..base.mesh.clone()
        },
        ..base
    };
    let mut lab = Lab::with(n, config, |i, c| {
        if wide(i) {
            c.mesh.max_degree = 2;
        }
    });
    lab.command(0, Command::Join { bootstrap: vec![] });
    lab.command(
        1,
        Command::Join {
            bootstrap: vec![Lab::id(0)],
        },
    );
    lab.run_until(Time::from_secs(1));
    lab.command(
        2,
        Command::Join {
            bootstrap: vec![Lab::id(1)],
        },
    );
    lab.run_until(Time::from_secs(5));
    lab
}

#[test]
fn routes_cross_the_mesh_and_data_follows_reverse_paths() {
    let mut lab = chain();
    assert_eq!(lab.node(2).next_hop(&Lab::id(0)), Some(Lab::id(1)));
    assert_eq!(
        lab.node(2).route_path(&Lab::id(0)),
        Some(vec![Lab::id(1), Lab::id(0)])
    );
    assert_eq!(lab.node(0).forwards_to(&Lab::id(0)), vec![Lab::id(1)]);
    assert_eq!(lab.node(1).forwards_to(&Lab::id(0)), vec![Lab::id(2)]);
    lab.command(
        0,
        Command::Publish {
            payload: Bytes::from_static(b"hello"),
            priority: 1,
        },
    );
    lab.run_until(Time::from_secs(6));
    let delivered: Vec<usize> = lab
        .events
        .iter()
        .filter(
            |(_, _, e)| matches!(e, Event::Deliver { payload, .. } if payload.as_ref() == b"hello"),
        )
        .map(|(_, m, _)| *m)
        .collect();
    assert_eq!(delivered, vec![1, 2]);
    // The same packet from a member that is not 2's next hop is refused.
    let stats_before = lab.node(2).stats().rpf_drops;
    let packet = crate::message::DataPacket {
        source: 0,
        seq: 99,
        sent_at_us: 0,
        priority: 1,
        payload: Bytes::new(),
    };
    lab.inject(0, 2, Message::Data(packet));
    assert_eq!(
        lab.node(2).stats().from_non_neighbour,
        1,
        "0 is not 2's neighbour"
    );
    assert_eq!(lab.node(2).stats().rpf_drops, stats_before);
}

#[test]
fn gaps_left_by_lost_packets_are_repaired_from_the_upstream_buffer() {
    let mut lab = joined_pair();
    lab.lose_data_once([(1, 3), (1, 4)]);
    for _ in 0..8 {
        lab.command(
            0,
            Command::Publish {
                payload: Bytes::from_static(b"x"),
                priority: 1,
            },
        );
        lab.run_until(lab.now() + Duration::from_millis(5));
    }
    lab.run_until(lab.now() + Duration::from_secs(2));
    let mut got: Vec<(u64, bool)> = lab
        .events
        .iter()
        .filter_map(|(_, m, e)| match e {
            Event::Deliver { seq, recovered, .. } if *m == 1 => Some((*seq, *recovered)),
            _ => None,
        })
        .collect();
    got.sort_unstable();
    assert_eq!(
        got,
        vec![
            (0, false),
            (1, false),
            (2, false),
            (3, true),
            (4, true),
            (5, false),
            (6, false),
            (7, false)
        ]
    );
    assert_eq!(lab.node(0).stats().repairs_sent, 2);
}

#[test]
fn a_silent_neighbour_is_declared_dead_and_the_death_spreads() {
    let mut lab = Lab::new(3, NaradaConfig::default());
    lab.command(0, Command::Join { bootstrap: vec![] });
    lab.command(
        1,
        Command::Join {
            bootstrap: vec![Lab::id(0)],
        },
    );
    lab.command(
        2,
        Command::Join {
            bootstrap: vec![Lab::id(0)],
        },
    );
    lab.run_until(Time::from_secs(20));
    assert!(lab.node(2).believes_alive(&Lab::id(1)));
    lab.sim.silence(1);
    lab.run_until(Time::from_secs(40));
    for i in [0, 2] {
        assert!(
            !lab.node(i).believes_alive(&Lab::id(1)),
            "{i} still believes 1 alive"
        );
        assert!(!lab.node(i).neighbours().contains(&Lab::id(1)));
        assert_eq!(lab.node(i).next_hop(&Lab::id(1)), None);
    }
    assert!(
        lab.events_of(0).contains(&&Event::MemberDied(Lab::id(1)))
            || lab.events_of(2).contains(&&Event::MemberDied(Lab::id(1)))
    );
}

#[test]
fn a_neighbour_whose_pongs_are_lost_but_that_still_talks_is_not_declared_dead() {
    // A congested link (or a deep queue on it) loses or delays the answers to pings, while
    // the neighbour's own messages still come: it lives.
    let mut lab = joined_pair();
    lab.run_until(Time::from_secs(20));
    assert!(lab.node(0).neighbours().contains(&Lab::id(1)));
    lab.sim
        .set_drop_filter(Some(Box::new(|from, to, msg: &Message| {
            from == 1 && to == 0 && matches!(msg, Message::Probe(probe::ProbeMessage::Pong { .. }))
        })));
    lab.run_until(Time::from_secs(40));
    assert!(lab.node(0).neighbours().contains(&Lab::id(1)));
    assert!(lab.node(0).believes_alive(&Lab::id(1)));
    assert_eq!(lab.node(0).stats().neighbours_died, 0);
    // Silent as well, it is dead.
    lab.sim.silence(1);
    lab.run_until(Time::from_secs(50));
    assert!(!lab.node(0).neighbours().contains(&Lab::id(1)));
    assert_eq!(lab.node(0).stats().neighbours_died, 1);
}

#[test]
fn a_neighbour_the_transport_still_hears_is_not_declared_dead_while_its_messages_are_held() {
    // A stream blocked behind a loss holds every message for seconds while the connection's
    // own packets still come: the driver reports those (`LinkEvent::Heard`).
    let mut lab = joined_pair();
    lab.run_until(Time::from_secs(20));
    lab.sim
        .set_drop_filter(Some(Box::new(|from, to, _: &Message| from == 1 && to == 0)));
    for tick in 0..20 {
        let at = Time::from_secs(20) + Duration::from_millis(500) * tick;
        lab.sim
            .schedule_link_event(at, 0, 1, overlay_core::LinkEvent::Heard);
    }
    lab.run_until(Time::from_secs(30));
    assert!(lab.node(0).neighbours().contains(&Lab::id(1)));
    assert_eq!(lab.node(0).stats().neighbours_died, 0);
    // Heard no more, it is dead within seconds (three pings at the backed-off timeout).
    lab.run_until(Time::from_secs(40));
    assert!(!lab.node(0).neighbours().contains(&Lab::id(1)));
    assert_eq!(lab.node(0).stats().neighbours_died, 1);
}

/// A chain 0 - 1 - 2 carrying 0's stream (a packet every 10 ms from 5 s) in which member
/// `silenced` stops at 20 s; run to 30 s.
fn chain_losing(silenced: usize, silence_probe_after: Duration) -> Lab {
    chain_losing_heard(silenced, silence_probe_after, None)
}

/// As [`chain_losing`], with the transport of member 2 reporting packets from 1 at `heard`
/// (as a runtime's report covers packets that came before a death).
fn chain_losing_heard(silenced: usize, silence_probe_after: Duration, heard: Option<Time>) -> Lab {
    let mut base = NaradaConfig::default();
    base.repair.silence_probe_after = silence_probe_after;
    let mut lab = chain_configured(3, |i| i == 1, base);
    let mut at = Time::from_secs(5);
    while at < Time::from_secs(30) {
        let publish = Command::Publish {
            payload: Bytes::from_static(b"x"),
            priority: 1,
        };
        lab.sim.schedule_command(at, 0, publish);
        at += Duration::from_millis(10);
    }
    if let Some(at) = heard {
        lab.sim
            .schedule_link_event(at, 2, 1, overlay_core::LinkEvent::Heard);
    }
    lab.run_until(Time::from_secs(20));
    lab.sim.silence(silenced);
    lab.run_until(Time::from_secs(30));
    lab
}

/// How long after 20 s member `at` declared member `dead` dead.
fn death_noticed(lab: &Lab, at: usize, dead: usize) -> Option<Duration> {
    lab.events.iter().find_map(|(t, m, e)| {
        (*m == at && *e == Event::MemberDied(Lab::id(dead))).then(|| *t - Time::from_secs(20))
    })
}

#[test]
fn a_relay_whose_stream_stops_is_pinged_at_once_and_found_dead_sooner() {
    let quick = chain_losing(1, Duration::from_millis(200));
    let slow = chain_losing(1, Duration::ZERO);
    let quick_after = death_noticed(&quick, 2, 1).expect("2 finds 1 dead");
    let slow_after = death_noticed(&slow, 2, 1).expect("2 finds 1 dead without the silence rule");
    // The same three unanswered pings, sent at once and after each timeout (200, 400, 800
    // ms with backoff) instead of one per second.
    assert!(
        quick_after < Duration::from_millis(1700),
        "found after {quick_after:?}"
    );
    assert!(
        slow_after > quick_after + Duration::from_millis(500),
        "{slow_after:?} without against {quick_after:?} with"
    );
    assert_eq!(quick.node(2).stats().upstream_silences, 1);
    assert_eq!(slow.node(2).stats().upstream_silences, 0);
}

#[test]
fn a_late_report_of_packets_from_before_the_death_does_not_end_the_suspicion() {
    // 2's transport reports packets from 1 at 20.3 s, after 2 began to suspect 1 (the report
    // covers the half second before it). The pings go on at once after each loss.
    let lab = chain_losing_heard(
        1,
        Duration::from_millis(200),
        Some(Time::from_millis(20_300)),
    );
    let after = death_noticed(&lab, 2, 1).expect("2 finds 1 dead");
    assert!(after < Duration::from_millis(1700), "found after {after:?}");
}

#[test]
fn a_relay_that_answers_is_not_declared_dead_when_the_silence_is_further_up() {
    // The source stops: 2's stream stops too, it pings 1, and 1 answers.
    let lab = chain_losing(0, Duration::from_millis(200));
    assert_eq!(lab.node(2).stats().upstream_silences, 1);
    assert_eq!(death_noticed(&lab, 2, 1), None);
    assert!(lab.node(2).neighbours().contains(&Lab::id(1)));
    assert!(
        death_noticed(&lab, 1, 0).is_some(),
        "1 finds the source dead"
    );
}

#[test]
fn stale_refreshes_do_not_resurrect_the_dead() {
    let mut lab = joined_pair();
    let stranger = NodeId::from_index(77);
    // 0 tells 1 that member 77 is alive at 5, then dead at 5, then (stale) alive at 5 and 4.
    let intro = vec![(500, stranger)];
    let entry = |seq, liveness| MemberEntry {
        member: 500,
        seq,
        liveness,
    };
    let update = |members| {
        Message::Update(Update {
            intro: intro.clone(),
            members,
            routes: vec![],
        })
    };
    lab.inject(0, 1, update(vec![entry(5, Liveness::Alive)]));
    assert!(lab.node(1).believes_alive(&stranger));
    lab.inject(0, 1, update(vec![entry(5, Liveness::Dead)]));
    lab.inject(
        0,
        1,
        update(vec![entry(5, Liveness::Alive), entry(4, Liveness::Alive)]),
    );
    assert!(!lab.node(1).believes_alive(&stranger));
    lab.inject(0, 1, update(vec![entry(6, Liveness::Alive)]));
    assert!(
        lab.node(1).believes_alive(&stranger),
        "a newer number means it lives"
    );
}

#[test]
fn hostile_input_is_dropped_and_counted() {
    let mut lab = joined_pair();
    // From a non-neighbour.
    lab.inject(2, 1, Message::Update(Update::default()));
    assert_eq!(lab.node(1).stats().from_non_neighbour, 1);
    // Unknown handles.
    let unknown = Update {
        intro: vec![],
        members: vec![MemberEntry {
            member: 9999,
            seq: 1,
            liveness: Liveness::Alive,
        }],
        routes: vec![],
    };
    lab.inject(0, 1, Message::Update(unknown));
    assert_eq!(lab.node(1).stats().unknown_handles, 1);
    // A route whose path loops, and one whose path does not end at its destination.
    let x = NodeId::from_index(50);
    let y = NodeId::from_index(51);
    let bad = Update {
        intro: vec![(700, x), (701, y)],
        members: vec![],
        routes: vec![
            RouteEntry {
                dest: 700,
                route: Some(RouteAdvert {
                    metric: crate::PathMetric { width: 10, dist: 5 },
                    latency_us: 5,
                    path: smallvec::smallvec![701, 700, 701, 700],
                }),
            },
            RouteEntry {
                dest: 700,
                route: Some(RouteAdvert {
                    metric: crate::PathMetric { width: 10, dist: 5 },
                    latency_us: 5,
                    path: smallvec::smallvec![701],
                }),
            },
            RouteEntry {
                dest: 701,
                route: Some(RouteAdvert {
                    metric: crate::PathMetric { width: 10, dist: 5 },
                    latency_us: 5,
                    path: (0..500).collect(),
                }),
            },
        ],
    };
    lab.inject(0, 1, Message::Update(bad));
    assert_eq!(lab.node(1).stats().bad_routes, 2);
    assert_eq!(lab.node(1).next_hop(&x), None);
    // The 500-long path names handles never introduced: dropped as unknown, not applied.
    assert!(lab.node(1).stats().unknown_handles > 1);
    // Replies nobody asked for.
    lab.inject(
        0,
        1,
        Message::TableReply {
            nonce: 5,
            degree: 1,
            costs: crate::costs::PackedCosts::pack(&[]),
            members: None,
        },
    );
    assert_eq!(lab.node(1).stats().unmatched_replies, 1);
    // Still healthy.
    assert_eq!(lab.node(1).next_hop(&Lab::id(0)), Some(Lab::id(0)));
}

#[test]
fn a_leaving_member_says_goodbye_and_stops_after_its_grace() {
    let mut lab = Lab::new(3, NaradaConfig::default());
    lab.command(0, Command::Join { bootstrap: vec![] });
    lab.command(
        1,
        Command::Join {
            bootstrap: vec![Lab::id(0)],
        },
    );
    lab.command(
        2,
        Command::Join {
            bootstrap: vec![Lab::id(0)],
        },
    );
    lab.run_until(Time::from_secs(20));
    lab.command(1, Command::Leave);
    lab.run_until(Time::from_secs(21));
    assert!(
        !lab.node(1).has_left(),
        "still forwarding during the grace period"
    );
    lab.run_until(Time::from_secs(30));
    assert!(lab.node(1).has_left());
    assert!(lab.events_of(1).contains(&&Event::Left));
    assert!(lab.events_of(0).contains(&&Event::MemberLeft(Lab::id(1))));
    assert!(!lab.node(0).believes_alive(&Lab::id(1)));
    assert!(!lab.node(0).neighbours().contains(&Lab::id(1)));
    assert_eq!(lab.node(1).poll_timeout(), None);
}

/// A source whose upload carries one child stream feeds one neighbour and asks the other to
/// take its stream through that one: its own stream counts against its upload like any other.
#[test]
fn a_source_with_upload_for_one_child_stream_feeds_one_neighbour() {
    use overlay_core::Bandwidth;
    let mut config = NaradaConfig::default();
    config.routing.metric = crate::MetricKind::BandwidthLatency;
    config.bandwidth.stream_rate = Bandwidth::from_kbps(1000);
    let mut lab = Lab::with(3, config, |i, c| {
        if i == 0 {
            // 1.5 Mbit/s x 0.85: one child stream of 1 Mbit/s.
            c.bandwidth.upload = Some(Bandwidth::from_kbps(1500));
        }
    });
    lab.command(0, Command::Join { bootstrap: vec![] });
    for i in 1..3 {
        lab.command(
            i,
            Command::Join {
                bootstrap: vec![Lab::id(0)],
            },
        );
    }
    lab.run_until(Time::from_secs(20));
    assert_eq!(lab.node(0).neighbours().len(), 2, "0 meets both");
    let source = Lab::id(0);
    assert_eq!(lab.node(0).forwards_to(&source).len(), 2, "no stream yet");
    // 0 streams at its rate (a packet of 1250 bytes every 10 ms) for 20 s.
    let start = lab.now();
    for k in 0..2000u32 {
        let at = start + Duration::from_millis(10 * u64::from(k));
        lab.sim.schedule_command(
            at,
            0,
            Command::Publish {
                payload: Bytes::from(vec![0u8; 1250]),
                priority: 0,
            },
        );
    }
    lab.run_until(start + Duration::from_secs(20));
    let children = lab.node(0).forwards_to(&source);
    assert_eq!(children.len(), 1, "one child stream: {children:?}");
    let other = if children[0] == Lab::id(1) { 2 } else { 1 };
    assert_eq!(lab.node(other).next_hop(&source), Some(children[0]));
}

#[test]
fn keyframe_requests_go_up_the_source_tree_and_merge_on_the_way() {
    let mut lab = chain();
    assert_eq!(lab.node(2).next_hop(&Lab::id(0)), Some(Lab::id(1)));
    let ask = |lab: &mut Lab, who: usize| {
        lab.command(
            who,
            Command::RequestKeyframe {
                source: Lab::id(0),
                stream: 4,
            },
        )
    };
    let asked_of_source = |lab: &Lab| {
        lab.events_of(0)
            .iter()
            .filter(|e| matches!(e, Event::KeyframeRequested { stream: 4 }))
            .count()
    };
    // 2 asks twice, then 1 asks: one request reaches the source.
    ask(&mut lab, 2);
    ask(&mut lab, 2);
    lab.run_until(lab.now() + Duration::from_millis(100));
    ask(&mut lab, 1);
    lab.run_until(lab.now() + Duration::from_millis(100));
    assert_eq!(asked_of_source(&lab), 1);
    assert_eq!(lab.node(2).stats().keyframe_requests_sent, 1);
    assert_eq!(lab.node(2).stats().keyframe_requests_merged, 1);
    assert_eq!(lab.node(1).stats().keyframe_requests_sent, 1);
    assert_eq!(lab.node(1).stats().keyframe_requests_merged, 1);
    // After the gap a new loss is asked about again.
    lab.run_until(lab.now() + crate::KEYFRAME_REQUEST_GAP);
    ask(&mut lab, 2);
    lab.run_until(lab.now() + Duration::from_millis(100));
    assert_eq!(asked_of_source(&lab), 2);
    // The source asking itself is answered at once; a request naming an unknown handle is
    // counted and dropped.
    ask(&mut lab, 0);
    assert_eq!(asked_of_source(&lab), 3);
    let unknown_before = lab.node(1).stats().unknown_handles;
    lab.inject(
        2,
        1,
        Message::KeyframeRequest {
            source: 999,
            stream: 0,
        },
    );
    assert_eq!(lab.node(1).stats().unknown_handles, unknown_before + 1);
}

#[test]
fn route_news_lost_on_the_way_is_repaired_by_the_route_digest() {
    let mut lab = chain();
    assert_eq!(lab.node(2).next_hop(&Lab::id(0)), Some(Lab::id(1)));
    // Member 2 now holds a table from 1 that lacks the route to 0, as if 1's news had been
    // lost: 1 withdrew nothing and sends no route news while its own route stays.
    let withdrawal = Update {
        intro: vec![(700, Lab::id(0))],
        members: vec![],
        routes: vec![RouteEntry {
            dest: 700,
            route: None,
        }],
    };
    lab.inject(1, 2, Message::Update(withdrawal));
    assert_eq!(lab.node(2).next_hop(&Lab::id(0)), None);
    // Within a digest period (three heartbeats of about 10 s) 2 sees 1's digest differ, asks,
    // and gets the table again.
    let t = lab.now();
    lab.run_until(t + Duration::from_secs(40));
    assert_eq!(lab.node(2).next_hop(&Lab::id(0)), Some(Lab::id(1)));
    assert!(lab.node(2).stats().route_asks >= 1);
    assert!(lab.node(1).stats().route_tables_sent >= 1);
    // With tables alike, digests ask for nothing: no table crosses the link for a minute.
    let (asks, sent) = (
        lab.node(2).stats().route_asks,
        lab.node(1).stats().route_tables_sent,
    );
    let t = lab.now();
    lab.run_until(t + Duration::from_secs(60));
    assert_eq!(lab.node(2).stats().route_asks, asks);
    assert_eq!(lab.node(1).stats().route_tables_sent, sent);
    // A neighbour asking again and again gets one table per heartbeat interval.
    for _ in 0..5 {
        lab.inject(2, 1, Message::RouteAsk { reintroduce: false });
    }
    assert_eq!(lab.node(1).stats().route_tables_sent, sent + 1);
}

#[test]
fn an_introduction_lost_on_the_way_is_made_again_when_the_digest_differs() {
    // A chain 3 - 0 - 1 - 2: member 3 joins through 0 while every update from 1 to 2 is lost,
    // so 2 never hears 1 introduce 3, and 1 believes it did.
    let mut lab = chain_of(4, |i| i <= 1);
    lab.sim
        .set_drop_filter(Some(Box::new(|from, to, msg: &Message| {
            from == 1 && to == 2 && matches!(msg, Message::Update(_))
        })));
    lab.command(
        3,
        Command::Join {
            bootstrap: vec![Lab::id(0)],
        },
    );
    lab.run_until(Time::from_secs(8));
    lab.sim.set_drop_filter(None);
    assert_eq!(lab.node(1).next_hop(&Lab::id(3)), Some(Lab::id(0)));
    assert_eq!(lab.node(2).next_hop(&Lab::id(3)), None);
    // 1's digest now differs from what 2 holds; the table 1 resends names 3 by a handle 2
    // cannot read, so 2 asks again for the introductions too, and learns the route.
    lab.run_until(Time::from_secs(80));
    assert_eq!(lab.node(2).next_hop(&Lab::id(3)), Some(Lab::id(1)));
    assert!(lab.node(2).stats().unknown_handles >= 1);
}

#[test]
fn a_withdrawal_sent_at_once_is_not_sent_again_with_the_batched_routes() {
    // Chain 0 - 1 - 2: when 0 falls silent, 1 withdraws its route to 0 from 2 at once; the
    // batch of route news that follows must not carry the same withdrawal again.
    let mut lab = chain();
    let withdrawals = std::rc::Rc::new(std::cell::Cell::new(0usize));
    let seen = withdrawals.clone();
    lab.sim
        .set_drop_filter(Some(Box::new(move |from, to, msg: &Message| {
            if let (1, 2, Message::Update(u)) = (from, to, msg) {
                let n = u.routes.iter().filter(|r| r.route.is_none()).count();
                seen.set(seen.get() + n);
            }
            false
        })));
    lab.sim.silence(0);
    let t = lab.now();
    lab.run_until(t + Duration::from_secs(20));
    assert_eq!(lab.node(2).next_hop(&Lab::id(0)), None);
    assert!(!lab.node(2).believes_alive(&Lab::id(0)));
    assert_eq!(withdrawals.get(), 1, "withdrawals of 0 sent from 1 to 2");
}
