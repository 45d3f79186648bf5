//! The wire envelope: how a typed message becomes bytes and back.
//!
//! A frame is one version byte followed by the message in postcard encoding. Frames longer than a
//! hard limit are refused on both sides. Decoding is total: any byte string yields a message or a
//! [`DecodeError`] that says what was wrong, never a panic, and never an allocation larger than
//! the frame limit allows (postcard reads lengths against the bytes actually present).

use std::fmt::Debug;

pub mod shared;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// The envelope version this build speaks.
pub const WIRE_VERSION: u8 = 1;

/// The largest frame, in bytes, that is encoded or decoded (1 MiB): far above any control
/// message or media packet, far below what could hurt a member that buffers one frame.
pub const MAX_FRAME_LEN: usize = 1 << 20;

/// What kind of traffic a message is, for overhead accounting and for the runtime's choice of
/// QUIC stream or datagram.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum TrafficClass {
    /// Protocol control: membership, routing, certificates, joins.
    Control,
    /// Measurement traffic: pings, bandwidth probes.
    Probe,
    /// Application payload: media.
    Data,
}

impl TrafficClass {
    /// Every class, in a fixed order.
    pub const ALL: [Self; 3] = [Self::Control, Self::Probe, Self::Data];

    /// A short lowercase name for reports.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Control => "control",
            Self::Probe => "probe",
            Self::Data => "data",
        }
    }
}

/// A message that can cross the network.
pub trait WireMessage: Serialize + DeserializeOwned + Clone + Debug {
    /// The kind of traffic this message is.
    fn traffic_class(&self) -> TrafficClass;

    /// Drop class when a link is slower than what is sent over it: 0 is kept longest (a
    /// keyframe), higher classes go first. Only data messages are ever dropped this way.
    fn drop_class(&self) -> u8 {
        0
    }

    /// For a data message, the flow it belongs to (one source's stream, as the sending peer
    /// names it): a receiver splitting its download among the peers that feed it gives each
    /// flow an equal claim. `None`: not part of a flow.
    fn flow(&self) -> Option<u64> {
        None
    }

    /// For a data message, its number in its flow (`None`: not numbered): a link that shed a
    /// packet knows a later copy of it (a repair) by this and its flow.
    fn sequence(&self) -> Option<u64> {
        None
    }

    /// A short name of what this message is, for byte counts per kind (the simulator's
    /// [`crate::sim::TrafficStats::by_kind`]); by default its traffic class's name.
    fn kind_name(&self) -> &'static str {
        self.traffic_class().name()
    }

    /// Bytes this message occupies on the wire, envelope included. The simulator never encodes
    /// messages but charges this size, so overhead figures count real bytes.
    fn wire_size(&self) -> usize {
        encoded_len(self)
    }

    /// Whether `other` is known, without encoding either, to encode to the same bytes as this
    /// message: a driver that just encoded `self` then sends those bytes again instead of
    /// encoding `other` (a relay forwarding one packet to several children encodes it once).
    /// `false` whenever that is not cheap to know, which is always safe: the default.
    fn encodes_as(&self, other: &Self) -> bool {
        let _ = other;
        false
    }
}

/// Why a message could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The encoded frame would exceed the limit.
    #[error("message encodes to {len} bytes, over the {max}-byte frame limit")]
    TooLarge {
        /// Encoded length including the version byte.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The serializer refused the value.
    #[error("message cannot be encoded: {0}")]
    Serialize(String),
}

/// Why bytes are not a valid frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Zero bytes.
    #[error("empty frame: expected a version byte")]
    Empty,
    /// Longer than the limit.
    #[error("frame of {len} bytes exceeds the {max}-byte limit")]
    TooLarge {
        /// Frame length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A version this build does not speak.
    #[error("frame version {got} is not supported (this build speaks version {supported})")]
    Version {
        /// The version byte received.
        got: u8,
        /// The version this build speaks.
        supported: u8,
    },
    /// The payload does not decode as the expected message type.
    #[error("malformed {what} payload: {reason}")]
    Malformed {
        /// The message type expected.
        what: &'static str,
        /// What postcard found wrong.
        reason: String,
    },
    /// The payload decoded but bytes were left over.
    #[error("{count} trailing bytes after a valid {what} payload")]
    TrailingBytes {
        /// The message type decoded.
        what: &'static str,
        /// How many bytes were left.
        count: usize,
    },
}

/// Encode `msg` as a frame, refusing frames over [`MAX_FRAME_LEN`].
pub fn encode<T: Serialize>(msg: &T) -> Result<Vec<u8>, EncodeError> {
    encode_with_limit(msg, MAX_FRAME_LEN)
}

/// Encode `msg` as a frame, refusing frames over `max` bytes.
pub fn encode_with_limit<T: Serialize>(msg: &T, max: usize) -> Result<Vec<u8>, EncodeError> {
    let len = encoded_len(msg);
    if len > max {
        return Err(EncodeError::TooLarge { len, max });
    }
    let mut frame = Vec::with_capacity(len);
    frame.push(WIRE_VERSION);
    postcard::to_io(msg, &mut frame).map_err(|e| EncodeError::Serialize(e.to_string()))?;
    Ok(frame)
}

/// Decode a frame produced by [`encode`].
pub fn decode<T: DeserializeOwned>(frame: &[u8]) -> Result<T, DecodeError> {
    decode_with_limit(frame, MAX_FRAME_LEN)
}

/// Decode a frame, refusing frames over `max` bytes.
pub fn decode_with_limit<T: DeserializeOwned>(frame: &[u8], max: usize) -> Result<T, DecodeError> {
    let what = short_type_name::<T>();
    if frame.len() > max {
        return Err(DecodeError::TooLarge {
            len: frame.len(),
            max,
        });
    }
    let (&version, payload) = frame.split_first().ok_or(DecodeError::Empty)?;
    if version != WIRE_VERSION {
        return Err(DecodeError::Version {
            got: version,
            supported: WIRE_VERSION,
        });
    }
    let (value, rest) =
        postcard::take_from_bytes::<T>(payload).map_err(|e| DecodeError::Malformed {
            what,
            reason: e.to_string(),
        })?;
    if !rest.is_empty() {
        return Err(DecodeError::TrailingBytes {
            what,
            count: rest.len(),
        });
    }
    Ok(value)
}

/// Length of the frame [`encode`] would produce, computed without allocating.
pub fn encoded_len<T: Serialize + ?Sized>(msg: &T) -> usize {
    // The size flavour only counts; it cannot fail for serde-derived types. A value whose
    // `Serialize` impl errors is charged the version byte alone.
    1 + postcard::serialize_with_flavor::<T, postcard::ser_flavors::Size, usize>(
        msg,
        postcard::ser_flavors::Size::default(),
    )
    .unwrap_or(0)
}

fn short_type_name<T>() -> &'static str {
    let full = std::any::type_name::<T>();
    full.rsplit("::").next().unwrap_or(full)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde::Deserialize;

    use crate::NodeId;

    /// A message shaped like the protocols' messages: enums, ids, nested vectors, strings.
    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    enum Sample {
        Ping {
            nonce: u64,
        },
        Refresh {
            from: NodeId,
            entries: Vec<(NodeId, u32)>,
        },
        Route {
            paths: Vec<Vec<u16>>,
            note: String,
        },
        Data {
            seq: u64,
            payload: Vec<u8>,
            priority: Option<u8>,
        },
    }

    fn sample() -> impl Strategy<Value = Sample> {
        let id = any::<u64>().prop_map(NodeId::from_index);
        prop_oneof![
            any::<u64>().prop_map(|nonce| Sample::Ping { nonce }),
            (
                id.clone(),
                proptest::collection::vec((id, any::<u32>()), 0..20)
            )
                .prop_map(|(from, entries)| Sample::Refresh { from, entries }),
            (
                proptest::collection::vec(proptest::collection::vec(any::<u16>(), 0..8), 0..8),
                ".{0,20}"
            )
                .prop_map(|(paths, note)| Sample::Route { paths, note }),
            (
                any::<u64>(),
                proptest::collection::vec(any::<u8>(), 0..300),
                any::<Option<u8>>()
            )
                .prop_map(|(seq, payload, priority)| Sample::Data {
                    seq,
                    payload,
                    priority
                }),
        ]
    }

    #[test]
    fn errors_name_what_is_wrong() {
        assert_eq!(decode::<Sample>(&[]), Err(DecodeError::Empty));
        assert_eq!(
            decode::<Sample>(&[9, 0]),
            Err(DecodeError::Version {
                got: 9,
                supported: WIRE_VERSION
            })
        );
        let mut frame = encode(&Sample::Ping { nonce: 5 }).unwrap();
        frame.push(0);
        assert_eq!(
            decode::<Sample>(&frame),
            Err(DecodeError::TrailingBytes {
                what: "Sample",
                count: 1
            })
        );
        let err = decode::<Sample>(&[WIRE_VERSION, 200]).unwrap_err();
        assert!(
            matches!(err, DecodeError::Malformed { what: "Sample", .. }),
            "{err}"
        );
        let big = vec![WIRE_VERSION; MAX_FRAME_LEN + 1];
        assert!(matches!(
            decode::<Sample>(&big),
            Err(DecodeError::TooLarge { .. })
        ));
    }

    #[test]
    fn encoder_refuses_oversized_frames() {
        let msg = Sample::Data {
            seq: 1,
            payload: vec![0; 100],
            priority: None,
        };
        let len = encoded_len(&msg);
        assert!(matches!(
            encode_with_limit(&msg, len - 1),
            Err(EncodeError::TooLarge { .. })
        ));
        assert_eq!(encode_with_limit(&msg, len).unwrap().len(), len);
    }

    #[test]
    fn a_huge_declared_length_does_not_allocate_it() {
        // Refresh with a declared entry count of u32::MAX and no entries behind it.
        let mut frame = vec![WIRE_VERSION, 1];
        frame.extend_from_slice(NodeId::from_index(1).as_bytes());
        frame.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
        assert!(matches!(
            decode::<Sample>(&frame),
            Err(DecodeError::Malformed { .. })
        ));
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        #[test]
        fn round_trips_and_reports_its_length(msg in sample()) {
            let frame = encode(&msg).unwrap();
            prop_assert_eq!(frame.len(), encoded_len(&msg));
            prop_assert_eq!(decode::<Sample>(&frame).unwrap(), msg);
        }

        /// Any byte string decodes to a value or an error; none panics.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode::<Sample>(&bytes);
            let mut versioned = bytes.clone();
            versioned.insert(0, WIRE_VERSION);
            let _ = decode::<Sample>(&versioned);
        }

        /// Damaged valid frames (a flipped byte, a cut) decode to a value or an error; none panics.
        #[test]
        fn mutated_frames_never_panic(msg in sample(), at in any::<prop::sample::Index>(), byte in any::<u8>(), cut in any::<prop::sample::Index>()) {
            let mut frame = encode(&msg).unwrap();
            let i = at.index(frame.len());
            frame[i] = byte;
            let _ = decode::<Sample>(&frame);
            frame.truncate(cut.index(frame.len() + 1));
            let _ = decode::<Sample>(&frame);
        }
    }
}
