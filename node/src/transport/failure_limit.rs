//! How often one address may fail admission: a stranger guessing the group secret gets one
//! guess per connection (the PAKE), and this bounds how many connections per address may fail
//! in a window. The table of addresses is bounded: when full, the entry whose window started
//! first is dropped (an attacker who floods it with addresses only frees the others' counts,
//! which it could not use without those addresses).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Failed admissions one address may have per [`FAILURE_WINDOW`].
pub const FAILURES_PER_WINDOW: u32 = 10;
/// The window failures are counted over.
pub const FAILURE_WINDOW: Duration = Duration::from_secs(10);
/// Addresses whose failures are remembered.
pub const MAX_ADDRESSES: usize = 4096;

/// Counts failed admissions per address.
#[derive(Debug, Default)]
pub struct FailureLimiter {
    windows: BTreeMap<IpAddr, (Instant, u32)>,
}

impl FailureLimiter {
    /// Whether `ip` may try again at `now` (it has failed fewer than [`FAILURES_PER_WINDOW`]
    /// times in its current window).
    pub fn allows(&self, ip: IpAddr, now: Instant) -> bool {
        self.windows.get(&ip).is_none_or(|(started, failures)| {
            now.saturating_duration_since(*started) >= FAILURE_WINDOW
                || *failures < FAILURES_PER_WINDOW
        })
    }

    /// Counts one failure of `ip` at `now`.
    pub fn failed(&mut self, ip: IpAddr, now: Instant) {
        if !self.windows.contains_key(&ip) && self.windows.len() >= MAX_ADDRESSES {
            // Expired windows first, else the oldest.
            self.windows
                .retain(|_, (started, _)| now.saturating_duration_since(*started) < FAILURE_WINDOW);
            if self.windows.len() >= MAX_ADDRESSES
                && let Some(oldest) = self
                    .windows
                    .iter()
                    .min_by_key(|(_, (started, _))| *started)
                    .map(|(ip, _)| *ip)
            {
                self.windows.remove(&oldest);
            }
        }
        let entry = self.windows.entry(ip).or_insert((now, 0));
        if now.saturating_duration_since(entry.0) >= FAILURE_WINDOW {
            *entry = (now, 0);
        }
        entry.1 = entry.1.saturating_add(1);
    }

    /// Addresses remembered.
    pub fn len(&self) -> usize {
        self.windows.len()
    }

    /// Whether no address is remembered.
    pub fn is_empty(&self) -> bool {
        self.windows.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_held_back_after_its_failures_until_its_window_ends() {
        let mut l = FailureLimiter::default();
        let (ip, other) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let t = Instant::now();
        for _ in 0..FAILURES_PER_WINDOW {
            assert!(l.allows(ip, t));
            l.failed(ip, t);
        }
        assert!(!l.allows(ip, t + Duration::from_secs(1)));
        assert!(l.allows(other, t), "others are not held back");
        assert!(l.allows(ip, t + FAILURE_WINDOW));
    }

    #[test]
    fn the_table_stays_bounded_under_a_flood_of_addresses() {
        let mut l = FailureLimiter::default();
        let t = Instant::now();
        for i in 0..(MAX_ADDRESSES as u32 * 3) {
            l.failed(
                IpAddr::from(i.to_be_bytes()),
                t + Duration::from_millis(u64::from(i)),
            );
        }
        assert_eq!(l.len(), MAX_ADDRESSES);
    }
}
