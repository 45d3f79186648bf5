//! One round's bandwidth measurements: whom to measure (a reference node, the children it
//! listed, and extra nodes), what came back, and the end-to-end bandwidth through each (the
//! measured last hop, capped by the node's own bandwidth from the root).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use overlay_core::{Bandwidth, MeasureRequest, NodeId};
use rand::seq::SliceRandom;

use crate::PathBandwidth;
use crate::node::core::Core;

/// What a `Children` answer says of bandwidth from the root.
#[derive(Clone, Debug)]
pub(in crate::node) struct PathCaps {
    /// Each listed child's.
    pub(in crate::node) children: BTreeMap<NodeId, PathBandwidth>,
    /// The answering node's.
    pub(in crate::node) sender: PathBandwidth,
    /// The answering node's parent's.
    pub(in crate::node) sender_parent: PathBandwidth,
    /// The answering node's round-trip time to its parent, if it measured it.
    pub(in crate::node) sender_parent_rtt: Option<Duration>,
}

/// One measurement of the path from a peer.
#[derive(Clone, Copy, Debug)]
pub(super) struct Measured {
    /// The bandwidth of the last hop.
    pub(super) bandwidth: Bandwidth,
    /// The round-trip time.
    pub(super) rtt: Duration,
}

/// Bandwidth measurements of one round.
#[derive(Clone, Debug, Default)]
pub(super) struct Probe {
    /// Peers measured whose result has not come back.
    pub(super) waiting: BTreeSet<NodeId>,
    /// What was measured, by peer.
    pub(super) results: BTreeMap<NodeId, Measured>,
    /// Each measured peer's own bandwidth from the root, where known: a path through it can
    /// carry no more than that, whatever the last hop measures.
    pub(super) caps: BTreeMap<NodeId, PathBandwidth>,
    /// The nodes measured against the reference (children of the candidate, or siblings).
    pub(super) others: Vec<NodeId>,
    /// Those of `others` drawn from the root's table rather than listed by the parent.
    pub(super) sampled: BTreeSet<NodeId>,
}

/// How long a round waits for its measurements: an answer's time plus a probe's.
pub(super) fn measure_timeout(cx: &Core) -> Duration {
    cx.config.answer_timeout + cx.config.probe_duration
}

/// Up to `max_probed_children` of `nodes` that could be this node's parent, chosen at random.
fn eligible(cx: &mut Core, nodes: Vec<NodeId>, exclude: &[NodeId]) -> Vec<NodeId> {
    let mut eligible: Vec<NodeId> = nodes
        .into_iter()
        .filter(|c| *c != cx.id && !cx.is_descendant(c) && !exclude.contains(c))
        .collect();
    eligible.shuffle(&mut cx.rng);
    eligible.truncate(cx.config.max_probed_children);
    eligible.sort_unstable();
    eligible
}

impl Probe {
    /// Measure `reference` (the candidate or the parent), the eligible `children` it listed
    /// (not among its `ancestors`) and any `extra` node, each capped by its bandwidth from the
    /// root where known.
    pub(super) fn start(
        cx: &mut Core,
        reference: NodeId,
        children: Vec<NodeId>,
        ancestors: &[NodeId],
        caps: PathCaps,
        extra: Option<(NodeId, PathBandwidth)>,
    ) -> Self {
        let others = eligible(cx, children, ancestors);
        let mut probe = Self {
            others: others.clone(),
            caps: caps.children,
            ..Self::default()
        };
        probe.caps.insert(reference, caps.sender);
        if let Some((node, cap)) = extra {
            probe.caps.insert(node, cap);
        }
        if !cx.config.use_path_bandwidth {
            probe.caps.clear();
        }
        probe.measure(cx, reference);
        if let Some((node, _)) = extra {
            probe.measure(cx, node);
        }
        for c in others {
            probe.measure(cx, c);
        }
        probe
    }

    /// Ask the driver to measure the path from `peer`, unless it is this node or already asked.
    pub(super) fn measure(&mut self, cx: &mut Core, peer: NodeId) {
        if peer == cx.id || !self.waiting.insert(peer) {
            return;
        }
        cx.stats.measurements += 1;
        let request = match cx.config.probe_bytes {
            Some(bytes) => MeasureRequest::Transfer { bytes },
            None => MeasureRequest::Bandwidth {
                max_rate: cx.config.probe_rate,
                duration: cx.config.probe_duration,
            },
        };
        cx.outbox.measure(peer, request);
    }

    /// Take the measurement of `peer` if this round awaits it; returns whether it did.
    pub(super) fn record(&mut self, peer: NodeId, measured: Measured) -> bool {
        if !self.waiting.remove(&peer) {
            return false;
        }
        self.results.insert(peer, measured);
        true
    }

    /// Whether every measurement asked for came back.
    pub(super) fn is_complete(&self) -> bool {
        self.waiting.is_empty()
    }

    /// The bandwidth from the root through `peer`: the measured last hop, capped by the peer's
    /// own bandwidth from the root.
    pub(super) fn through(&self, peer: &NodeId) -> Option<Bandwidth> {
        let measured = self.results.get(peer)?;
        let cap = self.caps.get(peer).copied();
        let cap = cap.unwrap_or(PathBandwidth::Unlimited);
        Some(cap.cap(measured.bandwidth))
    }

    /// The measured last hop from `peer` (what a move under it sets the link to), unlimited if
    /// it was not measured.
    pub(super) fn hop(&self, peer: &NodeId) -> PathBandwidth {
        self.results
            .get(peer)
            .map_or(PathBandwidth::Unlimited, |r| r.bandwidth.into())
    }

    /// The round-trip time measured to `peer`.
    pub(super) fn rtt(&self, peer: &NodeId) -> Option<Duration> {
        self.results.get(peer).map(|r| r.rtt)
    }

    /// The closest of the measured others whose bandwidth reaches `floor` (bits per second),
    /// the wider first among equally close ones.
    pub(super) fn closest_reaching(&self, floor: f64) -> Option<NodeId> {
        self.others
            .iter()
            .filter_map(|o| Some((*o, self.through(o)?, self.rtt(o)?)))
            .filter(|&(_, bw, _)| bw.bps_f64() >= floor && bw > Bandwidth::ZERO)
            .min_by(|a, b| a.2.cmp(&b.2).then(b.1.cmp(&a.1)).then(a.0.cmp(&b.0)))
            .map(|(o, _, _)| o)
    }

    /// Measure the sampled nodes that could be this node's parent and are not yet measured,
    /// capped by the bandwidth from the root each reported.
    pub(super) fn add_sample(&mut self, cx: &mut Core, sample: Vec<(NodeId, PathBandwidth)>) {
        let parent = cx.parent;
        for (node, path_bw) in sample {
            if Some(node) == parent
                || cx.is_descendant(&node)
                || self.others.contains(&node)
                || self.results.contains_key(&node)
                || self.waiting.contains(&node)
                || node == cx.id
            {
                continue;
            }
            self.others.push(node);
            self.sampled.insert(node);
            if cx.config.use_path_bandwidth {
                self.caps.insert(node, path_bw);
            }
            self.measure(cx, node);
        }
    }
}
