//! The flow-level bandwidth model: max-min fair shares of every link among the flows crossing it.
//!
//! Progressive filling: all unfrozen flows grow at the same pace; a flow freezes when it reaches
//! its demand or when a channel it crosses is full. The result is the unique max-min fair
//! allocation, which is what long-lived TCP-friendly flows converge to, to first order.

/// One flow: the channels it crosses and the most it wants (`f64::INFINITY` if elastic).
#[derive(Clone, Debug, PartialEq)]
pub struct FlowDemand {
    /// Channels (directed links) crossed; a channel listed twice is charged once.
    pub channels: Vec<u32>,
    /// The highest rate the flow would use, in bits per second.
    pub demand: f64,
}

/// Max-min fair rates (bits per second) of `flows` over channels of the given `capacity`.
///
/// Every unfrozen flow has grown by the same steps from zero, so its rate is one number, the
/// level (the same additions in the same order, so the same bits as a rate per flow). A step
/// freezes the flows whose demand it met (found in demand order) and the flows of the channels
/// it filled (found through an index of flows per channel), rather than checking every flow.
pub fn max_min_fair(capacity: &[f64], flows: &[FlowDemand]) -> Vec<f64> {
    let mut rate = vec![0.0; flows.len()];
    let mut remaining: Vec<f64> = capacity.to_vec();
    let mut active = vec![0u32; capacity.len()];
    let mut paths: Vec<Vec<u32>> = Vec::with_capacity(flows.len());
    let mut frozen = vec![false; flows.len()];
    for (f, flow) in flows.iter().enumerate() {
        let mut channels = flow.channels.clone();
        channels.sort_unstable();
        channels.dedup();
        if flow.demand <= 0.0 {
            frozen[f] = true;
        } else {
            for &c in &channels {
                active[c as usize] += 1;
            }
        }
        paths.push(channels);
    }
    // The unfrozen flows of each channel, as ranges of one list (`on[start[c]..start[c + 1]]`).
    let mut start = vec![0usize; capacity.len() + 1];
    for (c, &n) in active.iter().enumerate() {
        start[c + 1] = start[c] + n as usize;
    }
    let mut on = vec![0usize; start[capacity.len()]];
    let mut fill = start.clone();
    for (f, path) in paths.iter().enumerate().filter(|&(f, _)| !frozen[f]) {
        for &c in path {
            on[fill[c as usize]] = f;
            fill[c as usize] += 1;
        }
    }
    // Flows with a finite demand, lowest first: the next to be satisfied leads.
    let mut by_demand: Vec<usize> = (0..flows.len())
        .filter(|&f| !frozen[f] && flows[f].demand.is_finite())
        .collect();
    by_demand.sort_by(|&a, &b| flows[a].demand.total_cmp(&flows[b].demand).then(a.cmp(&b)));
    let mut next_demand = 0;
    let mut unfrozen = frozen.iter().filter(|&&z| !z).count();
    // The channels some unfrozen flow still crosses: a large map's other links are never
    // scanned (the same arithmetic per channel as scanning them all, so the same rates).
    let mut used: Vec<usize> = (0..active.len()).filter(|&c| active[c] > 0).collect();
    let mut level = 0.0;
    let mut done: Vec<usize> = Vec::new();
    while unfrozen > 0 {
        used.retain(|&c| active[c] > 0);
        // The largest common increment before a channel fills or a flow is satisfied.
        let mut step = f64::INFINITY;
        for &c in &used {
            step = step.min(remaining[c].max(0.0) / f64::from(active[c]));
        }
        while by_demand.get(next_demand).is_some_and(|&f| frozen[f]) {
            next_demand += 1;
        }
        if let Some(&f) = by_demand.get(next_demand) {
            step = step.min(flows[f].demand - level);
        }
        if !step.is_finite() {
            // Elastic flows crossing no channel: unbounded; report infinity honestly.
            for (f, r) in rate.iter_mut().enumerate() {
                if !frozen[f] {
                    *r = f64::INFINITY;
                }
            }
            break;
        }
        level += step;
        for &c in &used {
            remaining[c] -= step * f64::from(active[c]);
        }
        done.clear();
        for &f in &by_demand[next_demand..] {
            if flows[f].demand * (1.0 - 1e-12) > level {
                break;
            }
            done.push(f);
        }
        for &c in &used {
            if remaining[c] <= capacity[c] * 1e-12 + 1e-9 {
                done.extend_from_slice(&on[start[c]..start[c + 1]]);
            }
        }
        for &f in &done {
            if frozen[f] {
                continue;
            }
            frozen[f] = true;
            rate[f] = level;
            unfrozen -= 1;
            for &c in &paths[f] {
                active[c as usize] -= 1;
            }
        }
    }
    rate
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn flow(channels: &[u32], demand: f64) -> FlowDemand {
        FlowDemand {
            channels: channels.to_vec(),
            demand,
        }
    }

    #[test]
    fn classic_example() {
        // Channel 0 (10) shared by flows A, B; channel 1 (4) shared by B, C.
        // B and C split channel 1 (2 each); A takes the rest of channel 0 (8).
        let rates = max_min_fair(
            &[10.0, 4.0],
            &[
                flow(&[0], f64::INFINITY),
                flow(&[0, 1], f64::INFINITY),
                flow(&[1], f64::INFINITY),
            ],
        );
        assert_eq!(rates, vec![8.0, 2.0, 2.0]);
    }

    #[test]
    fn demands_cap_flows_and_leave_room_for_others() {
        let rates = max_min_fair(
            &[10.0],
            &[flow(&[0], 1.0), flow(&[0], f64::INFINITY), flow(&[0], 0.0)],
        );
        assert_eq!(rates, vec![1.0, 9.0, 0.0]);
    }

    #[test]
    fn a_hundred_flows_out_of_one_uplink_share_it() {
        let flows: Vec<FlowDemand> = (0..100).map(|i| flow(&[0, 1 + i], f64::INFINITY)).collect();
        let mut capacity = vec![1e6];
        capacity.extend(std::iter::repeat_n(1e9, 100));
        let rates = max_min_fair(&capacity, &flows);
        assert!(rates.iter().all(|&r| (r - 1e4).abs() < 1e-6));
    }

    proptest! {
        /// No channel is over capacity, no flow exceeds its demand, and every flow is either
        /// satisfied or crosses a full channel on which it has a largest rate (max-min fairness).
        #[test]
        fn allocation_is_feasible_and_max_min_fair(
            capacity in proptest::collection::vec(1.0f64..100.0, 1..8),
            raw in proptest::collection::vec((proptest::collection::vec(0u32..8, 1..4), proptest::option::of(0.5f64..50.0)), 1..12),
        ) {
            let n = capacity.len() as u32;
            let flows: Vec<FlowDemand> = raw.iter().map(|(cs, d)| flow(&cs.iter().map(|c| c % n).collect::<Vec<_>>(), d.unwrap_or(f64::INFINITY))).collect();
            let rates = max_min_fair(&capacity, &flows);
            let mut load = vec![0.0; capacity.len()];
            for (f, fl) in flows.iter().enumerate() {
                let mut cs = fl.channels.clone(); cs.sort_unstable(); cs.dedup();
                for c in cs { load[c as usize] += rates[f]; }
                prop_assert!(rates[f] <= fl.demand + 1e-9);
            }
            for c in 0..capacity.len() { prop_assert!(load[c] <= capacity[c] * (1.0 + 1e-9)); }
            for (f, fl) in flows.iter().enumerate() {
                if rates[f] >= fl.demand - 1e-9 { continue; }
                let bottleneck = fl.channels.iter().any(|&c| {
                    let full = load[c as usize] >= capacity[c as usize] * (1.0 - 1e-9);
                    let largest = flows.iter().enumerate().filter(|(_, g)| g.channels.contains(&c)).all(|(g, _)| rates[g] <= rates[f] + 1e-9);
                    full && largest
                });
                prop_assert!(bottleneck, "flow {} at {} has no bottleneck", f, rates[f]);
            }
        }
    }
}
