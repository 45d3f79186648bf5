//! The content a node holds: contiguous bytes of the stream (bounded: the oldest go first), kept
//! as the chunks they arrived in. It starts at the stream's first byte, or wherever the node
//! joined or resumed ([`ContentStore::restart`]).
//!
//! Chunks arrive in order and leave oldest first, so they sit in a queue of fixed-size blocks
//! and are found by binary search on their offsets: 40 bytes per chunk, no tree nodes, and at
//! most one block not full (a queue that doubles would leave up to half its room unused). A
//! node keeps every chunk of a long stream (a 256 kbit/s stream fed every 100 ms is 18 000
//! chunks in 30 minutes), and in the simulator every node's chunks share the bytes, so this
//! index is most of a node's memory (a `BTreeMap` took about 75 bytes per chunk, half-full
//! leaves of 11).

use std::collections::VecDeque;

/// Chunks per block of the index (10 KiB of entries; 4 in unit tests, so that their few chunks
/// span many blocks).
const BLOCK: usize = if cfg!(test) { 4 } else { 256 };

use bytes::Bytes;

/// Stored content.
#[derive(Clone, Debug, Default)]
pub struct ContentStore {
    /// `(offset, bytes)` in offset order, in blocks of at most [`BLOCK`], none empty;
    /// together they cover `[first, end)` without gaps.
    blocks: VecDeque<VecDeque<(u64, Bytes)>>,
    first: u64,
    end: u64,
    limit: u64,
}

impl ContentStore {
    /// A store holding at most `limit` bytes.
    pub fn new(limit: u64) -> Self {
        Self {
            limit,
            ..Self::default()
        }
    }

    /// One past the last byte held: everything before it arrived.
    pub fn end(&self) -> u64 {
        self.end
    }

    /// The first byte still held.
    pub fn first(&self) -> u64 {
        self.first
    }

    /// Take in bytes at `offset`; returns how many new bytes were added (0 for a repeat; bytes
    /// beyond a gap are refused, since delivery is in order).
    pub fn append(&mut self, offset: u64, bytes: Bytes) -> u64 {
        let len = bytes.len() as u64;
        if offset > self.end || offset.checked_add(len).is_none_or(|end| end <= self.end) {
            return 0;
        }
        let skip = (self.end - offset) as usize;
        // Most chunks arrive whole: keep the handle rather than take (and drop) another.
        let fresh = if skip == 0 {
            bytes
        } else {
            bytes.slice(skip..)
        };
        let added = fresh.len() as u64;
        match self.blocks.back_mut() {
            Some(block) if block.len() < BLOCK => block.push_back((self.end, fresh)),
            _ => {
                let mut block = VecDeque::with_capacity(BLOCK);
                block.push_back((self.end, fresh));
                self.blocks.push_back(block);
            }
        }
        self.end += added;
        while self.end - self.first > self.limit {
            let Some(block) = self.blocks.front_mut() else {
                break;
            };
            let Some((start, chunk)) = block.pop_front() else {
                self.blocks.pop_front();
                continue;
            };
            self.first = start + chunk.len() as u64;
            if block.is_empty() {
                self.blocks.pop_front();
            }
        }
        added
    }

    /// Holds nothing from now on, and takes bytes from `offset` on: a node that joins a stream
    /// late, resumes one, or skips what its parent no longer holds.
    pub fn restart(&mut self, offset: u64) {
        self.blocks = VecDeque::new();
        self.first = offset;
        self.end = offset;
    }

    /// Where the chunk holding byte `from` is (block, index in it), if it is held.
    fn index_of(&self, from: u64) -> Option<(usize, usize)> {
        if from < self.first || from >= self.end {
            return None;
        }
        // Most asks are for the newest chunk (a child that keeps up): no search for those.
        let last = self.blocks.len().checked_sub(1)?;
        let newest = self.blocks[last].len().checked_sub(1)?;
        if self.blocks[last][newest].0 <= from {
            return Some((last, newest));
        }
        // The last chunk starting at or before `from`; chunks cover [first, end) without gaps.
        let block = self
            .blocks
            .partition_point(|b| b.front().is_some_and(|&(start, _)| start <= from))
            .checked_sub(1)?;
        let index = self.blocks[block]
            .partition_point(|&(start, _)| start <= from)
            .checked_sub(1)?;
        Some((block, index))
    }

    /// The held bytes at `from`, up to `max` of them, in one piece (the rest of the chunk that
    /// holds `from`); `None` when `from` is not held.
    pub fn chunk_at(&self, from: u64, max: u64) -> Option<(u64, Bytes)> {
        if max == 0 {
            return None;
        }
        let (block, index) = self.index_of(from)?;
        let (start, chunk) = self.blocks.get(block)?.get(index)?;
        let skip = usize::try_from(from - start).ok()?;
        let len = (chunk.len().checked_sub(skip)?).min(usize::try_from(max).unwrap_or(usize::MAX));
        Some((from, chunk.slice(skip..skip + len)))
    }

    /// The chunks from byte `from` on (the first one cut to start there).
    pub fn from(&self, from: u64) -> Vec<(u64, Bytes)> {
        let from = from.max(self.first);
        let Some((block, index)) = self.index_of(from) else {
            return Vec::new();
        };
        self.blocks
            .range(block..)
            .enumerate()
            .flat_map(|(i, b)| b.range(if i == 0 { index } else { 0 }..))
            .map(|(offset, chunk)| {
                let skip = from.saturating_sub(*offset) as usize;
                (offset + skip as u64, chunk.slice(skip..))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_said_to_start_near_the_top_of_the_range_is_no_panic() {
        let mut s = ContentStore::new(1 << 20);
        s.restart(u64::MAX - 50);
        assert_eq!(s.append(u64::MAX - 50, Bytes::from(vec![0u8; 100])), 0);
        assert_eq!(s.append(u64::MAX - 50, Bytes::from(vec![0u8; 50])), 50);
        assert_eq!(s.end(), u64::MAX);
        assert_eq!(s.append(u64::MAX, Bytes::from(vec![0u8; 1])), 0);
    }

    #[test]
    fn appends_in_order_and_serves_from_any_byte() {
        let mut s = ContentStore::new(1 << 20);
        assert_eq!(s.append(0, Bytes::from_static(b"hello")), 5);
        assert_eq!(s.append(3, Bytes::from_static(b"lo world")), 6);
        assert_eq!(s.append(20, Bytes::from_static(b"gap")), 0);
        assert_eq!(s.append(0, Bytes::from_static(b"he")), 0);
        assert_eq!(s.end(), 11);
        let tail: Vec<u8> = s
            .from(4)
            .into_iter()
            .flat_map(|(_, b)| b.to_vec())
            .collect();
        assert_eq!(tail, b"o world");
        assert_eq!(s.from(4)[0].0, 4);
        assert!(s.from(11).is_empty());
    }

    #[test]
    fn one_piece_at_a_time_and_a_restart_anywhere() {
        let mut s = ContentStore::new(1 << 20);
        s.append(0, Bytes::from_static(b"hello"));
        s.append(5, Bytes::from_static(b" world"));
        assert_eq!(s.chunk_at(3, 100), Some((3, Bytes::from_static(b"lo"))));
        assert_eq!(s.chunk_at(5, 3), Some((5, Bytes::from_static(b" wo"))));
        assert_eq!(s.chunk_at(11, 100), None);
        assert_eq!(s.chunk_at(0, 0), None);
        s.restart(1000);
        assert_eq!((s.first(), s.end()), (1000, 1000));
        assert_eq!(s.append(0, Bytes::from_static(b"old")), 0);
        assert_eq!(s.append(1000, Bytes::from_static(b"new")), 3);
        assert_eq!(
            s.chunk_at(1001, 10),
            Some((1001, Bytes::from_static(b"ew")))
        );
    }

    #[test]
    fn the_store_is_bounded() {
        let mut s = ContentStore::new(10);
        for i in 0..5 {
            s.append(i * 4, Bytes::from_static(b"abcd"));
        }
        assert_eq!(s.end(), 20);
        assert!(s.end() - s.first() <= 10);
        assert_eq!(s.from(0)[0].0, s.first());
    }
}

#[cfg(test)]
mod model_tests {
    use super::*;
    use proptest::prelude::*;

    /// The byte at `offset` of a made-up stream.
    fn byte(offset: u64) -> u8 {
        (offset.wrapping_mul(31) >> 3) as u8
    }

    fn piece(offset: u64, len: u64) -> Bytes {
        (offset..offset + len).map(byte).collect::<Vec<u8>>().into()
    }

    proptest! {
        /// Whatever arrives, overlapping, repeated, past a gap or after a restart, the store
        /// holds exactly the stream's bytes over [first, end), within its limit, and serves any
        /// byte of it.
        #[test]
        fn holds_exactly_the_stream_between_first_and_end(
            limit in 1u64..400,
            steps in proptest::collection::vec((0u8..10, 0u64..60, 1u64..50), 1..80),
        ) {
            let mut s = ContentStore::new(limit);
            for (kind, back, len) in steps {
                if kind == 0 {
                    s.restart(s.end() + back);
                    continue;
                }
                // Mostly at or just before the end; now and then past it (refused).
                let offset = if kind == 1 { s.end() + 1 + back } else { s.end().saturating_sub(back) };
                let before = s.end();
                let added = s.append(offset, piece(offset, len));
                prop_assert_eq!(s.end(), before + added);
                prop_assert!(s.end() - s.first() <= limit.max(len));
            }
            let held: Vec<u8> = s.from(s.first()).into_iter().flat_map(|(_, b)| b.to_vec()).collect();
            let want: Vec<u8> = (s.first()..s.end()).map(byte).collect();
            prop_assert_eq!(held, want);
            for at in s.first()..s.end() {
                let tail: Vec<u8> = s.from(at).into_iter().flat_map(|(_, b)| b.to_vec()).collect();
                prop_assert_eq!(tail, (at..s.end()).map(byte).collect::<Vec<u8>>());
                prop_assert_eq!(s.from(at).first().map(|c| c.0), Some(at));
                let (o, b) = s.chunk_at(at, 7).expect("a held byte is served");
                prop_assert_eq!(o, at);
                prop_assert!(!b.is_empty() && b.len() <= 7);
                prop_assert_eq!(b[0], byte(at));
            }
            prop_assert!(s.chunk_at(s.end(), 7).is_none());
            prop_assert!(s.first() == 0 || s.chunk_at(s.first() - 1, 7).is_none());
        }
    }
}
