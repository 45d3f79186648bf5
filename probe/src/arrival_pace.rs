//! The pace of a stream's arrivals, and when the next one is overdue: how a receiver tells a
//! stream that stopped (its sender or a relay died) from one between two arrivals.

use std::time::Duration;

use overlay_core::Time;

use crate::Ewma;

/// Weight of each new gap between arrivals in the smoothed gap and its deviation (as RFC 6298
/// weighs a new round trip).
pub const GAP_WEIGHT: f64 = 0.125;

/// When a stream's arrivals last came, and the smoothed gap between them with its deviation.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ArrivalPace {
    last: Option<Time>,
    /// Seconds; `None` until a second arrival came.
    gap: Option<Ewma>,
}

impl ArrivalPace {
    /// Something of the stream arrived at `now`. A gap of `pause` or longer is a pause of the
    /// stream, not its pace, and is left out of the average.
    pub fn arrived(&mut self, now: Time, pause: Duration) {
        if let Some(last) = self.last {
            let gap = now.saturating_since(last);
            if gap < pause {
                self.gap
                    .get_or_insert_with(|| Ewma::new(GAP_WEIGHT))
                    .update(gap.as_secs_f64());
            }
        }
        self.last = Some(now);
    }

    /// When something last arrived.
    pub fn last(&self) -> Option<Time> {
        self.last
    }

    /// How long after the last arrival the next one is overdue: twice the smoothed gap plus four
    /// of its deviations (a timeout for the next arrival, as RFC 6298 sets one for an
    /// acknowledgement, so a bursty stream is not overdue between its bursts), and at least
    /// `floor`.
    pub fn overdue_after(&self, floor: Duration) -> Duration {
        self.gap
            .and_then(|g| g.value().map(|mean| 2.0 * mean + 4.0 * g.deviation()))
            .and_then(|s| Duration::try_from_secs_f64(s).ok())
            .map_or(floor, |usual| usual.max(floor))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(t: u64) -> Time {
        Time::from_millis(t)
    }

    const PAUSE: Duration = Duration::from_secs(2);
    const FLOOR: Duration = Duration::from_millis(200);

    #[test]
    fn a_steady_stream_is_overdue_after_twice_its_gap_or_the_floor() {
        let mut p = ArrivalPace::default();
        assert_eq!(p.overdue_after(FLOOR), FLOOR, "nothing known yet");
        for t in (0..=3000).step_by(150) {
            p.arrived(ms(t), PAUSE);
        }
        assert_eq!(p.last(), Some(ms(3000)));
        assert_eq!(p.overdue_after(FLOOR), Duration::from_millis(300));
        let mut p = ArrivalPace::default();
        for t in (0..=3000).step_by(10) {
            p.arrived(ms(t), PAUSE);
        }
        assert_eq!(p.overdue_after(FLOOR), FLOOR);
    }

    #[test]
    fn a_bursty_stream_is_not_overdue_between_its_bursts() {
        // Bursts of five arrivals 10 ms apart, one burst every half second: the next burst
        // comes 460 ms after a burst's last arrival.
        let mut p = ArrivalPace::default();
        for burst in 0..20u64 {
            for k in 0..5 {
                p.arrived(ms(burst * 500 + k * 10), PAUSE);
            }
        }
        let overdue = p.overdue_after(FLOOR);
        assert!(overdue > Duration::from_millis(460), "{overdue:?}");
        assert!(overdue < PAUSE, "{overdue:?}");
    }

    #[test]
    fn a_pause_is_not_counted_as_the_pace() {
        let mut p = ArrivalPace::default();
        for t in (0..=1000).step_by(100) {
            p.arrived(ms(t), PAUSE);
        }
        p.arrived(ms(60_000), PAUSE);
        assert_eq!(p.overdue_after(FLOOR), FLOOR);
        assert_eq!(p.last(), Some(ms(60_000)));
    }
}
