//! A conferencing member: Narada with the bandwidth-then-latency metric over the QUIC runtime,
//! an optional synthetic source, per-source receive figures ([`status`]), and the `/status` and
//! `/metrics` pages ([`http`]); its settings in [`config`].

pub mod browser;
pub mod config;
pub mod http;
pub mod record;
pub mod seconds;
pub mod send_file;
pub mod status;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use media::{MediaPacket, SourceConfig, SyntheticSource};
use narada::{Command, Event, Narada, NaradaConfig};
use overlay_core::{Bandwidth, NodeId};
use tokio::sync::mpsc;

pub use config::{ConferenceArgs, ConferenceConfig, ConfigError};
pub use seconds::MediaSecond;
pub use status::{
    ByClass, ConferenceStatus, LinkStatus, MembershipCounters, RouteStatus, SourceStatus,
    StatusBoard,
};

use crate::app::anycast::{self, AnycastEntry, AnycastError, Lookup};
use crate::edge::http_server::{self, HttpLimits, RESERVED_DESCRIPTORS};
use crate::edge::operator::OperatorGate;
use crate::edge::webrtc::BrowserEdge;
use crate::runtime::{self, Control, RuntimeHandle, WallClock};
use crate::transport::admission::{AdmissionError, GroupSecret};
use crate::transport::connect::{ConnectError, Connector, TransportSettings};
use crate::transport::emulation::{Emulation, EmulationError};
use crate::transport::identity::{Identity, IdentityError};
use crate::transport::invite::{self, InviteError};
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
    /// The invite.
    #[error(transparent)]
    Invite(#[from] InviteError),
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
    /// The recording folder.
    #[error("cannot record into {dir}: {reason}")]
    Record {
        /// The folder.
        dir: std::path::PathBuf,
        /// Why.
        reason: String,
    },
    /// The browsers' WebRTC socket.
    #[error("cannot take browsers' WebRTC media on {addr}: {reason}")]
    WebRtc {
        /// The address.
        addr: SocketAddr,
        /// Why.
        reason: String,
    },
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
    /// The page browsers open to take part (with this member's browser token), when it
    /// serves HTTP.
    pub browser_url: Option<String>,
    /// The token that reads `/status` and `/metrics` from another machine
    /// (`Authorization: Bearer`).
    pub status_token: String,
    control: mpsc::Sender<Control<Command>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    anycast: Option<AnycastEntry>,
}

impl Member {
    /// Starts a member: identity, endpoint, HTTP, joining (retried with backoff), sending.
    pub async fn start(config: &ConferenceConfig) -> Result<Self, StartError> {
        let identity = Identity::load_or_create(&config.key_file)?;
        let (admission, _) = invite::credentials(
            &config.group,
            config.invite.as_ref(),
            config.secret_file.as_deref(),
        )?;
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
        // The addresses given, else the invite's members, dialled as those members.
        let mut join: Vec<(SocketAddr, Option<NodeId>)> =
            config.join.iter().map(|&addr| (addr, None)).collect();
        if join.is_empty()
            && let Some(invite) = &config.invite
        {
            join = invite
                .bootstrap
                .iter()
                .filter(|(member, _)| *member != id)
                .map(|&(member, addr)| (addr, Some(member)))
                .collect();
        }
        if let (Some(resolver), Some(name), true) = (
            config.resolver,
            name.as_ref(),
            config.join_by_name && join.is_empty(),
        ) {
            match anycast::resolve(&identity, admission.clone(), resolver, name).await? {
                Lookup::Found { server, address } => {
                    tracing::info!(%name, %server, %address, "joining through the anycast answer");
                    join.push((address, Some(server)));
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
        // Admission across streams needs the upload: given, or the emulated place's.
        let place = emulation
            .as_ref()
            .and_then(|e| e.place_of(config.listen.ip()).map(|i| e.place(i).clone()));
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
        // A live conversation's timing: short repairs, a delay budget, fast pings.
        let mut narada_config = NaradaConfig::default().for_conversation();
        narada_config.routing.metric = config.metric;
        narada_config.bandwidth.stream_rate = config.stream_rate;
        narada_config.bandwidth.upload = config
            .upload
            .or_else(|| place.as_ref().map(|p| Bandwidth::from_bps(p.up_bps)));
        narada_config.bandwidth.download = config
            .download
            .or_else(|| place.as_ref().map(|p| Bandwidth::from_bps(p.down_bps)));
        let download = narada_config.bandwidth.download;
        // The runtime splits a known download among the parents sending media here.
        narada_config.bandwidth.download_shared = download.is_some();
        let upload = narada_config.bandwidth.upload;
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
            let links = n
                .mesh_links()
                .into_iter()
                .map(|l| LinkStatus {
                    neighbour: l.neighbour.to_hex(),
                    latency_ms: l.latency.as_secs_f64() * 1e3,
                    width: l.width,
                    measured: l.measured,
                    full: l.full,
                    shed: l.shed,
                })
                .collect();
            if let Ok(mut v) = observer_view.lock() {
                *v = ProtocolView {
                    joined: n.is_joined(),
                    members: members.iter().map(NodeId::to_hex).collect(),
                    neighbours: n.neighbours().iter().map(NodeId::to_hex).collect(),
                    routes,
                    links,
                    membership: {
                        let st = n.stats();
                        MembershipCounters {
                            neighbours_died: st.neighbours_died,
                            links_added: st.links_added,
                            links_dropped: st.links_dropped + st.links_swapped,
                            ..MembershipCounters::default()
                        }
                    },
                };
            }
        });
        let RuntimeHandle {
            control,
            mut events,
            snapshot,
            ..
        } = runtime::start_with(
            narada,
            connector,
            Some(observer),
            runtime::RuntimeOptions {
                download,
                upload,
                ..runtime::RuntimeOptions::default()
            },
        );
        let board = Arc::new(StatusBoard::new(config.group.clone(), id, view, snapshot));
        let mut tasks = Vec::new();
        let sources = Arc::new(browser::SourceBoard::default());
        let edge = match browser_socket(config).await? {
            Some((socket, candidates)) => {
                let (edge, published, task) = BrowserEdge::start(socket, id, candidates);
                board.show_edge(edge.counters.clone());
                tasks.push(task);
                tasks.push(tokio::spawn(browser::publish_frames(
                    published,
                    control.clone(),
                    id,
                    sources.clone(),
                )));
                Some(edge)
            }
            None => None,
        };
        let receiver_board = board.clone();
        let receiver_edge = edge.clone();
        let receiver_sources = sources.clone();
        let keyframe_control = control.clone();
        let recorder = match &config.record {
            Some(dir) => {
                Some(
                    record::Recorder::new(dir.clone()).map_err(|e| StartError::Record {
                        dir: dir.clone(),
                        reason: e.to_string(),
                    })?,
                )
            }
            None => None,
        };
        tasks.push(tokio::spawn(async move {
            let mut clock = WallClock::default();
            let recording = recorder.is_some();
            let mut frames = browser::FrameReceiver::new(recorder);
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
                        let media = MediaPacket::decode(&payload).ok();
                        if let Some(packet) = &media
                            && (receiver_edge.is_some() || recording)
                        {
                            frames.take(
                                source,
                                packet,
                                receiver_edge.as_ref(),
                                &receiver_sources,
                                &keyframe_control,
                            );
                        }
                        let arrival = status::Arrival {
                            seq,
                            bytes: payload.len(),
                            sent_at_us,
                            recovered,
                            media,
                        };
                        receiver_board.received(now, source, arrival);
                    }
                    Event::KeyframeRequested { stream } => {
                        if let (Some(edge), Some((publisher, encoding))) =
                            (&receiver_edge, media::stream_place(stream))
                        {
                            edge.request_keyframe(publisher, encoding);
                        }
                    }
                    Event::MemberDied(m) => {
                        tracing::info!(member = %m, "member taken for dead");
                        receiver_board.forget(&m, true);
                        frames.forget(&m);
                    }
                    Event::MemberLeft(m) => {
                        tracing::info!(member = %m, "member left");
                        receiver_board.forget(&m, false);
                        frames.forget(&m);
                    }
                    other => tracing::debug!(?other, "event"),
                }
            }
        }));
        let http = match config.http {
            Some(addr) => {
                let listener = http_server::bind(addr).map_err(|e| StartError::Http {
                    addr,
                    reason: e.to_string(),
                })?;
                let bound = listener.local_addr().map_err(|e| StartError::Http {
                    addr,
                    reason: e.to_string(),
                })?;
                let gate = {
                    let admission = admission.clone();
                    OperatorGate::new(move |token| admission.verify_status_token(id, token))
                };
                let mut app = http::router(board.clone(), control.clone(), gate);
                if let Some(edge) = &edge {
                    app = app.merge(browser::router(browser::BrowserState {
                        edge: edge.clone(),
                        me: id,
                        admission: admission.clone(),
                        sources: sources.clone(),
                    }));
                }
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
        let browser_url = http.filter(|_| edge.is_some()).map(|h| {
            // Where browsers reach it: the advertised address in place of a wildcard.
            let h = match config.advertise {
                Some(ip) if h.ip().is_unspecified() => SocketAddr::new(ip, h.port()),
                _ => h,
            };
            format!(
                "http://{h}/conference/?token={}",
                admission.browser_token(id)
            )
        });
        tasks.push(tokio::spawn(join_group(control.clone(), join)));
        let status_token = admission.status_token(id);
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
        // The sent files share one clock, started by the first frame either reads, so sound and
        // picture made together play together.
        let start = Arc::new(std::sync::OnceLock::new());
        for file in config.send_files.clone() {
            let start = start.clone();
            let (control, edge, sources) = (control.clone(), edge.clone(), sources.clone());
            tasks.push(tokio::spawn(async move {
                let kind = file.kind;
                match send_file::send_file(file, start, control, id, edge, sources).await {
                    Ok(()) => tracing::info!(?kind, "the sent file ended"),
                    Err(why) => tracing::warn!(%why, "sending the file stopped"),
                }
            }));
        }
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
            browser_url,
            status_token,
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
    if let Some(url) = &member.browser_url {
        eprintln!("browsers take part at {url}");
    }
    if member.http.is_some() {
        eprintln!(
            "/status and /metrics answer this machine, and others with `Authorization: Bearer {}`",
            member.status_token
        );
    }
    let _ = tokio::signal::ctrl_c().await;
    eprintln!("leaving");
    member.leave().await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    Ok(())
}

/// The browsers' WebRTC socket and the addresses they are told to use: `--webrtc`, else the
/// HTTP address's IP with any port; none without either.
async fn browser_socket(
    config: &ConferenceConfig,
) -> Result<Option<(tokio::net::UdpSocket, Vec<SocketAddr>)>, StartError> {
    let Some(addr) = config
        .webrtc
        .or_else(|| config.http.map(|h| SocketAddr::new(h.ip(), 0)))
    else {
        return Ok(None);
    };
    let fail = |reason: String| StartError::WebRtc { addr, reason };
    let socket = tokio::net::UdpSocket::bind(addr)
        .await
        .map_err(|e| fail(e.to_string()))?;
    let bound = socket.local_addr().map_err(|e| fail(e.to_string()))?;
    let ip = match config.advertise {
        Some(ip) => ip,
        None if bound.ip().is_unspecified() => {
            return Err(fail(
                "browsers cannot be told an unspecified address: give --advertise IP".into(),
            ));
        }
        None => bound.ip(),
    };
    Ok(Some((socket, vec![SocketAddr::new(ip, bound.port())])))
}

/// Dials each bootstrap address (as the member given, if one is) until one answers (backoff
/// from half a second to eight), then joins through every member found; with no addresses,
/// founds the group.
async fn join_group(
    control: mpsc::Sender<Control<Command>>,
    join: Vec<(SocketAddr, Option<NodeId>)>,
) {
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
        for &(addr, expected) in &join {
            match runtime::dial(&control, addr, expected).await {
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

/// The synthetic video a conference member publishes at `rate` (`media::SyntheticSource`: 30
/// frames a second, a keyframe every two seconds four times a delta frame's size, delta frames
/// in a base layer and two enhancement layers of 25%, 35% and 40%). Keyframes and the base
/// layer then take 30% of the rate, so a link with half the rate carries both with room for
/// the packets' headers and the group's control traffic, as a scalable codec's base layer
/// (commonly a quarter of the rate or less) does.
pub fn synthetic_source_config(rate: Bandwidth) -> SourceConfig {
    SourceConfig {
        rate,
        layers: vec![0.25, 0.35, 0.4],
        ..SourceConfig::default()
    }
}

/// The stream synthetic media travels in: past every publisher's streams
/// ([`media::track_stream`]), so receivers never take it for a browser's frames.
pub const SYNTHETIC_STREAM: u32 = 1 << 16;

/// Publishes synthetic video at `rate` ([`synthetic_source_config`]), each packet marked with
/// its layer's priority so every link drops enhancement first.
async fn send_synthetic(
    control: mpsc::Sender<Control<Command>>,
    rate: Bandwidth,
    board: Arc<StatusBoard>,
) {
    let mut clock = WallClock::default();
    let config = synthetic_source_config(rate);
    let mut source = SyntheticSource::new(config, SYNTHETIC_STREAM, clock.now());
    let started = (clock.now(), tokio::time::Instant::now());
    loop {
        // The source's clock is the protocol's; sleep on tokio's until its next frame.
        let due = source.next_due().saturating_since(started.0);
        tokio::time::sleep_until(started.1 + due).await;
        for packet in source.poll(clock.now()) {
            let priority = packet.priority.class();
            let captured_us = packet.timestamp_us;
            let cmd = Command::Publish {
                payload: packet.encode(),
                priority,
            };
            if control.send(Control::Command(cmd)).await.is_err() {
                return;
            }
            board.sent_one(priority, captured_us);
        }
    }
}
