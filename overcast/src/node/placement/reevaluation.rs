//! Re-evaluation of an attached node's place: every period (longer while it keeps moving) it
//! measures its parent, grandparent, siblings and nodes sampled from the root's table (headed by
//! the nodes it found nearest and those its nearest named), and moves under one that is clearly
//! better, as good and clearly closer, or as near, losing nothing and with a clearly wider hop
//! (the parent's shared upload was the limit); or back up under the grandparent if that is
//! clearly better, or as good with this node on the way from it to the parent.

use std::time::Duration;

use overlay_core::{NodeId, Time};

use super::probe::{PathCaps, Probe, measure_timeout};
use super::{Placement, Timer};
use crate::PathBandwidth;
use crate::message::Message;
use crate::node::core::Core;

/// Whether a node `to_g` from its grandparent and `to_parent` from its parent, whose parent is
/// `parent_to_g` from the grandparent, lies ahead of its parent on the way from the grandparent:
/// clearly nearer the grandparent than the parent is, and on the way (the detour through it is
/// within the band `margin`).
fn ahead_of_parent(
    to_g: Duration,
    to_parent: Duration,
    parent_to_g: Duration,
    margin: f64,
) -> bool {
    to_g < parent_to_g.mul_f64(1.0 - margin)
        && to_g + to_parent <= parent_to_g.mul_f64(1.0 + margin)
}

/// A sibling counts as closer beyond this fraction of the equality band (one over it).
const SIBLING_BAND_DIVISOR: f64 = 4.0;

/// A re-evaluation of an attached node's place.
#[derive(Clone, Debug)]
pub(super) struct Reevaluation {
    /// The parent when the round started (the round is void if it changed).
    pub(super) parent: NodeId,
    /// The grandparent, once the parent's answer named it.
    grandparent: Option<NodeId>,
    /// The parent's round-trip time to the grandparent, if its answer said.
    parent_to_grandparent: Option<Duration>,
    /// `None` until the parent listed its children.
    pub(super) probe: Option<Probe>,
    /// Nodes drawn from the root's table, with their bandwidth from the root, while the
    /// parent's answer is awaited.
    sample: Vec<(NodeId, PathBandwidth)>,
    /// The near node asked for its neighbours this round.
    pub(super) near_asked: Option<NodeId>,
}

impl Placement {
    /// The re-evaluation timer: arm the next one, and start a round (ask the parent for its
    /// children and the root for a sample) unless the node is busy or a root.
    pub(in crate::node) fn start_reevaluation(&mut self, cx: &mut Core, now: Time) {
        // With strict moves, a node that moved at each of its last re-evaluations waits longer
        // (twice, up to eight times the period): the moves of many nodes change what each
        // measures, and backing off lets them settle instead of chasing each other.
        let backoff = if cx.config.strict_moves {
            1u32 << self.restless.min(3)
        } else {
            1
        };
        let next = cx.jitter(cx.config.reevaluate_interval * backoff);
        cx.timers.set(Timer::Reevaluate, now + next);
        let Some(parent) = cx.parent else {
            return;
        };
        let busy = self.attempt.is_some() || self.search.is_some() || self.reevaluation.is_some();
        if busy || cx.is_root || cx.chain_index().is_some() {
            return;
        }
        // Nodes near this one, and near its nearest, may be parents in other branches: the
        // root reports their bandwidth with its sample, and one of the nearest (in turn) names
        // its own neighbours for the next round.
        let mut about = Vec::new();
        let mut near_asked = None;
        if cx.config.near_discovery {
            let usable = |n: &NodeId| *n != parent && *n != cx.id && !cx.is_descendant(n);
            about = self.near.candidates(cx.config.sample_size / 2, usable);
            near_asked = self.near.next_to_ask(usable);
            if let Some(near) = near_asked {
                cx.outbox.send(near, Message::NearQuery);
            }
        }
        self.reevaluation = Some(Reevaluation {
            parent,
            grandparent: None,
            parent_to_grandparent: None,
            probe: None,
            sample: Vec::new(),
            near_asked,
        });
        cx.outbox.send(parent, Message::ChildrenQuery);
        if cx.config.sample_size > 0
            && let Some(&top) = cx.ancestors.first()
        {
            let count = u16::try_from(cx.config.sample_size).unwrap_or(u16::MAX);
            let near = cx.landmark_rtt_us;
            cx.outbox
                .send(top, Message::SampleQuery { count, near, about });
        }
        cx.timers
            .set(Timer::ReevaluationDone, now + cx.config.answer_timeout);
    }

    /// The parent's `Children` answer for the round in progress: measure the parent, the
    /// grandparent, the siblings and any sample already in.
    pub(super) fn on_parent_children(
        &mut self,
        cx: &mut Core,
        now: Time,
        from: NodeId,
        children: Vec<NodeId>,
        ancestors: Vec<NodeId>,
        caps: PathCaps,
    ) {
        let reevaluating = self
            .reevaluation
            .as_ref()
            .is_some_and(|r| r.parent == from && r.probe.is_none() && cx.parent == Some(from));
        if !reevaluating {
            return;
        }
        // Ancestors end with the parent; the one before it is the grandparent.
        let grandparent = ancestors
            .len()
            .checked_sub(2)
            .and_then(|i| ancestors.get(i).copied())
            .filter(|g| !cx.is_descendant(g));
        let sender_parent = caps.sender_parent;
        let parent_to_grandparent = caps.sender_parent_rtt;
        let extra = grandparent.map(|g| (g, sender_parent));
        let mut probe = Probe::start(cx, from, children, &ancestors, caps, extra);
        let sample = self
            .reevaluation
            .as_mut()
            .map(|r| std::mem::take(&mut r.sample))
            .unwrap_or_default();
        probe.add_sample(cx, sample);
        if let Some(r) = self.reevaluation.as_mut() {
            r.grandparent = grandparent;
            r.parent_to_grandparent = parent_to_grandparent;
            r.probe = Some(probe);
        }
        cx.timers
            .set(Timer::ReevaluationDone, now + measure_timeout(cx));
    }

    /// Nodes drawn from the root's table: a join's (see `on_join_sample`), or a re-evaluation's,
    /// measured beside the siblings (or kept until the parent's answer starts the round).
    pub(in crate::node) fn on_sample(
        &mut self,
        cx: &mut Core,
        now: Time,
        from: NodeId,
        nodes: Vec<(NodeId, u64)>,
    ) {
        if self.on_join_sample(cx, now, from, &nodes) {
            return;
        }
        if cx.ancestors.first() != Some(&from) {
            return;
        }
        let Some(mut reevaluation) = self.reevaluation.take() else {
            return;
        };
        let nodes: Vec<(NodeId, PathBandwidth)> = nodes
            .into_iter()
            .take(cx.config.sample_size)
            .map(|(n, bw)| (n, PathBandwidth::from_wire(bw)))
            .collect();
        match reevaluation.probe.as_mut() {
            Some(probe) => probe.add_sample(cx, nodes),
            None => reevaluation.sample = nodes,
        }
        self.reevaluation = Some(reevaluation);
    }

    /// Move under a sibling that is as good as the parent, or back up under the grandparent if
    /// it is clearly better; otherwise stay.
    pub(in crate::node) fn finish_reevaluation(&mut self, cx: &mut Core, now: Time) {
        cx.timers.cancel(Timer::ReevaluationDone);
        let Some(reevaluation) = self.reevaluation.take() else {
            return;
        };
        let Some(probe) = reevaluation.probe else {
            return;
        };
        // Peers that never answered the measurement are gone (or unreachable): not near.
        for silent in &probe.waiting {
            self.near.forget(silent);
        }
        if cx.parent != Some(reevaluation.parent) || self.attempt.is_some() {
            return;
        }
        if !cx.knows_subtree() {
            // A child adopted during the round has not listed its subtree yet; the round's
            // candidates may be below it. Decide next round.
            return;
        }
        // Nodes that came below this one since they were measured are out.
        let mut probe = probe;
        probe.others.retain(|o| !cx.is_descendant(o));
        let grandparent = reevaluation.grandparent.filter(|g| !cx.is_descendant(g));
        let (Some(here), Some(&parent_measured)) = (
            probe.through(&reevaluation.parent),
            probe.results.get(&reevaluation.parent),
        ) else {
            return;
        };
        cx.link_bw = parent_measured.bandwidth.into();
        let parent_rtt = parent_measured.rtt;
        cx.parent_rtt = Some(parent_rtt);
        let margin = cx.config.equal_fraction;
        let strict = cx.config.strict_moves;
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
        if strict {
            kept.others.retain(|o| !self.left_parents.contains(o));
        }
        // Closer means beyond the same band: round-trip times within it count as equal, so a
        // node does not creep towards its source a few hundred microseconds per move, each
        // move a certificate at the root. A sibling needs only a quarter of the band: the move
        // stops at the parent, and a sibling a little closer is often on the way to this node,
        // its flow crossing the same links (GEANT, 600 nodes, seed 1: 6% closer, both at half).
        // Either way it must also be `closer_floor` nearer, so that sub-millisecond gains do
        // not keep a large tree moving.
        let within_floor = parent_rtt.saturating_sub(cx.config.closer_floor);
        let closer_than = parent_rtt.mul_f64(1.0 - margin).min(within_floor);
        let sibling_closer_than = parent_rtt
            .mul_f64(1.0 - margin / SIBLING_BAND_DIVISOR)
            .min(within_floor);
        let closer = if strict {
            let mut near = kept.clone();
            near.others.retain(|o| {
                let band = if kept.sampled.contains(o) {
                    closer_than
                } else {
                    sibling_closer_than
                };
                probe.rtt(o).is_some_and(|rtt| rtt < band)
            });
            near.closest_reaching(as_good)
        } else {
            kept.closest_reaching(as_good)
        };
        // A node no farther than the parent (beside it, often on the same router) that gives up
        // nothing now and whose own hop to this node is clearly wider than the parent's: the
        // paths differ in little but the sender, so the parent's upload, shared among its
        // children, is what holds this node (and the siblings beside it) back. Moving takes one
        // flow off that upload. Where the hops are alike the limit is elsewhere and such a move
        // would gain no one anything.
        let beside = || {
            let wider = parent_measured.bandwidth.bps_f64() * (1.0 + margin);
            let mut near = kept.clone();
            near.others.retain(|o| {
                probe
                    .results
                    .get(o)
                    .is_some_and(|r| r.rtt <= parent_rtt && r.bandwidth.bps_f64() > wider)
            });
            near.closest_reaching(here.bps_f64())
        };
        // A sibling that gives up nothing at all: moving below it takes one flow off the
        // parent's links (the paper's push down the tree), even if it is farther.
        let lossless = || {
            let mut siblings = kept.clone();
            siblings.others.retain(|o| !kept.sampled.contains(o));
            siblings.closest_reaching(here.bps_f64())
        };
        let pick = if strict {
            better
                .or(closer)
                .or_else(beside)
                .or_else(|| lossless().filter(|_| cx.config.lossless_down_moves))
        } else {
            closer
        };
        if let Some(sibling) = pick {
            self.restless += 1;
            self.attach_to(cx, now, sibling, Vec::new(), 0, probe.hop(&sibling));
        } else if let Some(g) = grandparent
            && probe
                .through(&g)
                .is_some_and(|bw| bw.bps_f64() > clearly_better)
        {
            self.restless += 1;
            self.attach_to(cx, now, g, Vec::new(), 0, probe.hop(&g));
        } else if let Some(g) = grandparent
            && strict
            && cx.config.move_ahead_of_parent
            && probe.through(&g).is_some_and(|bw| bw.bps_f64() >= as_good)
            && probe.rtt(&g).is_some_and(|to_g| {
                reevaluation
                    .parent_to_grandparent
                    .is_some_and(|parent_to_g| {
                        ahead_of_parent(to_g, parent_rtt, parent_to_g, margin)
                    })
            })
        {
            // This node lies on the way from the grandparent to the parent, and the parent's
            // flow to it crosses those links twice (once to the parent, once back): as good
            // under the grandparent, it moves up, and the parent, finding it closer, follows
            // below it. Neither step alone gains bandwidth; together they free the links.
            self.restless += 1;
            self.attach_to(cx, now, g, Vec::new(), 0, probe.hop(&g));
        } else {
            self.restless = 0;
        }
    }
}
