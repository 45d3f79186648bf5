//! `esm`: run a conference member, or the demo.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use node::conference::{ConferenceConfig, Member};
use overlay_core::Bandwidth;

#[derive(Debug, Parser)]
#[command(name = "esm", version, about = "End-system multicast over QUIC")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run a conferencing member: Narada with the bandwidth-then-latency metric over QUIC.
    ///
    /// The group secret comes from --secret-file or the ESM_SECRET variable (never a flag,
    /// which `ps` would show).
    Conference(ConferenceArgs),
    /// The main job on built-in defaults: 8 members on loopback, 3 sending, one crashed
    /// mid-run; a live table, a per-receiver summary and a picture of the mesh and trees.
    Demo(node::demo::DemoArgs),
}

#[derive(Debug, clap::Args)]
struct ConferenceArgs {
    /// A TOML file with any of the settings below (flags given override it).
    #[arg(long)]
    config: Option<PathBuf>,
    /// The group's name (letters, digits, '.', '_', '-').
    #[arg(long)]
    group: Option<String>,
    /// Where to listen for members (UDP), e.g. 127.0.0.1:7000.
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// A member to join through (repeat for more; none founds the group).
    #[arg(long)]
    join: Vec<SocketAddr>,
    /// What to send: `synthetic:RATE` (e.g. synthetic:500kbps).
    #[arg(long)]
    send: Option<String>,
    /// Serve /status and /metrics on this TCP address.
    #[arg(long)]
    http: Option<SocketAddr>,
    /// The member's key file (created with mode 600 on first start); default
    /// `.esm/GROUP-PORT.key`.
    #[arg(long)]
    key: Option<PathBuf>,
    /// A file holding the group secret (else the ESM_SECRET variable).
    #[arg(long)]
    secret_file: Option<PathBuf>,
    /// The stream rate bandwidth levels are measured against.
    #[arg(long)]
    stream_rate: Option<Bandwidth>,
}

fn parse_send(spec: &str) -> Result<Bandwidth, String> {
    match spec.split_once(':') {
        Some(("synthetic", rate)) => rate
            .parse::<Bandwidth>()
            .map_err(|e| format!("--send {spec}: the rate {rate:?} is not a bandwidth: {e}")),
        _ => Err(format!(
            "--send {spec}: only `synthetic:RATE` is supported (sending a media file is not built yet)"
        )),
    }
}

fn conference_config(a: ConferenceArgs) -> Result<ConferenceConfig, String> {
    #[derive(serde::Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    struct FileConfig {
        group: Option<String>,
        listen: Option<SocketAddr>,
        #[serde(default)]
        join: Vec<SocketAddr>,
        send: Option<String>,
        http: Option<SocketAddr>,
        key: Option<PathBuf>,
        secret_file: Option<PathBuf>,
        stream_rate: Option<String>,
    }
    let file = match &a.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("config file {}: {e}", path.display()))?;
            toml::from_str::<FileConfig>(&text)
                .map_err(|e| format!("config file {}: {e}", path.display()))?
        }
        None => FileConfig::default(),
    };
    let group = a
        .group
        .or(file.group)
        .ok_or("no group: give --group NAME (or `group` in the config file)")?;
    node::admission::check_group(&group).map_err(|e| e.to_string())?;
    let listen = a
        .listen
        .or(file.listen)
        .ok_or("no listen address: give --listen ADDR (or `listen` in the config file)")?;
    let join = if a.join.is_empty() { file.join } else { a.join };
    let send = a.send.or(file.send);
    let send_rate = send.as_deref().map(parse_send).transpose()?;
    let key_file = a
        .key
        .or(file.key)
        .unwrap_or_else(|| PathBuf::from(format!(".esm/{group}-{}.key", listen.port())));
    let file_rate = file
        .stream_rate
        .map(|r| {
            r.parse::<Bandwidth>()
                .map_err(|e| format!("config file: stream_rate {r:?}: {e}"))
        })
        .transpose()?;
    let stream_rate = a
        .stream_rate
        .or(file_rate)
        .or(send_rate)
        .unwrap_or(Bandwidth::from_kbps(500));
    if stream_rate.bps() == 0 {
        return Err("--stream-rate must be above zero".into());
    }
    Ok(ConferenceConfig {
        group,
        listen,
        join,
        send_rate,
        http: a.http.or(file.http),
        key_file,
        secret_file: a.secret_file.or(file.secret_file),
        stream_rate,
    })
}

async fn conference(a: ConferenceArgs) -> Result<(), String> {
    let config = conference_config(a)?;
    let member = Member::start(&config).await.map_err(|e| e.to_string())?;
    // One machine-readable line on stdout for whoever started this process.
    println!(
        "ready id={} quic={} http={}",
        member.id.to_hex(),
        member.listen,
        member
            .http
            .map(|h| h.to_string())
            .unwrap_or_else(|| "-".into())
    );
    eprintln!(
        "member {} of group {} listening on {}{}",
        member.id,
        config.group,
        member.listen,
        member
            .http
            .map(|h| format!(", status on http://{h}/status"))
            .unwrap_or_default()
    );
    let _ = tokio::signal::ctrl_c().await;
    eprintln!("leaving");
    member.leave().await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    Ok(())
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("esm: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Cmd::Conference(a) => conference(a).await,
            Cmd::Demo(a) => node::demo::run(a).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("esm: {e}");
            ExitCode::FAILURE
        }
    }
}
