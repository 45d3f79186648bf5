//! Member identities.
//!
//! A member's identity is a keypair and its [`NodeId`] is the 32-byte public key, so a peer can
//! check that whoever answers is who it meant to reach. Simulations, which have no keys, derive
//! reproducible identities from member indices with [`NodeId::from_index`].

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The identity of a member: the bytes of its public key.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct NodeId([u8; 32]);

impl NodeId {
    /// The identity whose public key is `bytes`.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// A reproducible identity for simulated member number `index`.
    ///
    /// The bytes are a SplitMix64 stream seeded by the index, so identities look random (their
    /// order is unrelated to the index, as real keys would be) yet are the same in every run.
    pub fn from_index(index: u64) -> Self {
        let mut state = index ^ 0x6a09_e667_f3bc_c908;
        let mut bytes = [0u8; 32];
        for chunk in bytes.chunks_exact_mut(8) {
            chunk.copy_from_slice(&crate::rng::splitmix64(&mut state).to_le_bytes());
        }
        Self(bytes)
    }

    /// The first bytes as hex: enough to tell members apart in logs.
    pub fn short(&self) -> String {
        hex(&self.0[..5])
    }
}

fn hex(bytes: &[u8]) -> String {
    use fmt::Write as _;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.short())
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({})", self.short())
    }
}

/// Why a string is not a [`NodeId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseNodeIdError {
    /// The string does not have 64 characters.
    #[error("a node id is 64 hex digits, got {0} characters")]
    Length(usize),
    /// A character is not a hex digit.
    #[error("a node id is 64 hex digits, got {0:?} at position {1}")]
    Digit(char, usize),
}

impl FromStr for NodeId {
    type Err = ParseNodeIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let chars: Vec<char> = s.chars().collect();
        if chars.len() != 64 {
            return Err(ParseNodeIdError::Length(chars.len()));
        }
        let mut bytes = [0u8; 32];
        for (i, pair) in chars.chunks_exact(2).enumerate() {
            let mut byte = 0u8;
            for (j, &c) in pair.iter().enumerate() {
                let digit = c
                    .to_digit(16)
                    .ok_or(ParseNodeIdError::Digit(c, 2 * i + j))?;
                byte = byte * 16 + digit as u8;
            }
            bytes[i] = byte;
        }
        Ok(Self(bytes))
    }
}

impl NodeId {
    /// All 64 hex digits (the form [`FromStr`] reads back).
    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_ids_are_distinct_and_stable() {
        let ids: std::collections::BTreeSet<_> = (0..1000).map(NodeId::from_index).collect();
        assert_eq!(ids.len(), 1000);
        assert_eq!(NodeId::from_index(7), NodeId::from_index(7));
    }

    #[test]
    fn hex_round_trips_and_bad_text_is_named() {
        let id = NodeId::from_index(42);
        assert_eq!(id.to_hex().parse::<NodeId>(), Ok(id));
        assert_eq!("abc".parse::<NodeId>(), Err(ParseNodeIdError::Length(3)));
        let bad = format!("{}g", &id.to_hex()[..63]);
        assert_eq!(bad.parse::<NodeId>(), Err(ParseNodeIdError::Digit('g', 63)));
        assert_eq!(id.short().len(), 10);
    }
}
