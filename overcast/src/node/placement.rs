//! Where a node places itself: join rounds down from the root (with one sample of the root's
//! table, for a node beside it in another branch), periodic re-evaluation against parent,
//! grandparent, siblings and such samples, and attach attempts that climb a fallback list.
//!
//! [`Placement`] is a part of [`crate::Overcast`]: it owns the decisions in flight (a join
//! search, an adoption request, a re-evaluation), the sequence numbers it offered, and what it
//! remembers between rounds (recent parents, roots suspected dead, how restless it has been,
//! the nodes nearest it). It acts through the node's shared [`Core`]: its place in the tree,
//! its subtree, timers and outputs. Its inputs are `Children`, `Adopted`, `Refused`, `Sample`
//! and `Near` answers, bandwidth measurements, a lost parent, and its timers (search, attach,
//! re-evaluate, re-evaluation done). Modules: this one (joining and attaching), [`probe`] (one
//! round's measurements), [`reevaluation`] (moving once attached), [`near`] (the nodes
//! measured nearest).

mod near;
mod probe;
mod reevaluation;
#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, VecDeque};
use std::time::Duration;

use overlay_core::{Bandwidth, NodeId, Time};

use near::Near;
pub(super) use probe::PathCaps;
use probe::{Measured, Probe, measure_timeout};
use reevaluation::Reevaluation;

use super::Timer;
use super::core::{Adoption, Core};
use crate::PathBandwidth;
use crate::message::Message;

/// A node of the root's sample is a join's next candidate only within this fraction (one over
/// it) of the current candidate's round trip.
const SAMPLE_BESIDE_DIVISOR: u32 = 4;

/// How many recently left parents a node will not return to merely to get closer.
const LEFT_PARENTS_KEPT: usize = 4;

/// A join (or rejoin) searching down from a candidate.
#[derive(Clone, Debug)]
struct Search {
    candidate: NodeId,
    round: u32,
    /// The best bandwidth seen on the way down.
    best: Bandwidth,
    /// The candidate's ancestors, ending with it: where to fall back if it refuses.
    candidate_ancestors: Vec<NodeId>,
    /// `None` until the candidate listed its children.
    probe: Option<Probe>,
    /// The root asked for a sample of its table (once per search, at the end of the first
    /// round that knows this node's landmark time): `None` until then.
    sample_from: Option<NodeId>,
    /// The nearest node measured, asked for its own nearest just before the sample (once per
    /// search): `None` until then.
    near_from: Option<NodeId>,
}

/// An adoption request in flight.
#[derive(Clone, Debug)]
struct Attempt {
    /// The node asked.
    target: NodeId,
    /// Whom to ask next if it refuses or stays silent, in order.
    fallback: Vec<NodeId>,
    /// Search rounds it took to choose the target.
    rounds: u32,
    /// Whether a live node refused along the way (a standby root must not then take over).
    refused: bool,
    /// The measured path from the target (unlimited when the move was not measured).
    link_bw: PathBandwidth,
    /// The sequence number this request offered.
    seq: u32,
}

/// The placement part of a node.
#[derive(Debug, Default)]
pub(super) struct Placement {
    /// The highest sequence number offered in an adoption request (each request gets a fresh
    /// one, so a retracted request is never confused with a later one to the same node).
    offered_seq: u32,
    /// Re-evaluations in a row that ended in a move.
    restless: u32,
    /// The last few parents this node moved away from, newest last.
    left_parents: VecDeque<NodeId>,
    /// Roots that stayed silent: searches start from the lowest root not among them.
    suspect_roots: BTreeSet<NodeId>,
    search: Option<Search>,
    attempt: Option<Attempt>,
    reevaluation: Option<Reevaluation>,
    /// The nodes measured nearest, and those heard of from them.
    near: Near,
}

impl Placement {
    /// Take this node's place: the top root is the root, a standby root attaches under the
    /// root above it, and any other node searches from the bottom of the chain.
    pub(super) fn start(&mut self, cx: &mut Core, now: Time) {
        match cx.chain_index() {
            Some(0) => self.become_root(cx),
            Some(i) => {
                let fallback: Vec<NodeId> =
                    cx.config.roots[..i - 1].iter().rev().copied().collect();
                let target = cx.config.roots[i - 1];
                self.attach_to(cx, now, target, fallback, 0, PathBandwidth::Unlimited);
            }
            None => self.search_from_bottom(cx, now),
        }
    }

    /// Whether an adoption request is in flight (a node moving refuses to adopt).
    pub(super) fn is_moving(&self) -> bool {
        self.attempt.is_some()
    }

    fn become_root(&mut self, cx: &mut Core) {
        self.attempt = None;
        self.search = None;
        cx.become_root();
    }

    /// The lowest root not suspected dead (the bottom of the chain, where nodes join).
    fn search_from_bottom(&mut self, cx: &mut Core, now: Time) {
        let pick = |suspects: &BTreeSet<NodeId>, roots: &[NodeId], me: NodeId| {
            roots
                .iter()
                .rev()
                .find(|r| **r != me && !suspects.contains(*r))
                .copied()
        };
        let bottom = pick(&self.suspect_roots, &cx.config.roots, cx.id).or_else(|| {
            self.suspect_roots.clear();
            pick(&self.suspect_roots, &cx.config.roots, cx.id)
        });
        if let Some(bottom) = bottom {
            self.search(cx, now, bottom, (0, Bandwidth::ZERO), (None, None));
        }
    }

    fn search(
        &mut self,
        cx: &mut Core,
        now: Time,
        candidate: NodeId,
        (round, best): (u32, Bandwidth),
        (sample_from, near_from): (Option<NodeId>, Option<NodeId>),
    ) {
        cx.stats.rounds += 1;
        self.search = Some(Search {
            candidate,
            round,
            best,
            candidate_ancestors: Vec::new(),
            probe: None,
            sample_from,
            near_from,
        });
        cx.outbox.send(candidate, Message::ChildrenQuery);
        cx.timers.set(Timer::Search, now + cx.config.answer_timeout);
    }

    /// Ask `target` to adopt this node, with a fresh sequence number.
    fn attach_to(
        &mut self,
        cx: &mut Core,
        now: Time,
        target: NodeId,
        fallback: Vec<NodeId>,
        rounds: u32,
        link_bw: PathBandwidth,
    ) {
        let seq = cx.seq.max(self.offered_seq) + 1;
        self.offered_seq = seq;
        self.attempt = Some(Attempt {
            target,
            fallback,
            rounds,
            refused: false,
            link_bw,
            seq,
        });
        let info = cx.info();
        cx.outbox.send(target, Message::Attach { seq, info });
        cx.timers.set(Timer::Attach, now + cx.config.answer_timeout);
    }

    /// A `Children` answer from `from`: it starts the measurements of the search round or of
    /// the re-evaluation that asked.
    pub(super) fn on_children(
        &mut self,
        cx: &mut Core,
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
            let probe = Probe::start(cx, from, children, &ancestors, caps, None);
            if let Some(search) = self.search.as_mut() {
                search.candidate_ancestors = ancestors;
                search.probe = Some(probe);
            }
            cx.timers.set(Timer::Search, now + measure_timeout(cx));
            return;
        }
        self.on_parent_children(cx, now, from, children, ancestors, caps);
    }

    /// A measurement of the path from `peer`, for the search round or the re-evaluation
    /// waiting for it (the first from the lowest root also fixes this node's landmark time).
    pub(super) fn on_measured(
        &mut self,
        cx: &mut Core,
        now: Time,
        peer: NodeId,
        bandwidth: Bandwidth,
        rtt: Duration,
    ) {
        let result = Measured { bandwidth, rtt };
        if cx.config.near_discovery && peer != cx.id {
            self.near.learn(peer, rtt);
        }
        if cx.landmark_rtt_us == 0 && cx.config.roots.last() == Some(&peer) {
            cx.landmark_rtt_us = super::core::rtt_micros(rtt);
        }
        if let Some(probe) = self.search.as_mut().and_then(|s| s.probe.as_mut())
            && probe.record(peer, result)
        {
            if probe.is_complete() {
                self.decide_search(cx, now);
            }
            return;
        }
        if let Some(probe) = self.reevaluation.as_mut().and_then(|r| r.probe.as_mut())
            && probe.record(peer, result)
            && probe.is_complete()
        {
            self.finish_reevaluation(cx, now);
        }
    }

    /// End a search round: go down to the closest child (or node of the root's sample) as good
    /// as the best seen and no farther than the candidate, or ask the candidate to adopt this
    /// node. The first round of a search to end with this node's landmark time known first
    /// waits for a sample of the root's table and decides again with it measured.
    fn decide_search(&mut self, cx: &mut Core, now: Time) {
        cx.timers.cancel(Timer::Search);
        let Some(mut search) = self.search.take() else {
            return;
        };
        if Self::ask_join_sample(cx, now, &mut search, &mut self.near) {
            self.search = Some(search);
            return;
        }
        let mut probe = search.probe.unwrap_or_default();
        probe.others.retain(|o| !cx.is_descendant(o));
        let direct = probe.through(&search.candidate).unwrap_or(Bandwidth::ZERO);
        let best = if cx.config.cumulative_floor {
            search.best.max(direct)
        } else {
            direct
        };
        let floor = best.bps_f64() * (1.0 - cx.config.equal_fraction);
        if cx.config.descend_closer
            && let Some(here_rtt) = probe.rtt(&search.candidate)
        {
            // Go down only towards this node: a child farther than the candidate leads into
            // another part of the network, where the tree would carry the stream out and back.
            let results = &probe.results;
            probe
                .others
                .retain(|o| results.get(o).is_some_and(|r| r.rtt <= here_rtt));
            // A node of the root's sample must be beside this one (within a quarter of the
            // candidate's round trip) and lose nothing against the best seen: the bandwidth the
            // root's table gives for it may be up to a report old, and a jump into another
            // branch on such a figure is undone later, a certificate each way.
            let beside = here_rtt / SAMPLE_BESIDE_DIVISOR;
            let whole = best.bps_f64();
            let unfit: Vec<NodeId> = probe
                .sampled
                .iter()
                .filter(|o| {
                    let near = probe.rtt(o).is_some_and(|rtt| rtt <= beside);
                    let good = probe.through(o).is_some_and(|bw| bw.bps_f64() >= whole);
                    !(near && good)
                })
                .copied()
                .collect();
            probe.others.retain(|o| !unfit.contains(o));
        }
        match probe.closest_reaching(floor) {
            Some(child) => {
                let next = (search.round + 1, best);
                let asked = (search.sample_from, search.near_from);
                self.search(cx, now, child, next, asked);
            }
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
                self.attach_to(cx, now, search.candidate, fallback, search.round + 1, link);
            }
        }
    }

    /// Once per search, at the end of the first round that knows this node's landmark time:
    /// ask the root for nodes near this one, and decide the round once they are measured too. A
    /// search down from the root finds only what lies under the branches it takes; a node on
    /// the same router in another branch is found only this way (without it, re-evaluation
    /// finds it later, and each such move costs the root a certificate). With near discovery
    /// the nearest node measured so far is first asked for its own nearest, and the root's
    /// sample is headed by them. Returns whether the round now waits (for the neighbour's list
    /// or the sample).
    fn ask_join_sample(cx: &mut Core, now: Time, search: &mut Search, near: &mut Near) -> bool {
        if search.sample_from.is_some() || cx.config.sample_size == 0 || cx.landmark_rtt_us == 0 {
            return false;
        }
        let top = search
            .candidate_ancestors
            .first()
            .copied()
            .unwrap_or(search.candidate);
        if top == cx.id {
            return false;
        }
        let usable = |n: &NodeId| *n != cx.id && *n != top;
        if cx.config.near_discovery
            && search.near_from.is_none()
            && let Some(nearest) = near.nearest(usable)
        {
            search.near_from = Some(nearest);
            cx.outbox.send(nearest, Message::NearQuery);
            cx.timers.set(Timer::Search, now + cx.config.answer_timeout);
            return true;
        }
        search.sample_from = Some(top);
        let count = u16::try_from(cx.config.sample_size).unwrap_or(u16::MAX);
        let about = if cx.config.near_discovery {
            near.candidates(cx.config.sample_size / 2, usable)
        } else {
            Vec::new()
        };
        let near = cx.landmark_rtt_us;
        cx.outbox
            .send(top, Message::SampleQuery { count, near, about });
        cx.timers.set(Timer::Search, now + measure_timeout(cx));
        true
    }

    /// The nodes this node measured nearest, for `asker` (a `NearQuery`).
    pub(super) fn near_list(&self, asker: NodeId) -> Vec<NodeId> {
        self.near.list(asker)
    }

    /// A neighbour named the nodes it measured nearest: candidates for the next re-evaluation,
    /// or, for a join waiting on it, for the root's sample asked for now.
    pub(super) fn on_near(&mut self, cx: &mut Core, now: Time, from: NodeId, nodes: Vec<NodeId>) {
        if !cx.config.near_discovery {
            return;
        }
        let asked = self.reevaluation.as_ref().and_then(|r| r.near_asked);
        if asked == Some(from) {
            self.near.hear(cx.id, nodes);
            return;
        }
        let Some(mut search) = self.search.take() else {
            return;
        };
        if search.near_from == Some(from) && search.sample_from.is_none() {
            self.near.hear(cx.id, nodes);
            if !Self::ask_join_sample(cx, now, &mut search, &mut self.near) {
                self.search = Some(search);
                self.decide_search(cx, now);
                return;
            }
        }
        self.search = Some(search);
    }

    /// Nodes drawn from the root's table for a join: measure them beside the candidate's
    /// children (the round decides once they are measured, or at its timeout). Returns whether
    /// the sample was this search's.
    fn on_join_sample(
        &mut self,
        cx: &mut Core,
        now: Time,
        from: NodeId,
        nodes: &[(NodeId, u64)],
    ) -> bool {
        let Some(search) = self.search.as_mut() else {
            return false;
        };
        if search.sample_from != Some(from) {
            return false;
        }
        let Some(probe) = search.probe.as_mut() else {
            return true;
        };
        let nodes = nodes
            .iter()
            .take(cx.config.sample_size)
            .map(|&(n, bw)| (n, PathBandwidth::from_wire(bw)))
            .collect();
        probe.add_sample(cx, nodes);
        if probe.is_complete() {
            self.decide_search(cx, now);
        }
        true
    }

    /// The search timer: decide with what was measured, or start over if the candidate never
    /// answered.
    pub(super) fn on_search_timeout(&mut self, cx: &mut Core, now: Time) {
        let Some(search) = self.search.as_ref() else {
            return;
        };
        if search.probe.is_some() {
            // Decide with what was measured.
            self.decide_search(cx, now);
        } else {
            // The candidate is silent: start over from the lowest live root.
            let candidate = search.candidate;
            self.search = None;
            if cx.config.roots.contains(&candidate) {
                self.suspect_roots.insert(candidate);
            }
            self.search_from_bottom(cx, now);
        }
    }

    /// `from` refused to adopt this node: try the next fallback.
    pub(super) fn on_refused(&mut self, cx: &mut Core, now: Time, from: NodeId) {
        if let Some(mut attempt) = self.attempt.take_if(|a| a.target == from) {
            cx.timers.cancel(Timer::Attach);
            attempt.refused = true;
            self.try_next(cx, now, attempt);
        }
    }

    /// The attach timer: the target stayed silent (try the next fallback), or a standby root
    /// retries its chain.
    pub(super) fn on_attach_timeout(&mut self, cx: &mut Core, now: Time) {
        match self.attempt.take() {
            Some(attempt) => {
                if cx.config.roots.contains(&attempt.target) {
                    self.suspect_roots.insert(attempt.target);
                }
                self.try_next(cx, now, attempt);
            }
            // A standby root waiting to retry its chain.
            None if cx.parent.is_none() && !cx.is_root && cx.chain_index().is_some() => {
                self.chain_rejoin(cx, now);
            }
            None => {}
        }
    }

    /// Attach to the first of `fallback` that takes this node (its ancestors after its parent
    /// failed), or else search afresh.
    fn climb(&mut self, cx: &mut Core, now: Time, fallback: Vec<NodeId>) {
        let attempt = Attempt {
            target: cx.id,
            fallback,
            rounds: 0,
            refused: false,
            link_bw: PathBandwidth::Unlimited,
            seq: 0,
        };
        self.try_next(cx, now, attempt);
    }

    /// Attach to the nearest live root above this standby root.
    fn chain_rejoin(&mut self, cx: &mut Core, now: Time) {
        let Some(i) = cx.chain_index() else {
            return;
        };
        let mut fallback: Vec<NodeId> = cx.config.roots[..i].iter().rev().copied().collect();
        if fallback.is_empty() {
            self.become_root(cx);
            return;
        }
        let first = fallback.remove(0);
        self.attach_to(cx, now, first, fallback, 0, PathBandwidth::Unlimited);
    }

    /// The next fallback target; when none is left, stay (a move that did not work out), take
    /// over as root (a standby root whose roots above are all silent), or search afresh.
    fn try_next(&mut self, cx: &mut Core, now: Time, mut attempt: Attempt) {
        if !attempt.fallback.is_empty() {
            let next = attempt.fallback.remove(0);
            let (fallback, rounds, refused) = (attempt.fallback, attempt.rounds, attempt.refused);
            self.attach_to(cx, now, next, fallback, rounds, PathBandwidth::Unlimited);
            if let Some(a) = self.attempt.as_mut() {
                a.refused = refused;
            }
            if cx.parent.is_none() {
                // Climbing without a parent: an adoption takes one round trip, and ancestors
                // that died with the parent must not keep this node away until the ones above
                // declare its whole subtree dead. On long paths allow three round trips to the
                // lowest root (a connection may have to be set up first).
                let landmark = Duration::from_micros(u64::from(cx.landmark_rtt_us));
                let wait = cx.config.climb_timeout.max(landmark * 3);
                cx.timers.set(Timer::Attach, now + wait);
            }
        } else if cx.parent.is_some() || cx.is_root {
            // A move that did not work out: stay.
        } else if cx.chain_index().is_some() {
            if attempt.refused {
                // A root above lives but cannot take this one yet: try again shortly.
                cx.timers.set(Timer::Attach, now + cx.config.answer_timeout);
            } else {
                self.become_root(cx);
            }
        } else {
            self.search_from_bottom(cx, now);
        }
    }

    /// Adopted by `from`: move there (the shared part tells the old parent and the new path),
    /// or retract an answer to a request that is no longer wanted.
    pub(super) fn on_adopted(
        &mut self,
        cx: &mut Core,
        now: Time,
        from: NodeId,
        ancestors: Vec<NodeId>,
        path_bw: u64,
        seq: u32,
    ) {
        let matching = self
            .attempt
            .as_ref()
            .is_some_and(|a| a.target == from && a.seq == seq);
        let looped = ancestors.contains(&cx.id) || ancestors.last() != Some(&from);
        if !matching || looped {
            // An answer to an abandoned request, or a parent that is below this node now (the
            // tree moved meanwhile): retract, so it does not hold a phantom child whose birth
            // and later silence would mislead its ancestors. The retraction names this node's
            // real parent, where the ancestors re-point it.
            if seq <= self.offered_seq {
                cx.outbox.send(
                    from,
                    Message::Detach {
                        seq,
                        new_parent: cx.parent.unwrap_or(cx.id),
                        meet: cx
                            .parent
                            .and_then(|_| super::core::meet_of(&cx.ancestors, &ancestors)),
                        certificates: Vec::new(),
                    },
                );
                // Ancestors may have heard of the request's number: stay at or above it.
                cx.seq = cx.seq.max(seq);
            }
            if matching {
                self.attempt = None;
                cx.timers.cancel(Timer::Attach);
            }
            return;
        }
        let Some(attempt) = self.attempt.take() else {
            return;
        };
        cx.timers.cancel(Timer::Attach);
        let adoption = Adoption {
            parent: from,
            ancestors,
            parent_path_bw: PathBandwidth::from_wire(path_bw),
            link_bw: attempt.link_bw,
            seq: attempt.seq,
            rounds: attempt.rounds,
        };
        if let Some(old) = cx.move_under(now, adoption) {
            if self.left_parents.len() == LEFT_PARENTS_KEPT {
                self.left_parents.pop_front();
            }
            self.left_parents.push_back(old);
        }
        self.suspect_roots.clear();
        let next = cx.jitter(cx.config.reevaluate_interval);
        cx.timers.set(Timer::Reevaluate, now + next);
    }

    /// The parent stopped answering (or its path runs through this node): leave it and climb
    /// the ancestors, grandparent first.
    pub(super) fn on_parent_lost(&mut self, cx: &mut Core, now: Time, parent: NodeId) {
        cx.lose_parent(parent);
        self.reevaluation = None;
        cx.timers.cancel(Timer::ReevaluationDone);
        // Climb the ancestor list: grandparent first, then further up.
        let fallback: Vec<NodeId> = match cx.chain_index() {
            Some(i) => cx.config.roots[..i]
                .iter()
                .rev()
                .filter(|r| **r != parent)
                .copied()
                .collect(),
            None => cx
                .ancestors
                .iter()
                .rev()
                .filter(|a| **a != parent)
                .copied()
                .collect(),
        };
        self.suspect_roots.insert(parent);
        self.climb(cx, now, fallback);
    }
}
