//! The address book: where members listen, learned first hand from each peer's hello and
//! second hand from what peers pass on, and where members serve HTTP. Both are bounded; an
//! address a dial failed at is forgotten, so a peer passing on a wrong one (by mistake or to
//! poison the book) holds it only until the first dial, and the next one passed on is taken.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use overlay_core::NodeId;

/// Most addresses a member remembers.
const MAX_ADDRESS_BOOK: usize = 4096;

/// Where members listen and serve HTTP.
#[derive(Debug, Default)]
pub(super) struct AddressBook {
    listen: BTreeMap<NodeId, SocketAddr>,
    http: BTreeMap<NodeId, SocketAddr>,
}

impl AddressBook {
    /// Takes note that `peer` listens at `addr`: first hand (its own hello) always wins;
    /// second hand (gossip) only fills a gap, and only while the book has room.
    pub(super) fn remember(&mut self, peer: NodeId, addr: SocketAddr, first_hand: bool) {
        if first_hand {
            self.listen.insert(peer, addr);
        } else if self.listen.len() < MAX_ADDRESS_BOOK {
            self.listen.entry(peer).or_insert(addr);
        }
    }

    /// Takes note that `peer` serves HTTP at `addr` (it said so in its hello), while the
    /// book has room.
    pub(super) fn remember_http(&mut self, peer: NodeId, addr: SocketAddr) {
        if self.http.len() < MAX_ADDRESS_BOOK || self.http.contains_key(&peer) {
            self.http.insert(peer, addr);
        }
    }

    /// Forgets where `peer` listens: a dial there failed.
    pub(super) fn forget(&mut self, peer: &NodeId) {
        self.listen.remove(peer);
    }

    /// Where `peer` listens, if known.
    pub(super) fn get(&self, peer: &NodeId) -> Option<SocketAddr> {
        self.listen.get(peer).copied()
    }

    /// Members whose address is known.
    pub(super) fn len(&self) -> usize {
        self.listen.len()
    }

    /// Every known listening address.
    pub(super) fn iter(&self) -> impl Iterator<Item = (NodeId, SocketAddr)> + '_ {
        self.listen.iter().map(|(id, a)| (*id, *a))
    }

    /// Every member that said where it serves HTTP (hex id to address).
    pub(super) fn http_by_hex(&self) -> BTreeMap<String, SocketAddr> {
        self.http.iter().map(|(id, a)| (id.to_hex(), *a)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_hand_addresses_replace_and_second_hand_ones_only_fill_gaps() {
        let mut book = AddressBook::default();
        let peer = NodeId::from_index(1);
        let a: SocketAddr = "127.0.0.1:7000".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:7001".parse().unwrap();
        book.remember(peer, a, false);
        book.remember(peer, b, false);
        assert_eq!(book.get(&peer), Some(a));
        book.remember(peer, b, true);
        assert_eq!(book.get(&peer), Some(b));
    }

    #[test]
    fn an_address_a_dial_failed_at_gives_way_to_the_next_one_passed_on() {
        let mut book = AddressBook::default();
        let peer = NodeId::from_index(1);
        let poisoned: SocketAddr = "192.0.2.1:9".parse().unwrap();
        let real: SocketAddr = "127.0.0.1:7001".parse().unwrap();
        book.remember(peer, poisoned, false);
        book.remember(peer, real, false);
        assert_eq!(book.get(&peer), Some(poisoned));
        book.forget(&peer);
        book.remember(peer, real, false);
        assert_eq!(book.get(&peer), Some(real));
    }

    #[test]
    fn gossip_cannot_grow_the_book_past_its_bound() {
        let mut book = AddressBook::default();
        let addr: SocketAddr = "127.0.0.1:7000".parse().unwrap();
        for i in 0..(MAX_ADDRESS_BOOK as u64 + 10) {
            book.remember(NodeId::from_index(i), addr, false);
        }
        assert_eq!(book.len(), MAX_ADDRESS_BOOK);
        for i in 0..(MAX_ADDRESS_BOOK as u64 + 10) {
            book.remember_http(NodeId::from_index(i), addr);
        }
        assert_eq!(book.http_by_hex().len(), MAX_ADDRESS_BOOK);
    }
}
