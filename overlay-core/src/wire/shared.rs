//! Frames whose payloads share buffers instead of copying them: the relay's data path.
//!
//! A relay reads each datagram into a buffer the transport already owns, and forwards the payload
//! to several children. Decoded the ordinary way, a `Bytes` field is copied out of the frame into
//! an allocation of its own; encoded the ordinary way, every frame is an allocation too. Here:
//!
//! - [`decode`] decodes a frame held in [`Bytes`], and a `Bytes` field marked
//!   `#[serde(with = "overlay_core::wire::shared")]` becomes a view of that frame: no copy, no
//!   allocation. The frame's buffer lives as long as any payload taken from it does (a relay's
//!   repair buffer keeps payloads for a while, so it keeps the datagrams they came in, about a
//!   QUIC packet's worth per payload). Decoded from a plain slice (or by another format), the
//!   same field is copied, as `Bytes` always is. The wire format is `Bytes`' own: a length, then
//!   the bytes.
//! - [`EncodeArena`] encodes frames one after another into one block of memory, each frame a
//!   shared view of it, so a stream of frames costs an allocation per block, not per frame.
//!
//! Both give the very bytes of [`super::encode`] and the very values of [`super::decode`], with
//! the same limits and errors.

use std::cell::RefCell;
use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};
use serde::de::{DeserializeOwned, SeqAccess, Visitor};
use serde::{Deserializer, Serialize, Serializer};

use super::{DecodeError, EncodeError, MAX_FRAME_LEN, WIRE_VERSION, encoded_len};

thread_local! {
    /// The frame [`decode`] is decoding on this thread, whose parts shared fields take.
    static DECODING: RefCell<Option<Bytes>> = const { RefCell::new(None) };
}

/// Decodes `frame` as [`super::decode`] does; shared `Bytes` fields are views of `frame`.
pub fn decode<T: DeserializeOwned>(frame: &Bytes) -> Result<T, DecodeError> {
    // Decoding is synchronous: the frame is set for exactly this call (and put back as it was,
    // should a field's decoding decode another frame).
    let previous = DECODING.with(|d| d.replace(Some(frame.clone())));
    let restore = Restore(previous);
    let value = super::decode(frame);
    drop(restore);
    value
}

/// Puts back the frame that was being decoded before, on every way out of [`decode`].
struct Restore(Option<Bytes>);

impl Drop for Restore {
    fn drop(&mut self) {
        let previous = self.0.take();
        DECODING.with(|d| *d.borrow_mut() = previous);
    }
}

/// `part` as a view of the frame being decoded when it lies inside it, else a copy.
fn share(part: &[u8]) -> Bytes {
    DECODING.with(|d| {
        if let Some(frame) = d.borrow().as_ref() {
            let base = frame.as_ptr() as usize;
            let start = part.as_ptr() as usize;
            if start >= base && start - base + part.len() <= frame.len() {
                let at = start - base;
                return frame.slice(at..at + part.len());
            }
        }
        Bytes::copy_from_slice(part)
    })
}

/// Writes a shared field as `Bytes` does: a length, then the bytes.
pub fn serialize<S: Serializer>(bytes: &Bytes, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_bytes(bytes)
}

/// Reads a shared field: a view of the frame [`decode`] is decoding, or a copy.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
    d.deserialize_bytes(SharedVisitor)
}

/// Most bytes reserved ahead for a field a self-describing format sends as a sequence.
const SEQ_RESERVE: usize = 4096;

struct SharedVisitor;

impl<'de> Visitor<'de> for SharedVisitor {
    type Value = Bytes;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a byte string")
    }

    fn visit_borrowed_bytes<E>(self, v: &'de [u8]) -> Result<Bytes, E> {
        Ok(share(v))
    }

    fn visit_bytes<E>(self, v: &[u8]) -> Result<Bytes, E> {
        Ok(Bytes::copy_from_slice(v))
    }

    fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Bytes, E> {
        Ok(Bytes::from(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Bytes, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(SEQ_RESERVE));
        while let Some(byte) = seq.next_element::<u8>()? {
            out.push(byte);
        }
        Ok(Bytes::from(out))
    }
}

/// Bytes of a block of [`EncodeArena`] (a frame longer than this gets a block of its own).
pub const ARENA_BLOCK: usize = 64 * 1024;

/// Encodes frames into blocks of memory shared by the frames: a block holds many frames, and
/// stays allocated until the last of them is dropped.
#[derive(Debug, Default)]
pub struct EncodeArena {
    /// The free end of the current block.
    free: BytesMut,
}

impl EncodeArena {
    /// No block yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// `msg` encoded as [`super::encode`] would, as a view of the current block (a new block
    /// when the current one has no room left).
    pub fn encode<T: Serialize>(&mut self, msg: &T) -> Result<Bytes, EncodeError> {
        let len = encoded_len(msg);
        if len > MAX_FRAME_LEN {
            return Err(EncodeError::TooLarge {
                len,
                max: MAX_FRAME_LEN,
            });
        }
        if self.free.capacity() < len {
            self.free = BytesMut::with_capacity(len.max(ARENA_BLOCK));
        }
        self.free.put_u8(WIRE_VERSION);
        if let Err(e) = postcard::to_io(msg, (&mut self.free).writer()) {
            self.free.clear();
            return Err(EncodeError::Serialize(e.to_string()));
        }
        Ok(self.free.split().freeze())
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    struct Packet {
        seq: u64,
        #[serde(with = "super")]
        payload: Bytes,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Plain {
        seq: u64,
        payload: Bytes,
    }

    fn packet(seq: u64, len: usize) -> Packet {
        Packet {
            seq,
            payload: Bytes::from(vec![seq as u8; len]),
        }
    }

    #[test]
    fn a_shared_payload_is_a_view_of_the_frame_and_decodes_alike() {
        let p = packet(7, 1100);
        let frame = Bytes::from(super::super::encode(&p).unwrap());
        let shared: Packet = decode(&frame).unwrap();
        assert_eq!(shared, p);
        let range = frame.as_ptr_range();
        assert!(range.contains(&shared.payload.as_ptr()));
        // The ordinary decode copies, and gives the same value.
        let copied: Packet = super::super::decode(&frame).unwrap();
        assert_eq!(copied, p);
        assert!(!range.contains(&copied.payload.as_ptr()));
        // The format is `Bytes`' own: a plain field reads what a shared one wrote, and back.
        let plain: Plain = super::super::decode(&frame).unwrap();
        assert_eq!((plain.seq, &plain.payload), (p.seq, &p.payload));
        assert_eq!(super::super::encode(&plain).unwrap(), frame);
        // Once decoded, the frame is no longer the one shared fields take from.
        let later: Packet = super::super::decode(&frame).unwrap();
        assert!(!range.contains(&later.payload.as_ptr()));
        // An empty payload.
        let empty = packet(1, 0);
        let frame = Bytes::from(super::super::encode(&empty).unwrap());
        assert_eq!(decode::<Packet>(&frame).unwrap(), empty);
    }

    #[test]
    fn bad_frames_get_the_ordinary_errors() {
        let frame = Bytes::from(super::super::encode(&packet(3, 50)).unwrap());
        for cut in 0..frame.len() {
            let short = frame.slice(..cut);
            assert_eq!(
                decode::<Packet>(&short).map_err(|e| e.to_string()),
                super::super::decode::<Packet>(&short).map_err(|e| e.to_string())
            );
            assert!(decode::<Packet>(&short).is_err());
        }
        let mut long = frame.to_vec();
        long.push(0);
        assert!(matches!(
            decode::<Packet>(&Bytes::from(long)),
            Err(DecodeError::TrailingBytes { count: 1, .. })
        ));
        let mut version = frame.to_vec();
        version[0] = WIRE_VERSION + 1;
        assert!(matches!(
            decode::<Packet>(&Bytes::from(version)),
            Err(DecodeError::Version { .. })
        ));
    }

    #[test]
    fn the_arena_encodes_as_encode_does_many_frames_to_a_block() {
        let mut arena = EncodeArena::new();
        let frames: Vec<Bytes> = (0..100)
            .map(|seq| arena.encode(&packet(seq, 1100)).unwrap())
            .collect();
        for (seq, frame) in frames.iter().enumerate() {
            assert_eq!(
                frame,
                &super::super::encode(&packet(seq as u64, 1100)).unwrap()
            );
        }
        // Each frame follows the one before in its block; a block holds as many as fit.
        let per_block = ARENA_BLOCK / frames[0].len();
        let follows = |a: &Bytes, b: &Bytes| b.as_ptr() as usize == a.as_ptr() as usize + a.len();
        let new_blocks: Vec<usize> = (1..frames.len())
            .filter(|&i| !follows(&frames[i - 1], &frames[i]))
            .collect();
        assert_eq!(new_blocks, vec![per_block]);
        // A frame over the limit is refused and leaves the arena as it was.
        let huge = packet(1, MAX_FRAME_LEN);
        assert!(matches!(
            arena.encode(&huge),
            Err(EncodeError::TooLarge { .. })
        ));
        let next = arena.encode(&packet(100, 10)).unwrap();
        assert_eq!(next, super::super::encode(&packet(100, 10)).unwrap());
    }
}
