//! What the transport reports about itself: counters of what it refused, dropped or did, and
//! a snapshot of its peers, refreshed by the runtime for status pages.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

/// Counters of what the transport refused, dropped or did.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub struct TransportCounters {
    /// Connections refused admission (wrong secret, wrong group, bad hello, timeout).
    pub admissions_refused: u64,
    /// Connections admitted.
    pub admissions: u64,
    /// Control frames that did not decode or broke the framing (the stream is then closed).
    pub bad_frames: u64,
    /// Datagrams that did not decode.
    pub bad_datagrams: u64,
    /// Protocol messages sent.
    pub messages_sent: u64,
    /// Protocol messages received.
    pub messages_received: u64,
    /// Sends dropped: no address for the peer, its queue full, or its dial failed.
    pub sends_dropped: u64,
    /// Media dropped by rate adaptation: the link could not carry it (least important first).
    #[serde(default)]
    pub sends_shaped: u64,
    /// Media dropped on its way out: it waited at the paced rate longer than its layer may,
    /// or QUIC's buffer was full.
    #[serde(default)]
    pub sends_late: u64,
    /// Bytes of media (data-class protocol messages) handed on to be sent, as encoded (some
    /// may still be dropped late, see `sends_late`).
    #[serde(default)]
    pub data_bytes_sent: u64,
    /// Bytes of everything else the protocol sent (control, probes, link open and close).
    #[serde(default)]
    pub control_bytes_sent: u64,
    /// Bandwidth probes whose train never came (QUIC's window answered instead).
    #[serde(default)]
    pub probes_unanswered: u64,
    /// Dials that failed.
    pub dials_failed: u64,
    /// Times this member asked its peers for addresses (a member named with none known).
    #[serde(default)]
    pub address_asks_sent: u64,
    /// Peers' address requests answered.
    #[serde(default)]
    pub address_asks_answered: u64,
    /// Measurements the runtime cannot make (`FetchBytes`).
    pub measurements_unsupported: u64,
}

/// A peer as the transport sees it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PeerSnapshot {
    /// The member.
    pub id: String,
    /// Where it listens.
    pub address: SocketAddr,
    /// Whether the protocol holds a link to it.
    pub link: bool,
    /// Where it serves HTTP, if it said.
    pub http: Option<SocketAddr>,
    /// QUIC's smoothed RTT, milliseconds.
    pub rtt_ms: f64,
    /// Congestion window over RTT, bits per second: what the path could carry now.
    pub path_bps: f64,
    /// The rate media to it is paced at (smoothed), bits per second.
    #[serde(default)]
    pub paced_bps: f64,
    /// The operator's cap on what goes to it, bits per second, if any (`POST /links/limit`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit_bps: Option<f64>,
    /// Open QUIC connections to it (two while a newer one supersedes an older).
    pub connections: usize,
    /// The newest connection's congestion window, bytes.
    #[serde(default)]
    pub cwnd_bytes: u64,
    /// Its congestion events (each a cut of the window) so far.
    #[serde(default)]
    pub congestion_events: u64,
    /// Its packets sent and declared lost so far.
    #[serde(default)]
    pub sent_packets: u64,
    /// See `sent_packets`.
    #[serde(default)]
    pub lost_packets: u64,
    /// Media datagrams to it the pacer dropped so far: over the paced rate, and because too
    /// much already waited in QUIC's buffer behind the congestion window (the two tell a path
    /// that is slow from a window that is small).
    #[serde(default)]
    pub shaped_by_rate: u64,
    /// See `shaped_by_rate`.
    #[serde(default)]
    pub shaped_by_buffer: u64,
    /// Repairs of packets the pacer had shed towards this peer, not sent (what rate
    /// adaptation shed is not resent into the link that shed it).
    #[serde(default)]
    pub repairs_refused: u64,
}

/// The transport's state, refreshed twice a second for status pages.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct TransportSnapshot {
    /// This member.
    pub id: String,
    /// Where it listens.
    pub listen: Option<SocketAddr>,
    /// Its peers.
    pub peers: Vec<PeerSnapshot>,
    /// Counters.
    pub counters: TransportCounters,
    /// Members whose address is known.
    pub addresses_known: usize,
    /// Every member that said where it serves HTTP (hex id to address), connected or not.
    #[serde(default)]
    pub http_addresses: BTreeMap<String, SocketAddr>,
    /// Where this member's connections come from, as the peers it dialled see them.
    #[serde(default)]
    pub observed: Option<IpAddr>,
}
