//! Unicast routing on the Narada paper's map: placing 128 members on Waxman-1024 (one Dijkstra
//! per member router) and computing all 128 × 127 unicast paths and delays.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use experiments::network::{AccessSpec, Network};
use experiments::topology;

fn bench(c: &mut Criterion) {
    let map = topology::load("waxman:routers=1024,links=3145,seed=1").unwrap();
    let access = AccessSpec::parse("simblock:year=2019").unwrap();
    let mut group = c.benchmark_group("routing");
    group.sample_size(20);
    group.bench_function("waxman-1024, 128 members, all-pairs unicast paths", |b| {
        b.iter(|| {
            let net = Network::build(map.clone(), 128, &access, 1).unwrap();
            let mut path = Vec::new();
            let mut total = 0u64;
            for a in 0..128 {
                for z in 0..128 {
                    path.clear();
                    net.unicast_path(a, z, &mut path);
                    total += net.unicast_delay_micros(a, z) + path.len() as u64;
                }
            }
            black_box(total)
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
