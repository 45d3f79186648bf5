//! Incoming messages: who may send what, and where each goes.

use overlay_core::{NodeId, Protocol, Time, WireMessage};

use crate::message::{Liveness, Message};
use crate::node::Narada;

impl Narada {
    pub(crate) fn on_message(&mut self, now: Time, from: NodeId, msg: Message) {
        let slot = self.members.slot_of(&from);
        let neighbour = slot.filter(|s| self.neighbours.contains_key(s));
        match msg {
            Message::Probe(p) => {
                self.drive_prober(now, |prober, now| prober.handle_message(now, from, p))
            }
            Message::TableQuery { nonce, digest } => self.on_table_query(from, nonce, digest),
            Message::TableReply {
                nonce,
                degree,
                costs,
                ids,
            } => match slot {
                Some(s) => self.on_table_reply(now, s, nonce, degree, costs, ids),
                None => self.stats.unmatched_replies += 1,
            },
            Message::LinkRequest {
                reason,
                rtt_us,
                utility_milli,
            } => {
                if self.members.slots() >= self.config.max_table_entries && slot.is_none() {
                    self.stats.oversized += 1;
                    return;
                }
                let s = self.members.intern(from, now);
                self.on_link_request(now, s, reason, rtt_us, f64::from(utility_milli) / 1000.0);
            }
            Message::LinkAccept => match slot {
                Some(s) => self.on_link_accept(now, s),
                None => self.stats.unmatched_replies += 1,
            },
            Message::LinkReject { referrals } => {
                if let Some(s) = slot {
                    self.on_link_reject(now, s, referrals);
                }
            }
            Message::LinkDrop => {
                if let Some(s) = neighbour {
                    self.link_down(now, s);
                }
            }
            Message::Leave { seq } => {
                let Some(s) = neighbour else {
                    self.not_a_neighbour(now, from);
                    return;
                };
                if let Some(n) = self.neighbours.get_mut(&s) {
                    n.leaving = true;
                }
                let observed = self.members.observe(s, seq, Liveness::Left, None, now);
                self.on_observed(now, s, observed);
                self.reroute(now);
            }
            Message::Update(update) => match neighbour {
                Some(s) => self.apply_update(now, s, update),
                None => self.not_a_neighbour(now, from),
            },
            Message::Data(packet) => match neighbour {
                Some(s) => {
                    let bytes = Message::Data(packet.clone()).wire_size() as u64;
                    if let Some(nb) = self.neighbours.get_mut(&s) {
                        nb.received_bytes += bytes;
                    }
                    self.arriving.record(now, bytes);
                    self.on_data(now, s, packet)
                }
                None => self.not_a_neighbour(now, from),
            },
            Message::Rate {
                sent_bytes,
                millis,
                streams,
            } => match neighbour {
                Some(s) => self.on_rate(now, s, sent_bytes, millis, streams),
                None => self.not_a_neighbour(now, from),
            },
            Message::Nack { source, ranges } => match neighbour {
                Some(s) => self.on_nack(s, source, ranges),
                None => self.not_a_neighbour(now, from),
            },
        }
    }

    /// A message only neighbours may send came from a member that is not one: drop it, count
    /// it, and tell the sender (at most once a second) that there is no link, so a link one
    /// end lost without the other knowing (a drop lost in a partition) is undone at both ends.
    fn not_a_neighbour(&mut self, now: Time, from: NodeId) {
        self.stats.from_non_neighbour += 1;
        if self.told_not_neighbour.len() > 1024 {
            self.told_not_neighbour
                .retain(|_, at| now.saturating_since(*at) < std::time::Duration::from_secs(1));
        }
        let recent = self
            .told_not_neighbour
            .get(&from)
            .is_some_and(|at| now.saturating_since(*at) < std::time::Duration::from_secs(1));
        if !recent {
            self.told_not_neighbour.insert(from, now);
            self.outbox.send(from, Message::LinkDrop);
        }
    }
}
