//! What members say on a connection's control stream: length-prefixed frames (a 4-byte
//! big-endian length, then the wire envelope of [`Frame`]). The admission handshake, protocol
//! links opening and closing, the address book, and protocol messages that do not go as QUIC
//! datagrams. Reading is total: a length over the limit, a truncated frame or a body that does
//! not decode is an error naming what was wrong, and nothing is allocated beyond the limit.

use std::net::SocketAddr;

use overlay_core::NodeId;
use overlay_core::wire::{self, MAX_FRAME_LEN};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Most entries an address-book frame may carry.
pub const MAX_ADDRESSES: usize = 256;

/// One control-stream frame.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Frame<M> {
    /// The dialer's admission: its SPAKE2 message and where it listens.
    Hello {
        /// The dialer's SPAKE2 message (random, blinded by the group secret).
        pake: Vec<u8>,
        /// Where the dialer accepts connections.
        listen: SocketAddr,
        /// Where the dialer serves HTTP, if it does.
        http: Option<SocketAddr>,
    },
    /// The acceptor's answer: its SPAKE2 message and its proof of the shared key.
    Welcome {
        /// The acceptor's SPAKE2 message.
        pake: Vec<u8>,
        /// HMAC with the shared key over the acceptor's role and the TLS session.
        confirm: Vec<u8>,
        /// Where the acceptor accepts connections.
        listen: SocketAddr,
        /// Where the acceptor serves HTTP, if it does.
        http: Option<SocketAddr>,
        /// Where the dialer's connection comes from, as the acceptor sees it (how the dialer
        /// looks to others: the address to advertise when it listens on a wildcard).
        observed: SocketAddr,
    },
    /// The dialer's proof of the shared key, sent only once the acceptor's checked out.
    Confirm {
        /// HMAC with the shared key over the dialer's role and the TLS session.
        confirm: Vec<u8>,
    },
    /// The acceptor checked the dialer's proof: both are admitted (the dialer sends nothing
    /// else before it, so none of its data meets the small window or dropped datagrams of a
    /// connection not yet admitted).
    Admitted,
    /// The sender's protocol opened a link (the receiver's protocol hears `Up`).
    LinkOpen,
    /// The sender's protocol closed the link (the receiver's protocol hears `Down`).
    LinkClose,
    /// Members the sender knows and where they listen.
    Addresses(Vec<(NodeId, SocketAddr)>),
    /// A protocol message.
    Message(M),
    /// One frame of a bandwidth probe: a short train of frames sent back to back, whose
    /// spacing on arrival tells the receiver the path's bottleneck rate.
    Probe {
        /// Which probe.
        id: u32,
        /// This frame's place in the train.
        index: u16,
        /// Frames in the train.
        count: u16,
        /// Filler.
        fill: Vec<u8>,
    },
    /// Asks the receiver for a bandwidth probe: a train of [`Frame::Probe`] back.
    ProbeAsk {
        /// Which probe (the train carries it).
        id: u32,
    },
    /// The share of the sender's download the receiver may fill with media, bits per second
    /// (the sender of this frame knows its download and splits it among the peers sending it
    /// media; see the runtime's `receive_budget`).
    ReceiveShare {
        /// Bits per second.
        bps: u64,
    },
    /// Asks the receiver for [`Frame::Addresses`]: the sender heard of a member by id only (a
    /// referral when a full member turned down its join) and cannot reach it before the next
    /// gossip. Answered at most once a second per peer.
    AddressAsk,
}

/// Why a frame could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The stream ended, cleanly between frames.
    #[error("the stream ended")]
    End,
    /// The stream ended inside a frame.
    #[error("the stream ended {got} bytes into a {want}-byte frame")]
    Truncated {
        /// Bytes read.
        got: usize,
        /// Bytes announced.
        want: usize,
    },
    /// The announced length is over the limit.
    #[error("a frame of {len} bytes is over the {limit}-byte limit")]
    TooLong {
        /// The length announced.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// The body does not decode.
    #[error("undecodable frame: {0}")]
    Decode(String),
    /// The transport failed.
    #[error("transport: {0}")]
    Io(String),
}

/// The most bytes a frame may have before admission: the handshake's frames are under 150
/// bytes, so a stranger's 1 MiB hello is refused once its length is read.
pub const ADMISSION_FRAME_LIMIT: usize = 512;

/// Reads one frame (of at most [`MAX_FRAME_LEN`] bytes).
pub async fn read_frame<M, R>(r: &mut R) -> Result<Frame<M>, FrameError>
where
    M: serde::de::DeserializeOwned,
    R: AsyncRead + Unpin,
{
    read_frame_within(r, MAX_FRAME_LEN).await
}

/// Reads one frame of at most `limit` bytes: a longer one is refused before its body is read.
pub async fn read_frame_within<M, R>(r: &mut R, limit: usize) -> Result<Frame<M>, FrameError>
where
    M: serde::de::DeserializeOwned,
    R: AsyncRead + Unpin,
{
    let mut len = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match r.read(&mut len[got..]).await {
            Ok(0) if got == 0 => return Err(FrameError::End),
            Ok(0) => return Err(FrameError::Truncated { got, want: 4 }),
            Ok(n) => got += n,
            Err(e) => return Err(FrameError::Io(e.to_string())),
        }
    }
    let want = u32::from_be_bytes(len) as usize;
    if want > limit.min(MAX_FRAME_LEN) {
        return Err(FrameError::TooLong {
            len: want,
            limit: limit.min(MAX_FRAME_LEN),
        });
    }
    let mut body = vec![0u8; want];
    let mut got = 0;
    while got < want {
        match r.read(&mut body[got..]).await {
            Ok(0) => return Err(FrameError::Truncated { got, want }),
            Ok(n) => got += n,
            Err(e) => return Err(FrameError::Io(e.to_string())),
        }
    }
    wire::decode(&body).map_err(|e| FrameError::Decode(e.to_string()))
}

/// Encodes one frame with its length prefix.
pub fn encode_frame<M: Serialize>(frame: &Frame<M>) -> Result<Vec<u8>, FrameError> {
    let body = wire::encode(frame).map_err(|e| FrameError::Decode(e.to_string()))?;
    let mut out = Vec::with_capacity(body.len() + 4);
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

/// Writes one frame.
pub async fn write_frame<M, W>(w: &mut W, frame: &Frame<M>) -> Result<(), FrameError>
where
    M: Serialize,
    W: AsyncWrite + Unpin,
{
    let bytes = encode_frame(frame)?;
    w.write_all(&bytes)
        .await
        .map_err(|e| FrameError::Io(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    type F = Frame<u32>;

    #[tokio::test]
    async fn frames_round_trip_and_bad_ones_are_named() {
        let frames: Vec<F> = vec![
            Frame::Hello {
                pake: vec![1; 33],
                listen: "127.0.0.1:9".parse().unwrap(),
                http: None,
            },
            Frame::Confirm {
                confirm: vec![2; 32],
            },
            Frame::LinkOpen,
            Frame::Addresses(vec![(NodeId::from_index(3), "[::1]:5".parse().unwrap())]),
            Frame::Message(7),
            Frame::ProbeAsk { id: 41 },
            Frame::ReceiveShare { bps: 510_000 },
            Frame::AddressAsk,
            Frame::Probe {
                id: 41,
                index: 7,
                count: 8,
                fill: vec![0; 1250],
            },
        ];
        let mut bytes = Vec::new();
        for f in &frames {
            bytes.extend(encode_frame(f).unwrap());
        }
        let mut r = bytes.as_slice();
        for f in &frames {
            assert_eq!(&read_frame::<u32, _>(&mut r).await.unwrap(), f);
        }
        assert!(matches!(
            read_frame::<u32, _>(&mut r).await,
            Err(FrameError::End)
        ));
        // Truncated inside the body.
        let one = encode_frame(&Frame::<u32>::Message(7)).unwrap();
        let mut r = &one[..one.len() - 1];
        assert!(matches!(
            read_frame::<u32, _>(&mut r).await,
            Err(FrameError::Truncated { .. })
        ));
        // An absurd length is refused before anything is allocated for it.
        let mut r: &[u8] = &[0xff, 0xff, 0xff, 0xff, 0];
        assert!(matches!(
            read_frame::<u32, _>(&mut r).await,
            Err(FrameError::TooLong { .. })
        ));
        // Before admission the limit is small: a 100 kB hello is refused at its length.
        let mut big = encode_frame(&Frame::<u32>::Hello {
            pake: vec![0; 100_000],
            listen: "127.0.0.1:9".parse().unwrap(),
            http: None,
        })
        .unwrap();
        big.truncate(4);
        let mut r = big.as_slice();
        assert!(matches!(
            read_frame_within::<u32, _>(&mut r, ADMISSION_FRAME_LIMIT).await,
            Err(FrameError::TooLong {
                limit: ADMISSION_FRAME_LIMIT,
                ..
            })
        ));
        // Garbage of a believable length.
        let mut r: &[u8] = &[0, 0, 0, 3, 9, 9, 9];
        assert!(matches!(
            read_frame::<u32, _>(&mut r).await,
            Err(FrameError::Decode(_))
        ));
    }
}
