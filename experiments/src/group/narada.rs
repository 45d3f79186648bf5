//! A Narada group in the simulator: members joining through bootstrap lists, a source
//! streaming, and what everyone received.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use narada::{Command, Event, Narada, NaradaConfig};
use overlay_core::{NodeId, Time};
use rand::RngExt;

use crate::network::Network;
use crate::sim::{SimConfig, Simulator};

use super::BOOTSTRAP_EXTRA;

/// What members received from the streaming source.
#[derive(Debug, Clone, Default)]
pub struct DeliveryLog {
    /// Per member, which sequence numbers arrived (a bitmap).
    pub received: Vec<Vec<u64>>,
    /// Live (not repaired) arrivals in order: `(member, seq, arrival)`, kept only when asked.
    pub live_arrivals: Option<Vec<(usize, u64, Time)>>,
    /// Packets that arrived through gap repair.
    pub recovered: u64,
    /// RDP of delivered packets: delay over the unicast delay from the source.
    pub packet_rdp: Vec<f64>,
}

impl DeliveryLog {
    fn mark(&mut self, member: usize, seq: u64) -> bool {
        let words = &mut self.received[member];
        let (w, b) = ((seq / 64) as usize, seq % 64);
        if words.len() <= w {
            words.resize(w + 1, 0);
        }
        let new = words[w] & (1 << b) == 0;
        words[w] |= 1 << b;
        new
    }

    /// Whether `member` received packet `seq`.
    pub fn has(&self, member: usize, seq: u64) -> bool {
        self.received[member]
            .get((seq / 64) as usize)
            .is_some_and(|w| w & (1 << (seq % 64)) != 0)
    }
}

/// A simulated Narada group.
#[derive(Debug)]
pub struct NaradaGroup {
    /// The simulator.
    pub sim: Simulator<Narada, Network>,
    ids: BTreeMap<NodeId, usize>,
    /// What members received.
    pub log: DeliveryLog,
    /// The member streaming, if any.
    pub source: Option<usize>,
    /// Packets published so far (by schedule).
    pub published: Vec<(u64, Time)>,
    /// Packets sent at or after this time are bursts (see [`super::bursts`]): their arrivals
    /// go to `burst_arrivals`, not to the stream's log.
    pub bursts_from: Option<Time>,
    /// Arrivals of burst packets: `(member, send time in µs, at)`.
    pub burst_arrivals: Vec<(usize, u64, Time)>,
    seed: u64,
}

impl NaradaGroup {
    /// Every host of `net` becomes a member (not yet joined).
    pub fn new(net: Network, config: &NaradaConfig, seed: u64) -> Self {
        Self::with_configs(net, |_, _| config.clone(), seed)
    }

    /// Every host becomes a member with the config `config_of(index, host)` (its seed is set
    /// here, from the run's seed).
    pub fn with_configs(
        net: Network,
        config_of: impl Fn(usize, &crate::network::Host) -> NaradaConfig,
        seed: u64,
    ) -> Self {
        let n = net.members();
        let configs: Vec<NaradaConfig> = net
            .hosts()
            .iter()
            .enumerate()
            .map(|(i, h)| config_of(i, h))
            .collect();
        let mut sim = Simulator::new(
            net,
            SimConfig {
                seed,
                ..SimConfig::default()
            },
        );
        let mut ids = BTreeMap::new();
        for (i, config) in configs.into_iter().enumerate() {
            let id = Simulator::<Narada, Network>::member_id(i);
            let member_config = NaradaConfig {
                seed: sim.member_seed(i),
                ..config
            };
            sim.add_member(i, Narada::new(id, member_config, Time::ZERO));
            ids.insert(id, i);
        }
        let log = DeliveryLog {
            received: vec![Vec::new(); n],
            ..DeliveryLog::default()
        };
        Self {
            sim,
            ids,
            log,
            source: None,
            published: Vec::new(),
            bursts_from: None,
            burst_arrivals: Vec::new(),
            seed,
        }
    }

    /// The member index of `id`.
    pub fn index_of(&self, id: &NodeId) -> Option<usize> {
        self.ids.get(id).copied()
    }

    /// Members join at random times in `[start, start + window)`; member 0 starts the group at
    /// `start`; each other member's bootstrap list is member 0 and a few who joined before it.
    pub fn schedule_joins(&mut self, members: &[usize], start: Time, window: Duration) {
        let plan = super::join_plan(self.seed, members, start, window, |m| {
            Simulator::<Narada, Network>::member_id(m)
        });
        for (at, m, bootstrap) in plan {
            self.sim
                .schedule_command(at, m, Command::Join { bootstrap });
        }
    }

    /// `source` publishes `packet_bytes`-byte packets at `rate` bits per second over
    /// `[from, until)`.
    pub fn schedule_stream(
        &mut self,
        source: usize,
        from: Time,
        until: Time,
        rate: f64,
        packet_bytes: usize,
    ) {
        self.source = Some(source);
        let payload = Bytes::from(vec![0u8; packet_bytes]);
        let interval = Duration::from_secs_f64(packet_bytes as f64 * 8.0 / rate.max(1.0));
        let mut at = from;
        let mut seq = self.published.len() as u64;
        while at < until {
            self.sim.schedule_command(
                at,
                source,
                Command::Publish {
                    payload: payload.clone(),
                    priority: 1,
                },
            );
            self.published.push((seq, at));
            seq += 1;
            at += interval;
        }
    }

    /// `source` publishes one `packet_bytes`-byte packet at each of `times` (not logged as the
    /// stream: see [`Self::bursts_from`]).
    pub fn schedule_publish(
        &mut self,
        source: usize,
        times: impl IntoIterator<Item = Time>,
        packet_bytes: usize,
    ) {
        let payload = Bytes::from(vec![0u8; packet_bytes]);
        for at in times {
            self.sim.schedule_command(
                at,
                source,
                Command::Publish {
                    payload: payload.clone(),
                    priority: 1,
                },
            );
        }
    }

    /// Bootstrap list for a member joining late: member 0 and a few live members.
    pub fn bootstrap_for(&self, rng: &mut overlay_core::rng::ProtocolRng) -> Vec<NodeId> {
        let live: Vec<usize> = (0..self.sim.network().members())
            .filter(|&m| self.is_live(m))
            .collect();
        let mut list = vec![Simulator::<Narada, Network>::member_id(0)];
        for _ in 0..BOOTSTRAP_EXTRA.min(live.len()) {
            let id = Simulator::<Narada, Network>::member_id(live[rng.random_range(0..live.len())]);
            if !list.contains(&id) {
                list.push(id);
            }
        }
        list
    }

    /// Run to `until`, logging deliveries from the source.
    pub fn run_until(&mut self, until: Time) {
        // Run in slices so the event log never grows large.
        while self.sim.now() < until {
            let next = (self.sim.now() + Duration::from_secs(1)).min(until);
            self.sim.run_until(next);
            self.drain();
        }
    }

    fn drain(&mut self) {
        let source_id = self.source.map(Simulator::<Narada, Network>::member_id);
        for emitted in self.sim.take_events() {
            if let Event::Deliver {
                source,
                seq,
                sent_at_us,
                recovered,
                ..
            } = emitted.event
            {
                if self
                    .bursts_from
                    .is_some_and(|from| sent_at_us >= from.as_micros())
                {
                    self.burst_arrivals
                        .push((emitted.member, sent_at_us, emitted.at));
                    continue;
                }
                if Some(source) != source_id || !self.log.mark(emitted.member, seq) {
                    continue;
                }
                if recovered {
                    self.log.recovered += 1;
                } else if let Some(arrivals) = &mut self.log.live_arrivals {
                    arrivals.push((emitted.member, seq, emitted.at));
                }
                let delay_us = emitted.at.as_micros().saturating_sub(sent_at_us);
                if let Some(s) = self.source {
                    let unicast = self
                        .sim
                        .network()
                        .unicast_delay_micros(s, emitted.member)
                        .max(1);
                    self.log.packet_rdp.push(delay_us as f64 / unicast as f64);
                }
            }
        }
    }

    /// Each member's upstream for `source` (its next hop towards it), as member indices.
    pub fn parents(&self, source: usize) -> Vec<Option<usize>> {
        let source_id = Simulator::<Narada, Network>::member_id(source);
        (0..self.sim.network().members())
            .map(|m| {
                if m == source {
                    return None;
                }
                let member = self.sim.member(m)?;
                if member.has_left() {
                    return None;
                }
                member
                    .next_hop(&source_id)
                    .and_then(|id| self.index_of(&id))
            })
            .collect()
    }

    /// The data plane's upstream of each member for `source`: its next hop, if that next hop
    /// also forwards to it (both ends agree, so packets flow on that edge).
    pub fn forwarding_parents(&self, source: usize) -> Vec<Option<usize>> {
        let source_id = Simulator::<Narada, Network>::member_id(source);
        let me_of = |m: usize| Simulator::<Narada, Network>::member_id(m);
        self.parents(source)
            .into_iter()
            .enumerate()
            .map(|(m, p)| {
                let p = p?;
                let upstream = self.sim.member(p)?;
                upstream
                    .forwards_to(&source_id)
                    .contains(&me_of(m))
                    .then_some(p)
            })
            .collect()
    }

    /// Whether member `m` is alive, joined and not gone.
    pub fn is_live(&self, m: usize) -> bool {
        self.sim
            .member(m)
            .is_some_and(|p| p.is_joined() && !p.has_left())
    }

    /// Whether the mesh is whole: live members form one component and every one has a route to
    /// member 0.
    pub fn mesh_whole(&self) -> bool {
        let n = self.sim.network().members();
        let live: Vec<usize> = (0..n).filter(|&m| self.is_live(m)).collect();
        let Some(&start) = live.first() else {
            return true;
        };
        let mut seen = std::collections::BTreeSet::from([start]);
        let mut stack = vec![start];
        while let Some(m) = stack.pop() {
            for id in self
                .sim
                .member(m)
                .map(Narada::neighbours)
                .unwrap_or_default()
            {
                if let Some(o) = self.index_of(&id)
                    && self.is_live(o)
                    && seen.insert(o)
                {
                    stack.push(o);
                }
            }
        }
        let parents = self.parents(0);
        seen.len() == live.len() && live.iter().all(|&m| m == 0 || parents[m].is_some())
    }

    /// Mesh degrees of live members.
    pub fn degrees(&self) -> Vec<usize> {
        (0..self.sim.network().members())
            .filter(|&m| self.is_live(m))
            .filter_map(|m| self.sim.member(m).map(Narada::degree))
            .collect()
    }
}
