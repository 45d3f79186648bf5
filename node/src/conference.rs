//! A conferencing member: Narada with the bandwidth-then-latency metric over the QUIC runtime,
//! an optional synthetic source, per-source receive figures, and the `/status` and `/metrics`
//! pages.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use narada::{Command, Event, MetricKind, Narada, NaradaConfig};
use overlay_core::{Bandwidth, NodeId, Time};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::admission::GroupSecret;
use crate::connect::{Connector, TransportSettings};
use crate::identity::Identity;
use crate::runtime::{self, Control, RuntimeHandle, TransportSnapshot, WallClock};

/// Settings of a conference member (the flags of `esm conference`, or its TOML file).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConferenceConfig {
    /// The group's name.
    pub group: String,
    /// Where to listen for members (UDP).
    pub listen: SocketAddr,
    /// Members to join through (none founds the group).
    #[serde(default)]
    pub join: Vec<SocketAddr>,
    /// Send synthetic media at this rate (none: only receive).
    #[serde(default)]
    pub send_rate: Option<Bandwidth>,
    /// Serve `/status` and `/metrics` here.
    #[serde(default)]
    pub http: Option<SocketAddr>,
    /// The member's key file (created on first start).
    pub key_file: PathBuf,
    /// The group secret's file (else the `ESM_SECRET` variable).
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
    /// The rate bandwidth levels are measured against.
    #[serde(default = "default_stream_rate")]
    pub stream_rate: Bandwidth,
    /// An anycast resolver to register with as a server of `GROUP%DOMAIN`.
    #[serde(default)]
    pub resolver: Option<SocketAddr>,
    /// The anycast domain.
    #[serde(default = "default_domain")]
    pub anycast_domain: String,
    /// With no `join` addresses, look up an entry member by name at the resolver (founding
    /// the group if it has none).
    #[serde(default)]
    pub join_by_name: bool,
}

fn default_domain() -> String {
    crate::anycast::DEFAULT_DOMAIN.to_owned()
}

impl ConferenceConfig {
    /// The group's anycast name.
    pub fn anycast_name(&self) -> Result<anycast_resolver::AnycastName, String> {
        anycast_resolver::AnycastName::new(&self.group, &self.anycast_domain)
            .map_err(|e| format!("anycast name {}%{}: {e}", self.group, self.anycast_domain))
    }
}

fn default_stream_rate() -> Bandwidth {
    Bandwidth::from_kbps(500)
}

/// One source as a receiver sees it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SourceStatus {
    /// Receive rate over the last two seconds, kbit/s.
    pub rate_kbps: f64,
    /// Packets missing (by sequence number) over the last finished interval of two seconds or
    /// more, as a fraction.
    pub loss: f64,
    /// Smoothed one-way delay, milliseconds (source and receiver share a wall clock on one
    /// machine; across machines it includes clock offset).
    pub delay_ms: f64,
    /// Packets received in all.
    pub packets: u64,
    /// Packets that arrived through gap repair.
    pub recovered: u64,
    /// Milliseconds since the last packet.
    pub last_heard_ms: u64,
}

/// A route as `/status` lists it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RouteStatus {
    /// The destination.
    pub dest: String,
    /// The next hop.
    pub next_hop: Option<String>,
    /// The route's latency, milliseconds.
    pub latency_ms: Option<f64>,
    /// Its bandwidth level (of the configured levels).
    pub width: Option<u16>,
}

/// `/status`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ConferenceStatus {
    /// This member.
    pub id: String,
    /// The group.
    pub group: String,
    /// Whether it joined.
    pub joined: bool,
    /// Members believed alive (this one included).
    pub members: Vec<String>,
    /// Mesh neighbours.
    pub neighbours: Vec<String>,
    /// Routes to every other member.
    pub routes: Vec<RouteStatus>,
    /// Per source, what arrives.
    pub sources: BTreeMap<String, SourceStatus>,
    /// Packets this member sent as a source.
    pub sent_packets: u64,
    /// The transport: peers with RTT and path rate, counters.
    pub transport: TransportSnapshot,
}

/// What one receiver measures of one source, with the `probe` crate's estimators: delivered
/// rate over a two-second window (bounded buckets), loss by sequence number over intervals of
/// at least two seconds, smoothed one-way delay.
struct SourceMeter {
    rate: probe::RateMeter,
    loss: probe::SequenceLossMeter,
    /// Loss over the last finished interval, and when the current one began.
    last_loss: f64,
    interval_from: Time,
    delay_us: probe::Ewma,
    packets: u64,
    recovered: u64,
    last: Time,
}

const WINDOW: Duration = Duration::from_secs(2);

impl SourceMeter {
    fn new(now: Time) -> Self {
        Self {
            // The meter's current bucket is partly filled yet the rate divides by the whole
            // window: 100 buckets keep that under-count under 1%.
            rate: probe::RateMeter::new(WINDOW, 100),
            loss: probe::SequenceLossMeter::default(),
            last_loss: 0.0,
            interval_from: now,
            delay_us: probe::Ewma::new(0.1),
            packets: 0,
            recovered: 0,
            last: now,
        }
    }

    fn add(&mut self, now: Time, seq: u64, bytes: usize, sent_at_us: u64, recovered: bool) {
        self.rate.record(now, bytes as u64);
        self.loss.record(seq);
        self.delay_us
            .update(now.as_micros().saturating_sub(sent_at_us) as f64);
        self.packets += 1;
        self.recovered += u64::from(recovered);
        self.last = now;
    }

    fn status(&mut self, now: Time) -> SourceStatus {
        if now.saturating_since(self.interval_from) >= WINDOW {
            if let Some((expected, received)) = self.loss.take_interval()
                && expected > 0
            {
                self.last_loss = 1.0 - received as f64 / expected as f64;
            }
            self.interval_from = now;
        }
        SourceStatus {
            rate_kbps: self.rate.rate(now).map_or(0.0, |r| r.bps_f64() / 1e3),
            loss: self.last_loss,
            delay_ms: self.delay_us.value().map_or(0.0, |d| d / 1e3),
            packets: self.packets,
            recovered: self.recovered,
            last_heard_ms: now.saturating_since(self.last).as_millis() as u64,
        }
    }
}

#[derive(Default)]
struct ProtocolView {
    joined: bool,
    members: Vec<String>,
    neighbours: Vec<String>,
    routes: Vec<RouteStatus>,
}

/// The shared state behind `/status`.
#[derive(Default)]
pub struct StatusBoard {
    view: Arc<Mutex<ProtocolView>>,
    sources: Mutex<BTreeMap<NodeId, SourceMeter>>,
    sent: Mutex<u64>,
    group: String,
    id: String,
    transport: Arc<Mutex<TransportSnapshot>>,
}

impl std::fmt::Debug for StatusBoard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatusBoard").field("id", &self.id).finish()
    }
}

impl StatusBoard {
    /// The status now.
    pub fn status(&self) -> ConferenceStatus {
        let now = WallClock::default().now();
        let view = self.view.lock().map(|v| {
            (
                v.joined,
                v.members.clone(),
                v.neighbours.clone(),
                v.routes.clone(),
            )
        });
        let (joined, members, neighbours, routes) = view.unwrap_or_default();
        let sources = self
            .sources
            .lock()
            .map(|mut s| {
                s.iter_mut()
                    .map(|(id, w)| (id.to_hex(), w.status(now)))
                    .collect()
            })
            .unwrap_or_default();
        ConferenceStatus {
            id: self.id.clone(),
            group: self.group.clone(),
            joined,
            members,
            neighbours,
            routes,
            sources,
            sent_packets: self.sent.lock().map(|s| *s).unwrap_or(0),
            transport: self.transport.lock().map(|t| t.clone()).unwrap_or_default(),
        }
    }

    /// The Prometheus text exposition of the status.
    pub fn metrics(&self) -> String {
        let s = self.status();
        let mut out = String::new();
        let mut gauge = |name: &str, help: &str, rows: Vec<(String, f64)>| {
            out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} gauge\n"));
            for (labels, v) in rows {
                out.push_str(&format!("{name}{labels} {v}\n"));
            }
        };
        gauge(
            "esm_members",
            "Members believed alive, this one included.",
            vec![(String::new(), s.members.len() as f64)],
        );
        gauge(
            "esm_neighbours",
            "Mesh neighbours.",
            vec![(String::new(), s.neighbours.len() as f64)],
        );
        let by_source = |f: fn(&SourceStatus) -> f64| {
            s.sources
                .iter()
                .map(|(id, st)| (format!("{{source=\"{id}\"}}"), f(st)))
                .collect::<Vec<_>>()
        };
        gauge(
            "esm_source_rate_kbps",
            "Receive rate per source over the last two seconds, kbit/s.",
            by_source(|st| st.rate_kbps),
        );
        gauge(
            "esm_source_loss_ratio",
            "Missing packets per source over the last two seconds.",
            by_source(|st| st.loss),
        );
        gauge(
            "esm_source_delay_ms",
            "Median one-way delay per source, milliseconds.",
            by_source(|st| st.delay_ms),
        );
        let peers = |f: fn(&runtime::PeerSnapshot) -> f64| {
            s.transport
                .peers
                .iter()
                .map(|p| (format!("{{peer=\"{}\"}}", p.id), f(p)))
                .collect::<Vec<_>>()
        };
        gauge(
            "esm_peer_rtt_ms",
            "QUIC smoothed RTT per peer, milliseconds.",
            peers(|p| p.rtt_ms),
        );
        let c = s.transport.counters;
        gauge(
            "esm_transport_total",
            "Transport counters.",
            [
                ("admissions", c.admissions),
                ("admissions_refused", c.admissions_refused),
                ("bad_frames", c.bad_frames),
                ("bad_datagrams", c.bad_datagrams),
                ("messages_sent", c.messages_sent),
                ("messages_received", c.messages_received),
                ("sends_dropped", c.sends_dropped),
                ("dials_failed", c.dials_failed),
            ]
            .into_iter()
            .map(|(k, v)| (format!("{{counter=\"{k}\"}}"), v as f64))
            .collect(),
        );
        out
    }
}

/// Why a member could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The identity.
    #[error(transparent)]
    Identity(#[from] crate::identity::IdentityError),
    /// The group or secret.
    #[error(transparent)]
    Admission(#[from] crate::admission::AdmissionError),
    /// The QUIC endpoint.
    #[error(transparent)]
    Connect(#[from] crate::connect::ConnectError),
    /// The anycast resolver.
    #[error("anycast: {0}")]
    Anycast(String),
    /// The HTTP listener.
    #[error("cannot serve HTTP on {addr}: {reason}")]
    Http {
        /// The address.
        addr: SocketAddr,
        /// Why.
        reason: String,
    },
}

/// A running conference member.
#[derive(Debug)]
pub struct Member {
    /// Its id.
    pub id: NodeId,
    /// Where it listens for members.
    pub listen: SocketAddr,
    /// Where it serves HTTP, if it does.
    pub http: Option<SocketAddr>,
    /// Its status.
    pub board: Arc<StatusBoard>,
    control: mpsc::Sender<Control<Command>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    anycast: Option<crate::anycast::AnycastEntry>,
}

impl Member {
    /// Starts a member: identity, endpoint, HTTP, joining (retried with backoff), sending.
    pub async fn start(config: &ConferenceConfig) -> Result<Self, StartError> {
        let identity = Identity::load_or_create(&config.key_file)?;
        let admission =
            GroupSecret::from_file_or_env(&config.group, config.secret_file.as_deref())?;
        Self::start_with(config, identity, admission).await
    }

    /// Starts a member with an identity and secret already at hand.
    pub async fn start_with(
        config: &ConferenceConfig,
        identity: Identity,
        admission: GroupSecret,
    ) -> Result<Self, StartError> {
        let id = identity.id();
        let name = match config.resolver {
            Some(_) => Some(config.anycast_name().map_err(StartError::Anycast)?),
            None => None,
        };
        let mut join = config.join.clone();
        if let (Some(resolver), Some(name), true) = (
            config.resolver,
            name.as_ref(),
            config.join_by_name && join.is_empty(),
        ) {
            match crate::anycast::resolve(&identity, admission.clone(), resolver, name)
                .await
                .map_err(StartError::Anycast)?
            {
                crate::anycast::Lookup::Found { server, address } => {
                    tracing::info!(%name, %server, %address, "joining through the anycast answer");
                    join.push(address);
                }
                crate::anycast::Lookup::Nobody(why) => {
                    tracing::info!(%name, %why, "no member to join: founding the group");
                }
            }
        }
        let connector = Connector::bind(
            config.listen,
            identity.clone(),
            admission.clone(),
            TransportSettings::default(),
        )?;
        let listen = connector.local_addr();
        let narada_config = NaradaConfig {
            metric: MetricKind::BandwidthLatency,
            stream_rate: config.stream_rate,
            ..NaradaConfig::default()
        };
        let now = WallClock::default().now();
        let narada = Narada::new(id, narada_config, now);
        let view = Arc::new(Mutex::new(ProtocolView::default()));
        let observer_view = view.clone();
        let observer: runtime::Observer<Narada> = Box::new(move |n: &Narada| {
            let members = n.alive_members();
            let routes = members
                .iter()
                .filter(|m| **m != id)
                .map(|m| RouteStatus {
                    dest: m.to_hex(),
                    next_hop: n.next_hop(m).map(|h| h.to_hex()),
                    latency_ms: n.route_latency(m).map(|d| d.as_secs_f64() * 1e3),
                    width: n.route_width(m),
                })
                .collect();
            if let Ok(mut v) = observer_view.lock() {
                *v = ProtocolView {
                    joined: n.is_joined(),
                    members: members.iter().map(NodeId::to_hex).collect(),
                    neighbours: n.neighbours().iter().map(NodeId::to_hex).collect(),
                    routes,
                };
            }
        });
        let RuntimeHandle {
            control,
            mut events,
            snapshot,
            ..
        } = runtime::start(narada, connector, Some(observer));
        let board = Arc::new(StatusBoard {
            view,
            sources: Mutex::new(BTreeMap::new()),
            sent: Mutex::new(0),
            group: config.group.clone(),
            id: id.to_hex(),
            transport: snapshot,
        });
        let mut tasks = Vec::new();
        let receiver_board = board.clone();
        tasks.push(tokio::spawn(async move {
            let mut clock = WallClock::default();
            while let Some(event) = events.recv().await {
                match event {
                    Event::Deliver {
                        source,
                        seq,
                        sent_at_us,
                        payload,
                        recovered,
                    } => {
                        let now = clock.now();
                        if let Ok(mut s) = receiver_board.sources.lock() {
                            s.entry(source)
                                .or_insert_with(|| SourceMeter::new(now))
                                .add(now, seq, payload.len(), sent_at_us, recovered);
                        }
                    }
                    Event::MemberDied(m) | Event::MemberLeft(m) => {
                        tracing::info!(member = %m, "member gone");
                        if let Ok(mut s) = receiver_board.sources.lock() {
                            s.remove(&m);
                        }
                    }
                    other => tracing::debug!(?other, "event"),
                }
            }
        }));
        let http = match config.http {
            Some(addr) => {
                let listener =
                    tokio::net::TcpListener::bind(addr)
                        .await
                        .map_err(|e| StartError::Http {
                            addr,
                            reason: e.to_string(),
                        })?;
                let bound = listener.local_addr().map_err(|e| StartError::Http {
                    addr,
                    reason: e.to_string(),
                })?;
                let app = crate::http::router(board.clone());
                tasks.push(tokio::spawn(async move {
                    let _ = axum::serve(listener, app).await;
                }));
                Some(bound)
            }
            None => None,
        };
        tasks.push(tokio::spawn(join_group(control.clone(), join)));
        let anycast = match (config.resolver, name) {
            (Some(resolver), Some(name)) => Some(
                crate::anycast::AnycastEntry::start(
                    &identity,
                    admission,
                    resolver,
                    name,
                    listen,
                    control.clone(),
                )
                .map_err(StartError::Anycast)?,
            ),
            _ => None,
        };
        if let Some(rate) = config.send_rate {
            tasks.push(tokio::spawn(send_synthetic(
                control.clone(),
                rate,
                board.clone(),
            )));
        }
        Ok(Self {
            id,
            listen,
            http,
            board,
            control,
            tasks,
            anycast,
        })
    }

    /// Leaves gracefully, then stops.
    pub async fn leave(self) {
        let _ = self.control.send(Control::Command(Command::Leave)).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        self.stop().await;
    }

    /// Stops at once, as a crash would (no goodbye; peers find out by timeout).
    pub async fn stop(self) {
        if let Some(a) = self.anycast {
            a.stop().await;
        }
        let _ = self.control.send(Control::Shutdown).await;
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Dials each bootstrap address until one answers (backoff from half a second to eight),
/// then joins through every member found; with no addresses, founds the group.
async fn join_group(control: mpsc::Sender<Control<Command>>, join: Vec<SocketAddr>) {
    if join.is_empty() {
        let _ = control
            .send(Control::Command(Command::Join {
                bootstrap: Vec::new(),
            }))
            .await;
        return;
    }
    let mut backoff = Duration::from_millis(500);
    loop {
        let mut found = Vec::new();
        for &addr in &join {
            match runtime::dial(&control, addr).await {
                Ok(id) => found.push(id),
                Err(_) if control.is_closed() => return,
                Err(why) => tracing::warn!(%addr, %why, "bootstrap member unreachable"),
            }
        }
        if !found.is_empty() {
            let _ = control
                .send(Control::Command(Command::Join { bootstrap: found }))
                .await;
            return;
        }
        tracing::warn!(retry_in = ?backoff, "no bootstrap member answered");
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(8));
    }
}

/// Publishes synthetic media at `rate`: a packet every 10 ms.
async fn send_synthetic(
    control: mpsc::Sender<Control<Command>>,
    rate: Bandwidth,
    board: Arc<StatusBoard>,
) {
    let interval = Duration::from_millis(10);
    let size = (rate.bytes_in(interval) as usize).clamp(16, 1100);
    let per_tick = (rate.bytes_in(interval) as usize).div_ceil(size).max(1);
    let payload = Bytes::from(vec![0x5a; size]);
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        for _ in 0..per_tick {
            let cmd = Command::Publish {
                payload: payload.clone(),
                priority: 0,
            };
            if control.send(Control::Command(cmd)).await.is_err() {
                return;
            }
            if let Ok(mut s) = board.sent.lock() {
                *s += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_meter_reports_rate_loss_and_delay() {
        let at = |ms: u64| Time::from_millis(10_000 + ms);
        let mut m = SourceMeter::new(at(0));
        // 200 packets of 625 bytes over two seconds (500 kbit/s), every tenth missing, each
        // sent 3 ms before it arrives.
        for i in 0..200u64 {
            if i % 10 == 9 {
                continue;
            }
            let now = at(i * 10);
            m.add(now, i, 625, now.as_micros() - 3_000, false);
        }
        let s = m.status(at(2_000));
        assert!((s.loss - 0.1).abs() < 0.011, "{s:?}");
        assert!((s.delay_ms - 3.0).abs() < 1e-6, "{s:?}");
        assert!((400.0..500.0).contains(&s.rate_kbps), "{s:?}");
        assert_eq!(s.packets, 180);
        // Silence: the rate falls to nothing once the window has passed.
        assert_eq!(m.status(at(10_000)).rate_kbps, 0.0);
    }
}
