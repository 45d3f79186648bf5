//! One encoding per media packet: a relay forwards each packet to several children, and the
//! protocol hands the driver a clone of it for each. The driver keeps the last datagram it
//! encoded, and a message known to encode alike (`WireMessage::encodes_as`: for Narada, the
//! same header over the same payload buffer) goes out as those bytes, shared, instead of a
//! fresh allocation and copy per child.

use bytes::Bytes;
use overlay_core::wire::{self, WireMessage};

/// `msg` encoded: the bytes in `last` when it holds a message `msg` encodes alike, else a fresh
/// encoding, kept in `last` for the next. `None`: `msg` does not encode.
pub(super) fn encode<M: WireMessage>(last: &mut Option<(M, Bytes)>, msg: &M) -> Option<Bytes> {
    if let Some((prev, bytes)) = last.as_ref()
        && prev.encodes_as(msg)
    {
        return Some(bytes.clone());
    }
    let bytes = Bytes::from(wire::encode(msg).ok()?);
    *last = Some((msg.clone(), bytes.clone()));
    Some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use narada::{DataPacket, Message};

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
        let mut last = None;
        let first = encode(&mut last, &data(1, &payload)).unwrap();
        assert_eq!(
            first,
            Bytes::from(wire::encode(&data(1, &payload)).unwrap())
        );
        // The same packet for the next child: the very same bytes, not a copy.
        let again = encode(&mut last, &data(1, &payload)).unwrap();
        assert_eq!(again.as_ptr(), first.as_ptr());
        // The next packet of the stream: encoded afresh.
        let next = encode(&mut last, &data(2, &payload)).unwrap();
        assert_ne!(next.as_ptr(), first.as_ptr());
        assert_eq!(next, Bytes::from(wire::encode(&data(2, &payload)).unwrap()));
        // Equal bytes in another buffer are not taken on trust: encoded afresh, alike.
        let copy = Bytes::from(payload.to_vec());
        let other = encode(&mut last, &data(2, &copy)).unwrap();
        assert_ne!(other.as_ptr(), next.as_ptr());
        assert_eq!(other, next);
        // Control messages never match a data packet.
        let leave = Message::Leave { seq: 4 };
        let encoded = encode(&mut last, &leave).unwrap();
        assert_eq!(encoded, Bytes::from(wire::encode(&leave).unwrap()));
    }
}
