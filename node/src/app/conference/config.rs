//! A conference member's settings: the flags of `esm conference`, its TOML file, and the
//! [`ConferenceConfig`] they make.

use std::net::SocketAddr;
use std::path::PathBuf;

use narada::MetricKind;
use overlay_core::{Bandwidth, ParseBandwidthError};
use serde::{Deserialize, Serialize};

use crate::app::anycast::DEFAULT_DOMAIN;
use crate::transport::admission::{AdmissionError, check_group};
use crate::transport::invite::{Invite, InviteError};

/// Settings of a conference member (the flags of `esm conference`, or its TOML file).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConferenceConfig {
    /// The group's name.
    pub group: String,
    /// Where to listen for members (UDP).
    pub listen: SocketAddr,
    /// Members to join through (none founds the group).
    #[serde(default)]
    pub join: Vec<SocketAddr>,
    /// Send synthetic media at this rate (none: only receive).
    #[serde(default)]
    pub send_rate: Option<Bandwidth>,
    /// Send these files (VP8 video in IVF, Opus audio in Ogg; at most one of each), each paced
    /// by its own timestamps, as one source (`-`: standard input).
    #[serde(default)]
    pub send_files: Vec<SentFile>,
    /// Serve `/status` and `/metrics` here.
    #[serde(default)]
    pub http: Option<SocketAddr>,
    /// The member's key file (created on first start).
    pub key_file: PathBuf,
    /// The group secret's file (else the `ESM_SECRET` variable).
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
    /// The invite joined with: the group's secret (in place of `secret_file`) and bootstrap
    /// members dialled by id when `join` is empty (never written out: it holds the secret).
    #[serde(skip)]
    pub invite: Option<Invite>,
    /// The rate bandwidth levels are measured against.
    #[serde(default = "default_stream_rate")]
    pub stream_rate: Bandwidth,
    /// An anycast resolver to register with as a server of `GROUP%DOMAIN`.
    #[serde(default)]
    pub resolver: Option<SocketAddr>,
    /// The anycast domain.
    #[serde(default = "default_domain")]
    pub anycast_domain: String,
    /// With no `join` addresses, look up an entry member by name at the resolver (founding
    /// the group if it has none).
    #[serde(default)]
    pub join_by_name: bool,
    /// Run over an emulated wide-area network (tests and demos): the spec's file; `listen`
    /// must be one of its places.
    #[serde(default)]
    pub emulate: Option<PathBuf>,
    /// This member's upload capacity: it then forwards no more streams than 90% of it
    /// carries, across every sender, and its links together send at most 85% of it (with
    /// `emulate`, its place's upload unless given).
    #[serde(default)]
    pub upload: Option<Bandwidth>,
    /// This member's download capacity: it then routes as if no link to it were wider, and
    /// tells each peer sending it media the share of the download it may fill (with
    /// `emulate`, its place's download unless given).
    #[serde(default)]
    pub download: Option<Bandwidth>,
    /// The routing metric the trees follow (experiments compare them; members of one group
    /// must agree).
    #[serde(default = "default_metric")]
    pub metric: MetricKind,
    /// Where browsers' WebRTC media arrives (UDP; one socket for all of them). Unset: with
    /// `http` on a specific address, that address with a port of the system's choosing.
    #[serde(default)]
    pub webrtc: Option<SocketAddr>,
    /// The address browsers are told to reach the WebRTC socket at, when it is not the one
    /// bound (a public address in front of a private one).
    #[serde(default)]
    pub advertise: Option<std::net::IpAddr>,
    /// Write every other member's sources received here into this folder (IVF, H.264, Ogg
    /// Opus files).
    #[serde(default)]
    pub record: Option<PathBuf>,
}

/// Bandwidth first, then latency: the conferencing paper's metric.
fn default_metric() -> MetricKind {
    MetricKind::BandwidthLatency
}

/// A `--metric` value: the metric's kebab-case name.
pub(crate) fn parse_metric(text: &str) -> Result<MetricKind, String> {
    serde_json::from_value(serde_json::Value::String(text.to_owned())).map_err(|_| {
        format!("{text:?} is not a metric: bandwidth-latency, latency, bandwidth-only or random")
    })
}

fn default_domain() -> String {
    DEFAULT_DOMAIN.to_owned()
}

/// 500 kbit/s: the demo's synthetic rate, and a typical conferencing video stream.
fn default_stream_rate() -> Bandwidth {
    Bandwidth::from_kbps(500)
}

impl ConferenceConfig {
    /// The group's anycast name.
    pub fn anycast_name(&self) -> Result<anycast_resolver::AnycastName, ConfigError> {
        Ok(anycast_resolver::AnycastName::new(
            &self.group,
            &self.anycast_domain,
        )?)
    }
}

/// The flags of `esm conference`.
#[derive(Debug, clap::Args)]
pub struct ConferenceArgs {
    /// A TOML file with any of the settings below (flags given override it).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The group's name (letters, digits, '.', '_', '-').
    #[arg(long)]
    pub group: Option<String>,
    /// Where to listen for members (UDP), e.g. 127.0.0.1:7000.
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// A member to join through (repeat for more; none founds the group).
    #[arg(long)]
    pub join: Vec<SocketAddr>,
    /// What to send: `synthetic:RATE` (e.g. synthetic:500kbps); or files, as one source with
    /// video and sound, paced by their own timestamps (`-` reads standard input): `ts:FILE`,
    /// H.264 video and Opus audio in MPEG-TS (e.g. `ffmpeg -re -i in.mp4 -c:v libx264
    /// -pix_fmt yuv420p -bf 0 -g 50 -c:a libopus -f mpegts - | esm conference ... --send
    /// ts:-`); or `ivf:FILE`, VP8 video in IVF, and `ogg:FILE`, Opus audio in Ogg (repeat the
    /// flag for both, e.g. `--send ivf:- --send ogg:sound.ogg`).
    #[arg(long)]
    pub send: Vec<String>,
    /// Serve /status, /metrics and the operator's POST /links/limit?peer=ID&kbps=N (a cap on
    /// what goes to one peer; 0 lifts it) on this TCP address.
    #[arg(long)]
    pub http: Option<SocketAddr>,
    /// The member's key file (created with mode 600 on first start); default
    /// `.esm/GROUP-PORT.key`.
    #[arg(long)]
    pub key: Option<PathBuf>,
    /// A file holding the group secret (else the ESM_SECRET variable).
    #[arg(long)]
    pub secret_file: Option<PathBuf>,
    /// An invite from `esm invite` (the token, or a file only its owner may read that holds
    /// it; else the ESM_INVITE variable): the group, its secret and members to join through.
    /// A token on the command line is visible to other users of the machine (`ps`).
    #[arg(long, value_name = "TOKEN|FILE")]
    pub invite: Option<String>,
    /// The stream rate bandwidth levels are measured against; give every member of a group
    /// the same (default: the rate of --send, else 500 kbit/s). A receiver left at 500 kbit/s
    /// in a group streaming 1.2 Mbit/s takes a half-rate path as full.
    #[arg(long)]
    pub stream_rate: Option<Bandwidth>,
    /// Register with this anycast resolver as a server of GROUP%DOMAIN.
    #[arg(long)]
    pub resolver: Option<SocketAddr>,
    /// The anycast domain.
    #[arg(long)]
    pub domain: Option<String>,
    /// With no --join, look up an entry member by name at the resolver (or found the group
    /// if it has none).
    #[arg(long)]
    pub join_by_name: bool,
    /// Run over an emulated wide-area network (tests and demos): a JSON spec of places
    /// (loopback addresses), one-way delays and access links, as `experiments
    /// emulation-spec` writes it; --listen must be one of its places' addresses.
    #[arg(long)]
    pub emulate: Option<PathBuf>,
    /// This member's upload capacity, e.g. 20mbps: it then relays no more streams than 90%
    /// of it carries, across every sender, and tells its neighbours when it is full; its
    /// links together send at most 85% of it, so its own media does not queue in front of
    /// what it acknowledges (with --emulate, its place's upload unless given).
    #[arg(long)]
    pub upload: Option<Bandwidth>,
    /// This member's download capacity, e.g. 8mbps: no link to it counts as wider, and each
    /// peer sending it media is told the share of 85% of it that it may fill, so parents
    /// feeding it at once stay under it together (with --emulate, its place's download
    /// unless given).
    #[arg(long)]
    pub download: Option<Bandwidth>,
    /// The routing metric: bandwidth-latency (the default: widest path, then lowest
    /// latency), latency, bandwidth-only or random; every member of a group must use the same.
    #[arg(long, value_parser = parse_metric)]
    pub metric: Option<MetricKind>,
    /// Where browsers' WebRTC media arrives (UDP, one socket for every browser), e.g.
    /// 0.0.0.0:7443; default: the --http address's IP with any free port. Browsers open
    /// http://HTTP/conference/?token=TOKEN (the member prints the link).
    #[arg(long)]
    pub webrtc: Option<SocketAddr>,
    /// The IP browsers are told to send WebRTC media to (e.g. a public address in front of
    /// --webrtc's); needed when --webrtc binds 0.0.0.0.
    #[arg(long)]
    pub advertise: Option<std::net::IpAddr>,
    /// Write every other participant's audio and video received here into this folder, one
    /// file per source and kind, as ffprobe and ffplay read them: MEMBER-N.ivf (VP8, VP9,
    /// AV1), .h264, .opus (Ogg Opus); a browser publishing two sizes (simulcast) has its
    /// whole picture in MEMBER-N.large.ivf.
    #[arg(long)]
    pub record: Option<PathBuf>,
}

/// Why the settings do not make a member.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read or parsed.
    #[error("config file {path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// No group was given.
    #[error("no group: give --group NAME or --invite TOKEN (or `group` in the config file)")]
    NoGroup,
    /// The invite could not be read, or is for another group.
    #[error(transparent)]
    Invite(#[from] InviteError),
    /// The group name is not allowed.
    #[error(transparent)]
    Group(#[from] AdmissionError),
    /// No listen address was given.
    #[error("no listen address: give --listen ADDR (or `listen` in the config file)")]
    NoListen,
    /// `--send` names something other than a synthetic source or a file it reads.
    #[error(
        "--send {0}: give `synthetic:RATE`, `ts:FILE` (H.264 and Opus in MPEG-TS, `ts:-` for \
         stdin, as `ffmpeg ... -c:v libx264 -bf 0 -c:a libopus -f mpegts -` writes it), \
         `ivf:FILE` (VP8 in IVF, as `ffmpeg ... -c:v libvpx -f ivf` writes it) or `ogg:FILE` \
         (Opus in Ogg, as `ffmpeg ... -c:a libopus -f ogg` writes it)"
    )]
    SendKind(String),
    /// `--send` given twice for what one member sends once.
    #[error(
        "--send {0}: a member sends synthetic media alone, one `ts:` file alone, or at most one \
         `ivf:` and one `ogg:` file, and reads standard input for at most one of them"
    )]
    SendTwice(String),
    /// `--send synthetic:RATE` with a rate that is not a bandwidth.
    #[error("--send {spec}: the rate {rate:?} is not a bandwidth: {source}")]
    SendRate {
        /// The whole `--send` value.
        spec: String,
        /// Its rate part.
        rate: String,
        /// Why it is not a bandwidth.
        source: ParseBandwidthError,
    },
    /// A bandwidth setting of the config file (`stream_rate`, `upload`, `download`) is not
    /// a bandwidth.
    #[error("config file: {key} {rate:?}: {source}")]
    FileBandwidth {
        /// The setting.
        key: &'static str,
        /// The value.
        rate: String,
        /// Why it is not a bandwidth.
        source: ParseBandwidthError,
    },
    /// The stream rate is zero.
    #[error("--stream-rate must be above zero")]
    ZeroStreamRate,
    /// `--join-by-name` without a resolver to ask.
    #[error("--join-by-name needs --resolver ADDR")]
    JoinByNameWithoutResolver,
    /// The group and domain do not make an anycast name (the error names both).
    #[error("anycast name {0}")]
    AnycastName(#[from] anycast_resolver::NameError),
}

/// What a file a member sends holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum SentKind {
    /// H.264 video and Opus audio in MPEG-TS.
    Ts,
    /// VP8 video in IVF.
    Ivf,
    /// Opus audio in Ogg.
    Ogg,
}

/// A file a member sends (`-`: standard input).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SentFile {
    /// What it holds.
    pub kind: SentKind,
    /// Where it is read.
    pub path: PathBuf,
}

impl SentFile {
    /// Whether it is read from standard input.
    pub fn is_stdin(&self) -> bool {
        self.path.as_os_str() == "-"
    }
}

/// What one `--send` value asks for.
enum SendValue {
    /// Synthetic media at this rate.
    Synthetic(Bandwidth),
    /// A file.
    File(SentFile),
}

/// One `--send` value.
fn parse_send(spec: &str) -> Result<SendValue, ConfigError> {
    let file = |kind, path: &str| {
        Ok(SendValue::File(SentFile {
            kind,
            path: PathBuf::from(path),
        }))
    };
    match spec.split_once(':') {
        Some(("synthetic", rate)) => {
            rate.parse::<Bandwidth>()
                .map(SendValue::Synthetic)
                .map_err(|source| ConfigError::SendRate {
                    spec: spec.to_owned(),
                    rate: rate.to_owned(),
                    source,
                })
        }
        Some(("ts", path)) if !path.is_empty() => file(SentKind::Ts, path),
        Some(("ivf", path)) if !path.is_empty() => file(SentKind::Ivf, path),
        Some(("ogg", path)) if !path.is_empty() => file(SentKind::Ogg, path),
        _ => Err(ConfigError::SendKind(spec.to_owned())),
    }
}

/// All `--send` values: a synthetic rate alone, an MPEG-TS file alone, or files (one of each
/// kind, at most one of them standard input).
fn parse_sends(specs: &[String]) -> Result<(Option<Bandwidth>, Vec<SentFile>), ConfigError> {
    let mut rate = None;
    let mut files: Vec<SentFile> = Vec::new();
    for spec in specs {
        let twice = || ConfigError::SendTwice(spec.clone());
        match parse_send(spec)? {
            SendValue::Synthetic(r) => {
                if rate.is_some() || !files.is_empty() {
                    return Err(twice());
                }
                rate = Some(r);
            }
            SendValue::File(file) => {
                let clash = files.iter().any(|f| {
                    f.kind == file.kind
                        || f.kind == SentKind::Ts
                        || file.kind == SentKind::Ts
                        || (f.is_stdin() && file.is_stdin())
                });
                if rate.is_some() || clash {
                    return Err(twice());
                }
                files.push(file);
            }
        }
    }
    Ok((rate, files))
}

/// The config file's `send`: one value or a list.
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum SendValues {
    One(String),
    Many(Vec<String>),
}

/// The config file's keys: the flags' names, all optional.
#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    group: Option<String>,
    listen: Option<SocketAddr>,
    #[serde(default)]
    join: Vec<SocketAddr>,
    send: Option<SendValues>,
    http: Option<SocketAddr>,
    key: Option<PathBuf>,
    secret_file: Option<PathBuf>,
    invite: Option<String>,
    stream_rate: Option<String>,
    resolver: Option<SocketAddr>,
    domain: Option<String>,
    #[serde(default)]
    join_by_name: bool,
    emulate: Option<PathBuf>,
    upload: Option<String>,
    download: Option<String>,
    metric: Option<MetricKind>,
    webrtc: Option<SocketAddr>,
    advertise: Option<std::net::IpAddr>,
    record: Option<PathBuf>,
}

/// The config file's bandwidth setting `key`, if given.
fn file_bandwidth(
    key: &'static str,
    value: Option<String>,
) -> Result<Option<Bandwidth>, ConfigError> {
    value
        .map(|rate| {
            rate.parse::<Bandwidth>()
                .map_err(|source| ConfigError::FileBandwidth { key, rate, source })
        })
        .transpose()
}

impl TryFrom<ConferenceArgs> for ConferenceConfig {
    type Error = ConfigError;

    /// The flags over the config file they name (flags win), checked.
    fn try_from(a: ConferenceArgs) -> Result<Self, ConfigError> {
        let file = match &a.config {
            Some(path) => {
                let fail = |reason: String| ConfigError::File {
                    path: path.clone(),
                    reason,
                };
                let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
                toml::from_str::<FileConfig>(&text).map_err(|e| fail(e.to_string()))?
            }
            None => FileConfig::default(),
        };
        let invite = Invite::from_arg_or_env(a.invite.or(file.invite).as_deref())?;
        let group = a
            .group
            .or(file.group)
            .or_else(|| invite.as_ref().map(|i| i.group.clone()))
            .ok_or(ConfigError::NoGroup)?;
        check_group(&group)?;
        if let Some(invite) = &invite {
            invite.check_group(Some(&group))?;
        }
        let listen = a.listen.or(file.listen).ok_or(ConfigError::NoListen)?;
        let join = if a.join.is_empty() { file.join } else { a.join };
        let send = if a.send.is_empty() {
            match file.send {
                Some(SendValues::One(one)) => vec![one],
                Some(SendValues::Many(many)) => many,
                None => Vec::new(),
            }
        } else {
            a.send
        };
        let (send_rate, send_files) = parse_sends(&send)?;
        let key_file = a
            .key
            .or(file.key)
            .unwrap_or_else(|| PathBuf::from(format!(".esm/{group}-{}.key", listen.port())));
        let file_rate = file_bandwidth("stream_rate", file.stream_rate)?;
        let stream_rate = a
            .stream_rate
            .or(file_rate)
            .or(send_rate)
            .unwrap_or_else(default_stream_rate);
        if stream_rate.bps() == 0 {
            return Err(ConfigError::ZeroStreamRate);
        }
        let file_upload = file_bandwidth("upload", file.upload)?;
        let upload = a.upload.or(file_upload);
        let file_download = file_bandwidth("download", file.download)?;
        let download = a.download.or(file_download);
        let resolver = a.resolver.or(file.resolver);
        let anycast_domain = a.domain.or(file.domain).unwrap_or_else(default_domain);
        let join_by_name = a.join_by_name || file.join_by_name;
        if join_by_name && resolver.is_none() {
            return Err(ConfigError::JoinByNameWithoutResolver);
        }
        Ok(Self {
            group,
            listen,
            join,
            send_rate,
            send_files,
            http: a.http.or(file.http),
            key_file,
            secret_file: a.secret_file.or(file.secret_file),
            invite,
            stream_rate,
            resolver,
            anycast_domain,
            join_by_name,
            emulate: a.emulate.or(file.emulate),
            upload,
            download,
            metric: a.metric.or(file.metric).unwrap_or_else(default_metric),
            webrtc: a.webrtc.or(file.webrtc),
            advertise: a.advertise.or(file.advertise),
            record: a.record.or(file.record),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> ConferenceArgs {
        ConferenceArgs {
            config: None,
            group: Some("talk".into()),
            listen: Some("127.0.0.1:7000".parse().unwrap()),
            join: Vec::new(),
            send: Vec::new(),
            http: None,
            key: None,
            secret_file: None,
            invite: None,
            stream_rate: None,
            resolver: None,
            domain: None,
            join_by_name: false,
            emulate: None,
            upload: None,
            download: None,
            metric: None,
            webrtc: None,
            advertise: None,
            record: None,
        }
    }

    #[test]
    fn flags_make_a_config_with_the_documented_defaults() {
        let c = ConferenceConfig::try_from(ConferenceArgs {
            send: vec!["synthetic:300kbps".into()],
            ..args()
        })
        .unwrap();
        assert_eq!(c.send_rate, Some(Bandwidth::from_kbps(300)));
        // The stream rate follows what the member sends unless given.
        assert_eq!(c.stream_rate, Bandwidth::from_kbps(300));
        assert_eq!(c.key_file, PathBuf::from(".esm/talk-7000.key"));
        assert_eq!(c.anycast_domain, DEFAULT_DOMAIN);
        assert_eq!(c.metric, MetricKind::BandwidthLatency);
    }

    #[test]
    fn metrics_parse_by_their_kebab_case_names() {
        assert_eq!(parse_metric("latency"), Ok(MetricKind::Latency));
        assert_eq!(
            parse_metric("bandwidth-latency"),
            Ok(MetricKind::BandwidthLatency)
        );
        let wrong = parse_metric("fastest").unwrap_err();
        assert!(wrong.contains("\"fastest\" is not a metric"), "{wrong}");
    }

    #[test]
    fn wrong_settings_are_refused_with_what_to_do() {
        let no_group = ConferenceConfig::try_from(ConferenceArgs {
            group: None,
            ..args()
        });
        assert!(matches!(no_group, Err(ConfigError::NoGroup)));
        let file = ConferenceConfig::try_from(ConferenceArgs {
            send: vec!["file:talk.mp4".into()],
            ..args()
        })
        .unwrap_err();
        assert!(
            file.to_string()
                .contains("give `synthetic:RATE`, `ts:FILE`"),
            "{file}"
        );
        let ts = ConferenceConfig::try_from(ConferenceArgs {
            send: vec!["ts:-".into()],
            ..args()
        })
        .unwrap();
        assert_eq!(
            ts.send_files,
            vec![SentFile {
                kind: SentKind::Ts,
                path: PathBuf::from("-")
            }]
        );
        let ivf = ConferenceConfig::try_from(ConferenceArgs {
            send: vec!["ivf:talk.ivf".into()],
            ..args()
        })
        .unwrap();
        assert_eq!(
            ivf.send_files,
            vec![SentFile {
                kind: SentKind::Ivf,
                path: PathBuf::from("talk.ivf")
            }]
        );
        assert_eq!(ivf.send_rate, None);
        let both = ConferenceConfig::try_from(ConferenceArgs {
            send: vec!["ivf:-".into(), "ogg:talk.ogg".into()],
            ..args()
        })
        .unwrap();
        let kinds: Vec<SentKind> = both.send_files.iter().map(|f| f.kind).collect();
        assert_eq!(kinds, vec![SentKind::Ivf, SentKind::Ogg]);
        for twice in [
            vec!["ogg:a.ogg", "ogg:b.ogg"],
            vec!["ivf:-", "ogg:-"],
            vec!["synthetic:300kbps", "ogg:a.ogg"],
            vec!["ivf:a.ivf", "synthetic:300kbps"],
            vec!["ts:a.ts", "ogg:b.ogg"],
            vec!["ivf:a.ivf", "ts:-"],
        ] {
            let err = ConferenceConfig::try_from(ConferenceArgs {
                send: twice.iter().map(|s| s.to_string()).collect(),
                ..args()
            })
            .unwrap_err();
            assert!(matches!(err, ConfigError::SendTwice(_)), "{twice:?}: {err}");
        }
        let rate = ConferenceConfig::try_from(ConferenceArgs {
            send: vec!["synthetic:fast".into()],
            ..args()
        })
        .unwrap_err();
        assert!(matches!(rate, ConfigError::SendRate { .. }), "{rate}");
        let by_name = ConferenceConfig::try_from(ConferenceArgs {
            join_by_name: true,
            ..args()
        });
        assert!(matches!(
            by_name,
            Err(ConfigError::JoinByNameWithoutResolver)
        ));
    }

    #[test]
    fn a_config_files_bad_bandwidth_is_named_by_its_setting() {
        let path = std::env::temp_dir().join(format!("esm-config-{}.toml", std::process::id()));
        std::fs::write(&path, "upload = \"20mbps\"\ndownload = \"fast\"\n").unwrap();
        let err = ConferenceConfig::try_from(ConferenceArgs {
            config: Some(path.clone()),
            ..args()
        })
        .unwrap_err();
        let _ = std::fs::remove_file(&path);
        assert!(
            matches!(&err, ConfigError::FileBandwidth { key: "download", rate, .. } if rate == "fast"),
            "{err}"
        );
        assert!(
            err.to_string()
                .starts_with("config file: download \"fast\""),
            "{err}"
        );
    }

    #[test]
    fn a_config_file_sends_one_value_or_a_list_and_flags_override_it() {
        let path = std::env::temp_dir().join(format!("esm-send-{}.toml", std::process::id()));
        let read = |text: &str, send: Vec<String>| {
            std::fs::write(&path, text).unwrap();
            ConferenceConfig::try_from(ConferenceArgs {
                config: Some(path.clone()),
                send,
                ..args()
            })
        };
        let one = read("send = \"ogg:talk.ogg\"\n", Vec::new()).unwrap();
        assert_eq!(one.send_files.len(), 1);
        assert_eq!(one.send_files[0].kind, SentKind::Ogg);
        let list = read("send = [\"ivf:talk.ivf\", \"ogg:talk.ogg\"]\n", Vec::new()).unwrap();
        assert_eq!(list.send_files.len(), 2);
        let flag = read(
            "send = [\"ivf:talk.ivf\", \"ogg:talk.ogg\"]\n",
            vec!["synthetic:200kbps".into()],
        )
        .unwrap();
        let _ = std::fs::remove_file(&path);
        assert!(flag.send_files.is_empty());
        assert_eq!(flag.send_rate, Some(Bandwidth::from_kbps(200)));
    }
}
