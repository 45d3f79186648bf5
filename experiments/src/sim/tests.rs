//! The simulator driving real state machines: probers on a Waxman map, and a recording protocol
//! for the transport semantics (connect, disconnect, crash).

use std::time::Duration;

use overlay_core::{
    LinkEvent, LinkMetrics, NodeId, Outbox, Output, Protocol, Time, TrafficClass, WireMessage,
};
use probe::{Prober, ProberCommand, ProberConfig, ProberEvent};
use serde::{Deserialize, Serialize};

use super::*;
use crate::network::{AccessSpec, Network};
use crate::topology;

fn waxman(members: usize) -> Network {
    let topo = topology::load("waxman:routers=300,links=900,seed=4").unwrap();
    Network::build(topo, members, &AccessSpec::parse("fixed").unwrap(), 2).unwrap()
}

fn prober_run(seed: u64) -> (Vec<Emitted<ProberEvent>>, Simulator<Prober, Network>) {
    let members = 12;
    let mut sim = Simulator::new(
        waxman(members),
        SimConfig {
            seed,
            ..SimConfig::default()
        },
    );
    for i in 0..members {
        let config = ProberConfig {
            seed: sim.member_seed(i),
            ..ProberConfig::default()
        };
        sim.add_member(
            i,
            Prober::new(Simulator::<Prober, Network>::member_id(i), config),
        );
    }
    for i in 0..members {
        for k in 1..=3 {
            let peer = Simulator::<Prober, Network>::member_id((i + k) % members);
            sim.schedule_command(Time::ZERO, i, ProberCommand::Watch(peer));
        }
    }
    sim.run_until(Time::from_secs(30));
    (sim.take_events(), sim)
}

#[test]
fn probers_measure_the_model_rtt_exactly() {
    let (events, sim) = prober_run(1);
    let members = 12;
    for i in 0..members {
        for k in 1..=3 {
            let j = (i + k) % members;
            let expected = sim.network().unicast_delay(i, j) + sim.network().unicast_delay(j, i);
            let rtt = sim
                .member(i)
                .unwrap()
                .rtt(Simulator::<Prober, Network>::member_id(j))
                .unwrap();
            assert_eq!(rtt, expected, "{i} -> {j}");
        }
    }
    // About 30 pings per watched peer, each answered: 12 × 3 × ~30 samples, no losses.
    let samples = events
        .iter()
        .filter(|e| matches!(e.event, ProberEvent::Rtt { .. }))
        .count();
    assert!((12 * 3 * 27..=12 * 3 * 34).contains(&samples), "{samples}");
    assert!(
        events
            .iter()
            .all(|e| matches!(e.event, ProberEvent::Rtt { .. }))
    );
    // Pings and pongs are probe traffic, charged their encoded size; every ping was answered
    // except those still in flight at the end (at most one per watched peer).
    let traffic = sim.traffic();
    assert_eq!(traffic.bytes_of(TrafficClass::Control), 0);
    let stats = (0..members).map(|i| sim.member(i).unwrap().stats());
    let (sent, answered) = stats.fold((0, 0), |(s, a), st| {
        (s + st.pings_sent, a + st.pings_answered)
    });
    assert_eq!(traffic.messages[1], sent + answered);
    assert!(
        samples as u64 <= sent && samples as u64 + 36 >= sent,
        "{samples} of {sent}"
    );
    assert_eq!(traffic.dropped, 0);
}

#[test]
fn same_seed_replays_bit_for_bit() {
    let (a, sim_a) = prober_run(7);
    let (b, sim_b) = prober_run(7);
    let (c, _) = prober_run(8);
    assert_eq!(a, b);
    assert_eq!(sim_a.traffic(), sim_b.traffic());
    assert_eq!(sim_a.processed(), sim_b.processed());
    assert_ne!(a, c, "the seed reaches the protocols' jitter");
}

/// Records every input as an event and does what its commands say.
#[derive(Debug)]
struct Recorder {
    id: NodeId,
    outbox: Outbox<Note, Seen>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Note(u32);

impl WireMessage for Note {
    fn traffic_class(&self) -> TrafficClass {
        TrafficClass::Control
    }
}

#[derive(Debug, PartialEq)]
enum Do {
    Connect(NodeId),
    Disconnect(NodeId),
    Send(NodeId, u32),
    Measure(NodeId),
}

#[derive(Clone, Debug, PartialEq)]
enum Seen {
    Link(NodeId, LinkEvent),
    Message(NodeId, u32),
    Measured(NodeId, LinkMetrics),
}

impl Protocol for Recorder {
    type Message = Note;
    type Command = Do;
    type Event = Seen;

    fn id(&self) -> NodeId {
        self.id
    }
    fn handle_message(&mut self, _: Time, from: NodeId, msg: Note) {
        self.outbox.emit(Seen::Message(from, msg.0));
    }
    fn handle_command(&mut self, _: Time, cmd: Do) {
        match cmd {
            Do::Connect(p) => self.outbox.connect(p),
            Do::Disconnect(p) => self.outbox.disconnect(p),
            Do::Send(p, n) => self.outbox.send(p, Note(n)),
            Do::Measure(p) => self.outbox.measure(p, MeasureRequest::Rtt),
        }
    }
    fn handle_measurement(&mut self, _: Time, peer: NodeId, m: LinkMetrics) {
        self.outbox.emit(Seen::Measured(peer, m));
    }
    fn handle_link(&mut self, _: Time, peer: NodeId, event: LinkEvent) {
        self.outbox.emit(Seen::Link(peer, event));
    }
    fn handle_timeout(&mut self, _: Time) {}
    fn poll_output(&mut self) -> Option<Output<Note, Seen>> {
        self.outbox.pop()
    }
    fn poll_timeout(&self) -> Option<Time> {
        None
    }
}

type RecSim = Simulator<Recorder, UniformPaths>;

fn recorders(n: usize) -> RecSim {
    let paths = UniformPaths {
        members: n,
        delay: Duration::from_millis(10),
    };
    let mut sim = Simulator::new(paths, SimConfig::default());
    for i in 0..n {
        sim.add_member(
            i,
            Recorder {
                id: RecSim::member_id(i),
                outbox: Outbox::default(),
            },
        );
    }
    sim
}

fn at(ms: u64) -> Time {
    Time::from_millis(ms)
}

#[test]
fn connections_come_up_after_a_round_trip_and_go_down_on_crash() {
    let mut sim = recorders(3);
    let (a, b, c) = (
        RecSim::member_id(0),
        RecSim::member_id(1),
        RecSim::member_id(2),
    );
    sim.schedule_command(at(0), 0, Do::Connect(b));
    sim.schedule_command(at(0), 0, Do::Connect(c));
    sim.run_until(at(100));
    sim.crash(2);
    sim.schedule_command(at(200), 0, Do::Send(c, 1));
    sim.schedule_command(at(200), 0, Do::Connect(c));
    sim.schedule_command(at(200), 0, Do::Measure(b));
    sim.schedule_command(at(300), 1, Do::Disconnect(a));
    sim.run_until(Time::from_secs(20));
    let seen: Vec<(Time, usize, Seen)> = sim
        .take_events()
        .into_iter()
        .map(|e| (e.at, e.member, e.event))
        .collect();
    let cfg = SimConfig::default();
    let expected = vec![
        (at(10), 1, Seen::Link(a, LinkEvent::Up)),
        (at(10), 2, Seen::Link(a, LinkEvent::Up)),
        (at(20), 0, Seen::Link(b, LinkEvent::Up)),
        (at(20), 0, Seen::Link(c, LinkEvent::Up)),
        (
            at(220),
            0,
            Seen::Measured(b, LinkMetrics::rtt(Duration::from_millis(20))),
        ),
        (at(310), 0, Seen::Link(b, LinkEvent::Down)),
        (
            at(100) + cfg.failure_detection,
            0,
            Seen::Link(c, LinkEvent::Down),
        ),
        (
            at(200) + cfg.connect_timeout,
            0,
            Seen::Link(c, LinkEvent::Down),
        ),
    ];
    let mut sorted = expected.clone();
    sorted.sort_by_key(|e| e.0);
    assert_eq!(seen, sorted);
    assert_eq!(sim.traffic().dropped, 1, "the note to the crashed member");
}

#[test]
fn messages_arrive_after_the_path_delay_in_send_order() {
    let mut sim = recorders(2);
    let a = RecSim::member_id(0);
    for n in 0..5 {
        sim.schedule_command(at(1), 0, Do::Send(RecSim::member_id(1), n));
    }
    sim.run_until(at(50));
    let seen: Vec<_> = sim
        .take_events()
        .into_iter()
        .map(|e| (e.at, e.event))
        .collect();
    assert_eq!(
        seen,
        (0..5)
            .map(|n| (at(11), Seen::Message(a, n)))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        sim.traffic().bytes_of(TrafficClass::Control),
        5 * Note(0).wire_size() as u64
    );
}

#[test]
fn a_partition_cuts_messages_and_connections_until_healed() {
    let mut sim = recorders(3);
    let (a, c) = (RecSim::member_id(0), RecSim::member_id(2));
    sim.schedule_command(at(0), 0, Do::Connect(c));
    sim.run_until(at(100));
    sim.take_events();
    sim.set_partition(Some(vec![0, 0, 1]));
    sim.schedule_command(at(110), 0, Do::Send(c, 7));
    sim.schedule_command(at(110), 1, Do::Send(a, 8));
    sim.run_until(at(200));
    assert_eq!(sim.traffic().partitioned, 1);
    sim.set_partition(None);
    sim.schedule_command(at(300), 0, Do::Send(c, 9));
    sim.run_until(Time::from_secs(20));
    let seen: Vec<(usize, Seen)> = sim
        .take_events()
        .into_iter()
        .map(|e| (e.member, e.event))
        .collect();
    assert!(
        seen.contains(&(0, Seen::Message(RecSim::member_id(1), 8))),
        "same side still talks"
    );
    assert!(seen.contains(&(2, Seen::Message(a, 9))), "healed");
    assert!(!seen.contains(&(2, Seen::Message(a, 7))), "cut");
    assert!(
        seen.contains(&(0, Seen::Link(c, LinkEvent::Down))),
        "the connection across the cut fails"
    );
}
