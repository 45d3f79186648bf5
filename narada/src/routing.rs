//! Path-vector routing over the mesh.
//!
//! Each member advertises to its neighbours, for every destination, its metric (see
//! [`crate::metric`]), its latency and the whole path. A member keeps every neighbour's advertisements (so it can fail over at once when a
//! neighbour dies) and picks, per destination, the cheapest path through a neighbour. A path that
//! contains the member itself is never used, so routing loops and counting to infinity cannot
//! happen; such paths are still kept, because they say which neighbours route *through* this
//! member, which is what reverse-path forwarding needs.
//!
//! Paths alone do not stop a *transient* cycle: a neighbour may pick this member on stale news
//! while this member picks it. So a new next hop must also be *feasible* (as in EIGRP's DUAL):
//! its advertised cost must be below the lowest cost this member has had since it last reset
//! (its feasible distance). Along any chain of next hops, feasible distances then strictly
//! fall, so no chain can close into a cycle even with stale news. When no neighbour is
//! feasible, the route goes *active*: it is withdrawn, and only once no neighbour routes
//! through this member any more (or a hold time passes) is the feasible distance reset and the
//! best route taken.

use std::collections::{BTreeMap, BTreeSet};

use overlay_core::{NodeId, Time};
use smallvec::SmallVec;

use crate::members::{SELF_SLOT, Slot};
use crate::metric::{MetricKind, PathMetric};
use crate::slot_map::SlotMap;

/// Members along a path, in order, kept inline up to [`INLINE_HOPS`] of them: routing scans
/// the paths of every neighbour's advertisement for a destination on each recompute, and a
/// path on the heap costs a cache miss per advertisement.
pub type Hops = SmallVec<[Slot; INLINE_HOPS]>;

/// Hops kept inline in a [`Hops`]: at 512 members (`run narada --members 512`) advertised
/// paths are 7 long at the median and at most 12 for 96% of them.
pub const INLINE_HOPS: usize = 12;

/// A usable route.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// The neighbour packets go to.
    pub next_hop: Slot,
    /// Its quality in the routing metric.
    pub metric: PathMetric,
    /// Its latency, microseconds.
    pub latency_us: u32,
    /// The members from the next hop to the destination, inclusive.
    pub path: Hops,
}

/// A neighbour's advertised route to a destination, in this member's slots.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Advert {
    /// Its quality in the routing metric, from the neighbour.
    pub metric: PathMetric,
    /// Latency from the neighbour, microseconds.
    pub latency_us: u32,
    /// The members after the neighbour, ending at the destination.
    pub path: Hops,
}

impl Advert {
    /// Whether the neighbour's path starts at this member (it routes through this member).
    pub fn starts_here(&self) -> bool {
        self.path.first() == Some(&SELF_SLOT)
    }
}

/// Take neighbour `n` out of `dest`'s entry in a through-me index.
fn unindex(through_me: &mut SlotMap<Vec<Slot>>, dest: Slot, n: Slot) {
    if let Some(list) = through_me.get_mut(dest) {
        list.retain(|&m| m != n);
        if list.is_empty() {
            through_me.remove(dest);
        }
    }
}

/// Why an advertisement was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdvertError {
    /// Longer than the limit.
    TooLong,
    /// A member appears twice, or the advertiser appears in its own path.
    Loop,
    /// The path does not end at the destination.
    WrongEnd,
}

/// A neighbour link as routing sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkCost {
    /// The link's metric.
    pub metric: PathMetric,
    /// One-way latency, microseconds.
    pub latency_us: u32,
    /// The neighbour is leaving: use its routes only when nothing else reaches a destination.
    pub leaving: bool,
    /// The neighbour's upload carries all the child streams it can: a route through it is worth
    /// no bandwidth to a member not already its child for that destination (admission control
    /// across all the streams a member forwards).
    pub full: bool,
    /// The neighbour is over its upload and asks this member to move the routes to other
    /// sources that pass through it, child or not.
    pub shed: bool,
    /// The same for the route to the neighbour's own stream.
    pub shed_own: bool,
    /// With `full`: the bandwidth level a stream through the neighbour gets (see
    /// [`crate::message::UploadRoom::level`]); it caps the width of routes a new or shed
    /// child would take through it.
    pub room_level: u16,
}

/// Tolerance below which cost changes do not switch routes or trigger advertisements.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tolerance {
    /// Relative part.
    pub fraction: f64,
    /// Absolute part, microseconds.
    pub floor_us: u32,
    /// With a bandwidth metric, bandwidth levels by which a wider path must exceed the current
    /// one's width to replace it (0: any wider path does) ...
    pub width_levels: u16,
    /// ... when the current path is at least this wide (a narrower one takes any wider path).
    pub width_levels_from: u16,
    /// Paths as wide as the best and at most this fraction longer count as nearly as good, and
    /// among them the one through the nearest neighbour is taken (0: the best path, with
    /// hysteresis). Only for latency-based metrics.
    pub near_fraction: f64,
}

impl Tolerance {
    /// None at all: any better route wins (for tests).
    #[cfg(test)]
    pub(crate) const EXACT: Self = Self {
        fraction: 0.0,
        floor_us: 0,
        width_levels: 0,
        width_levels_from: 0,
        near_fraction: 0.0,
    };

    /// The distance by which a route must be shorter than one of `cost` to replace it.
    pub(crate) fn of(&self, cost: u32) -> u32 {
        ((f64::from(cost) * self.fraction) as u32).saturating_add(self.floor_us)
    }

    /// The longest distance a path as wide as `best` may have to count as nearly as good, if
    /// this tolerance prefers near neighbours for `kind`.
    fn near_bound(&self, kind: MetricKind, best: PathMetric) -> Option<u32> {
        let latency_based = matches!(kind, MetricKind::Latency | MetricKind::BandwidthLatency);
        (latency_based && self.near_fraction > 0.0).then(|| {
            let slack = (f64::from(best.dist) * self.near_fraction) as u32;
            best.dist.saturating_add(slack.max(self.floor_us))
        })
    }

    /// The levels by which a path must be wider than `current` to replace it.
    fn width_margin(&self, current: u16) -> u16 {
        if current >= self.width_levels_from {
            self.width_levels
        } else {
            0
        }
    }
}

/// One advertised route, digested by member ids (slots differ between members) with FNV-1a, so
/// both ends compute the same number on any platform. Digests of routes add up (wrapping), so
/// the order of a table does not matter.
fn entry_digest(
    dest: &NodeId,
    metric: PathMetric,
    latency_us: u32,
    path: &[Slot],
    id_of: &impl Fn(Slot) -> Option<NodeId>,
) -> u64 {
    let mut hash = crate::fnv::Fnv1a::new();
    hash.eat(dest.as_bytes());
    hash.eat(&metric.width.to_le_bytes());
    hash.eat(&metric.dist.to_le_bytes());
    hash.eat(&latency_us.to_le_bytes());
    for &hop in path {
        // A hop with no known id makes the digest differ, and the table is asked for.
        hash.eat(&id_of(hop).map_or([0u8; 32], |id| *id.as_bytes()));
    }
    hash.finish()
}

/// Longest a route stays active (withdrawn) waiting for neighbours to stop routing through this
/// member: a few round trips; normally their withdrawals arrive far sooner.
const ACTIVE_HOLD: std::time::Duration = std::time::Duration::from_secs(1);

/// Distance added to routes through a leaving neighbour (ten seconds' worth of latency: never
/// chosen over a real alternative of the same width).
const LEAVING_PENALTY: u32 = 10_000_000;

/// The routing state of one member.
#[derive(Clone, Debug, Default)]
pub struct RoutingTable {
    kind: MetricKind,
    /// Per neighbour, its advertisements by destination.
    rib_in: BTreeMap<Slot, SlotMap<Advert>>,
    /// Per destination, the neighbours whose advertised path to it starts at this member, in
    /// slot order: an index of `rib_in`, read for every data packet forwarded.
    through_me: SlotMap<Vec<Slot>>,
    best: SlotMap<Route>,
    advertised: SlotMap<(PathMetric, u32, Hops)>,
    /// Feasible distance per destination: the best metric since the route last went active.
    feasible: SlotMap<PathMetric>,
    /// Destinations whose route went active (withdrawn, waiting for neighbours to stop using
    /// this member) and since when.
    active: BTreeMap<Slot, Time>,
    /// One-way latency, microseconds, past which a path's width counts as zero.
    delay_budget_us: Option<u32>,
}

impl RoutingTable {
    /// An empty table routing by `kind`.
    pub fn new(kind: MetricKind) -> Self {
        Self {
            kind,
            ..Self::default()
        }
    }

    /// With a bandwidth metric, count paths longer than `budget` (one way) as worth no
    /// bandwidth. Still monotone: a path's latency only grows as it is extended, so a path
    /// over the budget never becomes better by extension, which loop-freedom rests on.
    pub fn with_delay_budget(mut self, budget: Option<std::time::Duration>) -> Self {
        self.delay_budget_us = budget.map(|b| u32::try_from(b.as_micros()).unwrap_or(u32::MAX));
        self
    }

    /// The metric this table routes by.
    pub fn kind(&self) -> MetricKind {
        self.kind
    }

    /// Take in neighbour `from`'s advertisement for `dest` (`None` withdraws).
    pub fn apply(
        &mut self,
        from: Slot,
        dest: Slot,
        advert: Option<Advert>,
        max_len: usize,
    ) -> Result<(), AdvertError> {
        let table = self.rib_in.entry(from).or_default();
        let Some(advert) = advert else {
            if table.remove(dest).is_some_and(|a| a.starts_here()) {
                unindex(&mut self.through_me, dest, from);
            }
            return Ok(());
        };
        if advert.path.len() > max_len {
            return Err(AdvertError::TooLong);
        }
        match advert.path.last() {
            None if dest != from => return Err(AdvertError::WrongEnd),
            Some(&last) if last != dest => return Err(AdvertError::WrongEnd),
            _ => {}
        }
        // Paths are short (at most `max_len`): a pairwise check costs less than a set.
        let path = &advert.path;
        if path
            .iter()
            .enumerate()
            .any(|(i, &s)| s == from || path[..i].contains(&s))
        {
            return Err(AdvertError::Loop);
        }
        let here = advert.starts_here();
        let was_here = table.insert(dest, advert).is_some_and(|a| a.starts_here());
        match (was_here, here) {
            (false, true) => {
                let list = self.through_me.get_or_insert_with(dest, Vec::new);
                if let Err(at) = list.binary_search(&from) {
                    list.insert(at, from);
                }
            }
            (true, false) => unindex(&mut self.through_me, dest, from),
            _ => {}
        }
        Ok(())
    }

    /// Forget everything neighbour `n` advertised.
    pub fn remove_neighbour(&mut self, n: Slot) {
        if let Some(table) = self.rib_in.remove(&n) {
            for (d, a) in table.iter() {
                if a.starts_here() {
                    unindex(&mut self.through_me, d, n);
                }
            }
        }
    }

    /// Forget a purged member everywhere.
    pub fn forget(&mut self, slot: Slot) {
        let through_me = &mut self.through_me;
        for (&n, table) in &mut self.rib_in {
            table.retain(|d, a| {
                let keep = d != slot && !a.path.contains(&slot);
                if !keep && a.starts_here() {
                    unindex(through_me, d, n);
                }
                keep
            });
        }
        self.through_me.remove(slot);
        self.best.remove(slot);
        self.advertised.remove(slot);
        self.feasible.remove(slot);
        self.active.remove(&slot);
    }

    /// Recompute best routes over `links`, using only paths whose members are all `routable`.
    /// Returns the destinations whose advertisement must change.
    pub fn recompute(
        &mut self,
        now: Time,
        links: &BTreeMap<Slot, LinkCost>,
        routable: impl Fn(Slot) -> bool,
        tolerance: Tolerance,
    ) -> Vec<Slot> {
        // Every destination anything names, in slot order, marked in one pass over each table.
        let end = links
            .keys()
            .chain(self.active.keys())
            .map(|&s| s as usize + 1)
            .chain(self.rib_in.values().map(SlotMap::end))
            .chain([self.best.end(), self.advertised.end()])
            .max()
            .unwrap_or(0);
        let mut named = vec![false; end];
        let mut mark = |s: Slot| named[s as usize] = true;
        links.keys().copied().for_each(&mut mark);
        for table in self.rib_in.values() {
            table.keys().for_each(&mut mark);
        }
        self.best.keys().for_each(&mut mark);
        self.advertised.keys().for_each(&mut mark);
        self.active.keys().copied().for_each(&mut mark);
        let dests = (0..end).filter(|&s| named[s]).map(|s| s as Slot);
        self.recompute_each(now, dests, links, routable, tolerance)
    }

    /// Recompute the routes to `dests` only (after adverts for them changed); returns those
    /// whose advertisement must change.
    pub fn recompute_dests(
        &mut self,
        now: Time,
        dests: &BTreeSet<Slot>,
        links: &BTreeMap<Slot, LinkCost>,
        routable: impl Fn(Slot) -> bool,
        tolerance: Tolerance,
    ) -> Vec<Slot> {
        self.recompute_each(now, dests.iter().copied(), links, routable, tolerance)
    }

    /// Recompute the routes to `dests`, in the order given; returns those whose advertisement
    /// must change.
    fn recompute_each(
        &mut self,
        now: Time,
        dests: impl IntoIterator<Item = Slot>,
        links: &BTreeMap<Slot, LinkCost>,
        routable: impl Fn(Slot) -> bool,
        tolerance: Tolerance,
    ) -> Vec<Slot> {
        let mut changed = Vec::new();
        for d in dests {
            if d == SELF_SLOT {
                continue;
            }
            let route = self.decide(now, d, links, &routable, tolerance);
            match route {
                Some(route) => {
                    let kind = self.kind;
                    let fd = self.feasible.get_or_insert_with(d, || route.metric);
                    if kind.compare(route.metric, *fd).is_lt() {
                        *fd = route.metric;
                    }
                    self.best.insert(d, route);
                }
                None => {
                    self.best.remove(d);
                }
            }
            if self.update_advert(d, tolerance) {
                changed.push(d);
            }
        }
        changed
    }

    /// The route to `d`, honouring feasibility and the active state.
    fn decide(
        &mut self,
        now: Time,
        d: Slot,
        links: &BTreeMap<Slot, LinkCost>,
        routable: &impl Fn(Slot) -> bool,
        tolerance: Tolerance,
    ) -> Option<Route> {
        if !routable(d) {
            self.active.remove(&d);
            self.feasible.remove(d);
            return None;
        }
        if let Some(&since) = self.active.get(&d) {
            if self.used_by_neighbours(d, links) && now.saturating_since(since) < ACTIVE_HOLD {
                return None;
            }
            // Nobody depends on this member for `d` any more: start afresh.
            self.active.remove(&d);
            self.feasible.remove(d);
        }
        let had_route = self.best.contains_key(d);
        if !self.used_by_neighbours(d, links) {
            // Nobody depends on this member for `d`: no cycle can close through it, so the
            // feasible distance starts afresh and the best loop-free path is taken.
            self.feasible.remove(d);
            return self.choose(d, links, routable, tolerance, false);
        }
        if let Some(route) = self.choose(d, links, routable, tolerance, true) {
            return Some(route);
        }
        if had_route {
            // No feasible neighbour and some depend on this member: withdraw, and wait until
            // they stop routing through here.
            self.active.insert(d, now);
            return None;
        }
        self.feasible.remove(d);
        self.choose(d, links, routable, tolerance, false)
    }

    /// The earliest time an active route's hold ends.
    pub fn next_hold_end(&self) -> Option<Time> {
        self.active.values().map(|&since| since + ACTIVE_HOLD).min()
    }

    fn choose(
        &self,
        d: Slot,
        links: &BTreeMap<Slot, LinkCost>,
        routable: &impl Fn(Slot) -> bool,
        tolerance: Tolerance,
        feasible_only: bool,
    ) -> Option<Route> {
        let kind = self.kind;
        let current_hop = self.best.get(d).map(|r| r.next_hop);
        let mut chosen: Option<(PathMetric, u32, Slot)> = None;
        let mut current: Option<(PathMetric, u32)> = None;
        for (&n, link) in links {
            let Some((metric, latency)) =
                self.offer(d, n, link, routable, feasible_only, current_hop)
            else {
                continue;
            };
            if Some(n) == current_hop {
                current = Some((metric, latency));
            }
            if chosen.is_none_or(|(c, _, _)| kind.compare(metric, c).is_lt()) {
                chosen = Some((metric, latency, n));
            }
        }
        let (mut metric, mut latency, mut hop) = chosen?;
        let near = tolerance.near_bound(kind, metric);
        if let Some(near) = near {
            // Among paths nearly as good as the best, the one through the nearest neighbour:
            // the current one if it is among them, else the shortest link's.
            let in_window = |m: PathMetric| m.width >= metric.width && m.dist <= near;
            if let (Some((cur, cur_latency)), Some(cur_hop)) = (current, current_hop)
                && in_window(cur)
            {
                (metric, latency, hop) = (cur, cur_latency, cur_hop);
            } else {
                let mut nearest: Option<(u32, PathMetric, u32, Slot)> = None;
                for (&n, link) in links {
                    let Some((m, l)) = self.offer(d, n, link, routable, feasible_only, current_hop)
                    else {
                        continue;
                    };
                    if in_window(m)
                        && nearest
                            .is_none_or(|(nl, nm, _, _)| (link.latency_us, m.dist) < (nl, nm.dist))
                    {
                        nearest = Some((link.latency_us, m, l, n));
                    }
                }
                if let Some((_, m, l, n)) = nearest {
                    (metric, latency, hop) = (m, l, n);
                }
            }
        } else if let (Some((cur, cur_latency)), Some(cur_hop)) = (current, current_hop)
            && !kind.clearly_better(
                metric,
                cur,
                tolerance.of(cur.dist),
                tolerance.width_margin(cur.width),
            )
        {
            // Hysteresis: keep the current next hop unless the new one is clearly better.
            (metric, latency, hop) = (cur, cur_latency, cur_hop);
        }
        let mut path = Hops::new();
        path.push(hop);
        if d != hop {
            path.extend_from_slice(&self.rib_in.get(&hop)?.get(d)?.path);
        }
        Some(Route {
            next_hop: hop,
            metric,
            latency_us: latency,
            path,
        })
    }

    /// What a route to `d` through neighbour `n` would be worth to this member (`None`: not
    /// usable, or not feasible when `feasible_only`): a full relay's width is cut to the share
    /// a new child would get.
    fn offer(
        &self,
        d: Slot,
        n: Slot,
        link: &LinkCost,
        routable: &impl Fn(Slot) -> bool,
        feasible_only: bool,
        current_hop: Option<Slot>,
    ) -> Option<(PathMetric, u32)> {
        let kind = self.kind;
        let (metric, latency) = self.candidate(n, link, d, routable)?;
        if feasible_only && n != d {
            let fd = self.feasible.get(d).copied();
            let reported = self.rib_in.get(&n).and_then(|t| t.get(d)).map(|a| a.metric);
            if fd.is_some_and(|fd| reported.is_none_or(|r| !kind.compare(r, fd).is_lt())) {
                return None;
            }
        }
        let shed = if d == n { link.shed_own } else { link.shed };
        let metric = if link.full && kind.uses_bandwidth() && (shed || Some(n) != current_hop) {
            // Joining a full relay would take a share of the upload its streams already use:
            // the route is only as wide as that share.
            PathMetric {
                width: metric.width.min(link.room_level),
                ..metric
            }
        } else {
            metric
        };
        Some((metric, latency))
    }

    /// Bring the advertisement of `d` in line with its route; whether it changed.
    fn update_advert(&mut self, d: Slot, tolerance: Tolerance) -> bool {
        match (self.best.get(d), self.advertised.get(d)) {
            (None, None) => false,
            (None, Some(_)) => {
                self.advertised.remove(d);
                true
            }
            (Some(route), old) => {
                let differs = old.is_none_or(|(metric, _, path)| {
                    *path != route.path
                        || metric.width != route.metric.width
                        || metric.dist.abs_diff(route.metric.dist) > tolerance.of(metric.dist)
                });
                if differs {
                    self.advertised
                        .insert(d, (route.metric, route.latency_us, route.path.clone()));
                }
                differs
            }
        }
    }

    /// The metric and latency of the route to `d` through neighbour `n`, if usable.
    pub(crate) fn candidate(
        &self,
        n: Slot,
        link: &LinkCost,
        d: Slot,
        routable: &impl Fn(Slot) -> bool,
    ) -> Option<(PathMetric, u32)> {
        let penalty = if link.leaving { LEAVING_PENALTY } else { 0 };
        let mut link_metric = link.metric;
        link_metric.dist = link_metric.dist.saturating_add(penalty);
        let link_us = link.latency_us.max(1);
        if d == n {
            let metric = self.over_budget(PathMetric::ZERO.extend(link_metric), link_us);
            return Some((metric, link_us));
        }
        let advert = self.rib_in.get(&n)?.get(d)?;
        if advert.path.iter().any(|&s| s == SELF_SLOT || !routable(s)) {
            return None;
        }
        let latency = link_us.saturating_add(advert.latency_us);
        Some((
            self.over_budget(advert.metric.extend(link_metric), latency),
            latency,
        ))
    }

    /// `metric` with its width cut to zero if `latency_us` is past the delay budget.
    fn over_budget(&self, metric: PathMetric, latency_us: u32) -> PathMetric {
        match self.delay_budget_us {
            Some(budget) if self.kind.uses_bandwidth() && latency_us > budget => {
                PathMetric { width: 0, ..metric }
            }
            _ => metric,
        }
    }

    /// What neighbour `n` advertised for `dest`.
    pub fn advert_of(&self, n: Slot, dest: Slot) -> Option<&Advert> {
        self.rib_in.get(&n)?.get(dest)
    }

    /// A digest of every route this member advertises, its own included (`id_of` names
    /// slots): the same number a neighbour computes over what it holds from this member
    /// ([`RoutingTable::digest_from`]) when no route news was lost or refused on the way.
    pub fn advertised_digest(&self, id_of: impl Fn(Slot) -> Option<NodeId>) -> u64 {
        let own =
            id_of(SELF_SLOT).map_or(0, |id| entry_digest(&id, PathMetric::ZERO, 0, &[], &id_of));
        self.advertised
            .iter()
            .filter(|&(d, _)| d != SELF_SLOT)
            .filter_map(|(d, (metric, latency, path))| {
                Some(entry_digest(&id_of(d)?, *metric, *latency, path, &id_of))
            })
            .fold(own, u64::wrapping_add)
    }

    /// A digest of what neighbour `n` advertised to this member, comparable with the
    /// neighbour's own [`RoutingTable::advertised_digest`].
    pub fn digest_from(&self, n: Slot, id_of: impl Fn(Slot) -> Option<NodeId>) -> u64 {
        self.rib_in.get(&n).map_or(0, |table| {
            table
                .iter()
                .filter_map(|(d, a)| {
                    Some(entry_digest(
                        &id_of(d)?,
                        a.metric,
                        a.latency_us,
                        &a.path,
                        &id_of,
                    ))
                })
                .fold(0, u64::wrapping_add)
        })
    }

    /// What this member currently advertises for `dest` (`None`: unreachable): its metric,
    /// latency and path.
    pub fn advertised(&self, dest: Slot) -> Option<(PathMetric, u32, &[Slot])> {
        self.advertised
            .get(dest)
            .map(|(m, l, p)| (*m, *l, p.as_slice()))
    }

    /// Every destination currently advertised.
    pub fn advertised_dests(&self) -> impl Iterator<Item = Slot> + '_ {
        self.advertised.keys()
    }

    /// The route to `dest`.
    pub fn route(&self, dest: Slot) -> Option<&Route> {
        self.best.get(dest)
    }

    /// All routes.
    pub fn routes(&self) -> impl Iterator<Item = (Slot, &Route)> + '_ {
        self.best.iter()
    }

    /// Latency of the route to `dest`, if reachable.
    pub fn latency_to(&self, dest: Slot) -> Option<u32> {
        if dest == SELF_SLOT {
            return Some(0);
        }
        self.best.get(dest).map(|r| r.latency_us)
    }

    /// Metric of the route to `dest`, if reachable.
    pub fn metric_to(&self, dest: Slot) -> Option<PathMetric> {
        if dest == SELF_SLOT {
            return Some(PathMetric::ZERO);
        }
        self.best.get(dest).map(|r| r.metric)
    }

    /// Whether neighbour `n` routes to `source` through this member (its advertised path starts
    /// here): then this member forwards `source`'s packets to `n`.
    pub fn routes_through_me(&self, n: Slot, source: Slot) -> bool {
        self.routed_through_me(source).binary_search(&n).is_ok()
    }

    /// Whether a neighbour linked now routes to `d` through this member.
    fn used_by_neighbours(&self, d: Slot, links: &BTreeMap<Slot, LinkCost>) -> bool {
        self.routed_through_me(d)
            .iter()
            .any(|n| links.contains_key(n))
    }

    /// The neighbours that route to `source` through this member, in slot order (those
    /// [`RoutingTable::routes_through_me`] names).
    pub fn routed_through_me(&self, source: Slot) -> &[Slot] {
        let indexed = self.through_me.get(source).map_or(&[][..], Vec::as_slice);
        debug_assert!(
            indexed.iter().copied().eq(self
                .rib_in
                .iter()
                .filter(|(_, t)| t.get(source).is_some_and(Advert::starts_here))
                .map(|(&n, _)| n)),
            "through-me index out of step for source {source}"
        );
        indexed
    }

    /// Destinations this member reaches through neighbour `n`.
    pub fn count_via(&self, n: Slot) -> usize {
        self.best.values().filter(|r| r.next_hop == n).count()
    }

    /// Destinations neighbour `n` reaches through this member.
    pub fn count_through_me(&self, n: Slot) -> usize {
        self.rib_in.get(&n).map_or(0, |t| {
            t.values()
                .filter(|a| a.path.first() == Some(&SELF_SLOT))
                .count()
        })
    }

    /// The best route to `dest` that does not use neighbour `avoid` or cross it: its metric and
    /// latency.
    pub fn best_without(
        &self,
        dest: Slot,
        avoid: Slot,
        links: &BTreeMap<Slot, LinkCost>,
        routable: impl Fn(Slot) -> bool,
    ) -> Option<(PathMetric, u32)> {
        let kind = self.kind;
        links
            .iter()
            .filter(|&(&n, _)| n != avoid)
            .filter_map(|(&n, link)| {
                if n == dest {
                    return Some((PathMetric::ZERO.extend(link.metric), link.latency_us.max(1)));
                }
                let a = self.rib_in.get(&n)?.get(dest)?;
                avoids(&a.path, avoid, &routable).then(|| {
                    (
                        a.metric.extend(link.metric),
                        link.latency_us.max(1).saturating_add(a.latency_us),
                    )
                })
            })
            .min_by(|x, y| kind.compare(x.0, y.0))
    }

    /// Whether `dest` stays reachable without neighbour `avoid`: another neighbour in `links`
    /// advertises a usable path to it that does not cross `avoid`.
    pub fn reachable_without(
        &self,
        dest: Slot,
        avoid: Slot,
        links: &BTreeMap<Slot, LinkCost>,
        routable: impl Fn(Slot) -> bool,
    ) -> bool {
        links.keys().filter(|&&n| n != avoid).any(|&n| {
            n == dest
                || self
                    .rib_in
                    .get(&n)
                    .and_then(|t| t.get(dest))
                    .is_some_and(|a| avoids(&a.path, avoid, &routable))
        })
    }
}

/// Whether an advertised path is usable without `avoid`: no member before its end is `avoid`
/// (the end may be: a path *to* `avoid` that does not cross it), none is this member, and all
/// are routable.
fn avoids(path: &[Slot], avoid: Slot, routable: &impl Fn(Slot) -> bool) -> bool {
    let before_end = &path[..path.len().saturating_sub(1)];
    before_end.iter().all(|&s| s != avoid) && path.iter().all(|&s| s != SELF_SLOT && routable(s))
}

#[cfg(test)]
mod tests;
