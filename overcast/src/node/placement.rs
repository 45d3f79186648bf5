//! Where a node places itself: join rounds down from the root, periodic re-evaluation against
//! parent, grandparent and siblings, and attach attempts that climb a fallback list.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use overlay_core::{Bandwidth, MeasureRequest, NodeId, Time};
use rand::seq::SliceRandom;

use super::{Overcast, Timer};
use crate::message::Message;

/// Bandwidth measurements of one round.
#[derive(Clone, Debug, Default)]
pub(super) struct Probe {
    waiting: BTreeSet<NodeId>,
    /// Bits per second and round-trip time, by peer.
    results: BTreeMap<NodeId, (f64, Duration)>,
    /// The nodes measured against the reference (children of the candidate, or siblings).
    others: Vec<NodeId>,
}

/// A join (or rejoin) searching down from a candidate.
#[derive(Clone, Debug)]
pub(super) struct Search {
    candidate: NodeId,
    round: u32,
    /// The best bandwidth seen on the way down.
    best: f64,
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
}

/// A re-evaluation of an attached node's place.
#[derive(Clone, Debug)]
pub(super) struct Reevaluation {
    parent: NodeId,
    grandparent: Option<NodeId>,
    probe: Option<Probe>,
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
            self.search(now, bottom, 0, 0.0);
        }
    }

    fn search(&mut self, now: Time, candidate: NodeId, round: u32, best: f64) {
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
    ) {
        self.attempt = Some(Attempt {
            target,
            fallback,
            rounds,
            refused: false,
        });
        let info = self.info();
        self.outbox.send(
            target,
            Message::Attach {
                seq: self.seq + 1,
                info,
            },
        );
        self.timers
            .set(Timer::Attach, now + self.config.answer_timeout);
    }

    pub(super) fn on_children(
        &mut self,
        now: Time,
        from: NodeId,
        children: Vec<NodeId>,
        ancestors: Vec<NodeId>,
    ) {
        let searching = self
            .search
            .as_ref()
            .is_some_and(|s| s.candidate == from && s.probe.is_none());
        if searching {
            let others = self.eligible(children, &ancestors);
            let mut probe = Probe {
                others: others.clone(),
                ..Probe::default()
            };
            self.measure(&mut probe, from);
            for c in others {
                self.measure(&mut probe, c);
            }
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
            let others = self.eligible(children, &ancestors);
            let mut probe = Probe {
                others: others.clone(),
                ..Probe::default()
            };
            self.measure(&mut probe, from);
            if let Some(g) = grandparent {
                self.measure(&mut probe, g);
            }
            for c in others {
                self.measure(&mut probe, c);
            }
            if let Some(r) = self.reevaluation.as_mut() {
                r.grandparent = grandparent;
                r.probe = Some(probe);
            }
            self.timers
                .set(Timer::ReevaluationDone, now + self.measure_timeout());
        }
    }

    pub(super) fn on_measured(
        &mut self,
        now: Time,
        peer: NodeId,
        bandwidth: Bandwidth,
        rtt: Duration,
    ) {
        let result = (bandwidth.bps_f64(), rtt);
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

    /// The closest of the measured others whose bandwidth reaches `floor`.
    fn closest_reaching(probe: &Probe, floor: f64) -> Option<NodeId> {
        probe
            .others
            .iter()
            .filter_map(|o| probe.results.get(o).map(|&(bw, rtt)| (*o, bw, rtt)))
            .filter(|&(_, bw, _)| bw >= floor && bw > 0.0)
            .min_by(|a, b| a.2.cmp(&b.2).then(b.1.total_cmp(&a.1)).then(a.0.cmp(&b.0)))
            .map(|(o, _, _)| o)
    }

    fn decide_search(&mut self, now: Time) {
        self.timers.cancel(Timer::Search);
        let Some(search) = self.search.take() else {
            return;
        };
        let probe = search.probe.unwrap_or_default();
        let direct = probe.results.get(&search.candidate).map_or(0.0, |r| r.0);
        let best = if self.config.cumulative_floor {
            search.best.max(direct)
        } else {
            direct
        };
        let floor = best * (1.0 - self.config.equal_fraction);
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
                self.attach_to(now, search.candidate, fallback, search.round + 1);
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
        self.attach_to(now, first, fallback, 0);
    }

    /// The next fallback target; when none is left, stay (a move that did not work out), take
    /// over as root (a standby root whose roots above are all silent), or search afresh.
    pub(super) fn try_next(&mut self, now: Time, mut attempt: Attempt) {
        if !attempt.fallback.is_empty() {
            let next = attempt.fallback.remove(0);
            let (fallback, rounds, refused) = (attempt.fallback, attempt.rounds, attempt.refused);
            self.attach_to(now, next, fallback, rounds);
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
        let next = self.jitter(self.config.reevaluate_interval);
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
        });
        self.outbox.send(parent, Message::ChildrenQuery);
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
        let Some(&(here, _)) = probe.results.get(&reevaluation.parent) else {
            return;
        };
        let margin = self.config.equal_fraction;
        if let Some(sibling) = Self::closest_reaching(&probe, here * (1.0 - margin)) {
            self.attach_to(now, sibling, Vec::new(), 0);
        } else if let Some(g) = reevaluation.grandparent
            && probe
                .results
                .get(&g)
                .is_some_and(|r| r.0 > here * (1.0 + margin))
        {
            self.attach_to(now, g, Vec::new(), 0);
        }
    }
}
