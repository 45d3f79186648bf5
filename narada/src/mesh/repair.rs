//! Silent members and partitions: the partition queue (probe the head for certain after a
//! bound, otherwise with probability |Q| / N), suspects re-probed with backoff, and queries that
//! went unanswered.

use std::time::Duration;

use overlay_core::Time;
use rand::RngExt;

use super::{Mesh, QueryPurpose};
use crate::core::Core;
use crate::members::{SELF_SLOT, Slot, Status};

impl Mesh {
    pub(crate) fn query_expired(&mut self, cx: &mut Core, now: Time, nonce: u64) {
        let Some(query) = self.queries.remove(&nonce) else {
            return;
        };
        if query.purpose == QueryPurpose::Repair && !cx.neighbours.contains_key(&query.target) {
            // Silent when probed: dead (unless news of it arrived meanwhile).
            let heard_since = cx
                .members
                .record(query.target)
                .is_some_and(|r| r.heard_at > query.sent);
            if !heard_since {
                self.member_died(cx, now, query.target);
            }
        }
    }

    /// Members declared dead first hand are probed again with jittered exponential backoff (see
    /// [`crate::RepairConfig::suspect_reprobe_max`]): after a network partition heals, the
    /// cut-off side answers and is linked again within seconds instead of waiting for the
    /// partition queue.
    fn reprobe_suspects(&mut self, cx: &mut Core, now: Time) {
        let max = cx.config.repair.suspect_reprobe_max;
        let revived: Vec<Slot> = self
            .suspects
            .keys()
            .copied()
            .filter(|&s| {
                cx.members.is_alive(s)
                    || cx.neighbours.contains_key(&s)
                    || cx.members.record(s).is_none()
            })
            .collect();
        for s in revived {
            self.suspects.remove(&s);
        }
        let due: Vec<Slot> = self
            .suspects
            .iter()
            .filter(|(_, (at, _))| *at <= now)
            .map(|(&s, _)| s)
            .collect();
        for s in due {
            if let Some((_, interval)) = self.suspects.get(&s) {
                let next = (*interval * 2).min(max);
                let at = now + jittered(cx, next);
                self.suspects.insert(s, (at, next));
            }
            self.send_query(cx, now, s, QueryPurpose::Repair);
        }
    }

    /// Partition repair: queue members not heard from for Tm; probe the head for certain after
    /// a bound, otherwise with probability |Q| / N.
    pub(crate) fn repair_tick(&mut self, cx: &mut Core, now: Time) {
        if !cx.life.joined || cx.life.leaving_since.is_some() {
            return;
        }
        self.reprobe_suspects(cx, now);
        let timeout = cx.config.repair.member_timeout;
        let stale: Vec<Slot> = cx
            .members
            .existing()
            .filter(|&(s, r)| {
                s != SELF_SLOT
                    && r.status == Status::Alive
                    && !cx.neighbours.contains_key(&s)
                    && now.saturating_since(r.heard_at) >= timeout
            })
            .map(|(s, _)| s)
            .collect();
        self.partition_queue.retain(|s, _| stale.contains(s));
        for s in stale {
            self.partition_queue.entry(s).or_insert(now);
        }
        let Some((&head, &since)) = self.partition_queue.iter().min_by_key(|&(s, t)| (*t, *s))
        else {
            return;
        };
        let forced = now.saturating_since(since) >= cx.config.repair.queue_max_wait;
        let chance = self.partition_queue.len() as f64 / cx.members.alive_count().max(1) as f64;
        if forced || cx.rng.random_bool(chance.clamp(0.0, 1.0)) {
            self.partition_queue.remove(&head);
            cx.stats.repair_probes += 1;
            self.send_query(cx, now, head, QueryPurpose::Repair);
        }
    }

    /// `slot` is no longer waited for (it died, or it was purged).
    pub(crate) fn forget(&mut self, slot: Slot) {
        self.partition_queue.remove(&slot);
        self.suspects.remove(&slot);
    }

    /// When to probe a suspect first after it was found dead at `now`.
    pub(crate) fn first_reprobe(cx: &mut Core, now: Time) -> (Time, Duration) {
        let max = cx.config.repair.suspect_reprobe_max;
        let first = (cx.config.repair.repair_interval * 2).min(max);
        (now + jittered(cx, first), first)
    }

    /// `slot` was reported dead by others: it leaves the partition queue.
    pub(crate) fn unqueue(&mut self, slot: Slot) {
        self.partition_queue.remove(&slot);
    }
}

/// A wait of between half and all of `nominal`, drawn from the member's random source, so
/// members that lost their links together do not probe in step.
fn jittered(cx: &mut Core, nominal: Duration) -> Duration {
    nominal.mul_f64(cx.rng.random_range(0.5..=1.0))
}
