//! The authoritative resolver driven by hand: registration, probes and their calibration, pushes
//! (signed, unsigned, absurd), answers, unknown groups, a server that stops answering probes.

use std::net::SocketAddr;
use std::time::Duration;

use anycast_resolver::{
    AnycastName, Filter, Message, Pipeline, Push, PushAgent, PushConfig, Resolver, ResolverConfig,
};
use overlay_core::signature::SimulatedSignatures;
use overlay_core::{NodeId, Output, Protocol, Time};

const SECRET: u64 = 42;

fn at(ms: u64) -> Time {
    Time::ZERO + Duration::from_millis(ms)
}

fn id(i: u64) -> NodeId {
    NodeId::from_index(i)
}

fn web() -> AnycastName {
    "web%example.org".parse().unwrap()
}

fn addr(i: u64) -> SocketAddr {
    format!("192.0.2.{i}:443").parse().unwrap()
}

fn resolver() -> Resolver {
    Resolver::new(
        id(100),
        ResolverConfig {
            domain: "example.org".to_owned(),
            ..ResolverConfig::default()
        },
        Box::new(SimulatedSignatures::new(SECRET, id(100))),
    )
}

/// The messages the resolver sent, with their destinations.
fn sent(r: &mut Resolver) -> Vec<(NodeId, Message)> {
    let mut out = Vec::new();
    while let Some(o) = r.poll_output() {
        if let Output::Send { to, msg } = o {
            out.push((to, msg));
        }
    }
    out
}

/// Register servers 1..=n, answer each one's first probe after `rt_ms[i]` with `tufr_ms[i]`.
fn calibrated(rt_ms: &[u64], tufr_ms: &[u64]) -> Resolver {
    let mut r = resolver();
    for (i, _) in rt_ms.iter().enumerate() {
        let s = i as u64 + 1;
        r.handle_message(
            at(0),
            id(s),
            Message::Register {
                name: web(),
                address: addr(s),
            },
        );
    }
    r.handle_timeout(at(0));
    let probes = sent(&mut r);
    assert_eq!(probes.len(), rt_ms.len(), "one probe per new server");
    for (to, msg) in probes {
        let Message::Probe { nonce } = msg else {
            panic!("{msg:?}")
        };
        let i = (1..=rt_ms.len() as u64).position(|s| id(s) == to).unwrap();
        r.handle_message(
            at(rt_ms[i]),
            to,
            Message::ProbeReply {
                nonce,
                tufr_us: tufr_ms[i] * 1000,
            },
        );
    }
    r
}

/// The answer to a query at `now`: (server index, estimate in ms), by index.
fn estimates(r: &mut Resolver, now: Time) -> Vec<(u64, Option<u64>)> {
    r.handle_message(now, id(200), Message::Query { id: 1, name: web() });
    let answer = sent(r).pop().unwrap().1;
    let Message::Answer { servers, .. } = answer else {
        panic!("{answer:?}")
    };
    let mut listed: Vec<(u64, Option<u64>)> = servers
        .into_iter()
        .map(|s| {
            let index = (0..300).find(|&i| id(i) == s.server).unwrap();
            (index, s.estimate_us.map(|us| us / 1000))
        })
        .collect();
    listed.sort_unstable();
    listed
}

#[test]
fn probes_calibrate_and_pushes_move_the_estimates() {
    let mut r = calibrated(&[200, 400], &[50, 200]);
    assert_eq!(
        estimates(&mut r, at(1000)),
        [(1, Some(200)), (2, Some(400))]
    );
    // Server 1 gets six times busier and says so: its estimate follows (150 ms of network plus
    // 300 ms of processing).
    let mut agent = PushAgent::new(
        id(1),
        PushConfig::default(),
        Box::new(SimulatedSignatures::new(SECRET, id(1))),
    );
    agent.on_served(Duration::from_millis(300));
    let push = agent.poll_push(at(2000)).unwrap();
    r.handle_message(at(2000), id(1), Message::Push(push));
    assert_eq!(
        estimates(&mut r, at(3000)),
        [(1, Some(450)), (2, Some(400))]
    );
    let pick = r
        .pick(
            at(3000),
            &web(),
            &Pipeline::new(vec![Filter::LowestEstimate]),
        )
        .unwrap();
    assert_eq!(pick, Some((id(2), addr(2))));
    assert_eq!(r.stats().pushes, 1);
}

#[test]
fn bad_pushes_are_counted_and_change_nothing() {
    let mut r = calibrated(&[200], &[50]);
    let before = estimates(&mut r, at(1000));
    let forged = Push {
        server: id(1),
        seq: 1,
        tufr_us: 1_000,
        spare_mrps: Some(5_000),
        signature: vec![0; 8],
    };
    r.handle_message(at(1000), id(9), Message::Push(forged));
    let mut agent = PushAgent::new(
        id(1),
        PushConfig::default(),
        Box::new(SimulatedSignatures::new(SECRET, id(1))),
    );
    agent.on_served(Duration::from_secs(3600));
    let absurd = agent.poll_push(at(1000)).unwrap();
    r.handle_message(at(1000), id(1), Message::Push(absurd.clone()));
    r.handle_message(at(1000), id(1), Message::Push(absurd));
    let stranger = Push {
        server: id(77),
        seq: 1,
        tufr_us: 1_000,
        spare_mrps: None,
        signature: vec![],
    };
    r.handle_message(at(1000), id(77), Message::Push(stranger));
    // Signed, a believable delay, but an absurd spare capacity.
    let mut boaster = PushAgent::new(
        id(1),
        PushConfig::default(),
        Box::new(SimulatedSignatures::new(SECRET, id(1))),
    );
    boaster.on_served(Duration::from_millis(50));
    boaster.on_spare(1e12);
    let boast = boaster.poll_push(at(1000)).unwrap();
    r.handle_message(at(1000), id(1), Message::Push(boast));
    let stats = r.stats();
    assert_eq!(
        (stats.pushes, stats.pushes_unsigned, stats.pushes_refused),
        (0, 2, 3)
    );
    assert_eq!(estimates(&mut r, at(1000)), before);
    // A reply matching no probe is refused too.
    r.handle_message(
        at(1000),
        id(1),
        Message::ProbeReply {
            nonce: 999,
            tufr_us: 5,
        },
    );
    assert_eq!(r.stats().replies_refused, 1);
}

#[test]
fn unknown_groups_and_other_domains_get_no_such_group() {
    let mut r = calibrated(&[200], &[50]);
    for name in ["mail%example.org", "web%other.net"] {
        let name: AnycastName = name.parse().unwrap();
        r.handle_message(
            at(10),
            id(200),
            Message::Query {
                id: 7,
                name: name.clone(),
            },
        );
        assert_eq!(
            sent(&mut r),
            [(id(200), Message::NoSuchGroup { id: 7, name })]
        );
    }
    // Registering in another domain is refused.
    r.handle_message(
        at(10),
        id(5),
        Message::Register {
            name: "web%other.net".parse().unwrap(),
            address: addr(5),
        },
    );
    assert!(
        r.pick(
            at(10),
            &"web%other.net".parse().unwrap(),
            &Pipeline::default()
        )
        .is_err()
    );
}

#[test]
fn a_server_that_stops_answering_probes_leaves_the_answers() {
    let mut r = calibrated(&[200, 300], &[50, 50]);
    // Run past the next probes; only server 2 answers.
    let mut now = at(1000);
    let mut answered_2 = false;
    while now < at(100_000) {
        r.handle_timeout(now);
        for (to, msg) in sent(&mut r) {
            if let (true, Message::Probe { nonce }) = (to == id(2), msg) {
                r.handle_message(
                    now + Duration::from_millis(300),
                    to,
                    Message::ProbeReply {
                        nonce,
                        tufr_us: 50_000,
                    },
                );
                answered_2 = true;
            }
        }
        now += Duration::from_secs(1);
    }
    assert!(answered_2);
    assert!(r.stats().probes_lost >= 1);
    let listed: Vec<u64> = estimates(&mut r, now).into_iter().map(|(s, _)| s).collect();
    assert_eq!(listed, [2]);
}

#[test]
fn registrations_stop_at_the_tables_bounds() {
    use anycast_resolver::resolver::{MAX_GROUPS, MAX_GROUPS_PER_SERVER, MAX_SERVERS};
    let mut r = resolver();
    let register = |r: &mut Resolver, server: u64, group: &str| {
        r.handle_message(
            at(0),
            id(server),
            Message::Register {
                name: format!("{group}%example.org").parse().unwrap(),
                address: addr(server % 250 + 1),
            },
        );
    };
    // One insider inventing groups: capped per server.
    for g in 0..(MAX_GROUPS_PER_SERVER + 10) {
        register(&mut r, 1, &format!("g{g}"));
    }
    assert_eq!(r.stats().registrations_refused, 10);
    // Insiders inventing keys: capped in all (server 1 holds one place: of the MAX + 18 new
    // ones, 19 find none).
    for s in 2..(MAX_SERVERS as u64 + 20) {
        register(&mut r, s, "web");
    }
    assert_eq!(r.stats().registrations_refused, 10 + 19);
    // Groups across servers: capped in all (server 1 already holds its 16).
    let before = r.stats().registrations_refused;
    for g in 0..(MAX_GROUPS + 50) {
        register(
            &mut r,
            2 + (g / MAX_GROUPS_PER_SERVER) as u64,
            &format!("h{g}"),
        );
    }
    assert!(r.stats().registrations_refused > before);
    let _ = sent(&mut r);
}

#[test]
fn a_server_whose_link_goes_down_leaves_the_answers_at_once_and_returns_when_probed() {
    use overlay_core::LinkEvent;
    let mut r = calibrated(&[200, 300], &[50, 50]);
    let listed = |r: &mut Resolver, now| -> Vec<u64> {
        estimates(r, now).into_iter().map(|(s, _)| s).collect()
    };
    assert_eq!(listed(&mut r, at(1000)), [1, 2]);
    r.handle_link(at(1000), id(1), LinkEvent::Down);
    assert_eq!(listed(&mut r, at(1000)), [2], "gone with its link");
    assert_eq!(r.stats().links_lost, 1);
    // Back up: probed at once, and listed again once the probe is answered.
    let _ = sent(&mut r);
    r.handle_link(at(2000), id(1), LinkEvent::Up);
    r.handle_timeout(at(2000));
    let probe = sent(&mut r)
        .into_iter()
        .find_map(|(to, m)| match m {
            Message::Probe { nonce } if to == id(1) => Some(nonce),
            _ => None,
        })
        .expect("a probe when the link is up again");
    assert_eq!(
        listed(&mut r, at(2000)),
        [2],
        "not before the probe comes back"
    );
    r.handle_message(
        at(2200),
        id(1),
        Message::ProbeReply {
            nonce: probe,
            tufr_us: 50_000,
        },
    );
    assert_eq!(listed(&mut r, at(2200)), [1, 2]);
    // A link event for a stranger changes nothing.
    r.handle_link(at(2300), id(77), LinkEvent::Down);
    assert_eq!(listed(&mut r, at(2300)), [1, 2]);
}

#[test]
fn a_server_unreachable_for_forget_after_is_dropped_and_may_register_again() {
    use overlay_core::LinkEvent;
    let mut r = calibrated(&[200, 300], &[50, 50]);
    let listed = |r: &mut Resolver, now| -> Vec<u64> {
        estimates(r, now).into_iter().map(|(s, _)| s).collect()
    };
    let forget_after = ResolverConfig::default().forget_after;
    r.handle_link(at(1000), id(1), LinkEvent::Down);
    // Its probes go unanswered from now on (server 2 answers its own); it is kept (unlisted)
    // until `forget_after`.
    let step = Duration::from_secs(30);
    let answer_server_2 = |r: &mut Resolver, now: Time| {
        for (to, m) in sent(r) {
            if let Message::Probe { nonce } = m
                && to == id(2)
            {
                r.handle_message(
                    now,
                    id(2),
                    Message::ProbeReply {
                        nonce,
                        tufr_us: 50_000,
                    },
                );
            }
        }
    };
    let mut now = at(1000);
    while now.saturating_since(at(1000)) < forget_after - step {
        now += step;
        r.handle_timeout(now);
        answer_server_2(&mut r, now);
    }
    assert_eq!(r.stats().forgotten, 0, "kept before forget_after");
    assert_eq!(listed(&mut r, now), [2]);
    // Past it, the next probe time drops it from every group (and closes its link).
    let later = now + step * 4;
    r.handle_timeout(later);
    let mut closed = false;
    while let Some(o) = r.poll_output() {
        closed |= matches!(o, Output::Disconnect { peer } if peer == id(1));
    }
    assert_eq!(r.stats().forgotten, 1);
    assert!(closed, "the forgotten server's link is closed");
    assert_eq!(
        r.available_servers(&web()).unwrap(),
        [(id(2), addr(2))],
        "only the live server is left"
    );
    // It registers again as a new server.
    r.handle_message(
        later,
        id(1),
        Message::Register {
            name: web(),
            address: addr(1),
        },
    );
    assert_eq!(r.available_servers(&web()).unwrap().len(), 2);
}
