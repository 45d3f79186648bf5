//! Dropping links: the paper's consensus cost, a link's value, and the spanner's redundancy
//! rule; never a link whose loss would partition the mesh as far as this member can tell.

use overlay_core::Time;

use super::Mesh;
use crate::core::Core;
use crate::members::Slot;
use crate::utility::{consensus_cost, link_value};

impl Mesh {
    /// Drop the least useful link if its consensus cost is below the drop threshold and the
    /// mesh stays connected as far as this member can tell.
    pub(crate) fn drop_tick(&mut self, cx: &mut Core, now: Time) {
        let degree = cx.neighbours.len();
        if degree <= cx.config.mesh.min_degree || cx.life.leaving_since.is_some() {
            return;
        }
        // The paper's rule: the consensus cost is below the drop threshold.
        if let Some((cost, n)) = weakest_link(cx, now, |n| consensus_cost(&cx.routing, n))
            && (cost as f64)
                < cx.config
                    .mesh
                    .drop_threshold(cx.members.alive_count(), degree)
        {
            cx.stats.links_dropped += 1;
            self.drop_link(cx, now, n);
            return;
        }
        // Value: a link whose loss would barely lengthen any route, and that the other end
        // routes few members over, is not worth a place in the degree bound.
        let links = cx.link_costs();
        let members = &cx.members;
        let value_of = |n| {
            link_value(
                cx.config.routing.metric,
                &cx.routing,
                &links,
                |s| members.is_routable(s),
                n,
            )
        };
        if let Some((value, n)) = weakest_link(cx, now, value_of) {
            let their_use = cx.routing.count_through_me(n) as f64;
            let threshold = cx
                .config
                .mesh
                .drop_threshold(cx.members.alive_count(), degree);
            if value < cx.config.mesh.drop_value && their_use < 2.0 * threshold {
                cx.stats.links_dropped += 1;
                self.drop_link(cx, now, n);
                return;
            }
        }
        // The spanner's drop rule: the longest link whose other end the mesh reaches within
        // `stretch_drop` times its latency without it (`stretch_add` for provisional links made
        // to join or repair) is redundant. `stretch_drop` < `stretch_add`, so a link added by
        // the spanner rule is not dropped next.
        let links = cx.link_costs();
        let members = &cx.members;
        let mut redundant: Vec<(u32, Slot)> = cx
            .neighbours
            .iter()
            .filter(|(_, nb)| {
                !nb.leaving && now.saturating_since(nb.since) >= cx.config.mesh.link_min_age
            })
            .filter_map(|(&n, nb)| {
                let direct = nb.cost_us().max(1);
                let (_, alternative) = cx
                    .routing
                    .best_without(n, n, &links, |s| members.is_routable(s))?;
                let stretch = if nb.provisional {
                    cx.config.mesh.stretch_add
                } else {
                    cx.config.mesh.stretch_drop
                };
                (f64::from(alternative) <= stretch * f64::from(direct)).then_some((direct, n))
            })
            .collect();
        redundant.sort_unstable_by(|a, b| b.cmp(a));
        // The longest redundant link goes; provisional ones all go (they were never chosen).
        for (i, &(_, n)) in redundant.iter().enumerate() {
            let provisional = cx.neighbours.get(&n).is_some_and(|nb| nb.provisional);
            if (i == 0 || provisional)
                && cx.neighbours.len() > cx.config.mesh.min_degree
                && partition_safe(cx, n)
            {
                cx.stats.links_dropped += 1;
                self.drop_link(cx, now, n);
            }
        }
    }
}

/// The link with the lowest `score` among those old enough, not leaving, and whose loss
/// leaves every member it carries reachable as far as this member can tell.
pub(super) fn weakest_link<T: PartialOrd + Copy>(
    cx: &Core,
    now: Time,
    score: impl Fn(Slot) -> T,
) -> Option<(T, Slot)> {
    let min_age = cx.config.mesh.link_min_age;
    let mut ranked: Vec<(T, Slot)> = cx
        .neighbours
        .iter()
        .filter(|(_, nb)| !nb.leaving && now.saturating_since(nb.since) >= min_age)
        .map(|(&n, _)| (score(n), n))
        .collect();
    ranked.sort_by(|a, b| {
        a.0.partial_cmp(&b.0)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(a.1.cmp(&b.1))
    });
    ranked.into_iter().find(|&(_, n)| partition_safe(cx, n))
}

/// Whether dropping the link to `n` leaves `n` and every member routed through it reachable
/// as far as this member can tell.
fn partition_safe(cx: &Core, n: Slot) -> bool {
    let links = cx.link_costs();
    let members = &cx.members;
    let routable = |s: Slot| members.is_routable(s);
    std::iter::once(n)
        .chain(
            cx.routing
                .routes()
                .filter(|(_, r)| r.next_hop == n)
                .map(|(d, _)| d),
        )
        .all(|d| cx.routing.reachable_without(d, n, &links, routable))
}
