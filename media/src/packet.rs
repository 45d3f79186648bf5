//! Media packets: a slice of one frame, with the stream, sequence number, media timestamp and
//! drop priority every forwarder and receiver needs, and a total codec.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// How much a packet matters when something must be dropped, most important first.
///
/// A keyframe starts a group that late joiners and congested receivers resync on; the base layer
/// of a delta frame is what makes the picture move; enhancement layers add quality. Under
/// congestion the lowest priority goes first, and a keyframe is never dropped while an
/// enhancement packet of the same stream is forwarded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Priority {
    /// A keyframe packet.
    Keyframe,
    /// The base layer of a delta frame.
    Base,
    /// Enhancement layer `n` (1 first).
    Enhancement(u8),
}

impl Priority {
    /// As a drop class: 0 is kept longest.
    pub fn class(self) -> u8 {
        match self {
            Self::Keyframe => 0,
            Self::Base => 1,
            Self::Enhancement(n) => 2u8.saturating_add(n.saturating_sub(1)),
        }
    }

    /// From a drop class (any value maps to some priority).
    pub fn from_class(class: u8) -> Self {
        match class {
            0 => Self::Keyframe,
            1 => Self::Base,
            n => Self::Enhancement(n - 1),
        }
    }
}

/// One media packet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaPacket {
    /// The stream (a source may send several).
    pub stream: u32,
    /// Packet sequence number within the stream.
    pub seq: u64,
    /// Frame number within the stream.
    pub frame: u64,
    /// Capture time of the frame, microseconds of the source's media clock.
    pub timestamp_us: u64,
    /// Drop priority.
    pub priority: Priority,
    /// Index of this packet within its frame's layer.
    pub fragment: u16,
    /// Packets in its frame's layer.
    pub fragments: u16,
    /// The bytes.
    pub payload: Bytes,
}

/// Largest payload accepted when decoding (a packet is one network datagram).
pub const MAX_PAYLOAD: usize = 64 * 1024;

/// Why bytes are not a media packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MediaError {
    /// The envelope rejected the bytes.
    #[error("media packet: {0}")]
    Decode(#[from] overlay_core::wire::DecodeError),
    /// The payload is over the limit.
    #[error("media packet payload of {0} bytes exceeds {MAX_PAYLOAD}")]
    TooLarge(usize),
    /// The fragment index is not below the fragment count.
    #[error("media packet fragment {fragment} of {fragments}")]
    Fragment {
        /// Index.
        fragment: u16,
        /// Count.
        fragments: u16,
    },
}

impl MediaPacket {
    /// Encode for carrying as an overlay payload.
    pub fn encode(&self) -> Bytes {
        // A packet is far below the envelope's limit; encoding a serde-derived value cannot fail.
        Bytes::from(overlay_core::wire::encode(self).unwrap_or_default())
    }

    /// Decode bytes produced by [`MediaPacket::encode`].
    pub fn decode(bytes: &[u8]) -> Result<Self, MediaError> {
        let packet: Self = overlay_core::wire::decode_with_limit(bytes, MAX_PAYLOAD + 128)?;
        if packet.payload.len() > MAX_PAYLOAD {
            return Err(MediaError::TooLarge(packet.payload.len()));
        }
        if packet.fragment >= packet.fragments {
            return Err(MediaError::Fragment {
                fragment: packet.fragment,
                fragments: packet.fragments,
            });
        }
        Ok(packet)
    }

    /// Bytes on the wire for this packet.
    pub fn encoded_len(&self) -> usize {
        overlay_core::wire::encoded_len(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn classes_order_priorities() {
        assert!(Priority::Keyframe.class() < Priority::Base.class());
        assert!(Priority::Base.class() < Priority::Enhancement(1).class());
        assert!(Priority::Enhancement(1).class() < Priority::Enhancement(2).class());
        for p in [
            Priority::Keyframe,
            Priority::Base,
            Priority::Enhancement(1),
            Priority::Enhancement(3),
        ] {
            assert_eq!(Priority::from_class(p.class()), p);
        }
    }

    #[test]
    fn round_trips_and_refuses_bad_fragments() {
        let p = MediaPacket {
            stream: 1,
            seq: 7,
            frame: 3,
            timestamp_us: 100_000,
            priority: Priority::Base,
            fragment: 0,
            fragments: 2,
            payload: Bytes::from_static(&[1, 2, 3]),
        };
        assert_eq!(MediaPacket::decode(&p.encode()), Ok(p.clone()));
        assert_eq!(p.encode().len(), p.encoded_len());
        let bad = MediaPacket { fragment: 2, ..p };
        assert!(matches!(
            MediaPacket::decode(&bad.encode()),
            Err(MediaError::Fragment { .. })
        ));
    }

    proptest! {
        #[test]
        fn decoding_is_total(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = MediaPacket::decode(&bytes);
        }
    }
}
