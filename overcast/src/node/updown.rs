//! The up/down protocol's side of a node: children adopted, check-ins up the tree, certificates
//! taken in and passed on, children lost, full listings, and samples of the table for other
//! nodes. It is the behaviour of the shared part ([`Core`]): its state (children, table, news)
//! is what placement reads.

use std::collections::BTreeSet;
use std::time::Duration;

use overlay_core::{NodeId, Time};
use rand::seq::SliceRandom;

use super::Timer;
use super::core::{Child, Core};
use super::parent_watch::{WatchAction, WatchRule};
use crate::PathBandwidth;
use crate::certificate::{CertBody, Certificate, DeathCause, NodeInfo};
use crate::message::Message;
use crate::table::{Applied, Digest, State};

/// Check-ins in a row that must disagree before a parent asks for a child's full subtree.
const RESYNC_AFTER: u32 = 3;

/// The longest wait between two full listings asked of one child.
const MAX_RESYNC_BACKOFF: Duration = Duration::from_secs(64);

impl Core {
    /// A standby root that still has the next root of the chain below it takes no other
    /// children, so every chain member holds the full table.
    fn standby_refuses(&self, asker: &NodeId) -> bool {
        let Some(i) = self.chain_index() else {
            return false;
        };
        let asker_in_chain = self.config.roots.iter().position(|r| r == asker);
        if asker_in_chain.is_some_and(|j| j > i) {
            return false;
        }
        self.children.keys().any(|c| {
            self.config
                .roots
                .iter()
                .position(|r| r == c)
                .is_some_and(|j| j > i)
        })
    }

    /// `from` asks to become a child, offering sequence number `seq`: adopt it (and certify its
    /// birth), or refuse. A node in the middle of its own move (`moving`) refuses: two nodes
    /// moving under each other at once would otherwise close a loop before either ancestor list
    /// shows it.
    pub(super) fn on_attach(
        &mut self,
        now: Time,
        from: NodeId,
        seq: u32,
        info: NodeInfo,
        moving: bool,
    ) {
        if !self.is_placed()
            || moving
            || from == self.id
            || self.ancestors.contains(&from)
            || self.standby_refuses(&from)
        {
            self.outbox.send(from, Message::Refused);
            return;
        }
        // Its bandwidth from the root is at most this node's until its first check-in reports
        // the real figure.
        let mut child = Child::new(now, seq, self.path_bandwidth());
        child.lease_until = now + self.config.lease;
        child.resync_backoff = self.config.check_in_interval * RESYNC_AFTER;
        self.children.insert(from, child);
        if self.table.adopt(from, seq, info) {
            self.certify(CertBody::Birth {
                node: from,
                seq,
                info,
            });
        }
        let ancestors = self.ancestors_through_me();
        let path_bw = self.path_bandwidth().to_wire();
        self.outbox.send(
            from,
            Message::Adopted {
                ancestors,
                path_bw,
                seq,
            },
        );
    }

    /// Whether news of a death for `cause` goes no further up: a move whose meeting point is
    /// this node or its parent, which hears of the new place from the other side (and would
    /// only quash this).
    fn departure_stops_here(&self, cause: &DeathCause) -> bool {
        matches!(cause, DeathCause::Moved { meet: Some(meet), .. }
            if *meet == self.id || Some(*meet) == self.parent)
    }

    /// Sign `body` and queue it for the parent.
    pub(super) fn certify(&mut self, body: CertBody) {
        let cert = Certificate::new(body, self.id, self.signer.as_ref());
        self.pending.push(cert);
    }

    /// Up to `count` live nodes of this node's table other than `asker`, each with its reported
    /// bandwidth from the root: first those of `about` that live here (at most half the
    /// answer), then half the rest nearest the asker's landmark time `near` (if known, ties
    /// broken at random), then drawn at random. It reads the table's indexes of live entries,
    /// walking only the nodes it answers with (and those as near as the last of them): the
    /// root of a 10 000-node tree answers every joining node and every re-evaluation.
    pub(super) fn sample_table(
        &mut self,
        count: usize,
        asker: NodeId,
        near: u32,
        about: &[NodeId],
    ) -> Vec<(NodeId, u64)> {
        let mut picked: Vec<(NodeId, u64)> = Vec::with_capacity(count);
        for node in about {
            if picked.len() >= count / 2 {
                break;
            }
            if let Some(entry) = self.table.get(node)
                && entry.alive()
                && *node != asker
                && !picked.iter().any(|p| p.0 == *node)
            {
                picked.push((*node, entry.info.path_bw));
            }
        }
        let from_about = picked.len();
        let excluded = |n: &NodeId| *n == asker || picked[..from_about].iter().any(|p| p.0 == *n);
        let half = (count - picked.len()) / 2;
        let mut by_position: Vec<(u32, u64, NodeId)> = Vec::new();
        if near > 0 && half > 0 {
            // Half the rest by position: the nodes whose distance to the landmark is nearest
            // the asker's; equals in an order drawn for this answer. Walk out from `near` on
            // both sides, nearest first, up to the half-th node and every node as near as it.
            let salt: u64 = rand::RngExt::random(&mut self.rng);
            let tie = |n: &NodeId| {
                let mut first = [0u8; 8];
                first.copy_from_slice(&n.as_bytes()[..8]);
                (u64::from_le_bytes(first) ^ salt).wrapping_mul(0x9e37_79b9_7f4a_7c15)
            };
            let mut bound = None;
            for (distance, node) in self.table.nearest_by_landmark(near) {
                if bound.is_some_and(|b| distance > b) {
                    break;
                }
                if excluded(&node) {
                    continue;
                }
                by_position.push((distance, tie(&node), node));
                if by_position.len() == half {
                    bound = Some(distance);
                }
            }
            by_position.sort_unstable();
            by_position.truncate(half);
        }
        for &(_, _, node) in &by_position {
            let path_bw = self.table.get(&node).map_or(0, |e| e.info.path_bw);
            picked.push((node, path_bw));
        }
        // The rest at random: a shuffled prefix long enough to skip those picked by position,
        // drawn as places among the live nodes less the excluded ones.
        let ids = self.table.live_ids();
        let mut skipped: Vec<usize> = std::iter::once(asker)
            .chain(picked[..from_about].iter().map(|p| p.0))
            .filter_map(|n| ids.binary_search(&n).ok())
            .collect();
        skipped.sort_unstable();
        skipped.dedup();
        let places = ids.len() - skipped.len();
        let mut order: Vec<u32> = (0..u32::try_from(places).unwrap_or(u32::MAX)).collect();
        let want = count.saturating_sub(picked.len());
        let (drawn, _) = order.partial_shuffle(&mut self.rng, want + (picked.len() - from_about));
        let mut answer = Vec::with_capacity(drawn.len());
        for &place in drawn.iter() {
            let mut rank = place as usize;
            for &s in &skipped {
                if s <= rank {
                    rank += 1;
                } else {
                    break;
                }
            }
            answer.push(ids[rank]);
        }
        for node in answer {
            if picked.len() >= count {
                break;
            }
            if !picked[from_about..].iter().any(|p| p.0 == node)
                && let Some(entry) = self.table.get(&node)
            {
                picked.push((node, entry.info.path_bw));
            }
        }
        picked
    }

    /// Child `child` is gone from here, with its subtree; tell the ancestors why.
    pub(super) fn lose_child(&mut self, child: NodeId, cause: DeathCause) {
        self.children.remove(&child);
        self.child_checks.forget(&child);
        let own = match cause {
            DeathCause::Silent => State::Dead,
            DeathCause::Orphaned | DeathCause::Moved { .. } => State::Absent,
        };
        let stops_here = self.departure_stops_here(&cause);
        for (node, seq) in self.table.remove_child(&child, own) {
            let cause = match cause {
                DeathCause::Silent if node != child => DeathCause::Orphaned,
                other => other,
            };
            if stops_here {
                self.stats.departures_stopped += 1;
            } else {
                self.certify(CertBody::Death { node, seq, cause });
            }
        }
    }

    /// Child `from` moved under `new_parent`, with the news of its subtree up to the move.
    pub(super) fn on_detach(
        &mut self,
        from: NodeId,
        seq: u32,
        new_parent: NodeId,
        meet: Option<NodeId>,
        news: Vec<Certificate>,
    ) {
        let Some(child) = self.children.get(&from) else {
            self.stats.non_child_checkins += 1;
            return;
        };
        if seq < child.seq {
            return;
        }
        self.take_certificates(from, news);
        let stays = self.table.via(&new_parent).filter(|v| *v != from);
        if let Some(side) = stays {
            // It moved under another of this node's descendants: its entries now hang under
            // that child; nothing changes for the ancestors.
            self.children.remove(&from);
            self.child_checks.forget(&from);
            self.table.repoint(&from, side);
        } else {
            self.lose_child(
                from,
                DeathCause::Moved {
                    new_parent,
                    mover: from,
                    meet,
                },
            );
        }
    }

    /// A check-in from child `from`: renew its lease, take its news, and compare digests.
    pub(super) fn on_check_in(
        &mut self,
        now: Time,
        from: NodeId,
        certificates: Vec<Certificate>,
        digest: Digest,
        path_bw: u64,
    ) {
        let Some(child) = self.children.get_mut(&from) else {
            self.stats.non_child_checkins += 1;
            return;
        };
        child.lease_until = now + self.config.lease;
        child.path_bw = PathBandwidth::from_wire(path_bw);
        self.take_certificates(from, certificates);
        let agrees = self.table.digest_under(&from) == digest;
        // Digests are compared at most once per half check-in interval: a child that checks in
        // sooner (its parent's stream went silent) must not make news in flight look like a
        // lasting disagreement.
        let half = self.config.check_in_interval / 2;
        if let Some(child) = self.children.get_mut(&from)
            && child.compared_at.is_none_or(|t| now >= t + half)
        {
            child.compared_at = Some(now);
            child.mismatches = if agrees {
                0
            } else {
                child.mismatches.saturating_add(1)
            };
            if agrees {
                child.resync_backoff = self.config.check_in_interval * RESYNC_AFTER;
            } else if child.mismatches >= RESYNC_AFTER && now >= child.next_resync {
                // News in flight settles within a few check-ins; disagreement that outlives
                // them is a race the certificates did not resolve. Ask for the full list.
                child.next_resync = now + child.resync_backoff;
                child.resync_backoff = (child.resync_backoff * 2).min(MAX_RESYNC_BACKOFF);
                self.stats.resyncs += 1;
                self.outbox.send(from, Message::SubtreeQuery);
            }
        }
        let ancestors = self.ancestors_through_me();
        let path_bw = self.path_bandwidth().to_wire();
        self.outbox
            .send(from, Message::CheckInAck { ancestors, path_bw });
    }

    /// A new child's whole subtree: take in the births, and forget what it no longer holds.
    pub(super) fn on_subtree(&mut self, from: NodeId, births: Vec<Certificate>) {
        if !self.children.contains_key(&from) {
            self.stats.non_child_checkins += 1;
            return;
        }
        if let Some(child) = self.children.get_mut(&from) {
            child.listed = true;
        }
        let listed: BTreeSet<NodeId> = births.iter().map(|c| c.body.subject()).collect();
        // The child itself is not listed (it is the author): this node knows first hand that it
        // is a child, whatever stale news from elsewhere said.
        let held = self.table.get(&from).copied();
        if !held.is_some_and(|e| e.alive() && e.via == from)
            && let Some(seq) = self.children.get(&from).map(|c| c.seq)
        {
            let seq = held.map_or(seq, |e| e.seq.max(seq));
            let info = held.map(|e| e.info).unwrap_or_default();
            self.table.reassert_child(from, seq, info);
            self.certify(CertBody::Birth {
                node: from,
                seq,
                info,
            });
        }
        // The listing is the child's first-hand account of its subtree now: a node it lists that
        // this table holds as gone (news from another side, at a number this side never saw)
        // is revived under the child. Without this, numbers that differ between two paths could
        // keep a live node out of the table for good.
        let listing: Vec<(NodeId, u32, NodeInfo)> = births
            .iter()
            .filter(|c| c.author == from && c.verify(self.verifier.as_ref()))
            .filter_map(|c| match c.body {
                CertBody::Birth { node, seq, info } => Some((node, seq, info)),
                _ => None,
            })
            .collect();
        self.take_certificates(from, births);
        for (node, seq, info) in listing {
            if node == self.id || node == from || self.ancestors.contains(&node) {
                continue;
            }
            if let Some(seq) = self.table.revive_under(from, node, seq, info) {
                self.certify(CertBody::Birth { node, seq, info });
            }
        }
        for (node, seq) in self.table.prune_under(&from, &listed) {
            self.certify(CertBody::Death {
                node,
                seq,
                cause: DeathCause::Orphaned,
            });
        }
    }

    /// Births of this node's live descendants, signed by it, for a new parent.
    pub(super) fn subtree_births(&self) -> Vec<Certificate> {
        self.table
            .live()
            .map(|(n, e)| {
                let body = CertBody::Birth {
                    node: *n,
                    seq: e.seq,
                    info: e.info,
                };
                Certificate::new(body, self.id, self.signer.as_ref())
            })
            .collect()
    }

    /// Check and apply certificates from child `from`, queueing the changes for the parent.
    pub(super) fn take_certificates(&mut self, from: NodeId, certificates: Vec<Certificate>) {
        for cert in certificates {
            self.stats.certificates_in += 1;
            if !matches!(cert.body, CertBody::Extra { .. }) {
                self.stats.membership_certificates_in += 1;
            }
            if !cert.verify(self.verifier.as_ref()) {
                self.stats.forged += 1;
                continue;
            }
            // A birth's author vouches for a node new to this table, so it must itself be in
            // the child's subtree. Deaths and extra information are about a node already known
            // under the child (the table checks that); their author may have moved away since.
            let birth = matches!(cert.body, CertBody::Birth { .. });
            if birth && cert.author != from && self.table.via(&cert.author) != Some(from) {
                self.stats.outside_subtree += 1;
                continue;
            }
            // A node alive under the same child, born again there: it moved inside that
            // child's subtree. The ancestors know it is alive and where; they need its new
            // information only if an `Extra` would carry it (content grows all the time, so
            // nearly every move's birth differs from what they hold). The table takes its new
            // number and keeps the information the ancestors hold, so later news is measured
            // against that.
            let mut body = cert.body.clone();
            let mut quiet_move = false;
            if let CertBody::Birth { node, seq, info } = body
                && let Some(e) = self.table.get(&node)
                && e.alive()
                && e.via == from
                && !self.worth_reporting(&e.info, &info)
            {
                body = CertBody::Birth {
                    node,
                    seq,
                    info: e.info,
                };
                quiet_move = true;
            }
            match self.table.apply(from, &body) {
                Applied::Unchanged if quiet_move => self.stats.arrivals_stopped += 1,
                Applied::Changed => match cert.body {
                    CertBody::Death { cause, .. } if self.departure_stops_here(&cause) => {
                        self.stats.departures_stopped += 1;
                    }
                    _ => self.pending.push(cert),
                },
                Applied::Unchanged => self.stats.quashed += 1,
                Applied::Stale => self.stats.stale += 1,
                Applied::OutsideSubtree => self.stats.outside_subtree += 1,
                Applied::FromFuture => self.stats.from_future += 1,
                Applied::TableFull => self.stats.table_full += 1,
            }
        }
    }

    /// The periodic check-in: children that missed their lease are lost, and the news goes up
    /// to the parent. Returns the parent if it was silent too long (the caller leaves it).
    #[must_use]
    pub(super) fn check_in(&mut self, now: Time) -> Option<NodeId> {
        self.timers
            .set(Timer::CheckIn, now + self.config.check_in_interval);
        // Children that missed their lease are dead, with their subtrees.
        let expired: Vec<NodeId> = self
            .children
            .iter()
            .filter(|(_, c)| c.lease_until < now)
            .map(|(&n, _)| n)
            .collect();
        for child in expired {
            self.lose_child(child, DeathCause::Silent);
        }
        if self.is_root {
            // Nothing above: the news stops here.
            self.pending.clear();
            return None;
        }
        let parent = self.parent?;
        if now.saturating_since(self.parent_heard) > self.config.parent_timeout {
            return Some(parent);
        }
        self.send_check_in(parent);
        None
    }

    /// The watch's settings, if it is on.
    fn watch_rule(&self) -> Option<WatchRule> {
        let after = self.config.silence_check_in_after;
        (!after.is_zero()).then_some(WatchRule {
            after,
            lost_after: self.config.silent_parent_check_ins.max(1),
            pause: self.config.parent_timeout,
        })
    }

    /// Content came from the parent `from`: the watch over its stream takes note, and its timer
    /// runs.
    pub(super) fn watch_content(&mut self, now: Time, from: NodeId) {
        let Some(rule) = self.watch_rule() else {
            return;
        };
        let at = self.watch.on_data(now, from, &rule);
        if !self.timers.is_armed(Timer::ParentSilence) {
            self.timers.set(Timer::ParentSilence, at);
        }
    }

    /// The watch's timer fired: check in with a parent whose stream went silent, and return it
    /// if it left enough such check-ins unanswered (the caller leaves it).
    #[must_use]
    pub(super) fn on_parent_silence(&mut self, now: Time) -> Option<NodeId> {
        let rule = self.watch_rule()?;
        let parent = self.parent.filter(|_| !self.is_root);
        match self.watch.on_timer(now, parent, self.parent_rtt, &rule) {
            WatchAction::Wait(at) => {
                if let Some(at) = at {
                    self.timers.set(Timer::ParentSilence, at);
                }
                None
            }
            WatchAction::CheckIn(at) => {
                self.stats.silence_check_ins += 1;
                if let Some(parent) = parent {
                    self.send_check_in(parent);
                }
                self.timers.set(Timer::ParentSilence, at);
                None
            }
            WatchAction::Lost(parent) => {
                self.stats.silent_parents_lost += 1;
                // Tell the grandparent, which checks on its child at once instead of waiting
                // for the lease to run out (see `child_check`).
                if let [.., grandparent, last] = self.ancestors[..]
                    && last == parent
                    && self.config.check_silent_children
                {
                    self.outbox
                        .send(grandparent, Message::ParentSilent { parent });
                }
                Some(parent)
            }
        }
    }

    /// With news waiting and a parent to tell, send it soon rather than at the next check-in
    /// (a certificate then climbs a level per round trip, not per check-in period).
    pub(super) fn hurry_news(&mut self, now: Time) {
        if let Some(delay) = self.config.news_delay
            && !self.pending.is_empty()
            && self.parent.is_some()
            && !self.is_root
            && !self.timers.is_armed(Timer::News)
        {
            self.timers.set(Timer::News, now + delay);
        }
    }

    /// The news waiting, to the parent, between check-ins.
    pub(super) fn send_news(&mut self) {
        let Some(parent) = self.parent.filter(|_| !self.is_root) else {
            return;
        };
        let take = self
            .pending
            .len()
            .min(self.config.max_certificates_per_check_in);
        if take > 0 {
            let certificates: Vec<Certificate> = self.pending.drain(..take).collect();
            self.outbox.send(parent, Message::News { certificates });
        }
    }

    /// A check-in to `parent`: the news waiting (as much as one carries) and the digest.
    pub(super) fn send_check_in(&mut self, parent: NodeId) {
        let take = self
            .pending
            .len()
            .min(self.config.max_certificates_per_check_in);
        let certificates: Vec<Certificate> = self.pending.drain(..take).collect();
        let digest = self.table.digest_of_subtree();
        let path_bw = self.path_bandwidth().to_wire();
        self.outbox.send(
            parent,
            Message::CheckIn {
                certificates,
                digest,
                path_bw,
            },
        );
    }

    /// Whether a node's information changed enough from `was` to `now` for the ancestors to
    /// hear of it.
    fn worth_reporting(&self, was: &NodeInfo, now: &NodeInfo) -> bool {
        // A bounded memory's first byte advances with the stream as the end does: reported by
        // the same step (every node's window sliding would otherwise certify every interval),
        // and at once when it goes back (a new stream or a restart).
        let step = self.config.content_report_step;
        let grew = now.content >= was.content.saturating_add(step)
            || now.first >= was.first.saturating_add(step)
            || now.first < was.first
            || now.content < was.content
            || now.degraded != was.degraded;
        // Bandwidth is reported when it moves beyond the equality band, not on every wobble.
        let bw_moved = PathBandwidth::from_wire(now.path_bw).moved_beyond(
            PathBandwidth::from_wire(was.path_bw),
            self.config.equal_fraction,
        );
        grew || bw_moved || now.load != was.load || now.landmark_rtt_us != was.landmark_rtt_us
    }

    /// Certify this node's extra information if it changed enough since last reported.
    pub(super) fn report_extra(&mut self, now: Time) {
        self.timers
            .set(Timer::Extra, now + self.config.extra_interval);
        let info = self.info();
        if self.parent.is_some() && self.worth_reporting(&self.reported, &info) {
            self.reported = info;
            self.certify(CertBody::Extra {
                node: self.id,
                seq: self.seq,
                info,
            });
        }
    }
}

#[cfg(test)]
#[path = "updown_tests.rs"]
mod tests;
