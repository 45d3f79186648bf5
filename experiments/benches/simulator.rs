//! Events per second of the simulator core: 1000 members pass tokens to random peers while each
//! also runs a periodic timer, so the queue holds thousands of pending events of both kinds.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use experiments::sim::{SimConfig, Simulator, UniformPaths};
use overlay_core::rng::{ProtocolRng, rng_from_seed};
use overlay_core::{NodeId, Outbox, Output, Protocol, Time, TrafficClass, WireMessage};
use rand::RngExt;
use serde::{Deserialize, Serialize};

const MEMBERS: usize = 1000;
const TOKENS: u32 = 4;
const HOPS: u32 = 200;

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Token {
    hops: u32,
}

impl WireMessage for Token {
    fn traffic_class(&self) -> TrafficClass {
        TrafficClass::Data
    }
}

#[derive(Debug)]
struct Relay {
    id: NodeId,
    peers: std::sync::Arc<Vec<NodeId>>,
    rng: ProtocolRng,
    next_tick: Time,
    ticks: u64,
    outbox: Outbox<Token, ()>,
}

impl Relay {
    fn forward(&mut self, hops: u32) {
        let to = self.peers[self.rng.random_range(0..self.peers.len())];
        self.outbox.send(to, Token { hops });
    }
}

impl Protocol for Relay {
    type Message = Token;
    type Command = ();
    type Event = ();

    fn id(&self) -> NodeId {
        self.id
    }
    fn handle_message(&mut self, _: Time, _: NodeId, msg: Token) {
        if msg.hops > 0 {
            self.forward(msg.hops - 1);
        }
    }
    fn handle_command(&mut self, _: Time, (): ()) {
        for _ in 0..TOKENS {
            self.forward(HOPS);
        }
    }
    fn handle_timeout(&mut self, now: Time) {
        if now >= self.next_tick {
            self.ticks += 1;
            self.next_tick = now + Duration::from_millis(50);
        }
    }
    fn poll_output(&mut self) -> Option<Output<Token, ()>> {
        self.outbox.pop()
    }
    fn poll_timeout(&self) -> Option<Time> {
        Some(self.next_tick)
    }
}

type Sim = Simulator<Relay, UniformPaths>;

fn setup() -> Sim {
    let paths = UniformPaths {
        members: MEMBERS,
        delay: Duration::from_millis(10),
    };
    let mut sim = Sim::new(paths, SimConfig::default());
    let peers = std::sync::Arc::new((0..MEMBERS).map(Sim::member_id).collect::<Vec<_>>());
    for i in 0..MEMBERS {
        let relay = Relay {
            id: Sim::member_id(i),
            peers: peers.clone(),
            rng: rng_from_seed(sim.member_seed(i)),
            next_tick: Time::ZERO,
            ticks: 0,
            outbox: Outbox::default(),
        };
        sim.add_member(i, relay);
        sim.schedule_command(Time::ZERO, i, ());
    }
    sim.set_record_events(false);
    sim
}

/// Until the tokens die out: 200 hops of 10 ms is 2 s; timers tick every 50 ms meanwhile.
const HORIZON: Time = Time::from_millis(2_010);

fn bench(c: &mut Criterion) {
    let mut probe = setup();
    probe.run_until(HORIZON);
    let events = probe.processed();
    let mut group = c.benchmark_group("simulator");
    group.throughput(Throughput::Elements(events));
    group.sample_size(10);
    group.bench_function(
        format!("token relay, {MEMBERS} members, {events} events"),
        |b| {
            b.iter_batched(
                setup,
                |mut sim| {
                    sim.run_until(HORIZON);
                    black_box(sim.processed())
                },
                BatchSize::LargeInput,
            );
        },
    );
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
