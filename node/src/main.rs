//! `esm`: the overlay's processes. Each subcommand is one application of `node::app` (or the
//! demo); its flags live beside its settings there.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use node::app::{anycast, broadcast, conference, invite};

/// jemalloc, not glibc's malloc: a node frees and replaces tens of MiB of stream chunks from
/// several threads for hours, and glibc's per-thread arenas let that fragment (RSS kept
/// growing at a steady amount in use); jemalloc returns freed pages and stays flat.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Debug, Parser)]
#[command(name = "esm", version, about = "End-system multicast over QUIC")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Make an invite token for a group: its name, a new 256-bit secret (or the existing
    /// one) and members to join through, for `--invite` on every other command.
    Invite(invite::InviteArgs),
    /// Run a conferencing member: Narada with the bandwidth-then-latency metric over QUIC.
    ///
    /// The group and secret come from --invite (or the ESM_INVITE variable), else the secret
    /// from --secret-file or the ESM_SECRET variable (never a flag, which `ps` would show).
    Conference(conference::ConferenceArgs),
    /// Run an authoritative anycast resolver for a group's members (they register with
    /// --resolver; clients look them up with `esm resolve`, or over DNS with --dns).
    Resolver(anycast::ResolverArgs),
    /// Look up the best member of `GROUP%DOMAIN` at a resolver and print its address (or, with
    /// --serve, answer DNS as a local caching forwarder).
    Resolve(anycast::ResolveArgs),
    /// Broadcast an MPEG-TS stream: the Overcast root. Reads a file (paced at its own rate
    /// unless --fast) or stdin (`--input -`, forwarded as it arrives); redirects HTTP viewers to
    /// the best live node.
    Broadcast(broadcast::BroadcastArgs),
    /// An Overcast relay: joins the tree through the root, stores the stream, serves viewers.
    Relay(broadcast::RelayArgs),
    /// The main job on built-in defaults: an anycast resolver and 8 member processes in 8
    /// cities of an emulated wide-area network (on loopback addresses) that join by name, 3
    /// sending, the busiest relay (not the slow member; a source only when no other member
    /// relays) SIGKILLed mid-run; a live table, a per-receiver summary and a picture of the mesh
    /// and trees.
    Demo(node::demo::DemoArgs),
}

/// Runs `command` to its end; the error as the user should read it.
async fn run(command: Cmd) -> Result<(), Box<dyn std::error::Error>> {
    match command {
        Cmd::Invite(a) => invite::run(a).await?,
        Cmd::Conference(a) => conference::run(a).await?,
        Cmd::Resolver(a) => anycast::resolver::run(a).await?,
        Cmd::Resolve(a) => anycast::lookup::run(a).await?,
        Cmd::Broadcast(a) => broadcast::run_root(a).await?,
        Cmd::Relay(a) => broadcast::run_relay(a).await?,
        Cmd::Demo(a) => node::demo::run(a).await?,
    }
    Ok(())
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        // Colour codes only for a terminal: a log file holds plain lines.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    // HTTP clients each hold a descriptor: take the hard limit where the soft one is lower.
    match node::edge::http_server::raise_descriptor_limit() {
        Ok(limit) => tracing::debug!(limit, "descriptor limit"),
        Err(e) => tracing::warn!(error = %e, "cannot raise the descriptor limit"),
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("esm: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("esm: {e}");
            ExitCode::FAILURE
        }
    }
}
