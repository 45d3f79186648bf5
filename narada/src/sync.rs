//! Membership and route news between neighbours: full sync when a link comes up, membership
//! deltas every refresh, route changes shortly after they happen, and taking all of it in.

use overlay_core::{NodeId, Time};

use crate::core::Core;
use crate::members::{Observed, SELF_SLOT, Slot, Status};
use crate::message::{
    Handle, Liveness, MemberEntry, Message, RouteAdvert, RouteEntry, Update, UploadRoom, WirePath,
};
use crate::metric::PathMetric;
use crate::node::Event;
use crate::routing::Advert;

/// What a membership change calls for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Reaction {
    /// Routes may have changed.
    pub(crate) reroute: bool,
    /// The member died or left: it is no longer waited for.
    pub(crate) died: bool,
}

/// Entries per update message: a full sync of a large group is split so no frame nears the
/// envelope's size limit.
const CHUNK: usize = 512;

fn liveness(status: Status) -> Option<Liveness> {
    match status {
        Status::Alive => Some(Liveness::Alive),
        Status::Dead => Some(Liveness::Dead),
        Status::Left => Some(Liveness::Left),
        Status::Unconfirmed => None,
    }
}

impl Core {
    /// Introduce `slot` to neighbour `n` in `update` if it has not been yet.
    fn introduce(&mut self, n: Slot, slot: Slot, update: &mut Update) {
        // Nearly always introduced already: ask the neighbour's bitmap before reading the
        // member's record (every hop of every route sent, and every data packet, ask).
        let Some(nb) = self.neighbours.get_mut(&n) else {
            return;
        };
        if nb.introduced.contains(slot) {
            return;
        }
        let Some(id) = self.members.id_of(slot) else {
            return;
        };
        nb.introduced.insert(slot);
        update.intro.push((slot, id));
    }

    fn route_entry(&mut self, n: Slot, dest: Slot, update: &mut Update) {
        let advert = self
            .routing
            .advertised(dest)
            .map(|(metric, latency_us, path)| (metric, latency_us, WirePath::from_slice(path)));
        self.introduce(n, dest, update);
        let route = advert.map(|(metric, latency_us, path)| {
            for &hop in &path {
                self.introduce(n, hop, update);
            }
            RouteAdvert {
                metric,
                latency_us,
                path,
            }
        });
        update.routes.push(RouteEntry { dest, route });
    }

    fn send_update(&mut self, n: Slot, update: Update) {
        if !(update.intro.is_empty() && update.members.is_empty() && update.routes.is_empty()) {
            self.send(n, Message::Update(update));
        }
    }

    /// Everything this member knows, for a neighbour whose link just came up.
    pub(crate) fn send_full_sync(&mut self, n: Slot) {
        let known: Vec<(Slot, u64, Liveness)> = self
            .members
            .existing()
            .filter_map(|(s, r)| liveness(r.status).map(|l| (s, r.seq, l)))
            .collect();
        let dests: Vec<Slot> = std::iter::once(SELF_SLOT)
            .chain(self.routing.advertised_dests())
            .collect();
        let version = self.members.version();
        let mut update = Update::default();
        for (slot, seq, liveness) in known {
            self.introduce(n, slot, &mut update);
            update.members.push(MemberEntry {
                member: slot,
                seq,
                liveness,
            });
            if update.members.len() >= CHUNK {
                self.send_update(n, std::mem::take(&mut update));
            }
        }
        self.route_entries(n, &dests, &mut update);
        self.send_update(n, update);
        if self.upload_full {
            let room = UploadRoom {
                full: true,
                shed: false,
                shed_own: false,
                level: self.config.stream_level(self.upload_used + 1),
            };
            if let Some(nb) = self.neighbours.get_mut(&n) {
                nb.told_room = room;
            }
            self.send(n, Message::Upload(room));
        }
        if let Some(nb) = self.neighbours.get_mut(&n) {
            nb.sent_version = version;
        }
    }

    /// Every route in `dests` into `update` for neighbour `n` (sending full chunks).
    fn route_entries(&mut self, n: Slot, dests: &[Slot], update: &mut Update) {
        for &dest in dests {
            if dest == SELF_SLOT {
                self.introduce(n, SELF_SLOT, update);
                update.routes.push(RouteEntry {
                    dest,
                    route: Some(RouteAdvert {
                        metric: PathMetric::ZERO,
                        latency_us: 0,
                        path: WirePath::new(),
                    }),
                });
            } else {
                self.route_entry(n, dest, update);
            }
            if update.routes.len() >= CHUNK {
                self.send_update(n, std::mem::take(update));
            }
        }
    }

    /// A digest of every route this member advertises, to every neighbour. Route news is sent
    /// once, when a route changes; news lost on the way (a partition that heals before the
    /// link times out) would leave a neighbour forwarding by a stale path for good, so Narada's
    /// members exchange their tables periodically. Here they exchange digests, and a table
    /// goes out only to a neighbour whose copy differs ([`Message::RouteAsk`]): the whole
    /// table every 30 s was 7.2 of 18.2 kbit/s of control per member at 256 members.
    pub(crate) fn send_route_digests(&mut self) {
        let members = &self.members;
        let digest = self.routing.advertised_digest(|s| members.id_of(s));
        let targets: Vec<Slot> = self.neighbours.keys().copied().collect();
        for n in targets {
            self.send(n, Message::RouteDigest { digest });
        }
    }

    /// Neighbour `n` sent the digest of its routes: ask for its table if ours differs.
    pub(crate) fn on_route_digest(&mut self, n: Slot, digest: u64) {
        let members = &self.members;
        let same = self.routing.digest_from(n, |s| members.id_of(s)) == digest;
        let Some(nb) = self.neighbours.get_mut(&n) else {
            return;
        };
        if same {
            nb.unknown_handle = false;
            return;
        }
        // Handles that could not be named mean an introduction was lost: a table in the same
        // handles would be refused again, so ask for the introductions too.
        let reintroduce = nb.unknown_handle;
        self.stats.route_asks += 1;
        self.send(n, Message::RouteAsk { reintroduce });
    }

    /// Neighbour `n` asked for the whole route table: send it, at most once per heartbeat
    /// interval (a neighbour cannot make this member send tables as fast as it asks); with
    /// `reintroduce`, every member the table names is introduced again.
    pub(crate) fn on_route_ask(&mut self, now: Time, n: Slot, reintroduce: bool) {
        let gap = self.config.membership.heartbeat_interval;
        let Some(nb) = self.neighbours.get_mut(&n) else {
            return;
        };
        if nb
            .routes_resent_at
            .is_some_and(|t| now.saturating_since(t) < gap)
        {
            return;
        }
        nb.routes_resent_at = Some(now);
        if reintroduce {
            nb.introduced = Default::default();
        }
        self.stats.route_tables_sent += 1;
        self.resend_routes_to(n);
    }

    /// Every route again, to neighbour `n`.
    fn resend_routes_to(&mut self, n: Slot) {
        // Every member known, so a withdrawal that was lost is repeated too.
        let dests: Vec<Slot> = std::iter::once(SELF_SLOT)
            .chain(
                self.members
                    .existing()
                    .map(|(s, _)| s)
                    .filter(|&s| s != SELF_SLOT),
            )
            .collect();
        let mut update = Update::default();
        self.route_entries(n, &dests, &mut update);
        self.send_update(n, update);
    }

    /// Membership changes since each neighbour's last refresh (not echoing news back to a
    /// neighbour it came from).
    pub(crate) fn send_refreshes(&mut self) {
        let version = self.members.version();
        let targets: Vec<(Slot, u64)> = self
            .neighbours
            .iter()
            .map(|(&s, n)| (s, n.sent_version))
            .collect();
        for (n, since) in targets {
            if since >= version {
                continue;
            }
            let changed: Vec<(Slot, u64, Liveness)> = self
                .members
                .existing()
                .filter(|(_, r)| {
                    r.version > since
                        && r.learned_from != Some(n)
                        && !r.also_heard_from.contains(&n)
                })
                .filter_map(|(s, r)| liveness(r.status).map(|l| (s, r.seq, l)))
                .collect();
            let mut update = Update::default();
            for (slot, seq, liveness) in changed {
                self.introduce(n, slot, &mut update);
                update.members.push(MemberEntry {
                    member: slot,
                    seq,
                    liveness,
                });
                if update.members.len() >= CHUNK {
                    self.send_update(n, std::mem::take(&mut update));
                }
            }
            self.send_update(n, update);
            if let Some(nb) = self.neighbours.get_mut(&n) {
                nb.sent_version = version;
            }
        }
    }

    /// Route changes since the last flush, to every neighbour not yet told of them.
    pub(crate) fn flush_routes(&mut self) {
        let dirty = std::mem::take(&mut self.route_dirty);
        if dirty.is_empty() {
            return;
        }
        let targets: Vec<Slot> = self.neighbours.keys().copied().collect();
        for n in targets {
            let mut update = Update::default();
            for (&dest, told) in &dirty {
                if told.contains(&n) {
                    continue;
                }
                self.route_entry(n, dest, &mut update);
                if update.routes.len() >= CHUNK {
                    self.send_update(n, std::mem::take(&mut update));
                }
            }
            self.send_update(n, update);
        }
    }

    /// Send the routes to `dests` to neighbour `n` now.
    pub(crate) fn send_routes_now(&mut self, n: Slot, dests: &[Slot]) {
        let mut update = Update::default();
        for &dest in dests {
            self.route_entry(n, dest, &mut update);
        }
        self.send_update(n, update);
    }

    /// Make sure neighbour `n` knows handle `slot` before a data packet names it.
    pub(crate) fn ensure_introduced(&mut self, n: Slot, slot: Slot) {
        let mut update = Update::default();
        self.introduce(n, slot, &mut update);
        self.send_update(n, update);
    }

    /// A neighbour's handle in our slots.
    pub(crate) fn translate(&mut self, n: Slot, handle: Handle) -> Option<Slot> {
        self.translate_path(n, &[handle]).map(|path| path[0])
    }

    /// A path of neighbour `n`'s handles in our slots, with one lookup of the neighbour
    /// (`None` at the first handle it never introduced: the neighbour is marked and the miss
    /// counted, so this member asks again for its introductions with its next table).
    fn translate_path(&mut self, n: Slot, handles: &[Handle]) -> Option<crate::routing::Hops> {
        let nb = self.neighbours.get_mut(&n)?;
        let mut path = crate::routing::Hops::with_capacity(handles.len());
        for &handle in handles {
            let Some(slot) = nb.theirs.get(handle) else {
                nb.unknown_handle = true;
                self.stats.unknown_handles += 1;
                return None;
            };
            path.push(slot);
        }
        Some(path)
    }

    /// Take in an update from neighbour `n`; the members it reported dead.
    pub(crate) fn apply_update(&mut self, now: Time, n: Slot, update: Update) -> Vec<Slot> {
        let limit = self.config.membership.max_table_entries;
        let mut died = Vec::new();
        if update.intro.len() + update.members.len() + update.routes.len() > limit {
            self.stats.oversized += 1;
            return died;
        }
        for (handle, id) in update.intro {
            let Some(slot) = self.intern_bounded(id, now) else {
                continue;
            };
            let Some(nb) = self.neighbours.get_mut(&n) else {
                return died;
            };
            if nb.theirs.len() >= limit && !nb.theirs.contains_key(handle) {
                self.stats.oversized += 1;
                continue;
            }
            nb.theirs.insert(handle, slot);
        }
        let mut reroute_all = false;
        let mut touched = std::collections::BTreeSet::new();
        for entry in update.members {
            let Some(slot) = self.translate(n, entry.member) else {
                continue;
            };
            let observed = self
                .members
                .observe(slot, entry.seq, entry.liveness, Some(n), now);
            let reaction = self.on_observed(slot, observed);
            reroute_all |= reaction.reroute;
            if reaction.died {
                died.push(slot);
            }
        }
        let max_len = self.config.routing.max_path_len;
        for entry in update.routes {
            let Some(dest) = self.translate(n, entry.dest) else {
                continue;
            };
            let advert = match entry.route {
                None => None,
                Some(route) => {
                    let Some(path) = self.translate_path(n, &route.path) else {
                        continue;
                    };
                    Some(Advert {
                        metric: route.metric,
                        latency_us: route.latency_us,
                        path,
                    })
                }
            };
            match self.routing.apply(n, dest, advert, max_len) {
                Ok(()) => {
                    touched.insert(dest);
                }
                Err(_) => self.stats.bad_routes += 1,
            }
        }
        if reroute_all {
            self.reroute(now);
        } else if !touched.is_empty() {
            self.reroute_dests(now, &touched);
        }
        died
    }

    fn intern_bounded(&mut self, id: NodeId, now: Time) -> Option<Slot> {
        if self.members.slot_of(&id).is_none()
            && self.members.slots() >= self.config.membership.max_table_entries
        {
            self.stats.oversized += 1;
            return None;
        }
        Some(self.members.intern(id, now))
    }

    /// React to a membership change: tell the application who joined, died or left.
    pub(crate) fn on_observed(&mut self, slot: Slot, observed: Observed) -> Reaction {
        let id = self.members.id_of(slot);
        match observed {
            Observed::Nothing | Observed::Advanced | Observed::Refuted => Reaction::default(),
            Observed::Joined | Observed::Revived => {
                if let Some(id) = id {
                    self.outbox.emit(Event::MemberJoined(id));
                }
                // A member first heard of was routable already (unconfirmed members are):
                // its routes come in route entries, which recompute their own destinations.
                // One back from the dead makes every path through it usable again.
                Reaction {
                    reroute: observed == Observed::Revived,
                    died: false,
                }
            }
            Observed::Died => {
                let left = self
                    .members
                    .record(slot)
                    .is_some_and(|r| r.status == Status::Left);
                if let Some(id) = id {
                    self.outbox.emit(if left {
                        Event::MemberLeft(id)
                    } else {
                        Event::MemberDied(id)
                    });
                }
                // A neighbour reported dead by others keeps its link: this member's own pings
                // decide, and if it is alive it hears of its reported death and refutes it.
                Reaction {
                    reroute: true,
                    died: true,
                }
            }
        }
    }
}
