//! The simulator's bandwidth model at Overcast's large size: the max-min fair rates of a
//! 10 000-node tree on a 10 000-router transit-stub map (`tree::receiver_rates`, what the
//! Overcast scenarios solve after every simulated second in which a parent changed).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use experiments::network::{AccessSpec, Network};
use experiments::scenario::overcast::OVERCAST_ACCESS;
use experiments::topology;
use experiments::tree::{DeliveryTree, receiver_rates};

fn bench(c: &mut Criterion) {
    let nodes = 10_000;
    let map = topology::load("transit-stub:nodes=10000,seed=1").unwrap();
    let access = AccessSpec::parse(OVERCAST_ACCESS).unwrap();
    let net = Network::build(map, nodes, &access, 1).unwrap();
    // A tree of fan-out up to 4 in member order (member m under (m - 1) / 4): each member's
    // hop crosses the map between two random attach points, as a tree early in the joins does.
    let parents = (0..nodes).map(|m| (m > 0).then(|| (m - 1) / 4)).collect();
    let tree = DeliveryTree::new(0, parents).unwrap();
    let mut group = c.benchmark_group("bandwidth_model");
    group.sample_size(10);
    group.bench_function("transit-stub 10000, 10000-node tree, receiver rates", |b| {
        b.iter(|| black_box(receiver_rates(&net, &tree, f64::INFINITY)));
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
