//! Group admission: a group name and a shared secret. Each side of a new connection proves it
//! holds the secret with an HMAC-SHA256 over the group, its role and both members' ids, so a
//! proof is good for one pair and one direction only and a recorded proof cannot be replayed to
//! another member. The secret comes from a file or the environment, never from the command line
//! (where `ps` would show it).

use std::path::Path;

use overlay_core::NodeId;
use ring::hmac;

/// Which side of a connection a proof is from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The member that dialled.
    Dialer,
    /// The member that accepted.
    Acceptor,
}

/// Why a group or secret was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AdmissionError {
    /// The group name is empty, too long or has characters outside `[A-Za-z0-9._-]`.
    #[error(
        "group name {0:?} must be 1 to 64 characters of letters, digits, '.', '_' or '-', not only dots"
    )]
    BadGroup(String),
    /// The secret is shorter than 8 bytes.
    #[error("the group secret is {0} bytes; it must be at least 8")]
    ShortSecret(usize),
    /// No secret was given.
    #[error("no group secret: give --secret-file FILE or set ESM_SECRET")]
    NoSecret,
    /// The secret file could not be read.
    #[error("secret file {0}: {1}")]
    File(String, String),
}

/// A group and the key its members share.
#[derive(Clone)]
pub struct GroupSecret {
    group: String,
    key: hmac::Key,
}

impl std::fmt::Debug for GroupSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupSecret")
            .field("group", &self.group)
            .finish_non_exhaustive()
    }
}

/// Checks a group name.
pub fn check_group(group: &str) -> Result<(), AdmissionError> {
    // Names made only of dots (`.`, `..`) would name folders that are not the channel's own
    // (the store lives under `--store/CHANNEL`).
    let ok = !group.is_empty()
        && group.len() <= 64
        && group
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        && !group.bytes().all(|b| b == b'.');
    if ok {
        Ok(())
    } else {
        Err(AdmissionError::BadGroup(group.to_owned()))
    }
}

impl GroupSecret {
    /// Group `group` with secret `secret` (at least 8 bytes).
    pub fn new(group: &str, secret: &[u8]) -> Result<Self, AdmissionError> {
        check_group(group)?;
        if secret.len() < 8 {
            return Err(AdmissionError::ShortSecret(secret.len()));
        }
        Ok(Self {
            group: group.to_owned(),
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
        })
    }

    /// The secret from `file` (trailing newline dropped) or else the `ESM_SECRET` variable.
    pub fn from_file_or_env(group: &str, file: Option<&Path>) -> Result<Self, AdmissionError> {
        let secret = match file {
            Some(path) => {
                let mut bytes = std::fs::read(path)
                    .map_err(|e| AdmissionError::File(path.display().to_string(), e.to_string()))?;
                while bytes.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                    bytes.pop();
                }
                bytes
            }
            None => std::env::var_os("ESM_SECRET")
                .ok_or(AdmissionError::NoSecret)?
                .into_encoded_bytes(),
        };
        Self::new(group, &secret)
    }

    /// The group's name.
    pub fn group(&self) -> &str {
        &self.group
    }

    fn message(&self, role: Role, from: NodeId, to: NodeId) -> Vec<u8> {
        let mut m = Vec::with_capacity(100);
        m.extend_from_slice(b"esm-admission-1\0");
        m.extend_from_slice(self.group.as_bytes());
        m.push(0);
        m.push(match role {
            Role::Dialer => 1,
            Role::Acceptor => 2,
        });
        m.extend_from_slice(from.as_bytes());
        m.extend_from_slice(to.as_bytes());
        m
    }

    /// `from`'s proof, in `role`, towards `to`.
    pub fn proof(&self, role: Role, from: NodeId, to: NodeId) -> Vec<u8> {
        hmac::sign(&self.key, &self.message(role, from, to))
            .as_ref()
            .to_vec()
    }

    /// The token that admits browsers and WHIP/WHEP clients at `member` (64 hex digits):
    /// derived from the group's key, so whoever holds the secret can hand it out, and it
    /// reveals nothing of the secret or of the tokens of other members.
    pub fn browser_token(&self, member: NodeId) -> String {
        hmac::sign(&self.key, &self.browser_message(member))
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Whether `token` is `member`'s browser token (checked in constant time).
    pub fn verify_browser_token(&self, member: NodeId, token: &str) -> bool {
        let bytes: Option<Vec<u8>> = (token.len() == 64 && token.is_ascii())
            .then(|| {
                (0..32)
                    .map(|i| u8::from_str_radix(&token[2 * i..2 * i + 2], 16).ok())
                    .collect()
            })
            .flatten();
        bytes.is_some_and(|b| hmac::verify(&self.key, &self.browser_message(member), &b).is_ok())
    }

    fn browser_message(&self, member: NodeId) -> Vec<u8> {
        let mut m = b"esm-browser-1\0".to_vec();
        m.extend_from_slice(self.group.as_bytes());
        m.push(0);
        m.extend_from_slice(member.as_bytes());
        m
    }

    /// Whether `proof` is `from`'s, in `role`, towards `to` (constant time).
    pub fn verify(&self, role: Role, from: NodeId, to: NodeId, proof: &[u8]) -> bool {
        hmac::verify(&self.key, &self.message(role, from, to), proof).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browser_tokens_are_per_member_and_per_secret() {
        let a = GroupSecret::new("talk", b"secret one").unwrap();
        let b = GroupSecret::new("talk", b"secret two").unwrap();
        let (m, n) = (NodeId::from_index(1), NodeId::from_index(2));
        let token = a.browser_token(m);
        assert_eq!(token.len(), 64);
        assert!(a.verify_browser_token(m, &token));
        assert!(!a.verify_browser_token(n, &token));
        assert!(!b.verify_browser_token(m, &token));
        assert!(!a.verify_browser_token(m, &token[..63]));
    }

    #[test]
    fn proofs_bind_secret_group_role_and_pair() {
        let (a, b, c) = (
            NodeId::from_index(1),
            NodeId::from_index(2),
            NodeId::from_index(3),
        );
        let s = GroupSecret::new("talk", b"correct horse").unwrap();
        let p = s.proof(Role::Dialer, a, b);
        assert!(s.verify(Role::Dialer, a, b, &p));
        assert!(!s.verify(Role::Acceptor, a, b, &p), "role");
        assert!(!s.verify(Role::Dialer, a, c, &p), "another member");
        assert!(!s.verify(Role::Dialer, b, a, &p), "direction");
        let other_secret = GroupSecret::new("talk", b"wrong horse!").unwrap();
        assert!(!other_secret.verify(Role::Dialer, a, b, &p));
        let other_group = GroupSecret::new("chat", b"correct horse").unwrap();
        assert!(!other_group.verify(Role::Dialer, a, b, &p));
        assert!(!s.verify(Role::Dialer, a, b, &p[..16]), "truncated");
    }

    #[test]
    fn bad_groups_and_short_secrets_are_refused() {
        assert_eq!(
            GroupSecret::new("", b"12345678").unwrap_err(),
            AdmissionError::BadGroup(String::new())
        );
        assert!(GroupSecret::new("a b", b"12345678").is_err());
        assert!(GroupSecret::new(&"x".repeat(65), b"12345678").is_err());
        for dots in [".", "..", "..."] {
            assert!(check_group(dots).is_err(), "{dots}");
        }
        assert!(check_group("tv.hd").is_ok());
        assert_eq!(
            GroupSecret::new("ok", b"short").unwrap_err(),
            AdmissionError::ShortSecret(5)
        );
    }
}
