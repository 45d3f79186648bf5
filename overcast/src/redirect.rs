//! The redirect decision: which live node a client should be sent to.
//!
//! The root's table lists every live node with a path to the root and what content it holds.
//! A client is sent to a node that holds what it wants, preferring nodes close to it and lightly
//! loaded: the score is the client's round-trip time to the node, stretched by the node's load
//! (a node serving [`LOAD_FOR_DOUBLE`] others counts as twice as far). Closeness comes from RTTs
//! the client (or its resolver) measured, then from an estimate the caller supplies (from the
//! client's address: a prefix table, coordinates); nodes with neither are a last resort, least
//! loaded first.

use std::collections::BTreeMap;
use std::time::Duration;

use overlay_core::NodeId;

use crate::certificate::NodeInfo;

/// Load at which a node's score doubles.
pub const LOAD_FOR_DOUBLE: f64 = 16.0;

/// Estimates the RTT from the client to a node, from what the caller knows of the client's
/// position (its address).
pub type DistanceEstimate<'a> = &'a dyn Fn(&NodeId) -> Option<Duration>;

/// What is known about the client asking.
#[derive(Clone, Copy)]
pub struct RedirectRequest<'a> {
    /// The first byte the client wants (0 to start from the beginning).
    pub from: u64,
    /// The node must hold content at least up to here (the live edge the client may lag by).
    pub through: u64,
    /// RTTs measured from the client to some nodes.
    pub rtt: &'a BTreeMap<NodeId, Duration>,
    /// An estimate for nodes without a measured RTT.
    pub estimate: Option<DistanceEstimate<'a>>,
}

impl std::fmt::Debug for RedirectRequest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedirectRequest")
            .field("from", &self.from)
            .field("through", &self.through)
            .field("rtt", &self.rtt)
            .field("estimate", &self.estimate.is_some())
            .finish()
    }
}

/// Pick a node for the client among `candidates` (live nodes with their information).
pub fn choose(
    candidates: impl IntoIterator<Item = (NodeId, NodeInfo)>,
    request: &RedirectRequest<'_>,
) -> Option<NodeId> {
    let mut best_known: Option<(f64, NodeId)> = None;
    let mut best_unknown: Option<(u32, NodeId)> = None;
    for (node, info) in candidates {
        if info.degraded
            || info.first > request.from
            || info.content < request.through.max(request.from)
        {
            continue;
        }
        let distance = request
            .rtt
            .get(&node)
            .copied()
            .or_else(|| request.estimate.and_then(|e| e(&node)));
        match distance {
            Some(rtt) => {
                let score = rtt.as_secs_f64() * (1.0 + f64::from(info.load) / LOAD_FOR_DOUBLE);
                if best_known.is_none_or(|(s, n)| score < s || (score == s && node < n)) {
                    best_known = Some((score, node));
                }
            }
            None => {
                if best_unknown.is_none_or(|(l, n)| (info.load, node) < (l, n)) {
                    best_unknown = Some((info.load, node));
                }
            }
        }
    }
    best_known.map_or_else(|| best_unknown.map(|(_, n)| n), |(_, n)| Some(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(i: u64) -> NodeId {
        NodeId::from_index(i)
    }

    fn info(content: u64, load: u32) -> NodeInfo {
        NodeInfo {
            first: 0,
            content,
            load,
            ..NodeInfo::default()
        }
    }

    #[test]
    fn nearby_lightly_loaded_nodes_with_the_content_win() {
        let rtt: BTreeMap<NodeId, Duration> = [
            (id(1), Duration::from_millis(10)),
            (id(2), Duration::from_millis(12)),
            (id(3), Duration::from_millis(5)),
        ]
        .into();
        let request = RedirectRequest {
            from: 0,
            through: 100,
            rtt: &rtt,
            estimate: None,
        };
        // 3 is closest but lacks the content; 1 is closer than 2 but far busier.
        let nodes = [
            (id(1), info(500, 32)),
            (id(2), info(500, 0)),
            (id(3), info(50, 0)),
        ];
        assert_eq!(choose(nodes, &request), Some(id(2)));
        let idle = [(id(1), info(500, 0)), (id(2), info(500, 0))];
        assert_eq!(choose(idle, &request), Some(id(1)));
    }

    #[test]
    fn estimates_fill_in_and_unknown_nodes_are_a_last_resort() {
        let rtt = BTreeMap::new();
        let estimate = |n: &NodeId| (*n == id(2)).then_some(Duration::from_millis(40));
        let request = RedirectRequest {
            from: 0,
            through: 0,
            rtt: &rtt,
            estimate: Some(&estimate),
        };
        let nodes = [(id(1), info(10, 0)), (id(2), info(10, 3))];
        assert_eq!(choose(nodes, &request), Some(id(2)));
        let request = RedirectRequest {
            estimate: None,
            ..request
        };
        assert_eq!(choose(nodes, &request), Some(id(1)));
        // Nobody holds the start any more.
        let evicted = [(
            id(1),
            NodeInfo {
                first: 5,
                content: 10,
                load: 0,
                ..NodeInfo::default()
            },
        )];
        assert_eq!(choose(evicted, &request), None);
        let degraded = [(
            id(2),
            NodeInfo {
                degraded: true,
                ..info(10, 0)
            },
        )];
        assert_eq!(
            choose(degraded, &request),
            None,
            "a degraded node gets no clients"
        );
    }
}
