//! Group admission: a group name and a shared secret, proved with a PAKE so that a party who
//! does not know the secret learns nothing it could test guesses against offline.
//!
//! The two sides of a new connection run SPAKE2 (over Ed25519) with a password made of the
//! group's name and its secret, and the dialer's and acceptor's ids as SPAKE2's identities. Each
//! side's first message is a random group element blinded by the password: it says nothing
//! about the secret to anyone. From the other side's element each derives a key, which equals
//! the other side's only if both used the same group and secret. Each then proves it holds that
//! key with an HMAC over its role and the TLS session's exporter (so a proof is good for this
//! one QUIC connection, between these two keys): the acceptor first, and the dialer only after
//! checking the acceptor's. A fake acceptor (a stale or hijacked bootstrap address) so gets
//! the dialer's element and nothing else: to learn anything it must answer with an element of
//! its own made from one guessed secret, and the dialer's refusal then tells it whether that
//! one guess was right. One guess per connection, online, where HMAC proofs sent first gave
//! the whole word list offline. A fake dialer likewise tests one guess per connection, and the
//! acceptor limits how often one address may fail (see `connect`).
//!
//! The secret comes from a file only its owner may read, the environment or an invite token,
//! never from the command line (where `ps` would show it), and secrets easy to guess are
//! refused: see [`check_strength`].

use std::path::Path;

use overlay_core::NodeId;
use ring::hmac;
use spake2::{Ed25519Group, Identity as PakeIdentity, Password, Spake2};

/// Which side of a connection a message is from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The member that dialled.
    Dialer,
    /// The member that accepted.
    Acceptor,
}

/// The fewest guesses (as a power of ten) a secret must take by the `zxcvbn` estimate: 10^14,
/// about 47 bits. With the PAKE only online guessing is left, one guess per connection, and an
/// acceptor lets one address fail [`FAILURES_PER_WINDOW`](crate::transport::failure_limit::FAILURES_PER_WINDOW)
/// times per 10 s window (one guess a second): an attacker with 1 000 addresses trying every
/// member of a 10-member group at that rate (10^4 guesses a second) needs 5 × 10^9 seconds,
/// over 150 years, to try half of them.
pub const MIN_GUESSES_LOG10: f64 = 14.0;

/// Why a group or secret was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum AdmissionError {
    /// The group name is empty, too long or has characters outside `[A-Za-z0-9._-]`.
    #[error(
        "group name {0:?} must be 1 to 64 characters of letters, digits, '.', '_' or '-', not only dots"
    )]
    BadGroup(String),
    /// The secret is too easy to guess.
    #[error(
        "the group secret is too easy to guess (about 10^{guesses_log10:.0} guesses; at least 10^{MIN_GUESSES_LOG10:.0} \
         are needed): make one with `esm invite --group NAME`, or `head -c 32 /dev/urandom | base64`, \
         or use five or more random words"
    )]
    WeakSecret {
        /// The estimated guesses, as a power of ten.
        guesses_log10: f64,
    },
    /// The secret is longer than [`MAX_SECRET_LEN`].
    #[error("the group secret is {0} bytes; at most {MAX_SECRET_LEN} are allowed")]
    LongSecret(usize),
    /// No secret was given.
    #[error("no group secret: give --invite TOKEN, --secret-file FILE or set ESM_SECRET")]
    NoSecret,
    /// The secret file could not be read.
    #[error("secret file {0}: {1}")]
    File(String, String),
    /// The secret file may be read by others.
    #[error(
        "secret file {path} may be read by others (mode {mode:o}); run `chmod 600 {path}` first"
    )]
    Exposed {
        /// The file.
        path: String,
        /// Its permission bits.
        mode: u32,
    },
}

/// The longest secret accepted.
pub const MAX_SECRET_LEN: usize = 1024;

/// Why a PAKE message or confirmation was refused (deliberately says nothing more: the
/// other side may be an attacker probing).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("the peer did not prove the group secret")]
pub struct NotProved;

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

/// Checks that `secret` is hard enough to guess: at least [`MIN_GUESSES_LOG10`] by `zxcvbn`'s
/// estimate (dictionary words, dates, keyboard walks, repeats and l33t substitutions all count
/// for little). Bytes that are not text (from `/dev/urandom`) count 4 bits a byte, half what
/// random bytes hold, as nothing tells random from patterned there: 12 bytes at least.
pub fn check_strength(secret: &[u8]) -> Result<(), AdmissionError> {
    if secret.len() > MAX_SECRET_LEN {
        return Err(AdmissionError::LongSecret(secret.len()));
    }
    let guesses_log10 = match std::str::from_utf8(secret) {
        // zxcvbn's matching is quadratic in the length; the first 64 characters of a secret
        // that passes are already strong enough.
        Ok(text) => {
            let head: String = text.chars().take(64).collect();
            zxcvbn::zxcvbn(&head, &[]).guesses_log10()
        }
        Err(_) => secret.len() as f64 * 4.0 * std::f64::consts::LOG10_2,
    };
    if guesses_log10 >= MIN_GUESSES_LOG10 {
        Ok(())
    } else {
        Err(AdmissionError::WeakSecret { guesses_log10 })
    }
}

/// A group and the secret its members share.
#[derive(Clone)]
pub struct GroupSecret {
    group: String,
    /// SPAKE2's password: a fixed label, the group, the secret.
    password: Vec<u8>,
    /// Keys browser tokens.
    browser_key: hmac::Key,
}

impl std::fmt::Debug for GroupSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupSecret")
            .field("group", &self.group)
            .finish_non_exhaustive()
    }
}

/// One side of an admission handshake, between sending its PAKE message and reading the
/// other side's.
pub struct Handshake {
    state: Spake2<Ed25519Group>,
    role: Role,
}

impl std::fmt::Debug for Handshake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handshake")
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// A handshake's shared key, bound to one TLS session: proves this side holds it and checks
/// the other side's proof.
pub struct Confirmation {
    key: hmac::Key,
    role: Role,
    channel: Vec<u8>,
}

impl std::fmt::Debug for Confirmation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Confirmation")
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// Bytes of a SPAKE2 message (a tag and a compressed Ed25519 point).
pub const PAKE_MESSAGE_LEN: usize = 33;

/// Bytes of a confirmation (HMAC-SHA256).
pub const CONFIRM_LEN: usize = 32;

impl GroupSecret {
    /// Group `group` with secret `secret` (refused when easy to guess: [`check_strength`]).
    pub fn new(group: &str, secret: &[u8]) -> Result<Self, AdmissionError> {
        check_group(group)?;
        check_strength(secret)?;
        let mut password = b"esm-admission-2\0".to_vec();
        password.extend_from_slice(group.as_bytes());
        password.push(0);
        password.extend_from_slice(secret);
        Ok(Self {
            group: group.to_owned(),
            password,
            browser_key: hmac::Key::new(hmac::HMAC_SHA256, secret),
        })
    }

    /// The secret from `file` (trailing newline dropped; only its owner may read it) or else
    /// the `ESM_SECRET` variable.
    pub fn from_file_or_env(group: &str, file: Option<&Path>) -> Result<Self, AdmissionError> {
        let secret = read_secret(file)?.ok_or(AdmissionError::NoSecret)?;
        Self::new(group, &secret)
    }

    /// The group's name.
    pub fn group(&self) -> &str {
        &self.group
    }

    /// Starts a handshake as `role` between `dialer` and `acceptor`: the state, and the PAKE
    /// message to send ([`PAKE_MESSAGE_LEN`] bytes, random, revealing nothing of the secret).
    pub fn start(&self, role: Role, dialer: NodeId, acceptor: NodeId) -> (Handshake, Vec<u8>) {
        let password = Password::new(&self.password);
        let (a, b) = (
            PakeIdentity::new(dialer.as_bytes()),
            PakeIdentity::new(acceptor.as_bytes()),
        );
        let (state, message) = match role {
            Role::Dialer => Spake2::<Ed25519Group>::start_a(&password, &a, &b),
            Role::Acceptor => Spake2::<Ed25519Group>::start_b(&password, &a, &b),
        };
        (Handshake { state, role }, message)
    }

    /// The token that admits browsers and WHIP/WHEP clients at `member` (64 hex digits):
    /// derived from the group's secret, so whoever holds the secret can hand it out, and it
    /// reveals nothing of the secret or of the tokens of other members.
    pub fn browser_token(&self, member: NodeId) -> String {
        self.token(b"esm-browser-1", member)
    }

    /// Whether `token` is `member`'s browser token (checked in constant time).
    pub fn verify_browser_token(&self, member: NodeId, token: &str) -> bool {
        self.verify_token(b"esm-browser-1", member, token)
    }

    /// The token that lets an operator read `member`'s `/status` and `/metrics` from another
    /// machine (`Authorization: Bearer`): like the browser token, but another one, so a
    /// participant's link does not open the member's status.
    pub fn status_token(&self, member: NodeId) -> String {
        self.token(b"esm-status-1", member)
    }

    /// Whether `token` is `member`'s status token (checked in constant time).
    pub fn verify_status_token(&self, member: NodeId, token: &str) -> bool {
        self.verify_token(b"esm-status-1", member, token)
    }

    fn token(&self, label: &[u8], member: NodeId) -> String {
        hmac::sign(&self.browser_key, &self.token_message(label, member))
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    fn verify_token(&self, label: &[u8], member: NodeId, token: &str) -> bool {
        let bytes: Option<Vec<u8>> = (token.len() == 64 && token.is_ascii())
            .then(|| {
                (0..32)
                    .map(|i| u8::from_str_radix(&token[2 * i..2 * i + 2], 16).ok())
                    .collect()
            })
            .flatten();
        bytes.is_some_and(|b| {
            hmac::verify(&self.browser_key, &self.token_message(label, member), &b).is_ok()
        })
    }

    fn token_message(&self, label: &[u8], member: NodeId) -> Vec<u8> {
        let mut m = label.to_vec();
        m.push(0);
        m.extend_from_slice(self.group.as_bytes());
        m.push(0);
        m.extend_from_slice(member.as_bytes());
        m
    }
}

impl Handshake {
    /// Takes the other side's PAKE message; `channel` binds the key to one TLS session (its
    /// keying-material exporter). Any message is accepted that is a well-formed point: whether
    /// the secrets matched shows only in the confirmations.
    pub fn finish(self, theirs: &[u8], channel: &[u8]) -> Result<Confirmation, NotProved> {
        let shared = self.state.finish(theirs).map_err(|_| NotProved)?;
        Ok(Confirmation {
            key: hmac::Key::new(hmac::HMAC_SHA256, &shared),
            role: self.role,
            channel: channel.to_vec(),
        })
    }
}

impl Confirmation {
    fn message(&self, role: Role) -> Vec<u8> {
        let mut m = b"esm-confirm-2\0".to_vec();
        m.push(match role {
            Role::Dialer => 1,
            Role::Acceptor => 2,
        });
        m.extend_from_slice(&self.channel);
        m
    }

    /// This side's proof that it holds the key ([`CONFIRM_LEN`] bytes).
    pub fn proof(&self) -> Vec<u8> {
        hmac::sign(&self.key, &self.message(self.role))
            .as_ref()
            .to_vec()
    }

    /// Checks the other side's proof (constant time).
    pub fn verify(&self, proof: &[u8]) -> Result<(), NotProved> {
        let theirs = match self.role {
            Role::Dialer => Role::Acceptor,
            Role::Acceptor => Role::Dialer,
        };
        hmac::verify(&self.key, &self.message(theirs), proof).map_err(|_| NotProved)
    }
}

/// The secret in `file` (trailing newline dropped; only its owner may read it), else in the
/// `ESM_SECRET` variable; `None` without either.
pub fn read_secret(file: Option<&Path>) -> Result<Option<Vec<u8>>, AdmissionError> {
    match file {
        Some(path) => {
            let bytes = read_secret_file(path)?;
            check_private(path)?;
            Ok(Some(trim_newline(&bytes).to_vec()))
        }
        None => {
            Ok(std::env::var_os("ESM_SECRET")
                .map(|s| trim_newline(&s.into_encoded_bytes()).to_vec()))
        }
    }
}

fn trim_newline(mut bytes: &[u8]) -> &[u8] {
    while let [rest @ .., b'\n' | b'\r'] = bytes {
        bytes = rest;
    }
    bytes
}

/// Reads a secret or invite file, refusing one larger than a secret could be.
pub fn read_secret_file(path: &Path) -> Result<Vec<u8>, AdmissionError> {
    use std::io::Read;
    let fail = |e: std::io::Error| AdmissionError::File(path.display().to_string(), e.to_string());
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .map_err(fail)?
        .take(64 * 1024)
        .read_to_end(&mut bytes)
        .map_err(fail)?;
    Ok(bytes)
}

/// Refuses a file others than its owner may read.
#[cfg(unix)]
pub fn check_private(path: &Path) -> Result<(), AdmissionError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(|e| AdmissionError::File(path.display().to_string(), e.to_string()))?
        .permissions()
        .mode()
        & 0o777;
    if mode & 0o077 != 0 {
        return Err(AdmissionError::Exposed {
            path: path.display().to_string(),
            mode,
        });
    }
    Ok(())
}

/// Refuses a file others than its owner may read (not checked off Unix).
#[cfg(not(unix))]
pub fn check_private(_: &Path) -> Result<(), AdmissionError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const STRONG: &[u8] = b"plate-ridge-vocal-mango-swift";

    fn run(
        dialer_secret: &GroupSecret,
        acceptor_secret: &GroupSecret,
        channels: (&[u8], &[u8]),
    ) -> (Result<(), NotProved>, Result<(), NotProved>) {
        let (d, a) = (NodeId::from_index(1), NodeId::from_index(2));
        let (dh, dm) = dialer_secret.start(Role::Dialer, d, a);
        let (ah, am) = acceptor_secret.start(Role::Acceptor, d, a);
        assert_eq!(dm.len(), PAKE_MESSAGE_LEN);
        let dc = dh.finish(&am, channels.0).unwrap();
        let ac = ah.finish(&dm, channels.1).unwrap();
        assert_eq!(ac.proof().len(), CONFIRM_LEN);
        (dc.verify(&ac.proof()), ac.verify(&dc.proof()))
    }

    #[test]
    fn the_pake_admits_only_the_same_group_secret_and_session() {
        let s = GroupSecret::new("talk", STRONG).unwrap();
        assert_eq!(run(&s, &s, (b"tls", b"tls")), (Ok(()), Ok(())));
        let other = GroupSecret::new("talk", b"crane-oyster-fable-nimbus-quartz").unwrap();
        assert_eq!(
            run(&s, &other, (b"tls", b"tls")),
            (Err(NotProved), Err(NotProved))
        );
        let other_group = GroupSecret::new("chat", STRONG).unwrap();
        assert_eq!(
            run(&s, &other_group, (b"tls", b"tls")),
            (Err(NotProved), Err(NotProved))
        );
        // A relay between two TLS sessions has two exporters: the proofs do not carry over.
        assert_eq!(
            run(&s, &s, (b"tls one", b"tls two")),
            (Err(NotProved), Err(NotProved))
        );
    }

    #[test]
    fn a_side_cannot_replay_the_other_sides_proof_or_messages() {
        let s = GroupSecret::new("talk", STRONG).unwrap();
        let (d, a) = (NodeId::from_index(1), NodeId::from_index(2));
        let (dh, dm) = s.start(Role::Dialer, d, a);
        let (ah, am) = s.start(Role::Acceptor, d, a);
        let dc = dh.finish(&am, b"tls").unwrap();
        let ac = ah.finish(&dm, b"tls").unwrap();
        // Reflecting the acceptor's own proof back at it fails (the role is in the proof).
        assert_eq!(ac.verify(&ac.proof()), Err(NotProved));
        assert_eq!(dc.verify(&dc.proof()), Err(NotProved));
        // Messages are fresh each time: recording one says nothing about the next.
        let (_, again) = s.start(Role::Dialer, d, a);
        assert_ne!(dm, again);
        // Garbage is refused without a panic.
        let (h, _) = s.start(Role::Dialer, d, a);
        assert!(h.finish(&[0xff; 3], b"tls").is_err());
    }

    #[test]
    fn browser_tokens_are_per_member_and_per_secret() {
        let a = GroupSecret::new("talk", STRONG).unwrap();
        let b = GroupSecret::new("talk", b"crane-oyster-fable-nimbus-quartz").unwrap();
        let (m, n) = (NodeId::from_index(1), NodeId::from_index(2));
        let token = a.browser_token(m);
        assert_eq!(token.len(), 64);
        assert!(a.verify_browser_token(m, &token));
        assert!(!a.verify_browser_token(n, &token));
        assert!(!b.verify_browser_token(m, &token));
        assert!(!a.verify_browser_token(m, &token[..63]));
        // The status token is another one.
        let status = a.status_token(m);
        assert_ne!(status, token);
        assert!(a.verify_status_token(m, &status));
        assert!(!a.verify_status_token(m, &token));
        assert!(!a.verify_browser_token(m, &status));
    }

    #[test]
    fn weak_secrets_are_refused_with_how_to_make_a_good_one() {
        for weak in [
            &b"summer2024"[..],
            b"correct horse",
            b"Tr0ub4dor&3",
            b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            b"\x01\x02\x03\x04\x05\x06\x07\xff",
        ] {
            let e = GroupSecret::new("talk", weak).unwrap_err();
            assert!(matches!(e, AdmissionError::WeakSecret { .. }), "{weak:?}");
            assert!(e.to_string().contains("esm invite"), "{e}");
        }
        for strong in [STRONG, b"ZmFrZXNlY3JldGJhc2U2NDEyMzQ1Ng==", &[0xfe; 20][..]] {
            // Twenty bytes that are not text: counted 80 bits.
            assert!(GroupSecret::new("talk", strong).is_ok(), "{strong:?}");
        }
        assert_eq!(
            check_strength(&[b'x'; MAX_SECRET_LEN + 1]),
            Err(AdmissionError::LongSecret(MAX_SECRET_LEN + 1))
        );
    }

    #[test]
    fn bad_groups_are_refused() {
        assert_eq!(
            GroupSecret::new("", STRONG).unwrap_err(),
            AdmissionError::BadGroup(String::new())
        );
        assert!(GroupSecret::new("a b", STRONG).is_err());
        assert!(GroupSecret::new(&"x".repeat(65), STRONG).is_err());
        for dots in [".", "..", "..."] {
            assert!(check_group(dots).is_err(), "{dots}");
        }
        assert!(check_group("tv.hd").is_ok());
    }

    #[cfg(unix)]
    #[test]
    fn a_secret_file_others_may_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let path = std::env::temp_dir().join(format!("esm-secret-{}", std::process::id()));
        std::fs::write(&path, b"plate-ridge-vocal-mango-swift\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = GroupSecret::from_file_or_env("talk", Some(&path)).unwrap_err();
        assert!(
            matches!(e, AdmissionError::Exposed { mode: 0o644, .. }),
            "{e}"
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(GroupSecret::from_file_or_env("talk", Some(&path)).is_ok());
        std::fs::remove_file(&path).unwrap();
    }
}
