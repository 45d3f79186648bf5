//! The root's input: MPEG-TS from a file (paced by the stream's own PCR clock unless fast) or
//! stdin (published as it arrives, in batches of a few milliseconds), whole packets only.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use overcast::Command;
use tokio::sync::mpsc;

use super::ts::{PACKET, PcrClock, TsError, TsReader, pcr};
use crate::runtime::Control;

/// Packets per published chunk at most.
const CHUNK_PACKETS: usize = 64;
/// The longest a live input's packet waits to be published with others.
const LIVE_BATCH: Duration = Duration::from_millis(5);

/// Reads the root's input and publishes it, whole packets only.
pub(super) async fn publish_input(
    input: PathBuf,
    fast: bool,
    control: mpsc::Sender<Control<Command>>,
    state: Arc<Mutex<(bool, Option<String>)>>,
) {
    let live = input.as_os_str() == "-";
    let reader: Box<dyn tokio::io::AsyncRead + Unpin + Send> = if live {
        Box::new(tokio::io::stdin())
    } else {
        match tokio::fs::File::open(&input).await {
            Ok(f) => Box::new(f),
            Err(e) => {
                let why = format!("input {}: {e}", input.display());
                tracing::error!(%why);
                if let Ok(mut s) = state.lock() {
                    *s = (true, Some(why));
                }
                return;
            }
        }
    };
    // Packets come from a reader task (a read cancelled half way would lose bytes), so the
    // publisher can wait for the next one with a deadline.
    let (packets_tx, mut packets) = mpsc::channel::<Result<[u8; PACKET], TsError>>(1024);
    tokio::spawn(async move {
        // Buffered: a file read 188 bytes at a time would cost a read (a blocking-pool task
        // in tokio) per packet.
        let mut ts = TsReader::new(tokio::io::BufReader::with_capacity(256 << 10, reader));
        loop {
            let item = match ts.next_packet().await {
                Ok(Some(p)) => Ok(p),
                Ok(None) => return,
                Err(e) => Err(e),
            };
            let stop = item.is_err();
            if packets_tx.send(item).await.is_err() || stop {
                return;
            }
        }
    });
    let mut clock = PcrClock::default();
    let mut chunk: Vec<u8> = Vec::with_capacity(CHUNK_PACKETS * PACKET);
    let mut offset = 0u64;
    let mut chunk_started: Option<tokio::time::Instant> = None;
    let publish = |chunk: &mut Vec<u8>, offset: &mut u64| {
        let bytes = Bytes::from(std::mem::take(chunk));
        let at = *offset;
        *offset += bytes.len() as u64;
        let control = control.clone();
        async move {
            bytes.is_empty()
                || control
                    .send(Control::Command(Command::Publish { offset: at, bytes }))
                    .await
                    .is_ok()
        }
    };
    let error = loop {
        // A live input is published at most LIVE_BATCH after its first unpublished packet.
        let next = match chunk_started.filter(|_| live) {
            Some(t0) => match tokio::time::timeout_at(t0 + LIVE_BATCH, packets.recv()).await {
                Ok(next) => next,
                Err(_) => {
                    chunk_started = None;
                    if !publish(&mut chunk, &mut offset).await {
                        break None;
                    }
                    continue;
                }
            },
            None => packets.recv().await,
        };
        match next {
            Some(Ok(packet)) => {
                let due = (!fast && !live)
                    .then(|| pcr(&packet).map(|p| clock.due(p)))
                    .flatten();
                if let Some(due) = due
                    && due > tokio::time::Instant::now()
                {
                    if !publish(&mut chunk, &mut offset).await {
                        break None;
                    }
                    tokio::time::sleep_until(due).await;
                }
                if chunk.is_empty() {
                    chunk_started = Some(tokio::time::Instant::now());
                }
                chunk.extend_from_slice(&packet);
                if chunk.len() >= CHUNK_PACKETS * PACKET {
                    chunk_started = None;
                    if !publish(&mut chunk, &mut offset).await {
                        break None;
                    }
                }
            }
            Some(Err(e)) => break Some(e.to_string()),
            None => break None,
        }
    };
    publish(&mut chunk, &mut offset).await;
    match &error {
        Some(why) => tracing::error!(%why, published = offset, "input stopped"),
        None => tracing::info!(published = offset, "input ended"),
    }
    if let Ok(mut s) = state.lock() {
        *s = (true, error);
    }
}
