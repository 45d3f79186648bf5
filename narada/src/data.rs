//! The data plane: reverse-path forwarding of each source's packets, and gap repair.
//!
//! A member accepts a packet of source S only from its next hop towards S (and, for a moment
//! after a route change, from the previous one), and forwards it to the neighbours whose route
//! to S goes through this member. Every source thus gets its own shortest-path tree, derived
//! from routing with no tree protocol. Duplicates are dropped; gaps left by a route change are
//! asked for from the current upstream, which resends what it buffered. Each packet carries its
//! drop class, so the driver's per-link pacer can drop the least important first where a link
//! is slower than the stream; how much is sent to and received from each neighbour is counted
//! for passive bandwidth estimation.

use std::time::Duration;

use bytes::Bytes;
use overlay_core::{Time, WireMessage};

use crate::forwarding::{Arrival, Buffered};
use crate::members::{SELF_SLOT, Slot};
use crate::message::{DataPacket, Handle, Message};
use crate::node::{Event, Narada, Timer};

/// Most packets one repair request may ask for.
const MAX_REPAIR: u64 = 1024;

/// How long packets from the previous upstream are still accepted after a route change.
const UPSTREAM_GRACE: Duration = Duration::from_secs(2);

impl Narada {
    pub(crate) fn publish(&mut self, now: Time, payload: Bytes, priority: u8) {
        if !self.joined || self.leaving_since.is_some() {
            return;
        }
        let seq = self.next_data_seq;
        self.next_data_seq += 1;
        let packet = Buffered {
            sent_at_us: now.as_micros(),
            priority,
            payload,
        };
        let capacity = self.config.recovery_packets;
        self.sources
            .entry(SELF_SLOT)
            .or_default()
            .keep(seq, packet.clone(), capacity);
        self.forward(SELF_SLOT, None, seq, &packet);
    }

    /// Send a data packet to neighbour `n`, counting its bytes for the rate report.
    fn send_data(&mut self, n: Slot, source: Slot, seq: u64, packet: &Buffered) {
        self.ensure_introduced(n, source);
        let msg = Message::Data(DataPacket {
            source,
            seq,
            sent_at_us: packet.sent_at_us,
            priority: packet.priority,
            payload: packet.payload.clone(),
        });
        if let Some(nb) = self.neighbours.get_mut(&n) {
            nb.sent_bytes += msg.wire_size() as u64;
            nb.sent_sources.insert(source);
        }
        self.send(n, msg);
    }

    /// Send a packet of `source` to every neighbour that routes to it through this member.
    fn forward(&mut self, source: Slot, from: Option<Slot>, seq: u64, packet: &Buffered) {
        // Never back to where it came from, nor to this member's own upstream for the source: a
        // neighbour whose news that it now routes through this member is stale would otherwise
        // bounce packets back up (a transient two-member loop).
        let upstream = self.routing.route(source).map(|r| r.next_hop);
        let children: Vec<Slot> = self
            .neighbours
            .keys()
            .copied()
            .filter(|&n| {
                Some(n) != from && Some(n) != upstream && self.routing.routes_through_me(n, source)
            })
            .collect();
        for n in children {
            self.send_data(n, source, seq, packet);
        }
    }

    pub(crate) fn on_data(&mut self, now: Time, from: Slot, packet: DataPacket) {
        let Some(source) = self.translate(from, packet.source) else {
            return;
        };
        if source == SELF_SLOT {
            self.stats.duplicates += 1;
            return;
        }
        let upstream = self.routing.route(source).map(|r| r.next_hop);
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
        state.last_arrival = Some(now);
        if arrival == Arrival::Duplicate {
            self.stats.duplicates += 1;
            return;
        }
        let buffered = Buffered {
            sent_at_us: packet.sent_at_us,
            priority: packet.priority,
            payload: packet.payload,
        };
        state.keep(packet.seq, buffered.clone(), self.config.recovery_packets);
        let next_nack = state.next_nack();
        if let Some(id) = self.members.id_of(source) {
            self.outbox.emit(Event::Deliver {
                source: id,
                seq: packet.seq,
                sent_at_us: buffered.sent_at_us,
                payload: buffered.payload.clone(),
                recovered: arrival == Arrival::Recovered,
            });
        }
        self.forward(source, Some(from), packet.seq, &buffered);
        if let Some(at) = next_nack
            && self.timers.get(Timer::Nack).is_none_or(|t| at < t)
        {
            self.timers.set(Timer::Nack, at);
        }
    }

    /// A neighbour asks for packets it missed: resend what is buffered.
    pub(crate) fn on_nack(&mut self, from: Slot, source: Handle, ranges: Vec<(u64, u16)>) {
        let Some(source) = self.translate(from, source) else {
            return;
        };
        let Some(state) = self.sources.get(&source) else {
            return;
        };
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
                if let Some(b) = state.buffered(seq) {
                    resend.push((seq, b.clone()));
                }
            }
        }
        self.stats.repairs_sent += resend.len() as u64;
        for (seq, packet) in resend {
            self.send_data(from, source, seq, &packet);
        }
    }

    /// Ask upstreams for gaps that are due.
    pub(crate) fn nack_tick(&mut self, now: Time) {
        let delay = self.config.nack_delay;
        // (upstream, source, missing ranges)
        type Request = (Slot, Slot, Vec<(u64, u16)>);
        let mut requests: Vec<Request> = Vec::new();
        let mut next: Option<Time> = None;
        for (&source, state) in &mut self.sources {
            let Some(upstream) = self.routing.route(source).map(|r| r.next_hop) else {
                continue;
            };
            let ranges = state.due_nacks(now, delay);
            if !ranges.is_empty() {
                requests.push((upstream, source, ranges));
            }
            if let Some(at) = state.next_nack() {
                next = Some(next.map_or(at, |n: Time| n.min(at)));
            }
        }
        for (upstream, source, ranges) in requests {
            self.stats.nacks_sent += 1;
            self.ensure_introduced(upstream, source);
            self.send(upstream, Message::Nack { source, ranges });
        }
        if let Some(at) = next {
            self.timers
                .set(Timer::Nack, at.max(now + Duration::from_millis(1)));
        }
    }

    /// Tell each neighbour how much data it was sent since the last report; probe links that
    /// lost bandwidth and carry no data, so their recovery is noticed.
    pub(crate) fn rate_tick(&mut self, now: Time) {
        let recent = Duration::from_secs(10);
        self.active_streams = self
            .sources
            .values()
            .filter(|st| {
                st.last_arrival
                    .is_some_and(|t| now.saturating_since(t) < recent)
            })
            .count()
            .max(1);
        let millis = u32::try_from(self.config.rate_interval.as_millis()).unwrap_or(u32::MAX);
        let reports: Vec<(Slot, u64, u16)> = self
            .neighbours
            .iter_mut()
            .filter(|(_, nb)| nb.sent_bytes > 0)
            .map(|(&n, nb)| {
                let streams =
                    u16::try_from(std::mem::take(&mut nb.sent_sources).len()).unwrap_or(u16::MAX);
                (n, std::mem::take(&mut nb.sent_bytes), streams)
            })
            .collect();
        for (n, sent_bytes, streams) in reports {
            self.send(
                n,
                Message::Rate {
                    sent_bytes,
                    millis,
                    streams,
                },
            );
        }
        if !self.config.metric.uses_bandwidth() || self.access_is_bottleneck(now) {
            return;
        }
        // Re-probe a narrowed, idle link only while some source reaches this member at less
        // than full bandwidth (otherwise its recovery could not improve anything); probe a new
        // link once.
        let full = self.config.bandwidth_levels;
        let short = self
            .sources
            .keys()
            .any(|&s| s != SELF_SLOT && self.routing.metric_to(s).is_none_or(|m| m.width < full));
        let interval = self.config.reprobe_interval;
        let stale: Vec<Slot> = self
            .neighbours
            .iter()
            .filter(|(_, nb)| {
                let degraded = nb.bandwidth.level().is_some_and(|l| l < full);
                let idle = nb.received_bytes == 0;
                let due = nb
                    .probed_at
                    .is_none_or(|t| now.saturating_since(t) >= interval);
                (short && degraded && idle && due)
                    || (nb.bandwidth.level().is_none() && nb.probed_at.is_none())
            })
            .map(|(&n, _)| n)
            .collect();
        for n in stale {
            if let Some(nb) = self.neighbours.get_mut(&n) {
                nb.probed_at = Some(now);
            }
            self.probe_bandwidth(now, n);
        }
    }

    /// A neighbour reported what it sent over `millis`: compare with what arrived.
    pub(crate) fn on_rate(
        &mut self,
        now: Time,
        from: Slot,
        sent_bytes: u64,
        millis: u32,
        streams: u16,
    ) {
        let Some(nb) = self.neighbours.get_mut(&from) else {
            return;
        };
        // Per stream: the link is shared by every stream it carries.
        let per_stream = f64::from(millis.max(1)) / 1e3 * f64::from(streams.max(1));
        let claimed = overlay_core::Bandwidth::from_bps_f64(sent_bytes as f64 * 8.0 / per_stream);
        let received = overlay_core::Bandwidth::from_bps_f64(
            std::mem::take(&mut nb.received_bytes) as f64 * 8.0 / per_stream,
        );
        let before = nb.bandwidth.level();
        nb.bandwidth.on_report(now, claimed, received);
        if nb.bandwidth.level() != before {
            self.reroute(now);
        }
    }
}
