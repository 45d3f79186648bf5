//! Narada's wire messages.
//!
//! Members are named on the wire by *handles*: small integers in the sender's own numbering,
//! introduced once per neighbour with the full 32-byte id (`Update::intro`) and used alone from
//! then on, so a refresh entry costs a few bytes instead of a key. Handles of one sender are
//! never reused for another member, and messages between two neighbours arrive in order (a QUIC
//! stream in the runtime), so an introduction always precedes its use.

use bytes::Bytes;
use overlay_core::{NodeId, TrafficClass, WireMessage};
use probe::ProbeMessage;

use crate::costs::{Fingerprint, PackedCosts};
use crate::metric::PathMetric;
use serde::{Deserialize, Serialize};

/// A member number in the sender's numbering.
pub type Handle = u32;

/// What a member knows of another's liveness.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Liveness {
    /// Alive as of the sequence number.
    Alive,
    /// Declared dead at the sequence number (a higher number from the member refutes it).
    Dead,
    /// Left gracefully at the sequence number.
    Left,
}

/// One member's latest sequence number and liveness.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberEntry {
    /// The member.
    pub member: Handle,
    /// Its sequence number.
    pub seq: u64,
    /// Its liveness at that number.
    pub liveness: Liveness,
}

/// A route as a neighbour advertises it.
///
/// On the wire the width is sent plus one, wrapping, so the unbounded width of a latency-only
/// metric takes one byte, and the latency as its difference from the metric's distance, which
/// is the latency itself under the latency metrics. A member sends a route per destination on
/// every change: a six-hop latency route took 22 bytes and takes 18 (`run narada --members
/// 512`, seeds 1-3: settled control 0.95x, 0.90x over the run; `run narada-dynamics`, 128
/// members seeds 1-5: 0.90x). The derived reading (`RouteAdvertWire`) and the hand-written
/// `Serialize` below must keep the same fields in the same order; a property test checks it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RouteAdvertWire")]
pub struct RouteAdvert {
    /// The route's quality in the routing metric.
    pub metric: PathMetric,
    /// Latency of the route, microseconds.
    pub latency_us: u32,
    /// The members after the advertiser, ending at the destination (empty: the advertiser
    /// itself).
    pub path: WirePath,
}

/// A [`RouteAdvert`] as it crosses the wire.
#[derive(Deserialize)]
struct RouteAdvertWire {
    /// The width plus one, wrapping ([`PathMetric::UNBOUNDED`] as 0).
    width: u16,
    /// The distance.
    dist: u32,
    /// The latency minus the distance.
    latency_from_dist: i64,
    #[serde(with = "wire_path")]
    path: WirePath,
}

impl TryFrom<RouteAdvertWire> for RouteAdvert {
    type Error = String;

    fn try_from(w: RouteAdvertWire) -> Result<Self, String> {
        let latency_us = i64::from(w.dist)
            .checked_add(w.latency_from_dist)
            .and_then(|l| u32::try_from(l).ok())
            .ok_or_else(|| {
                format!(
                    "route latency out of range: distance {} plus {}",
                    w.dist, w.latency_from_dist
                )
            })?;
        Ok(Self {
            metric: PathMetric {
                width: w.width.wrapping_sub(1),
                dist: w.dist,
            },
            latency_us,
            path: w.path,
        })
    }
}

impl Serialize for RouteAdvert {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;

        /// The path, serialized as [`wire_path`] does.
        struct Path<'a>(&'a WirePath);
        impl Serialize for Path<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                wire_path::serialize(self.0, s)
            }
        }

        let mut st = s.serialize_struct("RouteAdvertWire", 4)?;
        st.serialize_field("width", &self.metric.width.wrapping_add(1))?;
        st.serialize_field("dist", &self.metric.dist)?;
        st.serialize_field(
            "latency_from_dist",
            &(i64::from(self.latency_us) - i64::from(self.metric.dist)),
        )?;
        st.serialize_field("path", &Path(&self.path))?;
        st.end()
    }
}

/// The handles of an advertised path, inline up to [`crate::routing::INLINE_HOPS`] of them: a
/// member sends and takes in a route per destination on every change, and a path on the heap
/// costs an allocation each way.
pub type WirePath = smallvec::SmallVec<[Handle; crate::routing::INLINE_HOPS]>;

/// A [`WirePath`] on the wire exactly as a `Vec<Handle>` (a length, then the handles), decoded
/// through `Vec`'s own bounded reading.
mod wire_path {
    use serde::{Deserialize, Deserializer, Serializer};

    use super::{Handle, WirePath};

    pub(super) fn serialize<S: Serializer>(path: &WirePath, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(path.iter())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<WirePath, D::Error> {
        Vec::<Handle>::deserialize(d).map(WirePath::from_vec)
    }
}

/// A change of the route to one destination; `None` withdraws it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteEntry {
    /// The destination.
    pub dest: Handle,
    /// The route, or `None` if the destination is unreachable from the advertiser.
    pub route: Option<RouteAdvert>,
}

/// Membership and routing news for one neighbour.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Update {
    /// Handles introduced in this message: `(handle, id)`.
    pub intro: Vec<(Handle, NodeId)>,
    /// Members whose sequence number or liveness changed.
    pub members: Vec<MemberEntry>,
    /// Routes that changed.
    pub routes: Vec<RouteEntry>,
}

/// What a member's upload has room for, as told to one neighbour.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadRoom {
    /// No room for another child stream: only members already its children for a source
    /// should route that source through it.
    pub full: bool,
    /// Over its upload: the recipient, though a child, should find another parent for the
    /// streams this member relays from other sources, if it can.
    pub shed: bool,
    /// Over its upload even after shedding relayed streams: the recipient should also take
    /// this member's own stream from another member (one that already has it) if it can.
    pub shed_own: bool,
    /// When full (or shedding), the bandwidth level a stream through this member gets, of the
    /// whole streams its upload carries: for a neighbour not yet its child, what one more
    /// child stream would get; for a child shed any stream, what each child stream gets now.
    /// Always below the full level, so a member with room beats a full one, and a full relay
    /// with a large upload beats one that cannot carry even one stream (level 0).
    pub level: u16,
}

/// A data packet from a source.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataPacket {
    /// The source, as a handle of the sender.
    pub source: Handle,
    /// The source's sequence number of this packet.
    pub seq: u64,
    /// When the source sent it, in the source's clock (microseconds), for delay figures.
    pub sent_at_us: u64,
    /// Drop class where a link is too slow (0 is kept longest): set by the source from the
    /// media's priorities.
    pub priority: u8,
    /// The application's bytes (decoded from a datagram, a view of it: see
    /// [`overlay_core::wire::shared`]).
    #[serde(with = "overlay_core::wire::shared")]
    pub payload: Bytes,
}

/// Why a member asks for a mesh link.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LinkReason {
    /// Joining the group.
    Join,
    /// Below minimum degree.
    Degree,
    /// The link's utility passed the add threshold.
    Improve,
    /// Repairing a suspected partition.
    Repair,
}

/// Narada's messages.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// Ping and pong between members (RTT and liveness).
    Probe(ProbeMessage),
    /// Please become my mesh neighbour.
    LinkRequest {
        /// Why.
        reason: LinkReason,
        /// The requester's RTT estimate to the recipient, microseconds (0 if unknown), used until
        /// the recipient measures its own.
        rtt_us: u32,
        /// The utility the requester computed for the link, in thousandths (0 for joins and
        /// repairs): a full recipient may give up its least useful link for a much better one.
        utility_milli: u32,
    },
    /// Yes.
    LinkAccept,
    /// No: at maximum degree. Some members the requester could ask instead.
    LinkReject {
        /// Other members to try.
        referrals: Vec<NodeId>,
    },
    /// I drop our mesh link.
    LinkDrop,
    /// I leave the group; I keep forwarding for a short grace period.
    Leave {
        /// My final sequence number.
        seq: u64,
    },
    /// Membership and route news (neighbours only).
    Update(Update),
    /// Send me your route costs (for computing a link's utility, or to see if you are alive).
    TableQuery {
        /// Echoed in the reply, to match it and time the round trip.
        nonce: u64,
        /// Digest of the ids of the members the requester believes alive.
        digest: u64,
    },
    /// My route costs.
    TableReply {
        /// The query's nonce.
        nonce: u64,
        /// My mesh degree.
        degree: u16,
        /// When the digest matched: route metrics in the order of the requester's sorted live
        /// ids (unreachable ones marked). Otherwise: metrics to the members listed in
        /// `members`.
        costs: PackedCosts,
        /// The members the costs are for, when the digests differ, by their fingerprints under
        /// this reply's nonce ([`crate::costs::fingerprint`]).
        members: Option<Vec<Fingerprint>>,
    },
    /// Media.
    Data(DataPacket),
    /// The data rate this member sent to the recipient over the last `millis` milliseconds, so
    /// the recipient can compare it with what arrived (passive bandwidth estimation).
    Rate {
        /// Data bytes sent.
        sent_bytes: u64,
        /// How many sources' streams those bytes carried (the link's bandwidth is shared among
        /// them, so each stream's share is what counts).
        streams: u16,
        /// Over how long.
        millis: u32,
    },
    /// Please resend these packets of a source (gap repair after a route change).
    Nack {
        /// The source, as a handle of the sender.
        source: Handle,
        /// Missing ranges: `(first sequence number, count)`.
        ranges: Vec<(u64, u16)>,
    },
    /// Whether this member's upload carries all the child streams it can, and whether the
    /// recipient should move away (sent when that changes for the recipient, and at link-up
    /// when full).
    Upload(UploadRoom),
    /// Please send a keyframe of this source's stream (passed up the source's tree, merged
    /// on each link; see `keyframes`).
    KeyframeRequest {
        /// The source, as a handle of the sender.
        source: Handle,
        /// The source's stream.
        stream: u32,
    },
    /// A digest of every route the sender advertises (see `RoutingTable::advertised_digest`),
    /// sent now and then instead of the whole table: the recipient asks for the table
    /// ([`Message::RouteAsk`]) only if what it holds from the sender differs.
    RouteDigest {
        /// The digest.
        digest: u64,
    },
    /// Please send me your whole route table: what I hold from you differs from your digest.
    RouteAsk {
        /// Some of your handles named members I was never told of (an introduction was lost
        /// on the way): introduce every member you name again.
        reintroduce: bool,
    },
}

impl WireMessage for Message {
    fn kind_name(&self) -> &'static str {
        self.kind()
    }

    fn traffic_class(&self) -> TrafficClass {
        match self {
            Self::Probe(_) | Self::TableQuery { .. } | Self::TableReply { .. } => {
                TrafficClass::Probe
            }
            Self::Data(_) => TrafficClass::Data,
            _ => TrafficClass::Control,
        }
    }

    fn drop_class(&self) -> u8 {
        match self {
            Self::Data(packet) => packet.priority,
            _ => 0,
        }
    }

    fn flow(&self) -> Option<u64> {
        match self {
            Self::Data(packet) => Some(u64::from(packet.source)),
            _ => None,
        }
    }

    fn sequence(&self) -> Option<u64> {
        match self {
            Self::Data(packet) => Some(packet.seq),
            _ => None,
        }
    }

    /// Two data packets with the same header over the same payload buffer (a packet cloned
    /// for each child it is forwarded to) encode alike.
    fn encodes_as(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Data(a), Self::Data(b)) => {
                a.source == b.source
                    && a.seq == b.seq
                    && a.sent_at_us == b.sent_at_us
                    && a.priority == b.priority
                    // The same buffer (a clone shares it): equal bytes without comparing them.
                    && a.payload.len() == b.payload.len()
                    && std::ptr::eq(a.payload.as_ptr(), b.payload.as_ptr())
            }
            _ => false,
        }
    }
}

impl Message {
    /// A short name for counters and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Probe(_) => "probe",
            Self::LinkRequest { .. } => "link-request",
            Self::LinkAccept => "link-accept",
            Self::LinkReject { .. } => "link-reject",
            Self::LinkDrop => "link-drop",
            Self::Leave { .. } => "leave",
            Self::Update(_) => "update",
            Self::TableQuery { .. } => "table-query",
            Self::TableReply { .. } => "table-reply",
            Self::Data(_) => "data",
            Self::Nack { .. } => "nack",
            Self::Upload(_) => "upload",
            Self::Rate { .. } => "rate",
            Self::KeyframeRequest { .. } => "keyframe-request",
            Self::RouteDigest { .. } => "route-digest",
            Self::RouteAsk { .. } => "route-ask",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Under the latency metric a route of six hops takes 18 bytes with two-byte handles
    /// (it took 22 with the metric's fields as they are).
    #[test]
    fn a_latency_route_is_small_on_the_wire() {
        let advert = RouteAdvert {
            metric: PathMetric {
                width: PathMetric::UNBOUNDED,
                dist: 48_000,
            },
            latency_us: 48_000,
            path: WirePath::from_slice(&[300, 301, 302, 303, 304, 305]),
        };
        let bytes = overlay_core::wire::encode(&advert).expect("small");
        // The version byte, width 1, distance 3, latency 1, length 1, handles 2 each.
        assert_eq!(bytes.len(), 1 + 1 + 3 + 1 + 1 + 12);
    }

    /// A latency that does not fit is refused, not wrapped.
    #[test]
    fn a_route_latency_out_of_range_is_refused() {
        #[derive(Serialize)]
        struct Forged {
            width: u16,
            dist: u32,
            latency_from_dist: i64,
            path: Vec<Handle>,
        }
        for latency_from_dist in [-11, i64::from(u32::MAX), i64::MIN, i64::MAX] {
            let forged = Forged {
                width: 0,
                dist: 10,
                latency_from_dist,
                path: vec![],
            };
            let bytes = overlay_core::wire::encode(&forged).expect("small");
            // (postcard keeps the kind of error, not serde's message.)
            let err = overlay_core::wire::decode::<RouteAdvert>(&bytes).unwrap_err();
            assert!(err.to_string().contains("malformed RouteAdvert"), "{err}");
        }
    }

    #[test]
    fn handles_make_refresh_entries_small() {
        let entry = MemberEntry {
            member: 100,
            seq: 5000,
            liveness: Liveness::Alive,
        };
        let update = Update {
            intro: vec![],
            members: vec![entry; 128],
            routes: vec![],
        };
        // About 4 bytes per member, against 32 for the key alone.
        assert!(Message::Update(update).wire_size() < 128 * 5);
    }

    /// A data packet read from a datagram keeps its payload in the datagram's buffer: a relay
    /// forwarding it allocates nothing for it.
    #[test]
    fn a_data_packets_payload_is_a_view_of_its_datagram() {
        let packet = Message::Data(DataPacket {
            source: 4,
            seq: 900,
            sent_at_us: 12_345,
            priority: 2,
            payload: Bytes::from(vec![5u8; 1100]),
        });
        let datagram = Bytes::from(overlay_core::wire::encode(&packet).expect("small"));
        let read = overlay_core::wire::shared::decode::<Message>(&datagram).expect("decodes");
        assert_eq!(read, packet);
        let Message::Data(read) = read else {
            unreachable!("decoded as the data packet it equals")
        };
        assert!(datagram.as_ptr_range().contains(&read.payload.as_ptr()));
    }

    proptest! {
        /// An advertised route goes on the wire as its compact form (width plus one, latency
        /// from the distance, the path as a `Vec<Handle>` would go), short paths or longer
        /// than what is kept inline, and comes back the same.
        #[test]
        fn adverts_encode_compactly_and_come_back(
            path in proptest::collection::vec(any::<Handle>(), 0..40),
            width in any::<u16>(),
            dist in any::<u32>(),
            latency_us in any::<u32>(),
        ) {
            #[derive(Serialize)]
            struct Expected {
                width: u16,
                dist: u32,
                latency_from_dist: i64,
                path: Vec<Handle>,
            }
            let advert = RouteAdvert {
                metric: PathMetric { width, dist },
                latency_us,
                path: WirePath::from_slice(&path),
            };
            let bytes = overlay_core::wire::encode(&advert).expect("small");
            let expected = Expected {
                width: width.wrapping_add(1),
                dist,
                latency_from_dist: i64::from(latency_us) - i64::from(dist),
                path,
            };
            prop_assert_eq!(&bytes, &overlay_core::wire::encode(&expected).expect("small"));
            let back: RouteAdvert = overlay_core::wire::decode(&bytes).expect("decodes");
            prop_assert_eq!(back, advert);
        }

        /// Any bytes decode to a message or an error, never a panic; decoded with shared
        /// payloads (the runtime's datagrams), to the very same.
        #[test]
        fn decoding_is_total(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = overlay_core::wire::decode::<Message>(&bytes);
            let mut framed = vec![overlay_core::wire::WIRE_VERSION];
            framed.extend_from_slice(&bytes);
            let plain = overlay_core::wire::decode::<Message>(&framed);
            let shared = overlay_core::wire::shared::decode::<Message>(&Bytes::from(framed));
            prop_assert_eq!(plain, shared);
        }
    }
}
