//! Exponentially weighted moving average, seeded by its first sample.
//!
//! A plain EWMA that starts at zero reports values far too low until many samples have arrived;
//! this one takes the first sample as its value, then smooths. It also tracks the smoothed mean
//! deviation (as RFC 6298 does for RTT), so callers can tell a real change from noise.

use serde::{Deserialize, Serialize};

/// A moving average with weight `alpha` on each new sample.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ewma {
    alpha: f64,
    mean: Option<f64>,
    deviation: f64,
    samples: u64,
}

impl Ewma {
    /// An empty average. `alpha` is clamped into `(0, 1]`; `1.0` keeps only the latest sample.
    pub fn new(alpha: f64) -> Self {
        let alpha = if alpha.is_finite() {
            alpha.clamp(f64::MIN_POSITIVE, 1.0)
        } else {
            1.0
        };
        Self {
            alpha,
            mean: None,
            deviation: 0.0,
            samples: 0,
        }
    }

    /// Add a sample and return the new average. Non-finite samples are ignored.
    pub fn update(&mut self, sample: f64) -> Option<f64> {
        if !sample.is_finite() {
            return self.mean;
        }
        self.samples += 1;
        self.mean = Some(match self.mean {
            None => {
                self.deviation = 0.0;
                sample
            }
            Some(mean) => {
                self.deviation += self.alpha * ((sample - mean).abs() - self.deviation);
                mean + self.alpha * (sample - mean)
            }
        });
        self.mean
    }

    /// The current average, if any sample arrived.
    pub fn value(&self) -> Option<f64> {
        self.mean
    }

    /// The smoothed mean absolute deviation of samples from the average.
    pub fn deviation(&self) -> f64 {
        self.deviation
    }

    /// How many samples were taken in.
    pub fn samples(&self) -> u64 {
        self.samples
    }

    /// The weight of each new sample.
    pub fn alpha(&self) -> f64 {
        self.alpha
    }

    /// Forget every sample.
    pub fn reset(&mut self) {
        *self = Self::new(self.alpha);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn first_sample_is_the_value_not_a_fraction_of_it() {
        let mut e = Ewma::new(0.1);
        assert_eq!(e.value(), None);
        assert_eq!(e.update(100.0), Some(100.0));
        assert_eq!(e.update(200.0), Some(110.0));
        assert!((e.deviation() - 10.0).abs() < 1e-9);
        assert_eq!(e.update(f64::NAN), Some(110.0));
        assert_eq!(e.samples(), 2);
    }

    #[test]
    fn converges_to_a_step() {
        let mut e = Ewma::new(0.25);
        e.update(0.0);
        for _ in 0..60 {
            e.update(10.0);
        }
        assert!((e.value().unwrap() - 10.0).abs() < 1e-6);
    }

    proptest! {
        /// The average stays within the range of the samples seen.
        #[test]
        fn stays_within_sample_range(alpha in 0.01f64..=1.0, xs in proptest::collection::vec(-1e6f64..1e6, 1..100)) {
            let mut e = Ewma::new(alpha);
            for &x in &xs { e.update(x); }
            let lo = xs.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let v = e.value().unwrap();
            prop_assert!(v >= lo - 1e-6 && v <= hi + 1e-6);
            prop_assert!(e.deviation() >= 0.0 && e.deviation() <= hi - lo + 1e-6);
        }
    }
}
