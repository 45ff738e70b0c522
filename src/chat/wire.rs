//! The wire types of the event contract (see docs/PROTOCOL.md): what
//! clients send ([`incoming`]) and what the server sends ([`outgoing`]).

mod incoming;
mod outgoing;

pub use incoming::*;
pub use outgoing::*;
