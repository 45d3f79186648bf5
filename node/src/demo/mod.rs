//! `esm demo`: the main job on built-in defaults. Starts an anycast resolver and 8
//! `esm conference` processes (each with its own QUIC endpoint, key and status page) in the
//! cities of an emulated wide-area network (`data/emulation/demo-world.json`, built in; or
//! `--world`, or `--loopback` for none), the 3 with the largest uploads sending synthetic
//! media; each member registers with the resolver and joins by looking the group's name up
//! there (the first founds the group), kills the busiest relay (not the slow member; a source
//! only when no other member relays, see `crash_victim`) with SIGKILL mid-run, and prints a
//! live table and a per-receiver summary (rate, loss, delay, recovery time) read from the
//! members' `/status`. Writes `summary.json`, `world.json` and `mesh.svg` (the mesh and each
//! source's tree, members at their cities) under `--out`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use narada::MetricKind;
use overlay_core::Bandwidth;
use serde::Serialize;

mod crash_victim;
pub mod layers;
pub mod picture;
mod printout;
pub mod process;

use crate::app::anycast::{self, DEFAULT_DOMAIN, Lookup};
use crate::app::conference::ConferenceStatus;
use crate::transport::admission::AdmissionError;
use crate::transport::emulation::{Emulation, EmulationError};
use crate::transport::identity::{Identity, IdentityError, write_private};
use crate::transport::invite::{Invite, InviteError};
use crash_victim::{crash_victim, routes_relayed};
use layers::{LayerLedger, LayerShares};
use picture::{MapPlace, mesh_svg};
use process::{MemberProcess, MemberSpec, ProcessError, current_esm, key_path};

/// Why the demo stopped.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The arguments are out of range.
    #[error("{0}")]
    Arguments(&'static str),
    /// An identity could not be made.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// The demo's group secret.
    #[error(transparent)]
    Admission(#[from] AdmissionError),
    /// The demo's invite.
    #[error(transparent)]
    Invite(#[from] InviteError),
    /// The demo's anycast name.
    #[error(transparent)]
    Name(#[from] anycast_resolver::NameError),
    /// A member process.
    #[error(transparent)]
    Process(#[from] ProcessError),
    /// The founder never appeared at the resolver.
    #[error("the founder never registered with the resolver: {0}")]
    NotRegistered(String),
    /// An output file.
    #[error("{}: {source}", path.display())]
    Write {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The summary could not be encoded.
    #[error("summary.json: {0}")]
    Json(#[from] serde_json::Error),
    /// The world cannot be used.
    #[error(transparent)]
    World(#[from] EmulationError),
}

/// Arguments of `esm demo`.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// Members.
    #[arg(long, default_value_t = 8)]
    pub members: usize,
    /// Of them, how many send.
    #[arg(long, default_value_t = 3)]
    pub senders: usize,
    /// Each sender's rate.
    #[arg(long, default_value = "500kbps")]
    pub rate: Bandwidth,
    /// Length of the run, seconds.
    #[arg(long, default_value_t = 30)]
    pub seconds: u64,
    /// When to crash a member, seconds from the start (0: never).
    #[arg(long, default_value_t = 16)]
    pub crash_at: u64,
    /// Where to write `summary.json` and `mesh.svg`.
    #[arg(long, default_value = "out/demo")]
    pub out: PathBuf,
    /// The emulated world the members live in (an `experiments emulation-spec` file; default:
    /// the built-in one, 8 cities on five continents, the last on a 1.2 Mbit/s download).
    #[arg(long)]
    pub world: Option<PathBuf>,
    /// No emulated world: every member on 127.0.0.1, every path equally fast.
    #[arg(long, conflicts_with = "world")]
    pub loopback: bool,
    /// The members' routing metric (bandwidth-latency, latency, bandwidth-only or random).
    #[arg(long, default_value = "bandwidth-latency", value_parser = crate::app::conference::config::parse_metric)]
    pub metric: MetricKind,
    /// Start of the measurement window, seconds from the start (0: half-way to the crash,
    /// or to the end without one); the window ends at the crash (or the end). Its mean
    /// rates and delays, and its control and media bytes, go into `summary.json`.
    #[arg(long, default_value_t = 0)]
    pub measure_from: u64,
}

/// The last second of the measurement window whose frames are not compared (they may still be
/// on their way at its end: a playout waits at most 700 ms).
const SETTLE: Duration = Duration::from_secs(1);

/// The built-in world: `data/emulation/demo-world.json` (see `data/README.md`).
const BUILT_IN_WORLD: &str = include_str!("../../../data/emulation/demo-world.json");

/// One receiver's figures for one source at the end of the run.
#[derive(Debug, Clone, Serialize)]
pub struct ReceiverFigures {
    /// The receiver.
    pub receiver: String,
    /// The source.
    pub source: String,
    /// The receiver's city (empty on loopback).
    pub city: String,
    /// The receiver's download cannot carry every source in full (its share is judged apart).
    pub slow: bool,
    /// Receive rate at the end, kbit/s.
    pub rate_kbps: f64,
    /// Its fraction of the sending rate.
    pub rate_fraction: f64,
    /// Loss over the last two seconds.
    pub loss: f64,
    /// Median one-way delay, milliseconds.
    pub delay_ms: f64,
    /// The longest stall of this source at this receiver after the crash, seconds (none
    /// without a crash, or when the crashed member was this source).
    pub recovery_s: Option<f64>,
    /// The receiver's place in the world (its member number).
    pub receiver_index: usize,
    /// The source's place in the world.
    pub source_index: usize,
    /// Media received in time to play over the measurement window (payload bytes that arrived
    /// in it over its length, as the simulator counts), kbit/s (none: polled once or never).
    pub window_rate_kbps: Option<f64>,
    /// Mean one-way delay of the packets that played in the window, milliseconds.
    pub window_delay_ms: Option<f64>,
    /// The tree's path from the receiver up to the source at the window's end (member
    /// numbers, receiver first; each member's next hop towards the source, which is its
    /// parent in the source's reverse-path tree); it ends early where a route was unknown.
    pub window_path: Vec<usize>,
    /// The share of each layer the source sent that played in time here over the window.
    pub window_on_time: Option<LayerShares>,
    /// The share that arrived at all (in time or late) over the window.
    pub window_arrived: Option<LayerShares>,
    /// How much the receiver had delayed its playout of this source beyond the first 400 ms
    /// by the end, milliseconds.
    pub playout_added_ms: f64,
}

/// `summary.json` of the demo.
#[derive(Debug, Clone, Serialize)]
pub struct DemoSummary {
    /// Members started.
    pub members: usize,
    /// Senders.
    pub senders: Vec<String>,
    /// The member crashed, if any.
    pub crashed: Option<String>,
    /// Its place in the world (its member number).
    pub crashed_index: Option<usize>,
    /// Per receiver and source.
    pub receivers: Vec<ReceiverFigures>,
    /// The worst recovery time, seconds.
    pub worst_recovery_s: Option<f64>,
    /// The lowest rate fraction at the end, over receivers whose download carries every
    /// source (a crashed source's stream left out).
    pub min_rate_fraction: f64,
    /// The lowest rate fraction at the end at a receiver whose download cannot carry every
    /// source (rate adaptation gives it the keyframes and base layer first), if any (a
    /// crashed source's stream left out).
    pub slow_min_rate_fraction: Option<f64>,
    /// The lowest share of each layer that played in time over the window, at the receivers
    /// whose download cannot carry every source (none: no such receiver, or not measured).
    pub slow_on_time: Option<LayerShares>,
    /// The same at the other receivers.
    pub others_on_time: Option<LayerShares>,
    /// The routing metric.
    pub metric: MetricKind,
    /// Each sender's rate, kbit/s.
    pub rate_kbps: f64,
    /// The measurement window, seconds from the start.
    pub window_s: (f64, f64),
    /// Control bytes the members sent in the window (protocol messages other than media).
    pub control_bytes: u64,
    /// Media bytes the members sent in the window (sources and relays).
    pub data_bytes: u64,
    /// Control over media bytes in the window.
    pub overhead_ratio: f64,
}

/// The path from `receiver` up to the source `src` along each member's next hop towards it,
/// as the members' last statuses say (receiver first; cut where a hop is unknown or loops).
fn tree_path(
    ids: &[String],
    statuses: &[Option<ConferenceStatus>],
    receiver: usize,
    src: &str,
) -> Vec<usize> {
    let mut path = vec![receiver];
    let mut at = receiver;
    while ids[at] != src && path.len() <= ids.len() {
        let next = statuses[at]
            .as_ref()
            .and_then(|s| s.routes.iter().find(|r| r.dest == src))
            .and_then(|r| r.next_hop.as_deref())
            .and_then(|hop| ids.iter().position(|id| id == hop));
        match next {
            Some(n) if !path.contains(&n) => {
                path.push(n);
                at = n;
            }
            _ => break,
        }
    }
    path
}

/// What had arrived from a source at a receiver in time to play, by a poll.
#[derive(Clone, Copy, Debug)]
struct Arrived {
    at: Instant,
    bytes: u64,
    packets: u64,
    delay_total_ms: f64,
}

/// Control and media bytes a member has sent.
type BytesSent = (u64, u64);

/// A metric's name as `--metric` takes it: its serde name, which `--metric` parses.
fn metric_name(metric: MetricKind) -> String {
    serde_json::to_value(metric)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn short(hex: &str) -> &str {
    &hex[..hex.len().min(8)]
}

/// Runs the demo.
pub async fn run(args: DemoArgs) -> Result<(), DemoError> {
    if args.members < 2 || args.senders == 0 || args.senders > args.members {
        return Err(DemoError::Arguments(
            "--members must be at least 2 and --senders between 1 and --members",
        ));
    }
    if args.seconds < 5 {
        return Err(DemoError::Arguments("--seconds must be at least 5"));
    }
    // The group's invite, as `esm invite --group demo --out FILE` makes it: members join with
    // it (`--invite FILE`), the resolver takes its secret from the environment.
    let invite = Invite::new("demo", Invite::generate_secret()?, Vec::new())?;
    let secret = String::from_utf8_lossy(invite.secret()).into_owned();
    let exe = current_esm()?;
    let keys = args.out.join("keys");
    std::fs::create_dir_all(&keys).map_err(|source| DemoError::Write {
        path: keys.clone(),
        source,
    })?;
    // The world: each member's place (address, city, access link) and the delays between them.
    let world = if args.loopback {
        None
    } else {
        let emulation = match &args.world {
            Some(path) => Emulation::load(path)?,
            None => Emulation::parse(BUILT_IN_WORLD)?,
        };
        if emulation.places().len() < args.members {
            return Err(DemoError::Arguments(
                "the world has fewer places than --members: give a larger --world, or --loopback",
            ));
        }
        let path = args.out.join("world.json");
        let json = serde_json::to_string_pretty(emulation.spec())?;
        std::fs::write(&path, json).map_err(|source| DemoError::Write {
            path: path.clone(),
            source,
        })?;
        Some((emulation, path))
    };
    let started = Instant::now();
    // The same moment on the wall clock the members stamp their media with.
    let started_unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let resolver =
        MemberProcess::start_resolver(&exe, "demo", &secret, &keys.join("resolver.key"), &[])
            .await?;
    let admission = invite.admission()?;
    let invite_file = keys.join("demo.invite");
    let _ = std::fs::remove_file(&invite_file);
    write_private(&invite_file, format!("{}\n", invite.token()).as_bytes()).map_err(|source| {
        DemoError::Write {
            path: invite_file.clone(),
            source,
        }
    })?;
    let name = anycast_resolver::AnycastName::new("demo", DEFAULT_DOMAIN)?;
    println!(
        "anycast resolver {} on {}: members join by looking up {name}",
        short(&resolver.id),
        resolver.quic
    );
    let mut members: Vec<Option<MemberProcess>> = Vec::new();
    // Senders: in a world, the members with the largest uploads (a conference's presenters
    // sit on good links; an ADSL uplink could not feed even one child); on loopback, spread.
    let sender_set: Vec<usize> = match &world {
        Some((e, _)) => {
            let mut by_upload: Vec<usize> = (0..args.members).collect();
            by_upload.sort_by_key(|&i| (std::cmp::Reverse(e.place(i).up_bps), i));
            by_upload.truncate(args.senders);
            by_upload
        }
        None => {
            let every = (args.members / args.senders).max(1);
            (0..args.members)
                .filter(|i| i.is_multiple_of(every) && i / every < args.senders)
                .collect()
        }
    };
    let is_sender = |i: usize| sender_set.contains(&i);
    // A member whose download cannot carry every other sender's stream with a tenth to spare.
    let slow = |i: usize| {
        world.as_ref().is_some_and(|(e, _)| {
            let streams = sender_set.iter().filter(|&&s| s != i).count() as f64;
            (e.place(i).down_bps as f64) < streams * args.rate.bps_f64() * 1.1
        })
    };
    let cities: Vec<String> = (0..args.members)
        .map(|i| {
            world
                .as_ref()
                .map_or_else(String::new, |(e, _)| e.place(i).name.clone())
        })
        .collect();
    let map: Option<Vec<MapPlace>> = world.as_ref().and_then(|(e, _)| {
        e.places()[..args.members]
            .iter()
            .map(|p| {
                Some(MapPlace {
                    name: p.name.clone(),
                    lat: p.lat?,
                    lon: p.lon?,
                })
            })
            .collect()
    });
    match &world {
        None => println!(
            "esm demo: {} member processes on loopback, {} sending {} each; a SIGKILL at {} s; {} s in all",
            args.members, args.senders, args.rate, args.crash_at, args.seconds
        ),
        Some((e, _)) => {
            println!(
                "esm demo: {} member processes in {} cities over an emulated wide-area network (delays from WonderNetwork's measured RTTs, access links drawn as SimBlock's), {} sending {} each; a SIGKILL at {} s; {} s in all",
                args.members, args.members, args.senders, args.rate, args.crash_at, args.seconds
            );
            for i in 0..args.members {
                let p = e.place(i);
                println!(
                    "  {:<15} {:<14} up {:>5.1} Mbit/s down {:>5.1} Mbit/s{}",
                    p.ip.to_string(),
                    p.name,
                    p.up_bps as f64 / 1e6,
                    p.down_bps as f64 / 1e6,
                    if is_sender(i) { "  sends" } else { "" }
                );
            }
        }
    }
    let looker = Identity::generate()?;
    for i in 0..args.members {
        let spec = MemberSpec {
            exe: exe.clone(),
            group: "demo".into(),
            // The invite holds it.
            secret: String::new(),
            key: key_path(&keys, i),
            join: Vec::new(),
            send: is_sender(i).then(|| format!("synthetic:{}", args.rate)),
            port: 0,
            resolver: Some(resolver.quic),
            ip: world.as_ref().map_or_else(
                || std::net::Ipv4Addr::LOCALHOST.into(),
                |(e, _)| e.place(i).ip,
            ),
            emulate: world.as_ref().map(|(_, path)| path.clone()),
            flags: vec![
                "--invite".into(),
                invite_file.display().to_string(),
                "--stream-rate".into(),
                args.rate.to_string(),
                "--metric".into(),
                metric_name(args.metric),
            ],
        };
        let m = MemberProcess::start(&spec).await?;
        members.push(Some(m));
        if i == 0 {
            // The founder must be registered before anyone looks the group up, or the next
            // member would found a second group.
            let deadline = Instant::now() + Duration::from_secs(15);
            loop {
                let found =
                    anycast::resolve(&looker, admission.clone(), resolver.quic, &name).await;
                if let Ok(Lookup::Found { address, .. }) = found {
                    println!("{name} answers {address}: the founder is registered");
                    break;
                }
                if Instant::now() > deadline {
                    return Err(DemoError::NotRegistered(format!("{found:?}")));
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let ids: Vec<String> = members.iter().flatten().map(|m| m.id.clone()).collect();
    let senders: Vec<String> = (0..args.members)
        .filter(|&i| is_sender(i))
        .map(|i| ids[i].clone())
        .collect();
    let end = Duration::from_secs(args.seconds);
    let crash_at = (args.crash_at > 0).then(|| Duration::from_secs(args.crash_at));
    let mut crashed: Option<usize> = None;
    let mut crash_time: Option<Instant> = None;
    // (receiver, source) -> (packets, when they last grew, longest stall after the crash)
    let mut progress: BTreeMap<(usize, String), (u64, Instant, f64)> = BTreeMap::new();
    let mut last_table = Instant::now();
    let mut last_status: Vec<Option<ConferenceStatus>> = vec![None; args.members];
    let window_end = crash_at.unwrap_or(end).min(end);
    let window_start = if args.measure_from > 0 {
        Duration::from_secs(args.measure_from).min(window_end)
    } else {
        window_end / 2
    };
    // (receiver, source) -> what had arrived at its first and last poll inside the window.
    let mut window: BTreeMap<(usize, String), [Arrived; 2]> = BTreeMap::new();
    // Per member: (control, data) bytes sent at its first and last poll inside the window.
    let mut bytes: BTreeMap<usize, [BytesSent; 2]> = BTreeMap::new();
    // (receiver, source) -> the tree's path up to the source at the window's last poll.
    let mut window_paths: BTreeMap<(usize, String), Vec<usize>> = BTreeMap::new();
    let mut layers = LayerLedger::default();
    while started.elapsed() < end {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = Instant::now();
        for (i, m) in members.iter().enumerate() {
            let Some(m) = m else { continue };
            let Ok(status) = m.status().await else {
                continue;
            };
            let in_window = (window_start..window_end).contains(&started.elapsed());
            if is_sender(i) {
                layers.record_sent(&ids[i], &status.sent_by_media_second);
            }
            for (src, s) in &status.sources {
                if senders.contains(src) {
                    layers.record_received(i, src, &s.by_media_second);
                }
            }
            if in_window {
                let c = &status.transport.counters;
                let sent = (c.control_bytes_sent, c.data_bytes_sent);
                bytes.entry(i).or_insert([sent, sent])[1] = sent;
                for src in senders.iter().filter(|s| **s != ids[i]) {
                    let s = status.sources.get(src).cloned().unwrap_or_default();
                    let arrived = Arrived {
                        at: now,
                        bytes: s.played_bytes,
                        packets: s.played_packets,
                        delay_total_ms: s.played_delay_total_ms,
                    };
                    window.entry((i, src.clone())).or_insert([arrived; 2])[1] = arrived;
                }
            }
            for src in &senders {
                if *src == ids[i] || crashed.is_some_and(|c| ids[c] == *src) {
                    continue;
                }
                let packets = status.sources.get(src).map_or(0, |s| s.packets);
                let entry = progress
                    .entry((i, src.clone()))
                    .or_insert((packets, now, 0.0));
                if packets > entry.0 {
                    entry.0 = packets;
                    entry.1 = now;
                } else if let Some(t) = crash_time {
                    let since = entry.1.max(t);
                    entry.2 = entry.2.max(now.duration_since(since).as_secs_f64());
                }
            }
            last_status[i] = Some(status);
        }
        if (window_start..window_end).contains(&started.elapsed()) {
            for i in 0..args.members {
                for src in senders.iter().filter(|s| **s != ids[i]) {
                    let path = tree_path(&ids, &last_status, i, src);
                    window_paths.insert((i, src.clone()), path);
                }
            }
        }
        if let (Some(at), None) = (crash_at, crashed)
            && started.elapsed() >= at
        {
            // Not the slow member: what it receives is the demo's other figure.
            let eligible = |i: usize| !slow(i) && members[i].is_some();
            if let Some(v) = crash_victim(&ids, &senders, &last_status, eligible)
                && let Some(mut m) = members[v].take()
            {
                let relayed = routes_relayed(&ids, &senders, &last_status, v);
                let role = if is_sender(v) {
                    "a source: its own stream ends, the others' go round it"
                } else if relayed == 0 {
                    "no member routes a source through it: the crash cuts nobody off"
                } else {
                    "a relay"
                };
                println!(
                    "{:>5.1} s  SIGKILL to member {} ({} neighbours, next hop of {} routes to other sources; {role})",
                    started.elapsed().as_secs_f64(),
                    short(&ids[v]),
                    last_status[v].as_ref().map_or(0, |s| s.neighbours.len()),
                    relayed
                );
                m.kill().await;
                crashed = Some(v);
                crash_time = Some(Instant::now());
            }
        }
        if now.duration_since(last_table) >= Duration::from_secs(3) {
            last_table = now;
            printout::print_table(started, &ids, &cities, &senders, &last_status, crashed);
        }
    }
    // The layers are compared over the frames captured in whole seconds inside the window,
    // but for its last second: what was captured then may still have been on its way.
    let window_seconds = {
        let at = |d: Duration| started_unix + d;
        at(window_start).as_secs_f64().ceil() as u64
            ..at(window_end.saturating_sub(SETTLE)).as_secs()
    };
    // A source crashed (when no relay that does not send carried anything): its stream ended.
    let crashed_source = crashed.filter(|&c| is_sender(c)).map(|c| &ids[c]);
    let mut receivers = Vec::new();
    for (i, status) in last_status.iter().enumerate() {
        if crashed == Some(i) {
            continue;
        }
        let Some(status) = status else { continue };
        for src in &senders {
            if *src == ids[i] {
                continue;
            }
            let s = status.sources.get(src).cloned().unwrap_or_default();
            let w = window.get(&(i, src.clone()));
            let window_delay_ms = w.and_then(|[a, b]| {
                let packets = b.packets.saturating_sub(a.packets);
                (packets > 0).then(|| (b.delay_total_ms - a.delay_total_ms) / packets as f64)
            });
            let shares = layers.shares(i, src, window_seconds.clone());
            receivers.push(ReceiverFigures {
                window_on_time: shares.map(|s| s.0),
                window_arrived: shares.map(|s| s.1),
                receiver_index: i,
                source_index: ids.iter().position(|x| x == src).unwrap_or(usize::MAX),
                window_rate_kbps: w.and_then(|[a, b]| {
                    let seconds = b.at.duration_since(a.at).as_secs_f64();
                    (seconds > 0.0)
                        .then(|| b.bytes.saturating_sub(a.bytes) as f64 * 8.0 / seconds / 1e3)
                }),
                window_delay_ms,
                playout_added_ms: s.playout_added_ms,
                receiver: ids[i].clone(),
                source: src.clone(),
                city: cities[i].clone(),
                slow: slow(i),
                rate_kbps: s.rate_kbps,
                rate_fraction: s.rate_kbps * 1e3 / args.rate.bps_f64().max(1.0),
                loss: s.loss,
                delay_ms: s.delay_ms,
                // The crashed source's own stream ended: there is nothing to recover.
                recovery_s: crash_time
                    .filter(|_| Some(src) != crashed_source)
                    .map(|_| progress.get(&(i, src.clone())).map_or(f64::NAN, |p| p.2)),
                window_path: window_paths.remove(&(i, src.clone())).unwrap_or_default(),
            });
        }
    }
    let (control_bytes, data_bytes) = bytes.values().fold((0, 0), |acc, [first, last]| {
        (
            acc.0 + last.0.saturating_sub(first.0),
            acc.1 + last.1.saturating_sub(first.1),
        )
    });
    let summary = DemoSummary {
        metric: args.metric,
        rate_kbps: args.rate.bps_f64() / 1e3,
        window_s: (window_start.as_secs_f64(), window_end.as_secs_f64()),
        control_bytes,
        data_bytes,
        overhead_ratio: control_bytes as f64 / data_bytes.max(1) as f64,
        members: args.members,
        senders: senders.clone(),
        crashed: crashed.map(|c| ids[c].clone()),
        crashed_index: crashed,
        worst_recovery_s: receivers
            .iter()
            .filter_map(|r| r.recovery_s)
            .reduce(f64::max),
        min_rate_fraction: receivers
            .iter()
            .filter(|r| !r.slow && Some(&r.source) != crashed_source)
            .map(|r| r.rate_fraction)
            .fold(f64::INFINITY, f64::min),
        slow_min_rate_fraction: receivers
            .iter()
            .filter(|r| r.slow && Some(&r.source) != crashed_source)
            .map(|r| r.rate_fraction)
            .reduce(f64::min),
        slow_on_time: receivers
            .iter()
            .filter(|r| r.slow)
            .filter_map(|r| r.window_on_time)
            .reduce(LayerShares::min),
        others_on_time: receivers
            .iter()
            .filter(|r| !r.slow)
            .filter_map(|r| r.window_on_time)
            .reduce(LayerShares::min),
        receivers,
    };
    printout::print_summary(&summary, args.rate, &ids, &cities);
    let write = |path: &std::path::Path, bytes: &[u8]| {
        std::fs::write(path, bytes).map_err(|source| DemoError::Write {
            path: path.to_owned(),
            source,
        })
    };
    std::fs::create_dir_all(&args.out).map_err(|source| DemoError::Write {
        path: args.out.clone(),
        source,
    })?;
    let json = serde_json::to_string_pretty(&summary)?;
    let summary_path = args.out.join("summary.json");
    write(&summary_path, json.as_bytes())?;
    let svg = mesh_svg(&ids, &senders, &last_status, crashed, map.as_deref());
    let svg_path = args.out.join("mesh.svg");
    write(&svg_path, svg.as_bytes())?;
    println!(
        "wrote {} and {}",
        summary_path.display(),
        svg_path.display()
    );
    for mut m in members.into_iter().flatten() {
        m.kill().await;
    }
    let mut resolver = resolver;
    resolver.kill().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A status whose routes go to `(destination, next hop)`.
    fn status(routes: &[(&str, &str)]) -> Option<ConferenceStatus> {
        crash_victim::tests::status(routes, 0)
    }

    #[test]
    fn metric_names_are_what_metric_parses() {
        for m in [
            MetricKind::Latency,
            MetricKind::BandwidthLatency,
            MetricKind::BandwidthOnly,
            MetricKind::Random,
        ] {
            let name = metric_name(m);
            assert_eq!(
                crate::app::conference::config::parse_metric(&name),
                Ok(m),
                "{name}"
            );
        }
        assert_eq!(metric_name(MetricKind::Latency), "latency");
    }

    #[test]
    fn tree_paths_follow_next_hops_and_stop_at_loops_and_gaps() {
        let ids: Vec<String> = ["s", "a", "b", "c"].map(String::from).to_vec();
        // b -> a -> s; c's next hop is not a member.
        let statuses = vec![
            status(&[]),
            status(&[("s", "s")]),
            status(&[("s", "a"), ("x", "c")]),
            status(&[("s", "d")]),
        ];
        assert_eq!(tree_path(&ids, &statuses, 2, "s"), vec![2, 1, 0]);
        // c's next hop is no member: the path stops there.
        assert_eq!(tree_path(&ids, &statuses, 3, "s"), vec![3]);
        let looping = vec![
            status(&[]),
            status(&[("s", "b")]),
            status(&[("s", "a")]),
            status(&[]),
        ];
        assert_eq!(tree_path(&ids, &looping, 1, "s"), vec![1, 2]);
    }
}
