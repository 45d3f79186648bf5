//! Narada's settings, in one part per concern ([`RoutingConfig`], [`BandwidthConfig`],
//! [`MembershipConfig`], [`RepairConfig`], [`MeshConfig`], [`DataConfig`]) gathered by
//! [`NaradaConfig`]. Every default says why it is what it is. Experiments override any subset
//! from JSON with the fields' flat names, as before the split (each part is flattened).

use std::time::Duration;

use overlay_core::Bandwidth;
use serde::{Deserialize, Serialize};

use crate::metric::MetricKind;

/// Settings of a Narada member.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NaradaConfig {
    /// How routes are chosen and advertised: the metric, the tolerance that keeps noise from
    /// switching routes, and the batching of route news.
    #[serde(flatten)]
    pub routing: RoutingConfig,
    /// How link bandwidth is measured (passively from rate reports, actively by probes) and
    /// what it is measured against.
    #[serde(flatten)]
    pub bandwidth: BandwidthConfig,
    /// Membership news: the heartbeat, refreshes, joining, leaving, and the size of what a
    /// member accepts.
    #[serde(flatten)]
    pub membership: MembershipConfig,
    /// Finding dead members and healing partitions: pings, the partition queue, probes, and how
    /// long the dead are remembered.
    #[serde(flatten)]
    pub repair: RepairConfig,
    /// The mesh: degree bounds, and the rules that add, drop and swap links.
    #[serde(flatten)]
    pub mesh: MeshConfig,
    /// The data plane: the repair buffer and when gaps are asked for.
    #[serde(flatten)]
    pub data: DataConfig,
    /// Seed of this member's randomness.
    pub seed: u64,
}

/// How routes are chosen and advertised: the metric, the tolerance that keeps noise from
/// switching routes, and the batching of route news.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RoutingConfig {
    /// What routes, utility and consensus cost optimise: latency (Narada's default), or
    /// bandwidth then latency (conferencing), bandwidth only, or random weights (baselines).
    pub metric: MetricKind,
    /// Delay before route changes are sent, so a burst of changes goes out in one update (a
    /// route's new next hop and every neighbour of a withdrawal are told at once regardless).
    /// 200 ms against 50: `run narada-dynamics` at 128 members, seeds 1-5, control 10.5 -> 9.9
    /// kbit/s per member (the partition's 17.9 -> 12.8), repair p50 / max alike (0.83 / 2.10
    /// against 0.79 / 2.16 s); at 512, seeds 2-3, 53.7 -> 49.8 (the partition's 114 -> 61), the
    /// partition repaired 6.5 -> 3.5 s after the heal; `run narada --members 1024 --duration
    /// 40s` in 0.85 of the wall time; trees (`run narada` seeds 1-5) and `run conferencing`
    /// (one sender seeds 1-5, four senders seeds 1-8) within the seeds' noise. The price: `run
    /// narada --members 512`, seeds 1-3, settled control 12.1 -> 12.7 kbit/s per member (30.4
    /// -> 31.2 over the run with its joins), still under the goal of 16.
    pub update_delay: Duration,
    /// A route is switched only to one cheaper by more than this fraction (plus `switch_floor`),
    /// and re-advertised only when its cost moves by more: small latency differences and noise
    /// cause no route changes.
    pub switch_fraction: f64,
    /// With a bandwidth metric, paths of equal bandwidth level whose latencies differ by less
    /// than this fraction count as equal (the conferencing paper ignores small latency
    /// differences so noise causes no route changes); 10% keeps trees steady on a latency
    /// matrix whose RTTs jitter by a few percent.
    pub tie_fraction: f64,
    /// Absolute part of the switching tolerance.
    pub switch_floor: Duration,
    /// With a bandwidth metric, a route at least half as wide as the stream moves to a wider
    /// path only when it is wider by more than this many bandwidth levels (a narrower route
    /// takes any wider path). A full relay's offer moves by a level whenever it gains or loses
    /// a child stream, so with several senders download-limited members hopped between relays
    /// every few seconds and lost media at each move. `run conferencing --senders 4`, seeds
    /// 1-16, worst receiver: mean 0.864 -> 0.891, lowest 0.443 -> 0.581 with 1 (against 0).
    pub switch_levels: u16,
    /// Paths as wide as the best and at most this fraction longer (or `switch_floor`) count as
    /// nearly as good, and among them a member routes through its nearest neighbour, keeping
    /// its current next hop while that path stays among them (0: the best path, with the
    /// switching tolerance). Trees then hop between nearby members instead of each member
    /// taking its own long link to a far source, whose copies cross the same physical links.
    /// Off by default: it trades latency for resource usage and stays within the noise of
    /// seeds. `run narada` seed 1 on CAIDA AS3215, 0 / 0.1 / 0.2 / 0.3: RU 1.88 / 1.87 / 1.82 /
    /// 1.79, RDP p90 3.06 / 3.12 / 3.24 / 3.28, worst stress 16 / 15 / 15 / 15; on Waxman-1024
    /// RU 1.17 / 1.16 / 1.13 at RDP p90 2.12 / 2.19 / 2.27. `run conferencing` seeds 1-5,
    /// bandwidth-latency's mean RU over the MST 1.45 / 1.55 / 1.48 / 1.40. With trees that come
    /// back from a congestion episode's detours (a variant of `reprobe_links` in which any
    /// probe replaced an estimate over 10 s old), seeds 1-10 under two protocol seeds each:
    /// 1.42 at 0 against 1.39 at 0.3 (at or under 1.5 in 15 and 17 runs of 20), RTT p90 279
    /// against 286 ms.
    pub near_fraction: f64,
    /// Every this many heartbeats (three: about every 30 s) each member sends its neighbours
    /// a digest of its route table, and a neighbour whose copy differs asks for the whole
    /// table: route news lost on the way is repaired without sending every table every time
    /// (see `Core::send_route_digests`).
    pub route_check_heartbeats: u64,
    /// Longest path accepted in a route; longer ones are dropped as absurd.
    pub max_path_len: usize,
    /// With a bandwidth metric, the one-way latency past which a path is worth no bandwidth:
    /// live media that arrives after its playout deadline is not played, so a wide detour
    /// through many relays is worse than a narrower path in time. `None` (the conferencing
    /// paper's metric) ranks paths by width alone, however long.
    pub delay_budget: Option<Duration>,
}

impl Default for RoutingConfig {
    fn default() -> Self {
        Self {
            metric: MetricKind::Latency,
            update_delay: Duration::from_millis(200),
            switch_fraction: 0.02,
            tie_fraction: 0.1,
            switch_floor: Duration::from_micros(500),
            switch_levels: 1,
            near_fraction: 0.0,
            route_check_heartbeats: 3,
            max_path_len: 64,
            delay_budget: None,
        }
    }
}

/// How link bandwidth is measured (passively from rate reports, actively by probes) and what it
/// is measured against.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BandwidthConfig {
    /// The stream rate bandwidth levels are measured against (a level is
    /// `stream_rate / bandwidth_levels`; anything at or above the rate is full). The
    /// conferencing paper's sources sent 1.2 or 2.4 Mbit/s.
    pub stream_rate: Bandwidth,
    /// Bandwidth levels up to the stream rate: 10 makes a level 10% of the rate, so bandwidth
    /// noise under a level never changes a route.
    pub bandwidth_levels: u16,
    /// How often a member tells each neighbour how much data it sent it (passive estimation).
    pub rate_interval: Duration,
    /// Length of an active bandwidth probe (sent at no more than the stream rate). A quarter
    /// second at 2.4 Mbit/s costs 75 kB, so probes are few: only for candidates that could
    /// help, never while this member's own access link is the bottleneck.
    pub probe_duration: Duration,
    /// A link whose bandwidth level is below full and that carries no data is probed again
    /// this often, so a recovered link is noticed.
    pub reprobe_interval: Duration,
    /// This member's upload capacity, if known: with a bandwidth metric, it bounds the child
    /// streams this member forwards across all sources (see `upload_share`) and its degree
    /// (between the minimum and maximum degree).
    pub upload: Option<Bandwidth>,
    /// The share of the upload that carries child streams (the rest is headroom for packet
    /// headers, keyframe bursts, control and probes). With a known upload and a bandwidth
    /// metric, a member forwards at most `upload * upload_share / stream_rate` child streams
    /// across all sources before it tells its neighbours it is full.
    ///
    /// 0.9 gave the best receivers in `run conferencing --senders 4` over seeds 1-4
    /// (receivers' mean and worst, averaged over the seeds: 0.965/0.917, against 0.960/0.902
    /// at 0.85, 0.959/0.898 at 0.8 and 0.959/0.911 at 0.95, the simulator's edges then asking
    /// 64 kbit/s above what they offered); on seeds 5-8 it tied 0.85 and adapted better to the
    /// congestion episode. Not tuned again since; with shedding per stream and offers in
    /// whole slots (d705d00) the same runs give 0.980/0.933 on seeds 1-4 and 0.978/0.942 on
    /// seeds 5-8.
    pub upload_share: f64,
    /// This member's download capacity, if known: when what arrives reaches it, the access
    /// link is the bottleneck and probing others cannot help, so no probes are sent.
    pub download: Option<Bandwidth>,
    /// The driver splits `download` among the parents sending this member media (each told
    /// its share, and its pacer keeps under it): then a full download means the download is
    /// the bottleneck, and a download shared by several streams is as narrow for each as its
    /// share. A member reads each stream's links against that share (see
    /// `Core::narrow_download`). Off where nothing splits the download (the simulator's
    /// conferencing model: there "full" can also mean one parent is congested while others
    /// fill the download, and the rule lowered `--senders 4`'s worst receiver, 12 runs, mean
    /// 0.838 -> 0.800); the runtime turns it on with a known download.
    pub download_shared: bool,
}

impl Default for BandwidthConfig {
    fn default() -> Self {
        Self {
            stream_rate: Bandwidth::from_kbps(1200),
            bandwidth_levels: 10,
            rate_interval: Duration::from_secs(2),
            probe_duration: Duration::from_millis(250),
            reprobe_interval: Duration::from_secs(60),
            upload: None,
            upload_share: 0.9,
            download: None,
            download_shared: false,
        }
    }
}

/// Membership news: the heartbeat, refreshes, joining, leaving, and the size of what a member
/// accepts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MembershipConfig {
    /// A member increments its own sequence number this often: the liveness heartbeat that
    /// spreads through the mesh. Ten seconds costs each link a few bytes per member per period.
    pub heartbeat_interval: Duration,
    /// How often membership changes are sent to neighbours. One second keeps news moving at a
    /// hop per second while batching many changes into one message.
    pub refresh_interval: Duration,
    /// Most entries accepted in one table or update; larger ones are dropped as hostile.
    pub max_table_entries: usize,
    /// How long a joining member waits for an answer before asking other members.
    pub join_retry: Duration,
    /// A leaving member keeps forwarding this long after announcing its leave, while the
    /// others reroute around it.
    pub leave_grace: Duration,
}

impl Default for MembershipConfig {
    fn default() -> Self {
        Self {
            heartbeat_interval: Duration::from_secs(10),
            refresh_interval: Duration::from_secs(1),
            max_table_entries: 65_536,
            join_retry: Duration::from_secs(2),
            leave_grace: Duration::from_secs(5),
        }
    }
}

/// Finding dead members and healing partitions: pings, the partition queue, probes, and how
/// long the dead are remembered.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RepairConfig {
    /// Ping interval to each neighbour (RTT for routing, and liveness).
    pub ping_interval: Duration,
    /// Consecutive unanswered pings, with nothing else heard from the neighbour meanwhile (no
    /// message, no [`overlay_core::LinkEvent::Heard`] from the transport), after which it is
    /// declared dead (3 s at 1 s pings: far beyond a normal RTT, short enough
    /// that data resumes quickly).
    pub dead_after_lost_pings: u32,
    /// A stream that stops arriving from its upstream for this long (or, if longer, twice its
    /// smoothed gap between packets plus four deviations) has that upstream pinged at once, and
    /// again as soon as each ping goes unanswered, instead of at the ping interval. The evidence
    /// for a death is the same (`dead_after_lost_pings` unanswered pings); it is only gathered
    /// sooner when the data says something is wrong, so a crashed relay is found in about a
    /// second rather than three ping intervals. An upstream that answers is left alone (the
    /// silence is further up). Zero turns this off.
    pub silence_probe_after: Duration,
    /// Tm: a member whose sequence number has not advanced for this long enters the partition
    /// queue Q. It must exceed the heartbeat interval plus the time news takes to cross the mesh
    /// (about a refresh interval per hop).
    pub member_timeout: Duration,
    /// A member that has sat in Q this long is probed for certain (the paper's forced probe).
    pub queue_max_wait: Duration,
    /// Period of the partition-repair check (probe the head of Q with probability |Q| / N).
    pub repair_interval: Duration,
    /// How long an unanswered repair or improvement probe waits before it counts as failed.
    pub probe_timeout: Duration,
    /// A member found dead first hand is probed again in case it was only cut off, after
    /// waits that double from twice `repair_interval` up to this bound, each drawn at random
    /// between half and all of its nominal length. Members that lost their links across a
    /// partition at the same moment used to probe in step (2, 6, 14, 30 s after, then every
    /// 30 s), so a partition healed just after a round waited for the next one. Measured with
    /// `run narada-dynamics` (a 20 s partition), this bound and jitter against 30 s and none:
    /// at 32 members, seeds 1-16, the partition repaired 1.75 s after the heal on average (at
    /// most 2) against 5.75 (at most 13), delivery below the 0.999 goal on 1 seed against 6,
    /// control 0.99x; seeds 17-32, not used to choose the bound, 1.75 (2) against 4.94 (13),
    /// below 0.999 on none against 4; at 128, seeds 1-4, 2.0 s against 2.75, control 0.99x; at
    /// 512, seeds 2 and 3, 2.0 s against 4.0 and 3.0, control 0.97x and 0.99x. The price: a
    /// crashed member is probed by each former neighbour about every 6 s until it is forgotten
    /// (`dead_retention`).
    pub suspect_reprobe_max: Duration,
    /// Dead members are remembered this long, so a stale refresh cannot resurrect them. It must
    /// exceed the time old news can take to cross a partitioned mesh; five minutes is generous.
    pub dead_retention: Duration,
}

impl Default for RepairConfig {
    fn default() -> Self {
        Self {
            ping_interval: Duration::from_secs(1),
            dead_after_lost_pings: 3,
            silence_probe_after: Duration::from_millis(200),
            member_timeout: Duration::from_secs(40),
            queue_max_wait: Duration::from_secs(40),
            repair_interval: Duration::from_secs(1),
            probe_timeout: Duration::from_secs(3),
            suspect_reprobe_max: Duration::from_secs(8),
            dead_retention: Duration::from_secs(300),
        }
    }
}

/// The mesh: degree bounds, and the rules that add, drop and swap links.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MeshConfig {
    /// Fewest mesh neighbours a member keeps; below it, it adds links without asking for a
    /// utility gain. Three keeps the mesh connected through any single failure (the paper's
    /// simulations used a fanout range of 3 to 6).
    pub min_degree: usize,
    /// Most mesh neighbours a member accepts. It bounds the copies a member sends (the stress on
    /// its own uplink) and its control traffic. Six is the paper's upper fanout.
    pub max_degree: usize,
    /// Period of mesh improvement: probing random non-neighbours for a better link.
    pub improve_interval: Duration,
    /// Non-neighbours queried per improvement period. One: a member adds at most one link per
    /// period, so routes settle between additions and concurrent additions do not pile up.
    pub improve_candidates: usize,
    /// Members pinged per improvement period to learn latencies (members with a known latency
    /// are the candidates most likely to make a good link). 32 pings of ~30 bytes per period
    /// map a 128-member group in its first 12 seconds; after that only new members are pinged.
    pub explore_per_tick: usize,
    /// Links beyond the first are chosen only once this fraction of the other members'
    /// latencies are known, so early links are not chosen blind (the join link carries the
    /// member meanwhile).
    pub explore_first: f64,
    /// Spanner rule: a non-neighbour whose mesh route is more than this many times longer than
    /// its direct latency is a candidate for a link, nearest first (a greedy spanner with
    /// stretch 2 and degree 6 gives RDP p90 under 2 and resource usage near IP multicast's on
    /// the Narada paper's map, computed centrally; this is its distributed form).
    pub stretch_add: f64,
    /// How fast the latency horizon of spanner candidates grows after a member starts (one-way
    /// latency per second): links are tried shortest first, as in a greedy spanner, instead of
    /// all at once. 0.5 ms/s reaches the typical 30 ms link of a continent-wide group in a
    /// minute (the 5-seed mean RDP p90 on the Narada map is slightly better than without it).
    pub horizon_growth: Duration,
    /// Spanner drop rule: a link whose other end the mesh reaches within this many times its
    /// latency without it is redundant and dropped (longest first). Below `stretch_add`, so a
    /// link just added by the spanner rule is not dropped next.
    pub stretch_drop: f64,
    /// A link made to join or repair is provisional: it is dropped once the mesh reaches its
    /// other end within `stretch_add` times the direct latency without it.
    pub provisional_links: bool,
    /// A member at maximum degree (or asked by one) swaps its least useful link for a new one
    /// whose utility exceeds this many times the old link's consensus cost.
    pub swap_ratio: f64,
    /// A link this member dropped, or asked for and was refused, is not asked for again within
    /// this time, so add/drop decisions cannot oscillate.
    pub readd_holdoff: Duration,
    /// Period of the drop check (at most one link dropped per period).
    pub drop_interval: Duration,
    /// A link younger than this is never dropped, so a new link gets time to attract routes.
    pub link_min_age: Duration,
    /// Add threshold: utility needed to add a link is `add_base + add_per_member × N`, scaled up
    /// as either end nears its maximum degree (see [`MeshConfig::add_threshold`]).
    pub add_base: f64,
    /// See `add_base`.
    pub add_per_member: f64,
    /// Drop threshold: a link whose consensus cost (members routed over it, by the end that
    /// uses it most) is below `drop_per_member × N / degree` is dropped. Kept below the add
    /// threshold so a link just added is not dropped next (stability).
    pub drop_per_member: f64,
    /// A link whose value (the utility it would have if added now) is below this, and that the
    /// other end routes few members over, is dropped. Below the spanner rule's gate
    /// (`add_base`), so a link just added for its utility is not dropped next.
    pub drop_value: f64,
}

impl Default for MeshConfig {
    fn default() -> Self {
        Self {
            min_degree: 3,
            max_degree: 6,
            improve_interval: Duration::from_secs(3),
            improve_candidates: 1,
            explore_per_tick: 32,
            explore_first: 0.75,
            stretch_add: 2.0,
            horizon_growth: Duration::from_micros(500),
            stretch_drop: 1.9,
            provisional_links: true,
            swap_ratio: 2.0,
            readd_holdoff: Duration::from_secs(120),
            drop_interval: Duration::from_secs(10),
            link_min_age: Duration::from_secs(30),
            add_base: 1.0,
            add_per_member: 0.02,
            drop_per_member: 0.25,
            drop_value: 0.5,
        }
    }
}

/// The data plane: the repair buffer and when gaps are asked for.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DataConfig {
    /// Data packets kept per source for repairing receivers' gaps after a route change.
    pub recovery_packets: usize,
    /// How long after a gap appears a receiver first asks its upstream to fill it.
    pub nack_delay: Duration,
    /// Gaps older than this are not asked for, and packets kept longer than this are not
    /// resent: live media that late is no longer played, and resending it would crowd out the
    /// current packets on a link that just had to drop some.
    pub repair_age: Duration,
    /// The least important drop class that is resent on request (0 is kept longest). Rate
    /// adaptation sheds the least important classes first; resending them into the link that
    /// just shed them is dropped again and asked for again, a storm that crowds out current
    /// packets. The default, 1, repairs keyframes and the base layer: what a decoder needs.
    pub max_repair_class: u8,
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            recovery_packets: 1024,
            nack_delay: Duration::from_millis(100),
            repair_age: Duration::from_millis(2000),
            max_repair_class: 1,
        }
    }
}

impl MeshConfig {
    /// Utility a candidate link must exceed, for a group of `members` where this end has
    /// `degree` neighbours and the other `other_degree`.
    ///
    /// The base grows with the group (a link is worth more members' improvement in a larger
    /// group) and is multiplied by `1 + 3 f²` for the fuller end, `f` its fill between minimum
    /// and maximum degree: a member with spare degree takes good links easily, a nearly full one
    /// only very good ones.
    pub fn add_threshold(&self, members: usize, degree: usize, other_degree: usize) -> f64 {
        let base = self.add_base + self.add_per_member * members as f64;
        let fill = |d: usize| {
            let span = self.max_degree.saturating_sub(self.min_degree).max(1) as f64;
            (d.saturating_sub(self.min_degree) as f64 / span).clamp(0.0, 1.0)
        };
        let f = fill(degree).max(fill(other_degree));
        base * (1.0 + 3.0 * f * f)
    }

    /// Consensus cost below which a link may be dropped, for a group of `members` where this end
    /// has `degree` neighbours.
    pub fn drop_threshold(&self, members: usize, degree: usize) -> f64 {
        self.drop_per_member * members as f64 / degree.max(1) as f64
    }
}

/// One-way path latency past which a conversation's tree path counts as worth no bandwidth:
/// 400 ms of mouth-to-ear budget less room for queueing and the receiver's jitter buffer.
pub const CONVERSATION_DELAY_BUDGET: Duration = Duration::from_millis(300);

/// Time between a conversation member's pings to each mesh neighbour. Three unanswered pings
/// declare a neighbour dead (the third waits out a backed-off timeout of 800 ms), so a
/// neighbour that vanishes is routed around 1.4-2 s later instead of 2.8-3.8 s at the default
/// one-second pings; the pings cost about 3 kbit/s per neighbour, little beside a video.
pub const CONVERSATION_PING_INTERVAL: Duration = Duration::from_millis(400);

/// Oldest media a conversation member still asks for or resends.
pub const CONVERSATION_REPAIR_AGE: Duration = Duration::from_millis(400);

impl NaradaConfig {
    /// These settings with a live conversation's timing, as `esm conference` runs (and the
    /// simulator when it is compared with it): a conversation plays what arrives within about
    /// 400 ms of being said (ITU-T G.114's mouth-to-ear budget), so repairs older than
    /// [`CONVERSATION_REPAIR_AGE`] only take a slow link's room from current media, paths past
    /// [`CONVERSATION_DELAY_BUDGET`] carry nothing that plays, and it cannot wait three seconds
    /// for a dead neighbour's routes to go ([`CONVERSATION_PING_INTERVAL`]). The defaults are
    /// the papers' (one-second pings, two-second repairs), for their figures.
    #[must_use]
    pub fn for_conversation(mut self) -> Self {
        self.data.repair_age = CONVERSATION_REPAIR_AGE;
        self.routing.delay_budget = Some(CONVERSATION_DELAY_BUDGET);
        self.repair.ping_interval = CONVERSATION_PING_INTERVAL;
        self
    }

    /// How many child streams this member's upload carries across all sources (`None`: the
    /// upload is not known, so no limit).
    pub fn child_slots(&self) -> Option<usize> {
        let b = &self.bandwidth;
        let up = b.upload?.bps_f64() * b.upload_share.clamp(0.0, 1.0);
        Some((up / b.stream_rate.bps_f64().max(1.0)).floor() as usize)
    }

    /// The bandwidth level each of `streams` child streams gets of the whole streams this
    /// member's upload carries ([`Self::child_slots`]; 0 with an unknown upload or none), kept
    /// below the full level: what a full member offers (see
    /// [`crate::message::UploadRoom::level`]). Counted in whole streams, not in raw upload:
    /// otherwise a 1 Mbit/s member carrying two 400 kbit/s streams told newcomers they would
    /// get nine tenths of the rate, as much as a full relay ten times its size, and sources
    /// on slow uploads collected children they then dropped packets to. Measured
    /// (`run conferencing --senders 20 --rate 400kbps`, seeds 1-12, with shedding per stream):
    /// worst pair's share of its fair share 0.907 on average against 0.871, at least 0.9 on
    /// 10 seeds of 12 against 6.
    pub fn stream_level(&self, streams: usize) -> u16 {
        let b = &self.bandwidth;
        let levels = b.bandwidth_levels.max(1);
        let Some(slots) = self.child_slots() else {
            return 0;
        };
        let per_stream = slots as f64 / streams.max(1) as f64;
        let level = (per_stream * f64::from(levels)).floor();
        (level.max(0.0) as u16).min(levels - 1)
    }

    /// The degree bound of this member: `max_degree`, lowered with a bandwidth metric and a
    /// known upload to the child streams the upload carries (never below `min_degree`). Which
    /// neighbours get which streams is left to admission ([`Self::child_slots`]): with several
    /// sources a neighbour need not take every stream from this member, so the bound does not
    /// divide by the number of streams (that made meshes of degree 3 and trees too deep for
    /// the conversational delay budget).
    pub fn degree_bound(&self) -> usize {
        match (self.routing.metric.uses_bandwidth(), self.child_slots()) {
            (true, Some(slots)) => slots.clamp(self.mesh.min_degree, self.mesh.max_degree),
            _ => self.mesh.max_degree,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_members_stream_level_shares_its_upload_and_stays_below_full() {
        let mut config = NaradaConfig::default();
        config.bandwidth.stream_rate = Bandwidth::from_kbps(2400);
        assert_eq!(config.stream_level(1), 0, "no known upload");
        config.bandwidth.upload = Some(Bandwidth::from_mbps(30));
        config.bandwidth.upload_share = 0.85;
        // 30 Mbit/s x 0.85 = 25.5: ten streams fill it, an eleventh would get 9/10 of the rate.
        assert_eq!(config.child_slots(), Some(10));
        assert_eq!(config.stream_level(11), 9);
        assert_eq!(config.stream_level(20), 5);
        assert_eq!(config.stream_level(1), 9, "never the full level");
        // Counted in whole streams: 4 Mbit/s x 0.85 = 3.4 is one stream, shared by two gives
        // each half (not 3.4 / 2 / 2.4, seven tenths).
        config.bandwidth.upload = Some(Bandwidth::from_mbps(4));
        assert_eq!(config.child_slots(), Some(1));
        assert_eq!(config.stream_level(2), 5);
        // 1 Mbit/s of upload carries no whole stream: nothing to offer, the last resort.
        config.bandwidth.upload = Some(Bandwidth::from_mbps(1));
        assert_eq!(config.child_slots(), Some(0));
        assert_eq!(config.stream_level(1), 0);
    }

    #[test]
    fn thresholds_grow_with_group_and_degree() {
        let c = NaradaConfig::default();
        assert!(c.mesh.add_threshold(128, 3, 3) > c.mesh.add_threshold(16, 3, 3));
        assert!(c.mesh.add_threshold(128, 5, 3) > c.mesh.add_threshold(128, 3, 3));
        assert!(c.mesh.add_threshold(128, 3, 6) > c.mesh.add_threshold(128, 3, 4));
        assert!(c.mesh.drop_threshold(128, 3) > c.mesh.drop_threshold(128, 6));
    }

    #[test]
    fn the_json_of_a_config_has_the_flat_names_of_before_the_split_and_reads_back() {
        let c = NaradaConfig::default();
        let json = serde_json::to_value(&c).unwrap();
        let object = json.as_object().unwrap();
        for key in [
            "metric",
            "stream_rate",
            "max_degree",
            "heartbeat_interval",
            "nack_delay",
            "seed",
        ] {
            assert!(object.contains_key(key), "{key} missing from {json}");
        }
        assert_eq!(object.len(), 56, "every setting, flat");
        let back: NaradaConfig = serde_json::from_value(json).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn partial_json_takes_defaults() {
        let c: NaradaConfig = serde_json::from_str("{\"max_degree\": 8}").unwrap();
        assert_eq!(c.mesh.max_degree, 8);
        assert_eq!(c.mesh.min_degree, 3);
        assert_eq!(c.membership.heartbeat_interval, Duration::from_secs(10));
        assert_eq!(c.routing.metric, MetricKind::Latency);
    }
}
