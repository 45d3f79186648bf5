//! A node's store of the stream: append-only segment files under a directory, bounded by a
//! retention (the oldest segments are deleted once the rest hold at least that much). Readers
//! find the segment holding their position; one that fell behind what is kept is told so and
//! can skip to the live edge. A write that fails (a full disk) stops storing with an error; it
//! never stops the tree.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use tokio::sync::{mpsc, watch};

/// Where a store stands: bytes `[first, end)` are kept.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Extent {
    /// The first byte kept.
    pub first: u64,
    /// One past the last byte written.
    pub end: u64,
}

/// The read side of a store.
#[derive(Clone, Debug)]
pub struct StoreReader {
    segments: Arc<Mutex<BTreeMap<u64, PathBuf>>>,
    extent: watch::Receiver<Extent>,
}

/// What a read found.
#[derive(Debug)]
pub enum Read {
    /// Bytes from the position asked.
    Bytes(Bytes),
    /// The position is before the first byte kept.
    Behind(Extent),
    /// Nothing there yet.
    Empty,
}

impl StoreReader {
    /// Where the store stands now.
    pub fn extent(&self) -> Extent {
        *self.extent.borrow()
    }

    /// A receiver that changes when the store grows.
    pub fn watch(&self) -> watch::Receiver<Extent> {
        self.extent.clone()
    }

    /// Up to `max` bytes from `pos`.
    pub async fn read(&self, pos: u64, max: usize) -> std::io::Result<Read> {
        let extent = self.extent();
        if pos < extent.first {
            return Ok(Read::Behind(extent));
        }
        if pos >= extent.end {
            return Ok(Read::Empty);
        }
        let found = self.segments.lock().ok().and_then(|s| {
            let (&start, path) = s.range(..=pos).next_back()?;
            let next = s.range(pos + 1..).next().map(|(&n, _)| n);
            Some((start, path.clone(), next))
        });
        let Some((start, path, next)) = found else {
            return Ok(Read::Behind(extent));
        };
        let limit = next.unwrap_or(extent.end).min(extent.end);
        let want = ((limit - pos) as usize).min(max);
        let mut file = match tokio::fs::File::open(&path).await {
            Ok(f) => f,
            // Deleted by retention between the lookup and the open.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Read::Behind(self.extent()));
            }
            Err(e) => return Err(e),
        };
        file.seek(std::io::SeekFrom::Start(pos - start)).await?;
        let mut buf = vec![0u8; want];
        let n = file.read(&mut buf).await?;
        buf.truncate(n);
        Ok(if n == 0 {
            Read::Empty
        } else {
            Read::Bytes(Bytes::from(buf))
        })
    }
}

/// Opens a store in `dir` (emptied first: a node's stream starts with its join), keeping at
/// least `retention` bytes in segments of `segment` bytes. Returns the reader and the sender
/// the writer task takes chunks `(offset, bytes)` from; `error` receives why storing stopped.
pub fn open(
    dir: &Path,
    retention: u64,
    segment: u64,
    error: Arc<Mutex<Option<String>>>,
) -> std::io::Result<(StoreReader, mpsc::UnboundedSender<(u64, Bytes)>)> {
    if dir.exists() {
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "ts") {
                std::fs::remove_file(path)?;
            }
        }
    }
    std::fs::create_dir_all(dir)?;
    let segments = Arc::new(Mutex::new(BTreeMap::new()));
    let (extent_tx, extent_rx) = watch::channel(Extent::default());
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(write(
        dir.to_owned(),
        retention.max(segment),
        segment.max(PACKET_ALIGN),
        segments.clone(),
        extent_tx,
        rx,
        error,
    ));
    Ok((
        StoreReader {
            segments,
            extent: extent_rx,
        },
        tx,
    ))
}

const PACKET_ALIGN: u64 = 188;

async fn write(
    dir: PathBuf,
    retention: u64,
    segment: u64,
    segments: Arc<Mutex<BTreeMap<u64, PathBuf>>>,
    extent: watch::Sender<Extent>,
    mut chunks: mpsc::UnboundedReceiver<(u64, Bytes)>,
    error: Arc<Mutex<Option<String>>>,
) {
    let mut end = 0u64;
    let mut first = 0u64;
    let mut current: Option<(u64, tokio::fs::File)> = None;
    let fail = |why: String| {
        tracing::error!(%why, "storing stopped; the stream goes on down the tree");
        if let Ok(mut slot) = error.lock() {
            *slot = Some(why);
        }
    };
    while let Some((offset, bytes)) = chunks.recv().await {
        let len = bytes.len() as u64;
        if offset + len <= end || offset > end {
            continue;
        }
        let mut fresh = bytes.slice((end - offset) as usize..);
        while !fresh.is_empty() {
            let full = current
                .as_ref()
                .is_some_and(|(start, _)| end - start >= segment);
            if current.is_none() || full {
                let path = dir.join(format!("{end:020}.ts"));
                match tokio::fs::File::create(&path).await {
                    Ok(f) => current = Some((end, f)),
                    Err(e) => return fail(format!("segment {}: {e}", path.display())),
                }
                if let Ok(mut s) = segments.lock() {
                    s.insert(end, path);
                }
            }
            let Some((start, file)) = current.as_mut() else {
                return;
            };
            let room = (segment - (end - *start)) as usize;
            let part = fresh.split_to(room.min(fresh.len()));
            if let Err(e) = file.write_all(&part).await {
                return fail(format!("writing byte {end}: {e}"));
            }
            if let Err(e) = file.flush().await {
                return fail(format!("writing byte {end}: {e}"));
            }
            end += part.len() as u64;
        }
        // Drop the oldest segments while the others still hold the retention.
        let removed: Vec<PathBuf> = segments
            .lock()
            .map(|mut s| {
                let mut gone = Vec::new();
                while s.len() > 1 {
                    let second = s.keys().nth(1).copied().unwrap_or(end);
                    if end - second < retention {
                        break;
                    }
                    if let Some((_, path)) = s.pop_first() {
                        gone.push(path);
                    }
                    first = second;
                }
                gone
            })
            .unwrap_or_default();
        let _ = extent.send(Extent { first, end });
        for path in removed {
            let _ = tokio::fs::remove_file(path).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn segments_rotate_old_ones_go_and_readers_behind_are_told() {
        let dir = std::env::temp_dir().join(format!("esm-store-{}", std::process::id()));
        let error = Arc::new(Mutex::new(None));
        let (reader, tx) = open(&dir, 1000, 400, error.clone()).unwrap();
        let mut watch = reader.watch();
        let data: Vec<u8> = (0..3000u32).map(|i| i as u8).collect();
        for (i, c) in data.chunks(250).enumerate() {
            tx.send(((i * 250) as u64, Bytes::copy_from_slice(c)))
                .unwrap();
        }
        // A repeat and a chunk beyond a gap change nothing.
        tx.send((0, Bytes::from_static(b"zz"))).unwrap();
        tx.send((5000, Bytes::from_static(b"zz"))).unwrap();
        while watch.borrow_and_update().end < 3000 {
            watch.changed().await.unwrap();
        }
        let e = reader.extent();
        assert_eq!(e.end, 3000);
        assert!(e.first >= 1600 && 3000 - e.first >= 1000, "{e:?}");
        let files = std::fs::read_dir(&dir).unwrap().count();
        assert!(files <= 4, "{files} segments kept");
        // Reading across segments gives the bytes back.
        let mut pos = e.first;
        let mut back = Vec::new();
        while pos < 3000 {
            match reader.read(pos, 300).await.unwrap() {
                Read::Bytes(b) => {
                    pos += b.len() as u64;
                    back.extend_from_slice(&b);
                }
                other => panic!("{other:?} at {pos}"),
            }
        }
        assert_eq!(back, data[e.first as usize..]);
        assert!(matches!(reader.read(0, 10).await.unwrap(), Read::Behind(_)));
        assert!(matches!(reader.read(3000, 10).await.unwrap(), Read::Empty));
        assert!(error.lock().unwrap().is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
