//! Every connection's datagrams (the media), read in the driver's own task.
//!
//! A packet a relay forwards should cross as few tasks as it can: read by a task per connection
//! and handed over a channel, it paid a wake-up and a queue more on the path whose delay a hop
//! adds. Here each connection has a reader, pushed once into a `FuturesUnordered` that the driver
//! polls itself; a reader that got a datagram decodes it, leaves it in the set's queue and
//! yields, so a reader with many datagrams waiting does not hold the others up and the queue
//! holds at most about one datagram per connection. The set allocates nothing per datagram (a
//! set whose readers ended with each datagram, as `SelectAll`'s do, would allocate a task each
//! time one is pushed again), and the decode allocates nothing for a payload marked shared (see
//! `overlay_core::wire::shared`): it is a view of the datagram quinn read.

use std::collections::VecDeque;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use overlay_core::NodeId;
use overlay_core::wire::WireMessage;
use overlay_core::wire::shared;

use super::connection::Inbound;

/// One connection's reader: it runs until the connection closes.
type Reader = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The datagrams of all of a driver's connections.
pub(super) struct Datagrams<M> {
    readers: FuturesUnordered<Reader>,
    /// What the readers read and the driver has not taken yet, oldest first.
    arrived: Arc<Mutex<VecDeque<Inbound<M>>>>,
}

impl<M> Datagrams<M>
where
    M: WireMessage + Send + 'static,
{
    /// No connections yet.
    pub(super) fn new() -> Self {
        Self {
            readers: FuturesUnordered::new(),
            arrived: Arc::default(),
        }
    }

    /// Whether nothing is read or waiting (no connection, nothing queued).
    pub(super) fn is_empty(&self) -> bool {
        self.readers.is_empty() && self.queued() == 0
    }

    fn queued(&self) -> usize {
        self.arrived
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    fn take(&self) -> Option<Inbound<M>> {
        self.arrived
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop_front()
    }

    /// Reads connection `serial` to `peer` from now on: its datagrams decoded, then
    /// [`Inbound::Closed`] once it closes.
    pub(super) fn add(&mut self, peer: NodeId, serial: u64, conn: quinn::Connection) {
        let arrived = self.arrived.clone();
        let push = move |item: Inbound<M>| {
            arrived
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push_back(item);
        };
        self.readers.push(Box::pin(async move {
            loop {
                match conn.read_datagram().await {
                    Ok(bytes) => {
                        push(match shared::decode::<M>(&bytes) {
                            Ok(msg) => Inbound::Datagram(peer, msg, bytes.len()),
                            Err(_) => Inbound::BadDatagram,
                        });
                        yield_once().await;
                    }
                    Err(e) => {
                        push(Inbound::Closed(peer, serial, e.to_string()));
                        return;
                    }
                }
            }
        }));
    }

    /// The next datagram (or closing) of any connection, in the order the readers read them.
    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Inbound<M>> {
        loop {
            if let Some(item) = self.take() {
                return Poll::Ready(item);
            }
            match self.readers.poll_next_unpin(cx) {
                // A reader ended: its closing is queued.
                Poll::Ready(Some(())) => {}
                // No connection: nothing comes until one is added (the driver's loop asks
                // again then; it does not ask while the set is empty).
                Poll::Ready(None) => return Poll::Pending,
                Poll::Pending => {
                    return self.take().map_or(Poll::Pending, Poll::Ready);
                }
            }
        }
    }

    /// Waits for the next datagram (or closing) of any connection.
    pub(super) async fn next(&mut self) -> Inbound<M> {
        poll_fn(|cx| self.poll_next(cx)).await
    }

    /// The next datagram if one has come, without waiting. Asked with a waker that does
    /// nothing: the driver's loop asks with its own again before it waits, so no wake-up is
    /// lost (a woken reader stays queued in the set until it is polled).
    pub(super) fn try_next(&mut self) -> Option<Inbound<M>> {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        match self.poll_next(&mut cx) {
            Poll::Ready(item) => Some(item),
            Poll::Pending => None,
        }
    }
}

/// Returns `Pending` once after waking its task, so the set polls its other readers first.
async fn yield_once() {
    let mut yielded = false;
    poll_fn(|cx| {
        if yielded {
            Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
    .await;
}
