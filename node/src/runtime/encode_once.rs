//! One encoding per media packet: a relay forwards each packet to several children, and the
//! protocol hands the driver a clone of it for each. The driver keeps the last datagram it
//! encoded, and a message known to encode alike (`WireMessage::encodes_as`: for Narada, the
//! same header over the same payload buffer) goes out as those bytes, shared, instead of a
//! fresh allocation and copy per child. Fresh encodings go into an [`EncodeArena`]: many frames
//! to a block of memory, not an allocation each.

use bytes::Bytes;
use overlay_core::wire::WireMessage;
use overlay_core::wire::shared::EncodeArena;

/// The driver's datagram encoder: the last message it encoded, and the memory it encodes into.
#[derive(Debug)]
pub(super) struct EncodeOnce<M> {
    last: Option<(M, Bytes)>,
    arena: EncodeArena,
}

impl<M: WireMessage> EncodeOnce<M> {
    /// Nothing encoded yet.
    pub(super) fn new() -> Self {
        Self {
            last: None,
            arena: EncodeArena::new(),
        }
    }

    /// `msg` encoded: the last encoding when its message encodes alike, else a fresh one, kept
    /// for the next. `None`: `msg` does not encode.
    pub(super) fn encode(&mut self, msg: &M) -> Option<Bytes> {
        if let Some((prev, bytes)) = self.last.as_ref()
            && prev.encodes_as(msg)
        {
            return Some(bytes.clone());
        }
        let bytes = self.arena.encode(msg).ok()?;
        self.last = Some((msg.clone(), bytes.clone()));
        Some(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use narada::{DataPacket, Message};
    use overlay_core::wire;

    fn data(seq: u64, payload: &Bytes) -> Message {
        Message::Data(DataPacket {
            source: 3,
            seq,
            sent_at_us: 1_000,
            priority: 1,
            payload: payload.clone(),
        })
    }

    #[test]
    fn a_packet_sent_to_several_peers_is_encoded_once_and_others_afresh() {
        let payload = Bytes::from(vec![7u8; 1100]);
        let mut last = EncodeOnce::new();
        let first = last.encode(&data(1, &payload)).unwrap();
        assert_eq!(
            first,
            Bytes::from(wire::encode(&data(1, &payload)).unwrap())
        );
        // The same packet for the next child: the very same bytes, not a copy.
        let again = last.encode(&data(1, &payload)).unwrap();
        assert_eq!(again.as_ptr(), first.as_ptr());
        // The next packet of the stream: encoded afresh.
        let next = last.encode(&data(2, &payload)).unwrap();
        assert_ne!(next.as_ptr(), first.as_ptr());
        assert_eq!(next, Bytes::from(wire::encode(&data(2, &payload)).unwrap()));
        // Equal bytes in another buffer are not taken on trust: encoded afresh, alike.
        let copy = Bytes::from(payload.to_vec());
        let other = last.encode(&data(2, &copy)).unwrap();
        assert_ne!(other.as_ptr(), next.as_ptr());
        assert_eq!(other, next);
        // Control messages never match a data packet.
        let leave = Message::Leave { seq: 4 };
        let encoded = last.encode(&leave).unwrap();
        assert_eq!(encoded, Bytes::from(wire::encode(&leave).unwrap()));
    }
}
