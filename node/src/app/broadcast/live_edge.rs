//! Where a viewer of the live edge starts: the latest packet in the last [`WINDOW`] bytes of the
//! store that opens a random-access point (a keyframe), so a player decodes from its first
//! frame; the packet-aligned end when there is none. Found once per growth of the store, not per
//! request: the answer is kept with the store's end it was found for, and when the store has
//! grown only the new bytes are scanned. Before this, each live request read and scanned 2 MiB
//! (200 concurrent ones took a root from 42 MB to 372 MB).

use super::store::{Read, StoreReader};
use super::ts::{PACKET, opens_random_access};

/// How far back from the end a random-access point is looked for: 2 MiB, about four seconds of
/// a 4 Mbit/s stream, more than the keyframe interval of a live encoder (one or two seconds).
pub(super) const WINDOW: u64 = 2 << 20;

/// Bytes read from the store at a time while scanning.
const READ: usize = 64 * 1024;

const P: u64 = PACKET as u64;

/// The live edge as last found.
#[derive(Debug, Default)]
pub(super) struct LiveEdge {
    /// The packet-aligned end of the store scanned up to.
    scanned: u64,
    /// The latest random-access point found before `scanned`.
    latest: Option<u64>,
}

impl LiveEdge {
    /// Where a live viewer of `store` starts now.
    pub(super) async fn start(&mut self, store: &StoreReader) -> u64 {
        let extent = store.extent();
        let end = extent.end - extent.end % P;
        let window = align_up(end.saturating_sub(WINDOW).max(extent.first));
        if end != self.scanned {
            // Resume where the last scan ended if that is inside the window, else start over.
            let from = if (window..end).contains(&self.scanned) {
                self.scanned
            } else {
                self.latest = None;
                window
            };
            if self.scan(store, from, end).await.is_none() {
                *self = Self::default();
                return end;
            }
            self.scanned = end;
        }
        self.latest.filter(|&at| at >= window).unwrap_or(end)
    }

    /// Scans whole packets in `[from, end)` (both aligned) for random-access points; `None` if
    /// the store could not give them (behind its retention, or an error).
    async fn scan(&mut self, store: &StoreReader, from: u64, end: u64) -> Option<()> {
        // Bytes read but not yet scanned: a packet cut by a read's end waits for the next read.
        let mut partial: Vec<u8> = Vec::with_capacity(PACKET);
        let mut at = from;
        let mut pos = from;
        while pos < end {
            let want = usize::try_from(end - pos).map_or(READ, |n| n.min(READ));
            let Ok(Read::Bytes(b)) = store.read(pos, want).await else {
                return None;
            };
            pos += b.len() as u64;
            let mut bytes: &[u8] = &b;
            if !partial.is_empty() {
                let fill = (PACKET - partial.len()).min(bytes.len());
                partial.extend_from_slice(&bytes[..fill]);
                bytes = &bytes[fill..];
                if partial.len() < PACKET {
                    continue;
                }
                if opens_random_access(&partial) {
                    self.latest = Some(at);
                }
                at += P;
                partial.clear();
            }
            let mut packets = bytes.chunks_exact(PACKET);
            for packet in &mut packets {
                if opens_random_access(packet) {
                    self.latest = Some(at);
                }
                at += P;
            }
            partial.extend_from_slice(packets.remainder());
        }
        Some(())
    }
}

/// The first packet boundary at or after `x` (the last one below 2^64 past it).
fn align_up(x: u64) -> u64 {
    x.checked_next_multiple_of(P)
        .unwrap_or(u64::MAX - u64::MAX % P)
}

#[cfg(test)]
mod tests {

    use bytes::Bytes;

    use super::super::store;
    use super::*;

    #[test]
    fn alignment_near_the_top_of_the_range_is_no_panic() {
        assert_eq!(align_up(1), P);
        assert_eq!(align_up(u64::MAX), u64::MAX - u64::MAX % P);
    }

    /// A packet of PID 0x100; `key` makes it open a random-access point (adaptation field with
    /// the indicator set, then a video PES start).
    fn packet(key: bool) -> [u8; PACKET] {
        let mut p = [0xffu8; PACKET];
        p[..4].copy_from_slice(&[0x47, 0x41, 0x00, 0x30]);
        if key {
            p[4..8].copy_from_slice(&[1, 0x40, 0, 0]);
            p[8..10].copy_from_slice(&[1, 0xe0]);
        } else {
            p[1] = 0x01;
            p[3] = 0x10;
        }
        p
    }

    /// The old way: read the whole window and scan it.
    fn reference(data: &[u8], first: u64) -> u64 {
        let end = data.len() as u64 - data.len() as u64 % P;
        let from = align_up(end.saturating_sub(WINDOW).max(first));
        data[from as usize..end as usize]
            .chunks_exact(PACKET)
            .rposition(opens_random_access)
            .map_or(end, |i| from + (i * PACKET) as u64)
    }

    #[tokio::test]
    async fn the_live_start_follows_the_stores_growth_and_matches_a_full_scan() {
        let dir = std::env::temp_dir().join(format!("esm-live-edge-{}", std::process::id()));
        let (reader, tx) = store::open(&dir, 64 << 20, 1 << 20, false).unwrap();
        let mut watch = reader.watch();
        let mut data = Vec::new();
        let mut edge = LiveEdge::default();
        // Keyframes every 500 packets at first, then none for more than the window (the start
        // falls back to the end), then again; chunks cut packets anywhere.
        let mut stream: Vec<u8> = Vec::new();
        for i in 0..30_000usize {
            let key = !(8_000..=22_000).contains(&i) && i % 500 == 7;
            stream.extend_from_slice(&packet(key));
        }
        // Pieces of many sizes, cutting packets anywhere; one longer than the window.
        let sizes = [1, 100, 4_000, 70_001, 200_003, 2_500_000, 97_000];
        let mut answers = Vec::new();
        let mut rest: &[u8] = &stream;
        for i in 0.. {
            if rest.is_empty() {
                break;
            }
            let (piece, after) = rest.split_at(sizes[i % sizes.len()].min(rest.len()));
            rest = after;
            assert!(tx.offer(data.len() as u64, Bytes::copy_from_slice(piece)));
            data.extend_from_slice(piece);
            while watch.borrow_and_update().end < data.len() as u64 {
                watch.changed().await.unwrap();
            }
            // Ask twice: the second answer comes from what was kept.
            let got = edge.start(&reader).await;
            assert_eq!(got, edge.start(&reader).await);
            assert_eq!(got, reference(&data, 0), "after piece {i}");
            answers.push((got, data.len() as u64 - data.len() as u64 % P));
        }
        // Both cases came up: no keyframe in the window (the end), and a keyframe.
        assert!(answers.iter().any(|&(got, end)| got == end));
        assert!(answers.iter().any(|&(got, _)| got % (500 * P) == 7 * P));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
