//! A node's store of the stream: append-only segment files under a directory, bounded by a
//! retention (the oldest segments are deleted once the rest hold at least that much). Readers
//! find the segment holding their position; one that fell behind what is kept is told so and
//! can skip to the live edge.
//!
//! The store never holds up the tree: chunks come in through a bounded queue that a full queue
//! refuses ([`StoreWriter::offer`]), so the caller keeps its own cursor and offers again later
//! (from the node's memory). A write that fails (a full disk) is retried with backoff, and
//! storing resumes when space returns; bytes the store never got (the node's memory moved on
//! meanwhile) are recorded as skipped, and the store starts again after them. A store opened on
//! a folder that already holds segments keeps their longest contiguous run, so a restarted
//! relay resumes from what it holds.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncSeekExt, AsyncWriteExt};
use tokio::sync::{mpsc, watch};

/// Where a store stands: bytes `[first, end)` are kept.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Extent {
    /// The first byte kept.
    pub first: u64,
    /// One past the last byte written.
    pub end: u64,
}

/// Chunks the writer's queue holds before it refuses more: a few megabytes of the stream,
/// enough to ride out a slow write without letting a stuck disk grow memory.
const QUEUE_CHUNKS: usize = 256;

/// Queued chunks written to the disk together at most.
const BATCH_CHUNKS: usize = 64;
/// Bytes gathered before they are written, at most (beyond it they are written at once).
const BATCH_BYTES: usize = 1 << 20;

/// The first wait before a failed write is tried again; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// The longest wait between tries of a failed write.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// How the store is doing, for status pages and for telling the root whether this node can
/// serve viewers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Health {
    /// Why the last write failed, while writes fail (cleared when one succeeds).
    pub error: Option<String>,
    /// Writes that failed and were tried again.
    pub retries: u64,
    /// Bytes of the stream the store never got (the node's memory moved past them while the
    /// disk could not keep up), in all.
    pub skipped: u64,
}

impl Health {
    /// Whether writes succeed now.
    pub fn writing(&self) -> bool {
        self.error.is_none()
    }
}

/// The read side of a store.
#[derive(Clone, Debug)]
pub struct StoreReader {
    segments: Arc<Mutex<BTreeMap<u64, PathBuf>>>,
    extent: watch::Receiver<Extent>,
    health: Arc<Mutex<Health>>,
    /// The stream the store held when it was opened (resumed), if it knew.
    resumed_stream: Option<u64>,
    /// Disk reads in flight at once: each runs on tokio's blocking pool, so without a cap a
    /// hundred viewers reading old bytes would start a hundred threads (stacks and malloc
    /// arenas that stay resident).
    reads: Arc<tokio::sync::Semaphore>,
}

/// Disk reads a store serves at once (the rest wait their turn).
const CONCURRENT_READS: usize = 4;

/// The write side of a store: offers never wait.
#[derive(Debug)]
pub struct StoreWriter {
    chunks: mpsc::Sender<(u64, u64, Bytes)>,
    /// The stream being stored and where it starts, numbered so the writer can tell chunks
    /// of an earlier stream from this one's.
    start: watch::Sender<Start>,
}

/// Which stream a store holds, from which byte.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Start {
    /// Bumped at every restart; queued chunks carry the number they were offered under.
    generation: u64,
    /// The stream (0: none named yet).
    stream: u64,
    /// Its first byte here.
    offset: u64,
}

impl StoreWriter {
    /// Offers the bytes at `offset`; `false` when the queue is full (offer them again later;
    /// nothing was taken).
    pub fn offer(&self, offset: u64, bytes: Bytes) -> bool {
        let generation = self.start.borrow().generation;
        self.chunks.try_send((generation, offset, bytes)).is_ok()
    }

    /// Stores stream `stream` from byte `offset` on, dropping what the store held (another
    /// stream, or this one before a gap) and anything offered before.
    pub fn restart(&self, stream: u64, offset: u64) {
        self.start.send_modify(|s| {
            *s = Start {
                generation: s.generation + 1,
                stream,
                offset,
            }
        });
    }

    /// Whether the queue has room for another chunk now.
    pub fn has_room(&self) -> bool {
        self.chunks.capacity() > 0
    }
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

    /// The stream a resumed store holds (`None`: it was opened empty, or did not know).
    pub fn resumed_stream(&self) -> Option<u64> {
        self.resumed_stream
    }

    /// How the store is doing.
    pub fn health(&self) -> Health {
        self.health.lock().map(|h| h.clone()).unwrap_or_default()
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
        // The semaphore is never closed; a closed one would only mean no cap.
        let _turn = self.reads.acquire().await.ok();
        let offset = pos - start;
        let read = tokio::task::spawn_blocking(move || read_at(&path, offset, want))
            .await
            .map_err(std::io::Error::other)?;
        let buf = match read {
            Ok(b) => b,
            // Deleted by retention between the lookup and the open.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Read::Behind(self.extent()));
            }
            Err(e) => return Err(e),
        };
        let n = buf.len();
        Ok(if n == 0 {
            Read::Empty
        } else {
            Read::Bytes(Bytes::from(buf))
        })
    }
}

/// Up to `want` bytes of the file at `path` from `offset` (fewer at its end), in one buffer.
fn read_at(path: &Path, offset: u64, want: usize) -> std::io::Result<Vec<u8>> {
    use std::io::{Read as _, Seek as _};
    let mut file = std::fs::File::open(path)?;
    file.seek(std::io::SeekFrom::Start(offset))?;
    let mut buf = vec![0u8; want];
    let mut got = 0;
    while got < want {
        match file.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(got);
    Ok(buf)
}

/// The name of the segment file starting at byte `start`.
fn segment_name(start: u64) -> String {
    format!("{start:020}.ts")
}

/// The segments already in `dir`: the longest contiguous run that ends with the newest one
/// (the rest are deleted), by start offset, with the extent they cover.
fn existing_segments(dir: &Path) -> std::io::Result<(BTreeMap<u64, PathBuf>, Extent)> {
    let mut found: BTreeMap<u64, (PathBuf, u64)> = BTreeMap::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let start = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".ts"))
            .filter(|n| n.len() == 20)
            .and_then(|n| n.parse::<u64>().ok());
        // A file not named like a segment of ours is left alone.
        if let Some(start) = start {
            let len = std::fs::metadata(&path)?.len();
            found.insert(start, (path, len));
        }
    }
    // Walk back from the newest segment while each one ends where the next begins.
    let mut run: Vec<u64> = Vec::new();
    let mut expected_end: Option<u64> = None;
    for (&start, (_, len)) in found.iter().rev() {
        if expected_end.is_some_and(|e| start + len != e) || *len == 0 {
            break;
        }
        run.push(start);
        expected_end = Some(start);
    }
    let mut segments = BTreeMap::new();
    let mut extent = Extent::default();
    if let (Some(&first), Some(&last)) = (run.last(), run.first()) {
        extent = Extent {
            first,
            end: last + found[&last].1,
        };
    }
    for (start, (path, _)) in found {
        if run.contains(&start) {
            segments.insert(start, path);
        } else {
            std::fs::remove_file(path)?;
        }
    }
    Ok((segments, extent))
}

/// The file that names the stream a store holds.
const STREAM_FILE: &str = "stream";

/// The stream named in `dir`, if any.
fn stream_in(dir: &Path) -> Option<u64> {
    std::fs::read_to_string(dir.join(STREAM_FILE))
        .ok()?
        .trim()
        .parse()
        .ok()
        .filter(|&s| s != 0)
}

/// Opens a store in `dir`, keeping at least `retention` bytes in segments of `segment` bytes.
/// With `resume`, the segments already there are kept (their longest contiguous run) when the
/// store knows which stream they hold ([`StoreReader::resumed_stream`]), and the store goes on
/// from their end; otherwise they are deleted first (a new stream).
pub fn open(
    dir: &Path,
    retention: u64,
    segment: u64,
    resume: bool,
) -> std::io::Result<(StoreReader, StoreWriter)> {
    std::fs::create_dir_all(dir)?;
    let resumed_stream = stream_in(dir).filter(|_| resume);
    let (segments, extent) = if resumed_stream.is_some() {
        existing_segments(dir)?
    } else {
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "ts") {
                std::fs::remove_file(path)?;
            }
        }
        (BTreeMap::new(), Extent::default())
    };
    let resumed_stream = resumed_stream.filter(|_| extent.end > extent.first);
    let segments = Arc::new(Mutex::new(segments));
    let (extent_tx, extent_rx) = watch::channel(extent);
    let (tx, rx) = mpsc::channel(QUEUE_CHUNKS);
    let (start_tx, start_rx) = watch::channel(Start {
        generation: 0,
        stream: resumed_stream.unwrap_or(0),
        offset: extent.end,
    });
    let health = Arc::new(Mutex::new(Health::default()));
    let writer = Writer {
        dir: dir.to_owned(),
        retention: retention.max(segment),
        segment: segment.max(PACKET_ALIGN),
        segments: segments.clone(),
        extent: extent_tx,
        health: health.clone(),
        first: extent.first,
        end: extent.end,
        current: None,
        generation: 0,
        start: start_rx,
        pending: BytesMut::new(),
    };
    tokio::spawn(writer.run(rx));
    Ok((
        StoreReader {
            segments,
            extent: extent_rx,
            health,
            resumed_stream,
            reads: Arc::new(tokio::sync::Semaphore::new(CONCURRENT_READS)),
        },
        StoreWriter {
            chunks: tx,
            start: start_tx,
        },
    ))
}

const PACKET_ALIGN: u64 = 188;

/// The writer task's state.
struct Writer {
    dir: PathBuf,
    retention: u64,
    segment: u64,
    segments: Arc<Mutex<BTreeMap<u64, PathBuf>>>,
    extent: watch::Sender<Extent>,
    health: Arc<Mutex<Health>>,
    first: u64,
    end: u64,
    /// The segment being written: its start and its file (`None` until the next write opens
    /// one).
    current: Option<(u64, tokio::fs::File)>,
    /// The restart this writer is at.
    generation: u64,
    /// Bytes taken in and not yet written: they follow `end`.
    pending: BytesMut,
    /// Restarts, as the write side asks for them.
    start: watch::Receiver<Start>,
}

impl Writer {
    async fn run(mut self, mut chunks: mpsc::Receiver<(u64, u64, Bytes)>) {
        while let Some(item) = chunks.recv().await {
            // Take what else is queued, so consecutive chunks go to the disk in one write.
            let mut batch = vec![item];
            while batch.len() < BATCH_CHUNKS {
                match chunks.try_recv() {
                    Ok(item) => batch.push(item),
                    Err(_) => break,
                }
            }
            for (generation, offset, bytes) in batch {
                self.take(generation, offset, bytes).await;
            }
            self.write_pending().await;
        }
    }

    /// Takes in a chunk: what is new of it joins the bytes waiting to be written.
    async fn take(&mut self, generation: u64, offset: u64, bytes: Bytes) {
        let start = *self.start.borrow();
        if start.generation != self.generation {
            self.pending.clear();
            self.restart(start);
        }
        if generation != self.generation {
            return; // offered before the restart: another stream's, or before a gap
        }
        let end = self.end + self.pending.len() as u64;
        let len = bytes.len() as u64;
        if offset + len <= end {
            return;
        }
        if offset > end {
            self.write_pending().await;
            self.start_over(offset);
        }
        let end = self.end + self.pending.len() as u64;
        self.pending
            .extend_from_slice(&bytes[(end - offset) as usize..]);
        if self.pending.len() >= BATCH_BYTES {
            self.write_pending().await;
        }
    }

    /// Writes the bytes waiting, segment by segment, then retires old segments.
    async fn write_pending(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let mut data = std::mem::take(&mut self.pending).freeze();
        while !data.is_empty() {
            let room = self.room();
            let part = data.split_to(room.min(data.len()));
            self.write_until_done(&part).await;
            self.end += part.len() as u64;
        }
        self.retire_old();
    }

    /// Starts over: stream `start.stream` from `start.offset`, nothing held.
    fn restart(&mut self, start: Start) {
        self.generation = start.generation;
        self.current = None;
        self.drop_all_segments();
        self.first = start.offset;
        self.end = start.offset;
        let _ = self.extent.send(Extent {
            first: start.offset,
            end: start.offset,
        });
        let named = std::fs::write(self.dir.join(STREAM_FILE), format!("{}\n", start.stream));
        if let Err(why) = named {
            tracing::warn!(%why, "the store could not note its stream; it will not resume");
            let _ = std::fs::remove_file(self.dir.join(STREAM_FILE));
        }
    }

    /// Deletes every segment.
    fn drop_all_segments(&mut self) {
        let old: Vec<PathBuf> = self
            .segments
            .lock()
            .map(|mut s| std::mem::take(&mut *s).into_values().collect())
            .unwrap_or_default();
        for path in old {
            let _ = std::fs::remove_file(path);
        }
    }

    /// The stream goes on at `offset`, after bytes this store never got: what it holds no
    /// longer joins up with what comes, so it starts again there.
    fn start_over(&mut self, offset: u64) {
        let empty = self.first == self.end;
        if !empty {
            let skipped = offset - self.end;
            tracing::warn!(
                from = self.end,
                to = offset,
                "the store missed bytes the node's memory no longer holds; it starts again after them"
            );
            if let Ok(mut h) = self.health.lock() {
                h.skipped += skipped;
            }
        }
        self.current = None;
        self.drop_all_segments();
        self.first = offset;
        self.end = offset;
        let _ = self.extent.send(Extent {
            first: offset,
            end: offset,
        });
    }

    /// Bytes the current segment takes before the next one starts.
    fn room(&self) -> usize {
        match &self.current {
            Some((start, _)) if self.end - start < self.segment => {
                (self.segment - (self.end - start)) as usize
            }
            _ => self.segment as usize,
        }
    }

    /// Writes `part` at the end of the stream, trying again with backoff until it is written
    /// (a full disk: storing waits for space, and the queue in front refuses new chunks).
    async fn write_until_done(&mut self, part: &[u8]) {
        let mut backoff = FIRST_BACKOFF;
        loop {
            match self.write(part).await {
                Ok(()) => {
                    if let Ok(mut h) = self.health.lock()
                        && h.error.take().is_some()
                    {
                        tracing::info!(at = self.end, "the store writes again");
                    }
                    return;
                }
                Err(why) => {
                    let first_failure = self
                        .health
                        .lock()
                        .map(|mut h| {
                            h.retries += 1;
                            h.error.replace(why.clone()).is_none()
                        })
                        .unwrap_or(false);
                    if first_failure {
                        tracing::error!(%why, "storing waits; the stream goes on down the tree");
                    }
                    // The segment may hold part of the write: open it afresh next time.
                    self.current = None;
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    /// One try at writing `part` at `self.end`.
    async fn write(&mut self, part: &[u8]) -> Result<(), String> {
        let full = self
            .current
            .as_ref()
            .is_some_and(|(start, _)| self.end - start >= self.segment);
        if full {
            self.current = None;
        }
        let reopened = self.current.is_none();
        if reopened {
            self.current = Some(self.open_segment().await?);
        }
        let Some((start, file)) = self.current.as_mut() else {
            return Err("no segment open".to_owned());
        };
        let at = self.end - *start;
        let written = async {
            if reopened {
                // A segment opened afresh (a new one is empty; one a failed try left may hold
                // part of it): cut back to where the stream ends, and write there.
                file.set_len(at).await?;
                file.seek(std::io::SeekFrom::Start(at)).await?;
            }
            file.write_all(part).await?;
            file.flush().await
        };
        written
            .await
            .map_err(|e| format!("writing byte {}: {e}", self.end))
    }

    /// The segment that holds byte `self.end`: the last one if it has room (after a failed
    /// write), else a new one starting there.
    async fn open_segment(&mut self) -> Result<(u64, tokio::fs::File), String> {
        let last = self
            .segments
            .lock()
            .ok()
            .and_then(|s| s.last_key_value().map(|(&k, p)| (k, p.clone())));
        if let Some((start, path)) = last.filter(|(start, _)| self.end - start < self.segment) {
            let file = tokio::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .await
                .map_err(|e| format!("segment {}: {e}", path.display()))?;
            return Ok((start, file));
        }
        let path = self.dir.join(segment_name(self.end));
        let file = tokio::fs::File::create(&path)
            .await
            .map_err(|e| format!("segment {}: {e}", path.display()))?;
        if let Ok(mut s) = self.segments.lock() {
            s.insert(self.end, path);
        }
        Ok((self.end, file))
    }

    /// Drops the oldest segments while the others still hold the retention, and publishes
    /// the extent.
    fn retire_old(&mut self) {
        let end = self.end;
        let retention = self.retention;
        let mut first = self.first;
        let removed: Vec<PathBuf> = self
            .segments
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
        self.first = first;
        let _ = self.extent.send(Extent { first, end });
        for path in removed {
            let _ = std::fs::remove_file(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("esm-store-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    async fn until_end(reader: &StoreReader, end: u64) {
        let mut watch = reader.watch();
        while watch.borrow_and_update().end < end {
            watch.changed().await.unwrap();
        }
    }

    async fn read_all(reader: &StoreReader, from: u64, to: u64) -> Vec<u8> {
        let mut pos = from;
        let mut back = Vec::new();
        while pos < to {
            match reader.read(pos, 300).await.unwrap() {
                Read::Bytes(b) => {
                    pos += b.len() as u64;
                    back.extend_from_slice(&b);
                }
                other => panic!("{other:?} at {pos}"),
            }
        }
        back
    }

    #[tokio::test]
    async fn segments_rotate_old_ones_go_and_readers_behind_are_told() {
        let dir = temp("rotate");
        let (reader, writer) = open(&dir, 1000, 400, false).unwrap();
        let data: Vec<u8> = (0..3000u32).map(|i| i as u8).collect();
        for (i, c) in data.chunks(250).enumerate() {
            assert!(writer.offer((i * 250) as u64, Bytes::copy_from_slice(c)));
        }
        // A repeat changes nothing.
        assert!(writer.offer(0, Bytes::from_static(b"zz")));
        until_end(&reader, 3000).await;
        let e = reader.extent();
        assert_eq!(e.end, 3000);
        assert!(e.first >= 1600 && 3000 - e.first >= 1000, "{e:?}");
        let files = std::fs::read_dir(&dir).unwrap().count();
        assert!(files <= 4, "{files} segments kept");
        assert_eq!(
            read_all(&reader, e.first, 3000).await,
            data[e.first as usize..]
        );
        assert!(matches!(reader.read(0, 10).await.unwrap(), Read::Behind(_)));
        assert!(matches!(reader.read(3000, 10).await.unwrap(), Read::Empty));
        assert!(reader.health().writing());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_store_starts_where_its_first_chunk_does_and_starts_over_after_a_gap() {
        let dir = temp("gap");
        let (reader, writer) = open(&dir, 10_000, 400, false).unwrap();
        // A node that joins late: its stream starts at byte 5000.
        assert!(writer.offer(5000, Bytes::from(vec![1u8; 500])));
        until_end(&reader, 5500).await;
        assert_eq!(
            reader.extent(),
            Extent {
                first: 5000,
                end: 5500
            }
        );
        assert_eq!(reader.health().skipped, 0, "a first chunk skips nothing");
        // Bytes 5500..6000 never reach the store.
        assert!(writer.offer(6000, Bytes::from(vec![2u8; 100])));
        until_end(&reader, 6100).await;
        assert_eq!(
            reader.extent(),
            Extent {
                first: 6000,
                end: 6100
            }
        );
        assert_eq!(reader.health().skipped, 500);
        assert_eq!(read_all(&reader, 6000, 6100).await, vec![2u8; 100]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_reopened_store_resumes_from_its_longest_run_of_segments() {
        let dir = temp("resume");
        // A relay that joined late: its stream starts at byte 1000.
        let data: Vec<u8> = (0..2000u32).map(|i| (i * 7) as u8).collect();
        {
            let (reader, writer) = open(&dir, 10_000, 400, false).unwrap();
            writer.restart(42, 1000);
            for (i, c) in data.chunks(100).enumerate() {
                assert!(writer.offer(1000 + (i * 100) as u64, Bytes::copy_from_slice(c)));
            }
            until_end(&reader, 3000).await;
        }
        // A stray older segment that does not join up, and a file of someone else's.
        std::fs::write(dir.join(segment_name(10)), b"stale").unwrap();
        std::fs::write(dir.join("notes.txt"), b"keep me").unwrap();
        let (reader, writer) = open(&dir, 10_000, 400, true).unwrap();
        assert_eq!(
            reader.extent(),
            Extent {
                first: 1000,
                end: 3000
            }
        );
        assert_eq!(read_all(&reader, 1000, 3000).await, data);
        assert!(!dir.join(segment_name(10)).exists());
        assert!(dir.join("notes.txt").exists());
        // It goes on from where it was.
        assert!(writer.offer(3000, Bytes::from_static(b"more")));
        until_end(&reader, 3004).await;
        assert_eq!(
            read_all(&reader, 2996, 3004).await,
            [&data[1996..], b"more"].concat()
        );
        // Without resume, a new stream empties it.
        let (reader, _writer) = open(&dir, 10_000, 400, false).unwrap();
        assert_eq!(reader.extent(), Extent::default());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_restart_drops_what_was_held_and_what_was_offered_before() {
        let dir = temp("restart");
        let (reader, writer) = open(&dir, 10_000, 400, false).unwrap();
        writer.restart(1, 0);
        assert!(writer.offer(0, Bytes::from(vec![1u8; 300])));
        until_end(&reader, 300).await;
        // Another stream from byte 0: the old bytes go, and a chunk offered before the restart
        // is never written.
        assert!(writer.offer(300, Bytes::from(vec![1u8; 100])));
        writer.restart(2, 0);
        assert!(writer.offer(0, Bytes::from(vec![2u8; 200])));
        let mut watch = reader.watch();
        while *watch.borrow_and_update() != (Extent { first: 0, end: 200 }) {
            watch.changed().await.unwrap();
        }
        assert_eq!(read_all(&reader, 0, 200).await, vec![2u8; 200]);
        assert_eq!(stream_in(&dir), Some(2));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_full_queue_refuses_instead_of_growing() {
        let dir = temp("queue");
        let (_reader, writer) = open(&dir, 1 << 30, 4 << 20, false).unwrap();
        // Offered faster than any disk can take them, some are refused at once (never queued
        // without bound).
        let refused = (0..100_000u64)
            .filter(|i| !writer.offer(i * 1000, Bytes::from(vec![0u8; 1000])))
            .count();
        assert!(refused > 0);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
