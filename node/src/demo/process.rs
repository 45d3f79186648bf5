//! Conference members as child processes (`esm conference`), for the demo and the integration
//! tests: start one, read the line it prints when ready, fetch its `/status`, kill it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

use crate::app::conference::ConferenceStatus;

/// Why a child process could not be started or asked.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// The binary could not be found.
    #[error("cannot find the esm binary: {0}")]
    NoBinary(std::io::Error),
    /// The child could not be started.
    #[error("cannot start {exe}: {source}")]
    Spawn {
        /// The program.
        exe: String,
        /// Why.
        source: std::io::Error,
    },
    /// The child's stdout is not piped.
    #[error("no stdout")]
    NoStdout,
    /// The child did not print its ready line in time.
    #[error("the member did not say it was ready within 20 s")]
    NotReady,
    /// The child's stdout could not be read.
    #[error("reading the member's stdout: {0}")]
    Stdout(std::io::Error),
    /// The child ended before it was ready.
    #[error("the member exited before it was ready")]
    Exited,
    /// The ready line lacks a field or has a bad one.
    #[error("the ready line {line:?}: {reason}")]
    ReadyLine {
        /// The line.
        line: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A status page was asked of a process that serves none.
    #[error("this process serves no status page")]
    NoStatusPage,
    /// An HTTP GET failed.
    #[error("GET {url}: {reason}")]
    Http {
        /// What was asked.
        url: String,
        /// Why it failed.
        reason: String,
    },
    /// A status page did not parse.
    #[error("/status of {id}: {source}")]
    Status {
        /// The member.
        id: String,
        /// Why.
        source: serde_json::Error,
    },
}

/// A running `esm conference` process.
#[derive(Debug)]
pub struct MemberProcess {
    /// Its id, hex.
    pub id: String,
    /// Its QUIC address.
    pub quic: SocketAddr,
    /// Its HTTP address (none for a resolver).
    pub http: Option<SocketAddr>,
    /// Where it answers DNS (a resolver started with `--dns`).
    pub dns: Option<SocketAddr>,
    /// The status token its `/status` is asked with (needed from off this machine's
    /// loopback, e.g. into a network namespace).
    status_token: Option<String>,
    child: Child,
}

/// How to start a member process.
#[derive(Debug, Clone)]
pub struct MemberSpec {
    /// The `esm` binary.
    pub exe: PathBuf,
    /// The group.
    pub group: String,
    /// The secret, passed in the child's environment (empty: none, as with `--invite` in
    /// `flags`).
    pub secret: String,
    /// Its key file.
    pub key: PathBuf,
    /// Members to join through.
    pub join: Vec<SocketAddr>,
    /// `--send` value, if it sends.
    pub send: Option<String>,
    /// The QUIC port (0: any).
    pub port: u16,
    /// An anycast resolver to register with and join through by name.
    pub resolver: Option<SocketAddr>,
    /// The address to listen on (a place's loopback address when emulating).
    pub ip: std::net::IpAddr,
    /// Run over this emulation spec (`--emulate`).
    pub emulate: Option<PathBuf>,
    /// More flags for `esm conference` (say `--stream-rate 1.2mbps --metric latency`).
    pub flags: Vec<String>,
}

impl MemberProcess {
    /// Starts a member and waits (up to 20 s) for its ready line.
    pub async fn start(spec: &MemberSpec) -> Result<Self, ProcessError> {
        let mut cmd = Command::new(&spec.exe);
        cmd.arg("conference")
            .args(["--group", &spec.group])
            .args(["--listen", &SocketAddr::new(spec.ip, spec.port).to_string()])
            .args(["--http", "127.0.0.1:0"])
            .arg("--key")
            .arg(&spec.key)
            .env_remove("ESM_SECRET")
            .env_remove("ESM_INVITE")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        if !spec.secret.is_empty() {
            cmd.env("ESM_SECRET", &spec.secret);
        }
        for j in &spec.join {
            cmd.args(["--join", &j.to_string()]);
        }
        if let Some(send) = &spec.send {
            cmd.args(["--send", send]);
        }
        if let Some(world) = &spec.emulate {
            cmd.arg("--emulate").arg(world);
        }
        cmd.args(&spec.flags);
        if let Some(r) = spec.resolver {
            cmd.args(["--resolver", &r.to_string()]);
            if spec.join.is_empty() {
                cmd.arg("--join-by-name");
            }
        }
        Self::spawn_ready(cmd).await
    }

    /// Starts an anycast resolver for `group` (its secret in the environment) on a free
    /// loopback port, with `flags` added (such as `--dns 127.0.0.1:0`).
    pub async fn start_resolver(
        exe: &Path,
        group: &str,
        secret: &str,
        key: &Path,
        flags: &[&str],
    ) -> Result<Self, ProcessError> {
        let any_port = SocketAddr::from(([127, 0, 0, 1], 0));
        Self::start_resolver_at(exe, group, secret, key, any_port, flags).await
    }

    /// [`MemberProcess::start_resolver`] listening on `listen` (a resolver restarted on the
    /// address its members know).
    pub async fn start_resolver_at(
        exe: &Path,
        group: &str,
        secret: &str,
        key: &Path,
        listen: SocketAddr,
        flags: &[&str],
    ) -> Result<Self, ProcessError> {
        let mut cmd = Command::new(exe);
        cmd.arg("resolver")
            .args(["--group", group])
            .args(["--listen", &listen.to_string()])
            .arg("--key")
            .arg(key)
            .args(flags)
            .env("ESM_SECRET", secret)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        Self::spawn_ready(cmd).await
    }

    /// Starts any `esm` command that prints a ready line (`ready id=… quic=… http=…`) and
    /// waits (up to 20 s) for it; the child is killed when this is dropped.
    pub async fn spawn_ready(mut cmd: Command) -> Result<Self, ProcessError> {
        cmd.stdout(Stdio::piped()).kill_on_drop(true);
        let exe = format!("{:?}", cmd.as_std().get_program());
        let mut child = cmd
            .spawn()
            .map_err(|source| ProcessError::Spawn { exe, source })?;
        let stdout = child.stdout.take().ok_or(ProcessError::NoStdout)?;
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .map_err(|_| ProcessError::NotReady)?
            .map_err(ProcessError::Stdout)?
            .ok_or(ProcessError::Exited)?;
        // Keep draining stdout so the child never blocks on it.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let bad = |reason: String| ProcessError::ReadyLine {
            line: line.clone(),
            reason,
        };
        let field = |name: &str| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(name))
                .map(str::to_owned)
                .ok_or_else(|| bad(format!("no {name}")))
        };
        let id = field("id=")?;
        let quic = field("quic=")?
            .parse()
            .map_err(|e| bad(format!("quic address: {e}")))?;
        let http = match field("http=")?.as_str() {
            "-" => None,
            h => Some(h.parse().map_err(|e| bad(format!("http address: {e}")))?),
        };
        let dns = match field("dns=").ok().as_deref() {
            None | Some("-") => None,
            Some(d) => Some(d.parse().map_err(|e| bad(format!("dns address: {e}")))?),
        };
        Ok(Self {
            id,
            quic,
            http,
            dns,
            status_token: None,
            child,
        })
    }

    /// Its `/status`.
    pub async fn status(&self) -> Result<ConferenceStatus, ProcessError> {
        let http = self.http.ok_or(ProcessError::NoStatusPage)?;
        let body = http_get_as(http, "/status", self.status_token.as_deref()).await?;
        serde_json::from_str(&body).map_err(|source| ProcessError::Status {
            id: self.id.clone(),
            source,
        })
    }

    /// Asks `/status` with this status token from now on (`GroupSecret::status_token`).
    pub fn set_status_token(&mut self, token: String) {
        self.status_token = Some(token);
    }

    /// The process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// The child's stdin, if it was piped (once).
    pub fn take_stdin(&mut self) -> Option<tokio::process::ChildStdin> {
        self.child.stdin.take()
    }

    /// SIGKILL: no goodbye, peers find out by timeout.
    pub async fn kill(&mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}

/// A plain HTTP/1.0 GET on loopback; the body, or why not.
pub async fn http_get(addr: SocketAddr, path: &str) -> Result<String, ProcessError> {
    http_get_as(addr, path, None).await
}

/// As [`http_get`], with `Authorization: Bearer TOKEN` if a token is given.
pub async fn http_get_as(
    addr: SocketAddr,
    path: &str,
    token: Option<&str>,
) -> Result<String, ProcessError> {
    http_request("GET", addr, path, token).await
}

/// A plain HTTP/1.0 POST without a body on loopback (an operator's action); the body of the
/// answer, or why not.
pub async fn http_post(addr: SocketAddr, path: &str) -> Result<String, ProcessError> {
    http_request("POST", addr, path, None).await
}

async fn http_request(
    method: &str,
    addr: SocketAddr,
    path: &str,
    token: Option<&str>,
) -> Result<String, ProcessError> {
    let fail = |reason: String| ProcessError::Http {
        url: format!("http://{addr}{path}"),
        reason,
    };
    let fetch = async {
        let mut s = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| fail(e.to_string()))?;
        let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
        let request =
            format!("{method} {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Length: 0\r\n{auth}\r\n");
        s.write_all(request.as_bytes())
            .await
            .map_err(|e| fail(e.to_string()))?;
        let mut response = Vec::new();
        s.take(16 << 20)
            .read_to_end(&mut response)
            .await
            .map_err(|e| fail(e.to_string()))?;
        let text = String::from_utf8_lossy(&response).into_owned();
        let (head, body) = text
            .split_once("\r\n\r\n")
            .ok_or_else(|| fail("no header end".to_owned()))?;
        if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
            return Err(fail(head.lines().next().unwrap_or("").to_owned()));
        }
        Ok(body.to_owned())
    };
    tokio::time::timeout(Duration::from_secs(5), fetch)
        .await
        .map_err(|_| fail("timed out".to_owned()))?
}

/// The `esm` binary next to the running one (the demo starts copies of itself).
pub fn current_esm() -> Result<PathBuf, ProcessError> {
    std::env::current_exe().map_err(ProcessError::NoBinary)
}

/// Key file `i` under `dir`.
pub fn key_path(dir: &Path, i: usize) -> PathBuf {
    dir.join(format!("member-{i}.key"))
}

/// Resident memory of process `pid`, kilobytes, from `/proc/PID/status` (`None` once it is
/// gone, or where there is no `/proc`).
pub fn rss_kb(pid: u32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}
