//! One admitted connection as the driver keeps it: its entry in the peer table, what waits
//! for a dial to a member, what the connection's tasks hand the driver, and the tasks that
//! write its control frames and read its frames (its datagrams are read by the driver's own
//! task, see [`super::datagrams`]).

use std::net::SocketAddr;

use overlay_core::wire::WireMessage;
use overlay_core::{MeasureRequest, NodeId, Time};
use tokio::sync::{mpsc, oneshot};

use super::DialError;
use super::bandwidth_probe;
use super::clock::WallClock;
use super::pacing::LinkPacer;
use super::release::Release;
use crate::transport::connect::{Admitted, ConnectError, Refusal};
use crate::transport::frame::{Frame, FrameError, read_frame};

/// One QUIC connection to a peer.
pub(super) struct Conn {
    /// Which of the runtime's connections it is (they are numbered as admitted).
    pub(super) serial: u64,
    pub(super) conn: quinn::Connection,
    /// Encoded control frames for its writer task.
    pub(super) frames: mpsc::Sender<Vec<u8>>,
    /// Media datagrams on their way out at the paced rate.
    pub(super) release: Release,
}

/// A peer with at least one open connection.
pub(super) struct Peer {
    /// Where it listens.
    pub(super) listen: SocketAddr,
    /// Where it serves HTTP, if it said.
    pub(super) http: Option<SocketAddr>,
    /// Its connections, oldest first (two while a newer one supersedes an older).
    pub(super) conns: Vec<Conn>,
    /// Whether the protocol holds a link to it.
    pub(super) link: bool,
    /// Rate adaptation of the media sent to it.
    pub(super) pacer: LinkPacer,
    /// Media datagrams that arrived from it since the last shares were sent.
    pub(super) received_media: super::receive_budget::MediaTally,
    /// Media datagrams released to it since this member's upload was last split.
    pub(super) sent_media: super::receive_budget::MediaTally,
    /// The bandwidth probe asked of it, until its train is in.
    pub(super) probe_out: Option<bandwidth_probe::Outgoing>,
    /// That probe's train, arriving.
    pub(super) probe_in: Option<bandwidth_probe::Incoming>,
    /// When this member last sent it a train.
    pub(super) train_sent: Option<Time>,
    /// When this member last answered its [`Frame::AddressAsk`](crate::transport::frame::Frame).
    pub(super) addresses_answered: Option<Time>,
    /// UDP datagrams its connections had received at the last liveness report.
    pub(super) rx_datagrams: u64,
}

/// What waits for a connection to a member being dialled.
pub(super) struct Pending<M> {
    /// Messages to send once it is open.
    pub(super) sends: Vec<M>,
    /// Whether the protocol asked for a link.
    pub(super) link: bool,
    /// Measurements asked for.
    pub(super) measures: Vec<MeasureRequest>,
    /// Whether a dial is under way.
    pub(super) dialing: bool,
}

impl<M> Default for Pending<M> {
    fn default() -> Self {
        Self {
            sends: Vec::new(),
            link: false,
            measures: Vec::new(),
            dialing: false,
        }
    }
}

/// Where a dial's answer goes, if someone waits for it.
pub(super) type DialReply = Option<oneshot::Sender<Result<NodeId, DialError>>>;

/// What the connection tasks, the acceptor and dials hand the driver.
pub(super) enum Inbound<M> {
    /// A peer dialled in and was admitted.
    Admitted(Admitted),
    /// A peer dialled in and was refused.
    Refused(SocketAddr, Refusal),
    /// A dial failed.
    DialFailed {
        /// The member the dial was for, if it was for one.
        expected: Option<NodeId>,
        /// Why.
        error: ConnectError,
        /// Who waits for the answer.
        reply: DialReply,
    },
    /// A dial succeeded.
    Dialed(Admitted, DialReply),
    /// A control frame from a peer's connection.
    Frame(NodeId, u64, Frame<M>),
    /// A bandwidth probe's frame from a peer, stamped when it was read.
    Probe {
        /// The peer.
        peer: NodeId,
        /// Which probe.
        id: u32,
        /// The frame's place in the train.
        index: u16,
        /// Frames in the train.
        count: u16,
        /// Its filler's length.
        bytes: usize,
        /// When it was read.
        at: Time,
    },
    /// A peer's control stream broke its framing (the connection is then closed).
    BadFrame(NodeId, u64, FrameError),
    /// A datagram from a peer, and its size in bytes.
    Datagram(NodeId, M, usize),
    /// A datagram that did not decode.
    BadDatagram,
    /// A connection closed, and why.
    Closed(NodeId, u64, String),
}

/// Spawns the tasks that write the connection's control frames and read its frames.
pub(super) fn spawn_connection_tasks<M>(
    peer: NodeId,
    serial: u64,
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
    mut frames: mpsc::Receiver<Vec<u8>>,
    inbound: mpsc::Sender<Inbound<M>>,
) where
    M: WireMessage + Send + 'static,
{
    tokio::spawn(async move {
        while let Some(bytes) = frames.recv().await {
            if send.write_all(&bytes).await.is_err() {
                break;
            }
        }
    });
    tokio::spawn(async move {
        let mut clock = WallClock::default();
        loop {
            match read_frame::<M, _>(&mut recv).await {
                Ok(frame) => {
                    let item = match frame {
                        Frame::Probe {
                            id,
                            index,
                            count,
                            fill,
                        } => Inbound::Probe {
                            peer,
                            id,
                            index,
                            count,
                            bytes: fill.len(),
                            at: clock.now(),
                        },
                        frame => Inbound::Frame(peer, serial, frame),
                    };
                    if inbound.send(item).await.is_err() {
                        return;
                    }
                }
                Err(FrameError::End | FrameError::Io(_)) => return,
                Err(e) => {
                    let _ = inbound.send(Inbound::BadFrame(peer, serial, e)).await;
                    return;
                }
            }
        }
    });
}
