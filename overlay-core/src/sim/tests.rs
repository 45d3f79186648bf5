//! The simulator's transport semantics and faults, with a protocol that records every input.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::*;
use crate::Outbox;

/// Records every input as an event and does what its commands say.
#[derive(Debug)]
struct Recorder {
    id: NodeId,
    outbox: Outbox<Note, Seen>,
    /// A timer, if set.
    alarm: Option<Time>,
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
    Alarm(Time),
}

#[derive(Clone, Debug, PartialEq)]
enum Seen {
    Link(NodeId, LinkEvent),
    Message(NodeId, u32),
    Measured(NodeId, LinkMetrics),
    Alarm,
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
            Do::Alarm(at) => self.alarm = Some(at),
        }
    }
    fn handle_measurement(&mut self, _: Time, peer: NodeId, m: LinkMetrics) {
        self.outbox.emit(Seen::Measured(peer, m));
    }
    fn handle_link(&mut self, _: Time, peer: NodeId, event: LinkEvent) {
        self.outbox.emit(Seen::Link(peer, event));
    }
    fn handle_timeout(&mut self, now: Time) {
        if self.alarm.is_some_and(|t| t <= now) {
            self.alarm = None;
            self.outbox.emit(Seen::Alarm);
        }
    }
    fn poll_output(&mut self) -> Option<Output<Note, Seen>> {
        self.outbox.pop()
    }
    fn poll_timeout(&self) -> Option<Time> {
        self.alarm
    }
}

type RecSim = Simulator<Recorder, UniformPaths>;

fn recorders(n: usize) -> RecSim {
    recorders_seeded(n, SimConfig::default().seed)
}

fn recorders_seeded(n: usize, seed: u64) -> RecSim {
    let paths = UniformPaths {
        members: n,
        delay: Duration::from_millis(10),
    };
    let mut sim = Simulator::new(
        paths,
        SimConfig {
            seed,
            ..SimConfig::default()
        },
    );
    for i in 0..n {
        sim.add_member(
            i,
            Recorder {
                id: RecSim::member_id(i),
                outbox: Outbox::default(),
                alarm: None,
            },
        );
    }
    sim
}

fn at(ms: u64) -> Time {
    Time::from_millis(ms)
}

fn seen(sim: &mut RecSim) -> Vec<(Time, usize, Seen)> {
    sim.take_events()
        .into_iter()
        .map(|e| (e.at, e.member, e.event))
        .collect()
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
    let cfg = SimConfig::default();
    let mut expected = vec![
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
    expected.sort_by_key(|e| e.0);
    assert_eq!(seen(&mut sim), expected);
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
    assert_eq!(
        seen(&mut sim),
        (0..5)
            .map(|n| (at(11), 1, Seen::Message(a, n)))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        sim.traffic().bytes_of(TrafficClass::Control),
        5 * Note(0).wire_size() as u64
    );
    // Per kind, under the class's name when the message names no kind of its own.
    assert_eq!(
        sim.traffic().by_kind,
        BTreeMap::from([(
            (TrafficClass::Control, "control"),
            5 * Note(0).wire_size() as u64
        )])
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
    let seen: Vec<(usize, Seen)> = seen(&mut sim).into_iter().map(|(_, m, e)| (m, e)).collect();
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

#[test]
fn jitter_reorders_messages_within_its_bound_and_replays_with_the_seed() {
    let run = |seed: u64| {
        let mut sim = recorders_seeded(2, seed);
        sim.set_jitter(Duration::from_millis(30));
        for n in 0..50 {
            sim.schedule_command(at(1), 0, Do::Send(RecSim::member_id(1), n));
        }
        sim.run_until(at(100));
        seen(&mut sim)
    };
    let got = run(1);
    assert_eq!(got.len(), 50);
    assert!(got.iter().all(|(t, _, _)| (at(11)..=at(41)).contains(t)));
    let order: Vec<u32> = got
        .iter()
        .map(|(_, _, s)| match s {
            Seen::Message(_, n) => *n,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_ne!(order, (0..50).collect::<Vec<_>>(), "some overtook others");
    assert_eq!(got, run(1), "same seed, same order");
    assert_ne!(got, run(2), "the seed reaches the jitter");
}

#[test]
fn a_silenced_member_hears_and_says_nothing_and_its_timer_waits() {
    let mut sim = recorders(2);
    let (a, b) = (RecSim::member_id(0), RecSim::member_id(1));
    sim.schedule_command(at(0), 1, Do::Alarm(at(50)));
    sim.run_until(at(5));
    sim.silence(1);
    sim.schedule_command(at(10), 0, Do::Send(b, 1));
    sim.schedule_command(at(10), 1, Do::Send(a, 2));
    sim.run_until(at(200));
    assert_eq!(seen(&mut sim), Vec::new());
    assert_eq!(sim.traffic().silenced, 2);
    sim.unsilence(1);
    sim.schedule_command(at(210), 0, Do::Send(b, 3));
    sim.run_until(at(300));
    assert_eq!(
        seen(&mut sim),
        vec![(at(200), 1, Seen::Alarm), (at(220), 1, Seen::Message(a, 3))]
    );
}

#[test]
fn the_drop_filter_loses_what_it_names_and_forged_input_arrives() {
    let mut sim = recorders(3);
    let (a, b) = (RecSim::member_id(0), RecSim::member_id(1));
    let mut lost_once = false;
    sim.set_drop_filter(Some(Box::new(move |_, _, note: &Note| {
        let lose = note.0 == 2 && !lost_once;
        lost_once |= lose;
        lose
    })));
    for n in [1, 2, 2] {
        sim.schedule_command(at(0), 0, Do::Send(b, n));
    }
    sim.inject(at(5), NodeId::from_index(77), 1, Note(99));
    sim.run_until(at(100));
    assert_eq!(
        seen(&mut sim),
        vec![
            (at(5), 1, Seen::Message(NodeId::from_index(77), 99)),
            (at(10), 1, Seen::Message(a, 1)),
            (at(10), 1, Seen::Message(a, 2)),
        ]
    );
    assert_eq!(sim.traffic().filtered, 1);
}
