//! QUIC below any protocol: who a member is, how two members admit each other, and the frames
//! on an admitted connection. Nothing here knows a protocol or an application.

pub mod admission;
pub mod connect;
pub mod frame;
pub mod identity;
pub mod signing;
pub mod tls;
