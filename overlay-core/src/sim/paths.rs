//! What the simulator needs to know of the network between members: one-way delays, and what a
//! member measures of a path. Two models live here for protocol tests: every path alike
//! ([`UniformPaths`]), and a matrix of delays and bandwidths ([`MatrixPaths`]); the experiments
//! crate adds real topologies.

use std::time::Duration;

use crate::rng::ProtocolRng;
use crate::{Bandwidth, LinkMetrics, MeasureRequest};

/// Delays and measurements between members, as the simulator needs them.
pub trait PathModel {
    /// Number of member slots.
    fn members(&self) -> usize;
    /// One-way delay from member `from` to member `to`.
    fn one_way_delay(&self, from: usize, to: usize) -> Duration;
    /// What `from` measures of the path from `to` (round trip; bandwidth from `to` to `from`).
    fn measure(
        &self,
        from: usize,
        to: usize,
        request: MeasureRequest,
        rng: &mut ProtocolRng,
    ) -> LinkMetrics;
}

/// The same delay between every pair of members, unlimited bandwidth: for tests and benchmarks.
#[derive(Clone, Copy, Debug)]
pub struct UniformPaths {
    /// Number of members.
    pub members: usize,
    /// One-way delay of every path.
    pub delay: Duration,
}

impl PathModel for UniformPaths {
    fn members(&self) -> usize {
        self.members
    }

    fn one_way_delay(&self, _: usize, _: usize) -> Duration {
        self.delay
    }

    fn measure(
        &self,
        _: usize,
        _: usize,
        request: MeasureRequest,
        _: &mut ProtocolRng,
    ) -> LinkMetrics {
        let rtt = Some(self.delay * 2);
        match request {
            MeasureRequest::Rtt | MeasureRequest::Transfer { .. } => LinkMetrics {
                rtt,
                ..LinkMetrics::default()
            },
            MeasureRequest::Bandwidth { max_rate, .. } => LinkMetrics {
                rtt,
                bandwidth: Some(max_rate),
                loss: None,
            },
        }
    }
}

/// A delay and a bandwidth for every ordered pair of members, measured exactly.
#[derive(Clone, Debug)]
pub struct MatrixPaths {
    /// `delay[i][j]`: one-way delay from `i` to `j`.
    pub delay: Vec<Vec<Duration>>,
    /// `bandwidth[i][j]`: what `i` measures of the path from `j` to it.
    pub bandwidth: Vec<Vec<Bandwidth>>,
}

impl PathModel for MatrixPaths {
    fn members(&self) -> usize {
        self.delay.len()
    }

    fn one_way_delay(&self, from: usize, to: usize) -> Duration {
        self.delay[from][to]
    }

    /// The round trip and the matrix's bandwidth, whatever was asked (a bandwidth probe or a
    /// transfer also learns the round trip).
    fn measure(
        &self,
        from: usize,
        to: usize,
        _: MeasureRequest,
        _: &mut ProtocolRng,
    ) -> LinkMetrics {
        LinkMetrics {
            rtt: Some(self.delay[from][to] + self.delay[to][from]),
            bandwidth: Some(self.bandwidth[from][to]),
            loss: None,
        }
    }
}
