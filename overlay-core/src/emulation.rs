//! The description of an emulated wide-area network, shared by the simulator's side (which
//! writes one from a latency matrix and drawn access links) and the runtime's (whose
//! processes run over it): each member's loopback address, place and access link, and the
//! one-way delay between every two places. Checking a spec is the reader's job.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// One member's place in the emulated world.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Place {
    /// The address the member binds (a loopback address of its own, say `127.0.0.12`).
    pub ip: IpAddr,
    /// Where it is, for reports (a city).
    #[serde(default)]
    pub name: String,
    /// Latitude of the place, degrees, for pictures.
    #[serde(default)]
    pub lat: Option<f64>,
    /// Longitude of the place, degrees, for pictures.
    #[serde(default)]
    pub lon: Option<f64>,
    /// Upload capacity of its access link, bits per second (0: unlimited).
    pub up_bps: u64,
    /// Download capacity of its access link, bits per second (0: unlimited).
    pub down_bps: u64,
    /// Later download capacities, in order: from `after_ms` milliseconds after the member
    /// started (bound its emulated socket), its download carries `bps` (0: unlimited). For
    /// tests of a link that narrows and recovers, as cross traffic would make it: the member's
    /// own idea of its download (for its routing and the shares it gives its parents) stays
    /// `down_bps`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub down_changes: Vec<RateChange>,
}

/// A change of an access link's capacity at a moment of the member's life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateChange {
    /// Milliseconds after the member started (bound its emulated socket).
    pub after_ms: u64,
    /// The capacity from then on, bits per second (0: unlimited).
    pub bps: u64,
}

/// The emulated world, as a JSON file says it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmulationSpec {
    /// What it is, for reports.
    #[serde(default)]
    pub name: String,
    /// The members' places, in order.
    pub places: Vec<Place>,
    /// One-way delay from place `i` to place `j`, microseconds (`one_way_us[i][j]`).
    pub one_way_us: Vec<Vec<u64>>,
    /// Chance that a datagram is lost on the way (0 to under 1).
    #[serde(default)]
    pub loss: f64,
    /// Up to this much extra delay per datagram, drawn uniformly, microseconds.
    #[serde(default)]
    pub jitter_us: u64,
    /// How long each access link's queue holds traffic before it drops, microseconds.
    #[serde(default = "default_queue_us")]
    pub queue_us: u64,
}

/// 100 ms: the buffer of a typical home router's uplink, long enough for QUIC's congestion
/// control to fill the link, short enough that queueing does not swamp the path's delay.
pub fn default_queue_us() -> u64 {
    100_000
}
