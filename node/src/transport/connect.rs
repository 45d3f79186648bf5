//! Opening admitted connections: the QUIC endpoint, dialling (with the admission handshake as
//! the dialer) and accepting (as the acceptor). A connection reaches the runtime only once both
//! sides proved the group secret; a refused peer is told why, the connection is closed with that
//! reason, and the refusal is counted.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use overlay_core::NodeId;
use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use tokio::sync::mpsc;

use super::admission::{GroupSecret, Role};
use super::emulation::Emulation;
use super::emulation::socket::EmulatedSocket;
use super::frame::{Frame, FrameError, read_frame, write_frame};
use super::identity::Identity;
use super::tls;

/// How long the admission handshake may take.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

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
    // Small: media that waits here goes stale (the runtime paces it to what the path carries
    // and drops the rest, least important first); 128 KiB is ~50 ms at 20 Mbit/s.
    t.datagram_send_buffer_size(crate::runtime::DATAGRAM_BUFFER);
    let mut cubic = quinn::congestion::CubicConfig::default();
    cubic.initial_window(INITIAL_WINDOW);
    t.congestion_controller_factory(Arc::new(cubic));
    Arc::new(t)
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
    /// The peer refused this member's admission.
    #[error("{addr} refused admission: {reason}")]
    Refused {
        /// The address.
        addr: SocketAddr,
        /// The peer's reason.
        reason: String,
    },
}

/// Why an incoming connection was not admitted (for the refusal count and the log).
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// The QUIC or TLS handshake failed.
    #[error("handshake: {0}")]
    Handshake(quinn::ConnectionError),
    /// The peer presented no certificate key.
    #[error("the peer presented no key")]
    NoKey,
    /// The peer opened no control stream.
    #[error("no control stream: {0}")]
    NoControlStream(quinn::ConnectionError),
    /// The peer's hello was refused (wrong group or secret); it was told why.
    #[error("{peer}: {reason}")]
    Refused {
        /// The peer.
        peer: NodeId,
        /// What it was told.
        reason: String,
    },
    /// The peer's first frame was not a hello.
    #[error("{peer}: expected a hello, got {got}")]
    NotHello {
        /// The peer.
        peer: NodeId,
        /// What came instead.
        got: String,
    },
    /// The peer's hello did not decode.
    #[error("{peer}: bad hello: {source}")]
    BadHello {
        /// The peer.
        peer: NodeId,
        /// What was wrong.
        source: FrameError,
    },
    /// The welcome could not be written.
    #[error("{peer}: welcome: {source}")]
    Welcome {
        /// The peer.
        peer: NodeId,
        /// What failed.
        source: FrameError,
    },
    /// The handshake took longer than [`HANDSHAKE_TIMEOUT`].
    #[error("the admission handshake timed out")]
    TimedOut,
}

/// A member's QUIC endpoint with what it needs to dial and admit.
#[derive(Clone, Debug)]
pub struct Connector {
    endpoint: quinn::Endpoint,
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
        let handshake = async {
            let (mut send, mut recv) = conn.open_bi().await.map_err(|e| fail(e.to_string()))?;
            let hello: Frame<()> = Frame::Hello {
                group: self.admission.group().to_owned(),
                listen: self.public(self.listen),
                http: self.http.map(|h| self.public(h)),
                proof: self.admission.proof(Role::Dialer, me, peer),
            };
            write_frame(&mut send, &hello)
                .await
                .map_err(|e| fail(e.to_string()))?;
            match read_frame::<(), _>(&mut recv).await {
                Ok(Frame::Welcome {
                    listen,
                    http,
                    observed,
                    proof,
                }) => {
                    if self.admission.verify(Role::Acceptor, peer, me, &proof) {
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
                    } else {
                        conn.close(
                            code::REFUSED.into(),
                            b"your proof of the group secret is wrong",
                        );
                        Err(ConnectError::Refused {
                            addr,
                            reason: "the peer does not know the group secret".into(),
                        })
                    }
                }
                Ok(Frame::Refused { reason }) => Err(ConnectError::Refused { addr, reason }),
                Ok(other) => Err(fail(format!("expected a welcome, got {other:?}"))),
                Err(e) => {
                    let reason = conn
                        .close_reason()
                        .map(|r| r.to_string())
                        .unwrap_or_else(|| e.to_string());
                    Err(fail(reason))
                }
            }
        };
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
            Ok(result) => result,
            Err(_) => {
                conn.close(code::REFUSED.into(), b"admission timed out");
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
            let this = self.clone();
            let admitted = admitted.clone();
            let refused = refused.clone();
            tokio::spawn(async move {
                let remote = incoming.remote_address();
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, this.admit(incoming)).await {
                    Ok(Ok(a)) => {
                        let _ = admitted.send(a).await;
                    }
                    Ok(Err(reason)) => {
                        let _ = refused.send((remote, reason)).await;
                    }
                    Err(_) => {
                        let _ = refused.send((remote, Refusal::TimedOut)).await;
                    }
                }
            });
        }
    }

    async fn admit(&self, incoming: quinn::Incoming) -> Result<Admitted, Refusal> {
        let conn = incoming.await.map_err(Refusal::Handshake)?;
        let peer = tls::peer_id(&conn).ok_or(Refusal::NoKey)?;
        let me = self.identity.id();
        let (mut send, mut recv) = conn.accept_bi().await.map_err(Refusal::NoControlStream)?;
        let refuse = |refusal: Refusal| {
            let conn = conn.clone();
            async move {
                conn.close(code::REFUSED.into(), refusal.to_string().as_bytes());
                refusal
            }
        };
        match read_frame::<(), _>(&mut recv).await {
            Ok(Frame::Hello {
                group,
                listen,
                http,
                proof,
            }) => {
                let reason = if group != self.admission.group() {
                    Some(format!(
                        "this member is in group {:?}, not {group:?}",
                        self.admission.group()
                    ))
                } else if !self.admission.verify(Role::Dialer, peer, me, &proof) {
                    Some("wrong group secret".to_owned())
                } else {
                    None
                };
                if let Some(reason) = reason {
                    let _ = write_frame(
                        &mut send,
                        &Frame::<()>::Refused {
                            reason: reason.clone(),
                        },
                    )
                    .await;
                    let _ = send.finish();
                    // Give the refusal a moment to leave before the close discards it.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    return Err(refuse(Refusal::Refused { peer, reason }).await);
                }
                let welcome: Frame<()> = Frame::Welcome {
                    listen: self.public(self.listen),
                    http: self.http.map(|h| self.public(h)),
                    observed: conn.remote_address(),
                    proof: self.admission.proof(Role::Acceptor, me, peer),
                };
                write_frame(&mut send, &welcome)
                    .await
                    .map_err(|source| Refusal::Welcome { peer, source })?;
                Ok(Admitted {
                    peer,
                    listen,
                    http,
                    conn,
                    send,
                    recv,
                    dialed: false,
                    observed: None,
                })
            }
            Ok(other) => Err(refuse(Refusal::NotHello {
                peer,
                got: format!("{other:?}"),
            })
            .await),
            Err(source) => Err(refuse(Refusal::BadHello { peer, source }).await),
        }
    }

    /// Stops accepting and closes every connection.
    pub fn close(&self) {
        self.endpoint.close(code::CLOSED.into(), b"shutting down");
    }
}
