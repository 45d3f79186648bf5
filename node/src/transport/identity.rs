//! A member's persistent identity: an Ed25519 keypair created on first start and kept in a file
//! only its owner may read, the [`NodeId`] that is its public key, and a self-signed certificate
//! with that key for QUIC's TLS handshake.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use overlay_core::NodeId;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// Why an identity could not be loaded or made.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The key file could not be read or written.
    #[error("key file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// The key file does not hold an Ed25519 PKCS#8 key.
    #[error("key file {path} does not hold an Ed25519 PKCS#8 key: {reason}")]
    BadKey {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Others than the owner may read the key file.
    #[error(
        "key file {path} may be read by others (mode {mode:o}); run `chmod 600 {path}` or remove it"
    )]
    Exposed {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The certificate could not be made.
    #[error("certificate: {0}")]
    Certificate(String),
}

/// A member's keypair, id and certificate.
#[derive(Debug)]
pub struct Identity {
    id: NodeId,
    key_pkcs8: Vec<u8>,
    certificate: CertificateDer<'static>,
}

impl Clone for Identity {
    fn clone(&self) -> Self {
        Self {
            id: self.id,
            key_pkcs8: self.key_pkcs8.clone(),
            certificate: self.certificate.clone(),
        }
    }
}

fn id_of(key: &rcgen::KeyPair) -> Result<NodeId, IdentityError> {
    let raw: [u8; 32] = key.public_key_raw().try_into().map_err(|_| {
        IdentityError::Certificate("the public key is not 32 bytes (not Ed25519)".to_owned())
    })?;
    Ok(NodeId::from_bytes(raw))
}

impl Identity {
    /// A new random identity, kept only in memory.
    pub fn generate() -> Result<Self, IdentityError> {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519)
            .map_err(|e| IdentityError::Certificate(e.to_string()))?;
        Self::from_key(&key)
    }

    fn from_key(key: &rcgen::KeyPair) -> Result<Self, IdentityError> {
        let id = id_of(key)?;
        let params = rcgen::CertificateParams::new(vec!["esm".to_owned()])
            .map_err(|e| IdentityError::Certificate(e.to_string()))?;
        let certificate = params
            .self_signed(key)
            .map_err(|e| IdentityError::Certificate(e.to_string()))?;
        Ok(Self {
            id,
            key_pkcs8: key.serialize_der(),
            certificate: certificate.der().clone(),
        })
    }

    /// The identity kept in `path`: read if the file exists (it must be readable by its owner
    /// only), created with mode 600 otherwise.
    pub fn load_or_create(path: &Path) -> Result<Self, IdentityError> {
        let io = |source| IdentityError::Io {
            path: path.to_owned(),
            source,
        };
        match fs::read(path) {
            Ok(bytes) => {
                check_private(path)?;
                let key = rcgen::KeyPair::try_from(bytes.as_slice()).map_err(|e| {
                    IdentityError::BadKey {
                        path: path.to_owned(),
                        reason: e.to_string(),
                    }
                })?;
                if !key.is_compatible(&rcgen::PKCS_ED25519) {
                    return Err(IdentityError::BadKey {
                        path: path.to_owned(),
                        reason: "it is not an Ed25519 key".to_owned(),
                    });
                }
                Self::from_key(&key)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let identity = Self::generate()?;
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    fs::create_dir_all(dir).map_err(io)?;
                }
                write_private(path, &identity.key_pkcs8).map_err(io)?;
                Ok(identity)
            }
            Err(e) => Err(io(e)),
        }
    }

    /// The member's id (its public key).
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The self-signed certificate.
    pub fn certificate(&self) -> CertificateDer<'static> {
        self.certificate.clone()
    }

    /// The private key as PKCS#8 bytes (for signing).
    pub fn key_pkcs8(&self) -> &[u8] {
        &self.key_pkcs8
    }

    /// The private key, for TLS.
    pub fn private_key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_pkcs8.clone()))
    }
}

/// Writes `bytes` to `path` readable by its owner only, all or nothing: into a temporary file
/// beside it, synced, then renamed over `path` (a disk that fills half way leaves no empty key
/// file to block the next start). Refuses to replace a file that exists.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if path.exists() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            "a file is already there",
        ));
    }
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(format!(".{}.tmp", std::process::id()));
    let temporary = PathBuf::from(temporary);
    let written = create_private(&temporary).and_then(|mut f| {
        f.write_all(bytes)?;
        f.sync_all()
    });
    let renamed = written.and_then(|()| fs::rename(&temporary, path));
    if renamed.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    renamed
}

#[cfg(unix)]
fn create_private(path: &Path) -> std::io::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn create_private(path: &Path) -> std::io::Result<fs::File> {
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}

#[cfg(unix)]
fn check_private(path: &Path) -> Result<(), IdentityError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(path)
        .map_err(|source| IdentityError::Io {
            path: path.to_owned(),
            source,
        })?
        .permissions()
        .mode()
        & 0o777;
    if mode & 0o077 != 0 {
        return Err(IdentityError::Exposed {
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_: &Path) -> Result<(), IdentityError> {
    Ok(())
}

/// Why a peer's certificate names no member.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CertificateError {
    /// The certificate is not DER X.509.
    #[error("unparsable certificate: {0}")]
    Unparsable(String),
    /// Its key is of another algorithm.
    #[error("the certificate's key is not Ed25519 (algorithm {0})")]
    NotEd25519(String),
    /// Its Ed25519 key has the wrong length.
    #[error("the certificate's Ed25519 key is not 32 bytes")]
    BadKeyLength,
}

/// The [`NodeId`] a certificate's Ed25519 key makes, or why there is none.
pub fn id_from_certificate(cert: &CertificateDer<'_>) -> Result<NodeId, CertificateError> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref())
        .map_err(|e| CertificateError::Unparsable(e.to_string()))?;
    let spki = parsed.public_key();
    if spki.algorithm.algorithm != x509_parser::oid_registry::OID_SIG_ED25519 {
        return Err(CertificateError::NotEd25519(
            spki.algorithm.algorithm.to_string(),
        ));
    }
    let raw: [u8; 32] = spki
        .subject_public_key
        .data
        .as_ref()
        .try_into()
        .map_err(|_| CertificateError::BadKeyLength)?;
    Ok(NodeId::from_bytes(raw))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_file_is_created_private_and_gives_the_same_id_again() {
        let dir = std::env::temp_dir().join(format!("esm-identity-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let path = dir.join("member.key");
        let first = Identity::load_or_create(&path).unwrap();
        let again = Identity::load_or_create(&path).unwrap();
        assert_eq!(first.id(), again.id());
        assert_eq!(
            id_from_certificate(&again.certificate()).unwrap(),
            first.id()
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
            fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
            assert!(matches!(
                Identity::load_or_create(&path),
                Err(IdentityError::Exposed { .. })
            ));
            fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        }
        // A temporary file left by a write that failed half way is no key file.
        assert!(
            fs::read_dir(&dir).unwrap().all(|e| !e
                .unwrap()
                .path()
                .to_string_lossy()
                .ends_with(".tmp")),
            "no temporary file is left"
        );
        assert!(write_private(&path, b"again").is_err(), "never replaced");
        fs::write(&path, b"not a key").unwrap();
        let err = Identity::load_or_create(&path).unwrap_err();
        assert!(matches!(err, IdentityError::BadKey { .. }), "{err}");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn two_identities_differ() {
        assert_ne!(
            Identity::generate().unwrap().id(),
            Identity::generate().unwrap().id()
        );
    }
}
