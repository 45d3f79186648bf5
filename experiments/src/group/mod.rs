//! Protocol groups in the simulator, shared by several scenarios: a Narada group
//! ([`narada::NaradaGroup`]) and an Overcast network ([`overcast::OvercastGroup`]).

pub mod bursts;
pub mod narada;
pub mod overcast;
pub mod plumtree;

use std::time::Duration;

use overlay_core::rng::{derive_seed, rng_from_seed};
use overlay_core::{NodeId, Time};
use rand::RngExt;

/// Members named in a joiner's bootstrap list besides member 0.
pub(crate) const BOOTSTRAP_EXTRA: usize = 3;

/// When each of `members` joins and through whom, drawn from `seed`: member 0 starts the group
/// at `start`, the others join at random times in `[start, start + window)`, each through
/// member 0 and a few members who joined before it. Every group draws its joins here, so two
/// protocols compared on one seed see the same joins.
pub fn join_plan(
    seed: u64,
    members: &[usize],
    start: Time,
    window: Duration,
    id: impl Fn(usize) -> NodeId,
) -> Vec<(Time, usize, Vec<NodeId>)> {
    let mut rng = rng_from_seed(derive_seed(seed, 0x101));
    let mut times: Vec<(Time, usize)> = members
        .iter()
        .map(|&m| {
            (
                if m == 0 {
                    start
                } else {
                    start + window.mul_f64(rng.random::<f64>())
                },
                m,
            )
        })
        .collect();
    times.sort();
    let mut earlier: Vec<usize> = Vec::new();
    let mut plan = Vec::with_capacity(times.len());
    for (at, m) in times {
        let mut bootstrap = Vec::new();
        if m != 0 {
            bootstrap.push(id(0));
            for _ in 0..BOOTSTRAP_EXTRA.min(earlier.len()) {
                let pick = id(earlier[rng.random_range(0..earlier.len())]);
                if !bootstrap.contains(&pick) {
                    bootstrap.push(pick);
                }
            }
        }
        plan.push((at, m, bootstrap));
        earlier.push(m);
    }
    plan
}
