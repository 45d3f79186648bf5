//! What a member knows, or asks to know, about the path to a peer.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::Bandwidth;

/// A measurement of the path to one peer, as taken by the driver (the QUIC runtime or the
/// simulator). Any field may be absent: a driver reports what it measured and nothing more.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LinkMetrics {
    /// Round-trip time.
    pub rtt: Option<Duration>,
    /// Available bandwidth towards the peer.
    pub bandwidth: Option<Bandwidth>,
    /// Fraction of packets lost, in `0.0..=1.0`.
    pub loss: Option<f64>,
}

impl LinkMetrics {
    /// A measurement with only a round-trip time.
    pub fn rtt(rtt: Duration) -> Self {
        Self {
            rtt: Some(rtt),
            ..Self::default()
        }
    }

    /// A measurement with only an available bandwidth.
    pub fn bandwidth(bandwidth: Bandwidth) -> Self {
        Self {
            bandwidth: Some(bandwidth),
            ..Self::default()
        }
    }
}

/// A measurement a protocol asks its driver to take.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MeasureRequest {
    /// Measure the round-trip time (the runtime reads QUIC's estimate or pings).
    Rtt,
    /// Measure the available bandwidth from the peer to this member, the peer sending for
    /// `duration` at no more than `max_rate`.
    ///
    /// Active probes cost real bandwidth, so they are capped, typically at the source rate.
    Bandwidth {
        /// The highest rate the probe may send at.
        max_rate: Bandwidth,
        /// How long the probe sends.
        duration: Duration,
    },
    /// Fetch `bytes` from the peer over the data path, as a client would fetch content, and
    /// report `bytes` over the time it took (request round trip and transport ramp-up included).
    ///
    /// This is Overcast's measurement: it "includes all the costs of serving actual content",
    /// but a short transfer underestimates a long, fat path, since it ends before the transport
    /// reaches full rate.
    Transfer {
        /// How many bytes to fetch.
        bytes: u64,
    },
}
