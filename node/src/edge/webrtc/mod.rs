//! The browser edge of a conference member: WebRTC sessions with browsers, ffmpeg or OBS
//! (WHIP to publish, WHEP to watch), all on one UDP socket, ICE-lite, through str0m's sans-IO
//! `Rtc` (one per session) driven by one task.
//!
//! A publishing session's frames go out as [`EdgeEvent::Published`] (the member cuts them into
//! media packets for the overlay) and straight to this member's own watchers of that source;
//! frames of other members' sources come in by [`BrowserEdge::forward`]. Each source's current
//! keyframe group is kept (bounded), so a browser that starts watching decodes at once.
//!
//! Limits: at most [`MAX_SESSIONS`] sessions and [`media::MAX_PUBLISHERS`] publishers (the
//! last number is a sent file's, `--send ivf:FILE` / `ogg:FILE`); a
//! session that never connects ends after [`CONNECT_TIMEOUT`]; datagrams that belong to no
//! session are dropped (counted, never logged with their bytes).

mod core;
mod encoding_choice;
#[cfg(test)]
mod in_memory_tests;
mod layer_choice;
mod rid_ladder;
mod session;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use media::{Frame, MAX_PUBLISHERS};
use overlay_core::NodeId;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};

pub use core::EdgeCore;
pub use session::Role;

/// Sessions open at once at most.
pub const MAX_SESSIONS: usize = 64;
/// A session whose ICE and DTLS are not up this long after its offer ends.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// The publishing browser is also asked for a keyframe this often, a safety net under the
/// requests that travel up the trees (a watcher whose request was lost still recovers, and a
/// source's kept group stays short).
pub const KEYFRAME_INTERVAL: Duration = Duration::from_secs(10);

/// A source of the conference: a member and one of its publishers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SourceKey {
    /// The member the publisher sends through.
    pub member: NodeId,
    /// The publisher's number at that member.
    pub publisher: u16,
}

impl std::fmt::Display for SourceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.member.to_hex(), self.publisher)
    }
}

impl std::str::FromStr for SourceKey {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (member, publisher) = s
            .split_once('-')
            .ok_or_else(|| format!("a source is MEMBER-PUBLISHER, not {s:?}"))?;
        let member = member
            .parse::<NodeId>()
            .map_err(|e| format!("source member: {e}"))?;
        let publisher = publisher
            .parse::<u16>()
            .ok()
            .filter(|&p| p < MAX_PUBLISHERS)
            .ok_or_else(|| format!("source publisher {publisher:?}"))?;
        Ok(Self { member, publisher })
    }
}

/// Why a session could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EdgeError {
    /// The offer was not usable.
    #[error("{0}")]
    Offer(String),
    /// Too many sessions or publishers.
    #[error("{0}")]
    Full(String),
    /// The edge has stopped.
    #[error("the browser edge has stopped")]
    Stopped,
}

/// A session's number at this member.
pub type SessionId = u64;

/// A session just opened.
#[derive(Clone, Debug)]
pub struct Opened {
    /// Its number.
    pub id: SessionId,
    /// The SDP answer.
    pub answer: String,
    /// The source it publishes, if it publishes.
    pub publishes: Option<SourceKey>,
}

/// What the edge tells the member.
#[derive(Debug)]
pub enum EdgeEvent {
    /// A frame from this member's publisher.
    Published {
        /// The publisher's number.
        publisher: u16,
        /// The frame.
        frame: Frame,
    },
    /// A browser here watching another member's source asks for a keyframe of it.
    KeyframeWanted {
        /// The source.
        source: SourceKey,
        /// Of its simulcast encodings, the one wanted (0 for a source that sends one).
        encoding: u8,
    },
}

/// What the edge has done.
#[derive(Debug, Default)]
pub struct EdgeCounters {
    /// Sessions opened.
    pub opened: AtomicU64,
    /// Sessions open now.
    pub open: AtomicU64,
    /// Frames received from publishers.
    pub frames_in: AtomicU64,
    /// Of them, video frames of a temporal layer above the base (a browser sending `L1T2`).
    pub enhancement_frames_in: AtomicU64,
    /// Frames written to watchers.
    pub frames_out: AtomicU64,
    /// Frames above the base layer not written to a watcher whose leg's bandwidth estimate
    /// does not carry its source's whole stream.
    pub enhancement_frames_withheld: AtomicU64,
    /// Watching sessions getting only the base layer now (their leg's estimate is short).
    pub watchers_on_base: AtomicU64,
    /// Watching sessions getting the lower of their source's two simulcast encodings now
    /// (their leg's estimate is short, or the higher one does not arrive whole here).
    pub watchers_on_lower_encoding: AtomicU64,
    /// Watchers on the higher simulcast encoding sent to the lower (at its next keyframe)
    /// because their leg's estimate fell short of it.
    pub encoding_downs_short: AtomicU64,
    /// The same because the higher encoding stopped arriving here (quiet for a while).
    pub encoding_downs_starved: AtomicU64,
    /// The same because this member lost a frame of the higher encoding.
    pub encoding_downs_broken: AtomicU64,
    /// The same because the higher encoding was quiet when the lower's keyframe came.
    pub encoding_downs_hedged: AtomicU64,
    /// Publishers' frames the member could not take at once (dropped).
    pub frames_dropped: AtomicU64,
    /// Datagrams that belonged to no session.
    pub strays: AtomicU64,
}

/// The edge's counters at one moment (a member's `/status`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EdgeSnapshot {
    /// Sessions opened.
    pub sessions_opened: u64,
    /// Sessions open now.
    pub sessions_open: u64,
    /// Frames received from publishers.
    pub frames_in: u64,
    /// Of them, video frames of a temporal layer above the base (a browser sending `L1T2`).
    #[serde(default)]
    pub enhancement_frames_in: u64,
    /// Frames written to watchers.
    pub frames_out: u64,
    /// Frames above the base layer not written to a watcher whose leg's bandwidth estimate
    /// does not carry its source's whole stream.
    #[serde(default)]
    pub enhancement_frames_withheld: u64,
    /// Watching sessions getting only the base layer now (their leg's estimate is short).
    #[serde(default)]
    pub watchers_on_base: u64,
    /// Watching sessions getting the lower of their source's two simulcast encodings now
    /// (their leg's estimate is short, or the higher one does not arrive whole here).
    #[serde(default)]
    pub watchers_on_lower_encoding: u64,
    /// Watchers on the higher simulcast encoding sent to the lower (at its next keyframe)
    /// because their leg's estimate fell short of it.
    #[serde(default)]
    pub encoding_downs_short: u64,
    /// The same because the higher encoding stopped arriving here (quiet for a while).
    #[serde(default)]
    pub encoding_downs_starved: u64,
    /// The same because this member lost a frame of the higher encoding.
    #[serde(default)]
    pub encoding_downs_broken: u64,
    /// The same because the higher encoding was quiet when the lower's keyframe came.
    #[serde(default)]
    pub encoding_downs_hedged: u64,
    /// Publishers' frames the member could not take at once (dropped).
    pub frames_dropped: u64,
    /// Datagrams that belonged to no session.
    pub strays: u64,
}

impl EdgeCounters {
    /// The counters now.
    pub fn snapshot(&self) -> EdgeSnapshot {
        let get = |c: &AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
        EdgeSnapshot {
            sessions_opened: get(&self.opened),
            sessions_open: get(&self.open),
            frames_in: get(&self.frames_in),
            enhancement_frames_in: get(&self.enhancement_frames_in),
            frames_out: get(&self.frames_out),
            enhancement_frames_withheld: get(&self.enhancement_frames_withheld),
            watchers_on_base: get(&self.watchers_on_base),
            watchers_on_lower_encoding: get(&self.watchers_on_lower_encoding),
            encoding_downs_short: get(&self.encoding_downs_short),
            encoding_downs_starved: get(&self.encoding_downs_starved),
            encoding_downs_broken: get(&self.encoding_downs_broken),
            encoding_downs_hedged: get(&self.encoding_downs_hedged),
            frames_dropped: get(&self.frames_dropped),
            strays: get(&self.strays),
        }
    }
}

enum Command {
    Open {
        offer: String,
        watch: Option<SourceKey>,
        reply: oneshot::Sender<Result<Opened, EdgeError>>,
    },
    Close {
        session: SessionId,
        reply: oneshot::Sender<bool>,
    },
    Forward {
        source: SourceKey,
        frame: Frame,
    },
    Keyframe {
        publisher: u16,
        encoding: u8,
    },
    Broken {
        source: SourceKey,
        encoding: u8,
    },
}

/// A handle on the running edge.
#[derive(Clone, Debug)]
pub struct BrowserEdge {
    commands: mpsc::Sender<Command>,
    /// Where browsers reach it.
    pub candidates: Vec<SocketAddr>,
    /// Its counters.
    pub counters: Arc<EdgeCounters>,
}

impl BrowserEdge {
    /// Starts the edge on `socket` for member `me`; browsers are told to reach it at
    /// `candidates` (the socket's address when it is a specific one). Its events go to the
    /// returned receiver.
    pub fn start(
        socket: UdpSocket,
        me: NodeId,
        candidates: Vec<SocketAddr>,
    ) -> (Self, mpsc::Receiver<EdgeEvent>, tokio::task::JoinHandle<()>) {
        let (commands, inbox) = mpsc::channel(1024);
        let (events, outbox) = mpsc::channel(1024);
        let counters = Arc::new(EdgeCounters::default());
        let core = EdgeCore::new(me, candidates.clone(), counters.clone());
        let task = tokio::spawn(drive(core, socket, inbox, events));
        (
            Self {
                commands,
                candidates,
                counters,
            },
            outbox,
            task,
        )
    }

    /// Opens a session answering `offer`: publishing when `watch` is `None`, else watching
    /// that source.
    pub async fn open(&self, offer: String, watch: Option<SourceKey>) -> Result<Opened, EdgeError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Open {
                offer,
                watch,
                reply,
            })
            .await
            .map_err(|_| EdgeError::Stopped)?;
        answer.await.map_err(|_| EdgeError::Stopped)?
    }

    /// Ends a session; whether it existed.
    pub async fn close(&self, session: SessionId) -> bool {
        let (reply, done) = oneshot::channel();
        if self
            .commands
            .send(Command::Close { session, reply })
            .await
            .is_err()
        {
            return false;
        }
        done.await.unwrap_or(false)
    }

    /// Asks this member's publisher `publisher` for a keyframe of its simulcast encoding
    /// `encoding` (a receiver somewhere asked; merged with other requests to one a second).
    pub fn request_keyframe(&self, publisher: u16, encoding: u8) {
        let _ = self.commands.try_send(Command::Keyframe {
            publisher,
            encoding,
        });
    }

    /// Tells the watchers here that the member lost a frame of `source`'s simulcast encoding
    /// `encoding` (nothing more of it comes until a keyframe): those on it move to the other.
    pub fn encoding_broken(&self, source: SourceKey, encoding: u8) {
        let _ = self.commands.try_send(Command::Broken { source, encoding });
    }

    /// Hands a frame of another member's source to the watchers of it here (dropped when the
    /// edge is too busy to take it: live media is not queued).
    pub fn forward(&self, source: SourceKey, frame: Frame) {
        let _ = self.commands.try_send(Command::Forward { source, frame });
    }
}

/// The edge's task: the socket and the clock around the core.
async fn drive(
    mut core: EdgeCore,
    socket: UdpSocket,
    mut inbox: mpsc::Receiver<Command>,
    events: mpsc::Sender<EdgeEvent>,
) {
    let mut buf = vec![0u8; 2048];
    loop {
        let next = core.poll(Instant::now());
        while let Some((to, bytes)) = core.poll_transmit() {
            let _ = socket.try_send_to(&bytes, to);
        }
        // The member takes frames as fast as the overlay does; one it cannot take now is
        // dropped (live media), never waited for: this loop serves every session.
        while let Some(event) = core.poll_event() {
            if let Err(mpsc::error::TrySendError::Full(EdgeEvent::Published { .. })) =
                events.try_send(event)
            {
                core.count_dropped_frame();
            }
        }
        let wait = next
            .saturating_duration_since(Instant::now())
            .clamp(Duration::from_millis(1), Duration::from_millis(100));
        let mut timed_out = false;
        tokio::select! {
            command = inbox.recv() => {
                let Some(command) = command else { return };
                let now = Instant::now();
                match command {
                    Command::Open { offer, watch, reply } => {
                        let _ = reply.send(core.open(&offer, watch, now));
                    }
                    Command::Close { session, reply } => {
                        let _ = reply.send(core.close(session));
                    }
                    Command::Forward { source, frame } => core.forward(source, &frame, now),
                    Command::Keyframe {
                        publisher,
                        encoding,
                    } => core.keyframe_wanted(publisher, encoding, now),
                    Command::Broken { source, encoding } => {
                        core.encoding_broken(source, encoding, now);
                    }
                }
            }
            received = socket.recv_from(&mut buf) => {
                if let Ok((n, from)) = received {
                    core.receive(from, &buf[..n], Instant::now());
                }
            }
            () = tokio::time::sleep(wait) => timed_out = true,
        }
        // Timers that fell due while commands and datagrams kept the loop busy run now too:
        // a busy edge (a publisher's media and the member's frames every few milliseconds)
        // would otherwise starve them, and with them every session's RTCP (keyframe requests
        // included) and the watchers' reviews.
        let now = Instant::now();
        if timed_out || now >= next {
            core.timeout(now);
        }
    }
}
