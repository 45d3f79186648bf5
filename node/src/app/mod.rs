//! The applications of `esm`, each over the [`crate::runtime`] with one protocol crate.

pub mod anycast;
pub mod broadcast;
pub mod conference;
pub mod invite;
