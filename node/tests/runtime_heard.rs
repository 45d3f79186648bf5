//! The runtime tells a protocol which peers its connections hear from (`LinkEvent::Heard`),
//! whether or not the protocol asked for a link, and stops once the peer is gone. (A peer
//! that vanishes without a word, as a SIGKILLed process does, is the browser test's case.)

use std::time::Duration;

use node::runtime::{self, Control};
use node::transport::admission::GroupSecret;
use node::transport::connect::{Connector, TransportSettings};
use node::transport::identity::Identity;
use overlay_core::{LinkEvent, NodeId, Outbox, Output, Protocol, Time};
use probe::ProbeMessage;

/// Pings the peer it is told to, answers pings, and reports what the driver says of links.
struct Chatter {
    id: NodeId,
    outbox: Outbox<ProbeMessage, (NodeId, LinkEvent)>,
}

impl Protocol for Chatter {
    type Message = ProbeMessage;
    type Command = NodeId;
    type Event = (NodeId, LinkEvent);

    fn id(&self) -> NodeId {
        self.id
    }

    fn handle_message(&mut self, _now: Time, from: NodeId, msg: ProbeMessage) {
        if let ProbeMessage::Ping { nonce } = msg {
            self.outbox.send(from, ProbeMessage::Pong { nonce });
        }
    }

    fn handle_command(&mut self, _now: Time, peer: NodeId) {
        self.outbox.send(peer, ProbeMessage::Ping { nonce: 1 });
    }

    fn handle_link(&mut self, _now: Time, peer: NodeId, event: LinkEvent) {
        self.outbox.emit((peer, event));
    }

    fn poll_output(&mut self) -> Option<Output<ProbeMessage, (NodeId, LinkEvent)>> {
        self.outbox.pop()
    }
}

fn member() -> runtime::RuntimeHandle<NodeId, (NodeId, LinkEvent)> {
    let connector = Connector::bind(
        "127.0.0.1:0".parse().unwrap(),
        Identity::generate().unwrap(),
        GroupSecret::new("heard", b"a secret of the test").unwrap(),
        TransportSettings::default(),
    )
    .unwrap();
    let protocol = Chatter {
        id: connector.id(),
        outbox: Outbox::default(),
    };
    runtime::start(protocol, connector, None)
}

/// The `Heard` reports about `peer` among the events that came within `window`.
async fn heard_within(
    events: &mut tokio::sync::mpsc::UnboundedReceiver<(NodeId, LinkEvent)>,
    peer: NodeId,
    window: Duration,
) -> usize {
    let until = tokio::time::Instant::now() + window;
    let mut heard = 0;
    while let Ok(Some((from, event))) = tokio::time::timeout_at(until, events.recv()).await {
        heard += usize::from(from == peer && event == LinkEvent::Heard);
    }
    heard
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_the_connection_hears_is_reported_heard_and_one_gone_is_not() {
    let mut a = member();
    let b = member();
    let b_id = runtime::dial(&a.control, b.local_addr, Some(b.id))
        .await
        .expect("a reaches b");
    // a pings b (its protocol asks for no link) and b answers: a's connection hears b.
    for _ in 0..4 {
        a.control.send(Control::Command(b_id)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let heard = heard_within(&mut a.events, b_id, Duration::from_secs(1)).await;
    assert!(heard >= 1, "a never reported b heard");
    // b shuts down (its endpoint closes; nothing answers any more): the reports stop too.
    b.control.send(Control::Shutdown).await.unwrap();
    let _ = b.task.await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    while a.events.try_recv().is_ok() {}
    for _ in 0..4 {
        let _ = a.control.send(Control::Command(b_id)).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let after = heard_within(&mut a.events, b_id, Duration::from_secs(1)).await;
    assert_eq!(after, 0, "b reported heard after it stopped");
}
