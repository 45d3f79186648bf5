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
    /// Run an authoritative anycast resolver for a group's members (they register with
    /// --resolver; clients look them up with `esm resolve`).
    Resolver(ResolverArgs),
    /// Look up the best member of `GROUP%DOMAIN` at a resolver and print its address.
    Resolve(ResolveArgs),
    /// Broadcast an MPEG-TS stream: the Overcast root. Reads a file (paced at its own rate
    /// unless --fast) or stdin (`--input -`, forwarded as it arrives); redirects HTTP viewers to
    /// the best live node.
    Broadcast(BroadcastArgs),
    /// An Overcast relay: joins the tree through the root, stores the stream, serves viewers.
    Relay(RelayArgs),
    /// The main job on built-in defaults: an anycast resolver and 8 member processes on
    /// loopback that join by name, 3 sending, the busiest relay SIGKILLed mid-run; a live table,
    /// a per-receiver summary and a picture of the mesh and trees.
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
    /// Register with this anycast resolver as a server of GROUP%DOMAIN.
    #[arg(long)]
    resolver: Option<SocketAddr>,
    /// The anycast domain.
    #[arg(long)]
    domain: Option<String>,
    /// With no --join, look up an entry member by name at the resolver (or found the group
    /// if it has none).
    #[arg(long)]
    join_by_name: bool,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let (number, scale) = if let Some(ms) = s.strip_suffix("ms") {
        (ms, 1e-3)
    } else if let Some(secs) = s.strip_suffix('s') {
        (secs, 1.0)
    } else {
        (s, 1.0)
    };
    match number.parse::<f64>() {
        Ok(x) if x.is_finite() && x >= 0.0 => Ok(Duration::from_secs_f64(x * scale)),
        _ => Err(format!("{s:?} is not a duration (say 5s or 500ms)")),
    }
}

#[derive(Debug, clap::Args)]
struct BroadcastArgs {
    /// The channel's name (also the admission group).
    #[arg(long)]
    channel: String,
    /// Where to listen for relays (UDP).
    #[arg(long)]
    listen: SocketAddr,
    /// Where to serve HTTP (viewers are redirected from here).
    #[arg(long)]
    http: SocketAddr,
    /// The MPEG-TS input: a file, or - for stdin (not with --standby-for).
    #[arg(long, required_unless_present = "standby_for")]
    input: Option<PathBuf>,
    /// Run as a standby root for the root at this QUIC address: it holds the whole table and
    /// takes over (redirects included) if the root dies.
    #[arg(long, conflicts_with = "input")]
    standby_for: Option<SocketAddr>,
    /// Publish a file as fast as it reads, not at its own rate.
    #[arg(long)]
    fast: bool,
    #[command(flatten)]
    common: BroadcastCommon,
}

#[derive(Debug, clap::Args)]
struct RelayArgs {
    /// The root's QUIC address; repeat for standby roots, in their order.
    #[arg(long, required = true)]
    root: Vec<SocketAddr>,
    /// The channel (the root's).
    #[arg(long)]
    channel: String,
    /// Where to listen for other nodes (UDP).
    #[arg(long)]
    listen: SocketAddr,
    /// Where to serve viewers over HTTP.
    #[arg(long)]
    http: SocketAddr,
    #[command(flatten)]
    common: BroadcastCommon,
}

#[derive(Debug, clap::Args)]
struct BroadcastCommon {
    /// Where to keep the stream (default .esm/store-PORT).
    #[arg(long)]
    store: Option<PathBuf>,
    /// The node's key file (default .esm/node-PORT.key).
    #[arg(long)]
    key: Option<PathBuf>,
    /// A file holding the channel's secret (else the ESM_SECRET variable).
    #[arg(long)]
    secret_file: Option<PathBuf>,
    /// End a viewer's response once the stream has not grown for this long.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    idle_end: Duration,
    /// Bytes of the stream each node keeps in memory for children that resume.
    #[arg(long, default_value_t = 256 << 20)]
    memory_limit: u64,
    /// An anycast resolver (`esm resolver --group CHANNEL`): register this node's HTTP address
    /// there, and at the root, redirect viewers by the resolver's estimates.
    #[arg(long)]
    resolver: Option<SocketAddr>,
    /// Bytes of the stream the store keeps at least, in 4 MiB segments (older ones are
    /// deleted; a viewer that falls behind them is skipped to the live edge).
    #[arg(long, default_value_t = 1 << 30)]
    retention: u64,
}

#[allow(clippy::too_many_arguments)]
async fn broadcast_node(
    channel: String,
    listen: SocketAddr,
    http: SocketAddr,
    roots: Vec<SocketAddr>,
    standby: bool,
    input: Option<PathBuf>,
    fast: bool,
    common: BroadcastCommon,
) -> Result<(), String> {
    use node::admission::GroupSecret;
    use node::identity::Identity;
    let admission = GroupSecret::from_file_or_env(&channel, common.secret_file.as_deref())
        .map_err(|e| e.to_string())?;
    let key = common
        .key
        .unwrap_or_else(|| PathBuf::from(format!(".esm/node-{}.key", listen.port())));
    let identity = Identity::load_or_create(&key).map_err(|e| e.to_string())?;
    let store = common
        .store
        .unwrap_or_else(|| PathBuf::from(format!(".esm/store-{}", listen.port())));
    let config = node::broadcast::BroadcastConfig {
        channel: channel.clone(),
        listen,
        http,
        store,
        roots: roots.clone(),
        standby,
        input,
        fast,
        idle_end: common.idle_end,
        memory_limit: common.memory_limit,
        retention: common.retention,
        resolver: common.resolver,
    };
    let node = node::broadcast::BroadcastNode::start(&config, identity, admission).await?;
    println!(
        "ready id={} quic={} http={}",
        node.id.to_hex(),
        node.listen,
        node.http
    );
    eprintln!(
        "{} {} of channel {channel}: QUIC {}, viewers at http://{}/channels/{channel}",
        if standby {
            "standby root"
        } else if roots.is_empty() {
            "root"
        } else {
            "relay"
        },
        node.id,
        node.listen,
        node.http
    );
    let _ = tokio::signal::ctrl_c().await;
    node.stop().await;
    Ok(())
}

#[derive(Debug, clap::Args)]
struct ResolverArgs {
    /// The group whose members register (admission uses its secret).
    #[arg(long)]
    group: String,
    /// Where to listen (UDP).
    #[arg(long)]
    listen: SocketAddr,
    /// The domain this resolver is authoritative for.
    #[arg(long, default_value = node::anycast::DEFAULT_DOMAIN)]
    domain: String,
    /// The resolver's key file (created on first start); default `.esm/resolver-PORT.key`.
    #[arg(long)]
    key: Option<PathBuf>,
    /// A file holding the group secret (else the ESM_SECRET variable).
    #[arg(long)]
    secret_file: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
struct ResolveArgs {
    /// The anycast name, GROUP%DOMAIN.
    name: String,
    /// The authoritative resolver's address.
    #[arg(long)]
    resolver: SocketAddr,
    /// The group whose secret admits this lookup (default: the name's group).
    #[arg(long)]
    group: Option<String>,
    /// A file holding the group secret (else the ESM_SECRET variable).
    #[arg(long)]
    secret_file: Option<PathBuf>,
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
        resolver: Option<SocketAddr>,
        domain: Option<String>,
        #[serde(default)]
        join_by_name: bool,
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
    let resolver = a.resolver.or(file.resolver);
    let anycast_domain = a
        .domain
        .or(file.domain)
        .unwrap_or_else(|| node::anycast::DEFAULT_DOMAIN.to_owned());
    let join_by_name = a.join_by_name || file.join_by_name;
    if join_by_name && resolver.is_none() {
        return Err("--join-by-name needs --resolver ADDR".into());
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
        resolver,
        anycast_domain,
        join_by_name,
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

async fn resolver(a: ResolverArgs) -> Result<(), String> {
    use node::admission::GroupSecret;
    use node::identity::Identity;
    let admission = GroupSecret::from_file_or_env(&a.group, a.secret_file.as_deref())
        .map_err(|e| e.to_string())?;
    anycast_resolver::AnycastName::new(&a.group, &a.domain)
        .map_err(|e| format!("--domain {}: {e}", a.domain))?;
    let key = a
        .key
        .unwrap_or_else(|| PathBuf::from(format!(".esm/resolver-{}.key", a.listen.port())));
    let identity = Identity::load_or_create(&key).map_err(|e| e.to_string())?;
    let r = node::anycast::ResolverProcess::start(a.listen, identity, admission, &a.domain)?;
    println!("ready id={} quic={} http=-", r.id.to_hex(), r.listen);
    eprintln!(
        "anycast resolver {} for {} listening on {}",
        r.id, a.domain, r.listen
    );
    tokio::select! {
        () = r.run() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(())
}

async fn resolve(a: ResolveArgs) -> Result<(), String> {
    use node::admission::GroupSecret;
    use node::identity::Identity;
    let name: anycast_resolver::AnycastName = a
        .name
        .parse()
        .map_err(|e| format!("{:?} is not an anycast name: {e}", a.name))?;
    let group = a.group.unwrap_or_else(|| name.service().to_owned());
    let admission = GroupSecret::from_file_or_env(&group, a.secret_file.as_deref())
        .map_err(|e| e.to_string())?;
    let identity = Identity::generate().map_err(|e| e.to_string())?;
    match node::anycast::resolve(&identity, admission, a.resolver, &name).await? {
        node::anycast::Lookup::Found { server, address } => {
            println!("{name} {address} {}", server.to_hex());
            Ok(())
        }
        node::anycast::Lookup::Nobody(why) => Err(format!("{name}: {why}")),
    }
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
            Cmd::Resolver(a) => resolver(a).await,
            Cmd::Resolve(a) => resolve(a).await,
            Cmd::Broadcast(a) => {
                node::admission::check_group(&a.channel).map_err(|e| e.to_string())?;
                let roots: Vec<SocketAddr> = a.standby_for.into_iter().collect();
                let standby = !roots.is_empty();
                broadcast_node(
                    a.channel, a.listen, a.http, roots, standby, a.input, a.fast, a.common,
                )
                .await
            }
            Cmd::Relay(a) => {
                node::admission::check_group(&a.channel).map_err(|e| e.to_string())?;
                broadcast_node(
                    a.channel, a.listen, a.http, a.root, false, None, false, a.common,
                )
                .await
            }
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
