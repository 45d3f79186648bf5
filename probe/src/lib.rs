//! Sans-IO link estimators for the overlay.
//!
//! - [`RttEstimator`]: smoothed RTT, variation, minimum and timeout (RFC 6298), and the
//!   [`RecentMin`] of its latest samples (the link without its queue);
//! - [`Ewma`]: moving average seeded by its first sample, with deviation;
//! - [`ArrivalPace`]: a stream's pace of arrivals, and when the next one is overdue;
//! - [`BandwidthEstimator`] and [`RateMeter`]: smoothed available bandwidth, and the rate at
//!   which data is actually delivered;
//! - [`LossWindow`] and [`SequenceLossMeter`]: loss over probes and over sequenced streams;
//! - [`LevelQuantizer`]: discretisation with hysteresis, so noise does not flip a level;
//! - [`LinkBandwidth`]: a link's bandwidth for conferencing trees, passive on data (sent against
//!   received, the lower wins) and active on probes, smoothed into levels;
//! - [`Prober`]: a ping/pong state machine with timers that keeps the above per peer.
//!
//! Nothing here reads a clock or touches a socket: time is passed in.

#![forbid(unsafe_code)]

mod arrival_pace;
mod bandwidth;
mod ewma;
mod level;
mod link_bandwidth;
mod loss;
mod prober;
mod recent_min;
mod rtt;

pub use arrival_pace::{ArrivalPace, GAP_WEIGHT};
pub use bandwidth::{BandwidthEstimator, RateMeter};
pub use ewma::Ewma;
pub use level::LevelQuantizer;
pub use link_bandwidth::{LinkBandwidth, LinkBandwidthConfig, Sample};
pub use loss::{LossWindow, SequenceLossMeter};
pub use prober::{
    PeerEstimate, ProbeMessage, Prober, ProberCommand, ProberConfig, ProberEvent, ProberStats,
};
pub use recent_min::{RECENT_SAMPLES, RecentMin};
pub use rtt::{RttConfig, RttEstimator};
