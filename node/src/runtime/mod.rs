//! The runtime: one task owns a sans-IO [`Protocol`] and feeds it what the network and the
//! application bring, keeping the drain rule (every output acted on, in order, after every
//! input) and the protocol's timers on a single sleep. It drives any protocol and knows no
//! application.
//!
//! Transport links and protocol links are apart. A QUIC connection to a peer opens on demand
//! (the protocol's first send, connect or measurement towards it) and may carry messages
//! without being a *link*; `Output::Connect` makes it one: the peer hears `LinkOpen` and its
//! protocol sees the link come up, as in the simulator. Data messages go as QUIC datagrams
//! when they fit; everything else, in order, on the control stream. Addresses: a peer's own
//! hello says where it listens, and members pass on the addresses they know every few seconds,
//! so the protocol can reach members it learned of by id alone (a wrong address is harmless:
//! the dial checks the key).
//!
//! Modules: `driver` (the loop and what it does with each output and input), `connection`
//! (one admitted connection's tasks and the peer table's entries), `datagrams` (every
//! connection's datagrams, read in the driver's own task), `addresses` (the address book and
//! its gossip), `pacing` (rate adaptation by dropping on each link), `release` (media datagrams
//! leave at the paced rate, not in bursts), `clock` (the protocol's wall clock), [`status`]
//! (counters and the snapshot for status pages), [`shared`] (a protocol the application reads
//! between the driver's turns).

mod addresses;
mod bandwidth_probe;
mod clock;
mod connection;
mod datagrams;
mod driver;
mod encode_once;
mod pacing;
mod receive_budget;
mod release;
pub mod shared;
pub mod status;
mod upload_budget;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use overlay_core::{Bandwidth, NodeId, Protocol};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

pub use clock::{WallClock, wall_now};
pub use pacing::DATAGRAM_BUFFER;
pub use status::{PeerSnapshot, TransportCounters, TransportSnapshot};

use crate::transport::connect::{ConnectError, Connector};
use driver::Driver;

/// What the application asks of the runtime.
#[derive(Debug)]
pub enum Control<C> {
    /// A command for the protocol.
    Command(C),
    /// Connect to a bootstrap address; the reply is the member found there.
    Dial {
        /// The address.
        addr: SocketAddr,
        /// The member expected there (its key must be this id), if known.
        expected: Option<NodeId>,
        /// The member's id, or why it could not be reached or admitted.
        reply: oneshot::Sender<Result<NodeId, DialError>>,
    },
    /// Answered as soon as the driver reads it: how long that takes is how busy the member is.
    Ping(oneshot::Sender<()>),
    /// The operator caps what this member sends to `peer` at `bps` bits a second (`None`:
    /// lifts the cap). The link's pacer then sheds by priority as it would on a narrow path
    /// (upper layers, then the base layer, keyframes and sound last). Kept for a peer that
    /// connects later.
    LimitLink {
        /// The peer.
        peer: NodeId,
        /// The cap, bits per second.
        bps: Option<u64>,
        /// What became of it.
        reply: oneshot::Sender<LinkLimitOutcome>,
    },
    /// Stop: close every connection and end the task.
    Shutdown,
}

/// What became of an operator's [`Control::LimitLink`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkLimitOutcome {
    /// The link is capped at this many bits a second (the cap asked for, or the pacer's floor
    /// if that was lower).
    Capped(u64),
    /// The cap is lifted.
    Lifted,
    /// Refused: as many peers as a member keeps caps for are capped already.
    TooMany,
}

/// The running member, as the application holds it.
#[derive(Debug)]
pub struct RuntimeHandle<C, E> {
    /// Commands and dials.
    pub control: mpsc::Sender<Control<C>>,
    /// The protocol's events.
    pub events: mpsc::UnboundedReceiver<E>,
    /// The transport's latest snapshot.
    pub snapshot: Arc<Mutex<TransportSnapshot>>,
    /// This member.
    pub id: NodeId,
    /// Where it listens.
    pub local_addr: SocketAddr,
    /// The driver task.
    pub task: JoinHandle<()>,
}

/// Why a dial through the runtime found no member.
#[derive(Debug, thiserror::Error)]
pub enum DialError {
    /// The runtime's task has ended.
    #[error("the runtime stopped")]
    Stopped,
    /// The address could not be reached, or its member refused or was refused.
    #[error(transparent)]
    Connect(#[from] ConnectError),
}

/// Dials `addr` through the runtime behind `control` (its key must be `expected`, if given):
/// the member found there, or why not
/// (unreachable, refused, or the runtime stopped).
pub async fn dial<C>(
    control: &mpsc::Sender<Control<C>>,
    addr: SocketAddr,
    expected: Option<NodeId>,
) -> Result<NodeId, DialError> {
    let (reply, answer) = oneshot::channel();
    control
        .send(Control::Dial {
            addr,
            expected,
            reply,
        })
        .await
        .map_err(|_| DialError::Stopped)?;
    answer.await.map_err(|_| DialError::Stopped)?
}

/// Called on the driver task with the protocol: twice a second (for status pages), or after
/// every input with [`RuntimeOptions::observe_every_input`].
pub type Observer<P> = Box<dyn FnMut(&P) + Send>;

/// How the runtime carries a protocol.
#[derive(Clone, Copy, Debug)]
pub struct RuntimeOptions {
    /// Send data-class messages as QUIC datagrams (unreliable; right for media a protocol
    /// repairs or drops itself). Off, everything goes in order on the control stream (right
    /// for a byte stream delivered by offset, as Overcast's is).
    pub datagrams: bool,
    /// Call the observer after every input, not only twice a second (to follow content as it
    /// arrives).
    pub observe_every_input: bool,
    /// Pace media datagrams and drop what a link cannot carry, least important first (see
    /// `pacing`); off, they go straight to QUIC (the relay benchmark's baseline).
    pub pacing: bool,
    /// This member's download capacity, if known: it then tells each peer sending it media
    /// the share of the download it may fill, so parents feeding it at once stay under it
    /// together (see `receive_budget`).
    pub download: Option<Bandwidth>,
    /// This member's upload capacity, if known: its outgoing links' pacers then split most of
    /// it, so its own media does not queue at its access link in front of the acknowledgements
    /// of what it receives (see `upload_budget`).
    pub upload: Option<Bandwidth>,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        Self {
            datagrams: true,
            observe_every_input: false,
            pacing: true,
            download: None,
            upload: None,
        }
    }
}

/// Starts a member with the default options: binds the endpoint, accepts admitted peers, and
/// drives `protocol`.
pub fn start<P>(
    protocol: P,
    connector: Connector,
    observer: Option<Observer<P>>,
) -> RuntimeHandle<P::Command, P::Event>
where
    P: Protocol + Send + 'static,
    P::Message: Send + 'static,
    P::Command: Send + 'static,
    P::Event: Send + 'static,
{
    start_with(protocol, connector, observer, RuntimeOptions::default())
}

/// Starts a member with `options`.
pub fn start_with<P>(
    protocol: P,
    connector: Connector,
    observer: Option<Observer<P>>,
    options: RuntimeOptions,
) -> RuntimeHandle<P::Command, P::Event>
where
    P: Protocol + Send + 'static,
    P::Message: Send + 'static,
    P::Command: Send + 'static,
    P::Event: Send + 'static,
{
    let (control_tx, control_rx) = mpsc::channel(1024);
    let (events_tx, events_rx) = mpsc::unbounded_channel();
    let (inbound_tx, inbound_rx) = mpsc::channel(8192);
    let snapshot = Arc::new(Mutex::new(TransportSnapshot::default()));
    let id = connector.id();
    let local_addr = connector.local_addr();
    let (admitted_tx, mut admitted_rx) = mpsc::channel(64);
    let (refused_tx, mut refused_rx) = mpsc::channel(64);
    tokio::spawn(connector.clone().accept_loop(admitted_tx, refused_tx));
    let forward = inbound_tx.clone();
    tokio::spawn(async move {
        loop {
            let item = tokio::select! {
                Some(a) = admitted_rx.recv() => connection::Inbound::Admitted(a),
                Some((addr, why)) = refused_rx.recv() => connection::Inbound::Refused(addr, why),
                else => break,
            };
            if forward.send(item).await.is_err() {
                break;
            }
        }
    });
    let driver = Driver::new(
        protocol,
        connector,
        inbound_tx,
        events_tx,
        snapshot.clone(),
        observer,
        options,
    );
    let task = tokio::spawn(driver.run(control_rx, inbound_rx));
    RuntimeHandle {
        control: control_tx,
        events: events_rx,
        snapshot,
        id,
        local_addr,
        task,
    }
}
