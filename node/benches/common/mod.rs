//! What the node benchmarks share: finding the release `esm` binary and starting it.

#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::Stdio;

use node::demo::process::MemberProcess;
use tokio::process::Command;

/// The `esm` binary beside the benchmark (`target/release/deps/NAME-…` → `target/release/esm`).
pub fn esm() -> PathBuf {
    let me = std::env::current_exe().expect("the benchmark's own path");
    let dir = me
        .parent()
        .and_then(Path::parent)
        .expect("target/release/deps");
    dir.join("esm")
}

/// Starts `esm ARGS` with its key and store under `dir` named `name`, and waits for its ready
/// line; its stdin is piped when `stdin` says so.
pub async fn spawn(args: &[&str], dir: &Path, name: &str, stdin: bool) -> MemberProcess {
    let mut cmd = Command::new(esm());
    cmd.args(args)
        .arg("--key")
        .arg(dir.join(format!("{name}.key")))
        .arg("--store")
        .arg(dir.join(format!("store-{name}")))
        .env("ESM_SECRET", "bench-broadcast-secret-quartz-fable")
        .stdin(if stdin { Stdio::piped() } else { Stdio::null() })
        .stderr(Stdio::null());
    MemberProcess::spawn_ready(cmd)
        .await
        .expect("run target/release/esm (cargo build --release -p node --bin esm)")
}
