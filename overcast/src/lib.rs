//! Overcast (Jannotti, Gifford, Johnson, Kaashoek, O'Toole, OSDI 2000), sans-IO.
//!
//! A single source's content flows down a tree of nodes placed for bandwidth: a joining node
//! starts under the root and moves under a child of its candidate whenever the bandwidth through
//! that child is within 10% of the direct bandwidth (ties to the closest), stopping when no child
//! is as good; it later re-evaluates against its siblings, parent and grandparent. Every node keeps
//! its ancestor list, climbs it when its parent fails, and never adopts an ancestor. The up/down
//! protocol ([`table`], [`certificate`]) sends signed birth, death and extra-information
//! certificates up at each check-in, with per-node sequence numbers so an old certificate never
//! wins and quashing so unchanged news stops early: the root knows every live node without
//! polling. A chain of standby roots each hold the full table. Content is reliable, in order, and
//! resumes from what a node holds after any move ([`content`]).

#![forbid(unsafe_code)]

pub mod certificate;
mod config;
pub mod content;
pub mod message;
mod node;
mod path_bandwidth;
pub mod redirect;
pub mod table;

pub use config::OvercastConfig;
pub use message::Message;
pub use node::{Command, Event, Overcast, OvercastStats};
pub use path_bandwidth::PathBandwidth;
