//! Overcast's settings, each default with its reason.

use std::time::Duration;

use overlay_core::{Bandwidth, NodeId};
use serde::{Deserialize, Serialize};

/// Settings of an Overcast node.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct OvercastConfig {
    /// The linear roots, top first: the first live one is the root; each is the only child of
    /// the one above, so each holds the full table. Nodes join under the last.
    pub roots: Vec<NodeId>,
    /// A child checks in with its parent this often.
    pub check_in_interval: Duration,
    /// Send news up this soon after it arises instead of waiting for the next check-in (`None`:
    /// the paper's way, news rides the periodic check-ins only).
    pub news_delay: Option<Duration>,
    /// A child silent for this long is dead, with its subtree (five check-ins: a lost message
    /// is not a death, and its orphans, which notice at their own check-ins after the parent
    /// timeout, are adopted well before it runs out, so the root hears of one death and not of
    /// a whole subtree dying and being born again: on GEANT, 200 nodes, seed 1, the ten
    /// failures cost 17.8 root certificates each with four check-ins, 3.7 with five).
    pub lease: Duration,
    /// A parent that has not answered a check-in for this long is lost: the child climbs its
    /// ancestors. Shorter than the lease, so orphans are adopted by their grandparent before it
    /// declares their parent dead, and only the real death travels up.
    pub parent_timeout: Duration,
    /// When the stream from the parent stops for this long (or, if longer, twice the smoothed
    /// gap between its arrivals plus four deviations), check in with the parent at once, and
    /// again after each check-in it leaves unanswered (each given this long, or two round trips
    /// if longer, to be answered); after `silent_parent_check_ins` of them in a row with nothing
    /// heard from the parent, it is lost. A dead parent is then found in about a second instead
    /// of the parent timeout and up to a check-in, from the same evidence: unanswered
    /// check-ins. A parent that answers is left alone until its stream flows again (the
    /// silence is further up). Zero: off, a parent is lost only by the parent timeout
    /// (transit-stub, 600 nodes, 60 failing at once, seeds 1-3: rejoin p50 / p99 2.6 / 3.1-3.5
    /// s off, 0.77 / 1.27-1.30 s on).
    pub silence_check_in_after: Duration,
    /// Check-ins in a row left unanswered during a silence of the stream after which the parent
    /// is lost (see `silence_check_in_after`; at least one).
    pub silent_parent_check_ins: u32,
    /// A node that lost its parent to unanswered check-ins (see `silence_check_in_after`) tells
    /// its grandparent, which asks that child to check in at once, again after each request
    /// left unanswered (each given twice `silence_check_in_after`), and after
    /// `silent_parent_check_ins` of them in a row with nothing heard (and no sooner than a
    /// check-in interval and a request's wait after the first, so a live child's own check-in
    /// lands in that time even when the requests wait behind content), holds it dead as if its
    /// lease had run out: the root's table then drops a dead node in a second or two instead of
    /// the lease. A child that stops acknowledging the bytes sent to it is checked likewise. A
    /// child with entries still under it is held dead no sooner than `parent_timeout` after its
    /// check began, so its orphans reattach first. Off, or with the watch off, a dead child goes
    /// by its lease alone (transit-stub, 600 nodes, 60 failing at once, seeds 1-3: the root's
    /// table exact 6-7 s after the failure off, 3 s on; root certificates per failure
    /// 1.63-2.23 off, 1.60-1.95 on).
    pub check_silent_children: bool,
    /// Bandwidths within this fraction count as equal (the paper's 10%): a node moves under a
    /// child only if that does not cost more than this.
    pub equal_fraction: f64,
    /// A re-evaluation's "as good and closer" move also needs the new parent this much nearer
    /// (round-trip time) than the current one, beside the equality band. Without it a node
    /// near its parent keeps moving for a few hundred microseconds, which real measurements
    /// cannot tell from jitter, and a large tree never settles (transit-stub, 2000 nodes,
    /// seed 1: two thirds of the moves made 300 s and more after the last join gained under
    /// 1 ms, and the tree never went 60 s without a move). The price is a little network
    /// load: 1.19-1.20 of IP multicast without the floor, 1.24-1.28 with it, at 2000 nodes,
    /// seeds 1-3.
    pub closer_floor: Duration,
    /// Most children of a candidate measured in one round.
    pub max_probed_children: usize,
    /// How long a bandwidth measurement sends, when the driver measures the steady rate (the
    /// default: a short probe would measure transport ramp-up, not the path).
    pub probe_duration: Duration,
    /// The most a probe may send at.
    pub probe_rate: Bandwidth,
    /// Measure instead as the paper did: the time to fetch this many bytes over the data path
    /// (it fetched 10 kB, which on a long, fat path measures round-trip time more than bandwidth).
    pub probe_bytes: Option<u64>,
    /// During a join, compare each child with the best bandwidth seen on the way down, not only
    /// with its own parent's: the paper's per-round rule may give up 10% at every level.
    pub cumulative_floor: bool,
    /// Cap each candidate's measured last hop by its own bandwidth from the root (reported in
    /// check-ins and `Children` answers), so a path is judged end to end; the paper judged the
    /// last hop alone.
    pub use_path_bandwidth: bool,
    /// At each re-evaluation, and once during a join, also measure this many live nodes drawn
    /// from the root's table (which covers the whole tree; half of them the nodes whose landmark
    /// time is nearest this node's), so a node finds a near, equally good parent in another
    /// branch; 0 keeps the paper's candidate's children, parent, grandparent and siblings only.
    /// 16 rather than 8 finds near parents sooner for about 1.8 times the measurements
    /// (transit-stub, seeds 1-3: at 600 nodes bandwidth fraction 0.98 -> 0.996-0.998 and
    /// network load no higher; at 2000 the tree settled 37 rounds after the last join on
    /// average instead of 47).
    pub sample_size: usize,
    /// Re-evaluation moves under a sibling only if it is clearly better (beyond the equality
    /// band), as good and closer than the parent, or no farther, losing nothing and with a
    /// clearly wider hop (the parent's shared upload is the limit); the paper moved under any
    /// sibling as good, which lengthens paths and lets nodes trade places forever.
    pub strict_moves: bool,
    /// A join goes down only to a child no farther (round-trip time) than the current
    /// candidate (nodes on one router are equally far; a chain of them keeps each upload for one
    /// child); the paper went down to any child as good, wherever it was.
    pub descend_closer: bool,
    /// With strict moves, still move under a sibling (listed by the parent, not sampled) that
    /// gives up no bandwidth at all, however far: it takes a flow off the parent's links. Off by
    /// default: on transit-stub maps it lowered the bandwidth fraction and raised the load
    /// (nodes moved under far siblings and back).
    pub lossless_down_moves: bool,
    /// Remember the nodes measured nearest; at each re-evaluation ask one of them for its own
    /// list (a new nearest first, then the others in turn) and have the root's sample report a
    /// few of them (with fresh bandwidth from the root), so a node finds the nodes of its
    /// neighbourhood in other branches. Off: the root's sample alone (half by landmark time,
    /// half at random).
    pub near_discovery: bool,
    /// With strict moves, a node as good under its grandparent that lies on the way from the
    /// grandparent to its parent (by the round-trip times it measured and the one its parent
    /// reports) moves up ahead of the parent, which then finds it closer and follows below it:
    /// the way out of a parent whose own flow crosses the links to this node's children twice.
    pub move_ahead_of_parent: bool,
    /// How often a node re-evaluates its place against its parent, grandparent and siblings.
    pub reevaluate_interval: Duration,
    /// How long a node waits for an answer (children list, adoption) before trying elsewhere.
    pub answer_timeout: Duration,
    /// How long a node without a parent (an orphan climbing its ancestors, or a join whose
    /// target failed) waits for each next adoption answer, or three round trips to the lowest
    /// root if that is longer (a wide-area path may need a connection set up first). Shorter
    /// than the lease, twice over: an orphan whose grandparent died too reaches a live ancestor
    /// before that one declares the orphan's subtree dead, so the root hears no death and
    /// rebirth of every node in it.
    pub climb_timeout: Duration,
    /// Changed extra information is reported up at most this often.
    pub extra_interval: Duration,
    /// Content counts as changed extra information once it grew by this much (a live stream
    /// grows all the time; reporting every byte would flood the root); so does the first byte
    /// held once it advanced by this much (a bounded memory slides with the stream), while a
    /// first byte that went back is reported at once.
    pub content_report_step: u64,
    /// Most certificates one check-in carries (the rest wait for the next).
    pub max_certificates_per_check_in: usize,
    /// Most content bytes a node keeps (oldest dropped first; late joiners then start there).
    pub store_limit: u64,
    /// Most content bytes a node sends a child beyond what the child acknowledged. Two
    /// mebibytes keep a 40 Mbit/s path with a 400 ms round trip full, and are far below what the
    /// runtime queues for one peer (4096 frames of the ~12 kB chunks a root publishes), so the
    /// queue never overflows and a child never sees a gap it cannot get filled.
    pub send_window: u64,
    /// A child acknowledges what arrived at most this long after it arrived (and at once after
    /// a quarter of the window), so its parent's window keeps moving.
    pub ack_delay: Duration,
    /// A parent that sent bytes no acknowledgement covers, and heard of no progress for this
    /// long, sends again from what was acknowledged (the bytes were lost on the way).
    pub resend_after: Duration,
    /// The stream this node starts (a root: a number that differs from any earlier stream's,
    /// chosen by the driver); 0 for a node that takes its stream from its parent.
    pub stream: u64,
    /// Resume a stream: `(stream, byte)`: the node held the stream up to `byte` before (in its
    /// driver's store) and asks its parent to go on from there.
    pub resume: Option<(u64, u64)>,
    /// Seed of this node's randomness.
    pub seed: u64,
}

impl Default for OvercastConfig {
    fn default() -> Self {
        Self {
            roots: Vec::new(),
            check_in_interval: Duration::from_secs(1),
            news_delay: Some(Duration::from_millis(20)),
            lease: Duration::from_secs(5),
            parent_timeout: Duration::from_secs(2),
            silence_check_in_after: Duration::from_millis(200),
            silent_parent_check_ins: 3,
            check_silent_children: true,
            equal_fraction: 0.1,
            closer_floor: Duration::from_millis(1),
            max_probed_children: 16,
            probe_duration: Duration::from_millis(100),
            probe_rate: Bandwidth::from_mbps(1000),
            probe_bytes: None,
            cumulative_floor: true,
            use_path_bandwidth: true,
            sample_size: 16,
            strict_moves: true,
            descend_closer: true,
            lossless_down_moves: false,
            near_discovery: true,
            move_ahead_of_parent: true,
            reevaluate_interval: Duration::from_secs(20),
            answer_timeout: Duration::from_secs(2),
            climb_timeout: Duration::from_millis(500),
            extra_interval: Duration::from_secs(10),
            content_report_step: 16 << 20,
            max_certificates_per_check_in: 4096,
            store_limit: 1 << 30,
            send_window: 2 << 20,
            ack_delay: Duration::from_millis(200),
            resend_after: Duration::from_secs(2),
            stream: 0,
            resume: None,
            seed: 0,
        }
    }
}
