//! Where a node places itself: join rounds down from the root, periodic re-evaluation against
//! parent, grandparent and siblings, and attach attempts that climb a fallback list.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use overlay_core::{Bandwidth, MeasureRequest, NodeId, Time};
use rand::seq::SliceRandom;

use super::{Overcast, Timer};
use crate::PathBandwidth;
use crate::message::Message;

/// What a `Children` answer says of bandwidth from the root.
#[derive(Clone, Debug)]
pub(super) struct PathCaps {
    /// Each listed child's.
    pub(super) children: BTreeMap<NodeId, PathBandwidth>,
    /// The answering node's.
    pub(super) sender: PathBandwidth,
    /// The answering node's parent's.
    pub(super) sender_parent: PathBandwidth,
}

/// One measurement of the path from a peer.
#[derive(Clone, Copy, Debug)]
struct Measured {
    /// The bandwidth of the last hop.
    bandwidth: Bandwidth,
    /// The round-trip time.
    rtt: Duration,
}

/// Bandwidth measurements of one round.
#[derive(Clone, Debug, Default)]
pub(super) struct Probe {
    waiting: BTreeSet<NodeId>,
    /// What was measured, by peer.
    results: BTreeMap<NodeId, Measured>,
    /// Each measured peer's own bandwidth from the root, where known: a path through it can
    /// carry no more than that, whatever the last hop measures.
    caps: BTreeMap<NodeId, PathBandwidth>,
    /// The nodes measured against the reference (children of the candidate, or siblings).
    others: Vec<NodeId>,
    /// Those of `others` drawn from the root's table rather than listed by the parent.
    sampled: BTreeSet<NodeId>,
}

impl Probe {
    /// The bandwidth from the root through `peer`: the measured last hop, capped by the peer's
    /// own bandwidth from the root.
    fn through(&self, peer: &NodeId) -> Option<Bandwidth> {
        let measured = self.results.get(peer)?;
        let cap = self.caps.get(peer).copied();
        let cap = cap.unwrap_or(PathBandwidth::Unlimited);
        Some(cap.cap(measured.bandwidth))
    }

    /// The measured last hop from `peer` (what a move under it sets the link to), unlimited if
    /// it was not measured.
    fn hop(&self, peer: &NodeId) -> PathBandwidth {
        self.results
            .get(peer)
            .map_or(PathBandwidth::Unlimited, |r| r.bandwidth.into())
    }

    /// The round-trip time measured to `peer`.
    fn rtt(&self, peer: &NodeId) -> Option<Duration> {
        self.results.get(peer).map(|r| r.rtt)
    }
}

/// A join (or rejoin) searching down from a candidate.
#[derive(Clone, Debug)]
pub(super) struct Search {
    candidate: NodeId,
    round: u32,
    /// The best bandwidth seen on the way down.
    best: Bandwidth,
    /// The candidate's ancestors, ending with it: where to fall back if it refuses.
    candidate_ancestors: Vec<NodeId>,
    /// `None` until the candidate listed its children.
    probe: Option<Probe>,
}

/// An adoption request in flight.
#[derive(Clone, Debug)]
pub(super) struct Attempt {
    pub(super) target: NodeId,
    fallback: Vec<NodeId>,
    pub(super) rounds: u32,
    /// Whether a live node refused along the way (a standby root must not then take over).
    refused: bool,
    /// The measured path from the target (unlimited when the move was not measured).
    pub(super) link_bw: PathBandwidth,
    /// The sequence number this request offered.
    pub(super) seq: u32,
}

/// A re-evaluation of an attached node's place.
#[derive(Clone, Debug)]
pub(super) struct Reevaluation {
    parent: NodeId,
    grandparent: Option<NodeId>,
    probe: Option<Probe>,
    /// Nodes drawn from the root's table, with their bandwidth from the root, while the
    /// parent's answer is awaited.
    sample: Vec<(NodeId, PathBandwidth)>,
}

impl Overcast {
    fn measure_timeout(&self) -> Duration {
        self.config.answer_timeout + self.config.probe_duration
    }

    fn measure(&mut self, probe: &mut Probe, peer: NodeId) {
        if peer == self.id || !probe.waiting.insert(peer) {
            return;
        }
        self.stats.measurements += 1;
        let request = match self.config.probe_bytes {
            Some(bytes) => MeasureRequest::Transfer { bytes },
            None => MeasureRequest::Bandwidth {
                max_rate: self.config.probe_rate,
                duration: self.config.probe_duration,
            },
        };
        self.outbox.measure(peer, request);
    }

    /// Whether `node` is below this node (it must never become its parent).
    fn is_descendant(&self, node: &NodeId) -> bool {
        self.children.contains_key(node) || self.table.via(node).is_some()
    }

    /// Up to `max_probed_children` of `nodes` that could be this node's parent, chosen at random.
    fn eligible(&mut self, nodes: Vec<NodeId>, exclude: &[NodeId]) -> Vec<NodeId> {
        let mut eligible: Vec<NodeId> = nodes
            .into_iter()
            .filter(|c| *c != self.id && !self.is_descendant(c) && !exclude.contains(c))
            .collect();
        eligible.shuffle(&mut self.rng);
        eligible.truncate(self.config.max_probed_children);
        eligible.sort_unstable();
        eligible
    }

    /// The lowest root not suspected dead (the bottom of the chain, where nodes join).
    pub(super) fn search_from_bottom(&mut self, now: Time) {
        let pick = |suspects: &BTreeSet<NodeId>, roots: &[NodeId], me: NodeId| {
            roots
                .iter()
                .rev()
                .find(|r| **r != me && !suspects.contains(*r))
                .copied()
        };
        let bottom = pick(&self.suspect_roots, &self.config.roots, self.id).or_else(|| {
            self.suspect_roots.clear();
            pick(&self.suspect_roots, &self.config.roots, self.id)
        });
        if let Some(bottom) = bottom {
            self.search(now, bottom, 0, Bandwidth::ZERO);
        }
    }

    fn search(&mut self, now: Time, candidate: NodeId, round: u32, best: Bandwidth) {
        self.stats.rounds += 1;
        self.search = Some(Search {
            candidate,
            round,
            best,
            candidate_ancestors: Vec::new(),
            probe: None,
        });
        self.outbox.send(candidate, Message::ChildrenQuery);
        self.timers
            .set(Timer::Search, now + self.config.answer_timeout);
    }

    pub(super) fn attach_to(
        &mut self,
        now: Time,
        target: NodeId,
        fallback: Vec<NodeId>,
        rounds: u32,
        link_bw: PathBandwidth,
    ) {
        let seq = self.seq.max(self.offered_seq) + 1;
        self.offered_seq = seq;
        self.attempt = Some(Attempt {
            target,
            fallback,
            rounds,
            refused: false,
            link_bw,
            seq,
        });
        let info = self.info();
        self.outbox.send(target, Message::Attach { seq, info });
        self.timers
            .set(Timer::Attach, now + self.config.answer_timeout);
    }

    /// Measure `reference` (the candidate or the parent), the eligible `children` it listed and
    /// any `extra` node, each capped by its bandwidth from the root where known.
    fn start_probe(
        &mut self,
        reference: NodeId,
        children: Vec<NodeId>,
        ancestors: &[NodeId],
        caps: PathCaps,
        extra: Option<(NodeId, PathBandwidth)>,
    ) -> Probe {
        let others = self.eligible(children, ancestors);
        let mut probe = Probe {
            others: others.clone(),
            caps: caps.children,
            ..Probe::default()
        };
        probe.caps.insert(reference, caps.sender);
        if let Some((node, cap)) = extra {
            probe.caps.insert(node, cap);
        }
        if !self.config.use_path_bandwidth {
            probe.caps.clear();
        }
        self.measure(&mut probe, reference);
        if let Some((node, _)) = extra {
            self.measure(&mut probe, node);
        }
        for c in others {
            self.measure(&mut probe, c);
        }
        probe
    }

    pub(super) fn on_children(
        &mut self,
        now: Time,
        from: NodeId,
        children: Vec<NodeId>,
        ancestors: Vec<NodeId>,
        caps: PathCaps,
    ) {
        let searching = self
            .search
            .as_ref()
            .is_some_and(|s| s.candidate == from && s.probe.is_none());
        if searching {
            let probe = self.start_probe(from, children, &ancestors, caps, None);
            if let Some(search) = self.search.as_mut() {
                search.candidate_ancestors = ancestors;
                search.probe = Some(probe);
            }
            self.timers.set(Timer::Search, now + self.measure_timeout());
            return;
        }
        let reevaluating = self
            .reevaluation
            .as_ref()
            .is_some_and(|r| r.parent == from && r.probe.is_none() && self.parent == Some(from));
        if reevaluating {
            // Ancestors end with the parent; the one before it is the grandparent.
            let grandparent = ancestors
                .len()
                .checked_sub(2)
                .map(|i| ancestors[i])
                .filter(|g| !self.is_descendant(g));
            let sender_parent = caps.sender_parent;
            let extra = grandparent.map(|g| (g, sender_parent));
            let mut probe = self.start_probe(from, children, &ancestors, caps, extra);
            let sample = self
                .reevaluation
                .as_mut()
                .map(|r| std::mem::take(&mut r.sample))
                .unwrap_or_default();
            self.add_sample(&mut probe, sample);
            if let Some(r) = self.reevaluation.as_mut() {
                r.grandparent = grandparent;
                r.probe = Some(probe);
            }
            self.timers
                .set(Timer::ReevaluationDone, now + self.measure_timeout());
        }
    }

    /// Nodes drawn from the root's table for a re-evaluation: measure them beside the siblings
    /// (or keep them until the parent's answer starts the round).
    pub(super) fn on_sample(&mut self, _now: Time, from: NodeId, nodes: Vec<(NodeId, u64)>) {
        if self.ancestors.first() != Some(&from) {
            return;
        }
        let Some(mut reevaluation) = self.reevaluation.take() else {
            return;
        };
        let nodes: Vec<(NodeId, PathBandwidth)> = nodes
            .into_iter()
            .take(self.config.sample_size)
            .map(|(n, bw)| (n, PathBandwidth::from_wire(bw)))
            .collect();
        match reevaluation.probe.as_mut() {
            Some(probe) => self.add_sample(probe, nodes),
            None => reevaluation.sample = nodes,
        }
        self.reevaluation = Some(reevaluation);
    }

    /// Measure the sampled nodes that could be this node's parent and are not yet measured.
    fn add_sample(&mut self, probe: &mut Probe, sample: Vec<(NodeId, PathBandwidth)>) {
        let parent = self.parent;
        for (node, path_bw) in sample {
            if Some(node) == parent
                || self.is_descendant(&node)
                || probe.others.contains(&node)
                || probe.results.contains_key(&node)
                || probe.waiting.contains(&node)
                || node == self.id
            {
                continue;
            }
            probe.others.push(node);
            probe.sampled.insert(node);
            if self.config.use_path_bandwidth {
                probe.caps.insert(node, path_bw);
            }
            self.measure(probe, node);
        }
    }

    pub(super) fn on_measured(
        &mut self,
        now: Time,
        peer: NodeId,
        bandwidth: Bandwidth,
        rtt: Duration,
    ) {
        let result = Measured { bandwidth, rtt };
        if self.landmark_rtt_us == 0 && self.config.roots.last() == Some(&peer) {
            self.landmark_rtt_us = u32::try_from(rtt.as_micros()).unwrap_or(u32::MAX).max(1);
        }
        if let Some(probe) = self.search.as_mut().and_then(|s| s.probe.as_mut())
            && probe.waiting.remove(&peer)
        {
            probe.results.insert(peer, result);
            if probe.waiting.is_empty() {
                self.decide_search(now);
            }
            return;
        }
        if let Some(probe) = self.reevaluation.as_mut().and_then(|r| r.probe.as_mut())
            && probe.waiting.remove(&peer)
        {
            probe.results.insert(peer, result);
            if probe.waiting.is_empty() {
                self.finish_reevaluation(now);
            }
        }
    }

    /// The closest of the measured others whose bandwidth reaches `floor` (bits per second),
    /// the wider first among equally close ones.
    fn closest_reaching(probe: &Probe, floor: f64) -> Option<NodeId> {
        probe
            .others
            .iter()
            .filter_map(|o| Some((*o, probe.through(o)?, probe.rtt(o)?)))
            .filter(|&(_, bw, _)| bw.bps_f64() >= floor && bw > Bandwidth::ZERO)
            .min_by(|a, b| a.2.cmp(&b.2).then(b.1.cmp(&a.1)).then(a.0.cmp(&b.0)))
            .map(|(o, _, _)| o)
    }

    fn decide_search(&mut self, now: Time) {
        self.timers.cancel(Timer::Search);
        let Some(search) = self.search.take() else {
            return;
        };
        let mut probe = search.probe.unwrap_or_default();
        probe.others.retain(|o| !self.is_descendant(o));
        let direct = probe.through(&search.candidate).unwrap_or(Bandwidth::ZERO);
        let best = if self.config.cumulative_floor {
            search.best.max(direct)
        } else {
            direct
        };
        let floor = best.bps_f64() * (1.0 - self.config.equal_fraction);
        if self.config.descend_closer
            && let Some(here_rtt) = probe.rtt(&search.candidate)
        {
            // Go down only towards this node: a child farther than the candidate leads into
            // another part of the network, where the tree would carry the stream out and back.
            let results = &probe.results;
            probe
                .others
                .retain(|o| results.get(o).is_some_and(|r| r.rtt < here_rtt));
        }
        match Self::closest_reaching(&probe, floor) {
            Some(child) => self.search(now, child, search.round + 1, best),
            None => {
                // Fall back up the candidate's ancestors if it refuses.
                let fallback = search
                    .candidate_ancestors
                    .iter()
                    .rev()
                    .filter(|a| **a != search.candidate)
                    .copied()
                    .collect();
                let link = probe.hop(&search.candidate);
                self.attach_to(now, search.candidate, fallback, search.round + 1, link);
            }
        }
    }

    pub(super) fn on_search_timeout(&mut self, now: Time) {
        let Some(search) = self.search.as_ref() else {
            return;
        };
        if search.probe.is_some() {
            // Decide with what was measured.
            self.decide_search(now);
        } else {
            // The candidate is silent: start over from the lowest live root.
            let candidate = search.candidate;
            self.search = None;
            if self.config.roots.contains(&candidate) {
                self.suspect_roots.insert(candidate);
            }
            self.search_from_bottom(now);
        }
    }

    pub(super) fn on_refused(&mut self, now: Time, from: NodeId) {
        if let Some(mut attempt) = self.attempt.take_if(|a| a.target == from) {
            self.timers.cancel(Timer::Attach);
            attempt.refused = true;
            self.try_next(now, attempt);
        }
    }

    pub(super) fn on_attach_timeout(&mut self, now: Time) {
        match self.attempt.take() {
            Some(attempt) => {
                if self.config.roots.contains(&attempt.target) {
                    self.suspect_roots.insert(attempt.target);
                }
                self.try_next(now, attempt);
            }
            // A standby root waiting to retry its chain.
            None if self.parent.is_none() && !self.is_root && self.chain_index().is_some() => {
                self.chain_rejoin(now);
            }
            None => {}
        }
    }

    /// Attach to the first of `fallback` that takes this node (its ancestors after its parent
    /// failed), or else search afresh.
    pub(super) fn climb(&mut self, now: Time, fallback: Vec<NodeId>) {
        let attempt = Attempt {
            target: self.id,
            fallback,
            rounds: 0,
            refused: false,
            link_bw: PathBandwidth::Unlimited,
            seq: 0,
        };
        self.try_next(now, attempt);
    }

    /// Attach to the nearest live root above this standby root.
    fn chain_rejoin(&mut self, now: Time) {
        let Some(i) = self.chain_index() else {
            return;
        };
        let mut fallback: Vec<NodeId> = self.config.roots[..i].iter().rev().copied().collect();
        if fallback.is_empty() {
            self.become_root();
            return;
        }
        let first = fallback.remove(0);
        self.attach_to(now, first, fallback, 0, PathBandwidth::Unlimited);
    }

    /// The next fallback target; when none is left, stay (a move that did not work out), take
    /// over as root (a standby root whose roots above are all silent), or search afresh.
    pub(super) fn try_next(&mut self, now: Time, mut attempt: Attempt) {
        if !attempt.fallback.is_empty() {
            let next = attempt.fallback.remove(0);
            let (fallback, rounds, refused) = (attempt.fallback, attempt.rounds, attempt.refused);
            self.attach_to(now, next, fallback, rounds, PathBandwidth::Unlimited);
            if let Some(a) = self.attempt.as_mut() {
                a.refused = refused;
            }
        } else if self.parent.is_some() || self.is_root {
            // A move that did not work out: stay.
        } else if self.chain_index().is_some() {
            if attempt.refused {
                // A root above lives but cannot take this one yet: try again shortly.
                self.timers
                    .set(Timer::Attach, now + self.config.answer_timeout);
            } else {
                self.become_root();
            }
        } else {
            self.search_from_bottom(now);
        }
    }

    pub(super) fn start_reevaluation(&mut self, now: Time) {
        // With strict moves, a node that moved at each of its last re-evaluations waits longer
        // (twice, up to eight times the period): the moves of many nodes change what each
        // measures, and backing off lets them settle instead of chasing each other.
        let backoff = if self.config.strict_moves {
            1u32 << self.restless.min(3)
        } else {
            1
        };
        let next = self.jitter(self.config.reevaluate_interval * backoff);
        self.timers.set(Timer::Reevaluate, now + next);
        let Some(parent) = self.parent else {
            return;
        };
        let busy = self.attempt.is_some() || self.search.is_some() || self.reevaluation.is_some();
        if busy || self.is_root || self.chain_index().is_some() {
            return;
        }
        self.reevaluation = Some(Reevaluation {
            parent,
            grandparent: None,
            probe: None,
            sample: Vec::new(),
        });
        self.outbox.send(parent, Message::ChildrenQuery);
        if self.config.sample_size > 0
            && let Some(&top) = self.ancestors.first()
        {
            let count = u16::try_from(self.config.sample_size).unwrap_or(u16::MAX);
            let near = self.landmark_rtt_us;
            self.outbox.send(top, Message::SampleQuery { count, near });
        }
        self.timers
            .set(Timer::ReevaluationDone, now + self.config.answer_timeout);
    }

    /// Move under a sibling that is as good as the parent, or back up under the grandparent if
    /// it is clearly better; otherwise stay.
    pub(super) fn finish_reevaluation(&mut self, now: Time) {
        self.timers.cancel(Timer::ReevaluationDone);
        let Some(reevaluation) = self.reevaluation.take() else {
            return;
        };
        let Some(probe) = reevaluation.probe else {
            return;
        };
        if self.parent != Some(reevaluation.parent) || self.attempt.is_some() {
            return;
        }
        if !self.knows_subtree() {
            // A child adopted during the round has not listed its subtree yet; the round's
            // candidates may be below it. Decide next round.
            return;
        }
        // Nodes that came below this one since they were measured are out.
        let mut probe = probe;
        probe.others.retain(|o| !self.is_descendant(o));
        let grandparent = reevaluation.grandparent.filter(|g| !self.is_descendant(g));
        let (Some(here), Some(&parent_measured)) = (
            probe.through(&reevaluation.parent),
            probe.results.get(&reevaluation.parent),
        ) else {
            return;
        };
        self.link_bw = parent_measured.bandwidth.into();
        let parent_rtt = parent_measured.rtt;
        let margin = self.config.equal_fraction;
        // Above this a bandwidth is clearly better than the parent's; at or above `as_good` it
        // is as good (bits per second).
        let clearly_better = here.bps_f64() * (1.0 + margin);
        let as_good = here.bps_f64() * (1.0 - margin);
        // A sibling clearly better than the parent, or as good and closer; moving under a farther
        // sibling that is merely as good would only lengthen the path (and invite oscillation).
        let better = probe
            .others
            .iter()
            .filter_map(|o| Some((*o, probe.through(o)?)))
            .filter(|&(_, bw)| bw.bps_f64() > clearly_better)
            .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
            .map(|(o, _)| o);
        // A move that merely keeps bandwidth never returns to a recent parent: joining a node
        // lowers what it offers (its upstream is shared once more), so "as good and closer"
        // followed by "clearly better" elsewhere would otherwise repeat forever.
        let mut kept = probe.clone();
        if self.config.strict_moves {
            kept.others.retain(|o| !self.left_parents.contains(o));
        }
        let closer = Self::closest_reaching(&kept, as_good).filter(|s| {
            !self.config.strict_moves || probe.rtt(s).is_some_and(|rtt| rtt < parent_rtt)
        });
        // A sibling that gives up nothing at all: moving below it takes one flow off the
        // parent's links (the paper's push down the tree), even if it is farther.
        let lossless = || {
            let mut siblings = kept.clone();
            siblings.others.retain(|o| !kept.sampled.contains(o));
            Self::closest_reaching(&siblings, here.bps_f64())
        };
        let pick = if self.config.strict_moves {
            better
                .or(closer)
                .or_else(|| lossless().filter(|_| self.config.lossless_down_moves))
        } else {
            closer
        };
        if let Some(sibling) = pick {
            self.restless += 1;
            self.attach_to(now, sibling, Vec::new(), 0, probe.hop(&sibling));
        } else if let Some(g) = grandparent
            && probe
                .through(&g)
                .is_some_and(|bw| bw.bps_f64() > clearly_better)
        {
            self.restless += 1;
            self.attach_to(now, g, Vec::new(), 0, probe.hop(&g));
        } else {
            self.restless = 0;
        }
    }
}
