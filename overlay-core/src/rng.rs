//! Seeded randomness for protocols and simulations.
//!
//! Protocols take their randomness from a [`ProtocolRng`] built from a seed in their config, never
//! from the operating system, so a simulation is reproducible bit for bit. ChaCha8's output is
//! fixed by its specification, so the same seed gives the same stream on every platform.

use std::time::Duration;

use rand::{RngExt, SeedableRng};

/// The random number generator every protocol state machine owns.
pub type ProtocolRng = rand::rngs::ChaCha8Rng;

/// A generator seeded with `seed`.
pub fn rng_from_seed(seed: u64) -> ProtocolRng {
    ProtocolRng::seed_from_u64(seed)
}

/// One step of SplitMix64: a fast, well-mixed 64-bit sequence used to derive seeds.
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A seed for stream `stream` derived from `master`.
///
/// Derivation depends only on the pair, not on the order in which streams are asked for, so
/// adding a member or a purpose does not shift the randomness of the others.
pub fn derive_seed(master: u64, stream: u64) -> u64 {
    let mut state = master ^ stream.wrapping_mul(0xd6e8_feb8_6659_fd93);
    splitmix64(&mut state);
    splitmix64(&mut state)
}

/// `period` stretched or shrunk by up to a quarter, uniformly: periodic work jittered so members
/// (or servers) that started together do not stay in step.
pub fn jitter(rng: &mut ProtocolRng, period: Duration) -> Duration {
    period.mul_f64(0.75 + 0.5 * rng.random::<f64>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    #[test]
    fn same_seed_same_stream() {
        let (mut a, mut b) = (rng_from_seed(9), rng_from_seed(9));
        for _ in 0..4 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        assert_ne!(rng_from_seed(9).next_u64(), rng_from_seed(10).next_u64());
    }

    #[test]
    fn jitter_stays_within_a_quarter_of_the_period() {
        let mut rng = rng_from_seed(3);
        let period = Duration::from_secs(4);
        let draws: Vec<Duration> = (0..1000).map(|_| jitter(&mut rng, period)).collect();
        assert!(
            draws
                .iter()
                .all(|d| (Duration::from_secs(3)..=Duration::from_secs(5)).contains(d))
        );
        let mean = draws.iter().sum::<Duration>() / 1000;
        assert!(
            mean.abs_diff(period) < Duration::from_millis(100),
            "{mean:?}"
        );
    }

    #[test]
    fn derived_seeds_differ_per_stream_and_master() {
        let seeds: std::collections::BTreeSet<u64> = (0..1000)
            .map(|s| derive_seed(1, s))
            .chain((0..1000).map(|s| derive_seed(2, s)))
            .collect();
        assert_eq!(seeds.len(), 2000);
    }
}
