//! Application-layer anycast between processes: the authoritative resolver (`esm resolver`,
//! [`resolver`]), a member's server side ([`entry`]: it registers its address under
//! `GROUP%DOMAIN`, answers probes and pushes how busy it is, signed with its key), and lookups
//! ([`lookup`]: `esm resolve`, a member joining by name, a broadcast root following every
//! node's estimate), and DNS for programs that cannot be changed (`esm resolver --dns`;
//! [`forwarder`]: `esm resolve --serve`, a local caching forwarder). All of it runs the `anycast-resolver` protocols over the same QUIC runtime
//! and admission (the group's secret) as the conference.

pub mod entry;
pub mod forwarder;
pub mod lookup;
pub mod resolver;

use std::net::SocketAddr;

pub use entry::AnycastEntry;
pub use lookup::{Lookup, ResolveArgs, follow_estimates, resolve};
pub use resolver::{ResolverArgs, ResolverOptions, ResolverProcess};

use crate::runtime::DialError;
use crate::transport::admission::{AdmissionError, GroupSecret};
use crate::transport::connect::{ConnectError, Connector, TransportSettings};
use crate::transport::identity::{Identity, IdentityError};
use crate::transport::signing::SigningError;

/// The domain conference groups are registered under unless told otherwise: under `.internal`,
/// which ICANN keeps for private use (2024), so no public name can clash, and which glibc's
/// mDNS module leaves to DNS (`.local` names never reach a DNS server on hosts with
/// nss-mdns).
pub const DEFAULT_DOMAIN: &str = "esm.internal";

/// Why an anycast resolver, registration or lookup could not go on.
#[derive(Debug, thiserror::Error)]
pub enum AnycastError {
    /// The endpoint could not be opened, or the resolver not reached.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// A dial through the runtime failed.
    #[error(transparent)]
    Dial(#[from] DialError),
    /// The member's key cannot sign pushes.
    #[error(transparent)]
    Signing(#[from] SigningError),
    /// The identity could not be loaded or made.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// The group or its secret.
    #[error(transparent)]
    Admission(#[from] AdmissionError),
    /// The invite.
    #[error(transparent)]
    Invite(#[from] crate::transport::invite::InviteError),
    /// A group and domain that make no anycast name.
    #[error("--domain {domain}: {source}")]
    Domain {
        /// The domain.
        domain: String,
        /// Why.
        source: anycast_resolver::NameError,
    },
    /// Text that is no anycast name.
    #[error("{text:?} is not an anycast name: {source}")]
    NotAName {
        /// The text.
        text: String,
        /// Why.
        source: anycast_resolver::NameError,
    },
    /// The DNS port could not be opened.
    #[error("--dns {at}: {source}")]
    Dns {
        /// The address asked for.
        at: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The runtime's task ended.
    #[error("the runtime stopped")]
    Stopped,
    /// The resolver did not answer in time.
    #[error("no answer from the resolver at {resolver} within 5 s")]
    NoAnswer {
        /// The resolver.
        resolver: SocketAddr,
    },
    /// The resolver answered that it has no server for the name.
    #[error("{name}: {why}")]
    Nobody {
        /// The name.
        name: anycast_resolver::AnycastName,
        /// The resolver's reason.
        why: String,
    },
}

/// Serves `front` on UDP `at` in a task of its own: where it listens, and the task (the server
/// stops when it is aborted).
async fn serve_dns(
    at: SocketAddr,
    front: anycast_dns::DnsFrontEnd,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), AnycastError> {
    let socket = tokio::net::UdpSocket::bind(at)
        .await
        .map_err(|source| AnycastError::Dns { at, source })?;
    let bound = socket
        .local_addr()
        .map_err(|source| AnycastError::Dns { at, source })?;
    let mut server = anycast_dns::serve_udp(socket, front);
    let task = tokio::spawn(async move {
        if let Err(e) = server.block_until_done().await {
            tracing::error!(%e, "the DNS server stopped");
        }
    });
    Ok((bound, task))
}

/// An endpoint of `identity`'s own towards the resolver at `resolver`: bound to any port of
/// the unspecified address of the resolver's family, admitted with the group's secret.
fn endpoint_towards(
    resolver: SocketAddr,
    identity: &Identity,
    admission: GroupSecret,
) -> Result<Connector, ConnectError> {
    let any = if resolver.is_ipv4() {
        SocketAddr::from(([0, 0, 0, 0], 0))
    } else {
        SocketAddr::from(([0u16; 8], 0))
    };
    Connector::bind(
        any,
        identity.clone(),
        admission,
        TransportSettings::default(),
    )
}
