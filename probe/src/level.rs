//! Discretisation of a noisy quantity into levels, with hysteresis.
//!
//! Routing on raw estimates makes routes flap with every noisy sample. A quantizer maps a value to
//! `floor(value / step)` but keeps its current level until the value leaves the level's band
//! widened by `hysteresis × step` on both sides, so noise smaller than that margin never flips a
//! level, and only a persistent change moves it.

use serde::{Deserialize, Serialize};

/// Maps values to levels of width `step`, with a hysteresis band.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LevelQuantizer {
    step: f64,
    hysteresis: f64,
    level: Option<u32>,
}

impl LevelQuantizer {
    /// Levels of width `step` (positive) with a margin of `hysteresis` steps (clamped to `0..=1`).
    ///
    /// # Panics
    /// If `step` is not a positive finite number: that is a configuration bug, not input.
    pub fn new(step: f64, hysteresis: f64) -> Self {
        assert!(
            step.is_finite() && step > 0.0,
            "level step must be positive, got {step}"
        );
        let hysteresis = if hysteresis.is_finite() {
            hysteresis.clamp(0.0, 1.0)
        } else {
            0.0
        };
        Self {
            step,
            hysteresis,
            level: None,
        }
    }

    /// The level a value falls in, ignoring hysteresis.
    pub fn raw_level(&self, value: f64) -> u32 {
        // `as` saturates: negative and NaN become 0, huge values u32::MAX.
        (value / self.step).floor() as u32
    }

    /// Take in a new value; returns the (possibly unchanged) level.
    pub fn update(&mut self, value: f64) -> u32 {
        let level = match self.level {
            Some(current) if self.within_band(current, value) => current,
            _ => self.raw_level(value),
        };
        self.level = Some(level);
        level
    }

    /// The current level, if any value was taken in.
    pub fn level(&self) -> Option<u32> {
        self.level
    }

    /// The width of a level.
    pub fn step(&self) -> f64 {
        self.step
    }

    /// The lower edge of `level` (the smallest value whose raw level it is).
    pub fn floor_of(&self, level: u32) -> f64 {
        f64::from(level) * self.step
    }

    fn within_band(&self, level: u32, value: f64) -> bool {
        let margin = self.hysteresis * self.step;
        let low = self.floor_of(level) - margin;
        let high = self.floor_of(level) + self.step + margin;
        value >= low && value < high
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn noise_inside_the_margin_keeps_the_level() {
        // Levels of 120 kbps (10% of a 1.2 Mbps source), half a level of hysteresis.
        let mut q = LevelQuantizer::new(120_000.0, 0.5);
        assert_eq!(q.update(1_190_000.0), 9);
        assert_eq!(q.update(1_210_000.0), 9); // raw level 10, inside the band
        assert_eq!(q.update(1_250_000.0), 9);
        assert_eq!(q.update(1_270_000.0), 10); // beyond 1.2M + 60k
        assert_eq!(q.update(1_150_000.0), 10);
        assert_eq!(q.update(1_130_000.0), 9);
        assert_eq!(q.update(-5.0), 0);
    }

    proptest! {
        /// Noise smaller than the margin around any starting value never changes the level.
        #[test]
        fn bounded_noise_never_flips(start in 0.0f64..1e7, h in 0.05f64..1.0, noise in proptest::collection::vec(-1.0f64..1.0, 1..100)) {
            let step = 100_000.0;
            let mut q = LevelQuantizer::new(step, h);
            let level = q.update(start);
            for n in noise {
                prop_assert_eq!(q.update(start + n * h * step * 0.999), level);
            }
        }

        /// The level always stays near the value; a persistent jump of more than (1 + h) steps
        /// always moves it.
        #[test]
        fn level_tracks_the_value(values in proptest::collection::vec(0.0f64..1e7, 1..100), h in 0.0f64..1.0) {
            let step = 100_000.0;
            let mut q = LevelQuantizer::new(step, h);
            for v in values {
                let before = q.level();
                let level = q.update(v);
                let floor = q.floor_of(level);
                prop_assert!(v >= floor - h * step - 1e-6 && v < floor + step + h * step + 1e-6);
                if let Some(b) = before {
                    let far = (v - q.floor_of(b)).abs() > (2.0 + h) * step;
                    if far { prop_assert_ne!(level, b); }
                }
            }
        }
    }
}
