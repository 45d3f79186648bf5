//! The simulator as the experiments use it: the one harness of `overlay_core::sim`, driven
//! over real topologies ([`Network`] as a [`PathModel`]), with the flow-level bandwidth model
//! for data ([`Shaper`], plugged in through [`Shaping`]).

mod shaping;

use std::time::Duration;

use overlay_core::rng::ProtocolRng;
use overlay_core::{LinkMetrics, MeasureRequest};

pub use overlay_core::sim::{
    DropFilter, Emitted, EventQueue, MatrixPaths, PathModel, Shaping, SimConfig, Simulator,
    TrafficStats, UniformPaths,
};
pub use shaping::{FlowModel, Shaper};

use crate::network::{FlowDemand, Network};

impl PathModel for Network {
    fn members(&self) -> usize {
        Self::members(self)
    }

    fn one_way_delay(&self, from: usize, to: usize) -> Duration {
        self.unicast_delay(from, to)
    }

    fn measure(
        &self,
        from: usize,
        to: usize,
        request: MeasureRequest,
        rng: &mut ProtocolRng,
    ) -> LinkMetrics {
        Self::measure(self, from, to, request, rng)
    }
}

impl FlowModel for Network {
    fn path_channels(&self, from: usize, to: usize, out: &mut Vec<u32>) {
        self.unicast_path(from, to, out);
    }

    fn channel_capacities(&self) -> &[f64] {
        self.capacities()
    }

    fn record_load(&mut self, flows: &[FlowDemand], rates: &[f64]) {
        self.set_load(flows, rates);
    }
}

#[cfg(test)]
mod tests;
