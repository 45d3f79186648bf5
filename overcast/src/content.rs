//! The content a node holds: contiguous bytes of the stream (bounded: the oldest go first), kept
//! as the chunks they arrived in. It starts at the stream's first byte, or wherever the node
//! joined or resumed ([`ContentStore::restart`]).

use std::collections::BTreeMap;

use bytes::Bytes;

/// Stored content.
#[derive(Clone, Debug, Default)]
pub struct ContentStore {
    /// Chunks by offset; together they cover `[first, end)` without gaps.
    chunks: BTreeMap<u64, Bytes>,
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
        let fresh = bytes.slice(skip..);
        let added = fresh.len() as u64;
        self.chunks.insert(self.end, fresh);
        self.end += added;
        while self.end - self.first > self.limit {
            let Some((&start, chunk)) = self.chunks.first_key_value() else {
                break;
            };
            self.first = start + chunk.len() as u64;
            self.chunks.pop_first();
        }
        added
    }

    /// Holds nothing from now on, and takes bytes from `offset` on: a node that joins a stream
    /// late, resumes one, or skips what its parent no longer holds.
    pub fn restart(&mut self, offset: u64) {
        self.chunks.clear();
        self.first = offset;
        self.end = offset;
    }

    /// The held bytes at `from`, up to `max` of them, in one piece (the rest of the chunk that
    /// holds `from`); `None` when `from` is not held.
    pub fn chunk_at(&self, from: u64, max: u64) -> Option<(u64, Bytes)> {
        if from < self.first || from >= self.end || max == 0 {
            return None;
        }
        let (&start, chunk) = self.chunks.range(..=from).next_back()?;
        let skip = (from - start) as usize;
        let len = (chunk.len() - skip).min(usize::try_from(max).unwrap_or(usize::MAX));
        Some((from, chunk.slice(skip..skip + len)))
    }

    /// The chunks from byte `from` on (the first one cut to start there).
    pub fn from(&self, from: u64) -> Vec<(u64, Bytes)> {
        let from = from.max(self.first);
        let mut out = Vec::new();
        let start = self
            .chunks
            .range(..=from)
            .next_back()
            .map_or(from, |(&s, _)| s);
        for (&offset, chunk) in self.chunks.range(start..) {
            let end = offset + chunk.len() as u64;
            if end <= from {
                continue;
            }
            let skip = from.saturating_sub(offset) as usize;
            out.push((offset + skip as u64, chunk.slice(skip..)));
        }
        out
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
