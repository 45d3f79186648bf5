//! Signatures behind traits, so protocols sign what they assert (certificates, metric pushes)
//! while simulations use a cheap stand-in and the runtime real keys.

use crate::NodeId;

/// Signs messages for one author.
pub trait Signer: std::fmt::Debug + Send + Sync {
    /// The signature of `message` by this author.
    fn sign(&self, message: &[u8]) -> Vec<u8>;
}

/// Checks authors' signatures.
pub trait Verifier: std::fmt::Debug + Send + Sync {
    /// Whether `signature` is `author`'s over `message`.
    fn verify(&self, author: &NodeId, message: &[u8], signature: &[u8]) -> bool;
}

/// A cheap stand-in for real signatures in simulations: a keyed FNV-1a tag whose key derives from
/// the author's id and a group secret. It makes a message that was altered, or claims another
/// author, fail to verify; it is *not* cryptography (the runtime uses the members' real keys).
#[derive(Clone, Debug)]
pub struct SimulatedSignatures {
    secret: u64,
    author: NodeId,
}

impl SimulatedSignatures {
    /// Signatures of `author` in a group keyed by `secret`.
    pub fn new(secret: u64, author: NodeId) -> Self {
        Self { secret, author }
    }

    fn tag(secret: u64, author: &NodeId, message: &[u8]) -> Vec<u8> {
        let mut hash = 0xcbf2_9ce4_8422_2325u64 ^ secret;
        for &b in author.as_bytes().iter().chain(message) {
            hash = (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        hash.to_le_bytes().to_vec()
    }
}

impl Signer for SimulatedSignatures {
    fn sign(&self, message: &[u8]) -> Vec<u8> {
        Self::tag(self.secret, &self.author, message)
    }
}

impl Verifier for SimulatedSignatures {
    fn verify(&self, author: &NodeId, message: &[u8], signature: &[u8]) -> bool {
        Self::tag(self.secret, author, message) == signature
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn altered_or_misattributed_messages_fail() {
        let (a, b) = (NodeId::from_index(1), NodeId::from_index(2));
        let signer = SimulatedSignatures::new(7, a);
        let signature = signer.sign(b"load 3");
        assert!(signer.verify(&a, b"load 3", &signature));
        assert!(!signer.verify(&a, b"load 4", &signature));
        assert!(!signer.verify(&b, b"load 3", &signature));
        assert!(!SimulatedSignatures::new(8, a).verify(&a, b"load 3", &signature));
    }
}
