//! The HTTP server every application's pages and viewers go through, with limits a stranger
//! cannot get around (in place of `axum::serve`, which runs without a timer or a cap):
//!
//! - a connection that has not sent a complete request head within the header timeout is
//!   closed; the same clock runs between requests on a kept-alive connection (hyper's
//!   `header_read_timeout`), so idle and slowloris connections go;
//! - a write the client does not drain for the write timeout closes the connection, and so does
//!   a read with nothing read or written for the idle timeout ([`TimedStream`]);
//! - at most `max_connections` connections are open: beyond it, accepting waits (see
//!   [`HttpLimits::max_connections`] for why it waits rather than refuses);
//! - hyper buffers at most [`MAX_BUFFER`] per connection each way (request heads, and response
//!   bytes not yet taken by the socket), so a client that never reads costs a bounded amount.
//!
//! The counters ([`HttpCounters`]) go on each application's `/status` and `/metrics`.

use std::error::Error as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::prometheus::{Kind, MetricsPage};
use super::timed_io::{Stalled, TimedStream};
use crate::transport::log_limit::LogLimiter;

/// Bytes hyper buffers per connection each way: the largest request head taken, and response
/// bytes held beyond what the socket took (hyper asks the body for more only below this). 16 KiB
/// holds any head a player or browser sends to these routes (no cookies, a few headers), while
/// a stranger's 1000 connections cost 16 MiB of heads at most; hyper's default (~400 KiB) let a
/// viewer that never reads hold about 480 kB.
pub const MAX_BUFFER: usize = 16 * 1024;

/// Descriptors a process keeps for other things than HTTP connections (standard streams, the
/// runtime's epoll and wake-up descriptors, the QUIC and anycast sockets, the HTTP listener, the
/// store's open segment, files being deleted): 64 is several times what a node has open with no
/// client, so the budget left for connections is safe.
pub const RESERVED_DESCRIPTORS: u64 = 64;

/// The limits of one HTTP server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HttpLimits {
    /// How long a client has to send a complete request head, from its connection or from the
    /// end of the previous response.
    pub header_read_timeout: Duration,
    /// How long a read may wait with nothing read or written (a request body dribbled, a
    /// client gone silent); longer than any wait for content inside a response.
    pub idle_timeout: Duration,
    /// How long a write may wait for the client to drain its socket.
    pub write_timeout: Duration,
    /// Connections open at once. Beyond it accepting *waits*: a connection not yet accepted
    /// waits in the kernel's accept queue (bounded by the listen backlog; past it the client's
    /// own stack retries), where it costs no descriptor or memory of this process. Refusing
    /// instead would accept each one first (a descriptor and a system call per attempt) only to
    /// close it, which under a flood is the same work as no cap. Connections that hog a place
    /// lose it within the header timeout, so a waiting client gets in within a few of them.
    pub max_connections: usize,
}

impl HttpLimits {
    /// Default header timeout: 5 s. A player sends its request head in one packet right after
    /// connecting; 5 s leaves room for two lost packets (TCP retransmits after 1 s, then 2 s
    /// more) while a connection that never sends one holds its place for at most 5 s.
    pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);
    /// Default idle timeout: 30 s, well above the longest a response waits for the stream to
    /// grow (a broadcast node's `--idle-end`, 5 s by default, and the node raises the timeout
    /// above it), so only a client that stopped talking meets it.
    pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
    /// Default write timeout: 20 s, beyond TCP's first four retransmission backoffs (15 s in
    /// all), so a viewer on a lossy link that is still there keeps its stream, while
    /// one that stopped reading (or a player paused for that long) is closed and its buffers
    /// freed; a player that resumes reconnects at the live edge.
    pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(20);
    /// Default connection cap: 1024, four times a broadcast node's default viewer cap (256),
    /// leaving room for redirects, status pages and scrapers beside full viewers; lowered at
    /// start to what the descriptor limit allows ([`fit_descriptors`](Self::fit_descriptors)):
    /// 704 under the common soft limit of 1024 with 256 viewers.
    pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;

    /// The cap lowered, if needed, so that one descriptor per connection plus `reserved` ones
    /// (say [`RESERVED_DESCRIPTORS`] and one per viewer, who reads the store through a file it
    /// opens) fit under the process's descriptor limit now. Running out of descriptors stops
    /// more than HTTP: a relay that could not open its next segment file stopped storing.
    pub fn fit_descriptors(self, reserved: u64) -> Self {
        let Ok((soft, _)) = rlimit::getrlimit(rlimit::Resource::NOFILE) else {
            return self;
        };
        let fits = usize::try_from(soft.saturating_sub(reserved))
            .unwrap_or(usize::MAX)
            .max(1);
        if fits < self.max_connections {
            tracing::warn!(
                asked = self.max_connections,
                allowed = fits,
                descriptor_limit = soft,
                "HTTP connection cap lowered to fit the descriptor limit"
            );
        }
        Self {
            max_connections: self.max_connections.min(fits),
            ..self
        }
    }
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Self::DEFAULT_HEADER_READ_TIMEOUT,
            idle_timeout: Self::DEFAULT_IDLE_TIMEOUT,
            write_timeout: Self::DEFAULT_WRITE_TIMEOUT,
            max_connections: Self::DEFAULT_MAX_CONNECTIONS,
        }
    }
}

/// Raises the process's soft descriptor limit to its hard limit where allowed; the soft limit
/// after. Done once at start: the common soft limit of 1024 is what a relay ran out of.
pub fn raise_descriptor_limit() -> std::io::Result<u64> {
    rlimit::increase_nofile_limit(u64::MAX)
}

/// The listen backlog of every HTTP listener: connections the kernel completes before they are
/// accepted. mio (and so `tokio::net::TcpListener::bind`) asks for 128, as the standard library
/// does: 600 viewers arriving at once overflowed it, the kernel dropped their handshakes, and
/// their stacks retried after 1, 3 and 7 s, so some requests waited past 10 s and some
/// connections reached the server seconds before their request did and met the header timeout.
/// 1024 holds a flash crowd the size of the connection cap; the kernel lowers it to
/// `net.core.somaxconn` (4096 on current Linux).
pub const LISTEN_BACKLOG: u32 = 1024;

/// Binds a TCP listener at `addr` with [`LISTEN_BACKLOG`] (and `SO_REUSEADDR`, as
/// `TcpListener::bind` sets it, so a restarted node gets its port back at once).
pub fn bind(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// What an HTTP server has done, counted as it goes.
#[derive(Debug, Default)]
pub struct HttpCounters {
    max_connections: AtomicU64,
    open: AtomicU64,
    accepted: AtomicU64,
    waited_at_cap: AtomicU64,
    accept_errors: AtomicU64,
    header_timeouts: AtomicU64,
    idle_timeouts: AtomicU64,
    write_timeouts: AtomicU64,
}

/// [`HttpCounters`] at one moment, as `/status` shows them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpSnapshot {
    /// The connection cap in force.
    pub max_connections: u64,
    /// Connections open now.
    pub open: u64,
    /// Connections accepted since start.
    pub accepted: u64,
    /// Times the cap was reached and accepting waited.
    pub waited_at_cap: u64,
    /// Accepts that failed (out of descriptors or memory).
    pub accept_errors: u64,
    /// Connections closed for not sending a request head in time.
    pub header_timeouts: u64,
    /// Connections closed for reading nothing and writing nothing for the idle timeout.
    pub idle_timeouts: u64,
    /// Connections closed for not draining a write within the write timeout.
    pub write_timeouts: u64,
}

impl HttpCounters {
    /// The counts now.
    pub fn snapshot(&self) -> HttpSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        HttpSnapshot {
            max_connections: get(&self.max_connections),
            open: get(&self.open),
            accepted: get(&self.accepted),
            waited_at_cap: get(&self.waited_at_cap),
            accept_errors: get(&self.accept_errors),
            header_timeouts: get(&self.header_timeouts),
            idle_timeouts: get(&self.idle_timeouts),
            write_timeouts: get(&self.write_timeouts),
        }
    }

    fn bump(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a connection's end by what closed it.
    fn ended(&self, e: &hyper::Error) {
        if e.is_timeout() {
            return Self::bump(&self.header_timeouts);
        }
        let mut source = e.source();
        while let Some(s) = source {
            if let Some(io) = s.downcast_ref::<std::io::Error>() {
                match Stalled::of(io) {
                    Some(Stalled::Idle(_)) => Self::bump(&self.idle_timeouts),
                    Some(Stalled::Write(_)) => Self::bump(&self.write_timeouts),
                    None => {}
                }
                return;
            }
            source = s.source();
        }
    }
}

impl HttpSnapshot {
    /// Writes the counts as `esm_http_*` families.
    pub fn write_metrics(&self, page: &mut MetricsPage) {
        let f = |v: u64| v as f64;
        page.single(
            Kind::Gauge,
            "esm_http_connections",
            "HTTP connections open.",
            f(self.open),
        )
        .single(
            Kind::Gauge,
            "esm_http_max_connections",
            "The HTTP connection cap in force.",
            f(self.max_connections),
        )
        .single(
            Kind::Counter,
            "esm_http_accepted_total",
            "HTTP connections accepted.",
            f(self.accepted),
        )
        .single(
            Kind::Counter,
            "esm_http_waited_at_cap_total",
            "Times accepting waited at the connection cap.",
            f(self.waited_at_cap),
        )
        .single(
            Kind::Counter,
            "esm_http_accept_errors_total",
            "Failed accepts (out of descriptors or memory).",
            f(self.accept_errors),
        )
        .labelled(
            Kind::Counter,
            "esm_http_timeouts_total",
            "HTTP connections closed by a timeout.",
            "limit",
            [
                ("header", f(self.header_timeouts)),
                ("idle", f(self.idle_timeouts)),
                ("write", f(self.write_timeouts)),
            ],
        );
    }
}

/// Pause after an accept that failed for lack of a resource, so a full descriptor table does not
/// turn the accept loop into a busy loop (the pending connection stays in the queue).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Serves `app` on `listener` under `limits`, counting in `counters`, until the task is dropped
/// (connections already open end by themselves, on their timeouts at the latest).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: HttpLimits,
    counters: Arc<HttpCounters>,
) {
    let cap = limits.max_connections.clamp(1, Semaphore::MAX_PERMITS);
    let places = Arc::new(Semaphore::new(cap));
    counters
        .max_connections
        .store(cap as u64, Ordering::Relaxed);
    let logs = LogLimiter::default();
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(MAX_BUFFER);
    loop {
        let place = match places.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                HttpCounters::bump(&counters.waited_at_cap);
                if let Some(suppressed) = logs.allow("connection cap") {
                    tracing::warn!(
                        cap,
                        suppressed,
                        "HTTP connection cap reached; new connections wait to be accepted"
                    );
                }
                match places.clone().acquire_owned().await {
                    Ok(p) => p,
                    Err(_) => return,
                }
            }
        };
        let (stream, remote) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                HttpCounters::bump(&counters.accept_errors);
                if let Some(suppressed) = logs.allow("accept") {
                    tracing::warn!(error = %e, suppressed, "HTTP accept failed");
                }
                if !is_connection_error(&e) {
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
                continue;
            }
        };
        HttpCounters::bump(&counters.accepted);
        counters.open.fetch_add(1, Ordering::Relaxed);
        let io = TokioIo::new(TimedStream::new(
            stream,
            limits.idle_timeout,
            limits.write_timeout,
        ));
        // Handlers may ask where a request came from (`ConnectInfo`): the operator's pages
        // answer loopback clients without a token.
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<_>| {
            request
                .extensions_mut()
                .insert(axum::extract::ConnectInfo(remote));
            let mut app = app.clone();
            async move { tower_service::Service::call(&mut app, request).await }
        });
        let connection = http.serve_connection(io, service);
        let counters = counters.clone();
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                counters.ended(&e);
            }
            counters.open.fetch_sub(1, Ordering::Relaxed);
            drop(place);
        });
    }
}

/// An accept error that concerns only the connection being accepted (it went before we took
/// it), not the process's resources.
fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    async fn server(limits: HttpLimits) -> (std::net::SocketAddr, Arc<HttpCounters>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new().route("/", axum::routing::get(|| async { "hello" }));
        let counters = Arc::new(HttpCounters::default());
        tokio::spawn(serve(listener, app, limits, counters.clone()));
        (addr, counters)
    }

    /// 600 clients connecting at once to a listener that has not accepted yet (a busy node, a
    /// flash crowd) all complete their handshakes: the backlog holds them. With the 128 mio
    /// asks for, the kernel dropped the handshakes past 128 and those clients waited for their
    /// SYN retransmits (1 s, then 3 s).
    #[tokio::test]
    async fn a_flash_crowd_of_600_is_queued_by_the_kernel_until_accepted() {
        if rlimit::increase_nofile_limit(u64::MAX).unwrap_or(0) < 1400 {
            eprintln!("SKIPPED: fewer than 1400 descriptors");
            return;
        }
        let listener = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        let connects: Vec<_> = (0..600)
            .map(|_| {
                tokio::spawn(tokio::time::timeout(
                    Duration::from_millis(900),
                    TcpStream::connect(addr),
                ))
            })
            .collect();
        let mut clients = Vec::new();
        for c in connects {
            if let Ok(Ok(Ok(stream))) = c.await {
                clients.push(stream);
            }
        }
        let connected = clients.len();
        assert_eq!(connected, 600, "handshakes completed within 0.9 s");
        let mut accepted = 0;
        while let Ok(Ok(_)) =
            tokio::time::timeout(Duration::from_millis(200), listener.accept()).await
        {
            accepted += 1;
        }
        assert_eq!(accepted, 600);
    }

    /// Reads until the server closes; the bytes.
    async fn until_closed(s: &mut TcpStream) -> Vec<u8> {
        let mut got = Vec::new();
        let _ = s.read_to_end(&mut got).await;
        got
    }

    /// The counters once `done` holds of them (or after two seconds).
    async fn settled(
        counters: &HttpCounters,
        done: impl Fn(&HttpSnapshot) -> bool,
    ) -> HttpSnapshot {
        for _ in 0..200 {
            let s = counters.snapshot();
            if done(&s) {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        counters.snapshot()
    }

    #[tokio::test]
    async fn a_connection_that_sends_no_complete_head_is_closed_after_the_header_timeout() {
        let limits = HttpLimits {
            header_read_timeout: Duration::from_millis(300),
            ..HttpLimits::default()
        };
        let (addr, counters) = server(limits).await;
        let t0 = std::time::Instant::now();
        let mut idle = TcpStream::connect(addr).await.unwrap();
        let mut partial = TcpStream::connect(addr).await.unwrap();
        partial.write_all(b"GET / HTTP/1.1\r\nHo").await.unwrap();
        until_closed(&mut idle).await;
        until_closed(&mut partial).await;
        let took = t0.elapsed();
        assert!(
            took >= Duration::from_millis(300) && took < Duration::from_secs(3),
            "{took:?}"
        );
        // A well-behaved client, then the same connection idle between requests.
        let mut ok = TcpStream::connect(addr).await.unwrap();
        ok.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let text = String::from_utf8(until_closed(&mut ok).await).unwrap();
        assert!(
            text.starts_with("HTTP/1.1 200") && text.ends_with("hello"),
            "{text}"
        );
        // The server counts a connection just after closing it.
        let s = settled(&counters, |s| s.open == 0).await;
        assert_eq!((s.accepted, s.header_timeouts), (3, 3), "{s:?}");
    }

    #[tokio::test]
    async fn beyond_the_cap_accepting_waits_until_a_place_frees() {
        let limits = HttpLimits {
            header_read_timeout: Duration::from_millis(400),
            max_connections: 2,
            ..HttpLimits::default()
        };
        let (addr, counters) = server(limits).await;
        let _a = TcpStream::connect(addr).await.unwrap();
        let _b = TcpStream::connect(addr).await.unwrap();
        // The third connects (the kernel's queue) but is served only once a place frees.
        let t0 = std::time::Instant::now();
        let mut c = TcpStream::connect(addr).await.unwrap();
        c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let text = String::from_utf8(until_closed(&mut c).await).unwrap();
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
        assert!(
            t0.elapsed() >= Duration::from_millis(300),
            "{:?}",
            t0.elapsed()
        );
        let s = counters.snapshot();
        assert!(s.waited_at_cap >= 1 && s.max_connections == 2, "{s:?}");
    }

    #[test]
    fn the_cap_is_lowered_to_fit_the_descriptor_limit() {
        let (soft, _) = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap();
        let asked = HttpLimits {
            max_connections: usize::MAX,
            ..HttpLimits::default()
        };
        let fitted = asked.fit_descriptors(RESERVED_DESCRIPTORS);
        assert_eq!(fitted.max_connections as u64, soft - RESERVED_DESCRIPTORS);
        let small = HttpLimits::default().fit_descriptors(RESERVED_DESCRIPTORS);
        assert!(small.max_connections <= HttpLimits::DEFAULT_MAX_CONNECTIONS);
    }
}
