//! Exact-output tests of the mesh: each drives one input into a member's mesh and asserts the
//! whole drained output.

use std::collections::BTreeSet;

use overlay_core::{NodeId, Output, Time};
use probe::ProberEvent;

use super::*;
use crate::config::MeshConfig;
use crate::costs::{Fingerprint, fingerprint};
use crate::message::{Liveness, MemberEntry, RouteAdvert, RouteEntry, Update};
use crate::{Event, NaradaConfig};

fn id(i: u64) -> NodeId {
    NodeId::from_index(i)
}

/// Member 0's parts, the group founded (its own outputs drained).
fn founder(mesh: MeshConfig) -> (Core, Mesh) {
    let config = NaradaConfig {
        mesh,
        ..NaradaConfig::default()
    };
    let mut cx = Core::new(id(0), config, Time::ZERO);
    let mut m = Mesh::default();
    m.join(&mut cx, Time::ZERO, Vec::new());
    assert_eq!(drained(&mut cx), vec![Output::Emit(Event::Joined)]);
    (cx, m)
}

fn drained(cx: &mut Core) -> Vec<Output<Message, Event>> {
    std::iter::from_fn(|| cx.outbox.pop()).collect()
}

fn ask(reason: LinkReason, rtt_us: u32) -> LinkAsk {
    LinkAsk {
        reason,
        rtt_us,
        utility: 0.0,
    }
}

#[test]
fn a_joiner_asks_one_bootstrap_member_for_a_link_and_retries_later() {
    let config = NaradaConfig::default();
    let mut cx = Core::new(id(5), config.clone(), Time::ZERO);
    let mut m = Mesh::default();
    let now = Time::from_secs(1);
    m.join(&mut cx, now, vec![id(0)]);
    assert_eq!(
        drained(&mut cx),
        vec![Output::Send {
            to: id(0),
            msg: Message::LinkRequest {
                reason: LinkReason::Join,
                rtt_us: 0,
                utility_milli: 0,
            },
        }]
    );
    assert_eq!(
        cx.timers.get(Timer::JoinRetry),
        Some(now + config.membership.join_retry)
    );
}

#[test]
fn a_link_request_is_accepted_with_everything_the_member_knows() {
    let (mut cx, mut m) = founder(MeshConfig::default());
    let now = Time::from_secs(1);
    let joiner = cx.members.intern(id(7), now);
    m.on_link_request(&mut cx, now, joiner, ask(LinkReason::Join, 20_000));
    let own_seq = cx.members.record(SELF_SLOT).map(|r| r.seq).unwrap();
    let one_way = PathMetric {
        width: PathMetric::UNBOUNDED,
        dist: 10_000,
    };
    assert_eq!(
        drained(&mut cx),
        vec![
            Output::Send {
                to: id(7),
                msg: Message::LinkAccept
            },
            Output::Emit(Event::NeighbourUp(id(7))),
            // The full sync: this member alive, and its route to itself.
            Output::Send {
                to: id(7),
                msg: Message::Update(Update {
                    intro: vec![(SELF_SLOT, id(0))],
                    members: vec![MemberEntry {
                        member: SELF_SLOT,
                        seq: own_seq,
                        liveness: Liveness::Alive,
                    }],
                    routes: vec![RouteEntry {
                        dest: SELF_SLOT,
                        route: Some(RouteAdvert {
                            metric: PathMetric::ZERO,
                            latency_us: 0,
                            path: crate::message::WirePath::new(),
                        }),
                    }],
                }),
            },
            // The new route to the joiner goes to its next hop (the joiner) at once.
            Output::Send {
                to: id(7),
                msg: Message::Update(Update {
                    intro: vec![(joiner, id(7))],
                    members: Vec::new(),
                    routes: vec![RouteEntry {
                        dest: joiner,
                        route: Some(RouteAdvert {
                            metric: one_way,
                            latency_us: 10_000,
                            path: smallvec::smallvec![joiner],
                        }),
                    }],
                }),
            },
        ]
    );
    assert_eq!(cx.neighbours.len(), 1);
}

#[test]
fn a_full_member_refuses_a_link_and_refers_the_asker_to_its_neighbours() {
    let (mut cx, mut m) = founder(MeshConfig {
        min_degree: 1,
        max_degree: 1,
        ..MeshConfig::default()
    });
    let now = Time::from_secs(1);
    let first = cx.members.intern(id(7), now);
    m.on_link_request(&mut cx, now, first, ask(LinkReason::Join, 20_000));
    drained(&mut cx);
    let second = cx.members.intern(id(8), now);
    m.on_link_request(&mut cx, now, second, ask(LinkReason::Join, 20_000));
    assert_eq!(
        drained(&mut cx),
        vec![Output::Send {
            to: id(8),
            msg: Message::LinkReject {
                referrals: vec![id(7)]
            },
        }]
    );
}

#[test]
fn a_neighbour_silent_for_three_pings_is_declared_dead_and_its_routes_withdrawn() {
    let (mut cx, mut m) = founder(MeshConfig::default());
    let now = Time::from_secs(1);
    let (a, b) = (cx.members.intern(id(7), now), cx.members.intern(id(8), now));
    m.on_link_request(&mut cx, now, a, ask(LinkReason::Join, 20_000));
    m.on_link_request(&mut cx, now, b, ask(LinkReason::Join, 20_000));
    drained(&mut cx);
    let lost = ProberEvent::Lost {
        peer: id(7),
        loss_per_mille: 1000,
    };
    m.on_probe_event(&mut cx, now, lost);
    m.on_probe_event(&mut cx, now, lost);
    assert_eq!(drained(&mut cx), Vec::new(), "two lost pings are not death");
    m.on_probe_event(&mut cx, now, lost);
    let withdrawal = Message::Update(Update {
        intro: Vec::new(),
        members: Vec::new(),
        routes: vec![RouteEntry {
            dest: a,
            route: None,
        }],
    });
    assert_eq!(
        drained(&mut cx),
        vec![
            Output::Emit(Event::MemberDied(id(7))),
            Output::Emit(Event::NeighbourDown(id(7))),
            // The remaining neighbour hears at once that 7 is unreachable through this member.
            Output::Send {
                to: id(8),
                msg: withdrawal,
            },
        ]
    );
    assert_eq!(cx.stats.neighbours_died, 1);
    assert!(!cx.neighbours.contains_key(&a));
}

#[test]
fn a_probe_that_filled_a_slow_members_download_measured_the_download_not_the_link() {
    let (mut cx, mut m) = founder(MeshConfig::default());
    // A download narrower than the stream (1.2 Mbit/s by default).
    cx.config.bandwidth.download = Some(Bandwidth::from_kbps(600));
    let now = Time::from_secs(1);
    let (a, b) = (cx.members.intern(id(7), now), cx.members.intern(id(8), now));
    m.on_link_request(&mut cx, now, a, ask(LinkReason::Join, 20_000));
    m.on_link_request(&mut cx, now, b, ask(LinkReason::Join, 20_000));
    drained(&mut cx);
    let level = |cx: &Core, n| cx.neighbours.get(&n).and_then(|n| n.bandwidth.level());
    let probe = Bandwidth::from_kbps(100);
    // 100 kbit/s came through 7 while 520 arrived from elsewhere: the download was full, so
    // 7's link carries what the download does (600 kbit/s, level 5).
    let busy = Some(Bandwidth::from_kbps(520));
    m.on_bandwidth_measured(&mut cx, now, id(7), probe, busy);
    assert_eq!(level(&cx, a), Some(5));
    // With little else arriving, the same probe through 8 measured the link.
    let idle = Some(Bandwidth::from_kbps(100));
    m.on_bandwidth_measured(&mut cx, now, id(8), probe, idle);
    assert_eq!(level(&cx, b), Some(1));
    // Once a later probe through 8 fills the download, 8's link carries what the download
    // does at once (smoothed with the first, it would read level 2).
    m.on_bandwidth_measured(&mut cx, now, id(8), probe, busy);
    assert_eq!(level(&cx, b), Some(5));
    // A member whose download carries a stream keeps what the probe found.
    cx.config.bandwidth.download = Some(Bandwidth::from_kbps(2000));
    let c = cx.members.intern(id(9), now);
    m.on_link_request(&mut cx, now, c, ask(LinkReason::Join, 20_000));
    m.on_bandwidth_measured(&mut cx, now, id(9), probe, Some(Bandwidth::from_kbps(1900)));
    assert_eq!(level(&cx, c), Some(1));
}

#[test]
fn a_link_measured_one_level_under_a_narrow_download_is_as_wide_as_the_download() {
    let (mut cx, mut m) = founder(MeshConfig::default());
    cx.config.routing.metric = crate::MetricKind::BandwidthLatency;
    // 600 kbit/s against a 1.2 Mbit/s stream: level 5 of 10.
    cx.config.bandwidth.download = Some(Bandwidth::from_kbps(600));
    let now = Time::from_secs(1);
    let (near, far, thin) = (
        cx.members.intern(id(7), now),
        cx.members.intern(id(8), now),
        cx.members.intern(id(9), now),
    );
    m.on_link_request(&mut cx, now, near, ask(LinkReason::Join, 10_000));
    m.on_link_request(&mut cx, now, far, ask(LinkReason::Join, 30_000));
    m.on_link_request(&mut cx, now, thin, ask(LinkReason::Join, 10_000));
    drained(&mut cx);
    // Two samples of the same download that round to levels 4 and 5, and a link that is
    // really narrower (level 3).
    for (n, kbps) in [(near, 530), (far, 600), (thin, 350)] {
        if let Some(nb) = cx.neighbours.get_mut(&n) {
            nb.bandwidth.on_probe(now, Bandwidth::from_kbps(kbps));
        }
    }
    let level = |cx: &Core, n| cx.neighbours.get(&n).and_then(|n| n.bandwidth.level());
    assert_eq!(
        (level(&cx, near), level(&cx, far), level(&cx, thin)),
        (Some(4), Some(5), Some(3))
    );
    let links = cx.link_costs();
    let width = |n: Slot| links.get(&n).map(|l| l.metric.width);
    // The first two tie at the download, so the nearer link wins on latency; the third stays
    // narrower.
    assert_eq!(width(near), width(far));
    assert!(
        width(thin) < width(near),
        "{:?} {:?}",
        width(thin),
        width(near)
    );
    assert!(links[&near].metric.dist < links[&far].metric.dist);
    // Without a narrow download a level is a level.
    cx.config.bandwidth.download = None;
    let links = cx.link_costs();
    assert!(links[&near].metric.width < links[&far].metric.width);
}

#[test]
fn a_download_shared_by_several_streams_is_as_narrow_as_its_share_of_each() {
    let (mut cx, mut m) = founder(MeshConfig::default());
    cx.config.routing.metric = crate::MetricKind::BandwidthLatency;
    // Streams of 500 kbit/s (a level is 50 kbit/s) into a download of 1.2 Mbit/s.
    cx.config.bandwidth.stream_rate = Bandwidth::from_kbps(500);
    cx.config.bandwidth.download = Some(Bandwidth::from_kbps(1_200));
    cx.config.bandwidth.download_shared = true;
    let now = Time::from_secs(1);
    let (a, b) = (cx.members.intern(id(7), now), cx.members.intern(id(8), now));
    m.on_link_request(&mut cx, now, a, ask(LinkReason::Join, 20_000));
    m.on_link_request(&mut cx, now, b, ask(LinkReason::Join, 20_000));
    drained(&mut cx);
    let width = |cx: &Core, n| cx.link_costs()[&n].metric;
    let level = |cx: &Core, n| cx.neighbours.get(&n).and_then(|n| n.bandwidth.level());
    // One stream arriving: the download holds it whole; nothing is narrow.
    cx.streams_in = 1;
    assert_eq!(cx.narrow_download(), None);
    m.on_bandwidth_measured(&mut cx, now, id(8), Bandwidth::from_kbps(2_000), None);
    let wide = width(&cx, b);
    // Three: 400 kbit/s each, and no link into this member is wider than that (level 8).
    cx.streams_in = 3;
    assert_eq!(cx.narrow_download(), Some(Bandwidth::from_kbps(400)));
    assert_ne!(width(&cx, b), wide);
    assert_eq!(
        width(&cx, b),
        crate::MetricKind::BandwidthLatency.link(cx.neighbours[&b].cost_us(), 8, &id(0), &id(8),)
    );
    // 7 carries the three streams and its report says 300 kbit/s of each arrived, 900 of the
    // download's 1200: the download was full, so the link carries the download's share of
    // each (level 8), not the 6 levels measured, and ties with the idle link.
    m.on_bandwidth_measured(&mut cx, now, id(7), Bandwidth::from_kbps(2_000), None);
    for at in [20, 22, 24] {
        if let Some(nb) = cx.neighbours.get_mut(&a) {
            nb.received_bytes = 225_000;
        }
        cx.on_rate(
            Time::from_secs(at),
            a,
            375_000,
            2_000,
            3,
            Some(Bandwidth::from_kbps(900)),
        );
    }
    assert_eq!(level(&cx, a), Some(8));
    assert_eq!(width(&cx, a), width(&cx, b));
}

#[test]
fn a_slow_members_new_parent_is_not_judged_by_its_first_reports() {
    let (mut cx, mut m) = founder(MeshConfig::default());
    let now = Time::from_secs(1);
    let a = cx.members.intern(id(7), now);
    m.on_link_request(&mut cx, now, a, ask(LinkReason::Join, 20_000));
    drained(&mut cx);
    let estimate = |cx: &Core| cx.neighbours.get(&a).and_then(|n| n.bandwidth.estimate());
    let probe = Bandwidth::from_kbps(600);
    m.on_bandwidth_measured(&mut cx, now, id(7), probe, None);
    // A report of 2 s: the stream (1.2 Mbit/s) sent whole, 300 kbit/s of it arrived.
    let report = |cx: &mut Core, at: u64| {
        if let Some(nb) = cx.neighbours.get_mut(&a) {
            nb.received_bytes = 75_000;
        }
        cx.on_rate(Time::from_secs(at), a, 300_000, 2_000, 1, None);
    };
    // A member whose download (600 kbit/s) is narrower than the stream: the first two
    // reports of the link's run, while the new parent's rate grows into it, do not lower the
    // link's estimate; the third does.
    cx.config.bandwidth.download = Some(Bandwidth::from_kbps(600));
    assert_eq!(estimate(&cx), Some(probe));
    report(&mut cx, 2);
    report(&mut cx, 4);
    assert_eq!(estimate(&cx), Some(probe));
    report(&mut cx, 6);
    let lowered = estimate(&cx);
    assert!(lowered < Some(probe), "{lowered:?}");
    // After a gap (the parent stopped sending), a new run starts: again two reports of grace.
    report(&mut cx, 20);
    report(&mut cx, 22);
    assert_eq!(estimate(&cx), lowered);
    // A member with a wide download takes the first report of a run as it comes.
    cx.config.bandwidth.download = None;
    report(&mut cx, 40);
    assert!(
        estimate(&cx) < lowered,
        "{:?} then {lowered:?}",
        estimate(&cx)
    );
}

#[test]
fn a_busy_link_turning_congested_makes_idle_links_measured_long_ago_doubtful() {
    let (mut cx, mut m) = founder(MeshConfig::default());
    cx.config.routing.metric = crate::MetricKind::BandwidthLatency;
    let now = Time::from_secs(1);
    let (a, b) = (cx.members.intern(id(7), now), cx.members.intern(id(8), now));
    m.on_link_request(&mut cx, now, a, ask(LinkReason::Join, 20_000));
    m.on_link_request(&mut cx, now, b, ask(LinkReason::Join, 20_000));
    let level = |cx: &Core, n| cx.neighbours.get(&n).and_then(|n| n.bandwidth.level());
    // Both links probed full at first (the stream is 1.2 Mbit/s by default).
    let full = Bandwidth::from_kbps(2_400);
    m.on_bandwidth_measured(&mut cx, now, id(7), full, None);
    m.on_bandwidth_measured(&mut cx, now, id(8), full, None);
    assert_eq!((level(&cx, a), level(&cx, b)), (Some(10), Some(10)));
    drained(&mut cx);
    // 7 carries the stream; from 20 s its reports say a quarter of it arrives.
    for at in [20, 22, 24] {
        if let Some(nb) = cx.neighbours.get_mut(&a) {
            nb.received_bytes = 75_000;
        }
        cx.on_rate(Time::from_secs(at), a, 300_000, 2_000, 1, None);
    }
    let congested = level(&cx, a).unwrap();
    assert!(congested < 10);
    // 8's link, idle and measured 19 s before, is taken to carry no more, and probed again.
    assert_eq!(level(&cx, b), Some(congested));
    assert!(cx.stats.links_doubted >= 1);
    let probed = drained(&mut cx)
        .iter()
        .filter(|o| matches!(o, Output::Measure { peer, .. } if *peer == id(8)))
        .count();
    assert_eq!(probed, 1, "one probe of the doubted link");
    // A probe that finds it about as wide as 7's link (the same full download): still doubted.
    let doubt = cx.neighbours[&b].doubted_above.unwrap();
    let t = Time::from_secs(25);
    m.on_bandwidth_measured(
        &mut cx,
        t,
        id(8),
        Bandwidth::from_bps_f64(doubt.bps_f64() * 1.2),
        None,
    );
    assert_eq!(level(&cx, b), Some(congested));
    assert!(cx.neighbours[&b].doubted_above.is_some());
    // One that finds it clearly wider: another path, trusted.
    m.on_bandwidth_measured(&mut cx, t, id(8), full, None);
    assert!(level(&cx, b).unwrap() > congested);
    assert!(cx.neighbours[&b].doubted_above.is_none());
}

#[test]
fn a_congested_link_beside_one_that_delivers_everything_doubts_no_idle_link() {
    let (mut cx, mut m) = founder(MeshConfig::default());
    cx.config.routing.metric = crate::MetricKind::BandwidthLatency;
    let now = Time::from_secs(1);
    let slots: Vec<Slot> = (7..10).map(|i| cx.members.intern(id(i), now)).collect();
    for (&s, i) in slots.iter().zip(7..10) {
        m.on_link_request(&mut cx, now, s, ask(LinkReason::Join, 20_000));
        m.on_bandwidth_measured(&mut cx, now, id(i), Bandwidth::from_kbps(2_400), None);
    }
    let (busy, fine, idle) = (slots[0], slots[1], slots[2]);
    // 8 has been carrying a stream whole.
    if let Some(nb) = cx.neighbours.get_mut(&fine) {
        nb.received_bytes = 300_000;
    }
    cx.on_rate(Time::from_secs(18), fine, 300_000, 2_000, 1, None);
    // 7's stream arrives a quarter whole while 8's arrives whole: the download has room.
    for at in [20, 22, 24] {
        for (s, received) in [(busy, 75_000), (fine, 300_000)] {
            if let Some(nb) = cx.neighbours.get_mut(&s) {
                nb.received_bytes = received;
            }
            cx.on_rate(Time::from_secs(at), s, 300_000, 2_000, 1, None);
        }
    }
    let level = |n| cx.neighbours.get(&n).and_then(|n| n.bandwidth.level());
    assert!(level(busy).unwrap() < 10);
    assert_eq!(level(idle), Some(10), "9's idle link is not doubted");
    assert_eq!(cx.stats.links_doubted, 0);
}

#[test]
fn members_found_dead_together_are_reprobed_out_of_step_within_the_bound() {
    // A partition cuts all four of member 0's links at once: it keeps probing each lost
    // neighbour in case the cut heals, at jittered waits below the bound, not all in step.
    let (mut cx, mut m) = founder(MeshConfig::default());
    let linked_at = Time::from_secs(1);
    let lost: Vec<Slot> = (7..11)
        .map(|i| cx.members.intern(id(i), linked_at))
        .collect();
    for &s in &lost {
        m.on_link_request(&mut cx, linked_at, s, ask(LinkReason::Join, 20_000));
    }
    let cut_at = Time::from_secs(10);
    for &s in &lost {
        m.member_died(&mut cx, cut_at, s);
    }
    drained(&mut cx);
    let bound = cx.config.repair.suspect_reprobe_max;
    let timeout = cx.config.repair.probe_timeout;
    let mut probes: BTreeMap<NodeId, Vec<Time>> = BTreeMap::new();
    for second in 11..=130 {
        let now = Time::from_secs(second);
        let expired: Vec<u64> = m
            .queries
            .iter()
            .filter(|(_, q)| q.sent + timeout <= now)
            .map(|(&nonce, _)| nonce)
            .collect();
        for nonce in expired {
            m.query_expired(&mut cx, now, nonce);
        }
        m.repair_tick(&mut cx, now);
        for out in drained(&mut cx) {
            if let Output::Send {
                to,
                msg: Message::TableQuery { .. },
            } = out
            {
                probes.entry(to).or_default().push(now);
            }
        }
    }
    assert_eq!(
        probes.len(),
        lost.len(),
        "every lost neighbour is probed: {probes:?}"
    );
    let settled = Time::from_secs(60);
    for (peer, times) in &probes {
        let late: Vec<Time> = times.iter().copied().filter(|&t| t >= settled).collect();
        assert!(late.len() >= 7, "{peer:?} probed {late:?} after a minute");
        for pair in late.windows(2) {
            let gap = pair[1].saturating_since(pair[0]);
            // Checked once a second: a drawn wait of 4-8 s shows as 4-9 s.
            assert!(
                gap >= bound / 2 && gap <= bound + Duration::from_secs(1),
                "{peer:?}: {gap:?} between probes"
            );
        }
    }
    let schedules: BTreeSet<&Vec<Time>> = probes.values().collect();
    assert!(schedules.len() > 1, "all probed in step: {probes:?}");
}

#[test]
fn a_reply_to_an_asker_with_other_members_names_them_by_fingerprint() {
    // The replier knows 7, 8 and 9; the asker's digest differs, so each cost comes with the
    // four-byte fingerprint of its member under the query's nonce.
    let (mut cx, m) = founder(MeshConfig::default());
    let now = Time::from_secs(1);
    for i in 7..10 {
        let s = cx.members.intern(id(i), now);
        cx.members.observe(s, 1, Liveness::Alive, None, now);
    }
    let nonce = 0x5eed;
    m.on_table_query(&mut cx, id(3), nonce, 0);
    let live: Vec<NodeId> = cx
        .members
        .sorted_live()
        .to_vec()
        .into_iter()
        .filter_map(|s| cx.members.id_of(s))
        .collect();
    assert_eq!(live.len(), 4, "itself and three others");
    let Some(Output::Send {
        msg: Message::TableReply { costs, members, .. },
        ..
    }) = cx.outbox.pop()
    else {
        panic!("no table reply");
    };
    let expected: Vec<Fingerprint> = live.iter().map(|i| fingerprint(nonce, i)).collect();
    assert_eq!(members, Some(expected));
    assert_eq!(costs.unpack(16).unwrap().len(), 4);
    // The asker maps each fingerprint back to its own slot for that member.
    let known = Mesh::fingerprinted_live(&mut cx, nonce);
    for i in live {
        let slot = cx.members.slot_of(&i);
        assert_eq!(known.get(&fingerprint(nonce, &i)).copied().flatten(), slot);
    }
}

#[test]
fn two_members_sharing_a_fingerprint_are_told_apart_by_neither() {
    // Find two ids whose fingerprints collide under nonce 0 (the birthday bound: about 77 000
    // ids), make both live, and check the asker's index refuses to guess between them.
    let nonce = 0;
    let mut seen: BTreeMap<Fingerprint, u64> = BTreeMap::new();
    let (a, b) = (1..1_000_000u64)
        .find_map(|i| {
            seen.insert(fingerprint(nonce, &id(i)), i)
                .map(|earlier| (earlier, i))
        })
        .expect("a collision among a million ids");
    let (mut cx, _) = founder(MeshConfig::default());
    let now = Time::from_secs(1);
    for i in [a, b, 5] {
        let s = cx.members.intern(id(i), now);
        cx.members.observe(s, 1, Liveness::Alive, None, now);
    }
    let known = Mesh::fingerprinted_live(&mut cx, nonce);
    assert_eq!(known.get(&fingerprint(nonce, &id(a))), Some(&None));
    let five = cx.members.slot_of(&id(5));
    assert_eq!(
        known.get(&fingerprint(nonce, &id(5))).copied().flatten(),
        five
    );
    // Under another nonce the two are told apart again.
    let other = Mesh::fingerprinted_live(&mut cx, 1);
    assert_ne!(fingerprint(1, &id(a)), fingerprint(1, &id(b)));
    assert!(
        other
            .get(&fingerprint(1, &id(a)))
            .copied()
            .flatten()
            .is_some()
    );
}
