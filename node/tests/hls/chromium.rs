//! Headless Chromium driven over the Chrome DevTools protocol, with nothing to download: the
//! Debian `chromium` binary started with `--remote-debugging-port=0` writes the port it chose
//! to `DevToolsActivePort` in its fresh profile folder; one websocket to the browser target
//! opens a tab, attaches to it (flat sessions), navigates and evaluates JavaScript in it.
//! Console messages and uncaught exceptions are kept (bounded) for a failing test to print.
//!
//! Why this way: no chromedriver whose version must match, no browser-automation library or
//! its own browser download, one process that the test kills when it is dropped, and the
//! figures read straight from the page (`HTMLVideoElement`, the player's `window.esmPlayer`).

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The browser's executable.
pub(crate) const CHROMIUM: &str = "chromium";
/// Console lines kept at most.
const MAX_CONSOLE: usize = 200;

/// A running headless Chromium with one tab.
pub(crate) struct Chromium {
    _child: Child,
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    session: Option<String>,
    /// Console messages and exceptions the tab reported.
    pub(crate) console: Vec<String>,
}

impl Chromium {
    /// Starts Chromium with a fresh profile under `profile` and connects to it. The flags are
    /// the ones that work on these machines: no sandbox (root), no GPU, none of the background
    /// connections a closed network refuses, autoplay without a gesture.
    /// `extra` flags are added (say, a fake camera for WebRTC).
    pub(crate) async fn launch(profile: &Path, extra: &[&str]) -> Self {
        let _ = std::fs::remove_dir_all(profile);
        std::fs::create_dir_all(profile).unwrap();
        let child = Command::new(CHROMIUM)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                "--mute-audio",
                "--autoplay-policy=no-user-gesture-required",
                "--remote-debugging-port=0",
            ])
            .args(extra)
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromium starts");
        let active = profile.join("DevToolsActivePort");
        let started = Instant::now();
        let endpoint = loop {
            if let Ok(text) = std::fs::read_to_string(&active)
                && let Some((port, path)) = text.trim().split_once('\n')
            {
                break format!("ws://127.0.0.1:{port}{path}");
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "chromium wrote no DevToolsActivePort in 30 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let (ws, _) = tokio_tungstenite::connect_async(endpoint.as_str())
            .await
            .expect("the DevTools websocket opens");
        Self {
            _child: child,
            ws,
            next_id: 0,
            session: None,
            console: Vec::new(),
        }
    }

    /// Opens a tab, attaches to it and navigates it to `url`; the tab's session, which
    /// commands go to until another tab is opened or chosen with [`Chromium::use_tab`].
    pub(crate) async fn open(&mut self, url: &str) -> String {
        let target = self
            .call("Target.createTarget", json!({ "url": "about:blank" }))
            .await;
        let target_id = target["targetId"].as_str().expect("a target id").to_owned();
        let attached = self
            .call(
                "Target.attachToTarget",
                json!({ "targetId": target_id, "flatten": true }),
            )
            .await;
        self.session = Some(
            attached["sessionId"]
                .as_str()
                .expect("a session id")
                .to_owned(),
        );
        self.call("Runtime.enable", json!({})).await;
        self.call("Page.enable", json!({})).await;
        self.navigate(url).await;
        self.session.clone().unwrap_or_default()
    }

    /// Sends the next commands to `tab` (a session [`Chromium::open`] returned).
    #[allow(
        dead_code,
        reason = "the HLS test drives one tab; the conference test several"
    )]
    pub(crate) fn use_tab(&mut self, tab: &str) {
        self.session = Some(tab.to_owned());
    }

    /// Navigates the tab to `url`.
    pub(crate) async fn navigate(&mut self, url: &str) {
        let navigated = self.call("Page.navigate", json!({ "url": url })).await;
        assert!(
            navigated.get("errorText").is_none(),
            "navigating to {url}: {navigated}"
        );
    }

    /// The value of `expression` evaluated in the tab (`null` while it throws).
    pub(crate) async fn eval(&mut self, expression: &str) -> Value {
        let r = self
            .call(
                "Runtime.evaluate",
                json!({ "expression": expression, "returnByValue": true }),
            )
            .await;
        r["result"]["value"].clone()
    }

    /// Sends a command (to the tab once attached) and waits up to 20 s for its answer,
    /// keeping the console events that arrive meanwhile.
    async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({ "id": id, "method": method, "params": params });
        if let Some(s) = &self.session {
            message["sessionId"] = json!(s);
        }
        self.ws
            .send(Message::text(message.to_string()))
            .await
            .expect("the DevTools websocket takes a command");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let next = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .unwrap_or_else(|_| panic!("no answer to {method} in 20 s"))
                .expect("the DevTools websocket stays open")
                .expect("a DevTools message");
            let Message::Text(text) = next else { continue };
            let value: Value = serde_json::from_str(text.as_str()).expect("DevTools speaks JSON");
            if value["id"] == json!(id) {
                if let Some(error) = value.get("error") {
                    panic!("{method}: {error}");
                }
                return value["result"].clone();
            }
            self.note_event(&value);
        }
    }

    fn note_event(&mut self, event: &Value) {
        let line = match event["method"].as_str() {
            Some("Runtime.consoleAPICalled") => {
                let params = &event["params"];
                let args: Vec<String> = params["args"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|v| match &v["value"] {
                                Value::String(s) => s.clone(),
                                Value::Null => v["description"].as_str().unwrap_or("").to_owned(),
                                other => other.to_string(),
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                format!(
                    "console.{}: {}",
                    params["type"].as_str().unwrap_or("?"),
                    args.join(" ")
                )
            }
            Some("Runtime.exceptionThrown") => format!(
                "exception: {}",
                event["params"]["exceptionDetails"]["exception"]["description"]
                    .as_str()
                    .unwrap_or("?")
            ),
            _ => return,
        };
        if self.console.len() < MAX_CONSOLE {
            self.console.push(line);
        }
    }
}
