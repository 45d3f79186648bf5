//! Monotonic time in microseconds, owned by the project.
//!
//! Protocols never read a clock: every input carries `now: Time`. The simulator starts at zero, so
//! logs read in simulated seconds; the QUIC runtime uses wall-clock microseconds since the Unix
//! epoch, kept from going back (`node::runtime::WallClock`), so a timestamp a source stamps means
//! something to receivers in other processes.
//! Arithmetic saturates instead of overflowing, so no input can make it panic.

use std::fmt;
use std::ops::{Add, AddAssign, Sub};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A point in time, in microseconds since an arbitrary epoch (zero in simulations).
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Time(u64);

impl Time {
    /// The epoch.
    pub const ZERO: Self = Self(0);
    /// The largest representable time; `Time::MAX + d == Time::MAX`.
    pub const MAX: Self = Self(u64::MAX);

    /// A time `micros` microseconds after the epoch.
    pub const fn from_micros(micros: u64) -> Self {
        Self(micros)
    }

    /// A time `millis` milliseconds after the epoch (saturating).
    pub const fn from_millis(millis: u64) -> Self {
        Self(millis.saturating_mul(1_000))
    }

    /// A time `secs` seconds after the epoch (saturating).
    pub const fn from_secs(secs: u64) -> Self {
        Self(secs.saturating_mul(1_000_000))
    }

    /// Microseconds since the epoch.
    pub const fn as_micros(self) -> u64 {
        self.0
    }

    /// Seconds since the epoch, as a float (for reports and logs).
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e6
    }

    /// The time elapsed since `earlier`, or zero if `earlier` is later than `self`.
    pub fn saturating_since(self, earlier: Self) -> Duration {
        Duration::from_micros(self.0.saturating_sub(earlier.0))
    }

    /// `self + d`, or `None` if the sum does not fit.
    pub fn checked_add(self, d: Duration) -> Option<Self> {
        let micros = u64::try_from(d.as_micros()).ok()?;
        self.0.checked_add(micros).map(Self)
    }
}

/// The sooner of two optional deadlines (`None` is never): how a protocol made of parts, each
/// with its own deadline, answers `poll_timeout`.
pub fn soonest(a: Option<Time>, b: Option<Time>) -> Option<Time> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Microseconds in `d`, saturated to `u64::MAX`.
pub fn duration_micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

impl Add<Duration> for Time {
    type Output = Self;
    /// Saturates at [`Time::MAX`].
    fn add(self, d: Duration) -> Self {
        Self(self.0.saturating_add(duration_micros(d)))
    }
}

impl AddAssign<Duration> for Time {
    fn add_assign(&mut self, d: Duration) {
        *self = *self + d;
    }
}

impl Sub<Duration> for Time {
    type Output = Self;
    /// Saturates at [`Time::ZERO`].
    fn sub(self, d: Duration) -> Self {
        Self(self.0.saturating_sub(duration_micros(d)))
    }
}

impl Sub for Time {
    type Output = Duration;
    /// The duration between two times; zero if `rhs` is later (see [`Time::saturating_since`]).
    fn sub(self, rhs: Self) -> Duration {
        self.saturating_since(rhs)
    }
}

impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:06}s", self.0 / 1_000_000, self.0 % 1_000_000)
    }
}

impl fmt::Debug for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates_instead_of_panicking() {
        assert_eq!(Time::MAX + Duration::from_secs(1), Time::MAX);
        assert_eq!(Time::ZERO - Duration::from_secs(1), Time::ZERO);
        assert_eq!(Time::from_secs(1) - Time::from_secs(2), Duration::ZERO);
        assert_eq!(Time::from_secs(1).checked_add(Duration::MAX), None);
    }

    #[test]
    fn units_convert() {
        let t = Time::from_millis(1_500);
        assert_eq!(t.as_micros(), 1_500_000);
        assert_eq!(t + Duration::from_millis(250), Time::from_micros(1_750_000));
        assert_eq!(
            Time::from_secs(3) - Time::from_millis(500),
            Duration::from_millis(2_500)
        );
        assert_eq!(t.to_string(), "1.500000s");
        assert!((t.as_secs_f64() - 1.5).abs() < 1e-12);
    }
}
