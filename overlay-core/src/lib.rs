//! The vocabulary every crate of the overlay shares.
//!
//! - [`Time`]: monotonic microseconds, passed into every protocol input;
//! - [`NodeId`]: a member's identity (its public key);
//! - [`Protocol`]: the sans-IO contract, with its drain rule, and the [`Output`]s a protocol asks
//!   its driver to carry out ([`Outbox`] queues them);
//! - [`LinkMetrics`] and [`MeasureRequest`]: what a member knows or asks about a path;
//! - [`wire`]: the envelope codec (version byte, postcard, size limit, total decoding);
//! - [`TimerTable`]: named deadlines behind `poll_timeout`;
//! - [`rng`]: seeded randomness, so simulations replay bit for bit;
//! - `sim` (feature `sim`): the deterministic discrete-event simulator every crate's tests and
//!   the experiments drive protocols with.
//!
//! A driver's loop, in full (the simulator and the QUIC runtime both follow it):
//!
//! ```
//! use overlay_core::{Protocol, Output, Time};
//!
//! fn drive<P: Protocol>(member: &mut P, now: Time, input: impl FnOnce(&mut P, Time)) -> Option<Time> {
//!     input(member, now);
//!     // The drain rule: take every output before the next input.
//!     while let Some(output) = member.poll_output() {
//!         match output {
//!             Output::Send { to, msg } => { let _ = (to, msg); /* encode and send */ }
//!             Output::Connect { peer } | Output::Disconnect { peer } => { let _ = peer; }
//!             Output::Measure { peer, request } => { let _ = (peer, request); }
//!             Output::Emit(event) => { let _ = event; /* hand to the application */ }
//!         }
//!     }
//!     member.poll_timeout()
//! }
//! ```

#![forbid(unsafe_code)]

mod bandwidth;
pub mod emulation;
mod id;
mod link;
mod protocol;
pub mod rng;
pub mod signature;
#[cfg(feature = "sim")]
pub mod sim;
mod time;
mod timer;
pub mod wire;

pub use bandwidth::{Bandwidth, ParseBandwidthError};
pub use id::{NodeId, ParseNodeIdError};
pub use link::{LinkMetrics, MeasureRequest};
pub use protocol::{LinkEvent, Outbox, Output, Protocol};
pub use time::{Time, duration_micros, soonest};
pub use timer::TimerTable;
pub use wire::{TrafficClass, WireMessage};
