//! Rate-limited logging for what a stranger can trigger (a viewer falling behind, a full node,
//! an accept error under a flood): at most a few lines per interval for each kind of line, and
//! the next line written says how many were left out. The kinds are fixed in the code (`&'static
//! str`), so a stranger cannot grow the table, only the counts.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Decides which log lines of each kind are written.
#[derive(Debug)]
pub struct LogLimiter {
    max: u32,
    per: Duration,
    kinds: Mutex<BTreeMap<&'static str, Window>>,
}

/// One kind's current interval.
#[derive(Debug)]
struct Window {
    started: Instant,
    written: u32,
    suppressed: u64,
}

impl LogLimiter {
    /// Lines of one kind written per interval by default: enough to see a problem start and
    /// what it looks like, while a stranger repeating it adds at most 10 lines a minute per kind
    /// (about 14 400 a day, a couple of megabytes) instead of one per request.
    pub const DEFAULT_MAX: u32 = 10;
    /// The default interval: a minute, the scale at which someone reads a log.
    pub const DEFAULT_PER: Duration = Duration::from_secs(60);

    /// At most `max` lines of each kind per `per`.
    pub fn new(max: u32, per: Duration) -> Self {
        Self {
            max,
            per,
            kinds: Mutex::new(BTreeMap::new()),
        }
    }

    /// Whether a line of `kind` may be written now: `Some(n)` with the number of lines of that
    /// kind left out since the last one written (to put in the line), or `None` to leave this
    /// one out (it is counted).
    pub fn allow(&self, kind: &'static str) -> Option<u64> {
        self.allow_at(kind, Instant::now())
    }

    /// [`allow`](Self::allow) at `now`.
    pub fn allow_at(&self, kind: &'static str, now: Instant) -> Option<u64> {
        let mut kinds = self.kinds.lock().ok()?;
        let w = kinds.entry(kind).or_insert(Window {
            started: now,
            written: 0,
            suppressed: 0,
        });
        if now.saturating_duration_since(w.started) >= self.per {
            w.started = now;
            w.written = 0;
        }
        if w.written < self.max {
            w.written += 1;
            Some(std::mem::take(&mut w.suppressed))
        } else {
            w.suppressed += 1;
            None
        }
    }
}

impl Default for LogLimiter {
    fn default() -> Self {
        Self::new(Self::DEFAULT_MAX, Self::DEFAULT_PER)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_gets_its_lines_per_interval_and_the_next_line_counts_those_left_out() {
        let limiter = LogLimiter::new(2, Duration::from_secs(10));
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let seen: Vec<Option<u64>> = (0..5).map(|i| limiter.allow_at("behind", at(i))).collect();
        assert_eq!(seen, [Some(0), Some(0), None, None, None]);
        // Another kind has its own allowance.
        assert_eq!(limiter.allow_at("full", at(5)), Some(0));
        // The next interval: the first line says three were left out, then the count restarts.
        assert_eq!(limiter.allow_at("behind", at(10)), Some(3));
        assert_eq!(limiter.allow_at("behind", at(11)), Some(0));
        assert_eq!(limiter.allow_at("behind", at(12)), None);
        assert_eq!(limiter.allow_at("behind", at(25)), Some(1));
    }
}
