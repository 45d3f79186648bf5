//! The browser edge's sans-IO core: what [`super::BrowserEdge`]'s task drives with its socket
//! and clock, and what a test drives with an in-memory link.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use media::{Frame, MAX_PUBLISHERS};
use overlay_core::NodeId;
use str0m::bwe::Bitrate;
use str0m::net::{Protocol, Receive};
use str0m::{Input, Output};

use super::encoding_choice::{Down, HEDGE_AFTER, KEYFRAME_SPELL, Quiet, STARVED_AFTER};
use super::session::{Happened, Role, Session};
use super::{
    CONNECT_TIMEOUT, EdgeCounters, EdgeError, EdgeEvent, KEYFRAME_INTERVAL, MAX_SESSIONS, Opened,
    SessionId, SourceKey,
};

/// Bytes of one source's kept keyframe group at most (a longer group is not kept).
const GROUP_BYTES: usize = 4 << 20;
/// Sources whose keyframe group is kept at most.
const MAX_GROUPS: usize = 256;
/// A source's group is dropped this long after its last frame.
const GROUP_IDLE: Duration = Duration::from_secs(30);
/// Events waiting for the member at most (a publisher's frames beyond it are dropped: live
/// media is not queued).
const MAX_EVENTS: usize = 1024;

/// A source's frames in one encoding since its last keyframe (kept for the lowest encoding
/// only: a new watcher starts there), and the rate it sends at with its sound.
#[derive(Default)]
struct Group {
    frames: Vec<Frame>,
    bytes: usize,
    /// When a frame of the source last came.
    last: Option<Instant>,
    /// When a keyframe of it last came.
    last_keyframe: Option<Instant>,
    /// The member's assembler lost a frame of it: nothing more comes until a keyframe.
    broken: bool,
    rate: StreamRate,
}

/// A source's rate (every layer and its sound), over windows of a second, smoothed (a window
/// with a keyframe in it is well above the mean).
#[derive(Default)]
struct StreamRate {
    window_start: Option<Instant>,
    window_bytes: usize,
    /// Bits per second: each whole window moves it a third of the way.
    bps: f64,
}

impl StreamRate {
    fn add(&mut self, bytes: usize, now: Instant) {
        let start = *self.window_start.get_or_insert(now);
        let span = now.saturating_duration_since(start);
        if span >= Duration::from_secs(1) {
            let window = self.window_bytes as f64 * 8.0 / span.as_secs_f64();
            self.bps = if self.bps == 0.0 {
                window
            } else {
                self.bps + (window - self.bps) / 3.0
            };
            self.window_bytes = 0;
            self.window_start = Some(now);
        }
        self.window_bytes += bytes;
    }
}

/// The edge without its socket: every session's `Rtc`, what each is for, and the sources'
/// keyframe groups. Time comes in with each call; datagrams to send and events for the member
/// come out of [`EdgeCore::poll_transmit`] and [`EdgeCore::poll_event`].
pub struct EdgeCore {
    me: NodeId,
    candidates: Vec<SocketAddr>,
    sessions: BTreeMap<SessionId, Session>,
    opened_at: BTreeMap<SessionId, Instant>,
    next_id: SessionId,
    /// By source and simulcast encoding.
    groups: BTreeMap<(SourceKey, u8), Group>,
    transmits: VecDeque<(SocketAddr, Vec<u8>)>,
    events: VecDeque<EdgeEvent>,
    counters: Arc<EdgeCounters>,
    last_keyframe_round: Option<Instant>,
}

impl std::fmt::Debug for EdgeCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EdgeCore")
            .field("me", &self.me)
            .field("sessions", &self.sessions.len())
            .field("groups", &self.groups.len())
            .finish_non_exhaustive()
    }
}

impl EdgeCore {
    /// An edge for member `me`, reached by browsers at `candidates` (the first is the address
    /// datagrams arrive at).
    pub fn new(me: NodeId, candidates: Vec<SocketAddr>, counters: Arc<EdgeCounters>) -> Self {
        Self {
            me,
            candidates,
            sessions: BTreeMap::new(),
            opened_at: BTreeMap::new(),
            next_id: 1,
            groups: BTreeMap::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            counters,
            last_keyframe_round: None,
        }
    }

    /// Counts a publisher's frame the member could not take.
    pub fn count_dropped_frame(&self) {
        self.counters.frames_dropped.fetch_add(1, Ordering::Relaxed);
    }

    /// A datagram to send, if any.
    pub fn poll_transmit(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        self.transmits.pop_front()
    }

    /// An event for the member, if any.
    pub fn poll_event(&mut self) -> Option<EdgeEvent> {
        self.events.pop_front()
    }

    /// Time passed: every session's timers, then sessions that ended or never connected go,
    /// and publishers are asked for their periodic keyframe.
    pub fn timeout(&mut self, now: Instant) {
        for s in self.sessions.values_mut() {
            if s.rtc.handle_input(Input::Timeout(now)).is_err() {
                s.rtc.disconnect();
            }
        }
        self.tidy(now);
    }

    /// Polls every session until each waits (queueing datagrams and events); when the next
    /// one wants time.
    pub fn poll(&mut self, now: Instant) -> Instant {
        let mut next = now + Duration::from_millis(100);
        let ids: Vec<SessionId> = self.sessions.keys().copied().collect();
        for id in ids {
            while let Some(s) = self.sessions.get_mut(&id) {
                match s.rtc.poll_output() {
                    Ok(Output::Timeout(t)) => {
                        next = next.min(t);
                        break;
                    }
                    Ok(Output::Transmit(t)) => {
                        self.transmits.push_back((t.destination, t.contents.into()));
                    }
                    Ok(Output::Event(event)) => {
                        let happened = s.on_event(event, now);
                        self.on_happened(id, happened, now);
                    }
                    Err(_) => {
                        s.rtc.disconnect();
                        break;
                    }
                }
            }
        }
        next
    }

    fn on_happened(&mut self, id: SessionId, happened: Happened, now: Instant) {
        self.on_event_of(id, happened, now);
        // A watcher starts at its source's last keyframe once it is connected and its video
        // line is known (str0m reports the lines after the connection).
        let Some(s) = self.sessions.get_mut(&id) else {
            return;
        };
        if !s.take_start() {
            return;
        }
        let Role::Watch(source) = s.role else {
            return;
        };
        // It starts on the lowest encoding (the smallest keyframe group), and moves up once
        // its leg shows room.
        s.encodings.start(0);
        match self.groups.get(&(source, 0)) {
            Some(group) => {
                for frame in &group.frames {
                    write_to(s, frame, now, &self.counters);
                }
            }
            None => self.ask_keyframe(source, 0, now),
        }
    }

    fn on_event_of(&mut self, id: SessionId, happened: Happened, now: Instant) {
        let Some(s) = self.sessions.get_mut(&id) else {
            return;
        };
        match happened {
            Happened::Nothing => {}
            Happened::Ended => s.rtc.disconnect(),
            Happened::Connected => {
                self.opened_at.remove(&id);
                if matches!(s.role, Role::Publish(_)) {
                    s.request_keyframe(None, now);
                }
            }
            Happened::KeyframeWanted => {
                if let Role::Watch(source) = s.role {
                    let encoding = s.encodings.current().unwrap_or(0);
                    self.ask_keyframe(source, encoding, now);
                }
            }
            Happened::Estimate(bps) => {
                if let Role::Watch(source) = s.role {
                    let rates = Rates::of(&self.groups, source, now);
                    let current = s.encodings.current().unwrap_or(0);
                    s.layers.on_estimate(bps, rates.of_encoding(current), now);
                    let ask = review_encoding(s, rates, now, &self.counters);
                    let below_top = s.encodings.below_top(rates.higher.is_some());
                    let (minimum, desired) = s.layers.probe_rates(rates.top(), below_top);
                    s.rtc
                        .bwe()
                        .set_bitrate(Bitrate::bps(minimum), Bitrate::bps(desired));
                    if let Some(encoding) = ask {
                        self.ask_keyframe(source, encoding, now);
                    }
                }
            }
            Happened::Frame(frame) => {
                let Role::Publish(publisher) = s.role else {
                    return;
                };
                self.counters.frames_in.fetch_add(1, Ordering::Relaxed);
                if frame.layer > 0 && !frame.codec.is_audio() {
                    self.counters
                        .enhancement_frames_in
                        .fetch_add(1, Ordering::Relaxed);
                }
                let source = SourceKey {
                    member: self.me,
                    publisher,
                };
                self.deliver(source, &frame, now);
                if self.events.len() < MAX_EVENTS {
                    self.events
                        .push_back(EdgeEvent::Published { publisher, frame });
                } else {
                    self.counters.frames_dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// This member's publisher `publisher` is asked for a keyframe of simulcast encoding
    /// `encoding` (a receiver elsewhere wants one).
    pub fn keyframe_wanted(&mut self, publisher: u16, encoding: u8, now: Instant) {
        self.ask_keyframe(
            SourceKey {
                member: self.me,
                publisher,
            },
            encoding,
            now,
        );
    }

    /// Asks the publisher of `source` for a keyframe of `encoding`: ours directly, another
    /// member's through the member (up the source's tree).
    fn ask_keyframe(&mut self, source: SourceKey, encoding: u8, now: Instant) {
        if source.member != self.me {
            if self.events.len() < MAX_EVENTS {
                self.events
                    .push_back(EdgeEvent::KeyframeWanted { source, encoding });
            }
            return;
        }
        for s in self.sessions.values_mut() {
            if s.role == Role::Publish(source.publisher) {
                s.request_keyframe(Some(encoding), now);
            }
        }
    }

    /// A frame of another member's source: kept in its group and written to its watchers.
    pub fn forward(&mut self, source: SourceKey, frame: &Frame, now: Instant) {
        self.deliver(source, frame, now);
    }

    /// The member lost a frame of `source`'s simulcast encoding `encoding`: nothing more of it
    /// comes until its next keyframe, so the watchers on it move to the other one now (its
    /// keyframe asked for) rather than once it has been missing a while.
    pub fn encoding_broken(&mut self, source: SourceKey, encoding: u8, now: Instant) {
        let Some(group) = self.groups.get_mut(&(source, encoding)) else {
            return;
        };
        group.broken = true;
        self.review_watchers(source, now);
    }

    /// Reviews the encoding of every watcher of `source` and asks for the keyframes their
    /// switches need.
    fn review_watchers(&mut self, source: SourceKey, now: Instant) {
        let rates = Rates::of(&self.groups, source, now);
        let mut asks = Vec::new();
        for s in self.sessions.values_mut() {
            if s.connected && s.role == Role::Watch(source) {
                asks.extend(review_encoding(s, rates, now, &self.counters));
            }
        }
        for e in asks {
            self.ask_keyframe(source, e, now);
        }
    }

    /// Keeps `frame` in its source's group and writes it to that source's watchers.
    fn deliver(&mut self, source: SourceKey, frame: &Frame, now: Instant) {
        if frame.codec.is_audio() {
            // Sound goes with every encoding: each one's rate counts it.
            for (_, group) in self
                .groups
                .range_mut((source, 0)..=(source, media::MAX_ENCODINGS - 1))
            {
                group.rate.add(frame.data.len(), now);
            }
        } else {
            let key = (source, frame.encoding.min(media::MAX_ENCODINGS - 1));
            if !self.groups.contains_key(&key) && self.groups.len() >= MAX_GROUPS {
                return;
            }
            let group = self.groups.entry(key).or_default();
            group.last = Some(now);
            if frame.keyframe {
                group.last_keyframe = Some(now);
            }
            group.broken = false;
            group.rate.add(frame.data.len(), now);
            // Only the lowest encoding keeps its keyframe group (a new watcher starts there).
            if key.1 == 0 {
                if frame.keyframe {
                    group.frames.clear();
                    group.bytes = 0;
                }
                group.bytes += frame.data.len();
                if group.bytes <= GROUP_BYTES && (frame.keyframe || !group.frames.is_empty()) {
                    group.frames.push(frame.clone());
                } else {
                    group.frames.clear();
                }
            }
        }
        // Each video frame reviews its watchers' encodings too (a busy edge's timer may wait).
        if !frame.codec.is_audio() {
            self.review_watchers(source, now);
        }
        for s in self.sessions.values_mut() {
            if s.connected && s.role == Role::Watch(source) {
                write_to(s, frame, now, &self.counters);
            }
        }
    }

    /// Ends a session; whether it existed.
    pub fn close(&mut self, session: SessionId) -> bool {
        self.sessions
            .get_mut(&session)
            .map(|s| {
                let _ = s.rtc.close();
                s.rtc.disconnect();
            })
            .is_some()
    }

    /// Opens a session answering `offer`: publishing when `watch` is `None`, else watching
    /// that source.
    pub fn open(
        &mut self,
        offer: &str,
        watch: Option<SourceKey>,
        now: Instant,
    ) -> Result<Opened, EdgeError> {
        if self.sessions.len() >= MAX_SESSIONS {
            return Err(EdgeError::Full(format!(
                "this member has {MAX_SESSIONS} browser sessions"
            )));
        }
        let role = match watch {
            Some(source) => Role::Watch(source),
            None => {
                let taken: Vec<u16> = self
                    .sessions
                    .values()
                    .filter_map(|s| match s.role {
                        Role::Publish(p) => Some(p),
                        Role::Watch(_) => None,
                    })
                    .collect();
                // The last number is a sent file's (`--send ivf:FILE` / `ogg:FILE`).
                let free = (0..MAX_PUBLISHERS - 1).find(|p| !taken.contains(p));
                let Some(publisher) = free else {
                    return Err(EdgeError::Full(format!(
                        "this member has {} publishing browsers",
                        MAX_PUBLISHERS - 1
                    )));
                };
                Role::Publish(publisher)
            }
        };
        let (session, answer) = Session::answer(offer, role, &self.candidates, now)?;
        let id = self.next_id;
        self.next_id += 1;
        self.sessions.insert(id, session);
        self.opened_at.insert(id, now);
        self.counters.opened.fetch_add(1, Ordering::Relaxed);
        let publishes = match role {
            Role::Publish(publisher) => Some(SourceKey {
                member: self.me,
                publisher,
            }),
            Role::Watch(_) => None,
        };
        Ok(Opened {
            id,
            answer,
            publishes,
        })
    }

    /// A datagram from `from`, to whichever session it belongs to.
    pub fn receive(&mut self, from: SocketAddr, bytes: &[u8], now: Instant) {
        let Some(&destination) = self.candidates.first() else {
            return;
        };
        let Ok(receive) = Receive::new(Protocol::Udp, from, destination, bytes) else {
            self.counters.strays.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let input = Input::Receive(now, receive);
        match self.sessions.values_mut().find(|s| s.rtc.accepts(&input)) {
            Some(s) => {
                if s.rtc.handle_input(input).is_err() {
                    s.rtc.disconnect();
                }
            }
            None => {
                self.counters.strays.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Ends sessions that died or never connected; keeps groups only of sources still
    /// watched or published here or forwarded recently (bounded by `MAX_GROUPS` anyway).
    fn tidy(&mut self, now: Instant) {
        let late: Vec<SessionId> = self
            .opened_at
            .iter()
            .filter(|&(_, &t)| now.saturating_duration_since(t) > CONNECT_TIMEOUT)
            .map(|(&id, _)| id)
            .collect();
        for id in late {
            self.opened_at.remove(&id);
            if let Some(s) = self.sessions.get_mut(&id) {
                s.rtc.disconnect();
            }
        }
        self.sessions.retain(|_, s| s.rtc.is_alive());
        self.opened_at
            .retain(|id, _| self.sessions.contains_key(id));
        self.counters
            .open
            .store(self.sessions.len() as u64, Ordering::Relaxed);
        let mut asks = Vec::new();
        let mut on_lower = 0;
        for s in self.sessions.values_mut() {
            let Role::Watch(source) = s.role else {
                continue;
            };
            if !s.connected {
                continue;
            }
            // A higher encoding that stopped arriving is left at once (its keyframe asked
            // for), not when the leg's next estimate comes.
            let rates = Rates::of(&self.groups, source, now);
            if let Some(encoding) = review_encoding(s, rates, now, &self.counters) {
                asks.push((source, encoding));
            }
            let below_top = s.encodings.below_top(rates.higher.is_some());
            on_lower += usize::from(s.encodings.current() == Some(0) && rates.sends_higher);
            if s.layers.probe_due(now, below_top) {
                let (minimum, desired) = s.layers.probe_rates(rates.top(), below_top);
                // Restarted at its estimate, str0m's estimator probes above it.
                let mut bwe = s.rtc.bwe();
                bwe.reset(Bitrate::bps(s.layers.estimate().max(100_000)));
                bwe.set_bitrate(Bitrate::bps(minimum), Bitrate::bps(desired));
            }
        }
        for (source, encoding) in asks {
            self.ask_keyframe(source, encoding, now);
        }
        self.counters
            .watchers_on_lower_encoding
            .store(on_lower as u64, Ordering::Relaxed);
        let on_base = self
            .sessions
            .values()
            .filter(|s| matches!(s.role, Role::Watch(_)) && !s.layers.sends_upper())
            .count();
        self.counters
            .watchers_on_base
            .store(on_base as u64, Ordering::Relaxed);
        self.groups.retain(|_, g| {
            g.last
                .is_some_and(|t| now.saturating_duration_since(t) < GROUP_IDLE)
        });
        for s in self.sessions.values_mut() {
            if matches!(s.role, Role::Publish(_)) && s.connected {
                s.flush_keyframe_requests(now);
            }
        }
        let round = self.last_keyframe_round.get_or_insert(now);
        if now.saturating_duration_since(*round) >= KEYFRAME_INTERVAL {
            *round = now;
            for s in self.sessions.values_mut() {
                // The lowest encoding's: the one whose keyframe group is kept (a watcher on
                // another asks for that one's keyframes when it needs them; Chromium's VP8
                // simulcast makes every encoding's keyframe on this one request anyway).
                if matches!(s.role, Role::Publish(_)) && s.connected {
                    s.request_keyframe(Some(0), now);
                }
            }
        }
    }
}

/// Writes `frame` to watcher `s` if its encoding and layer choices let it through.
fn write_to(s: &mut Session, frame: &Frame, now: Instant, counters: &EdgeCounters) {
    let admitted = s.encodings.admit(frame, now);
    count_down(s.encodings.take_down(), false, counters);
    let Some(timestamp_us) = admitted else {
        return;
    };
    if !s.layers.admit(frame, now) {
        counters
            .enhancement_frames_withheld
            .fetch_add(1, Ordering::Relaxed);
    } else if s.write(frame, timestamp_us, now) {
        counters.frames_out.fetch_add(1, Ordering::Relaxed);
    }
}

/// Reviews watcher `s`'s encoding against its leg's estimate and its source's `rates`: the
/// encoding whose keyframe it needs asked for, if any.
fn review_encoding(
    s: &mut Session,
    rates: Rates,
    now: Instant,
    counters: &EdgeCounters,
) -> Option<u8> {
    let ask = s.encodings.review(
        s.layers.estimate(),
        rates.higher,
        Quiet {
            higher: rates.higher_quiet,
            keyframes_due: rates.keyframes_due,
        },
        now,
    );
    count_down(s.encodings.take_down(), rates.higher_broken, counters);
    ask
}

/// Counts a watcher's decision to leave the higher encoding by its cause (`broken`: the
/// higher one lost a frame here, rather than went quiet).
fn count_down(down: Option<Down>, broken: bool, counters: &EdgeCounters) {
    let counter = match down {
        None => return,
        Some(Down::Short) => &counters.encoding_downs_short,
        Some(Down::Starved) if broken => &counters.encoding_downs_broken,
        Some(Down::Starved) => &counters.encoding_downs_starved,
        Some(Down::Hedged) => &counters.encoding_downs_hedged,
    };
    counter.fetch_add(1, Ordering::Relaxed);
}

/// What a source's encodings take now, bits per second with its sound.
#[derive(Clone, Copy, Debug)]
struct Rates {
    lower: f64,
    /// The higher encoding's, if the source sends one and it arrives here.
    higher: Option<f64>,
    /// The source has sent a higher encoding here lately (arriving now or not).
    sends_higher: bool,
    /// The higher encoding has been quiet here for [`HEDGE_AFTER`] while the lower still comes
    /// (or the higher broke).
    higher_quiet: bool,
    /// The member lost a frame of the higher encoding (nothing more of it until a keyframe).
    higher_broken: bool,
    /// A keyframe of the source came lately: the higher's (big) one may still be on its way, or
    /// the encoder may be making up for it by skipping frames.
    keyframes_due: bool,
}

impl Rates {
    fn of(groups: &BTreeMap<(SourceKey, u8), Group>, source: SourceKey, now: Instant) -> Self {
        let lower = groups.get(&(source, 0)).map_or(0.0, |g| g.rate.bps);
        let sends_higher = groups.contains_key(&(source, 1));
        let lower_last = groups.get(&(source, 0)).and_then(|g| g.last);
        // A source quiet as a whole (its publisher stalled) is no link shedding the higher
        // encoding: a hedge then moved a watcher down as the source came back with the lower's
        // keyframe first (`browser_leg` on a loaded machine).
        let lower_comes =
            lower_last.is_some_and(|t| now.saturating_duration_since(t) < HEDGE_AFTER);
        let higher_quiet = groups.get(&(source, 1)).is_some_and(|g| {
            g.broken
                || (lower_comes
                    && g.last
                        .is_none_or(|t| now.saturating_duration_since(t) >= HEDGE_AFTER))
        });
        // Starved: quiet while the lower encoding still came for [`STARVED_AFTER`] (a source
        // quiet as a whole is not helped by a move), the quiet counted from the end of the
        // spell after its last keyframe if that is later (an encoder skips frames after a big
        // keyframe: the kernel-shaped leg test once saw the higher quiet over 0.6 s just after
        // the keyframe a watcher had switched up at, and the watcher moved down again at once).
        let higher = groups
            .get(&(source, 1))
            .filter(|g| {
                let quiet_since = g.last.map(|t| {
                    g.last_keyframe
                        .map_or(t, |k| t.max(k.checked_add(KEYFRAME_SPELL).unwrap_or(k)))
                });
                let lower_came = lower_last.unwrap_or(now);
                !g.broken
                    && quiet_since
                        .is_some_and(|t| lower_came.saturating_duration_since(t) < STARVED_AFTER)
            })
            .map(|g| g.rate.bps);
        let higher_broken = groups.get(&(source, 1)).is_some_and(|g| g.broken);
        let keyframes_due = groups
            .range((source, 0)..=(source, media::MAX_ENCODINGS - 1))
            .any(|(_, g)| {
                g.last_keyframe
                    .is_some_and(|t| now.saturating_duration_since(t) < KEYFRAME_SPELL)
            });
        Self {
            lower,
            higher,
            sends_higher,
            higher_quiet,
            higher_broken,
            keyframes_due,
        }
    }

    fn of_encoding(self, encoding: u8) -> f64 {
        match (encoding, self.higher) {
            (1.., Some(rate)) => rate,
            _ => self.lower,
        }
    }

    /// The most the source sends in one encoding.
    fn top(self) -> f64 {
        self.higher.unwrap_or(self.lower)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `source`'s two encodings: the lower last arrived at `lower`, the higher at `higher`
    /// (its last keyframe at `keyframe`).
    fn two_encodings(
        source: SourceKey,
        lower: Instant,
        higher: Instant,
        keyframe: Option<Instant>,
    ) -> BTreeMap<(SourceKey, u8), Group> {
        let mut groups = BTreeMap::new();
        groups.insert(
            (source, 0),
            Group {
                last: Some(lower),
                ..Group::default()
            },
        );
        groups.insert(
            (source, 1),
            Group {
                last: Some(higher),
                last_keyframe: keyframe,
                ..Group::default()
            },
        );
        groups
    }

    /// The higher encoding counts as starved after [`STARVED_AFTER`] of quiet while the lower
    /// comes, but not within [`KEYFRAME_SPELL`] and [`STARVED_AFTER`] of its keyframe (an
    /// encoder skips frames after one).
    #[test]
    fn the_higher_encoding_starves_later_just_after_its_keyframe() {
        let source = SourceKey {
            member: NodeId::from_bytes([7; 32]),
            publisher: 0,
        };
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let higher_with = |last: Instant, keyframe: Option<Instant>, lower: Instant, now| {
            Rates::of(&two_encodings(source, lower, last, keyframe), source, now)
                .higher
                .is_some()
        };
        // The lower encoding keeps coming.
        let higher_at = |last, keyframe, now| higher_with(last, keyframe, now, now);
        // A plain quiet: arriving at 0.5 s, starved at 0.6 s.
        assert!(higher_at(t0, None, ms(500)));
        assert!(!higher_at(t0, None, ms(600)));
        assert!(!higher_at(ms(100), Some(t0), ms(5_000)));
        // Quiet from the keyframe on: still arriving 1.2 s after it, starved at 1.3 s.
        assert!(higher_at(t0, Some(t0), ms(1_200)));
        assert!(!higher_at(t0, Some(t0), ms(1_300)));
        // A frame after the keyframe, then quiet: the later of the two counts.
        assert!(higher_at(ms(600), Some(t0), ms(1_200)));
        assert!(!higher_at(ms(800), Some(t0), ms(1_400)));
        // The whole source quiet: no encoding starves (the lower's last frame counts, not now).
        assert!(higher_with(t0, None, ms(500), ms(5_000)));
        assert!(!higher_with(t0, None, ms(600), ms(5_000)));
    }

    #[test]
    fn a_source_quiet_as_a_whole_starts_no_hedge() {
        let source = SourceKey {
            member: NodeId::from_bytes([7; 32]),
            publisher: 0,
        };
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let quiet = |higher_last: Instant, lower_last: Instant, now: Instant| {
            Rates::of(
                &two_encodings(source, lower_last, higher_last, None),
                source,
                now,
            )
            .higher_quiet
        };
        // The higher quiet 300 ms while the lower came 20 ms ago: a hedge.
        assert!(quiet(t0, ms(280), ms(300)));
        // Quiet only 200 ms: not yet.
        assert!(!quiet(ms(100), ms(280), ms(300)));
        // Both quiet 300 ms (the publisher stalled): no hedge.
        assert!(!quiet(t0, t0, ms(300)));
    }
}
