//! A member's registration as a server of its group's anycast name: it registers, answers the
//! resolver's probes, and pushes how long its own runtime takes to read a request.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anycast_resolver::{AnycastName, AnycastServer, PushConfig, ServerCommand, ServerEvent};
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

/// Dials the resolver at `resolver` until it answers (backing off from 0.5 s to 8 s): its id.
async fn dial_until_answered<C>(
    control: &mpsc::Sender<Control<C>>,
    resolver: SocketAddr,
) -> overlay_core::NodeId {
    let mut backoff = Duration::from_millis(500);
    loop {
        match runtime::dial(control, resolver, None).await {
            Ok(id) => return id,
            Err(why) => {
                tracing::warn!(%resolver, %why, retry_in = ?backoff, "resolver unreachable");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(8));
            }
        }
    }
}

/// A member's registration as a server of its group's anycast name.
#[derive(Debug)]
pub struct AnycastEntry {
    tasks: Vec<tokio::task::JoinHandle<()>>,
    control: mpsc::Sender<Control<ServerCommand>>,
}

impl AnycastEntry {
    /// Registers `serve` (the member's QUIC address) under `name` with the resolver at
    /// `resolver` (retried with backoff until it answers, and again whenever the resolver's
    /// connection goes down), and every second reports how long `busy` (the member's own
    /// runtime) takes to read a request.
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
            let control = handle.control.clone();
            let mut events = handle.events;
            // Join, and join again each time the resolver's connection goes down: a
            // restarted resolver holds no registration.
            loop {
                let resolver_id = dial_until_answered(&control, resolver).await;
                let join = ServerCommand::Join {
                    name: name.clone(),
                    address: serve,
                    resolver: resolver_id,
                };
                if control.send(Control::Command(join)).await.is_err() {
                    return;
                }
                loop {
                    match events.recv().await {
                        Some(ServerEvent::ResolverLost { resolver: lost })
                            if lost == resolver_id =>
                        {
                            tracing::info!(%resolver, "resolver connection lost; registering again");
                            break;
                        }
                        Some(_) => {}
                        None => return,
                    }
                }
            }
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
