//! The sans-IO contract every protocol of the overlay follows.
//!
//! A protocol is a pure state machine. Inputs are method calls that carry the current time; outputs
//! are queued inside it and drained by the caller. It never reads a clock, never opens a socket,
//! never spawns a task and never sleeps; its randomness comes from a seed in its config. The same
//! state machine is therefore driven by the QUIC runtime and by the deterministic simulator.

use std::collections::VecDeque;
use std::fmt::Debug;

use crate::{LinkMetrics, MeasureRequest, NodeId, Time, WireMessage};

/// Whether a transport-level link to a peer came up or went down.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LinkEvent {
    /// A connection the member asked for (or accepted) is open.
    Up,
    /// The connection failed, closed, or the peer stopped answering at the transport level.
    Down,
    /// Packets came from the peer at the transport level (acknowledgements, retransmissions,
    /// datagrams) since the last such report: it lives, whatever became of the protocol's own
    /// messages on the way (a queue or a stream blocked behind a loss can hold those for
    /// seconds). A driver with no transport of its own, like the simulator, never reports it.
    Heard,
}

/// Something a protocol asks its driver to do.
#[derive(Clone, Debug, PartialEq)]
pub enum Output<M, E> {
    /// Send `msg` to `to`.
    Send {
        /// The recipient.
        to: NodeId,
        /// The message; the driver encodes it at its edge (the simulator only counts its size).
        msg: M,
    },
    /// Open a connection to `peer`; the driver answers with [`Protocol::handle_link`].
    Connect {
        /// The peer to connect to.
        peer: NodeId,
    },
    /// Close the connection to `peer`.
    Disconnect {
        /// The peer to disconnect from.
        peer: NodeId,
    },
    /// Measure the path to `peer`; the driver answers with [`Protocol::handle_measurement`].
    Measure {
        /// The peer at the other end of the path.
        peer: NodeId,
        /// What to measure.
        request: MeasureRequest,
    },
    /// Hand an event to the application.
    Emit(E),
}

/// A sans-IO protocol state machine.
///
/// # The drain rule
///
/// After **every** call to a `handle_*` method, the driver must call [`Protocol::poll_output`]
/// until it returns `None`, acting on each output in order, and then read
/// [`Protocol::poll_timeout`] to learn the next deadline. Only then may it feed the next input.
/// Outputs are therefore never reordered across inputs and no queue grows without bound.
///
/// # Time
///
/// `now` never decreases from one call to the next. [`Protocol::handle_timeout`] may be called
/// early or spuriously (a driver's timer can fire late or be shared); a protocol does only what is
/// due at `now` and nothing else.
///
/// # Errors
///
/// Malformed or hostile input from the network is dropped and counted, never returned as an error
/// and never a panic: the network is an attacker.
pub trait Protocol {
    /// Typed wire messages, encoded only at the runtime's edge.
    type Message: WireMessage;
    /// Requests from the application (join, leave, publish, ...).
    type Command: Debug;
    /// Notifications to the application (delivered data, member up or down, tree changed, ...).
    type Event: Debug;

    /// This member's identity.
    fn id(&self) -> NodeId;

    /// A message arrived from `from`.
    fn handle_message(&mut self, now: Time, from: NodeId, msg: Self::Message);

    /// The application asks for something.
    fn handle_command(&mut self, now: Time, cmd: Self::Command);

    /// A measurement asked for with [`Output::Measure`] (or taken by the driver on its own, such
    /// as the RTT of an open QUIC connection) is ready. By default ignored: a protocol that never
    /// measures has nothing to do with one.
    fn handle_measurement(&mut self, now: Time, peer: NodeId, metrics: LinkMetrics) {
        let _ = (now, peer, metrics);
    }

    /// A transport link to `peer` came up, went down, or was heard from. By default ignored: a
    /// protocol that works over messages alone needs no links.
    fn handle_link(&mut self, now: Time, peer: NodeId, event: LinkEvent) {
        let _ = (now, peer, event);
    }

    /// The deadline from [`Protocol::poll_timeout`] may have passed. By default nothing is due
    /// (a protocol without timers; override it together with [`Protocol::poll_timeout`]).
    fn handle_timeout(&mut self, now: Time) {
        let _ = now;
    }

    /// The next queued output, oldest first; `None` when the queue is empty (see the drain rule).
    fn poll_output(&mut self) -> Option<Output<Self::Message, Self::Event>>;

    /// The earliest time at which [`Protocol::handle_timeout`] must be called, if any. By
    /// default none (a protocol without timers).
    fn poll_timeout(&self) -> Option<Time> {
        None
    }
}

/// The output queue a protocol keeps inside and its driver drains: one implementation of the
/// queue so every protocol behaves the same.
#[derive(Debug)]
pub struct Outbox<M, E> {
    queue: VecDeque<Output<M, E>>,
}

impl<M, E> Default for Outbox<M, E> {
    fn default() -> Self {
        Self {
            queue: VecDeque::new(),
        }
    }
}

impl<M, E> Outbox<M, E> {
    /// Queue a message to `to`.
    pub fn send(&mut self, to: NodeId, msg: M) {
        self.queue.push_back(Output::Send { to, msg });
    }

    /// Queue an event for the application.
    pub fn emit(&mut self, event: E) {
        self.queue.push_back(Output::Emit(event));
    }

    /// Queue a connection request.
    pub fn connect(&mut self, peer: NodeId) {
        self.queue.push_back(Output::Connect { peer });
    }

    /// Queue a disconnection.
    pub fn disconnect(&mut self, peer: NodeId) {
        self.queue.push_back(Output::Disconnect { peer });
    }

    /// Queue a measurement request.
    pub fn measure(&mut self, peer: NodeId, request: MeasureRequest) {
        self.queue.push_back(Output::Measure { peer, request });
    }

    /// Queue any output.
    pub fn push(&mut self, output: Output<M, E>) {
        self.queue.push_back(output);
    }

    /// The oldest queued output.
    pub fn pop(&mut self) -> Option<Output<M, E>> {
        self.queue.pop_front()
    }

    /// How many outputs wait to be drained.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether the queue is drained.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}

impl<M, E> Output<M, E> {
    /// The same output with its message and event types converted, so an inner protocol's outputs
    /// can be lifted into an outer protocol's queue.
    pub fn map<M2, E2>(
        self,
        msg: impl FnOnce(M) -> M2,
        event: impl FnOnce(E) -> E2,
    ) -> Output<M2, E2> {
        match self {
            Self::Send { to, msg: m } => Output::Send { to, msg: msg(m) },
            Self::Connect { peer } => Output::Connect { peer },
            Self::Disconnect { peer } => Output::Disconnect { peer },
            Self::Measure { peer, request } => Output::Measure { peer, request },
            Self::Emit(e) => Output::Emit(event(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outbox_is_first_in_first_out_and_maps() {
        let mut outbox: Outbox<u8, &str> = Outbox::default();
        let peer = NodeId::from_index(1);
        outbox.send(peer, 7);
        outbox.emit("hello");
        outbox.connect(peer);
        assert_eq!(outbox.len(), 3);
        let first = outbox.pop().unwrap().map(u32::from, str::len);
        assert_eq!(
            first,
            Output::Send {
                to: peer,
                msg: 7u32
            }
        );
        assert_eq!(
            outbox.pop().unwrap().map(u32::from, str::len),
            Output::Emit(5usize)
        );
        assert_eq!(outbox.pop(), Some(Output::Connect { peer }));
        assert!(outbox.is_empty());
        assert_eq!(outbox.pop(), None);
    }
}
