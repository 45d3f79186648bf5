//! A client that asks the authoritative resolver for every server of one name with its
//! estimate: what a broadcast root feeds its redirect choice with. Sans-IO; its driver decides
//! when to ask (each [`Protocol::handle_command`] sends one query).

use overlay_core::{NodeId, Outbox, Output, Protocol, Time};

use crate::message::{Message, ServerRecord};
use crate::name::AnycastName;

/// Asks `resolver` about `name` on command, and emits the servers of the latest answer.
#[derive(Debug)]
pub struct EstimateFetcher {
    id: NodeId,
    resolver: NodeId,
    name: AnycastName,
    next_query: u64,
    outbox: Outbox<Message, Vec<ServerRecord>>,
}

impl EstimateFetcher {
    /// A fetcher `id` asking `resolver` about `name`.
    pub fn new(id: NodeId, resolver: NodeId, name: AnycastName) -> Self {
        Self {
            id,
            resolver,
            name,
            next_query: 0,
            outbox: Outbox::default(),
        }
    }
}

impl Protocol for EstimateFetcher {
    type Message = Message;
    /// Ask now.
    type Command = ();
    /// The servers the resolver listed, with its estimates.
    type Event = Vec<ServerRecord>;

    fn id(&self) -> NodeId {
        self.id
    }

    /// Only the answer to the latest query, from the resolver asked, counts: an older answer
    /// (overtaken by a newer query) or anyone else's message is ignored.
    fn handle_message(&mut self, _: Time, from: NodeId, msg: Message) {
        if let Message::Answer { id, servers, .. } = msg
            && from == self.resolver
            && id.checked_add(1) == Some(self.next_query)
        {
            self.outbox.emit(servers);
        }
    }

    fn handle_command(&mut self, _: Time, (): ()) {
        let id = self.next_query;
        self.next_query = self.next_query.wrapping_add(1);
        self.outbox.send(
            self.resolver,
            Message::Query {
                id,
                name: self.name.clone(),
            },
        );
    }

    fn poll_output(&mut self) -> Option<Output<Message, Vec<ServerRecord>>> {
        self.outbox.pop()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(server: u64) -> ServerRecord {
        ServerRecord {
            server: NodeId::from_index(server),
            address: "127.0.0.1:8000".parse().unwrap(),
            estimate_us: Some(1_500),
            spare_mrps: None,
        }
    }

    fn drained(f: &mut EstimateFetcher) -> Vec<Output<Message, Vec<ServerRecord>>> {
        std::iter::from_fn(|| f.poll_output()).collect()
    }

    #[test]
    fn each_command_sends_one_numbered_query_to_the_resolver() {
        let name: AnycastName = "tv%esm.internal".parse().unwrap();
        let resolver = NodeId::from_index(9);
        let mut f = EstimateFetcher::new(NodeId::from_index(1), resolver, name.clone());
        f.handle_command(Time::ZERO, ());
        f.handle_command(Time::ZERO, ());
        assert_eq!(
            drained(&mut f),
            vec![
                Output::Send {
                    to: resolver,
                    msg: Message::Query {
                        id: 0,
                        name: name.clone()
                    }
                },
                Output::Send {
                    to: resolver,
                    msg: Message::Query { id: 1, name }
                },
            ]
        );
    }

    #[test]
    fn only_the_latest_answer_from_the_resolver_is_emitted() {
        let name: AnycastName = "tv%esm.internal".parse().unwrap();
        let resolver = NodeId::from_index(9);
        let mut f = EstimateFetcher::new(NodeId::from_index(1), resolver, name.clone());
        f.handle_command(Time::ZERO, ());
        f.handle_command(Time::ZERO, ());
        drained(&mut f);
        let answer = |id| Message::Answer {
            id,
            name: name.clone(),
            servers: vec![record(id + 3)],
            ttl_ms: 1_000,
        };
        // Overtaken by the second query, from a stranger, then the one that counts.
        f.handle_message(Time::ZERO, resolver, answer(0));
        f.handle_message(Time::ZERO, NodeId::from_index(5), answer(1));
        f.handle_message(Time::ZERO, resolver, answer(1));
        assert_eq!(drained(&mut f), vec![Output::Emit(vec![record(4)])]);
    }
}
