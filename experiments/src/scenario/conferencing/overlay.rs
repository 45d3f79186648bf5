//! One Narada scheme's run of the conference: the group forms with every member's access links
//! as its bandwidth limits, the senders stream synthetic video through it, on-time deliveries are
//! counted per (sender, receiver) in the steady-state window and per second from the first
//! sender, one busy relay's uplink is cut for the congestion episode, and the counts become the
//! scheme's figures.

use std::collections::BTreeMap;
use std::time::Duration;

use media::{MediaPacket, Receiver, SourceConfig, SyntheticSource};
use narada::{Command, Event, Narada, NaradaConfig};
use overlay_core::{Bandwidth, Time, TrafficClass};

use super::{PairResult, Reference, SchemeRun, Timeline, figures_of, mean_ru, tree_shape};
use crate::group::narada::NaradaGroup;
use crate::network::Network;
use crate::report::round6;
use crate::sim::Shaper;

/// How often the simulator re-divides bandwidth among the overlay edges: the time a congestion
/// controller takes to find its share, a few round trips on the matrix's 50–300 ms paths. At one
/// second, an ADSL download shared by four streams from changing parents carried 7.25 of its
/// 8 Mbit/s; at 250 ms the four-sender receivers' mean on seed 1 rose from 0.937 to 0.955.
const SHAPING_INTERVAL: Duration = Duration::from_millis(250);

/// Simulated time between two rounds of feeding the sources and collecting deliveries.
const SLICE: Duration = Duration::from_millis(100);

/// Bytes and delays per (sender stream, receiver) inside a time window.
#[derive(Debug, Default, Clone, Copy)]
struct PairCounters {
    bytes: u64,
    delay_sum_us: u128,
    packets: u64,
}

/// Control, data and probe bytes the group has sent so far (or within a window).
#[derive(Debug, Default, Clone, Copy)]
struct TrafficSnapshot {
    control: u64,
    data: u64,
    probes: u64,
}

fn traffic_snapshot(group: &NaradaGroup) -> TrafficSnapshot {
    let t = group.sim.traffic();
    TrafficSnapshot {
        control: t.bytes_of(TrafficClass::Control) + t.bytes_of(TrafficClass::Probe),
        data: t.bytes_of(TrafficClass::Data),
        probes: t.bandwidth_probe_bytes,
    }
}

/// The congestion episode: a relay's uplink cut to a quarter.
#[derive(Debug, Clone)]
struct Congestion {
    /// The receivers below the relay in the first sender's tree.
    below: Vec<usize>,
    /// The relay's uplink channel.
    channel: u32,
    /// The uplink's capacity before the cut.
    capacity: Bandwidth,
}

/// Cut the uplink of the member forwarding most of `sender`'s tree to a quarter; returns the
/// receivers below that member, the channel and its old capacity (`None` if no member but the
/// sender forwards).
fn start_congestion(group: &mut NaradaGroup, sender: usize) -> Option<Congestion> {
    let parents = group.forwarding_parents(sender);
    let n = parents.len();
    let mut children = vec![0usize; n];
    for p in parents.iter().flatten() {
        children[*p] += 1;
    }
    let relay = (0..n)
        .filter(|&m| m != sender)
        .max_by_key(|&m| (children[m], std::cmp::Reverse(m)))?;
    if children[relay] == 0 {
        return None;
    }
    let below: Vec<usize> = (0..n)
        .filter(|&m| {
            let mut at = m;
            for _ in 0..n {
                match parents[at] {
                    Some(p) if p == relay => return true,
                    Some(p) => at = p,
                    None => return false,
                }
            }
            false
        })
        .collect();
    let net = group.sim.network_mut();
    let channel = 2 * net.access_link(relay) as u32;
    let old = Bandwidth::from_bps_f64(net.capacities()[channel as usize]);
    net.set_channel_capacity(channel, Bandwidth::from_bps_f64(old.bps_f64() / 4.0));
    Some(Congestion {
        below,
        channel,
        capacity: old,
    })
}

/// One Narada scheme's run, advanced in slices of [`SLICE`]: in each, the sources publish what
/// they produced, the steady-state window opens or closes, the congestion episode starts or ends,
/// and the simulator runs to the slice's end while on-time deliveries are counted.
pub(super) struct OverlayRun<'a> {
    group: NaradaGroup,
    senders: &'a [usize],
    reference: &'a Reference,
    t: Timeline,
    /// Each sender and its synthetic video source.
    sources: Vec<(usize, SyntheticSource)>,
    /// Each member's playout (only on-time packets count).
    receivers: Vec<Receiver>,
    /// Counters per (sender, receiver) inside the steady-state window.
    window: BTreeMap<(usize, usize), PairCounters>,
    /// Bytes from the first sender per second and receiver.
    per_second: BTreeMap<u64, BTreeMap<usize, u64>>,
    /// The traffic counters when the window opened; from its close on, what the window cost.
    window_traffic: Option<TrafficSnapshot>,
    /// The congestion episode, once a relay's uplink was cut.
    congested: Option<Congestion>,
    /// The relay crashed (the timeline's crash), once it was.
    crashed: Option<usize>,
    /// Per (sender, receiver) after the crash: the last on-time arrival and the longest gap.
    stalls: BTreeMap<(usize, usize), (Time, Duration)>,
    /// The end of the last slice run.
    now: Time,
}

/// The member a conference's crash kills, given how many streams of other sources each member
/// relays and its mesh degree: the demo's rule (node's `demo::crash_victim`). The busiest relay
/// that does not send; else the source relaying the most other sources' streams (its own then
/// ends); else the best-connected member that does not send. Then the most neighbours, then
/// the lowest member number. A source that relays nothing is never chosen.
pub(super) fn crash_victim(
    relayed: &[usize],
    senders: &[usize],
    degree: impl Fn(usize) -> usize,
) -> Option<usize> {
    (0..relayed.len())
        .map(|m| (m, relayed[m], senders.contains(&m)))
        .filter(|&(_, relayed, sends)| !sends || relayed > 0)
        .max_by_key(|&(m, relayed, sends)| {
            (
                relayed > 0,
                !sends,
                relayed,
                degree(m),
                std::cmp::Reverse(m),
            )
        })
        .map(|(m, ..)| m)
}

impl<'a> OverlayRun<'a> {
    /// Form the group on `net`: every member joins within the first 5 s with `config` and its
    /// access links as its upload and download limits, shaping on; each sender's source starts
    /// at the timeline's stream start.
    pub(super) fn new(
        net: Network,
        config: &NaradaConfig,
        rate: Bandwidth,
        senders: &'a [usize],
        t: Timeline,
        reference: &'a Reference,
        seed: u64,
    ) -> Self {
        let n = net.members();
        let mut group = NaradaGroup::with_configs(
            net,
            |_, host| {
                let mut config = config.clone();
                config.bandwidth.upload = Some(host.access.up);
                config.bandwidth.download = Some(host.access.down);
                config
            },
            seed,
        );
        group
            .sim
            .enable_shaping(Box::new(Shaper::new(SHAPING_INTERVAL)));
        group.schedule_joins(
            &(0..n).collect::<Vec<_>>(),
            Time::ZERO,
            Duration::from_secs(5),
        );
        let source_config = SourceConfig {
            rate,
            ..SourceConfig::default()
        };
        let sources: Vec<(usize, SyntheticSource)> = senders
            .iter()
            .map(|&s| {
                (
                    s,
                    SyntheticSource::new(source_config.clone(), s as u32, t.stream_start),
                )
            })
            .collect();
        let receivers: Vec<Receiver> = (0..n).map(|_| Receiver::conversation()).collect();
        Self {
            group,
            senders,
            reference,
            t,
            sources,
            receivers,
            window: BTreeMap::new(),
            per_second: BTreeMap::new(),
            window_traffic: None,
            congested: None,
            crashed: None,
            stalls: BTreeMap::new(),
            now: Time::ZERO,
        }
    }

    /// Run slice by slice to the timeline's end, then measure.
    pub(super) fn run(mut self) -> SchemeRun {
        while self.now < self.t.end {
            let next = (self.now + SLICE).min(self.t.end);
            self.publish(next);
            self.open_window(next);
            self.congest(next);
            self.crash(next);
            self.deliver(next);
            self.close_window(next);
            self.now = next;
        }
        self.measure()
    }

    /// Schedule every packet the sources produce until `next` as a publish at its timestamp.
    fn publish(&mut self, next: Time) {
        for (s, source) in &mut self.sources {
            for packet in source.poll(next) {
                let at = Time::from_micros(packet.timestamp_us);
                let priority = packet.priority.class();
                self.group.sim.schedule_command(
                    at,
                    *s,
                    Command::Publish {
                        payload: packet.encode(),
                        priority,
                    },
                );
            }
        }
    }

    /// If the window opens in this slice, run to its start and note the traffic so far.
    fn open_window(&mut self, next: Time) {
        if self.window_traffic.is_none() && next > self.t.window.0 {
            self.group.sim.run_until(self.t.window.0);
            self.window_traffic = Some(traffic_snapshot(&self.group));
        }
    }

    /// Start the congestion episode (until a relay could be cut) and end it, each at its time.
    fn congest(&mut self, next: Time) {
        let Some((from, until)) = self.t.congestion else {
            return;
        };
        if self.congested.is_none() && next > from {
            self.group.sim.run_until(from);
            self.congested = start_congestion(&mut self.group, self.senders[0]);
        }
        if let Some(congestion) = self.congested.as_ref()
            && next > until
            && self.now <= until
        {
            self.group.sim.run_until(until);
            self.group
                .sim
                .network_mut()
                .set_channel_capacity(congestion.channel, congestion.capacity);
        }
    }

    /// At the timeline's crash, kill the busiest relay: the member that is the parent of the
    /// most receivers of other sources across the senders' trees, a sender only when no other
    /// member relays (as `esm demo` picks the member others most often name as their next hop
    /// towards a source).
    fn crash(&mut self, next: Time) {
        let Some(at) = self.t.crash else {
            return;
        };
        if self.crashed.is_some() || next <= at {
            return;
        }
        self.group.sim.run_until(at);
        let n = self.receivers.len();
        // The streams each member relays: other sources' receivers it forwards to.
        let mut relayed = vec![0usize; n];
        for &s in self.senders {
            for parent in self.group.forwarding_parents(s).into_iter().flatten() {
                if parent != s {
                    relayed[parent] += 1;
                }
            }
        }
        let degree = |m: usize| self.group.sim.member(m).map_or(0, Narada::degree);
        let Some(victim) = crash_victim(&relayed, self.senders, degree) else {
            return;
        };
        self.group.sim.crash(victim);
        self.crashed = Some(victim);
        // The crashed source's own stream has nothing to recover.
        for &s in self.senders.iter().filter(|&&s| s != victim) {
            for r in (0..n).filter(|&r| r != s && r != victim) {
                self.stalls.insert((s, r), (at, Duration::ZERO));
            }
        }
    }

    /// Run the simulator to `next` and count the on-time deliveries: per second from the first
    /// sender, and per (sender, receiver) inside the window.
    fn deliver(&mut self, next: Time) {
        self.group.sim.run_until(next);
        for emitted in self.group.sim.take_events() {
            let Event::Deliver { payload, .. } = emitted.event else {
                continue;
            };
            let Ok(packet) = MediaPacket::decode(&payload) else {
                continue;
            };
            let m = emitted.member;
            if self.receivers[m].on_packet(emitted.at, &packet) != media::Playout::OnTime {
                continue;
            }
            let bytes = packet.payload.len() as u64;
            let sender = packet.stream as usize;
            if let Some((last, longest)) = self.stalls.get_mut(&(sender, m)) {
                *longest = (*longest).max(emitted.at.saturating_since(*last));
                *last = (*last).max(emitted.at);
            }
            *self
                .per_second
                .entry(emitted.at.as_micros() / 1_000_000)
                .or_default()
                .entry(m)
                .or_default() += bytes * u64::from(sender == self.senders[0]);
            if emitted.at >= self.t.window.0 && emitted.at < self.t.window.1 {
                let c = self.window.entry((sender, m)).or_default();
                c.bytes += bytes;
                c.packets += 1;
                c.delay_sum_us +=
                    u128::from(emitted.at.as_micros().saturating_sub(packet.timestamp_us));
            }
        }
    }

    /// If the window closed in this slice, keep what it cost in traffic.
    fn close_window(&mut self, next: Time) {
        if self.now < self.t.window.1 && next >= self.t.window.1 {
            let start = self.window_traffic.take().unwrap_or_default();
            let end = traffic_snapshot(&self.group);
            self.window_traffic = Some(TrafficSnapshot {
                control: end.control - start.control,
                data: end.data - start.data,
                probes: end.probes - start.probes,
            });
        }
    }

    /// The scheme's figures, per-pair results and bandwidth over time.
    fn measure(self) -> SchemeRun {
        let pairs = self.pairs();
        let mut figures = figures_of(&pairs, self.reference);
        let cost = self.window_traffic.unwrap_or_default();
        figures.overhead_ratio = round6(cost.control as f64 / cost.data.max(1) as f64);
        figures.probe_share = round6(cost.probes as f64 / cost.control.max(1) as f64);
        figures.ru_ratio = mean_ru(self.group.sim.network(), self.senders, |s| {
            self.group.forwarding_parents(s)
        });
        (figures.sender_children, figures.tree_depth_mean) =
            tree_shape(self.senders, |s| self.group.forwarding_parents(s));
        // Bandwidth over time from the first sender: everyone, and those cut off by congestion.
        let affected: Vec<usize> = self
            .congested
            .as_ref()
            .map(|c| c.below.clone())
            .unwrap_or_default();
        let series = self.series(&affected);
        // The longest stall after the crash, a stream that never came back counted to the end.
        figures.worst_stall_s = self.crashed.map(|_| {
            round6(
                self.stalls
                    .values()
                    .map(|&(last, longest)| longest.max(self.t.end.saturating_since(last)))
                    .max()
                    .unwrap_or_default()
                    .as_secs_f64(),
            )
        });
        figures.crashed = self.crashed;
        if let Some((from, until)) = self.t.congestion
            && !affected.is_empty()
        {
            figures.congestion_bw_ratio = Some(self.congestion_bw_ratio(&affected, from, until));
        }
        SchemeRun {
            figures,
            pairs,
            series,
        }
    }

    /// Each (sender, receiver) pair's bandwidth and RTT inside the window.
    fn pairs(&self) -> Vec<PairResult> {
        let seconds = (self.t.window.1 - self.t.window.0).as_secs_f64();
        self.reference
            .pairs
            .keys()
            .map(|&(sender, receiver)| {
                let c = self
                    .window
                    .get(&(sender, receiver))
                    .copied()
                    .unwrap_or_default();
                let rtt_ms = if c.packets > 0 {
                    2.0 * (c.delay_sum_us / u128::from(c.packets)) as f64 / 1e3
                } else {
                    f64::NAN
                };
                PairResult {
                    sender,
                    receiver,
                    bw_bps: c.bytes as f64 * 8.0 / seconds,
                    rtt_ms,
                }
            })
            .collect()
    }

    /// Mean Mbps received from the first sender each second: by all its receivers, and by the
    /// `affected` ones (if any).
    fn series(&self, affected: &[usize]) -> Vec<(f64, f64, Option<f64>)> {
        let n = self.receivers.len();
        let receivers_of_0: Vec<usize> = (0..n).filter(|&r| r != self.senders[0]).collect();
        self.per_second
            .iter()
            .map(|(&sec, bytes)| {
                let mbps = |r: &usize| bytes.get(r).copied().unwrap_or(0) as f64 * 8.0 / 1e6;
                let all = receivers_of_0.iter().map(mbps).sum::<f64>()
                    / receivers_of_0.len().max(1) as f64;
                let cut = (!affected.is_empty())
                    .then(|| affected.iter().map(mbps).sum::<f64>() / affected.len() as f64);
                (sec as f64, all, cut)
            })
            .collect()
    }

    /// Mean bandwidth of the `affected` receivers over what each gets alone from the first
    /// sender: before, during and after the episode from `from` to `until`.
    fn congestion_bw_ratio(&self, affected: &[usize], from: Time, until: Time) -> [f64; 3] {
        let alone = |r: usize| {
            self.reference
                .pairs
                .get(&(self.senders[0], r))
                .map_or(1.0, |p| p.0)
        };
        let span = until - from;
        let ratio_in = |a: Time, b: Time| {
            let (a, b) = (a.as_micros() / 1_000_000, b.as_micros() / 1_000_000);
            let secs = (b - a).max(1) as f64;
            let got: f64 = affected
                .iter()
                .map(|&r| {
                    let bytes: u64 = (a..b)
                        .filter_map(|s| self.per_second.get(&s).and_then(|m| m.get(&r)))
                        .sum();
                    bytes as f64 * 8.0 / secs / alone(r).max(1.0)
                })
                .sum();
            round6(got / affected.len() as f64)
        };
        [
            ratio_in(from - span, from),
            ratio_in(from, until),
            ratio_in(until, (until + span).min(self.t.end)),
        ]
    }
}
