//! Opening admitted connections: the QUIC endpoint, dialling (with the admission handshake as
//! the dialer) and accepting (as the acceptor). A connection reaches the runtime only once both
//! sides proved the group secret (see [`admission`](super::admission)): Hello (the dialer's
//! PAKE message), Welcome (the acceptor's, and its proof), Confirm (the dialer's proof),
//! Admitted (the acceptor checked it; the dialer sends nothing before).
//!
//! Strangers are bounded before admission: handshake frames of at most
//! [`ADMISSION_FRAME_LIMIT`] bytes, one stream per connection and [`ADMISSION_WINDOW`] bytes of
//! it buffered, datagrams dropped unread, [`MAX_HANDSHAKES`] handshakes at once (more are
//! refused), QUIC address validation (Retry) once [`RETRY_ABOVE`] are under way, an address that
//! that failed to prove the secret [`FAILURES_PER_WINDOW`] times refused until its window ends, and one refusal that
//! names nothing (not the group, not what was wrong).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use overlay_core::NodeId;
use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use tokio::sync::mpsc;

use super::admission::{GroupSecret, Role};
use super::emulation::Emulation;
use super::emulation::socket::EmulatedSocket;
pub use super::failure_limit::FAILURES_PER_WINDOW;
use super::failure_limit::FailureLimiter;
pub use super::frame::ADMISSION_FRAME_LIMIT;
use super::frame::{Frame, FrameError, read_frame_within, write_frame};
use super::identity::Identity;
use super::tls;

/// How long the admission handshake may take.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Admission handshakes under way at once; connections beyond are refused at once (each holds
/// a QUIC connection's state and [`ADMISSION_WINDOW`] bytes at most, about 100 KB together).
pub const MAX_HANDSHAKES: usize = 128;

/// Handshakes under way beyond which a new connection from an address QUIC has not validated is
/// sent a Retry (a spoofed address never answers it).
pub const RETRY_ABOVE: usize = 16;

/// Bytes a peer may have in flight on its stream before admission (the handshake needs under
/// 300); raised to QUIC's usual once admitted.
pub const ADMISSION_WINDOW: u32 = 16 * 1024;

/// The one reason given to every refused connection: it names neither the group nor what
/// was wrong, so a stranger learns nothing from it.
pub const REFUSED_REASON: &[u8] = b"admission refused";
/// Application close codes.
pub mod code {
    /// Admission refused.
    pub const REFUSED: u32 = 1;
    /// Superseded by a newer connection or closed by the runtime.
    pub const CLOSED: u32 = 2;
}

/// A connection both sides admitted.
#[derive(Debug)]
pub struct Admitted {
    /// The peer.
    pub peer: NodeId,
    /// Where the peer accepts connections.
    pub listen: SocketAddr,
    /// Where the peer serves HTTP, if it said.
    pub http: Option<SocketAddr>,
    /// The QUIC connection.
    pub conn: quinn::Connection,
    /// The control stream, sending half.
    pub send: quinn::SendStream,
    /// The control stream, receiving half.
    pub recv: quinn::RecvStream,
    /// Whether this member dialled it.
    pub dialed: bool,
    /// For a connection this member dialled: where the peer saw it come from.
    pub observed: Option<SocketAddr>,
}

/// Settings of the QUIC transport.
#[derive(Clone, Debug)]
pub struct TransportSettings {
    /// A connection silent for this long is dead.
    pub idle_timeout: Duration,
    /// Keep-alive interval (well under the idle timeout).
    pub keep_alive: Duration,
    /// Send and receive over an emulated wide-area network (tests and demos): the endpoint's
    /// address must be one of the emulation's places.
    pub emulation: Option<Arc<Emulation>>,
}

impl Default for TransportSettings {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(4),
            keep_alive: Duration::from_millis(500),
            emulation: None,
        }
    }
}

/// QUIC's initial congestion window: 64 datagrams (77 KB; RFC 9002 suggests about 14 KB).
/// A media link is app-limited, and Cubic does not grow a window that is not filled, so a
/// long path kept its first window for good: at 300 ms that is 0.4 Mbit/s, under one stream,
/// and the pacer (capped at the window over the round trip), the bandwidth probes' fallback
/// and so the trees took long paths for narrow ones (sim-to-real: RTT p90 1.2-1.5 times the
/// simulator's, 1.10-1.13 with this window). Bursts stay paced: the runtime releases media at
/// the rate its pacer reads from the path, and quinn spreads each window over the round trip.
const INITIAL_WINDOW: u64 = 64 * 1200;

fn transport(settings: &TransportSettings) -> Arc<quinn::TransportConfig> {
    let mut t = quinn::TransportConfig::default();
    if let Ok(idle) = quinn::IdleTimeout::try_from(settings.idle_timeout) {
        t.max_idle_timeout(Some(idle));
    }
    t.keep_alive_interval(Some(settings.keep_alive));
    t.datagram_receive_buffer_size(Some(4 << 20));
    // One control stream per connection, opened by the dialer; before admission only a small
    // window of it is buffered (raised in `admitted_window`).
    t.max_concurrent_uni_streams(0u32.into());
    t.max_concurrent_bidi_streams(1u32.into());
    t.receive_window(ADMISSION_WINDOW.into());
    // Small: media that waits here goes stale (the runtime paces it to what the path carries
    // and drops the rest, least important first); 128 KiB is ~50 ms at 20 Mbit/s.
    t.datagram_send_buffer_size(crate::runtime::DATAGRAM_BUFFER);
    let mut cubic = quinn::congestion::CubicConfig::default();
    cubic.initial_window(INITIAL_WINDOW);
    t.congestion_controller_factory(Arc::new(cubic));
    Arc::new(t)
}

/// What went wrong with a connection, without the peer's close reason (its bytes, which a
/// refusal's log line must not carry).
fn connection_error_kind(e: &quinn::ConnectionError) -> &'static str {
    use quinn::ConnectionError as E;
    match e {
        E::VersionMismatch => "QUIC version mismatch",
        E::TransportError(_) => "transport error",
        E::ConnectionClosed(_) => "closed by the peer (transport)",
        E::ApplicationClosed(_) => "closed by the peer",
        E::Reset => "reset by the peer",
        E::TimedOut => "timed out",
        E::LocallyClosed => "closed here",
        E::CidsExhausted => "connection ids exhausted",
    }
}

/// Lifts the connection's receive window once the peer is admitted: the one stream's own window
/// bounds what is buffered then. 4 GiB, not `VarInt::MAX` (quinn's default): raised to that,
/// an emulated relay's bandwidth probes measured its link to the source narrower and the tree
/// went round it (`tests/emulation_relay.rs`, every run); why was not pinned down in quinn.
fn admitted_window(conn: &quinn::Connection) {
    conn.set_receive_window(quinn::VarInt::from_u32(u32::MAX));
}

/// The TLS session's exporter output the admission's proofs are bound to.
fn channel_binding(conn: &quinn::Connection) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    conn.export_keying_material(&mut out, b"EXPORTER-esm-admission-2", b"")
        .ok()?;
    Some(out)
}

/// Reads and drops datagrams until the connection closes: nothing a peer sends as a datagram
/// before admission is kept (QUIC would buffer up to 4 MiB of them otherwise).
async fn drop_datagrams(conn: quinn::Connection) {
    while conn.read_datagram().await.is_ok() {}
}

/// Why an endpoint could not be opened or a dial failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The UDP port could not be bound.
    #[error("cannot listen on {addr}: {reason}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why (a port in use says so here).
        reason: String,
    },
    /// TLS could not be set up.
    #[error("{0}")]
    Tls(String),
    /// The peer could not be reached or the handshake failed.
    #[error("dialling {addr}: {reason}")]
    Dial {
        /// The address.
        addr: SocketAddr,
        /// Why.
        reason: String,
    },
    /// The peer refused this member's admission, or did not prove the secret itself (the
    /// same group and secret on both sides admit; anything else is refused without detail).
    /// A member too busy to start a handshake refuses at the QUIC level instead ([`Self::Dial`]).
    #[error("{addr}: admission refused (not the same group and secret)")]
    Refused {
        /// The address.
        addr: SocketAddr,
    },
}

/// Why an incoming connection was not admitted (for the refusal count and the log; nothing
/// in it is the peer's bytes).
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// The QUIC or TLS handshake failed.
    #[error("handshake: {0}")]
    Handshake(&'static str),
    /// The peer presented no certificate key.
    #[error("the peer presented no key")]
    NoKey,
    /// The peer opened no control stream.
    #[error("no control stream: {0}")]
    NoControlStream(&'static str),
    /// The peer did not prove the group secret (another group, another secret, or a guess).
    #[error("{peer}: did not prove the group secret")]
    NotProved {
        /// The peer.
        peer: NodeId,
    },
    /// The peer sent a frame that is not the handshake's next.
    #[error("{peer}: expected a {want}")]
    Unexpected {
        /// The peer.
        peer: NodeId,
        /// The frame expected.
        want: &'static str,
    },
    /// A handshake frame did not read or decode.
    #[error("{peer}: bad handshake frame: {source}")]
    BadFrame {
        /// The peer.
        peer: NodeId,
        /// What was wrong.
        source: FrameError,
    },
    /// A handshake frame (Welcome, Admitted) could not be written.
    #[error("{peer}: writing the handshake: {source}")]
    Write {
        /// The peer.
        peer: NodeId,
        /// What failed.
        source: FrameError,
    },
    /// The handshake took longer than [`HANDSHAKE_TIMEOUT`].
    #[error("the admission handshake timed out")]
    TimedOut,
    /// [`MAX_HANDSHAKES`] were under way.
    #[error("too many admission handshakes under way")]
    Busy,
    /// The address failed too often lately.
    #[error("the address failed admission {FAILURES_PER_WINDOW} times lately")]
    HeldBack,
}

/// A member's QUIC endpoint with what it needs to dial and admit.
#[derive(Clone, Debug)]
pub struct Connector {
    endpoint: quinn::Endpoint,
    /// Handshakes under way (accepting).
    handshakes: Arc<tokio::sync::Semaphore>,
    /// Failed admissions per address.
    failures: Arc<std::sync::Mutex<FailureLimiter>>,
    identity: Identity,
    admission: GroupSecret,
    listen: SocketAddr,
    http: Option<SocketAddr>,
    /// The address to tell peers in place of the one bound (`--advertise`).
    advertise: Option<IpAddr>,
    settings: TransportSettings,
}

impl Connector {
    /// Tells peers where this member serves HTTP (in the admission handshake).
    pub fn advertise_http(&mut self, http: SocketAddr) {
        self.http = Some(http);
    }

    /// Tells peers this address, with the ports bound, in place of the addresses bound (a
    /// member behind a NAT, or on a wildcard address, names the one others reach it at).
    pub fn advertise(&mut self, ip: IpAddr) {
        self.advertise = Some(ip);
    }

    /// `addr` as peers are told it: with the advertised address, if one was given.
    fn public(&self, addr: SocketAddr) -> SocketAddr {
        self.advertise
            .map_or(addr, |ip| SocketAddr::new(ip, addr.port()))
    }

    /// Binds `listen` and prepares both sides of TLS.
    pub fn bind(
        listen: SocketAddr,
        identity: Identity,
        admission: GroupSecret,
        settings: TransportSettings,
    ) -> Result<Self, ConnectError> {
        let server = tls::server_config(&identity).map_err(|e| ConnectError::Tls(e.to_string()))?;
        let crypto =
            QuicServerConfig::try_from(server).map_err(|e| ConnectError::Tls(e.to_string()))?;
        let mut server_config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
        server_config.transport_config(transport(&settings));
        let bind_error = |e: std::io::Error| ConnectError::Bind {
            addr: listen,
            reason: e.to_string(),
        };
        let endpoint = match &settings.emulation {
            None => quinn::Endpoint::server(server_config, listen).map_err(bind_error)?,
            Some(emulation) => {
                let seed = u64::from_le_bytes(
                    identity.id().as_bytes()[..8].try_into().unwrap_or_default(),
                );
                let socket =
                    EmulatedSocket::bind(listen, emulation.clone(), seed).map_err(bind_error)?;
                quinn::Endpoint::new_with_abstract_socket(
                    quinn::EndpointConfig::default(),
                    Some(server_config),
                    socket,
                    Arc::new(quinn::TokioRuntime),
                )
                .map_err(bind_error)?
            }
        };
        let listen = endpoint.local_addr().map_err(|e| ConnectError::Bind {
            addr: listen,
            reason: e.to_string(),
        })?;
        Ok(Self {
            endpoint,
            handshakes: Arc::new(tokio::sync::Semaphore::new(MAX_HANDSHAKES)),
            failures: Arc::default(),
            identity,
            admission,
            listen,
            http: None,
            advertise: None,
            settings,
        })
    }

    /// Where the endpoint listens (the real port if 0 was asked).
    pub fn local_addr(&self) -> SocketAddr {
        self.listen
    }

    /// This member's id.
    pub fn id(&self) -> NodeId {
        self.identity.id()
    }

    /// Dials `addr`; if `expected` is given the peer's key must be that member.
    pub async fn dial(
        &self,
        addr: SocketAddr,
        expected: Option<NodeId>,
    ) -> Result<Admitted, ConnectError> {
        let fail = |reason: String| ConnectError::Dial { addr, reason };
        let tls = tls::client_config(&self.identity, expected)
            .map_err(|e| ConnectError::Tls(e.to_string()))?;
        let crypto =
            QuicClientConfig::try_from(tls).map_err(|e| ConnectError::Tls(e.to_string()))?;
        let mut config = quinn::ClientConfig::new(Arc::new(crypto));
        config.transport_config(transport(&self.settings));
        let connecting = self
            .endpoint
            .connect_with(config, addr, "esm")
            .map_err(|e| fail(e.to_string()))?;
        let conn = connecting.await.map_err(|e| fail(e.to_string()))?;
        let peer = tls::peer_id(&conn).ok_or_else(|| fail("the peer presented no key".into()))?;
        let me = self.identity.id();
        let refused = || {
            conn.close(code::REFUSED.into(), REFUSED_REASON);
            ConnectError::Refused { addr }
        };
        // A handshake frame did not come: refused if the acceptor closed saying so.
        let closed = |e: FrameError| match conn.close_reason() {
            Some(quinn::ConnectionError::ApplicationClosed(c))
                if c.error_code == code::REFUSED.into() =>
            {
                ConnectError::Refused { addr }
            }
            Some(reason) => fail(reason.to_string()),
            None => fail(e.to_string()),
        };
        let handshake = async {
            let channel = channel_binding(&conn).ok_or_else(|| fail("no TLS exporter".into()))?;
            let (mut send, mut recv) = conn.open_bi().await.map_err(|e| fail(e.to_string()))?;
            let (pake, mine) = self.admission.start(Role::Dialer, me, peer);
            let hello: Frame<()> = Frame::Hello {
                pake: mine,
                listen: self.public(self.listen),
                http: self.http.map(|h| self.public(h)),
            };
            write_frame(&mut send, &hello)
                .await
                .map_err(|e| fail(e.to_string()))?;
            match read_frame_within::<(), _>(&mut recv, ADMISSION_FRAME_LIMIT).await {
                Ok(Frame::Welcome {
                    pake: theirs,
                    confirm,
                    listen,
                    http,
                    observed,
                }) => {
                    // Nothing more is sent until the acceptor proved the secret: a fake
                    // acceptor learns only whether the one guess it made was right.
                    let confirmation = pake.finish(&theirs, &channel).map_err(|_| refused())?;
                    confirmation.verify(&confirm).map_err(|_| refused())?;
                    // The acceptor proved the secret: lift the window now, so its update
                    // leaves with the confirmation and the acceptor's first data (a bandwidth
                    // probe's train) does not stall on the small one for a round trip.
                    admitted_window(&conn);
                    write_frame(
                        &mut send,
                        &Frame::<()>::Confirm {
                            confirm: confirmation.proof(),
                        },
                    )
                    .await
                    .map_err(|e| fail(e.to_string()))?;
                    match read_frame_within::<(), _>(&mut recv, ADMISSION_FRAME_LIMIT).await {
                        Ok(Frame::Admitted) => {}
                        Ok(_) => return Err(refused()),
                        Err(e) => return Err(closed(e)),
                    }
                    Ok(Admitted {
                        peer,
                        listen,
                        http,
                        conn: conn.clone(),
                        send,
                        recv,
                        dialed: true,
                        observed: Some(observed),
                    })
                }
                Ok(_) => Err(refused()),
                Err(e) => Err(closed(e)),
            }
        };
        let drain = async {
            drop_datagrams(conn.clone()).await;
            std::future::pending::<()>().await;
        };
        let outcome = tokio::select! {
            r = tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake) => r,
            // The drain never ends; this arm only keeps it polled.
            () = drain => Ok(Err(fail("the connection closed".into()))),
        };
        match outcome {
            Ok(result) => result,
            Err(_) => {
                conn.close(code::REFUSED.into(), REFUSED_REASON);
                Err(fail("the admission handshake timed out".into()))
            }
        }
    }

    /// Accepts connections for ever, handing each admitted one to `admitted` and counting
    /// refusals in `refused` (with the reason, for logs).
    pub async fn accept_loop(
        self,
        admitted: mpsc::Sender<Admitted>,
        refused: mpsc::Sender<(SocketAddr, Refusal)>,
    ) {
        while let Some(incoming) = self.endpoint.accept().await {
            let remote = incoming.remote_address();
            let held_back = self
                .failures
                .lock()
                .map(|f| !f.allows(remote.ip(), std::time::Instant::now()))
                .unwrap_or(false);
            if held_back {
                incoming.refuse();
                let _ = refused.try_send((remote, Refusal::HeldBack));
                continue;
            }
            let under_way = MAX_HANDSHAKES - self.handshakes.available_permits();
            if under_way >= RETRY_ABOVE && !incoming.remote_address_validated() {
                if incoming.may_retry() {
                    let _ = incoming.retry();
                } else {
                    incoming.refuse();
                }
                continue;
            }
            let Ok(permit) = self.handshakes.clone().try_acquire_owned() else {
                incoming.refuse();
                let _ = refused.try_send((remote, Refusal::Busy));
                continue;
            };
            let this = self.clone();
            let admitted = admitted.clone();
            let refused = refused.clone();
            tokio::spawn(async move {
                let outcome = tokio::time::timeout(HANDSHAKE_TIMEOUT, this.admit(incoming)).await;
                drop(permit);
                let reason = match outcome {
                    Ok(Ok(a)) => {
                        let _ = admitted.send(a).await;
                        return;
                    }
                    Ok(Err(reason)) => reason,
                    Err(_) => Refusal::TimedOut,
                };
                // Only a wrong proof told the peer anything (whether its guess was right);
                // a peer that went away mid-handshake cost a slot, which the cap bounds.
                if matches!(reason, Refusal::NotProved { .. })
                    && let Ok(mut f) = this.failures.lock()
                {
                    f.failed(remote.ip(), std::time::Instant::now());
                }
                let _ = refused.try_send((remote, reason));
            });
        }
    }

    async fn admit(&self, incoming: quinn::Incoming) -> Result<Admitted, Refusal> {
        let conn = incoming
            .await
            .map_err(|e| Refusal::Handshake(connection_error_kind(&e)))?;
        let drain = tokio::spawn(drop_datagrams(conn.clone()));
        let result = self.handshake_as_acceptor(&conn).await;
        drain.abort();
        if result.is_err() {
            conn.close(code::REFUSED.into(), REFUSED_REASON);
        }
        result
    }

    async fn handshake_as_acceptor(&self, conn: &quinn::Connection) -> Result<Admitted, Refusal> {
        let peer = tls::peer_id(conn).ok_or(Refusal::NoKey)?;
        let me = self.identity.id();
        let channel = channel_binding(conn).ok_or(Refusal::NoKey)?;
        let (mut send, mut recv) = conn
            .accept_bi()
            .await
            .map_err(|e| Refusal::NoControlStream(connection_error_kind(&e)))?;
        // A transport error may carry the peer's close reason: logged without it.
        let bad = |source| Refusal::BadFrame {
            peer,
            source: match source {
                FrameError::Io(_) => FrameError::Io("the stream or connection failed".into()),
                other => other,
            },
        };
        let Frame::Hello {
            pake: theirs,
            listen,
            http,
        } = read_frame_within::<(), _>(&mut recv, ADMISSION_FRAME_LIMIT)
            .await
            .map_err(bad)?
        else {
            return Err(Refusal::Unexpected {
                peer,
                want: "hello",
            });
        };
        let (pake, mine) = self.admission.start(Role::Acceptor, peer, me);
        let confirmation = pake
            .finish(&theirs, &channel)
            .map_err(|_| Refusal::NotProved { peer })?;
        let welcome: Frame<()> = Frame::Welcome {
            pake: mine,
            confirm: confirmation.proof(),
            listen: self.public(self.listen),
            http: self.http.map(|h| self.public(h)),
            observed: conn.remote_address(),
        };
        write_frame(&mut send, &welcome)
            .await
            .map_err(|source| Refusal::Write { peer, source })?;
        let Frame::Confirm { confirm } =
            read_frame_within::<(), _>(&mut recv, ADMISSION_FRAME_LIMIT)
                .await
                .map_err(bad)?
        else {
            return Err(Refusal::Unexpected {
                peer,
                want: "confirmation",
            });
        };
        confirmation
            .verify(&confirm)
            .map_err(|_| Refusal::NotProved { peer })?;
        // The window first: its update leaves with (or before) the frame that lets the dialer
        // send.
        admitted_window(conn);
        write_frame(&mut send, &Frame::<()>::Admitted)
            .await
            .map_err(|source| Refusal::Write { peer, source })?;
        Ok(Admitted {
            peer,
            listen,
            http,
            conn: conn.clone(),
            send,
            recv,
            dialed: false,
            observed: None,
        })
    }

    /// Stops accepting and closes every connection.
    pub fn close(&self) {
        self.endpoint.close(code::CLOSED.into(), b"shutting down");
    }
}
