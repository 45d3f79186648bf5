//! Receiver-driven shares of a known download.
//!
//! Each outgoing link's pacer (see `pacing`) adapts on its own, from its own connection's
//! round trip and losses. A member fed by several parents at once (one per source, and more
//! while routes change) is the one place where those links share a bottleneck, its download,
//! and nothing coordinates them there: each parent's congestion control meets the losses the
//! others cause, and which stream keeps its rate is luck. As WebRTC's receiver estimate does,
//! a member that knows its download tells each peer sending it media the share it may use:
//! a max-min fair split of most of the download over what each sends now, with room to grow.
//! The peer's pacer never goes above its share (while the share is fresh), so the parents
//! together stay under the download and each drops its own enhancement layers first.

use std::time::Duration;

/// The part of the download the shares split; the rest is headroom for control traffic,
/// probes and the jitter of arrivals.
pub(super) const HEADROOM: f64 = 0.85;
/// A share lapses this long after it was last renewed (the receiver renews it every tick
/// while media arrives; one that stopped, or left, frees the sender).
pub(super) const SHARE_LIFETIME: Duration = Duration::from_secs(3);
/// A sender's demand is taken as what it sends now, times this, plus [`GROWTH_BPS`]: its
/// share may be that much more, so a sender held back can grow into room the others leave.
const GROWTH: f64 = 1.25;
const GROWTH_BPS: f64 = 64_000.0;

/// At most this many flows are told apart per peer (more count as this many).
pub(super) const MAX_FLOWS: usize = 64;

/// What one peer sent since the last split.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Sending {
    /// Its rate now, bits per second.
    pub(super) bps: f64,
    /// The flows (sources' streams) it carried, at least one.
    pub(super) flows: usize,
}

/// Media bytes and flows counted on one link between two splits (what it received, or what it
/// was released), turned into a [`Sending`] when the split is made.
#[derive(Clone, Debug, Default)]
pub(super) struct MediaTally {
    bytes: u64,
    flows: std::collections::BTreeSet<u64>,
}

impl MediaTally {
    /// Counts `len` bytes of `flow` (a flow past [`MAX_FLOWS`] adds bytes only).
    pub(super) fn add(&mut self, len: u64, flow: Option<u64>) {
        self.bytes = self.bytes.saturating_add(len);
        if let Some(flow) = flow
            && self.flows.len() < MAX_FLOWS
        {
            self.flows.insert(flow);
        }
    }

    /// Whether anything was counted since the last [`MediaTally::take`].
    pub(super) fn is_empty(&self) -> bool {
        self.bytes == 0
    }

    /// The rate over `elapsed_s` seconds (at least 50 ms) and the flows seen, starting over.
    pub(super) fn take(&mut self, elapsed_s: f64) -> Sending {
        let tally = std::mem::take(self);
        Sending {
            bps: tally.bytes as f64 * 8.0 / elapsed_s.max(0.05),
            flows: tally.flows.len().max(1),
        }
    }
}

/// Splits `total_bps` among peers sending as `senders` say: max-min fair per flow over their
/// demands (each rate with room to grow), so a parent carrying two streams has twice the
/// claim of one carrying one. Demands that fit are met and what is left is shared out by
/// flows too (nobody is held under a download with room); where they do not fit, the
/// smaller demands per flow are met first and the rest split the remainder by flows.
/// Returns the shares in the order of `senders`.
pub(super) fn shares(total_bps: f64, senders: &[Sending]) -> Vec<f64> {
    let weight = |s: &Sending| s.flows.clamp(1, MAX_FLOWS) as f64;
    let demands: Vec<f64> = senders
        .iter()
        .map(|s| s.bps.max(0.0) * GROWTH + GROWTH_BPS * weight(s))
        .collect();
    let mut order: Vec<usize> = (0..senders.len()).collect();
    order.sort_by(|&a, &b| {
        let per_flow = |i: usize| demands[i] / weight(&senders[i]);
        per_flow(a).total_cmp(&per_flow(b))
    });
    let mut out = vec![0.0; senders.len()];
    let mut left = total_bps.max(0.0);
    let mut weights_left: f64 = senders.iter().map(weight).sum();
    for &i in &order {
        let w = weight(&senders[i]);
        let fair = left * w / weights_left.max(1.0);
        out[i] = demands[i].min(fair);
        left -= out[i];
        weights_left -= w;
    }
    // Every demand met: the room left goes to all, by flows.
    let all: f64 = senders.iter().map(weight).sum();
    if left > 0.0 && all > 0.0 {
        for (share, s) in out.iter_mut().zip(senders) {
            *share += left * weight(s) / all;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tally_gives_the_rate_and_the_flows_it_saw_and_starts_over() {
        let mut tally = MediaTally::default();
        assert!(tally.is_empty());
        for flow in 0..100 {
            tally.add(1_000, Some(flow));
        }
        tally.add(500, None);
        assert!(!tally.is_empty());
        // 100.5 kB in half a second; flows past MAX_FLOWS add bytes only.
        let sending = tally.take(0.5);
        assert_eq!(sending.flows, MAX_FLOWS);
        assert!((sending.bps - 1_608_000.0).abs() < 1e-6, "{sending:?}");
        assert!(tally.is_empty());
        // No flow named counts as one; a near-zero interval is taken as 50 ms.
        tally.add(100, None);
        assert_eq!(
            tally.take(0.0),
            Sending {
                bps: 16_000.0,
                flows: 1
            }
        );
    }

    #[test]
    fn shares_split_by_flows_meet_small_demands_and_leave_no_room_unused() {
        let one = |bps: f64| Sending { bps, flows: 1 };
        // 1 Mbit/s for three senders: one sends 100 kbit/s (demand 189), two send 500
        // (demand 689 each): the small one gets its demand, the two split the rest.
        let s = shares(
            1_000_000.0,
            &[one(500_000.0), one(100_000.0), one(500_000.0)],
        );
        assert!((s[1] - 189_000.0).abs() < 1.0, "{s:?}");
        assert!((s[0] - 405_500.0).abs() < 1.0, "{s:?}");
        assert_eq!(s[0], s[2]);
        assert!((s.iter().sum::<f64>() - 1_000_000.0).abs() < 1.0);
        // A parent carrying two streams has twice the claim of one carrying one.
        let two = Sending {
            bps: 800_000.0,
            flows: 2,
        };
        let s = shares(900_000.0, &[two, one(500_000.0)]);
        assert!(
            (s[0] - 600_000.0).abs() < 1.0 && (s[1] - 300_000.0).abs() < 1.0,
            "{s:?}"
        );
        // Room for all: every demand met and the rest shared out, none left unused.
        let s = shares(10_000_000.0, &[one(500_000.0), one(100_000.0)]);
        assert!(s[0] > 689_000.0 && s[1] > 189_000.0, "{s:?}");
        assert!((s.iter().sum::<f64>() - 10_000_000.0).abs() < 1.0);
        // One sender alone gets the whole budget.
        assert_eq!(shares(600_000.0, &[one(1_000_000.0)]), vec![600_000.0]);
        assert!(shares(600_000.0, &[]).is_empty());
    }
}
