//! What the server sends: events, and the bodies of acks (sent as
//! `{ ok: true, ...body }`). Field names are the wire names.

use serde::Serialize;

use crate::domain::{Message, Recipients, RoomName, Username};
use crate::store::RoomInfo;

/// `login`, to the socket that logged in.
#[derive(Debug, Serialize)]
pub struct LoginEvent {
    /// Online users.
    #[serde(rename = "numUsers")]
    pub num_users: usize,
}

/// `user joined` / `user left`, to everyone else.
#[derive(Debug, Serialize)]
pub struct UserEvent {
    /// Who.
    pub username: Username,
    /// Online users after the change.
    #[serde(rename = "numUsers")]
    pub num_users: usize,
}

/// `new message` of the demo, to everyone but the sender.
#[derive(Debug, Serialize)]
pub struct DemoMessage<'a> {
    /// The sender.
    pub username: &'a Username,
    /// The text.
    pub message: &'a str,
}

/// `typing` / `stop typing`.
#[derive(Debug, Serialize)]
pub struct TypingEvent<'a> {
    /// Who is typing.
    pub username: &'a Username,
    /// The room, when typing in a room.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub room: Option<&'a RoomName>,
    /// The recipients, when typing a private message (a name, or a list for multicast).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<Recipients<'a>>,
}

/// `member joined` / `member left`, to the room's other members.
#[derive(Debug, Serialize)]
pub struct MemberEvent<'a> {
    /// The room.
    pub room: &'a RoomName,
    /// Who.
    pub username: &'a Username,
}

/// One entry of the online list.
#[derive(Debug, Serialize)]
pub struct UserEntry {
    /// The user's name.
    pub username: Username,
}

/// The online list, or a page of it: the `users` ack and the `users` push.
#[derive(Debug, Serialize)]
pub struct UsersList {
    /// Online users, sorted by name.
    pub users: Vec<UserEntry>,
    /// How many users are online in all (not only in this page).
    #[serde(rename = "numUsers")]
    pub num_users: usize,
    /// When more names follow: the `after` of the next page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<Username>,
}

impl UsersList {
    /// The page `users` of `num_users` online, with `more` names after it.
    pub fn new(users: Vec<Username>, num_users: usize, more: bool) -> Self {
        let next = if more { users.last().cloned() } else { None };
        Self { users: users.into_iter().map(|username| UserEntry { username }).collect(), num_users, next }
    }
}

/// `presence`: the count, told to each socket while too many users are
/// online to announce each login (see `chat::presence`).
#[derive(Debug, Serialize)]
pub struct CountEvent {
    /// Users online in the deployment.
    #[serde(rename = "numUsers")]
    pub num_users: usize,
}

/// An ack with nothing to add to `ok: true`.
#[derive(Debug, Serialize)]
pub struct Done {}

/// `add user` ack.
#[derive(Debug, Serialize)]
pub struct LoginAck {
    /// The name, as the deployment spells it.
    pub username: Username,
    /// Online users.
    #[serde(rename = "numUsers")]
    pub num_users: usize,
    /// Secret to send back with `add user` after a reconnect to keep the name.
    pub session: String,
    /// Bearer token for the HTTP API (fetching files) and for reconnecting
    /// with `auth: { token }`, valid while the name is held.
    pub token: String,
}

/// `join` ack.
#[derive(Debug, Serialize)]
pub struct Joined {
    /// The room.
    pub room: RoomName,
    /// Its members, sorted by name.
    pub members: Vec<Username>,
    /// Its latest messages, oldest first.
    pub history: Vec<Message>,
}

/// `leave` ack.
#[derive(Debug, Serialize)]
pub struct Left {
    /// The room.
    pub room: RoomName,
}

/// `rooms` ack.
#[derive(Debug, Serialize)]
pub struct RoomsList {
    /// Rooms with at least one member.
    pub rooms: Vec<RoomInfo>,
}

/// `message` ack.
#[derive(Debug, Serialize)]
pub struct Sent {
    /// The message as recipients got it (with its id and time).
    pub message: Message,
}

/// `history` ack.
#[derive(Debug, Serialize)]
pub struct HistoryPageBody {
    /// Messages, oldest first.
    pub messages: Vec<Message>,
}
