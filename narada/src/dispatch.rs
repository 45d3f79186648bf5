//! Incoming messages: who may send what, and where each goes.

use overlay_core::{NodeId, Protocol, Time};

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
                    self.stats.from_non_neighbour += 1;
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
                None => self.stats.from_non_neighbour += 1,
            },
            Message::Data(packet) => match neighbour {
                Some(s) => self.on_data(now, s, packet),
                None => self.stats.from_non_neighbour += 1,
            },
            Message::Nack { source, ranges } => match neighbour {
                Some(s) => self.on_nack(s, source, ranges),
                None => self.stats.from_non_neighbour += 1,
            },
        }
    }
}
