//! The HTTP clients the limits tests use: plain GETs read to the end or to the head, an
//! attacker that sends nothing or dribbles a request head, a keep-alive hammer that retries
//! like a browser, and readers of the kernel's and the server's connection counts.

#![allow(unreachable_pub)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// One HTTP/1.0 GET to its end: the response head and body, and the time to the first byte.
pub async fn get(addr: SocketAddr, path: &str) -> (String, Vec<u8>, Duration) {
    let t0 = Instant::now();
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut all = Vec::new();
    let mut first = [0u8; 1];
    s.read_exact(&mut first).await.unwrap();
    let ttfb = t0.elapsed();
    all.push(first[0]);
    let _ = s.read_to_end(&mut all).await;
    let end = all.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let body = all.split_off(end);
    (String::from_utf8_lossy(&all).into_owned(), body, ttfb)
}

/// Only the response head of a GET (a stream's body is left unread: the connection closes).
pub async fn head_of(addr: SocketAddr, path: &str) -> String {
    let mut s = BufReader::new(TcpStream::connect(addr).await.unwrap());
    let request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    s.get_mut().write_all(request.as_bytes()).await.unwrap();
    let mut head = String::new();
    while !head.ends_with("\r\n\r\n") && s.read_line(&mut head).await.unwrap_or(0) > 0 {}
    head
}

/// A response head's status code and one header.
pub fn code_and(head: &str, header: &str) -> (u16, Option<String>) {
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let value = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(header).then(|| v.trim().to_owned())
    });
    (code, value)
}

/// What became of an attacking connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    /// It never connected.
    NotConnected,
    /// The server closed it this long after it connected.
    Closed(Duration),
    /// It was not closed within the attack's time; when it then sent a byte, it ended (within
    /// the header timeout): the kernel had dropped it in the handshake, or it was queued.
    EndedWhenPoked,
    /// It was never closed.
    Open,
}

/// How long an attacker waits to be closed before it pokes.
pub const ATTACK: Duration = Duration::from_secs(30);

/// A connection that sends nothing; `dribble`: one that sends a request head a byte every
/// 200 ms and never finishes it. Waits for the server to close it.
pub async fn attacker(addr: SocketAddr, dribble: bool) -> Fate {
    let Ok(Ok(mut s)) = tokio::time::timeout(ATTACK, TcpStream::connect(addr)).await else {
        return Fate::NotConnected;
    };
    let t0 = Instant::now();
    let head = b"GET /channels/tv?here=1 HTTP/1.1\r\nHost: relay\r\nX-Slow: ".repeat(50);
    let mut sent = 0;
    let mut buf = [0u8; 64];
    let deadline = tokio::time::sleep(ATTACK);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            r = s.read(&mut buf) => match r {
                Ok(0) | Err(_) => return Fate::Closed(t0.elapsed()),
                Ok(_) => {}
            },
            _ = tokio::time::sleep(Duration::from_millis(200)), if dribble => {
                if s.write_all(&head[sent % head.len()..][..1]).await.is_err() {
                    return Fate::Closed(t0.elapsed());
                }
                sent += 1;
            }
            _ = &mut deadline => break,
        }
    }
    // An idle client cannot tell a connection the server holds from one its kernel dropped with
    // a full accept queue (a SYN-cookie handshake whose last ACK found no room): a byte tells.
    let poke = async {
        s.write_all(b"G").await.ok()?;
        s.read(&mut buf).await.ok()
    };
    // The relay may take a poked connection late (likely: one still in its accept queue is
    // taken only when a place frees, and only then gets its 5 s header timeout). On a loaded
    // 2-core machine 38 were still open 15 s after the poke, so the wait is 25 s; none may stay.
    match tokio::time::timeout(Duration::from_secs(25), poke).await {
        Ok(None | Some(0)) => Fate::EndedWhenPoked,
        _ => Fate::Open,
    }
}

/// What became of one request/response exchange on a kept-alive connection.
pub enum Exchange {
    /// A complete response with this status and a length.
    Answered(u16),
    /// The connection ended before any byte of a response: the server closed it between
    /// requests (a real client then retries an idempotent GET on a new connection, RFC 9112
    /// section 9.3.1).
    ClosedBeforeAnswer,
    /// Anything else: a broken or unlengthed response.
    Failed,
}

/// Sends `request` on `s` and reads one response.
pub async fn exchange(s: &mut BufReader<TcpStream>, request: &[u8]) -> Exchange {
    if s.get_mut().write_all(request).await.is_err() {
        return Exchange::ClosedBeforeAnswer;
    }
    let (mut code, mut length, mut first) = (0u16, None, true);
    let mut line = String::new();
    loop {
        line.clear();
        match s.read_line(&mut line).await {
            Ok(0) | Err(_) if first => return Exchange::ClosedBeforeAnswer,
            Ok(0) | Err(_) => return Exchange::Failed,
            Ok(_) => first = false,
        }
        if line == "\r\n" {
            break;
        }
        if code == 0 {
            code = code_and(&line, "").0;
        } else if let Some((k, v)) = line.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            length = v.trim().parse::<usize>().ok();
        }
    }
    // A response without a length (a stream) ends this client.
    let Some(length) = length else {
        return Exchange::Failed;
    };
    let mut body = vec![0u8; length];
    match s.read_exact(&mut body).await {
        Ok(_) => Exchange::Answered(code),
        Err(_) => Exchange::Failed,
    }
}

/// What `hammer`'s clients got.
pub struct Hammered {
    /// Responses per second over the whole load (until the last client ended).
    pub rate: f64,
    /// How many responses of each status; 0 counts clients that ended without one (no
    /// connection, no answer within 10 s, a broken answer, or a new connection closed unanswered).
    pub codes: BTreeMap<u16, u64>,
    /// Requests retried on a new connection after the server closed a kept-alive one between
    /// requests (its header timeout runs from the end of the previous response).
    pub retried: u64,
}

/// `conns` keep-alive connections each asking `path` again and again for `run`, like a browser
/// or curl: a kept-alive connection the server closed before answering is replaced and the GET
/// retried (counted apart); any other failure ends the client.
pub async fn hammer(addr: SocketAddr, path: &'static str, conns: usize, run: Duration) -> Hammered {
    let until = Instant::now() + run;
    let mut tasks = Vec::new();
    for _ in 0..conns {
        tasks.push(tokio::spawn(async move {
            let (mut codes, mut retried) = (BTreeMap::new(), 0u64);
            let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n");
            // The connection and whether it has carried an answer already.
            let mut connection: Option<(BufReader<TcpStream>, bool)> = None;
            while Instant::now() < until {
                if connection.is_none() {
                    let Ok(s) = TcpStream::connect(addr).await else {
                        *codes.entry(0).or_insert(0) += 1;
                        break;
                    };
                    connection = Some((BufReader::new(s), false));
                }
                let Some((s, reused)) = connection.as_mut() else {
                    break;
                };
                // A response that does not come in time counts as code 0 and ends the client.
                let done =
                    tokio::time::timeout(Duration::from_secs(10), exchange(s, request.as_bytes()))
                        .await;
                match done {
                    Ok(Exchange::Answered(code)) => {
                        *codes.entry(code).or_insert(0) += 1;
                        *reused = true;
                    }
                    Ok(Exchange::ClosedBeforeAnswer) if *reused => {
                        retried += 1;
                        connection = None;
                    }
                    Ok(Exchange::ClosedBeforeAnswer | Exchange::Failed) | Err(_) => {
                        *codes.entry(0).or_insert(0) += 1;
                        break;
                    }
                }
            }
            (codes, retried)
        }));
    }
    let t0 = Instant::now();
    let (mut codes, mut retried) = (BTreeMap::new(), 0);
    for t in tasks {
        let (client_codes, client_retried) = t.await.unwrap();
        retried += client_retried;
        for (code, n) in client_codes {
            *codes.entry(code).or_insert(0) += n;
        }
    }
    let total: u64 = codes.values().sum();
    Hammered {
        rate: total as f64 / t0.elapsed().as_secs_f64(),
        codes,
        retried,
    }
}

/// The kernel's count of handshakes dropped because a listener's accept queue was full (all
/// listeners of this network namespace; `None` where /proc/net/netstat cannot be read).
pub fn listen_overflows() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/net/netstat").ok()?;
    let mut lines = text.lines();
    while let (Some(names), Some(values)) = (lines.next(), lines.next()) {
        if names.starts_with("TcpExt:") {
            let at = names
                .split_whitespace()
                .position(|n| n == "ListenOverflows")?;
            return values.split_whitespace().nth(at)?.parse().ok();
        }
    }
    None
}

/// Waits until the server at `addr` has at most `open` HTTP connections besides the one asking
/// (its `esm_http_connections` gauge); how long that took. Panics past `limit`.
pub async fn drain_connections(addr: SocketAddr, open: u64, limit: Duration) -> Duration {
    let t0 = Instant::now();
    loop {
        let (_, body, _) = get(addr, "/metrics").await;
        let text = String::from_utf8_lossy(&body);
        let now_open = text
            .lines()
            .find_map(|l| l.strip_prefix("esm_http_connections "))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .expect("esm_http_connections in /metrics");
        if now_open <= (open + 1) as f64 {
            return t0.elapsed();
        }
        assert!(
            t0.elapsed() < limit,
            "{now_open} connections still open after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
