//! The browser edge of a conference member: WebRTC sessions with browsers, ffmpeg or OBS
//! (WHIP to publish, WHEP to watch), all on one UDP socket, ICE-lite, through str0m's sans-IO
//! `Rtc` (one per session) driven by one task.
//!
//! A publishing session's frames go out as [`EdgeEvent::Published`] (the member cuts them into
//! media packets for the overlay) and straight to this member's own watchers of that source;
//! frames of other members' sources come in by [`BrowserEdge::forward`]. Each source's current
//! keyframe group is kept (bounded), so a browser that starts watching decodes at once.
//!
//! Limits: at most [`MAX_SESSIONS`] sessions and [`media::MAX_PUBLISHERS`] publishers; a
//! session that never connects ends after [`CONNECT_TIMEOUT`]; datagrams that belong to no
//! session are dropped (counted, never logged with their bytes).

mod session;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use media::{Frame, MAX_PUBLISHERS};
use overlay_core::NodeId;
use str0m::net::{Protocol, Receive};
use str0m::{Input, Output};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};

pub use session::Role;
use session::{Happened, Session};

/// Sessions open at once at most.
pub const MAX_SESSIONS: usize = 64;
/// A session whose ICE and DTLS are not up this long after its offer ends.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// The publishing browser is asked for a keyframe this often, so watchers on other members
/// (whose requests do not yet travel up the tree) start and recover within this time.
pub const KEYFRAME_INTERVAL: Duration = Duration::from_secs(2);
/// Bytes of one source's kept keyframe group at most (a longer group is not kept).
const GROUP_BYTES: usize = 4 << 20;
/// Sources whose keyframe group is kept at most.
const MAX_GROUPS: usize = 256;

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
    /// Frames written to watchers.
    pub frames_out: AtomicU64,
    /// Datagrams that belonged to no session.
    pub strays: AtomicU64,
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
        let task = tokio::spawn(
            Driver {
                socket,
                me,
                candidates: candidates.clone(),
                sessions: BTreeMap::new(),
                opened_at: BTreeMap::new(),
                next_id: 1,
                groups: BTreeMap::new(),
                events,
                counters: counters.clone(),
                last_keyframe_round: Instant::now(),
            }
            .run(inbox),
        );
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

    /// Hands a frame of another member's source to the watchers of it here (dropped when the
    /// edge is too busy to take it: live media is not queued).
    pub fn forward(&self, source: SourceKey, frame: Frame) {
        let _ = self.commands.try_send(Command::Forward { source, frame });
    }
}

/// A source's frames since its last keyframe.
#[derive(Default)]
struct Group {
    frames: Vec<Frame>,
    bytes: usize,
}

struct Driver {
    socket: UdpSocket,
    me: NodeId,
    candidates: Vec<SocketAddr>,
    sessions: BTreeMap<SessionId, Session>,
    opened_at: BTreeMap<SessionId, Instant>,
    next_id: SessionId,
    groups: BTreeMap<SourceKey, Group>,
    events: mpsc::Sender<EdgeEvent>,
    counters: Arc<EdgeCounters>,
    last_keyframe_round: Instant,
}

impl Driver {
    async fn run(mut self, mut inbox: mpsc::Receiver<Command>) {
        let mut buf = vec![0u8; 2048];
        loop {
            let next = self.drain(Instant::now()).await;
            let wait = next
                .saturating_duration_since(Instant::now())
                .clamp(Duration::from_millis(1), Duration::from_millis(100));
            tokio::select! {
                command = inbox.recv() => {
                    let Some(command) = command else { return };
                    self.on_command(command);
                }
                received = self.socket.recv_from(&mut buf) => {
                    if let Ok((n, from)) = received {
                        self.on_datagram(&buf[..n], from);
                    }
                }
                () = tokio::time::sleep(wait) => {
                    let now = Instant::now();
                    for s in self.sessions.values_mut() {
                        if s.rtc.handle_input(Input::Timeout(now)).is_err() {
                            s.rtc.disconnect();
                        }
                    }
                }
            }
            self.tidy(Instant::now());
        }
    }

    /// Polls every session until each waits; when the next one wants time.
    async fn drain(&mut self, now: Instant) -> Instant {
        let mut next = now + Duration::from_millis(100);
        let ids: Vec<SessionId> = self.sessions.keys().copied().collect();
        for id in ids {
            while let Some(s) = self.sessions.get_mut(&id) {
                match s.rtc.poll_output() {
                    Ok(Output::Timeout(t)) => {
                        next = next.min(t);
                        break;
                    }
                    Ok(Output::Transmit(t)) => {
                        let _ = self.socket.try_send_to(&t.contents, t.destination);
                    }
                    Ok(Output::Event(event)) => {
                        let happened = s.on_event(event, now);
                        self.on_happened(id, happened, now).await;
                    }
                    Err(_) => {
                        s.rtc.disconnect();
                        break;
                    }
                }
            }
        }
        next
    }

    async fn on_happened(&mut self, id: SessionId, happened: Happened, now: Instant) {
        let Some(s) = self.sessions.get_mut(&id) else {
            return;
        };
        match happened {
            Happened::Nothing => {}
            Happened::Ended => s.rtc.disconnect(),
            Happened::Connected => {
                self.opened_at.remove(&id);
                match s.role {
                    // A watcher starts at the source's last keyframe.
                    Role::Watch(source) => {
                        if let Some(group) = self.groups.get(&source) {
                            for frame in &group.frames {
                                s.write(frame, now);
                            }
                        } else {
                            self.ask_keyframe(source, now);
                        }
                    }
                    Role::Publish(_) => s.request_keyframe(now),
                }
            }
            Happened::KeyframeWanted => {
                if let Role::Watch(source) = s.role {
                    self.ask_keyframe(source, now);
                }
            }
            Happened::Frame(frame) => {
                let Role::Publish(publisher) = s.role else {
                    return;
                };
                self.counters.frames_in.fetch_add(1, Ordering::Relaxed);
                let source = SourceKey {
                    member: self.me,
                    publisher,
                };
                self.deliver(source, &frame, now);
                let _ = self
                    .events
                    .send(EdgeEvent::Published { publisher, frame })
                    .await;
            }
        }
    }

    /// Asks this member's publisher of `source` for a keyframe, if it is one of ours.
    fn ask_keyframe(&mut self, source: SourceKey, now: Instant) {
        if source.member != self.me {
            return;
        }
        for s in self.sessions.values_mut() {
            if s.role == Role::Publish(source.publisher) {
                s.request_keyframe(now);
            }
        }
    }

    /// Keeps `frame` in its source's group and writes it to that source's watchers.
    fn deliver(&mut self, source: SourceKey, frame: &Frame, now: Instant) {
        if !frame.codec.is_audio() {
            if !self.groups.contains_key(&source) && self.groups.len() >= MAX_GROUPS {
                return;
            }
            let group = self.groups.entry(source).or_default();
            if frame.keyframe {
                group.frames.clear();
                group.bytes = 0;
            }
            group.bytes += frame.data.len();
            if group.bytes <= GROUP_BYTES && (frame.keyframe || !group.frames.is_empty()) {
                group.frames.push(frame.clone());
            } else {
                group.frames.clear();
            }
        }
        for s in self.sessions.values_mut() {
            if s.connected && s.role == Role::Watch(source) && s.write(frame, now) {
                self.counters.frames_out.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn on_command(&mut self, command: Command) {
        let now = Instant::now();
        match command {
            Command::Open {
                offer,
                watch,
                reply,
            } => {
                let _ = reply.send(self.open(&offer, watch, now));
            }
            Command::Close { session, reply } => {
                let existed = self.sessions.get_mut(&session).map(|s| {
                    let _ = s.rtc.close();
                    s.rtc.disconnect();
                });
                let _ = reply.send(existed.is_some());
            }
            Command::Forward { source, frame } => self.deliver(source, &frame, now),
        }
    }

    fn open(
        &mut self,
        offer: &str,
        watch: Option<SourceKey>,
        now: Instant,
    ) -> Result<Opened, EdgeError> {
        if self.sessions.len() >= MAX_SESSIONS {
            return Err(EdgeError::Full(format!(
                "this member has {MAX_SESSIONS} browser sessions"
            )));
        }
        let role = match watch {
            Some(source) => Role::Watch(source),
            None => {
                let taken: Vec<u16> = self
                    .sessions
                    .values()
                    .filter_map(|s| match s.role {
                        Role::Publish(p) => Some(p),
                        Role::Watch(_) => None,
                    })
                    .collect();
                let free = (0..MAX_PUBLISHERS).find(|p| !taken.contains(p));
                let Some(publisher) = free else {
                    return Err(EdgeError::Full(format!(
                        "this member has {MAX_PUBLISHERS} publishers"
                    )));
                };
                Role::Publish(publisher)
            }
        };
        let (session, answer) = Session::answer(offer, role, &self.candidates, now)?;
        let id = self.next_id;
        self.next_id += 1;
        self.sessions.insert(id, session);
        self.opened_at.insert(id, now);
        self.counters.opened.fetch_add(1, Ordering::Relaxed);
        let publishes = match role {
            Role::Publish(publisher) => Some(SourceKey {
                member: self.me,
                publisher,
            }),
            Role::Watch(_) => None,
        };
        Ok(Opened {
            id,
            answer,
            publishes,
        })
    }

    fn on_datagram(&mut self, bytes: &[u8], from: SocketAddr) {
        let Some(&destination) = self.candidates.first() else {
            return;
        };
        let Ok(receive) = Receive::new(Protocol::Udp, from, destination, bytes) else {
            self.counters.strays.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let input = Input::Receive(Instant::now(), receive);
        match self.sessions.values_mut().find(|s| s.rtc.accepts(&input)) {
            Some(s) => {
                if s.rtc.handle_input(input).is_err() {
                    s.rtc.disconnect();
                }
            }
            None => {
                self.counters.strays.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Ends sessions that died or never connected; keeps groups only of sources still
    /// watched or published here or forwarded recently (bounded by `MAX_GROUPS` anyway).
    fn tidy(&mut self, now: Instant) {
        let late: Vec<SessionId> = self
            .opened_at
            .iter()
            .filter(|&(_, &t)| now.saturating_duration_since(t) > CONNECT_TIMEOUT)
            .map(|(&id, _)| id)
            .collect();
        for id in late {
            self.opened_at.remove(&id);
            if let Some(s) = self.sessions.get_mut(&id) {
                s.rtc.disconnect();
            }
        }
        self.sessions.retain(|_, s| s.rtc.is_alive());
        self.opened_at
            .retain(|id, _| self.sessions.contains_key(id));
        self.counters
            .open
            .store(self.sessions.len() as u64, Ordering::Relaxed);
        if now.saturating_duration_since(self.last_keyframe_round) >= KEYFRAME_INTERVAL {
            self.last_keyframe_round = now;
            for s in self.sessions.values_mut() {
                if matches!(s.role, Role::Publish(_)) && s.connected {
                    s.request_keyframe(now);
                }
            }
        }
    }
}
