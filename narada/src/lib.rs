//! Narada (Chu, Rao, Zhang, SIGMETRICS 2000), sans-IO.
//!
//! End systems form a group with no help from routers. They keep a *mesh* among themselves
//! (`mesh`): a joining member links to a few existing ones; every member probes random
//! non-neighbours and adds a link when its *utility* (the sum over members of the relative
//! latency improvement) passes a threshold, and drops a link whose *consensus cost* (how many
//! members either end routes over it) falls below another, lower one. Membership spreads as
//! sequence-numbered refreshes between neighbours ([`members`], `sync`); silent members are
//! queued and probed, which repairs partitions. A path-vector protocol ([`routing`]) computes
//! shortest-latency routes over the mesh, and reverse-path forwarding (`data`) turns them into
//! one delivery tree per source.
//!
//! [`Narada`] implements [`overlay_core::Protocol`]: it never reads a clock or touches a socket.

#![forbid(unsafe_code)]

mod admission;
mod config;
mod core;
pub mod costs;
mod data;
mod dispatch;
mod fnv;
pub mod forwarding;
mod keyframes;
pub mod members;
mod mesh;
pub mod message;
pub mod metric;
mod neighbours;
mod node;
pub mod routing;
mod slot_map;
mod sync;
#[cfg(test)]
mod tests;
mod utility;

pub use config::{
    BandwidthConfig, CONVERSATION_DELAY_BUDGET, CONVERSATION_PING_INTERVAL,
    CONVERSATION_REPAIR_AGE, DataConfig, MembershipConfig, MeshConfig, NaradaConfig, RepairConfig,
    RoutingConfig,
};
pub use keyframes::KEYFRAME_REQUEST_GAP;
pub use message::{DataPacket, Message};
pub use metric::{MetricKind, PathMetric};
pub use node::{Command, Event, MeshLink, Narada, NaradaStats};
