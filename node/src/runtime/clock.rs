//! The protocol's clock in the runtime.

use std::time::{SystemTime, UNIX_EPOCH};

use overlay_core::Time;

/// The protocol's clock: wall-clock microseconds since the Unix epoch, never going back (so
/// timestamps a source stamps mean something to receivers on other processes).
#[derive(Debug, Default)]
pub struct WallClock {
    last: u64,
}

impl WallClock {
    /// Now.
    pub fn now(&mut self) -> Time {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or(0);
        self.last = self.last.max(wall);
        Time::from_micros(self.last)
    }
}

/// The wall clock's reading now (for readers of a protocol the runtime drives, such as the
/// DNS front end over the resolver: they see the time the driver gives it, give or take a
/// clock step).
pub fn wall_now() -> Time {
    WallClock::default().now()
}

/// When, on tokio's clock, the protocol's `deadline` falls, given the protocol's `now`.
pub(super) fn instant_of(clock_now: Time, deadline: Time) -> tokio::time::Instant {
    tokio::time::Instant::now() + deadline.saturating_since(clock_now)
}
