//! `esm invite`: prints (or writes) an invite token for a group: its name, its secret (a new
//! 256-bit one unless one is given) and members to join through with their ids.

use std::net::SocketAddr;
use std::path::PathBuf;

use overlay_core::NodeId;

use crate::transport::admission::{AdmissionError, GroupSecret, read_secret};
use crate::transport::connect::{ConnectError, Connector, TransportSettings};
use crate::transport::identity::{Identity, IdentityError, write_private};
use crate::transport::invite::{Invite, InviteError};

/// The flags of `esm invite`.
#[derive(Debug, clap::Args)]
pub struct InviteArgs {
    /// The group (letters, digits, '.', '_', '-'); default: the group of --from.
    #[arg(long)]
    pub group: Option<String>,
    /// A member new members join through: ID@ADDR, or ADDR alone to ask the member there
    /// for its id (which takes the group's existing secret). Repeat for more.
    #[arg(long, value_name = "ID@ADDR|ADDR")]
    pub bootstrap: Vec<String>,
    /// An existing invite (token or file) whose group and secret to use; its members follow
    /// the new ones.
    #[arg(long, value_name = "TOKEN|FILE")]
    pub from: Option<String>,
    /// A file holding the group's existing secret (else ESM_SECRET; with neither, nor
    /// --from, a new secret is made).
    #[arg(long)]
    pub secret_file: Option<PathBuf>,
    /// Write the token to this new file, readable by its owner only (else print it).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Why no invite was made.
#[derive(Debug, thiserror::Error)]
pub enum InviteCommandError {
    /// Neither --group nor --from.
    #[error("no group: give --group NAME (or --from an existing invite)")]
    NoGroup,
    /// The invite or its parts.
    #[error(transparent)]
    Invite(#[from] InviteError),
    /// The group or secret.
    #[error(transparent)]
    Admission(#[from] AdmissionError),
    /// A `--bootstrap` value is not ID@ADDR or ADDR.
    #[error("--bootstrap {0:?}: give ID@ADDR (the member's 64-hex-digit id) or ADDR")]
    Bootstrap(String),
    /// A bare address was given with a new secret: no member there can know it.
    #[error(
        "--bootstrap {0}: asking a member for its id needs the group's existing secret \
         (--from, --secret-file or ESM_SECRET), or give ID@ADDR"
    )]
    NoSecretToAsk(SocketAddr),
    /// The member at a bare address could not be asked.
    #[error("asking {0} for its id: {1}")]
    Ask(SocketAddr, ConnectError),
    /// A throwaway identity could not be made.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// The output file could not be written.
    #[error("{0}: {1}")]
    Out(PathBuf, std::io::Error),
}

/// `esm invite`.
pub async fn run(a: InviteArgs) -> Result<(), InviteCommandError> {
    let from = Invite::from_arg_or_env(a.from.as_deref())?;
    if let Some(from) = &from {
        from.check_group(a.group.as_deref())?;
    }
    let group = a
        .group
        .clone()
        .or_else(|| from.as_ref().map(|f| f.group.clone()))
        .ok_or(InviteCommandError::NoGroup)?;
    let existing = match &from {
        Some(f) => Some(f.secret().to_vec()),
        None => read_secret(a.secret_file.as_deref())?,
    };
    let new_secret = existing.is_none();
    let secret = match existing {
        Some(s) => s,
        None => Invite::generate_secret()?,
    };
    let admission = GroupSecret::new(&group, &secret)?;
    let mut bootstrap = Vec::new();
    for text in &a.bootstrap {
        bootstrap.push(bootstrap_member(text, &admission, new_secret).await?);
    }
    if let Some(f) = &from {
        for m in &f.bootstrap {
            if !bootstrap.contains(m) {
                bootstrap.push(*m);
            }
        }
    }
    let invite = Invite::new(&group, secret, bootstrap)?;
    let token = invite.token();
    match &a.out {
        Some(path) => write_private(path, format!("{token}\n").as_bytes())
            .map_err(|e| InviteCommandError::Out(path.clone(), e))?,
        None => println!("{token}"),
    }
    eprintln!(
        "invite into group {group} ({} secret, {} member{} to join through){}; it admits \
         whoever holds it: hand it over privately",
        if new_secret { "a new" } else { "the existing" },
        invite.bootstrap.len(),
        if invite.bootstrap.len() == 1 { "" } else { "s" },
        a.out
            .as_ref()
            .map(|p| format!(" written to {}", p.display()))
            .unwrap_or_default(),
    );
    Ok(())
}

/// One `--bootstrap` value as a member and its address: ID@ADDR as given, ADDR by asking the
/// member there (admitted with the group's secret, so the id is a member's).
async fn bootstrap_member(
    text: &str,
    admission: &GroupSecret,
    new_secret: bool,
) -> Result<(NodeId, SocketAddr), InviteCommandError> {
    let bad = || InviteCommandError::Bootstrap(text.to_owned());
    if let Some((id, addr)) = text.split_once('@') {
        let id: NodeId = id.parse().map_err(|_| bad())?;
        let addr: SocketAddr = addr.parse().map_err(|_| bad())?;
        return Ok((id, addr));
    }
    let addr: SocketAddr = text.parse().map_err(|_| bad())?;
    if new_secret {
        return Err(InviteCommandError::NoSecretToAsk(addr));
    }
    let local: SocketAddr = if addr.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    }
    .parse()
    .map_err(|_| bad())?;
    let connector = Connector::bind(
        local,
        Identity::generate()?,
        admission.clone(),
        TransportSettings::default(),
    )
    .map_err(|e| InviteCommandError::Ask(addr, e))?;
    let admitted = connector
        .dial(addr, None)
        .await
        .map_err(|e| InviteCommandError::Ask(addr, e))?;
    admitted
        .conn
        .close(crate::transport::connect::code::CLOSED.into(), b"asked");
    connector.close();
    Ok((admitted.peer, addr))
}
