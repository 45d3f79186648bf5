//! Real signatures for the protocols that sign (anycast pushes, Overcast certificates): Ed25519
//! with the member's own key, checked against the author's `NodeId` (which is its public key).

use overlay_core::NodeId;
use overlay_core::signature::{Signer, Verifier};
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};

use super::identity::Identity;

/// Why a member's key cannot sign.
#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    /// The key file's key is not one `ring` can sign with.
    #[error("the member's key cannot sign: {0}")]
    Unusable(String),
    /// The key is not the one the member's id names.
    #[error("the member's key does not match its id")]
    NotItsId,
}

/// Signs with a member's Ed25519 key.
#[derive(Debug)]
pub struct Ed25519Signer {
    key: Ed25519KeyPair,
}

impl Ed25519Signer {
    /// The signer of `identity`.
    pub fn new(identity: &Identity) -> Result<Self, SigningError> {
        let key = Ed25519KeyPair::from_pkcs8_maybe_unchecked(identity.key_pkcs8())
            .map_err(|e| SigningError::Unusable(e.to_string()))?;
        if key.public_key().as_ref() != identity.id().as_bytes() {
            return Err(SigningError::NotItsId);
        }
        Ok(Self { key })
    }
}

impl Signer for Ed25519Signer {
    fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.key.sign(message).as_ref().to_vec()
    }
}

/// Checks Ed25519 signatures against the author's id.
#[derive(Clone, Copy, Debug, Default)]
pub struct Ed25519Verifier;

impl Verifier for Ed25519Verifier {
    fn verify(&self, author: &NodeId, message: &[u8], signature: &[u8]) -> bool {
        UnparsedPublicKey::new(&ED25519, author.as_bytes())
            .verify(message, signature)
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_for_its_author_and_message_only() {
        let a = Identity::generate().unwrap();
        let b = Identity::generate().unwrap();
        let s = Ed25519Signer::new(&a).unwrap();
        let sig = s.sign(b"push 7");
        assert!(Ed25519Verifier.verify(&a.id(), b"push 7", &sig));
        assert!(!Ed25519Verifier.verify(&a.id(), b"push 8", &sig));
        assert!(!Ed25519Verifier.verify(&b.id(), b"push 7", &sig));
        assert!(!Ed25519Verifier.verify(&a.id(), b"push 7", &sig[..10]));
    }
}
