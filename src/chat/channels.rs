//! Names of the socket.io rooms ("channels") used for delivery. User-chosen
//! room names are prefixed, so no room a user creates can collide with a
//! user's private channel or the all-users channel.

use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use socketioxide::operators::BroadcastOperators;

use crate::domain::{RoomName, Username};

/// Every logged-in socket of the deployment.
pub const ONLINE: &str = "online";

/// Every socket logged in as `user` (private messages, typing to a user).
pub fn user(user: &Username) -> String {
    format!("user:{}", user.key())
}

/// Every socket that joined the chat room `room`.
pub fn room(room: &RoomName) -> String {
    format!("room:{}", room.as_str())
}

/// True for the channel of a chat room (not a user's or the all-users one).
pub fn is_room(channel: &str) -> bool {
    channel.starts_with("room:")
}

/// Broadcasts on the chat's namespace, or `None` once the server has closed
/// it. Disconnect handlers still run during shutdown, after the namespace is
/// gone, and socketioxide's `io.to()` panics then: every one of 10,000
/// sockets closed by a shutdown logged a panic.
pub fn everyone<A: Adapter>(io: &SocketIo<A>) -> Option<BroadcastOperators<A>> {
    let operators = io.of("/");
    if operators.is_none() {
        tracing::debug!("the namespace is closed (shutting down): nothing is broadcast");
    }
    operators
}
