//! Names of the socket.io rooms ("channels") used for delivery. User-chosen
//! room names are prefixed, so no room a user creates can collide with a
//! user's private channel or the all-users channel.

use crate::domain::{RoomName, Target, Username};

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

/// The channels of a target: its room's, or each user's.
pub fn of(target: &Target) -> Vec<String> {
    match target {
        Target::Room(name) => vec![room(name)],
        Target::User(_) | Target::Users(_) => target.users().iter().map(user).collect(),
    }
}

/// True for the channel of a chat room (not a user's or the all-users one).
pub fn is_room(channel: &str) -> bool {
    channel.starts_with("room:")
}
