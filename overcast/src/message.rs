//! Overcast's wire messages.

use bytes::Bytes;
use overlay_core::{NodeId, TrafficClass, WireMessage};
use serde::{Deserialize, Serialize};

use crate::certificate::{Certificate, NodeInfo};
use crate::table::Digest;

/// Overcast's messages.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// Who are your children, and your ancestors?
    ChildrenQuery,
    /// My children (without the asker) and my ancestors, top first, ending with me, with the
    /// bandwidth each has from the root (bits per second, `u64::MAX` for the root itself).
    Children {
        /// The children, each with its bandwidth from the root as it last reported it.
        children: Vec<(NodeId, u64)>,
        /// The ancestors, ending with the sender.
        ancestors: Vec<NodeId>,
        /// The sender's bandwidth from the root.
        path_bw: u64,
        /// The sender's parent's bandwidth from the root (`u64::MAX` if the sender is the root).
        parent_path_bw: u64,
        /// The sender's round-trip time to its parent in microseconds, as it last measured it
        /// (0: unknown, or the sender is the root).
        parent_rtt_us: u32,
    },
    /// Please adopt me; after this move I will have changed parents `seq` times.
    Attach {
        /// The asker's sequence number after this move.
        seq: u32,
        /// The asker's extra information.
        info: NodeInfo,
    },
    /// Adopted: your ancestors are these (top first, ending with me).
    Adopted {
        /// The new ancestor list.
        ancestors: Vec<NodeId>,
        /// The adopter's bandwidth from the root.
        path_bw: u64,
        /// The sequence number the adoption was asked with (so a late answer to an abandoned
        /// request can be retracted by number).
        seq: u32,
    },
    /// Refused (you are my ancestor, I am not placed, or I am a standby root).
    Refused,
    /// I am no longer your child: I moved under `new_parent`. The news of my subtree up to the
    /// move comes with it, so the old path learns everything that happened while I was there
    /// and the new path everything after.
    Detach {
        /// My sequence number while I was your child.
        seq: u32,
        /// My new parent.
        new_parent: NodeId,
        /// The lowest node above both my old and my new place, if I can tell (ancestors of my
        /// old place from it up hear of the move from the new side only).
        meet: Option<NodeId>,
        /// The last check-in's certificates.
        certificates: Vec<Certificate>,
    },
    /// Check-in: the news of my subtree since the last one, and a digest of the subtree.
    CheckIn {
        /// Certificates to take in and pass on.
        certificates: Vec<Certificate>,
        /// The digest of my subtree (me included) after these certificates.
        digest: Digest,
        /// My bandwidth from the root: the smaller of my parent's and my last measure of the
        /// path from it.
        path_bw: u64,
    },
    /// News of my subtree between check-ins (sent promptly when it arises).
    News {
        /// Certificates to take in and pass on.
        certificates: Vec<Certificate>,
    },
    /// Your subtree disagrees with what I hold: list it (answered with `Subtree`).
    SubtreeQuery,
    /// My whole subtree, sent once on adoption: births of every live descendant, signed by me.
    /// The new parent forgets any entry it held under me that is not listed.
    Subtree {
        /// The births.
        births: Vec<Certificate>,
    },
    /// Check-in answered: your ancestors are these.
    CheckInAck {
        /// The ancestor list, ending with the sender.
        ancestors: Vec<NodeId>,
        /// The sender's bandwidth from the root.
        path_bw: u64,
    },
    /// Name up to `count` live nodes of your subtree at random (asked of the root, whose subtree
    /// is the whole tree), so I can measure parents outside my own branch.
    SampleQuery {
        /// How many are wanted (the answer holds at most 64).
        count: u16,
        /// The asker's round-trip time to the lowest root in microseconds (0: unknown): half
        /// the rest of the answer are the nodes whose own figure is nearest, likely the asker's
        /// neighbours.
        near: u32,
        /// Nodes the asker wants first in the answer, if they live (at most 8 are looked at):
        /// its neighbours and their neighbours, whose bandwidth from the root only the root
        /// knows fresh.
        about: Vec<NodeId>,
    },
    /// Live nodes drawn at random, each with its bandwidth from the root as last reported.
    Sample {
        /// The nodes.
        nodes: Vec<(NodeId, u64)>,
    },
    /// Send me stream `stream` from this byte on (`stream` 0: I hold no stream yet). Sent on
    /// attaching, and again when a gap shows that bytes were lost on the way.
    Fetch {
        /// The stream the asker holds.
        stream: u64,
        /// The first byte wanted.
        from: u64,
    },
    /// The answer to a `Fetch`: the stream is `id`, and what follows starts at byte `start`
    /// (after the byte asked for when this node no longer holds it, or at this node's first
    /// byte when the asker holds another stream).
    Stream {
        /// The stream.
        id: u64,
        /// The first byte that follows.
        start: u64,
    },
    /// Everything before `end` arrived (child to parent): the parent may send further.
    Ack {
        /// One past the last byte held.
        end: u64,
    },
    /// Content bytes starting at `offset`.
    Data {
        /// Offset of the first byte.
        offset: u64,
        /// The bytes.
        bytes: Bytes,
    },
    /// Name the nodes you measured nearest.
    NearQuery,
    /// The nodes the sender measured nearest, nearest first (at most 6 are read).
    Near {
        /// The nodes.
        nodes: Vec<NodeId>,
    },
    /// Your child `parent`, my parent, left my check-ins unanswered: I left it (child to
    /// grandparent; see [`crate::OvercastConfig::check_silent_children`]).
    ParentSilent {
        /// The parent left.
        parent: NodeId,
    },
    /// Check in at once (parent to child: a child of yours reported you silent).
    CheckInNow,
}

impl WireMessage for Message {
    fn traffic_class(&self) -> TrafficClass {
        match self {
            Self::Data { .. } => TrafficClass::Data,
            _ => TrafficClass::Control,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::certificate::{CertBody, DeathCause, SimulatedSignatures};
    use proptest::prelude::*;

    #[test]
    fn messages_round_trip_through_the_envelope() {
        let a = NodeId::from_index(1);
        let signer = SimulatedSignatures::new(3, a);
        let cert = Certificate::new(
            CertBody::Death {
                node: NodeId::from_index(2),
                seq: 4,
                cause: DeathCause::Moved {
                    new_parent: a,
                    mover: a,
                    meet: Some(a),
                },
            },
            a,
            &signer,
        );
        for msg in [
            Message::CheckIn {
                certificates: vec![cert],
                digest: Digest::default(),
                path_bw: 45_000_000,
            },
            Message::Children {
                children: vec![(a, u64::MAX)],
                ancestors: vec![a],
                path_bw: 1,
                parent_path_bw: u64::MAX,
                parent_rtt_us: 2_500,
            },
            Message::Data {
                offset: 7,
                bytes: Bytes::from_static(b"frame"),
            },
            Message::Detach {
                seq: 1,
                new_parent: a,
                meet: None,
                certificates: Vec::new(),
            },
            Message::SampleQuery {
                count: 8,
                near: 1200,
                about: vec![a],
            },
            Message::NearQuery,
            Message::Near { nodes: vec![a, a] },
            Message::ParentSilent { parent: a },
            Message::CheckInNow,
        ] {
            let frame = overlay_core::wire::encode(&msg).unwrap();
            assert_eq!(overlay_core::wire::decode::<Message>(&frame).unwrap(), msg);
        }
    }

    proptest! {
        #[test]
        fn decoding_any_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = overlay_core::wire::decode::<Message>(&bytes);
        }
    }
}
