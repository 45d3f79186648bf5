//! Experiments: a deterministic discrete-event simulator, topologies and a network model, and
//! scenarios that measure overlay trees with the papers' metrics.
//!
//! - [`topology`]: Waxman, transit-stub, topohub router maps and measured RTT matrices;
//! - [`network`]: members on a topology, access links, unicast routing, the max-min fair flow
//!   model;
//! - [`sim`]: the discrete-event simulator that drives any [`overlay_core::Protocol`];
//! - [`tree`]: RDP, link stress, resource usage and receiver bandwidth of delivery trees, and
//!   the quality of a live overlay's trees;
//! - [`group`]: Narada and Overcast groups driven in the simulator, shared by the scenarios;
//! - [`scenario`]: named, seeded runs that write `summary.json`, CSV series and plots.

#![forbid(unsafe_code)]

pub mod describe;
pub mod emulation_spec;
pub mod group;
pub mod network;
pub mod report;
pub mod run_cost;
pub mod scenario;
pub mod sim;
pub mod sim_to_real;
pub mod spec;
pub mod stats;
pub mod topology;
pub mod tree;
