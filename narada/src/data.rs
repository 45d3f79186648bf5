//! The data plane: reverse-path forwarding of each source's packets, and gap repair.
//!
//! A member accepts a packet of source S only from its next hop towards S (and, for a moment
//! after a route change, from the previous one), and forwards it to the neighbours whose route
//! to S goes through this member. Every source thus gets its own shortest-path tree, derived
//! from routing with no tree protocol. Duplicates are dropped; gaps left by a route change are
//! asked for from the current upstream, which resends what it buffered. Each packet carries its
//! drop class, so the driver's per-link pacer can drop the least important first where a link
//! is slower than the stream. A stream that stops coming from its upstream is reported once per
//! silence ([`DataOutput::UpstreamSilent`]), so the member asks at once whether that upstream
//! still lives.
//!
//! [`DataPlane`] is a part of [`crate::Narada`] with inputs of its own (a publish, a packet, a
//! repair request, its timer for gap repair and silence), its own deadline
//! ([`DataPlane::poll_timeout`]) and its own outputs ([`DataOutput`], drained with
//! [`DataPlane::poll_output`]). It reads routing
//! through [`SourceTrees`] and knows members only by slot; the member introduces handles,
//! counts bytes per link and names members for the application.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use bytes::Bytes;
use overlay_core::{Bandwidth, Time, soonest};
use probe::RateMeter;

use crate::config::DataConfig;
use crate::forwarding::{Arrival, Buffered, SourceState};
use crate::members::{SELF_SLOT, Slot};
use crate::message::{DataPacket, Message};

/// Most packets one repair request may ask for.
const MAX_REPAIR: u64 = 1024;

/// How long packets from the previous upstream are still accepted after a route change.
const UPSTREAM_GRACE: Duration = Duration::from_secs(2);

/// A source counts as active (its stream loads every link of its tree) for this long after its
/// last packet.
const ACTIVE_FOR: Duration = Duration::from_secs(10);

/// What the data plane reads of routing: each source's tree at this member.
pub(crate) trait SourceTrees {
    /// The neighbour packets of `source` come from: this member's next hop towards it.
    fn upstream(&self, source: Slot) -> Option<Slot>;
    /// The neighbours whose route to `source` goes through this member, in slot order.
    fn downstream(&self, source: Slot) -> Vec<Slot>;
}

/// What the data plane asks of the member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum DataOutput {
    /// Send `msg` (a packet of `source`, or a repair request naming it) to neighbour `to`.
    Send {
        /// The neighbour.
        to: Slot,
        /// The source the message names (introduced to `to` first).
        source: Slot,
        /// A `Message::Data` or `Message::Nack`.
        msg: Message,
    },
    /// Packets of `source` stopped coming from `upstream` (see
    /// [`crate::RepairConfig::silence_probe_after`]): ping it now.
    UpstreamSilent {
        /// The neighbour the stream came from.
        upstream: Slot,
        /// When the silence was noticed.
        at: Time,
    },
    /// A packet of `source` for the application.
    Deliver {
        /// The source.
        source: Slot,
        /// Its sequence number.
        seq: u64,
        /// When the source sent it (source clock, microseconds).
        sent_at_us: u64,
        /// The bytes.
        payload: Bytes,
        /// It filled a gap.
        recovered: bool,
    },
}

/// What the data plane counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct DataStats {
    /// Data not from the next hop towards its source: dropped.
    pub(crate) rpf_drops: u64,
    /// Data seen before: dropped.
    pub(crate) duplicates: u64,
    /// Gap repairs asked for.
    pub(crate) nacks_sent: u64,
    /// Packets resent to fill a neighbour's gap.
    pub(crate) repairs_sent: u64,
    /// Silences of a stream's upstream reported (each starts a round of pings to it).
    pub(crate) silences: u64,
}

/// A member's data plane.
#[derive(Debug)]
pub(crate) struct DataPlane {
    config: DataConfig,
    sources: BTreeMap<Slot, SourceState>,
    next_seq: u64,
    /// Data arriving here, for telling whether this member's own access link is the bottleneck.
    arriving: RateMeter,
    /// When gaps are next due to be asked for.
    nack_at: Option<Time>,
    /// Silence after which a stream's upstream is reported (zero: never).
    silence_after: Duration,
    /// When streams are next checked for silence (armed by arrivals, kept while streams flow).
    silence_at: Option<Time>,
    stats: DataStats,
    out: VecDeque<DataOutput>,
}

impl DataPlane {
    /// A data plane with nothing sent or received.
    pub(crate) fn new(config: DataConfig, silence_after: Duration) -> Self {
        Self {
            config,
            silence_after,
            silence_at: None,
            sources: BTreeMap::new(),
            next_seq: 0,
            arriving: RateMeter::new(Duration::from_secs(4), 8),
            nack_at: None,
            stats: DataStats::default(),
            out: VecDeque::new(),
        }
    }

    /// What it counted.
    pub(crate) fn stats(&self) -> DataStats {
        self.stats
    }

    /// The next queued output.
    pub(crate) fn poll_output(&mut self) -> Option<DataOutput> {
        self.out.pop_front()
    }

    /// When [`DataPlane::nack_tick`] or [`DataPlane::silence_tick`] is next due.
    pub(crate) fn poll_timeout(&self) -> Option<Time> {
        soonest(self.nack_at, self.silence_at)
    }

    /// Whether packets of `source` have reached (or left) this member.
    pub(crate) fn carries(&self, source: Slot) -> bool {
        self.sources.contains_key(&source)
    }

    /// Every source whose packets reached (or left) this member.
    pub(crate) fn sources(&self) -> impl Iterator<Item = Slot> + '_ {
        self.sources.keys().copied()
    }

    /// What arrives here per second, over the last few seconds.
    pub(crate) fn arriving_rate(&mut self, now: Time) -> Option<Bandwidth> {
        self.arriving.rate(now)
    }

    /// `bytes` of data arrived from a neighbour.
    pub(crate) fn record_arrival(&mut self, now: Time, bytes: u64) {
        self.arriving.record(now, bytes);
    }

    /// `source` is gone for good: forget its stream.
    pub(crate) fn forget(&mut self, source: Slot) {
        self.sources.remove(&source);
    }

    /// Send a packet as a source.
    pub(crate) fn publish(
        &mut self,
        now: Time,
        payload: Bytes,
        priority: u8,
        trees: &impl SourceTrees,
    ) {
        let seq = self.next_seq;
        self.next_seq += 1;
        let packet = Buffered {
            sent_at_us: now.as_micros(),
            priority,
            payload,
        };
        let capacity = self.config.recovery_packets;
        let own = self.sources.entry(SELF_SLOT).or_default();
        own.keep(seq, packet.clone(), capacity, now);
        // This member's own stream is active too: its children count against the upload.
        own.pace.arrived(now, ACTIVE_FOR);
        self.forward(SELF_SLOT, None, seq, &packet, trees);
    }

    /// Send a packet of `source` to neighbour `n`.
    fn send_data(&mut self, n: Slot, source: Slot, seq: u64, packet: &Buffered) {
        let msg = Message::Data(DataPacket {
            source,
            seq,
            sent_at_us: packet.sent_at_us,
            priority: packet.priority,
            payload: packet.payload.clone(),
        });
        self.out.push_back(DataOutput::Send { to: n, source, msg });
    }

    /// Send a packet of `source` to every neighbour that routes to it through this member:
    /// never back to where it came from, nor to this member's own upstream for the source (a
    /// neighbour whose news that it now routes through this member is stale would otherwise
    /// bounce packets back up, a transient two-member loop).
    fn forward(
        &mut self,
        source: Slot,
        from: Option<Slot>,
        seq: u64,
        packet: &Buffered,
        trees: &impl SourceTrees,
    ) {
        let upstream = trees.upstream(source);
        for n in trees.downstream(source) {
            if Some(n) != from && Some(n) != upstream {
                self.send_data(n, source, seq, packet);
            }
        }
    }

    /// A packet of `source` (a slot of this member's) arrived from neighbour `from`.
    pub(crate) fn on_data(
        &mut self,
        now: Time,
        from: Slot,
        source: Slot,
        packet: DataPacket,
        trees: &impl SourceTrees,
    ) {
        if source == SELF_SLOT {
            self.stats.duplicates += 1;
            return;
        }
        let upstream = trees.upstream(source);
        let state = self.sources.entry(source).or_default();
        if state.upstream != upstream {
            if let Some(old) = state.upstream {
                state.previous_upstream = Some((old, now + UPSTREAM_GRACE));
            }
            state.upstream = upstream;
        }
        let from_previous = state
            .previous_upstream
            .is_some_and(|(s, until)| s == from && now <= until);
        if upstream != Some(from) && !from_previous {
            self.stats.rpf_drops += 1;
            return;
        }
        let arrival = state.arrive(packet.seq, now, self.config.nack_delay);
        state.heard(now, ACTIVE_FOR);
        if self.silence_at.is_none() && !self.silence_after.is_zero() {
            self.silence_at = Some(now + state.silence_limit(self.silence_after));
        }
        if arrival == Arrival::Duplicate {
            self.stats.duplicates += 1;
            return;
        }
        let buffered = Buffered {
            sent_at_us: packet.sent_at_us,
            priority: packet.priority,
            payload: packet.payload,
        };
        state.keep(
            packet.seq,
            buffered.clone(),
            self.config.recovery_packets,
            now,
        );
        let next_nack = state.next_nack();
        self.out.push_back(DataOutput::Deliver {
            source,
            seq: packet.seq,
            sent_at_us: buffered.sent_at_us,
            payload: buffered.payload.clone(),
            recovered: arrival == Arrival::Recovered,
        });
        self.forward(source, Some(from), packet.seq, &buffered, trees);
        if let Some(at) = next_nack
            && self.nack_at.is_none_or(|t| at < t)
        {
            self.nack_at = Some(at);
        }
    }

    /// Neighbour `from` asks for packets of `source` it missed: resend what is buffered.
    /// Packets kept longer than [`DataConfig::repair_age`] ago are not resent.
    pub(crate) fn on_nack(&mut self, now: Time, from: Slot, source: Slot, ranges: Vec<(u64, u16)>) {
        let Some(state) = self.sources.get(&source) else {
            return;
        };
        let since = Time::from_micros(
            now.as_micros()
                .saturating_sub(self.config.repair_age.as_micros() as u64),
        );
        // Bounded work: look at no more than four times the resend budget, and spend the
        // budget only on packets still buffered (a long gap's oldest part may be gone).
        let mut looked = 0;
        let mut resend = Vec::new();
        'ranges: for (first, count) in ranges {
            for seq in first..first.saturating_add(u64::from(count)) {
                looked += 1;
                if looked > 4 * MAX_REPAIR || resend.len() as u64 >= MAX_REPAIR {
                    break 'ranges;
                }
                if let Some(b) = state.buffered(seq, since)
                    && b.priority <= self.config.max_repair_class
                {
                    resend.push((seq, b.clone()));
                }
            }
        }
        self.stats.repairs_sent += resend.len() as u64;
        for (seq, packet) in resend {
            self.send_data(from, source, seq, &packet);
        }
    }

    /// The repair timer: ask upstreams for gaps that are due.
    pub(crate) fn nack_tick(&mut self, now: Time, trees: &impl SourceTrees) {
        let delay = self.config.nack_delay;
        // (upstream, source, missing ranges)
        type Request = (Slot, Slot, Vec<(u64, u16)>);
        let mut requests: Vec<Request> = Vec::new();
        let mut next: Option<Time> = None;
        for (&source, state) in &mut self.sources {
            let Some(upstream) = trees.upstream(source) else {
                continue;
            };
            let ranges = state.due_nacks(now, delay, self.config.repair_age);
            if !ranges.is_empty() {
                requests.push((upstream, source, ranges));
            }
            next = soonest(next, state.next_nack());
        }
        for (upstream, source, ranges) in requests {
            self.stats.nacks_sent += 1;
            self.out.push_back(DataOutput::Send {
                to: upstream,
                source,
                msg: Message::Nack { source, ranges },
            });
        }
        self.nack_at = next.map(|at| at.max(now + Duration::from_millis(1)));
    }

    /// The silence check: report the upstream of each stream that stopped (once per silence),
    /// and come back when the next flowing one would be due.
    pub(crate) fn silence_tick(&mut self, now: Time, trees: &impl SourceTrees) {
        if self.silence_at.is_none_or(|at| now < at) {
            return;
        }
        let mut next: Option<Time> = None;
        for (&source, state) in &mut self.sources {
            let Some(last) = state.pace.last() else {
                continue;
            };
            if source == SELF_SLOT
                || state.silence_reported
                || now.saturating_since(last) >= ACTIVE_FOR
            {
                continue;
            }
            let due = last + state.silence_limit(self.silence_after);
            if due > now {
                next = soonest(next, Some(due));
                continue;
            }
            state.silence_reported = true;
            if let Some(upstream) = trees.upstream(source) {
                self.stats.silences += 1;
                self.out
                    .push_back(DataOutput::UpstreamSilent { upstream, at: now });
            }
        }
        self.silence_at = next;
    }

    /// The other sources' streams heard from in the last ten seconds.
    pub(crate) fn streams_in(&self, now: Time) -> usize {
        self.active_sources(now).filter(|&s| s != SELF_SLOT).count()
    }

    /// The sources heard from (or, for this member's own, sent) in the last ten seconds.
    pub(crate) fn active_sources(&self, now: Time) -> impl Iterator<Item = Slot> + '_ {
        self.sources.iter().filter_map(move |(&s, st)| {
            st.pace
                .last()
                .is_some_and(|t| now.saturating_since(t) < ACTIVE_FOR)
                .then_some(s)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A member with neighbours 1, 2 and 3: it reaches source 5 through 1, and 2 and 3 route
    /// to 5 through it.
    struct Star;

    impl SourceTrees for Star {
        fn upstream(&self, source: Slot) -> Option<Slot> {
            (source == 5).then_some(1)
        }
        fn downstream(&self, source: Slot) -> Vec<Slot> {
            match source {
                5 => vec![2, 3],
                SELF_SLOT => vec![1, 2, 3],
                _ => Vec::new(),
            }
        }
    }

    fn config() -> DataConfig {
        DataConfig {
            recovery_packets: 16,
            nack_delay: Duration::from_millis(100),
            repair_age: Duration::from_millis(500),
            max_repair_class: u8::MAX,
        }
    }

    fn drained(d: &mut DataPlane) -> Vec<DataOutput> {
        std::iter::from_fn(|| d.poll_output()).collect()
    }

    fn packet(seq: u64) -> DataPacket {
        DataPacket {
            source: 5,
            seq,
            sent_at_us: 7,
            priority: 1,
            payload: Bytes::from_static(b"p"),
        }
    }

    fn data_to(to: Slot, source: Slot, seq: u64, sent_at_us: u64) -> DataOutput {
        DataOutput::Send {
            to,
            source,
            msg: Message::Data(DataPacket {
                source,
                seq,
                sent_at_us,
                priority: 1,
                payload: Bytes::from_static(b"p"),
            }),
        }
    }

    #[test]
    fn a_packet_from_the_upstream_is_delivered_then_sent_down_the_tree() {
        let mut d = DataPlane::new(config(), Duration::from_millis(200));
        let now = Time::from_secs(1);
        d.on_data(now, 1, 5, packet(0), &Star);
        assert_eq!(
            drained(&mut d),
            vec![
                DataOutput::Deliver {
                    source: 5,
                    seq: 0,
                    sent_at_us: 7,
                    payload: Bytes::from_static(b"p"),
                    recovered: false,
                },
                data_to(2, 5, 0, 7),
                data_to(3, 5, 0, 7),
            ]
        );
        assert_eq!(
            d.poll_timeout(),
            Some(now + Duration::from_millis(200)),
            "no gap to repair; only the silence check is due"
        );
    }

    #[test]
    fn a_stream_that_stops_has_its_upstream_reported_once() {
        let mut d = DataPlane::new(config(), Duration::from_millis(200));
        let gap = Duration::from_millis(150);
        let mut now = Time::from_secs(1);
        for seq in 0..10 {
            d.on_data(now, 1, 5, packet(seq), &Star);
            drained(&mut d);
            now += gap;
        }
        let last = now - gap;
        // Twice the usual gap (300 ms; a steady stream has no deviation) exceeds the 200 ms
        // floor: that is the limit.
        let mut checks = 0;
        while let Some(at) = d.poll_timeout() {
            checks += 1;
            assert!(checks < 10, "the check stops once the silence is reported");
            d.silence_tick(at, &Star);
            let out = drained(&mut d);
            if !out.is_empty() {
                assert_eq!(
                    out,
                    vec![DataOutput::UpstreamSilent {
                        upstream: 1,
                        at: last + gap * 2
                    }]
                );
                break;
            }
        }
        assert_eq!(
            d.poll_timeout(),
            None,
            "a stopped stream is not checked again"
        );
        assert_eq!(d.stats().silences, 1);
        // The stream resumes: the check is armed again.
        let resumed = last + Duration::from_secs(2);
        d.on_data(resumed, 1, 5, packet(10), &Star);
        drained(&mut d);
        assert!(d.poll_timeout().is_some());
    }

    #[test]
    fn no_silence_is_reported_when_switched_off() {
        let mut d = DataPlane::new(config(), Duration::ZERO);
        d.on_data(Time::from_secs(1), 1, 5, packet(0), &Star);
        drained(&mut d);
        assert_eq!(d.poll_timeout(), None);
    }

    #[test]
    fn a_source_counts_its_own_stream_as_active_until_it_stops() {
        let mut d = DataPlane::new(config(), Duration::from_millis(200));
        assert_eq!(d.active_sources(Time::from_secs(1)).count(), 0);
        d.publish(Time::from_secs(1), Bytes::from_static(b"p"), 0, &Star);
        d.on_data(Time::from_secs(1), 1, 5, packet(0), &Star);
        assert_eq!(
            d.active_sources(Time::from_secs(1)).collect::<Vec<_>>(),
            vec![SELF_SLOT, 5]
        );
        assert_eq!(d.active_sources(Time::from_secs(1) + ACTIVE_FOR).count(), 0);
    }

    #[test]
    fn a_packet_from_another_neighbour_is_refused_and_a_second_copy_dropped() {
        let mut d = DataPlane::new(config(), Duration::from_millis(200));
        let now = Time::from_secs(1);
        d.on_data(now, 2, 5, packet(0), &Star);
        assert_eq!(drained(&mut d), Vec::new());
        assert_eq!(d.stats().rpf_drops, 1);
        d.on_data(now, 1, 5, packet(0), &Star);
        drained(&mut d);
        d.on_data(now, 1, 5, packet(0), &Star);
        assert_eq!(drained(&mut d), Vec::new());
        assert_eq!(d.stats().duplicates, 1);
    }

    #[test]
    fn a_gap_is_asked_for_from_the_upstream_when_due() {
        let mut d = DataPlane::new(config(), Duration::from_millis(200));
        let now = Time::from_secs(1);
        d.on_data(now, 1, 5, packet(0), &Star);
        d.on_data(now, 1, 5, packet(3), &Star);
        drained(&mut d);
        let due = now + Duration::from_millis(100);
        assert_eq!(d.poll_timeout(), Some(due));
        d.nack_tick(due, &Star);
        assert_eq!(
            drained(&mut d),
            vec![DataOutput::Send {
                to: 1,
                source: 5,
                msg: Message::Nack {
                    source: 5,
                    ranges: vec![(1, 2)],
                },
            }]
        );
        assert_eq!(d.stats().nacks_sent, 1);
        assert!(d.poll_timeout().is_some_and(|t| t > due), "retried later");
    }

    #[test]
    fn classes_past_the_repair_class_are_not_resent() {
        let mut d = DataPlane::new(
            DataConfig {
                max_repair_class: 1,
                ..config()
            },
            Duration::from_millis(200),
        );
        let now = Time::from_secs(1);
        // A keyframe packet, a base one, an enhancement one.
        for class in [0, 1, 2] {
            d.publish(now, Bytes::from_static(b"p"), class, &Star);
        }
        drained(&mut d);
        d.on_nack(now, 2, SELF_SLOT, vec![(0, 3)]);
        let resent: Vec<u64> = drained(&mut d)
            .into_iter()
            .filter_map(|o| match o {
                DataOutput::Send {
                    msg: Message::Data(p),
                    ..
                } => Some(p.seq),
                _ => None,
            })
            .collect();
        assert_eq!(resent, vec![0, 1], "the enhancement packet is not resent");
        assert_eq!(d.stats().repairs_sent, 2);
    }

    #[test]
    fn a_repair_request_is_answered_from_the_buffer_only() {
        let mut d = DataPlane::new(config(), Duration::from_millis(200));
        let now = Time::from_secs(1);
        d.publish(now, Bytes::from_static(b"p"), 1, &Star);
        d.publish(now, Bytes::from_static(b"p"), 1, &Star);
        drained(&mut d);
        // Packets 0..4 asked for; 0 and 1 are buffered.
        d.on_nack(now, 2, SELF_SLOT, vec![(0, 4)]);
        let sent_at = now.as_micros();
        assert_eq!(
            drained(&mut d),
            vec![
                data_to(2, SELF_SLOT, 0, sent_at),
                data_to(2, SELF_SLOT, 1, sent_at)
            ]
        );
        assert_eq!(d.stats().repairs_sent, 2);
        // Asked again once they were kept longer than the repair age: too late to resend.
        d.on_nack(now + Duration::from_millis(501), 2, SELF_SLOT, vec![(0, 2)]);
        assert_eq!(drained(&mut d), vec![]);
        assert_eq!(d.stats().repairs_sent, 2);
    }
}
