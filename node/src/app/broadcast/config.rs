//! A broadcast node's settings: the flags of `esm broadcast` and `esm relay`, and the
//! [`BroadcastConfig`] they make.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use overlay_core::NodeId;

use super::serving::DEFAULT_MAX_VIEWERS;
use crate::edge::http_server::HttpLimits;
use crate::transport::admission::GroupSecret;
use crate::transport::invite::{Invite, InviteError, credentials};

/// Settings of a broadcast root or relay.
#[derive(Clone, Debug)]
pub struct BroadcastConfig {
    /// The channel (also the admission group).
    pub channel: String,
    /// Where to listen for nodes (UDP).
    pub listen: SocketAddr,
    /// Where to serve HTTP.
    pub http: SocketAddr,
    /// Where to keep the stream.
    pub store: PathBuf,
    /// The linear roots to join through, top first (none: this is the root). A relay joins
    /// under the last; a standby root lists the root it stands by for.
    pub roots: Vec<SocketAddr>,
    /// This node is a standby root: it takes its place in the chain under `roots`.
    pub standby: bool,
    /// The root's input: a file, or `-` for stdin.
    pub input: Option<PathBuf>,
    /// Publish a file as fast as it reads instead of at its own rate.
    pub fast: bool,
    /// End an HTTP response after the stream has not grown for this long under the same
    /// parent (a change of parent starts the time again).
    pub idle_end: Duration,
    /// Bytes each node keeps in memory for children that resume.
    pub memory_limit: u64,
    /// Bytes of the stream the store keeps at least (older segments are deleted).
    pub retention: u64,
    /// An anycast resolver (for group CHANNEL): the node registers its HTTP address there as a
    /// server of `CHANNEL%esm.internal`, and the root's redirects use the resolver's estimates.
    pub resolver: Option<SocketAddr>,
    /// The HTTP server's timeouts and connection cap (the cap is lowered at start to fit the
    /// descriptor limit).
    pub http_limits: HttpLimits,
    /// The most viewers streamed to at once; beyond it the root sends a viewer to another live
    /// node and a relay answers 503 with `Retry-After`.
    pub max_viewers: usize,
    /// The address to tell other nodes (and so viewers) in place of the one bound: the ports
    /// stay the ones bound. Without it, a node bound to a wildcard is known by where its
    /// connections come from.
    pub advertise: Option<IpAddr>,
}

/// The flags of `esm broadcast`.
#[derive(Debug, clap::Args)]
pub struct BroadcastArgs {
    /// The channel's name (also the admission group).
    #[arg(long)]
    pub channel: String,
    /// Where to listen for relays (UDP).
    #[arg(long)]
    pub listen: SocketAddr,
    /// Where to serve HTTP (viewers are redirected from here).
    #[arg(long)]
    pub http: SocketAddr,
    /// The MPEG-TS input: a file, or - for stdin (not with --standby-for).
    #[arg(long, required_unless_present = "standby_for")]
    pub input: Option<PathBuf>,
    /// Run as a standby root for the root at this QUIC address: it holds the whole table and
    /// takes over (redirects included) if the root dies.
    #[arg(long, conflicts_with = "input")]
    pub standby_for: Option<SocketAddr>,
    /// Publish a file as fast as it reads, not at its own rate.
    #[arg(long)]
    pub fast: bool,
    /// What roots and relays share.
    #[command(flatten)]
    pub common: BroadcastCommon,
}

/// The flags of `esm relay`.
#[derive(Debug, clap::Args)]
pub struct RelayArgs {
    /// The root's QUIC address; repeat for standby roots, in their order (default: the
    /// members of --invite).
    #[arg(long)]
    pub root: Vec<SocketAddr>,
    /// The channel (the root's).
    #[arg(long)]
    pub channel: String,
    /// Where to listen for other nodes (UDP).
    #[arg(long)]
    pub listen: SocketAddr,
    /// Where to serve viewers over HTTP.
    #[arg(long)]
    pub http: SocketAddr,
    /// What roots and relays share.
    #[command(flatten)]
    pub common: BroadcastCommon,
}

/// The flags `esm broadcast` and `esm relay` share.
#[derive(Debug, clap::Args)]
pub struct BroadcastCommon {
    /// Where to keep the stream (default .esm/store-PORT).
    #[arg(long)]
    pub store: Option<PathBuf>,
    /// The node's key file (default .esm/node-PORT.key).
    #[arg(long)]
    pub key: Option<PathBuf>,
    /// A file holding the channel's secret (else the ESM_SECRET variable).
    #[arg(long)]
    pub secret_file: Option<PathBuf>,
    /// An invite from `esm invite` (token, or a file only its owner may read; else the
    /// ESM_INVITE variable): the channel's secret, and for a relay the roots to join through.
    #[arg(long, value_name = "TOKEN|FILE")]
    pub invite: Option<String>,
    /// End a viewer's response once the stream has not grown for this long; a relay that
    /// changes parent (its parent failed) starts the time again, so repairs are pauses. A node
    /// under a parent waits at least 5 s (the protocol's parent timeout and three check-ins),
    /// since before then it cannot tell the stream's end from its parent's death.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub idle_end: Duration,
    /// Bytes of the stream each node keeps in memory for children that resume.
    #[arg(long, default_value_t = 256 << 20)]
    pub memory_limit: u64,
    /// An anycast resolver (`esm resolver --group CHANNEL`): register this node's HTTP address
    /// there, and at the root, redirect viewers by the resolver's estimates.
    #[arg(long)]
    pub resolver: Option<SocketAddr>,
    /// Bytes of the stream the store keeps at least, in 4 MiB segments (older ones are
    /// deleted; a viewer that falls behind them is skipped to the live edge).
    #[arg(long, default_value_t = 1 << 30)]
    pub retention: u64,
    /// The most viewers streamed at once; beyond it the root sends a viewer to another live node
    /// and a relay answers 503 with Retry-After.
    #[arg(long, default_value_t = DEFAULT_MAX_VIEWERS)]
    pub max_viewers: usize,
    /// The address other nodes and viewers reach this node at, when it is not the one bound
    /// (behind a NAT, or bound to 0.0.0.0): told to peers with the ports bound.
    #[arg(long)]
    pub advertise: Option<IpAddr>,
    /// The most HTTP connections open at once; beyond it new ones wait to be accepted (lowered
    /// at start to fit the descriptor limit).
    #[arg(long, default_value_t = HttpLimits::DEFAULT_MAX_CONNECTIONS)]
    pub max_connections: usize,
    /// Close an HTTP connection that has not sent a complete request head this long after
    /// connecting or after its previous response.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub http_header_timeout: Duration,
    /// Close an HTTP connection that has neither sent nor taken a byte for this long while the
    /// node waits for it (at least --idle-end and a second, so a viewer waiting for the stream
    /// to grow is not cut).
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub http_idle_timeout: Duration,
    /// Close an HTTP connection whose client does not take any of a write for this long (a
    /// viewer that stopped reading).
    #[arg(long, default_value = "20s", value_parser = parse_duration)]
    pub http_write_timeout: Duration,
}

/// The shortest idle time of a node under a parent: the protocol's parent timeout and three
/// check-ins (it notices a silent parent at the first check-in past the timeout; the rest is
/// room for a loaded machine). With the default settings, 5 s: the default `--idle-end`.
fn repair_idle_floor() -> Duration {
    let overcast = overcast::OvercastConfig::default();
    overcast.parent_timeout + overcast.check_in_interval * 3
}

impl BroadcastCommon {
    /// The node's settings with these flags: `roots` to join through (none: the root),
    /// `standby` for a standby root, `input` and `fast` for the root's input.
    fn config(
        self,
        channel: String,
        listen: SocketAddr,
        http: SocketAddr,
        roots: Vec<SocketAddr>,
        standby: bool,
    ) -> BroadcastConfig {
        // A node under a parent cannot tell the stream's end from its parent's death until
        // the protocol declares the parent lost; a shorter idle time would end viewers'
        // responses before the repair that restarts it.
        let idle_end = if roots.is_empty() {
            self.idle_end
        } else {
            self.idle_end.max(repair_idle_floor())
        };
        BroadcastConfig {
            store: self
                .store
                .unwrap_or_else(|| PathBuf::from(format!(".esm/store-{}", listen.port()))),
            channel,
            listen,
            http,
            roots,
            standby,
            input: None,
            fast: false,
            idle_end,
            memory_limit: self.memory_limit,
            retention: self.retention,
            resolver: self.resolver,
            http_limits: HttpLimits {
                header_read_timeout: self.http_header_timeout,
                idle_timeout: self
                    .http_idle_timeout
                    .max(idle_end + Duration::from_secs(1)),
                write_timeout: self.http_write_timeout,
                max_connections: self.max_connections,
            },
            max_viewers: self.max_viewers,
            advertise: self.advertise,
        }
    }

    /// The channel's admission, from the invite if there is one (it must be for `channel`),
    /// else the secret file or `ESM_SECRET`; with the invite's members.
    pub fn credentials(
        &self,
        channel: &str,
    ) -> Result<(GroupSecret, Vec<(NodeId, SocketAddr)>), InviteError> {
        let invite = Invite::from_arg_or_env(self.invite.as_deref())?;
        credentials(channel, invite.as_ref(), self.secret_file.as_deref())
    }

    /// The key file: as given, else `.esm/node-PORT.key`.
    pub fn key_file(&self, listen: SocketAddr) -> PathBuf {
        self.key
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!(".esm/node-{}.key", listen.port())))
    }
}

impl BroadcastArgs {
    /// The root's (or standby root's) settings.
    pub fn config(self) -> BroadcastConfig {
        let roots: Vec<SocketAddr> = self.standby_for.into_iter().collect();
        let standby = !roots.is_empty();
        BroadcastConfig {
            input: self.input,
            fast: self.fast,
            ..self
                .common
                .config(self.channel, self.listen, self.http, roots, standby)
        }
    }
}

impl RelayArgs {
    /// The relay's settings.
    pub fn config(self) -> BroadcastConfig {
        self.common
            .config(self.channel, self.listen, self.http, self.root, false)
    }
}

/// A duration flag that is not one.
#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not a duration (say 5s or 500ms)")]
pub struct ParseDurationError(String);

/// A duration as the flags take it: `5s`, `500ms`, or a number of seconds.
fn parse_duration(s: &str) -> Result<Duration, ParseDurationError> {
    let (number, scale) = if let Some(ms) = s.strip_suffix("ms") {
        (ms, 1e-3)
    } else if let Some(secs) = s.strip_suffix('s') {
        (secs, 1.0)
    } else {
        (s, 1.0)
    };
    match number.parse::<f64>() {
        Ok(x) if x.is_finite() && x >= 0.0 && x * scale < 1e9 => {
            Ok(Duration::from_secs_f64(x * scale))
        }
        _ => Err(ParseDurationError(s.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Relay {
        #[command(flatten)]
        args: RelayArgs,
    }

    fn relay(extra: &[&str]) -> BroadcastConfig {
        let mut argv = vec!["esm", "--root", "127.0.0.1:1", "--channel", "tv"];
        argv.extend_from_slice(&["--listen", "127.0.0.1:0", "--http", "127.0.0.1:0"]);
        argv.extend_from_slice(extra);
        Relay::parse_from(argv).args.config()
    }

    #[test]
    fn the_http_flags_default_to_the_documented_limits_and_change_them() {
        let c = relay(&[]);
        assert_eq!(c.http_limits, HttpLimits::default());
        assert_eq!(c.max_viewers, DEFAULT_MAX_VIEWERS);
        let c = relay(&[
            "--max-viewers",
            "3",
            "--max-connections",
            "9",
            "--http-header-timeout",
            "2s",
            "--http-write-timeout",
            "500ms",
            "--http-idle-timeout",
            "1s",
            "--idle-end",
            "4s",
        ]);
        // A relay waits at least 5 s for growth (see below), and the HTTP idle time a second
        // more.
        let expected = HttpLimits {
            header_read_timeout: Duration::from_secs(2),
            idle_timeout: Duration::from_secs(6),
            write_timeout: Duration::from_millis(500),
            max_connections: 9,
        };
        assert_eq!((c.http_limits, c.max_viewers), (expected, 3));
    }

    #[test]
    fn a_relay_waits_for_growth_at_least_as_long_as_it_takes_to_lose_a_silent_parent() {
        assert_eq!(repair_idle_floor(), Duration::from_secs(5));
        assert_eq!(
            relay(&["--idle-end", "2s"]).idle_end,
            Duration::from_secs(5)
        );
        assert_eq!(
            relay(&["--idle-end", "8s"]).idle_end,
            Duration::from_secs(8)
        );
        assert_eq!(relay(&[]).idle_end, Duration::from_secs(5));
    }

    #[test]
    fn durations_read_in_seconds_or_milliseconds_and_nonsense_is_refused() {
        assert_eq!(parse_duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
        for bad in ["", "-1s", "fast", "1e300s", "NaNs"] {
            let e = parse_duration(bad).unwrap_err();
            assert!(e.to_string().contains("is not a duration"), "{bad}: {e}");
        }
    }
}
