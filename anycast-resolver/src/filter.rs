//! Selection as a pipeline of filters over a group's servers. Each filter narrows the set:
//! content-independent ones (random, round-robin), metric-based ones (lowest estimate, nearest,
//! the equivalent set) and policy-based ones (allow, deny, prefer). The same pipeline type runs
//! at the authoritative resolver, the local resolver and the client; the answer is a random
//! member of what is left, so clients given the same set spread over it instead of herding.

use std::collections::BTreeSet;
use std::time::Duration;

use overlay_core::NodeId;
use overlay_core::rng::ProtocolRng;
use rand::RngExt;
use serde::{Deserialize, Serialize};

/// A server as the filters see it.
#[derive(Clone, Debug, PartialEq)]
pub struct Candidate {
    /// The server.
    pub server: NodeId,
    /// Its estimated response time, if one is known.
    pub estimate: Option<Duration>,
    /// The round-trip time from whoever filters, if measured.
    pub rtt: Option<Duration>,
    /// The spare capacity the server states, requests per second, if it does.
    pub spare_rps: Option<f64>,
}

/// One stage of a pipeline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Filter {
    /// Keep one at random.
    Random,
    /// Keep one, the next in turn.
    RoundRobin,
    /// Keep the lowest estimate (every server tied with it). Servers without an estimate are
    /// kept only if none has one.
    LowestEstimate,
    /// Keep every server whose estimate is within `threshold` (a fraction) of the lowest: the
    /// equivalent set.
    Equivalent {
        /// 0.2 keeps servers up to 20% slower than the best.
        threshold: f64,
    },
    /// Keep the lowest round-trip time (ties too); servers without one only if none has one.
    Nearest,
    /// Draw two at random and keep the one with the lower estimate ("power of two choices"):
    /// load spreads even when every client holds the same estimates, yet a slow server is
    /// rarely kept.
    TwoChoices,
    /// Keep one, drawn with probability proportional to the spare capacity its server states:
    /// resolvers that all hold the same figures then split their clients the way the servers
    /// can take them, instead of all sending them to the best. A server that states no figure
    /// weighs as the mean of those that do; if none states one (or every figure is zero), the
    /// draw is uniform.
    Weighted,
    /// Keep only these.
    Allow(BTreeSet<NodeId>),
    /// Drop these.
    Deny(BTreeSet<NodeId>),
    /// Keep these if any of them is left; otherwise keep everything.
    Prefer(BTreeSet<NodeId>),
}

/// State a pipeline carries between selections (the round-robin turn).
#[derive(Clone, Debug, Default)]
pub struct SelectState {
    turn: u64,
}

fn keep_lowest(
    set: Vec<Candidate>,
    key: impl Fn(&Candidate) -> Option<Duration>,
    slack: f64,
) -> Vec<Candidate> {
    let Some(best) = set.iter().filter_map(&key).min() else {
        return set;
    };
    let limit = best.as_secs_f64() * (1.0 + slack.max(0.0));
    set.into_iter()
        .filter(|c| key(c).is_some_and(|v| v.as_secs_f64() <= limit))
        .collect()
}

impl Filter {
    /// The candidates this stage keeps, in the order given.
    pub fn apply(
        &self,
        set: Vec<Candidate>,
        state: &mut SelectState,
        rng: &mut ProtocolRng,
    ) -> Vec<Candidate> {
        match self {
            Self::Random => {
                if set.is_empty() {
                    return set;
                }
                let i = rng.random_range(0..set.len());
                set.into_iter().nth(i).into_iter().collect()
            }
            Self::RoundRobin => {
                if set.is_empty() {
                    return set;
                }
                let i = (state.turn % set.len() as u64) as usize;
                state.turn = state.turn.wrapping_add(1);
                set.into_iter().nth(i).into_iter().collect()
            }
            Self::LowestEstimate => keep_lowest(set, |c| c.estimate, 0.0),
            Self::Equivalent { threshold } => keep_lowest(set, |c| c.estimate, *threshold),
            Self::Nearest => keep_lowest(set, |c| c.rtt, 0.0),
            Self::TwoChoices => {
                if set.len() <= 1 {
                    return set;
                }
                let a = rng.random_range(0..set.len());
                let mut b = rng.random_range(0..set.len() - 1);
                if b >= a {
                    b += 1;
                }
                let key = |c: &Candidate| c.estimate.unwrap_or(Duration::MAX);
                let keep = if key(&set[b]) < key(&set[a]) { b } else { a };
                set.into_iter().nth(keep).into_iter().collect()
            }
            Self::Weighted => {
                if set.len() <= 1 {
                    return set;
                }
                let stated: Vec<f64> = set
                    .iter()
                    .filter_map(|c| c.spare_rps)
                    .filter(|s| s.is_finite())
                    .map(|s| s.max(0.0))
                    .collect();
                let mean = if stated.is_empty() {
                    1.0
                } else {
                    stated.iter().sum::<f64>() / stated.len() as f64
                };
                let weights: Vec<f64> = set
                    .iter()
                    .map(|c| match c.spare_rps {
                        Some(s) if s.is_finite() => s.max(0.0),
                        _ => mean,
                    })
                    .collect();
                let total: f64 = weights.iter().sum();
                let keep = if total > 0.0 && total.is_finite() {
                    let mut x = rng.random_range(0.0..total);
                    weights
                        .iter()
                        .position(|&w| {
                            x -= w;
                            x < 0.0
                        })
                        .unwrap_or(set.len() - 1)
                } else {
                    rng.random_range(0..set.len())
                };
                set.into_iter().nth(keep).into_iter().collect()
            }
            Self::Allow(allowed) => set
                .into_iter()
                .filter(|c| allowed.contains(&c.server))
                .collect(),
            Self::Deny(denied) => set
                .into_iter()
                .filter(|c| !denied.contains(&c.server))
                .collect(),
            Self::Prefer(preferred) => {
                if set.iter().any(|c| preferred.contains(&c.server)) {
                    set.into_iter()
                        .filter(|c| preferred.contains(&c.server))
                        .collect()
                } else {
                    set
                }
            }
        }
    }
}

/// Filters applied in order.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Pipeline {
    /// The stages.
    pub filters: Vec<Filter>,
}

impl Pipeline {
    /// A pipeline of these stages.
    pub fn new(filters: Vec<Filter>) -> Self {
        Self { filters }
    }

    /// The equivalent set within `threshold` of the best estimate (a uniform pick inside it).
    pub fn equivalent(threshold: f64) -> Self {
        Self::new(vec![Filter::Equivalent { threshold }])
    }

    /// The anycast default: the equivalent set within `threshold` of the best estimate, then a
    /// draw weighted by the spare capacity each server states.
    pub fn anycast(threshold: f64) -> Self {
        Self::new(vec![Filter::Equivalent { threshold }, Filter::Weighted])
    }

    /// What every stage keeps, in turn.
    pub fn apply(
        &self,
        mut set: Vec<Candidate>,
        state: &mut SelectState,
        rng: &mut ProtocolRng,
    ) -> Vec<Candidate> {
        for filter in &self.filters {
            set = filter.apply(set, state, rng);
        }
        set
    }

    /// One server: a random member of what the stages keep.
    pub fn choose(
        &self,
        set: Vec<Candidate>,
        state: &mut SelectState,
        rng: &mut ProtocolRng,
    ) -> Option<NodeId> {
        let kept = self.apply(set, state, rng);
        if kept.is_empty() {
            return None;
        }
        let i = rng.random_range(0..kept.len());
        Some(kept[i].server)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use overlay_core::rng::rng_from_seed;
    use std::collections::BTreeMap;

    fn c(i: u64, est: Option<u64>, rtt: Option<u64>) -> Candidate {
        Candidate {
            server: NodeId::from_index(i),
            estimate: est.map(Duration::from_millis),
            rtt: rtt.map(Duration::from_millis),
            spare_rps: None,
        }
    }

    fn ids(set: &[Candidate]) -> Vec<u64> {
        set.iter()
            .map(|c| {
                (0..16)
                    .find(|&i| NodeId::from_index(i) == c.server)
                    .unwrap()
            })
            .collect()
    }

    fn group() -> Vec<Candidate> {
        vec![
            c(1, Some(100), Some(50)),
            c(2, Some(110), Some(10)),
            c(3, Some(300), Some(5)),
            c(4, None, Some(5)),
        ]
    }

    #[test]
    fn each_filter_keeps_what_it_says() {
        let (mut st, mut rng) = (SelectState::default(), rng_from_seed(1));
        let set = |f: Filter, st: &mut SelectState, rng: &mut ProtocolRng| {
            ids(&f.apply(group(), st, rng))
        };
        assert_eq!(set(Filter::LowestEstimate, &mut st, &mut rng), [1]);
        assert_eq!(
            set(Filter::Equivalent { threshold: 0.2 }, &mut st, &mut rng),
            [1, 2]
        );
        assert_eq!(set(Filter::Nearest, &mut st, &mut rng), [3, 4]);
        let two: BTreeSet<NodeId> = [3, 4].map(NodeId::from_index).into();
        assert_eq!(set(Filter::Allow(two.clone()), &mut st, &mut rng), [3, 4]);
        assert_eq!(set(Filter::Deny(two.clone()), &mut st, &mut rng), [1, 2]);
        assert_eq!(set(Filter::Prefer(two), &mut st, &mut rng), [3, 4]);
        let absent: BTreeSet<NodeId> = [9].map(NodeId::from_index).into();
        assert_eq!(set(Filter::Prefer(absent), &mut st, &mut rng), [1, 2, 3, 4]);
        let turns: Vec<Vec<u64>> = (0..5)
            .map(|_| set(Filter::RoundRobin, &mut st, &mut rng))
            .collect();
        assert_eq!(turns, [[1], [2], [3], [4], [1]]);
        assert_eq!(set(Filter::Random, &mut st, &mut rng).len(), 1);
        // Nothing has an estimate: the metric filters keep everyone rather than no one.
        let blind = vec![c(1, None, None), c(2, None, None)];
        assert_eq!(
            ids(&Filter::LowestEstimate.apply(blind, &mut st, &mut rng)),
            [1, 2]
        );
    }

    #[test]
    fn two_choices_never_keeps_the_worst_and_spreads_over_the_rest() {
        let (mut st, mut rng) = (SelectState::default(), rng_from_seed(4));
        let mut counts: BTreeMap<u64, u32> = BTreeMap::new();
        for _ in 0..3000 {
            let kept = ids(&Filter::TwoChoices.apply(group(), &mut st, &mut rng));
            assert_eq!(kept.len(), 1);
            *counts.entry(kept[0]).or_default() += 1;
        }
        // Server 4 has no estimate: it loses every pair it is drawn in.
        assert!(!counts.contains_key(&4), "{counts:?}");
        // The best wins every pair it is in (half of them), the second a third.
        assert!(
            counts[&1] > 1300 && counts[&2] > 800 && counts[&3] > 300,
            "{counts:?}"
        );
    }

    #[test]
    fn stages_compose_in_order() {
        let (mut st, mut rng) = (SelectState::default(), rng_from_seed(2));
        let deny_best: BTreeSet<NodeId> = [1].map(NodeId::from_index).into();
        let p = Pipeline::new(vec![Filter::Deny(deny_best), Filter::LowestEstimate]);
        assert_eq!(ids(&p.apply(group(), &mut st, &mut rng)), [2]);
        let p = Pipeline::new(vec![Filter::LowestEstimate, Filter::Nearest]);
        assert_eq!(ids(&p.apply(group(), &mut st, &mut rng)), [1]);
        assert_eq!(
            Pipeline::new(vec![Filter::Allow(BTreeSet::new())]).choose(group(), &mut st, &mut rng),
            None
        );
    }

    #[test]
    fn the_equivalent_set_spreads_choices_where_the_best_would_herd() {
        let (mut st, mut rng) = (SelectState::default(), rng_from_seed(3));
        let mut counts: BTreeMap<NodeId, u32> = BTreeMap::new();
        for _ in 0..1000 {
            let pick = Pipeline::equivalent(0.2)
                .choose(group(), &mut st, &mut rng)
                .unwrap();
            *counts.entry(pick).or_default() += 1;
        }
        assert_eq!(counts.len(), 2, "{counts:?}");
        assert!(counts.values().all(|&n| n > 400), "{counts:?}");
        let best: BTreeSet<NodeId> = (0..100)
            .filter_map(|_| {
                Pipeline::new(vec![Filter::LowestEstimate]).choose(group(), &mut st, &mut rng)
            })
            .collect();
        assert_eq!(best.len(), 1);
    }

    #[test]
    fn the_weighted_draw_follows_stated_spare_capacity() {
        let (mut st, mut rng) = (SelectState::default(), rng_from_seed(5));
        let mut set = group();
        set[0].spare_rps = Some(30.0);
        set[1].spare_rps = Some(10.0);
        set[2].spare_rps = Some(0.0);
        // Server 4 states nothing: it weighs as the mean, 40 / 3.
        let mut counts: BTreeMap<u64, u32> = BTreeMap::new();
        for _ in 0..5300 {
            let kept = ids(&Filter::Weighted.apply(set.clone(), &mut st, &mut rng));
            *counts.entry(kept[0]).or_default() += 1;
        }
        assert!(
            !counts.contains_key(&3),
            "nothing spare, never drawn: {counts:?}"
        );
        // Expected 3000, 1000, 1333 of 5333.
        assert!((2700..3300).contains(&counts[&1]), "{counts:?}");
        assert!((800..1200).contains(&counts[&2]), "{counts:?}");
        assert!((1100..1550).contains(&counts[&4]), "{counts:?}");
        // Nonsense and all-zero figures fall back to a uniform draw.
        let mut zero = group();
        for c in &mut zero {
            c.spare_rps = Some(0.0);
        }
        zero[0].spare_rps = Some(f64::NAN);
        let picked: BTreeSet<u64> = (0..200)
            .flat_map(|_| ids(&Filter::Weighted.apply(zero.clone(), &mut st, &mut rng)))
            .collect();
        assert_eq!(picked.len(), 4, "{picked:?}");
        // The anycast pipeline draws only inside the equivalent set.
        for _ in 0..200 {
            let pick = Pipeline::anycast(0.2)
                .choose(set.clone(), &mut st, &mut rng)
                .unwrap();
            assert!(pick == NodeId::from_index(1) || pick == NodeId::from_index(2));
        }
    }
}
