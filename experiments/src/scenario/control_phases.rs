//! Control traffic over the phases of a run: a scenario whose group forms, then meets churn and
//! a partition, says what each phase cost, not only the run's average (at 512 Narada members
//! the average hid whether the joins, the failures or the partition were expensive).

use overlay_core::Time;
use serde::Serialize;

use crate::report::round6;

/// `bytes` sent over `seconds` as kbit/s per member of `members` (rounded as summaries are).
pub fn kbps_per_member(bytes: u64, seconds: f64, members: usize) -> f64 {
    round6(bytes as f64 * 8.0 / seconds.max(1e-9) / members.max(1) as f64 / 1e3)
}

/// A run's control bytes so far, sampled as it goes.
#[derive(Debug, Clone)]
pub struct ControlSeries {
    /// (instant, control bytes sent up to it), in time order, from (0, 0).
    samples: Vec<(Time, u64)>,
}

impl Default for ControlSeries {
    fn default() -> Self {
        Self {
            samples: vec![(Time::ZERO, 0)],
        }
    }
}

/// What one phase of a run cost in control traffic.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PhaseControl {
    /// What happened in it.
    pub phase: String,
    /// Its start, simulated s (a sampled instant).
    pub from_s: f64,
    /// Its end, simulated s (a sampled instant).
    pub until_s: f64,
    /// Control traffic per member over it, kbit/s.
    pub kbps_per_member: f64,
}

impl ControlSeries {
    /// Note that `bytes` of control were sent from the start up to `at` (later than the last
    /// sample; an earlier one is ignored).
    pub fn record(&mut self, at: Time, bytes: u64) {
        if self.samples.last().is_none_or(|&(last, _)| at > last) {
            self.samples.push((at, bytes));
        }
    }

    /// The latest sample at or before `at`.
    fn at_or_before(&self, at: Time) -> (Time, u64) {
        let after = self.samples.partition_point(|&(t, _)| t <= at);
        self.samples[after.saturating_sub(1)]
    }

    /// Control per member from `from` to `until`, each taken at the latest sample at or before
    /// it (`None` when no sampled time lies between them).
    pub fn phase(
        &self,
        phase: &str,
        from: Time,
        until: Time,
        members: usize,
    ) -> Option<PhaseControl> {
        let (t0, b0) = self.at_or_before(from);
        let (t1, b1) = self.at_or_before(until);
        let seconds = t1.saturating_since(t0).as_secs_f64();
        (seconds > 0.0).then(|| PhaseControl {
            phase: phase.to_owned(),
            from_s: t0.as_secs_f64(),
            until_s: t1.as_secs_f64(),
            kbps_per_member: kbps_per_member(b1.saturating_sub(b0), seconds, members),
        })
    }

    /// Control per member between consecutive samples: (end of the interval in simulated s,
    /// kbit/s).
    pub fn per_interval(&self, members: usize) -> Vec<(f64, f64)> {
        self.samples
            .windows(2)
            .map(|w| {
                let ((t0, b0), (t1, b1)) = (w[0], w[1]);
                let seconds = t1.saturating_since(t0).as_secs_f64();
                (
                    t1.as_secs_f64(),
                    kbps_per_member(b1.saturating_sub(b0), seconds, members),
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_phase_costs_what_was_sent_within_it() {
        let mut series = ControlSeries::default();
        // 1 000 bytes a second for 10 s, then 10 000 bytes a second for 5 s.
        for s in 1..=15u64 {
            let bytes = 1_000 * s.min(10) + 10_000 * s.saturating_sub(10);
            series.record(Time::from_secs(s), bytes);
        }
        // Two members: 1 000 bytes/s is 4 kbit/s each.
        let quiet = series
            .phase("quiet", Time::ZERO, Time::from_secs(10), 2)
            .unwrap();
        assert_eq!(quiet.kbps_per_member, 4.0);
        assert_eq!((quiet.from_s, quiet.until_s), (0.0, 10.0));
        let busy = series
            .phase("busy", Time::from_secs(10), Time::from_secs(15), 2)
            .unwrap();
        assert_eq!(busy.kbps_per_member, 40.0);
        // An end between samples counts up to the sample before it; a phase past the last
        // sample, or empty, is none.
        let part = series
            .phase("part", Time::from_secs(9), Time::from_micros(12_500_000), 2)
            .unwrap();
        assert_eq!((part.from_s, part.until_s), (9.0, 12.0));
        // 21 000 bytes in 3 s between two members.
        assert_eq!(part.kbps_per_member, 28.0);
        assert!(
            series
                .phase("later", Time::from_secs(20), Time::from_secs(30), 2)
                .is_none()
        );
        assert!(
            series
                .phase("empty", Time::from_secs(5), Time::from_secs(5), 2)
                .is_none()
        );
        // An out-of-order sample is ignored; the series per interval has one value a second.
        series.record(Time::from_secs(3), 0);
        let intervals = series.per_interval(2);
        assert_eq!(intervals.len(), 15);
        assert_eq!(intervals[0], (1.0, 4.0));
        assert_eq!(intervals[14], (15.0, 40.0));
    }
}
