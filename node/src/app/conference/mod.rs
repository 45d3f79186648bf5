//! A conferencing member: Narada with the bandwidth-then-latency metric over the QUIC runtime,
//! an optional synthetic source, per-source receive figures ([`status`]), and the `/status` and
//! `/metrics` pages ([`http`]); its settings in [`config`].

pub mod config;
pub mod http;
pub mod status;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use narada::{Command, Event, MetricKind, Narada, NaradaConfig};
use overlay_core::{Bandwidth, NodeId};
use tokio::sync::mpsc;

pub use config::{ConferenceArgs, ConferenceConfig, ConfigError};
pub use status::{ConferenceStatus, RouteStatus, SourceStatus, StatusBoard};

use crate::app::anycast::{self, AnycastEntry, AnycastError, Lookup};
use crate::edge::http_server::{self, HttpLimits, RESERVED_DESCRIPTORS};
use crate::runtime::{self, Control, RuntimeHandle, WallClock};
use crate::transport::admission::{AdmissionError, GroupSecret};
use crate::transport::connect::{ConnectError, Connector, TransportSettings};
use crate::transport::emulation::{Emulation, EmulationError};
use crate::transport::identity::{Identity, IdentityError};
use status::ProtocolView;

/// Why a member could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The identity.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// The group or secret.
    #[error(transparent)]
    Admission(#[from] AdmissionError),
    /// The QUIC endpoint.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// The settings.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The anycast resolver.
    #[error("anycast: {0}")]
    Anycast(#[from] AnycastError),
    /// The emulated network's spec.
    #[error(transparent)]
    Emulation(#[from] EmulationError),
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
    anycast: Option<AnycastEntry>,
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
            Some(_) => Some(config.anycast_name()?),
            None => None,
        };
        let mut join = config.join.clone();
        if let (Some(resolver), Some(name), true) = (
            config.resolver,
            name.as_ref(),
            config.join_by_name && join.is_empty(),
        ) {
            match anycast::resolve(&identity, admission.clone(), resolver, name).await? {
                Lookup::Found { server, address } => {
                    tracing::info!(%name, %server, %address, "joining through the anycast answer");
                    join.push(address);
                }
                Lookup::Nobody(why) => {
                    tracing::info!(%name, %why, "no member to join: founding the group");
                }
            }
        }
        let emulation = match &config.emulate {
            Some(path) => Some(Arc::new(Emulation::load(path)?)),
            None => None,
        };
        let connector = Connector::bind(
            config.listen,
            identity.clone(),
            admission.clone(),
            TransportSettings {
                emulation,
                ..TransportSettings::default()
            },
        )?;
        let listen = connector.local_addr();
        let mut narada_config = NaradaConfig::default();
        narada_config.routing.metric = MetricKind::BandwidthLatency;
        narada_config.bandwidth.stream_rate = config.stream_rate;
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
        let board = Arc::new(StatusBoard::new(config.group.clone(), id, view, snapshot));
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
                        receiver_board.received(
                            now,
                            source,
                            seq,
                            payload.len(),
                            sent_at_us,
                            recovered,
                        );
                    }
                    Event::MemberDied(m) | Event::MemberLeft(m) => {
                        tracing::info!(member = %m, "member gone");
                        receiver_board.forget(&m);
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
                let app = http::router(board.clone());
                let limits = HttpLimits::default().fit_descriptors(RESERVED_DESCRIPTORS);
                tasks.push(tokio::spawn(http_server::serve(
                    listener,
                    app,
                    limits,
                    Default::default(),
                )));
                Some(bound)
            }
            None => None,
        };
        tasks.push(tokio::spawn(join_group(control.clone(), join)));
        let anycast = match (config.resolver, name) {
            (Some(resolver), Some(name)) => Some(AnycastEntry::start(
                &identity,
                admission,
                resolver,
                name,
                listen,
                control.clone(),
            )?),
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

/// `esm conference`: a member until interrupted, then it leaves gracefully.
pub async fn run(args: ConferenceArgs) -> Result<(), StartError> {
    let config = ConferenceConfig::try_from(args)?;
    let member = Member::start(&config).await?;
    // One machine-readable line on stdout for whoever started this process.
    println!(
        "ready id={} quic={} http={}",
        member.id.to_hex(),
        member.listen,
        member
            .http
            .map(|h| h.to_string())
            .unwrap_or_else(|| "-".into())
    );
    eprintln!(
        "member {} of group {} listening on {}{}",
        member.id,
        config.group,
        member.listen,
        member
            .http
            .map(|h| format!(", status on http://{h}/status"))
            .unwrap_or_default()
    );
    let _ = tokio::signal::ctrl_c().await;
    eprintln!("leaving");
    member.leave().await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    Ok(())
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
            board.sent_one();
        }
    }
}
