//! Content delivery down the tree, reliable and in order, that cannot wedge.
//!
//! A child asks its parent for a stream from the byte it holds up to (`Fetch`); the parent
//! answers which stream it carries and where what follows starts (`Stream`: after the byte asked
//! for when the parent no longer holds it, or at the parent's first byte when the child holds
//! another stream), then sends no more than a window beyond what the child acknowledged (`Ack`).
//! A parent's cursor advances only by what it queued, so a fast parent never floods a slow
//! child's connection. A child that sees a gap (bytes lost on the way) asks again from its end;
//! a parent that heard of no progress for a while sends again from what was acknowledged (the
//! last bytes were lost, so no later byte shows the gap). A node that joins late starts at its
//! parent's earliest byte; one that resumes asks from where its store left off.

use bytes::Bytes;
use overlay_core::{NodeId, Time, rng::derive_seed};

use super::Timer;
use super::core::Core;
use crate::message::Message;

/// What a parent keeps of one child's feed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Feed {
    /// What the child asked for (its stream, the byte it wants next), until it is answered
    /// (this node holds no stream yet).
    pub(super) wants: Option<(u64, u64)>,
    /// The next byte to send (`None` until the child asked and was answered).
    pub(super) next: Option<u64>,
    /// Everything before this the child acknowledged.
    pub(super) acked: u64,
    /// When the child last acknowledged new bytes (or its feed last started over).
    pub(super) progress_at: Time,
    /// When the feed last started over at the child's request.
    pub(super) restarted_at: Option<Time>,
    /// Since when bytes sent to the child wait for its acknowledgement (`None`: it
    /// acknowledged everything sent).
    pub(super) owed_since: Option<Time>,
}

/// What a node keeps of the feed from its parent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Intake {
    /// The stream this node holds (0: none yet).
    pub(super) stream: u64,
    /// Everything before this was acknowledged to the parent.
    pub(super) acked: u64,
    /// A `Fetch` went up and its `Stream` answer has not come: bytes arriving meanwhile were
    /// sent before the parent heard it, and are not taken.
    pub(super) awaiting_answer: bool,
}

/// Stream numbers of roots that started without one from their driver: a derivation of the
/// node's seed (so the node's random draws are untouched), never 0.
const STREAM_SEED: u64 = 0x5742_4541;

impl Core {
    /// The stream this node carries, starting one if it is a root without one.
    pub(super) fn own_stream(&mut self) -> u64 {
        if self.intake.stream == 0 && self.is_root {
            self.intake.stream = derive_seed(self.config.seed, STREAM_SEED) | 1;
            self.answer_waiting_children(Time::ZERO);
        }
        self.intake.stream
    }

    /// Ask the parent for the stream from the byte this node holds up to.
    pub(super) fn fetch_from_parent(&mut self) {
        let Some(parent) = self.parent else {
            return;
        };
        self.intake.awaiting_answer = true;
        self.intake.acked = self.content.end();
        self.outbox.send(
            parent,
            Message::Fetch {
                stream: self.intake.stream,
                from: self.content.end(),
            },
        );
    }

    /// Child `child` asks for `stream` from byte `from`.
    pub(super) fn on_fetch(&mut self, now: Time, child: NodeId, stream: u64, from: u64) {
        let Some(c) = self.children.get_mut(&child) else {
            self.stats.stray_data += 1;
            return;
        };
        // Bytes already on their way, asked for again within a resend interval of the last
        // start: one repair per interval is answered (a gap's first request at once), the
        // rest wait for the resend timer.
        let resend_after = self.config.resend_after;
        if stream == self.intake.stream
            && stream != 0
            && c.feed.wants.is_none()
            && c.feed
                .next
                .is_some_and(|next| from >= c.feed.acked && from < next)
            && c.feed.restarted_at.is_some_and(|t| now < t + resend_after)
        {
            self.stats.fetches_coalesced += 1;
            return;
        }
        c.feed.wants = Some((stream, from));
        self.answer(now, child);
    }

    /// Answer child `child`'s request, if this node holds a stream to answer it with.
    fn answer(&mut self, now: Time, child: NodeId) {
        let stream = self.own_stream();
        if stream == 0 {
            return;
        }
        let first = self.content.first();
        let Some(c) = self.children.get_mut(&child) else {
            return;
        };
        let Some((theirs, from)) = c.feed.wants.take() else {
            return;
        };
        let start = if theirs == stream {
            from.max(first)
        } else {
            first
        };
        c.feed.next = Some(start);
        c.feed.acked = start;
        c.feed.progress_at = now;
        c.feed.restarted_at = Some(now);
        c.feed.owed_since = None;
        self.outbox
            .send(child, Message::Stream { id: stream, start });
        self.send_available(now, child);
    }

    /// Answer every child that asked before this node held a stream.
    fn answer_waiting_children(&mut self, now: Time) {
        let waiting: Vec<NodeId> = self
            .children
            .iter()
            .filter(|(_, c)| c.feed.wants.is_some())
            .map(|(&id, _)| id)
            .collect();
        for child in waiting {
            self.answer(now, child);
        }
    }

    /// Send child `child` what it may have: from its cursor, up to the window beyond what it
    /// acknowledged. A child whose cursor fell behind what this node still holds is told where
    /// the stream goes on.
    pub(super) fn send_available(&mut self, now: Time, child: NodeId) {
        let window = self.config.send_window.max(1);
        let first = self.content.first();
        let stream = self.intake.stream;
        let Some(c) = self.children.get_mut(&child) else {
            return;
        };
        let Some(mut next) = c.feed.next else {
            return;
        };
        if next < first {
            // Slower than this node's memory is long: on from what is still held.
            self.stats.child_skips += 1;
            next = first;
            c.feed.acked = first;
            c.feed.progress_at = now;
            self.outbox.send(
                child,
                Message::Stream {
                    id: stream,
                    start: first,
                },
            );
        }
        let mut in_flight = next.saturating_sub(c.feed.acked);
        while in_flight < window
            && let Some((offset, bytes)) = self.content.chunk_at(next, window - in_flight)
        {
            let len = bytes.len() as u64;
            self.outbox.send(child, Message::Data { offset, bytes });
            next += len;
            in_flight += len;
        }
        c.feed.next = Some(next);
        let owing_anew = in_flight > 0 && c.feed.owed_since.is_none();
        if owing_anew {
            c.feed.owed_since = Some(now);
        }
        if in_flight > 0 && !self.timers.is_armed(Timer::Resend) {
            self.timers
                .set(Timer::Resend, now + self.config.resend_after);
        }
        if owing_anew {
            self.watch_acks(now, child);
        }
    }

    /// Send every child what it may have.
    pub(super) fn forward(&mut self, now: Time) {
        let children: Vec<NodeId> = self.children.keys().copied().collect();
        for c in children {
            self.send_available(now, c);
        }
    }

    /// Child `child` holds everything before `end`.
    pub(super) fn on_ack(&mut self, now: Time, child: NodeId, end: u64) {
        let Some(c) = self.children.get_mut(&child) else {
            self.stats.stray_data += 1;
            return;
        };
        let Some(next) = c.feed.next else {
            return;
        };
        // An acknowledgement of bytes never sent is a lie or a stale leftover: it moves nothing.
        if end > c.feed.acked && end <= next {
            c.feed.acked = end;
            c.feed.progress_at = now;
            c.acks.arrived(now, self.config.parent_timeout);
            if end == next {
                c.feed.owed_since = None;
            }
        }
        self.send_available(now, child);
    }

    /// The resend check: a child that acknowledged nothing new for the resend time while
    /// bytes were on their way lost them; send again from what it acknowledged.
    pub(super) fn on_resend_timer(&mut self, now: Time) {
        let after = self.config.resend_after;
        let stalled: Vec<NodeId> = self
            .children
            .iter()
            .filter(|(_, c)| {
                c.feed.next.is_some_and(|n| n > c.feed.acked)
                    && now.saturating_since(c.feed.progress_at) >= after
            })
            .map(|(&id, _)| id)
            .collect();
        for child in stalled {
            if let Some(c) = self.children.get_mut(&child) {
                c.feed.next = Some(c.feed.acked);
                c.feed.progress_at = now;
                self.stats.resends += 1;
            }
            self.send_available(now, child);
        }
        let in_flight = self
            .children
            .values()
            .any(|c| c.feed.next.is_some_and(|n| n > c.feed.acked));
        if in_flight && !self.timers.is_armed(Timer::Resend) {
            self.timers.set(Timer::Resend, now + after);
        }
    }

    /// The parent answered a `Fetch`: it carries stream `id`, and what follows starts at
    /// `start`.
    pub(super) fn on_stream(&mut self, now: Time, from: NodeId, id: u64, start: u64) {
        if Some(from) != self.parent || id == 0 {
            self.stats.stray_data += 1;
            return;
        }
        self.intake.awaiting_answer = false;
        if id != self.intake.stream {
            // Another stream (this node held none, or a root restarted): start it afresh, and
            // so do the children.
            self.intake.stream = id;
            self.content.restart(start);
            self.intake.acked = start;
            for c in self.children.values_mut() {
                if c.feed.next.is_some() {
                    c.feed.wants = Some((0, 0));
                    c.feed.next = None;
                }
            }
            self.answer_waiting_children(now);
        } else if start > self.content.end() {
            // The parent no longer holds what this node lacks: on from where it goes on.
            self.stats.bytes_skipped += start - self.content.end();
            self.content.restart(start);
            self.intake.acked = start;
            self.forward(now);
        }
    }

    /// Content at `offset`, taken only from the parent, in order, and passed on.
    pub(super) fn on_data(&mut self, now: Time, from: NodeId, offset: u64, bytes: Bytes) {
        if Some(from) != self.parent {
            self.stats.stray_data += 1;
            return;
        }
        self.watch_content(now, from);
        if self.intake.awaiting_answer {
            return;
        }
        let end = self.content.end();
        if offset > end {
            // Bytes were lost on the way: ask again from here (once, until answered).
            self.stats.gaps += 1;
            self.fetch_from_parent();
            return;
        }
        if self.content.append(offset, bytes) == 0 {
            return;
        }
        self.forward(now);
        let end = self.content.end();
        if end - self.intake.acked >= self.config.send_window / 4 {
            self.send_ack();
        } else if !self.timers.is_armed(Timer::Ack) {
            self.timers.set(Timer::Ack, now + self.config.ack_delay);
        }
    }

    /// Tell the parent what arrived, if anything arrived since it was last told.
    pub(super) fn send_ack(&mut self) {
        let end = self.content.end();
        if let Some(parent) = self.parent
            && end > self.intake.acked
        {
            self.intake.acked = end;
            self.outbox.send(parent, Message::Ack { end });
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;
    use overlay_core::{NodeId, Output, Time};

    use super::*;
    use crate::OvercastConfig;
    use crate::certificate::SimulatedSignatures;
    use crate::node::Event;
    use crate::node::core::Child;

    fn id(i: u64) -> NodeId {
        NodeId::from_index(i)
    }

    /// Node 1 with child 2, holding bytes `[0, len)` of stream 7 in chunks of 100.
    fn parent_with(len: u64, window: u64) -> Core {
        let config = OvercastConfig {
            send_window: window,
            ..OvercastConfig::default()
        };
        let mut cx = Core::new(
            id(1),
            config,
            Box::new(SimulatedSignatures::new(1, id(1))),
            Box::new(SimulatedSignatures::new(1, id(1))),
        );
        cx.is_root = true;
        cx.intake.stream = 7;
        for offset in (0..len).step_by(100) {
            cx.content
                .append(offset, Bytes::from(vec![offset as u8; 100]));
        }
        cx.children
            .insert(id(2), Child::new(Time::ZERO, 1, cx.path_bandwidth()));
        cx
    }

    fn drained(cx: &mut Core) -> Vec<Output<Message, Event>> {
        std::iter::from_fn(|| cx.outbox.pop()).collect()
    }

    fn data(offset: u64) -> Output<Message, Event> {
        Output::Send {
            to: id(2),
            msg: Message::Data {
                offset,
                bytes: Bytes::from(vec![offset as u8; 100]),
            },
        }
    }

    fn stream(start: u64) -> Output<Message, Event> {
        Output::Send {
            to: id(2),
            msg: Message::Stream { id: 7, start },
        }
    }

    #[test]
    fn a_child_is_sent_no_more_than_a_window_beyond_what_it_acknowledged() {
        let mut cx = parent_with(1000, 300);
        let now = Time::from_secs(1);
        cx.on_fetch(now, id(2), 7, 200);
        assert_eq!(
            drained(&mut cx),
            vec![stream(200), data(200), data(300), data(400)]
        );
        cx.on_ack(now, id(2), 400);
        assert_eq!(drained(&mut cx), vec![data(500), data(600)]);
        // An acknowledgement of bytes never sent moves nothing.
        cx.on_ack(now, id(2), 900);
        assert_eq!(drained(&mut cx), Vec::new());
    }

    #[test]
    fn a_child_of_another_stream_starts_at_the_first_byte_held_and_lost_bytes_are_sent_again() {
        let mut cx = parent_with(500, 1000);
        let now = Time::from_secs(1);
        cx.on_fetch(now, id(2), 3, 300);
        assert_eq!(
            drained(&mut cx),
            vec![
                stream(0),
                data(0),
                data(100),
                data(200),
                data(300),
                data(400)
            ]
        );
        // The child acknowledged up to 200, then nothing for the resend time: 200.. went astray.
        cx.on_ack(now, id(2), 200);
        let later = now + Duration::from_secs(2);
        cx.on_resend_timer(later);
        assert_eq!(drained(&mut cx), vec![data(200), data(300), data(400)]);
        assert_eq!(cx.stats.resends, 1);
    }

    #[test]
    fn repeated_fetches_of_bytes_on_their_way_are_answered_once_per_resend_interval() {
        let mut cx = parent_with(1000, 300);
        let now = Time::from_secs(1);
        cx.on_fetch(now, id(2), 7, 200);
        assert_eq!(drained(&mut cx).len(), 4);
        // A child (or an insider) asking for the same bytes a thousand times: nothing sent.
        for _ in 0..1000 {
            cx.on_fetch(now, id(2), 7, 200);
            cx.on_fetch(now, id(2), 7, 300);
        }
        assert_eq!(drained(&mut cx), Vec::new());
        assert_eq!(cx.stats.fetches_coalesced, 2000);
        // After the resend interval a request for bytes on their way is a repair: answered.
        let later = now + cx.config.resend_after;
        cx.on_fetch(later, id(2), 7, 300);
        assert_eq!(
            drained(&mut cx),
            vec![stream(300), data(300), data(400), data(500)]
        );
        // Bytes beyond what was sent are a new start, answered at once.
        cx.on_fetch(later, id(2), 7, 700);
        assert_eq!(drained(&mut cx)[0], stream(700));
    }

    #[test]
    fn a_child_that_asks_for_bytes_no_longer_held_is_told_where_the_stream_goes_on() {
        let mut cx = parent_with(300, 1000);
        cx.content.restart(5000);
        cx.content.append(5000, Bytes::from(vec![136u8; 100]));
        let now = Time::from_secs(1);
        cx.on_fetch(now, id(2), 7, 100);
        assert_eq!(
            drained(&mut cx),
            vec![
                stream(5000),
                Output::Send {
                    to: id(2),
                    msg: Message::Data {
                        offset: 5000,
                        bytes: Bytes::from(vec![136u8; 100]),
                    },
                }
            ]
        );
    }

    #[test]
    fn a_gap_makes_the_child_ask_again_once_and_take_nothing_until_answered() {
        let mut cx = parent_with(0, 1000);
        cx.is_root = false;
        cx.children.clear();
        cx.parent = Some(id(9));
        cx.intake.stream = 7;
        let now = Time::from_secs(1);
        cx.on_data(now, id(9), 0, Bytes::from(vec![1u8; 100]));
        cx.on_data(now, id(9), 200, Bytes::from(vec![1u8; 100]));
        cx.on_data(now, id(9), 300, Bytes::from(vec![1u8; 100]));
        assert_eq!(
            drained(&mut cx),
            vec![Output::Send {
                to: id(9),
                msg: Message::Fetch {
                    stream: 7,
                    from: 100
                },
            }]
        );
        assert_eq!(cx.stats.gaps, 1);
        cx.on_stream(now, id(9), 7, 100);
        cx.on_data(now, id(9), 100, Bytes::from(vec![1u8; 100]));
        assert_eq!(cx.content.end(), 200);
    }
}
