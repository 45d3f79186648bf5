//! Topologies, chosen by a spec string:
//!
//! - `waxman:routers=1024,links=3145,seed=1` ([`waxman`]);
//! - `transit-stub:nodes=600,seed=1` ([`transit_stub`]);
//! - `topohub:PATH` (router maps in topohub JSON, [`topohub`]);
//! - `matrix:PATH` (measured host-to-host RTT matrices, [`matrix`]).

pub mod capacity;
mod graph;
pub mod matrix;
mod paths;
pub mod topohub;
pub mod transit_stub;
pub mod waxman;

pub use capacity::CapacityModel;
pub use graph::{PhysicalGraph, PhysicalLink, Router, RouterRole};
pub use matrix::LatencyMatrix;
pub use paths::ShortestPathTree;

use crate::spec::{Spec, SpecError};

/// A network on which members are placed.
#[derive(Clone, Debug)]
pub enum Topology {
    /// A router map with links; members attach to routers through access links.
    Physical(PhysicalGraph),
    /// Measured delays between hosts, which are the members; no physical links.
    Matrix(LatencyMatrix),
}

/// A topology that could not be built or loaded.
#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    /// The spec string is wrong.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// The file could not be read.
    #[error("{path}: cannot read: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file's content is wrong.
    #[error("{path}: {location}: {problem}")]
    Invalid {
        /// The file.
        path: String,
        /// Where in it (line and column, or element).
        location: String,
        /// What is wrong.
        problem: String,
    },
}

impl TopologyError {
    pub(crate) fn invalid(
        path: &str,
        location: impl Into<String>,
        problem: impl Into<String>,
    ) -> Self {
        Self::Invalid {
            path: path.to_owned(),
            location: location.into(),
            problem: problem.into(),
        }
    }
}

/// The topology kinds and what their specs look like, for help texts.
pub const SPEC_HELP: &str = "waxman:routers=1024,links=3145,seed=1 | transit-stub:nodes=600,seed=1 | topohub:PATH[,capacity=provisioned|RATE] | matrix:PATH";

/// Build or load the topology a spec string names.
pub fn load(text: &str) -> Result<Topology, TopologyError> {
    let spec = Spec::parse(text, |kind| matches!(kind, "topohub" | "matrix"))?;
    match spec.kind() {
        "waxman" => Ok(Topology::Physical(waxman::generate(
            &waxman::WaxmanParams::from_spec(spec)?,
        ))),
        "transit-stub" => Ok(Topology::Physical(transit_stub::generate(
            &transit_stub::TransitStubParams::from_spec(spec)?,
        ))),
        "topohub" => Ok(Topology::Physical(topohub::load(spec)?)),
        "matrix" => Ok(Topology::Matrix(matrix::load(spec)?)),
        other => Err(spec
            .error(format!(
                "unknown topology kind {other:?}; use one of {SPEC_HELP}"
            ))
            .into()),
    }
}

impl Topology {
    /// A name for reports.
    pub fn name(&self) -> &str {
        match self {
            Self::Physical(g) => &g.name,
            Self::Matrix(m) => &m.name,
        }
    }

    /// What loading changed.
    pub fn notes(&self) -> &[String] {
        match self {
            Self::Physical(g) => &g.notes,
            Self::Matrix(m) => &m.notes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_kinds_and_keys_are_errors() {
        let err = load("mesh:routers=3").unwrap_err().to_string();
        assert!(err.contains("unknown topology kind \"mesh\""), "{err}");
        let err = load("waxman:routers=30,links=60,colour=red")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown key \"colour\""), "{err}");
        let err = load("waxman:routers=30,links=10").unwrap_err().to_string();
        assert!(err.contains("links must be between 29"), "{err}");
        let err = load("matrix").unwrap_err().to_string();
        assert!(err.contains("needs a file path"), "{err}");
    }
}
