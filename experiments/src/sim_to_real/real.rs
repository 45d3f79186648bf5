//! The real side of a sim-to-real comparison: `esm demo` runs the members as real processes
//! over the emulated world (real QUIC, the runtime's pacer, a relay killed mid-run), and
//! writes a `summary.json` whose per-receiver figures are read back here.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use overlay_core::Bandwidth;
use serde::Deserialize;

/// Why the real run failed.
#[derive(Debug, thiserror::Error)]
pub enum RealRunError {
    /// The `esm` binary is not where it was looked for.
    #[error(
        "no esm binary at {0} (build it with `cargo build --release -p node`, or give --esm PATH)"
    )]
    NoEsm(PathBuf),
    /// A file or folder could not be made or read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// `esm demo` ended badly.
    #[error("esm demo ended with {status}; its output is in {}", log.display())]
    Failed {
        /// How it ended.
        status: String,
        /// Its output.
        log: PathBuf,
    },
    /// `esm demo` ran far past its length.
    #[error("esm demo ran past {0} s and was stopped")]
    Overran(u64),
    /// Its summary did not parse.
    #[error("{}: {reason}", path.display())]
    Summary {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// One receiver's figures for one source, as `esm demo` writes them.
#[derive(Clone, Debug, Deserialize)]
pub struct RealPair {
    /// The receiver (its place in the world).
    pub receiver_index: usize,
    /// The source.
    pub source_index: usize,
    /// Mean receive rate over the window, kbit/s.
    pub window_rate_kbps: Option<f64>,
    /// Mean one-way delay over the window, ms.
    pub window_delay_ms: Option<f64>,
    /// Longest stall of this source here after the crash, seconds.
    pub recovery_s: Option<f64>,
    /// The tree's path from the receiver up to the source at the window's end.
    #[serde(default)]
    pub window_path: Vec<usize>,
}

/// What the comparison reads from the demo's `summary.json`.
#[derive(Clone, Debug, Deserialize)]
pub struct RealSummary {
    /// Per receiver and source (the crashed member left out).
    pub receivers: Vec<RealPair>,
    /// The member killed mid-run (its place), if any.
    pub crashed_index: Option<usize>,
    /// Control over media bytes in the window.
    pub overhead_ratio: f64,
    /// The measurement window, seconds from the start.
    pub window_s: (f64, f64),
}

/// How to run the real side.
#[derive(Clone, Debug)]
pub struct RealRun<'a> {
    /// The `esm` binary.
    pub esm: &'a Path,
    /// The emulation spec.
    pub world: &'a Path,
    /// Members.
    pub members: usize,
    /// Senders (the largest uploads, as the simulator picks them).
    pub senders: usize,
    /// Each sender's rate.
    pub rate: Bandwidth,
    /// Length, seconds.
    pub seconds: u64,
    /// When to kill the busiest relay, seconds (0: never).
    pub crash_at: u64,
    /// The metric's `--metric` name.
    pub metric: &'a str,
    /// Where the demo writes.
    pub out: &'a Path,
}

impl RealRun<'_> {
    /// Runs `esm demo` and reads its summary; its output goes to `OUT/demo.log`.
    pub fn run(&self) -> Result<RealSummary, RealRunError> {
        if !self.esm.is_file() {
            return Err(RealRunError::NoEsm(self.esm.to_owned()));
        }
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| RealRunError::Io { path, source }
        };
        std::fs::create_dir_all(self.out).map_err(io(self.out))?;
        let log_path = self.out.join("demo.log");
        let log = std::fs::File::create(&log_path).map_err(io(&log_path))?;
        let err = log.try_clone().map_err(io(&log_path))?;
        let mut child = Command::new(self.esm)
            .arg("demo")
            .arg("--world")
            .arg(self.world)
            .args(["--members", &self.members.to_string()])
            .args(["--senders", &self.senders.to_string()])
            .args(["--rate", &self.rate.to_string()])
            .args(["--seconds", &self.seconds.to_string()])
            .args(["--crash-at", &self.crash_at.to_string()])
            .args(["--metric", self.metric])
            .arg("--out")
            .arg(self.out)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .map_err(io(self.esm))?;
        // Starting the members takes a few seconds; far past that, something hangs.
        let limit = self.seconds + 120;
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().map_err(io(self.esm))? {
                break status;
            }
            if started.elapsed() > Duration::from_secs(limit) {
                let _ = child.kill();
                let _ = child.wait();
                return Err(RealRunError::Overran(limit));
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        if !status.success() {
            return Err(RealRunError::Failed {
                status: status.to_string(),
                log: log_path,
            });
        }
        let path = self.out.join("summary.json");
        let text = std::fs::read_to_string(&path).map_err(io(&path))?;
        serde_json::from_str(&text).map_err(|e| RealRunError::Summary {
            path,
            reason: e.to_string(),
        })
    }
}
