//! Tree quality measured on packets, the same way for any protocol: every member in turn sends a
//! short burst, a tap on the simulator's sends records each burst packet's copies over overlay
//! edges, and first arrivals give each receiver's delay. `run peers` measures Narada and
//! iroh-gossip's PlumTree this way, so neither is judged by state the other does not have.
//!
//! A packet is named by its send time in simulated microseconds (every burst packet leaves at a
//! time of its own); figures come from each source's last packet, once the first ones had a
//! chance to adjust the tree to that source (PlumTree grafts and prunes as packets flow).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use overlay_core::Time;
use overlay_core::sim::DropFilter;

use crate::network::Network;
use crate::stats::{Distribution, Histogram};
use crate::tree::quality::References;
use crate::tree::{StressCounter, copies_stress};

/// When each source sends its burst.
#[derive(Debug, Clone)]
pub struct BurstPlan {
    /// The first source's first packet.
    pub start: Time,
    /// Packets per source.
    pub per_source: usize,
    /// Between a source's packets.
    pub spacing: Duration,
    /// Between one source's first packet and the next source's.
    pub gap: Duration,
    /// Sources, in turn.
    pub sources: Vec<usize>,
}

impl BurstPlan {
    /// Every member of `members` in turn, from `start`: `per_source` packets 20 ms apart, a
    /// source every `20 ms × per_source + 100 ms`.
    pub fn every_member(members: usize, start: Time, per_source: usize) -> Self {
        let spacing = Duration::from_millis(20);
        Self {
            start,
            per_source: per_source.max(1),
            spacing,
            gap: spacing * per_source.max(1) as u32 + Duration::from_millis(100),
            sources: (0..members).collect(),
        }
    }

    /// Send times of the `i`-th source's packets.
    pub fn times(&self, i: usize) -> Vec<Time> {
        let first = self.start + self.gap * i as u32;
        (0..self.per_source)
            .map(|k| first + self.spacing * k as u32)
            .collect()
    }

    /// When the last burst has had time to arrive everywhere (two seconds after it left).
    pub fn end(&self) -> Time {
        self.start + self.gap * self.sources.len() as u32 + Duration::from_secs(2)
    }
}

/// Overlay edges `(from, to)` each packet crossed, keyed by the packet's send time (µs).
pub type Copies = BTreeMap<u64, Vec<(usize, usize)>>;

/// Copies of burst packets over overlay edges, keyed by send time: a drop filter that drops
/// nothing and remembers.
#[derive(Debug, Clone, Default)]
pub struct CopyTap {
    copies: Rc<RefCell<Copies>>,
}

impl CopyTap {
    /// A filter for the simulator that records every message `key` names (a send time at or
    /// after `from`) and drops nothing.
    pub fn filter<M: 'static>(
        &self,
        from: Time,
        key: impl Fn(&M) -> Option<u64> + 'static,
    ) -> DropFilter<M> {
        let copies = Rc::clone(&self.copies);
        let from = from.as_micros();
        Box::new(move |sender, receiver, msg| {
            if let Some(k) = key(msg).filter(|&k| k >= from) {
                copies
                    .borrow_mut()
                    .entry(k)
                    .or_default()
                    .push((sender, receiver));
            }
            false
        })
    }

    /// What was recorded so far.
    pub fn copies(&self) -> Copies {
        self.copies.borrow().clone()
    }
}

/// Figures of the bursts.
#[derive(Debug, Clone, Default)]
pub struct BurstFigures {
    /// RDP of every (source, reached receiver) pair, from each source's last packet.
    pub rdp: Distribution,
    /// Link stress of every (source, used link) pair, from each source's last packet.
    pub stress: Histogram,
    /// Resource usage summed over the sources' last packets, ms.
    pub ru_ms: f64,
    /// IP multicast's resource usage over the same sources, ms.
    pub ip_ru_ms: f64,
    /// Receivers reached by each source's last packet, summed.
    pub reached: usize,
    /// Live receivers expected, summed.
    pub expected: usize,
    /// Payload copies that reached a member that already had the packet (every burst packet).
    pub duplicates: u64,
    /// Payload copies sent (every burst packet).
    pub copies: u64,
    /// Burst packets sent.
    pub packets: u64,
}

impl BurstFigures {
    /// Measure the bursts of `plan` from the tap's `copies` and first `arrivals`
    /// (`(member, key, at)`); `live(m)` says whether `m` is expected to receive.
    pub fn measure(
        net: &Network,
        refs: &References,
        plan: &BurstPlan,
        copies: &Copies,
        arrivals: &[(usize, u64, Time)],
        live: impl Fn(usize) -> bool,
    ) -> Self {
        let mut first: BTreeMap<(u64, usize), Time> = BTreeMap::new();
        for &(m, key, at) in arrivals {
            first
                .entry((key, m))
                .and_modify(|t| *t = (*t).min(at))
                .or_insert(at);
        }
        let mut f = Self::default();
        let mut rdp = Vec::new();
        let mut counter = StressCounter::default();
        for (i, &source) in plan.sources.iter().enumerate() {
            let times = plan.times(i);
            for t in &times {
                f.packets += 1;
                let edges = copies.get(&t.as_micros()).map_or(&[][..], Vec::as_slice);
                let mut got: Vec<usize> = edges
                    .iter()
                    .map(|&(_, to)| to)
                    .filter(|&to| to != source)
                    .collect();
                got.sort_unstable();
                got.dedup();
                f.copies += edges.len() as u64;
                f.duplicates += (edges.len() - got.len()) as u64;
            }
            let Some(last) = times.last() else {
                continue;
            };
            let key = last.as_micros();
            for r in (0..net.members()).filter(|&r| r != source && live(r)) {
                f.expected += 1;
                if let Some(at) = first.get(&(key, r)) {
                    f.reached += 1;
                    let delay = at.as_micros().saturating_sub(key);
                    let unicast = net.unicast_delay_micros(source, r).max(1);
                    rdp.push(delay as f64 / unicast as f64);
                }
            }
            let edges = copies.get(&key).map_or(&[][..], Vec::as_slice);
            if let Some(st) = copies_stress(net, edges, &mut counter) {
                f.stress.merge(&st.histogram);
                f.ru_ms += st.resource_usage_ms;
                f.ip_ru_ms += refs.ip_ru_ms.get(source).copied().unwrap_or(0.0);
            }
        }
        f.rdp = Distribution::new(rdp);
        f
    }

    /// Resource usage over IP multicast's, if defined.
    pub fn ru_ratio(&self) -> Option<f64> {
        (self.ip_ru_ms > 0.0).then(|| self.ru_ms / self.ip_ru_ms)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::CommonArgs;

    fn small_net() -> Network {
        CommonArgs {
            topology: "waxman:routers=60,links=150,seed=1".to_owned(),
            members: 3,
            seed: 1,
            access: "fixed:up=100mbps,down=100mbps,delay=1ms".to_owned(),
            out: None,
        }
        .network()
        .unwrap()
    }

    #[test]
    fn copies_count_duplicates_and_first_arrivals_give_the_rdp() {
        let net = small_net();
        let refs = References::compute(&net);
        let plan = BurstPlan {
            sources: vec![0],
            ..BurstPlan::every_member(3, Time::from_secs(10), 2)
        };
        let times = plan.times(0);
        assert_eq!(times.len(), 2);
        let (first, last) = (times[0].as_micros(), times[1].as_micros());
        let mut copies = Copies::new();
        // First packet: a chain 0 -> 1 -> 2 and a second copy 0 -> 2, and one back to the source.
        copies.insert(first, vec![(0, 1), (1, 2), (0, 2), (2, 0)]);
        // Last packet: a chain.
        copies.insert(last, vec![(0, 1), (1, 2)]);
        let d01 = net.unicast_delay_micros(0, 1);
        let d12 = net.unicast_delay_micros(1, 2);
        let at = |key: u64, delay: u64| Time::from_micros(key + delay);
        let arrivals = vec![
            (1, last, at(last, d01)),
            (2, last, at(last, d01 + d12)),
            // A later copy does not count as the arrival.
            (2, last, at(last, d01 + d12 + 5_000)),
        ];
        let f = BurstFigures::measure(&net, &refs, &plan, &copies, &arrivals, |_| true);
        assert_eq!((f.packets, f.copies, f.duplicates), (2, 6, 2));
        assert_eq!((f.reached, f.expected), (2, 2));
        let rdp = f.rdp.sorted();
        assert!(
            (rdp[0] - 1.0).abs() < 1e-9,
            "member 1 hears the source directly"
        );
        let via = (d01 + d12) as f64 / net.unicast_delay_micros(0, 2).max(1) as f64;
        assert!((rdp[1] - via).abs() < 1e-9, "{rdp:?} against {via}");
        assert!(f.stress.max().is_some_and(|s| s >= 1));
        assert!(
            f.ru_ratio().is_some_and(|r| r >= 1.0 - 1e-9),
            "{:?}",
            f.ru_ratio()
        );
    }

    #[test]
    fn a_receiver_the_last_packet_missed_is_unreached() {
        let net = small_net();
        let refs = References::compute(&net);
        let plan = BurstPlan::every_member(3, Time::from_secs(1), 1);
        let key = plan.times(0)[0].as_micros();
        let arrivals = vec![(1, key, Time::from_micros(key + 1_000))];
        let f = BurstFigures::measure(&net, &refs, &plan, &Copies::new(), &arrivals, |m| m != 2);
        // Source 0 reaches 1 of its 1 live receiver; sources 1 and 2 (1 and 2 live receivers)
        // reach nobody.
        assert_eq!(f.expected, 1 + 1 + 2);
        assert_eq!(f.reached, 1);
    }
}
