//! QUIC below any protocol: who a member is, how two members admit each other, and the frames
//! on an admitted connection; and, for tests and demos, an emulated wide-area network under
//! QUIC ([`emulation`]); rate-limited logs for what strangers trigger ([`log_limit`]), used by
//! every layer above. Nothing here knows a protocol or an application.

pub mod admission;
pub mod connect;
pub mod emulation;
pub mod failure_limit;
pub mod frame;
pub mod identity;
pub mod invite;

pub mod log_limit;
pub mod signing;
pub mod tls;
