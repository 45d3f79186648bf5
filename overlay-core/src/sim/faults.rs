//! Faults the simulator can inject for protocol tests: jitter, silenced members and a drop
//! filter. Off by default; when off they cost nothing and draw no randomness, so a run without
//! faults replays exactly as it did before faults existed.

use std::collections::BTreeSet;
use std::time::Duration;

use rand::RngExt;

use crate::rng::{ProtocolRng, rng_from_seed};

/// Decides, for a message from member `from` to member `to`, whether it is lost.
pub type DropFilter<M> = Box<dyn FnMut(usize, usize, &M) -> bool>;

/// The faults in force.
pub(super) struct Faults<M> {
    /// Up to this much extra delay per message.
    pub(super) jitter: Duration,
    /// Members whose traffic is lost and whose timers wait.
    pub(super) silenced: BTreeSet<u32>,
    /// Messages to lose.
    pub(super) drop_filter: Option<DropFilter<M>>,
    /// The jitter's randomness, a stream of its own.
    rng: ProtocolRng,
}

impl<M> Faults<M> {
    /// No faults; jitter, once set, draws from `seed`.
    pub(super) fn new(seed: u64) -> Self {
        Self {
            jitter: Duration::ZERO,
            silenced: BTreeSet::new(),
            drop_filter: None,
            rng: rng_from_seed(seed),
        }
    }

    /// Whether `member` is silenced.
    pub(super) fn is_silenced(&self, member: u32) -> bool {
        !self.silenced.is_empty() && self.silenced.contains(&member)
    }

    /// The extra delay of the next message (zero, with no draw, when jitter is off).
    pub(super) fn extra_delay(&mut self) -> Duration {
        if self.jitter.is_zero() {
            Duration::ZERO
        } else {
            self.jitter.mul_f64(self.rng.random::<f64>())
        }
    }
}
