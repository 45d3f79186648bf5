//! A protocol the runtime drives while the application reads it too: the authoritative
//! resolver's table answers DNS queries between the driver's turns. Each call takes the lock
//! for that call only; the driver's drain rule (every output acted on after every input)
//! still holds, since whatever the application does under the lock (a pick) emits nothing.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use overlay_core::{LinkEvent, LinkMetrics, NodeId, Output, Protocol, Time};

/// `P` behind a lock the runtime and the application share.
#[derive(Debug)]
pub struct Shared<P>(pub Arc<Mutex<P>>);

impl<P> Shared<P> {
    fn locked(&self) -> MutexGuard<'_, P> {
        // A panic elsewhere while holding the lock leaves the state as it was: go on with it.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<P: Protocol> Protocol for Shared<P> {
    type Message = P::Message;
    type Command = P::Command;
    type Event = P::Event;

    fn id(&self) -> NodeId {
        self.locked().id()
    }

    fn handle_message(&mut self, now: Time, from: NodeId, msg: Self::Message) {
        self.locked().handle_message(now, from, msg);
    }

    fn handle_command(&mut self, now: Time, cmd: Self::Command) {
        self.locked().handle_command(now, cmd);
    }

    fn handle_measurement(&mut self, now: Time, peer: NodeId, metrics: LinkMetrics) {
        self.locked().handle_measurement(now, peer, metrics);
    }

    fn handle_link(&mut self, now: Time, peer: NodeId, event: LinkEvent) {
        self.locked().handle_link(now, peer, event);
    }

    fn handle_timeout(&mut self, now: Time) {
        self.locked().handle_timeout(now);
    }

    fn poll_output(&mut self) -> Option<Output<Self::Message, Self::Event>> {
        self.locked().poll_output()
    }

    fn poll_timeout(&self) -> Option<Time> {
        self.locked().poll_timeout()
    }
}
