//! Application-layer anycast, sans-IO. A client names a service group, `Service%Domain`, and
//! gets the server it should use: the domain's authoritative resolver keeps the group's servers
//! and a response-time estimate of each (the servers' pushed processing delay, calibrated by the
//! resolver's occasional probes), local resolvers cache answers, and filter pipelines (random,
//! round-robin, lowest estimate, nearest, allow, deny, prefer) pick among them, answering with a
//! random member of the equivalent set so clients do not herd.
//!
//! Modules: [`name`] (anycast names and their DNS form), [`push`] (the server's push agent),
//! [`estimate`] (the hybrid estimate), [`filter`] (pipelines), [`message`] (the wire),
//! [`resolver`] (the authoritative resolver), [`local`] (caching local resolvers), [`server`]
//! (a group member: registration, probe replies, pushes, route advice), [`fetcher`] (a client
//! following every server's estimate).

#![forbid(unsafe_code)]

pub mod estimate;
pub mod fetcher;
pub mod filter;
pub mod local;
pub mod message;
pub mod name;
pub mod push;
pub mod resolver;
pub mod server;

pub use estimate::{EstimatorConfig, FigureError, Model, ServerEstimate};
pub use fetcher::EstimateFetcher;
pub use filter::{Candidate, Filter, Pipeline, SelectState};
pub use local::{LocalCommand, LocalConfig, LocalEvent, LocalFailure, LocalResolver, LocalStats};
pub use message::{Message, ServerRecord};
pub use name::{AnycastName, NameError};
pub use push::{Push, PushAgent, PushConfig};
pub use resolver::{Resolver, ResolverConfig, ResolverEvent, ResolverStats, UnknownGroup};
pub use server::{AnycastServer, ServerCommand, ServerEvent};
