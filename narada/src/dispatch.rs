//! Incoming messages: who may send what, and which part of the member takes it.

use overlay_core::{NodeId, Protocol, Time, WireMessage};

use crate::mesh::{LinkAsk, TheirTable};
use crate::message::{Liveness, Message};
use crate::node::Narada;

impl Narada {
    pub(crate) fn on_message(&mut self, now: Time, from: NodeId, msg: Message) {
        let (cx, mesh) = (&mut self.core, &mut self.mesh);
        let slot = cx.members.slot_of(&from);
        let neighbour = slot.filter(|s| cx.neighbours.contains_key(s));
        // Anything a neighbour sends shows it alive: pings lost on a congested link (or
        // answered after their timeout) declare it dead only if nothing else came meanwhile.
        if let Some(s) = neighbour {
            cx.heard_from(s);
        }
        match msg {
            Message::Probe(p) => {
                self.drive_prober(now, |prober, now| prober.handle_message(now, from, p))
            }
            Message::TableQuery { nonce, digest } => mesh.on_table_query(cx, from, nonce, digest),
            Message::TableReply {
                nonce,
                degree,
                costs,
                members,
            } => match slot {
                Some(s) => {
                    let Ok(costs) = costs.unpack(cx.config.membership.max_table_entries) else {
                        cx.stats.oversized += 1;
                        return;
                    };
                    let table = TheirTable {
                        degree,
                        costs,
                        members,
                    };
                    mesh.on_table_reply(cx, &mut self.data, now, s, nonce, table)
                }
                None => cx.stats.unmatched_replies += 1,
            },
            Message::LinkRequest {
                reason,
                rtt_us,
                utility_milli,
            } => {
                if cx.members.slots() >= cx.config.membership.max_table_entries && slot.is_none() {
                    cx.stats.oversized += 1;
                    return;
                }
                let s = cx.members.intern(from, now);
                let ask = LinkAsk {
                    reason,
                    rtt_us,
                    utility: f64::from(utility_milli) / 1000.0,
                };
                mesh.on_link_request(cx, now, s, ask);
            }
            Message::LinkAccept => match slot {
                Some(s) => mesh.on_link_accept(cx, now, s),
                None => cx.stats.unmatched_replies += 1,
            },
            Message::LinkReject { referrals } => {
                if let Some(s) = slot {
                    mesh.on_link_reject(cx, now, s, referrals);
                }
            }
            Message::LinkDrop => {
                if let Some(s) = neighbour {
                    mesh.link_down(cx, now, s);
                }
            }
            Message::Leave { seq } => {
                let Some(s) = neighbour else {
                    mesh.not_a_neighbour(cx, now, from);
                    return;
                };
                if let Some(n) = cx.neighbours.get_mut(&s) {
                    n.leaving = true;
                }
                let observed = cx.members.observe(s, seq, Liveness::Left, None, now);
                if cx.on_observed(s, observed).died {
                    mesh.unqueue(s);
                }
                cx.reroute(now);
            }
            Message::Update(update) => match neighbour {
                Some(s) => {
                    for died in cx.apply_update(now, s, update) {
                        mesh.unqueue(died);
                    }
                    self.refresh_upload_room(now);
                }
                None => mesh.not_a_neighbour(cx, now, from),
            },
            Message::Data(packet) => match neighbour {
                Some(s) => {
                    let bytes = Message::Data(packet.clone()).wire_size() as u64;
                    if let Some(nb) = cx.neighbours.get_mut(&s) {
                        nb.received_bytes += bytes;
                    }
                    self.data.record_arrival(now, bytes);
                    let Some(source) = cx.translate(s, packet.source) else {
                        return;
                    };
                    self.data
                        .on_data(now, s, source, packet, &crate::node::Trees(cx));
                    self.drain_data();
                }
                None => mesh.not_a_neighbour(cx, now, from),
            },
            Message::Rate {
                sent_bytes,
                millis,
                streams,
            } => match neighbour {
                Some(s) => {
                    let arriving = self.data.arriving_rate(now);
                    cx.count_streams_in(&self.data, now);
                    cx.on_rate(now, s, sent_bytes, millis, streams, arriving);
                }
                None => mesh.not_a_neighbour(cx, now, from),
            },
            Message::Upload(room) => match neighbour {
                Some(s) => {
                    if let Some(nb) = cx.neighbours.get_mut(&s)
                        && nb.room != room
                    {
                        nb.room = room;
                        cx.reroute(now);
                    }
                }
                None => mesh.not_a_neighbour(cx, now, from),
            },
            Message::KeyframeRequest { source, stream } => match neighbour {
                Some(s) => {
                    if let Some(source) = cx.translate(s, source) {
                        self.forward_keyframe_request(now, source, stream);
                    }
                }
                None => mesh.not_a_neighbour(cx, now, from),
            },
            Message::RouteDigest { digest } => match neighbour {
                Some(s) => cx.on_route_digest(s, digest),
                None => mesh.not_a_neighbour(cx, now, from),
            },
            Message::RouteAsk { reintroduce } => match neighbour {
                Some(s) => cx.on_route_ask(now, s, reintroduce),
                None => mesh.not_a_neighbour(cx, now, from),
            },
            Message::Nack { source, ranges } => match neighbour {
                Some(s) => {
                    let Some(source) = cx.translate(s, source) else {
                        return;
                    };
                    self.data.on_nack(now, s, source, ranges);
                    self.drain_data();
                }
                None => mesh.not_a_neighbour(cx, now, from),
            },
        }
    }
}
