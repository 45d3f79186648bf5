//! A member's registration as a server of its group's anycast name: it registers, answers the
//! resolver's probes, and pushes how long its own runtime takes to read a request.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anycast_resolver::{AnycastName, AnycastServer, PushConfig, ServerCommand};
use tokio::sync::{mpsc, oneshot};

use super::{AnycastError, endpoint_towards};
use crate::runtime::{self, Control};
use crate::transport::admission::GroupSecret;
use crate::transport::identity::Identity;
use crate::transport::signing::Ed25519Signer;

/// The smallest processing delay a member reports: the resolver refuses figures under 100 µs
/// as unbelievable, and a member's queue on an idle machine is shorter than that.
const MIN_REPORTED: Duration = Duration::from_micros(200);

/// How long `busy`'s driver takes to read a request (at least [`MIN_REPORTED`]); `None` once
/// it stopped.
async fn time_to_read<C>(busy: &mpsc::Sender<Control<C>>) -> Option<Duration> {
    let (tx, rx) = oneshot::channel();
    let start = Instant::now();
    busy.send(Control::Ping(tx)).await.ok()?;
    rx.await.ok()?;
    Some(start.elapsed().max(MIN_REPORTED))
}

/// A member's registration as a server of its group's anycast name.
#[derive(Debug)]
pub struct AnycastEntry {
    tasks: Vec<tokio::task::JoinHandle<()>>,
    control: mpsc::Sender<Control<ServerCommand>>,
}

impl AnycastEntry {
    /// Registers `serve` (the member's QUIC address) under `name` with the resolver at
    /// `resolver` (retried with backoff until it answers), and every second reports how long
    /// `busy` (the member's own runtime) takes to read a request.
    pub fn start<C: Send + 'static>(
        identity: &Identity,
        admission: GroupSecret,
        resolver: SocketAddr,
        name: AnycastName,
        serve: SocketAddr,
        busy: mpsc::Sender<Control<C>>,
    ) -> Result<Self, AnycastError> {
        let signer = Ed25519Signer::new(identity)?;
        let connector = endpoint_towards(resolver, identity, admission)?;
        let server = AnycastServer::new(identity.id(), PushConfig::default(), Box::new(signer));
        let handle = runtime::start(server, connector, None);
        let control = handle.control.clone();
        let first_busy = busy.clone();
        let register = tokio::spawn(async move {
            // A first figure before registering, so the resolver's first probe calibrates.
            if let Some(tufr) = time_to_read(&first_busy).await {
                let _ = handle
                    .control
                    .send(Control::Command(ServerCommand::Served { tufr }))
                    .await;
            }
            let mut backoff = Duration::from_millis(500);
            let resolver_id = loop {
                match runtime::dial(&handle.control, resolver, None).await {
                    Ok(id) => break id,
                    Err(why) => {
                        tracing::warn!(%resolver, %why, retry_in = ?backoff, "resolver unreachable");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(8));
                    }
                }
            };
            let join = ServerCommand::Join {
                name,
                address: serve,
                resolver: resolver_id,
            };
            let _ = handle.control.send(Control::Command(join)).await;
            // Keep the handle (its control sender keeps the server running).
            let mut events = handle.events;
            while events.recv().await.is_some() {}
        });
        let report_to = control.clone();
        let report = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                let Some(tufr) = time_to_read(&busy).await else {
                    return;
                };
                if report_to
                    .send(Control::Command(ServerCommand::Served { tufr }))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        });
        Ok(Self {
            tasks: vec![register, report],
            control,
        })
    }

    /// Stops serving.
    pub async fn stop(self) {
        let _ = self.control.send(Control::Shutdown).await;
        for t in self.tasks {
            t.abort();
        }
    }
}
