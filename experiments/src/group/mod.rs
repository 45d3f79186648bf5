//! Protocol groups in the simulator, shared by several scenarios: a Narada group
//! ([`narada::NaradaGroup`]) and an Overcast network ([`overcast::OvercastGroup`]).

pub mod bursts;
pub mod narada;
pub mod overcast;
pub mod plumtree;
