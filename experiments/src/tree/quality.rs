//! Tree quality of an overlay at one instant: every member in turn as the source, its tree
//! taken from the members' forwarding state, measured against unicast and IP multicast.

use super::{self as tree, DeliveryTree, StressCounter};
use crate::network::Network;
use crate::stats::{Distribution, Histogram};

/// Reference figures that do not change while the overlay evolves (per source).
#[derive(Debug, Clone)]
pub struct References {
    /// IP multicast's resource usage per source, ms (empty without physical links).
    pub ip_ru_ms: Vec<f64>,
    /// Naive unicast's worst stress over all sources.
    pub unicast_stress_max: Option<u64>,
    /// The members' minimum spanning tree's weight, ms: the least resource usage any overlay
    /// tree can have (the same for every source).
    pub mst_ms: f64,
}

impl References {
    /// Compute the references for every member as a source.
    pub fn compute(net: &Network) -> Self {
        let mut counter = StressCounter::default();
        let mut ip_ru_ms = Vec::new();
        let mut unicast_max: Option<u64> = None;
        for s in 0..net.members() {
            if let Some(st) = tree::ip_multicast(net, s, &mut counter).stress {
                ip_ru_ms.push(st.resource_usage_ms);
            }
            if let Some(st) =
                tree::evaluate(net, &DeliveryTree::star(s, net.members()), &mut counter).stress
            {
                unicast_max = Some(unicast_max.unwrap_or(0).max(st.max));
            }
        }
        Self {
            ip_ru_ms,
            unicast_stress_max: unicast_max,
            mst_ms: super::bounds::minimum_spanning_tree_ms(net),
        }
    }
}

/// Quality of the trees of a set of sources.
#[derive(Debug, Clone, Default)]
pub struct TreeQuality {
    /// RDP of every (source, reached receiver) pair.
    pub rdp: Distribution,
    /// Link stress of every (source, used link) pair.
    pub stress: Histogram,
    /// Sum of resource usage over the sources measured, ms.
    pub ru_ms: f64,
    /// Sum of IP multicast's resource usage over the same sources, ms.
    pub ip_ru_ms: f64,
    /// Sum of the minimum spanning tree's weight over the same sources, ms (see
    /// [`References::mst_ms`]).
    pub mst_ms: f64,
    /// Receivers reached over receivers expected, summed over sources.
    pub reached: usize,
    /// See `reached`.
    pub expected: usize,
    /// Sources whose forwarding state had a loop.
    pub loops: usize,
    /// Sources measured.
    pub sources: usize,
}

impl TreeQuality {
    /// Measure the trees of `sources`; `parents(s)` gives each member's upstream for source `s`
    /// (`None` if it has none), and `live(m)` whether member `m` is expected to receive.
    pub fn measure(
        net: &Network,
        refs: &References,
        sources: &[usize],
        mut parents: impl FnMut(usize) -> Vec<Option<usize>>,
        live: impl Fn(usize) -> bool,
    ) -> Self {
        let mut q = Self::default();
        let mut counter = StressCounter::default();
        let mut rdp = Vec::new();
        for &s in sources {
            q.sources += 1;
            let expected = (0..net.members()).filter(|&m| m != s && live(m)).count();
            q.expected += expected;
            let Ok(tree) = DeliveryTree::new(s, parents(s)) else {
                q.loops += 1;
                continue;
            };
            let m = tree::evaluate(net, &tree, &mut counter);
            q.reached += tree.order()[1..].iter().filter(|&&r| live(r)).count();
            rdp.extend(m.rdp.iter().copied());
            if let Some(st) = m.stress {
                q.stress.merge(&st.histogram);
                q.ru_ms += st.resource_usage_ms;
                q.ip_ru_ms += refs.ip_ru_ms.get(s).copied().unwrap_or(0.0);
                q.mst_ms += refs.mst_ms;
            }
        }
        q.rdp = Distribution::new(rdp);
        q
    }

    /// Resource usage over IP multicast's, if defined.
    pub fn ru_ratio(&self) -> Option<f64> {
        (self.ip_ru_ms > 0.0).then(|| self.ru_ms / self.ip_ru_ms)
    }

    /// The least resource usage any overlay tree could have (the members' minimum spanning
    /// tree) over IP multicast's, on the same sources: the floor `ru_ratio` is measured against.
    pub fn ru_floor_ratio(&self) -> Option<f64> {
        (self.ip_ru_ms > 0.0).then(|| self.mst_ms / self.ip_ru_ms)
    }

    /// Receivers reached over receivers expected.
    pub fn reachable_fraction(&self) -> f64 {
        if self.expected == 0 {
            1.0
        } else {
            self.reached as f64 / self.expected as f64
        }
    }
}
