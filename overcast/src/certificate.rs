//! Up/down certificates: what a node tells its parent about its subtree, signed by their author.
//!
//! A *birth* says a node now hangs under a parent; a *death* says a node left a subtree (it died,
//! went with a dead ancestor, or moved); an *extra* carries a node's changed information (how much
//! of the content it holds, how many it serves). Every certificate carries the subject's sequence number, which counts how
//! many times it changed parents: an older certificate never overrides a newer one, whatever
//! order they arrive in.

use overlay_core::NodeId;
use serde::{Deserialize, Serialize};

pub use overlay_core::signature::{Signer, SimulatedSignatures, Verifier};

/// A node's extra information, reported up the tree when it changes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// The first content byte it still holds (its store is bounded; its driver's store when
    /// it said what that holds, else its memory).
    pub first: u64,
    /// One past the last content byte it holds.
    pub content: u64,
    /// How many it serves: children plus clients.
    pub load: u32,
    /// Its bandwidth from the root, bits per second (`u64::MAX` at the root).
    pub path_bw: u64,
    /// Its round-trip time to the lowest root when it joined, microseconds (0: unknown): a
    /// one-dimensional position, so the root can name a node's likely neighbours.
    pub landmark_rtt_us: u32,
    /// Its driver said it cannot serve clients now (its store cannot take the stream: a full
    /// disk); the root sends none there until this clears.
    #[serde(default)]
    pub degraded: bool,
}

/// Why a node left a subtree.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeathCause {
    /// It missed its lease: it died (or cannot reach its parent, which is the same to the tree).
    Silent,
    /// An ancestor of it died; it may well live and reattach with its subtree.
    Orphaned,
    /// It (or an ancestor) moved under `new_parent`: ancestors that also hold `new_parent` below
    /// them lose nothing and quash this.
    Moved {
        /// The new parent of the node that moved.
        new_parent: NodeId,
        /// The node that moved (this one, or an ancestor that took it along).
        mover: NodeId,
        /// The lowest node above both its old and its new place, as the mover saw them (`None`
        /// if it could not tell): the news of the new place reaches it from the other side, so
        /// the old side's ancestors stop this departure just below it.
        meet: Option<NodeId>,
    },
}

/// What a certificate states.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CertBody {
    /// `node` is now in the tree, in the subtree of the certificate's author (its new parent, or
    /// an ancestor that moved and brought it along).
    Birth {
        /// The node.
        node: NodeId,
        /// Its sequence number (parent changes so far).
        seq: u32,
        /// Its extra information.
        info: NodeInfo,
    },
    /// `node` left the subtree of the certificate's receiver.
    Death {
        /// The node.
        node: NodeId,
        /// Its sequence number as the author knew it.
        seq: u32,
        /// Why.
        cause: DeathCause,
    },
    /// `node`'s extra information changed.
    Extra {
        /// The node.
        node: NodeId,
        /// Its sequence number.
        seq: u32,
        /// The new information.
        info: NodeInfo,
    },
}

impl CertBody {
    /// The node the certificate is about.
    pub fn subject(&self) -> NodeId {
        match self {
            Self::Birth { node, .. } | Self::Death { node, .. } | Self::Extra { node, .. } => *node,
        }
    }

    /// The subject's sequence number.
    pub fn seq(&self) -> u32 {
        match self {
            Self::Birth { seq, .. } | Self::Death { seq, .. } | Self::Extra { seq, .. } => *seq,
        }
    }
}

/// A signed certificate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Certificate {
    /// What it states.
    pub body: CertBody,
    /// Who states it (the adopting parent for a birth, the declaring parent for a death, the
    /// node itself for extra information).
    pub author: NodeId,
    /// The author's signature over the body.
    pub signature: Vec<u8>,
}

/// The bytes a certificate's signature covers.
pub fn signed_bytes(body: &CertBody, author: &NodeId) -> Vec<u8> {
    overlay_core::wire::encode(&(body, author)).unwrap_or_default()
}

impl Certificate {
    /// A certificate by `author`, signed with `signer`.
    pub fn new(body: CertBody, author: NodeId, signer: &dyn Signer) -> Self {
        let signature = signer.sign(&signed_bytes(&body, &author));
        Self {
            body,
            author,
            signature,
        }
    }

    /// Whether the signature verifies.
    pub fn verify(&self, verifier: &dyn Verifier) -> bool {
        verifier.verify(
            &self.author,
            &signed_bytes(&self.body, &self.author),
            &self.signature,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn altered_or_misattributed_certificates_fail() {
        let (a, b) = (NodeId::from_index(1), NodeId::from_index(2));
        let signer = SimulatedSignatures::new(7, a);
        let cert = Certificate::new(
            CertBody::Death {
                node: b,
                seq: 3,
                cause: DeathCause::Silent,
            },
            a,
            &signer,
        );
        assert!(cert.verify(&signer));
        let mut altered = cert.clone();
        altered.body = CertBody::Death {
            node: b,
            seq: 4,
            cause: DeathCause::Silent,
        };
        assert!(!altered.verify(&signer));
        let mut stolen = cert.clone();
        stolen.author = b;
        assert!(!stolen.verify(&signer));
        let other_group = SimulatedSignatures::new(8, a);
        assert!(!cert.verify(&other_group));
        assert_eq!(cert.body.subject(), b);
        assert_eq!(cert.body.seq(), 3);
    }
}
