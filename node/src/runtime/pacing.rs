//! Rate adaptation by dropping on each outgoing link, as the conferencing paper asks and the
//! simulator models: media sent as datagrams to a peer passes a [`PriorityPacer`] at the rate
//! the path sustains now, so an overloaded link drops enhancement layers first, then the base
//! layer, keyframes last, instead of queueing everything until it is stale and then dropping
//! whatever comes next. A slow receiver thus costs only its own link.
//!
//! The rate follows the path the way media congestion control does (delay first, then loss):
//! every tenth of a second it is read against the connection. A queue building (the round trip
//! grown well past the smallest seen, or datagrams standing in QUIC's own buffer through a
//! whole reading because the congestion window holds them back) cuts it a little; losses above
//! a tenth of the packets sent cut it in proportion, and a few percent hold it; one cut per
//! round trip. Otherwise it grows about 10% a second (faster on short round trips). It is
//! never above what QUIC's congestion window allows over the round trip: a window cut by
//! QUIC's own congestion control lowers it at the next reading, nor above the share of its
//! download the receiver last gave this link (see `receive_budget`), nor above this link's
//! share of the member's own upload (see `upload_budget`), nor above the operator's cap on the
//! link, if any. Where the path has room, the pacer drops nothing.

use std::collections::VecDeque;
use std::time::Duration;

use media::{Priority, PriorityPacer, ShedPackets};
use overlay_core::{Bandwidth, Time};

use super::receive_budget::SHARE_LIFETIME;

/// How often the rate is read against the connection.
const REFRESH: Duration = Duration::from_millis(100);
/// Queueing (round trip over the smallest seen) beyond this means the path is full.
const QUEUE_LIMIT: Duration = Duration::from_millis(25);
/// The cut when a queue builds.
const DELAY_CUT: f64 = 0.95;
/// Losses above this share of the packets sent since the last reading cut the rate (in
/// proportion, as media congestion control does: `1 - loss / 2`); between the two bounds the
/// rate holds; below the lower, losses are noise (a burst, a reordering) and the rate may grow.
const LOSS_CUT_ABOVE: f64 = 0.10;
const LOSS_HOLD_ABOVE: f64 = 0.02;
/// The growth otherwise, per reading: 1% (about 10% a second, as media congestion control
/// probes), plus a little so a slow start gets going.
const GROWTH: f64 = 1.01;
const GROWTH_STEP_BPS: f64 = 4_000.0;
/// The rate never falls below this (a link is probed by what is sent over it).
pub(super) const FLOOR_BPS: f64 = 64_000.0;
/// The smallest round trip is forgotten after this long (routes change).
const MIN_RTT_WINDOW: Duration = Duration::from_secs(10);

/// How long enhancement-layer media may wait in QUIC's datagram buffer, at the paced rate
/// (keyframes, a burst every few seconds of several frames' size that is worthless unless
/// whole, may wait as long as the buffer has room).
const BUFFER_TIME: Duration = Duration::from_millis(60);
/// How long base-layer media may wait there: long enough to wait behind a keyframe and still
/// play in a conversation's budget.
const BASE_BUFFER_TIME: Duration = Duration::from_millis(300);
/// How much of the rate a keyframe may borrow: a whole keyframe of a stream a few times the
/// link's rate goes out (it is worthless in part); the enhancement layers wait while the debt
/// is repaid, the base layer only past half of it (see `media::PriorityPacer`).
const KEYFRAME_DEBT: Duration = Duration::from_secs(1);
/// QUIC's buffer may always hold this much (four full datagrams).
const MIN_BUFFER: usize = 4 * 1200;

/// QUIC's datagram send buffer (set on every connection, see `transport::connect`).
pub const DATAGRAM_BUFFER: usize = 128 << 10;

/// What a connection says at one reading.
#[derive(Clone, Copy, Debug)]
struct Reading {
    /// Its smoothed round trip.
    rtt: Duration,
    /// Its congestion window, bytes.
    cwnd: u64,
    /// Packets it lost so far.
    lost: u64,
    /// Packets it sent so far.
    sent: u64,
    /// The fewest bytes of datagrams seen waiting in its send buffer since the last reading
    /// (a standing queue, not a burst on its way out).
    waiting: u64,
}

/// One peer's pacer and the state of its rate control.
#[derive(Debug)]
pub(super) struct LinkPacer {
    pacer: PriorityPacer,
    rate_bps: f64,
    refreshed: Option<Time>,
    /// The round trips read over the last [`MIN_RTT_WINDOW`], as a windowed minimum: each
    /// entry smaller than every later one, the oldest (the smallest) first.
    min_rtt: VecDeque<(Time, Duration)>,
    lost: u64,
    sent: u64,
    /// After a cut, no other until this time (the signals of one congestion event arrive over
    /// a round trip, and each would cut again).
    hold_until: Option<Time>,
    /// The fewest bytes seen waiting in QUIC's buffer since the last reading.
    least_waiting: Option<usize>,
    /// Datagrams refused because QUIC's buffer held too much already.
    refused_by_buffer: u64,
    /// The share of its download the receiver last said this link may fill, and when.
    share: Option<(Time, f64)>,
    /// The share of this member's own upload this link may fill (see `upload_budget`; `None`:
    /// the upload is not known).
    upload_share: Option<f64>,
    /// The operator's cap on this link (`None`: none).
    operator_limit: Option<f64>,
    /// The rate the link had when a cap lowered it: lifting the cap gives it back (the path
    /// did not narrow; growing back from the cap at 10% a second would take tens of seconds).
    before_limit: Option<f64>,
    /// The packets this link shed (see [`LinkPacer::admit`]).
    shed: ShedPackets,
}

impl LinkPacer {
    /// A pacer that has read nothing yet (it starts at what the congestion window allows).
    pub(super) fn new() -> Self {
        Self {
            pacer: PriorityPacer::new(Bandwidth::from_mbps(1000)).with_keyframe_debt(KEYFRAME_DEBT),
            rate_bps: 0.0,
            refreshed: None,
            min_rtt: VecDeque::new(),
            lost: 0,
            sent: 0,
            hold_until: None,
            least_waiting: None,
            refused_by_buffer: 0,
            share: None,
            upload_share: None,
            operator_limit: None,
            before_limit: None,
            shed: ShedPackets::default(),
        }
    }

    /// The same, capped by the operator at `bps` (`None`: no cap).
    pub(super) fn with_operator_limit(mut self, bps: Option<f64>) -> Self {
        self.set_operator_limit(bps);
        self
    }

    /// The operator caps this link at `bps` (`None`: lifts the cap); it applies at once, and
    /// lifting it gives the link back the rate it had before (the next reading bounds it by
    /// what the path allows then).
    pub(super) fn set_operator_limit(&mut self, bps: Option<f64>) {
        self.operator_limit = bps.map(|b| b.max(FLOOR_BPS));
        match self.operator_limit {
            Some(limit) if self.rate_bps > limit => {
                self.before_limit.get_or_insert(self.rate_bps);
                self.rate_bps = limit;
                self.pacer.set_rate(Bandwidth::from_bps_f64(limit));
            }
            Some(_) => {}
            None => {
                if let Some(before) = self.before_limit.take()
                    && before > self.rate_bps
                {
                    self.rate_bps = before;
                    self.pacer.set_rate(Bandwidth::from_bps_f64(before));
                }
            }
        }
    }

    /// The operator's cap on this link, if any.
    pub(super) fn operator_limit(&self) -> Option<f64> {
        self.operator_limit
    }

    /// The receiver says this link may fill `bps` of its download (see `receive_budget`):
    /// the rate stays at or under it until the share lapses.
    pub(super) fn set_share(&mut self, now: Time, bps: f64) {
        self.share = Some((now, bps.max(FLOOR_BPS)));
    }

    /// This member's own upload lets this link fill `bps` (`None`: no bound), renewed by the
    /// member every tick.
    pub(super) fn set_upload_share(&mut self, bps: Option<f64>) {
        self.upload_share = bps.map(|b| b.max(FLOOR_BPS));
    }

    /// The receiver's share, while it is fresh (else no bound).
    fn share_bps(&self, now: Time) -> f64 {
        self.share
            .filter(|&(at, _)| now.saturating_since(at) < SHARE_LIFETIME)
            .map_or(f64::INFINITY, |(_, bps)| bps)
    }

    /// Whether a datagram of `bytes` and `priority` goes out at `now` over `conn` (`false`: it
    /// is dropped; the link cannot carry it now). A datagram numbered `packet` (flow, sequence
    /// number) that this link shed before is a repair of it, and is dropped too: what rate
    /// adaptation shed is not resent into the link that shed it. Base packets are repaired
    /// (a decoder needs them), and on a link narrower than the base layer and its keyframes
    /// the repairs of what the pacer dropped came back through the same pacer, pushing out
    /// the next base packets, which were asked for again.
    pub(super) fn admit(
        &mut self,
        now: Time,
        conn: &quinn::Connection,
        bytes: usize,
        priority: Priority,
        packet: Option<(u64, u64)>,
    ) -> bool {
        if self.shed.refuses(packet) {
            return false;
        }
        let sent = self.admit_fresh(now, conn, bytes, priority);
        if !sent && let Some(p) = packet {
            self.shed.remember(p);
        }
        sent
    }

    /// Repairs of packets this link had shed, not sent.
    pub(super) fn repairs_refused(&self) -> u64 {
        self.shed.refused()
    }

    /// [`Self::admit`] for a packet this link has not shed.
    fn admit_fresh(
        &mut self,
        now: Time,
        conn: &quinn::Connection,
        bytes: usize,
        priority: Priority,
    ) -> bool {
        let waiting = DATAGRAM_BUFFER.saturating_sub(conn.datagram_send_buffer_space());
        let least = self.least_waiting.map_or(waiting, |l| l.min(waiting));
        self.least_waiting = Some(least);
        if self
            .refreshed
            .is_none_or(|t| now.saturating_since(t) >= REFRESH)
        {
            self.refreshed = Some(now);
            let stats = conn.stats();
            let reading = Reading {
                rtt: conn.rtt(),
                cwnd: stats.path.cwnd,
                lost: stats.path.lost_packets,
                sent: stats.path.sent_packets,
                waiting: least as u64,
            };
            self.least_waiting = None;
            self.adapt(now, reading);
            self.pacer.set_rate(Bandwidth::from_bps_f64(self.rate_bps));
        }
        // Whatever the rate says, media does not wait in QUIC's buffer (behind its congestion
        // window) for longer than it could still be played: less important media less long.
        if waiting + bytes > self.buffer_allowance(priority) {
            self.refused_by_buffer += 1;
            return false;
        }
        self.pacer.offer(now, bytes, priority)
    }

    /// Bytes of datagrams QUIC's buffer may hold before a datagram of `priority` is dropped
    /// rather than queued: [`BUFFER_TIME`] at the paced rate ([`BASE_BUFFER_TIME`] for the base
    /// layer), never less than a few datagrams; keyframes, as much as the buffer holds.
    fn buffer_allowance(&self, priority: Priority) -> usize {
        let time = match priority {
            Priority::Keyframe => return DATAGRAM_BUFFER,
            Priority::Base => BASE_BUFFER_TIME,
            Priority::Enhancement(_) => BUFFER_TIME,
        };
        let bytes = self.rate_bps.max(FLOOR_BPS) / 8.0 * time.as_secs_f64();
        (bytes as usize).clamp(MIN_BUFFER, DATAGRAM_BUFFER)
    }

    /// Takes in one reading of the connection.
    fn adapt(&mut self, now: Time, reading: Reading) {
        let Reading {
            rtt,
            cwnd,
            lost,
            sent,
            waiting,
        } = reading;
        // What QUIC's window lets through over the round trip, and no more than the
        // receiver's share of its download or this link's share of this member's upload.
        let allowed = (cwnd as f64 * 8.0 / rtt.as_secs_f64().max(1e-4))
            .min(self.share_bps(now))
            .min(self.upload_share.unwrap_or(f64::INFINITY))
            .min(self.operator_limit.unwrap_or(f64::INFINITY));
        // Datagrams waiting in QUIC's buffer wait this long at the current rate.
        let held = Duration::from_secs_f64(waiting as f64 * 8.0 / self.rate_bps.max(FLOOR_BPS));
        let min = self.smallest_rtt(now, rtt);
        let loss =
            lost.saturating_sub(self.lost) as f64 / sent.saturating_sub(self.sent).max(1) as f64;
        self.lost = lost;
        self.sent = sent;
        if self.hold_until.is_some_and(|t| now < t) {
            // No other cut of its own, but never above what the window lets through.
            self.rate_bps = self.rate_bps.min(allowed).max(FLOOR_BPS);
            return;
        }
        let queued = rtt.saturating_sub(min) > QUEUE_LIMIT || held > QUEUE_LIMIT;
        self.rate_bps = if self.rate_bps == 0.0 {
            allowed
        } else if loss > LOSS_CUT_ABOVE || queued {
            self.hold_until = Some(now + rtt + REFRESH);
            let loss_cut = if loss > LOSS_CUT_ABOVE {
                1.0 - loss.min(1.0) / 2.0
            } else {
                1.0
            };
            let delay_cut = if queued { DELAY_CUT } else { 1.0 };
            self.rate_bps * loss_cut.min(delay_cut)
        } else if loss > LOSS_HOLD_ABOVE {
            self.rate_bps
        } else {
            // Shorter round trips see the effect of a change sooner, so they may grow faster
            // (up to ten times, on a path under 10 ms).
            let per_rtt = (REFRESH.as_secs_f64() / rtt.as_secs_f64().max(1e-4)).clamp(1.0, 10.0);
            let growth = 1.0 + (GROWTH - 1.0) * per_rtt;
            self.rate_bps * growth + GROWTH_STEP_BPS
        }
        // Never beyond what QUIC's window lets through: past it, datagrams wait in QUIC's
        // buffer and are refused there by age, the base layer with the enhancements, where the
        // pacer would have dropped the enhancements first.
        .min(allowed)
        .max(FLOOR_BPS);
    }

    /// Takes in a round trip read at `now` and returns the smallest of the last
    /// [`MIN_RTT_WINDOW`]. A windowed minimum, not the last minimum kept until it expires:
    /// that one, on expiring, took whatever the round trip was then, and behind a standing
    /// queue (a kernel's shaper holding 100 ms) the queue became the baseline and went unseen.
    fn smallest_rtt(&mut self, now: Time, rtt: Duration) -> Duration {
        while self.min_rtt.back().is_some_and(|&(_, r)| r >= rtt) {
            self.min_rtt.pop_back();
        }
        self.min_rtt.push_back((now, rtt));
        while self
            .min_rtt
            .front()
            .is_some_and(|&(at, _)| now.saturating_since(at) >= MIN_RTT_WINDOW)
        {
            self.min_rtt.pop_front();
        }
        self.min_rtt.front().map_or(rtt, |&(_, r)| r)
    }

    /// Datagrams dropped so far: over the paced rate, and because QUIC's buffer held too much.
    pub(super) fn shaped(&self) -> (u64, u64) {
        (self.pacer.counts().1, self.refused_by_buffer)
    }

    /// The rate the pacer lets through now.
    pub(super) fn rate(&self) -> Bandwidth {
        self.pacer.rate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn the_link_counts_the_repairs_its_memory_of_shed_packets_refused() {
        // The memory itself is tested in `media::shed`; here, that the link reports it.
        let mut p = LinkPacer::new();
        p.shed.remember((1, 5));
        assert!(p.shed.refuses(Some((1, 5))));
        assert!(!p.shed.refuses(Some((1, 6))));
        assert_eq!(p.repairs_refused(), 1);
    }

    #[test]
    fn a_growing_queue_or_a_loss_cuts_the_rate_and_a_clear_path_lets_it_grow() {
        let mut p = LinkPacer::new();
        let t = |n: u64| Time::from_millis(n * 100);
        // Every reading, 100 more packets were sent; `lost` in all so far; the window lets
        // 8 Mbit/s through whatever the round trip.
        let read = |n: u64, rtt: u64, lost: u64, waiting: u64| Reading {
            rtt: ms(rtt),
            cwnd: rtt * 1000,
            lost,
            sent: 100 * n,
            waiting,
        };
        let at = |p: &mut LinkPacer, n: u64, rtt: u64, lost: u64, waiting: u64| {
            p.adapt(t(n), read(n, rtt, lost, waiting));
            p.rate_bps
        };
        // First reading: what the window allows (100 kB over 100 ms: 8 Mbit/s).
        assert_eq!(at(&mut p, 1, 100, 0, 0), 8_000_000.0);
        // A queue builds (the round trip grows 50 ms): cut.
        let cut = 8_000_000.0 * DELAY_CUT;
        assert_eq!(at(&mut p, 2, 150, 0, 0), cut);
        // For a round trip and a reading after it, the same event's signals do not cut again.
        assert_eq!(at(&mut p, 3, 150, 30, 0), cut);
        assert_eq!(at(&mut p, 4, 150, 30, 0), cut);
        // A fifth of the packets lost after that: cut by a tenth.
        assert_eq!(at(&mut p, 5, 100, 50, 0), cut * 0.9);
        let cut = cut * 0.9;
        // A clear path: grow, but never beyond what the window allows.
        let grown = cut * GROWTH + GROWTH_STEP_BPS;
        assert!((at(&mut p, 8, 100, 50, 0) - grown).abs() < 1.0);
        // A few percent lost: hold; one percent: grow.
        assert_eq!(at(&mut p, 9, 100, 55, 0), p.rate_bps);
        assert!(at(&mut p, 10, 100, 56, 0) > grown);
        // Datagrams held in QUIC's buffer for longer than the queue allows: cut.
        let before = p.rate_bps;
        assert!((at(&mut p, 11, 100, 56, 64 << 10) - before * DELAY_CUT).abs() < 1.0);
        for n in 14..400 {
            at(&mut p, n, 100, 56, 0);
        }
        assert_eq!(p.rate_bps, 8_000_000.0);
        // QUIC's congestion control halves its window: the rate follows at once.
        let halved = Reading {
            cwnd: 50_000,
            ..read(400, 100, 56, 0)
        };
        p.adapt(t(400), halved);
        assert_eq!(p.rate_bps, 4_000_000.0);
        // Never below the floor: half the packets lost every time.
        for n in 400..2000 {
            at(&mut p, n, 100, 56 + 50 * (n - 399), 0);
        }
        assert_eq!(p.rate_bps, FLOOR_BPS);
    }

    #[test]
    fn the_receivers_share_bounds_the_rate_until_it_lapses() {
        let mut p = LinkPacer::new();
        let read = |sent: u64| Reading {
            rtt: ms(100),
            cwnd: 100_000,
            lost: 0,
            sent,
            waiting: 0,
        };
        // The window allows 8 Mbit/s; the receiver gives this link 400 kbit/s of its download.
        p.set_share(Time::from_millis(50), 400_000.0);
        p.adapt(Time::from_millis(100), read(100));
        assert_eq!(p.rate_bps, 400_000.0);
        // A clear path does not grow past it.
        p.adapt(Time::from_millis(200), read(200));
        assert_eq!(p.rate_bps, 400_000.0);
        // Renewed higher, the rate may grow into it; once it lapses, only the window bounds it.
        p.set_share(Time::from_millis(250), 1_000_000.0);
        p.adapt(Time::from_millis(300), read(300));
        assert!(p.rate_bps > 400_000.0 && p.rate_bps <= 1_000_000.0);
        let later = Time::from_millis(250) + SHARE_LIFETIME;
        p.adapt(later, read(400));
        let before = p.rate_bps;
        p.adapt(later + REFRESH, read(500));
        assert!(
            p.rate_bps > before,
            "grows past the lapsed share: {}",
            p.rate_bps
        );
    }

    #[test]
    fn a_lifted_cap_gives_the_link_back_its_rate_within_what_the_path_allows() {
        let mut p = LinkPacer::new();
        let read = |cwnd: u64, sent: u64| Reading {
            rtt: ms(100),
            cwnd,
            lost: 0,
            sent,
            waiting: 0,
        };
        // 8 Mbit/s; capped at 1, then at 2 (a second cap keeps the first rate to go back to).
        p.adapt(Time::from_millis(100), read(100_000, 100));
        assert_eq!(p.rate_bps, 8_000_000.0);
        p.set_operator_limit(Some(1_000_000.0));
        assert_eq!(p.rate().bps_f64(), 1_000_000.0);
        for n in 2..20 {
            p.adapt(Time::from_millis(100 * n), read(100_000, 100 * n));
        }
        assert_eq!(p.rate_bps, 1_000_000.0);
        p.set_operator_limit(Some(2_000_000.0));
        p.set_operator_limit(None);
        assert_eq!(p.rate_bps, 8_000_000.0);
        assert_eq!(p.rate().bps_f64(), 8_000_000.0);
        // Capped and lifted again while the path narrowed: the next reading bounds it.
        p.set_operator_limit(Some(1_000_000.0));
        p.set_operator_limit(None);
        p.adapt(Time::from_millis(2_100), read(25_000, 2_100));
        assert_eq!(p.rate_bps, 2_000_000.0);
    }

    #[test]
    fn a_window_cut_during_a_hold_lowers_the_rate_too() {
        let mut p = LinkPacer::new();
        let read = |cwnd: u64, rtt: u64, sent: u64| Reading {
            rtt: ms(rtt),
            cwnd,
            lost: 0,
            sent,
            waiting: 0,
        };
        // 8 Mbit/s, then a queue (150 ms): cut, and a hold of a round trip and a reading.
        p.adapt(Time::from_millis(100), read(100_000, 100, 100));
        p.adapt(Time::from_millis(200), read(150_000, 150, 200));
        assert_eq!(p.rate_bps, 8_000_000.0 * DELAY_CUT);
        // Within the hold QUIC halves its window: 2.4 Mbit/s over 150 ms.
        p.adapt(Time::from_millis(300), read(45_000, 150, 300));
        assert!(p.hold_until.is_some_and(|t| t > Time::from_millis(300)));
        assert_eq!(p.rate_bps, 2_400_000.0);
    }

    #[test]
    fn the_smallest_round_trip_is_the_windows_and_a_standing_queue_stays_visible() {
        let mut p = LinkPacer::new();
        let at = |s: u64| Time::from_millis(s * 1000);
        assert_eq!(p.smallest_rtt(at(0), ms(20)), ms(20));
        // A queue stands from second 1 on, 100 ms deep, with one dip at second 6.
        for s in 1..=5 {
            assert_eq!(p.smallest_rtt(at(s), ms(120)), ms(20));
        }
        assert_eq!(p.smallest_rtt(at(6), ms(110)), ms(20));
        for s in 7..=9 {
            assert_eq!(p.smallest_rtt(at(s), ms(120)), ms(20));
        }
        // Ten seconds on, the 20 ms reading is forgotten; the window's smallest is the dip,
        // not the queue's depth at that moment.
        assert_eq!(p.smallest_rtt(at(10), ms(125)), ms(110));
        assert_eq!(p.smallest_rtt(at(16), ms(120)), ms(120));
        // A route that became faster counts at once.
        assert_eq!(p.smallest_rtt(at(17), ms(5)), ms(5));
        assert_eq!(p.min_rtt.len(), 1);
    }

    #[test]
    fn a_short_round_trip_grows_faster() {
        let read = |rtt: Duration| Reading {
            rtt,
            cwnd: 10_000_000,
            lost: 0,
            sent: 100,
            waiting: 0,
        };
        let grown = |rtt: Duration| {
            let mut p = LinkPacer::new();
            p.rate_bps = 1_000_000.0;
            p.adapt(Time::from_secs(1), read(rtt));
            p.rate_bps
        };
        // 100 ms or more: 1% a reading; 1 ms (loopback, a LAN): ten times that.
        assert!((grown(ms(150)) - (1_000_000.0 * GROWTH + GROWTH_STEP_BPS)).abs() < 1.0);
        assert!((grown(ms(1)) - (1_000_000.0 * 1.1 + GROWTH_STEP_BPS)).abs() < 1.0);
    }

    #[test]
    fn media_waits_in_quics_buffer_no_longer_than_it_could_still_play() {
        let mut p = LinkPacer::new();
        // 800 kbit/s is 100 kB/s: 60 ms of it is 6000 bytes, 300 ms 30 000.
        p.rate_bps = 800_000.0;
        assert_eq!(p.buffer_allowance(Priority::Enhancement(2)), 6000);
        assert_eq!(p.buffer_allowance(Priority::Base), 30_000);
        assert_eq!(p.buffer_allowance(Priority::Keyframe), DATAGRAM_BUFFER);
        // Slow links still hold a few datagrams; fast ones no more than the buffer.
        p.rate_bps = 0.0;
        assert_eq!(p.buffer_allowance(Priority::Enhancement(1)), MIN_BUFFER);
        p.rate_bps = 1e10;
        assert_eq!(p.buffer_allowance(Priority::Base), DATAGRAM_BUFFER);
    }
}
