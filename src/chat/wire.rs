//! The wire types of the event contract (see docs/PROTOCOL.md). Requests hold
//! raw strings: handlers parse them into domain values, so each rule gives its
//! own error code. Field names are the wire names.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use crate::domain::{Message, Recipients, RoomName, Username};
use crate::store::RoomInfo;

// ---- client → server ----

/// `add user`: the demo sends a bare name; our client adds the session
/// secret it got at its first login, to take its name back on reconnect.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum AddUser {
    /// `"alice"`
    Name(String),
    /// `{ username, session? }`
    WithSession {
        /// The name to log in as.
        username: String,
        /// The secret returned by an earlier login.
        #[serde(default)]
        session: Option<String>,
    },
}

/// `join` and `leave`.
#[derive(Debug, Deserialize)]
#[serde(expecting = "an object { room }")]
pub struct RoomRequest {
    /// The room.
    pub room: String,
}

/// One name or a list of names (`to` of `message`, `with` of `history`).
#[derive(Debug, Deserialize)]
#[serde(untagged, expecting = "a name or a list of names")]
pub enum Names {
    /// A single user.
    One(String),
    /// Several users.
    Many(Vec<String>),
}

/// `message`: exactly one of `room` / `to`, and a text, a file, or both.
#[derive(Debug, Deserialize)]
#[serde(expecting = "an object { room | to, text?, file? }")]
pub struct SendMessage {
    /// A room the sender has joined.
    pub room: Option<String>,
    /// A user, or a list of users.
    pub to: Option<Names>,
    /// The text.
    pub text: Option<String>,
    /// A file.
    #[serde(default, deserialize_with = "binary_safe_option")]
    pub file: Option<FileUpload>,
}

/// `Option<T>` for values that may carry binary attachments. socketioxide's
/// deserializer swaps attachments in for their placeholders everywhere but
/// inside `Option` (its `deserialize_option` drops that wrapping), so an
/// optional file is read as "null, or a map read with the wrapping kept".
fn binary_safe_option<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct NullOrMap<T>(PhantomData<T>);
    impl<'de, T: Deserialize<'de>> Visitor<'de> for NullOrMap<T> {
        type Value = Option<T>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("null or an object")
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_map<M: MapAccess<'de>>(self, map: M) -> Result<Self::Value, M::Error> {
            T::deserialize(de::value::MapAccessDeserializer::new(map)).map(Some)
        }
    }
    deserializer.deserialize_any(NullOrMap(PhantomData))
}

/// A file sent with `message`: `data` must be binary (a socket.io binary
/// attachment: an ArrayBuffer, Blob or Buffer in the JavaScript client).
#[derive(Debug, Deserialize)]
#[serde(expecting = "a file { name, type, data }, data being binary")]
pub struct FileUpload {
    /// The file's name.
    pub name: String,
    /// The type the sender claims; ignored (the type is read from the bytes).
    #[serde(rename = "type", default)]
    pub claimed_type: Option<String>,
    /// The bytes.
    pub data: bytes::Bytes,
}

/// `history`: exactly one of `room` / `with`, and an optional page.
#[derive(Debug, Deserialize)]
#[serde(expecting = "an object { room | with, before?, after?, limit? }")]
pub struct HistoryRequest {
    /// A room the requester has joined.
    pub room: Option<String>,
    /// The other participant(s) of a private conversation.
    pub with: Option<Names>,
    /// Only messages older than this id.
    pub before: Option<String>,
    /// Only messages newer than this id.
    pub after: Option<String>,
    /// How many messages at most.
    pub limit: Option<u64>,
}

/// `typing` / `stop typing`: no argument (everyone, like the demo), a room,
/// or users.
#[derive(Debug, Deserialize)]
#[serde(expecting = "nothing, or an object { room } or { to }")]
pub struct TypingRequest {
    /// A room the typist has joined.
    pub room: Option<String>,
    /// The user(s) of a private conversation.
    pub to: Option<Names>,
}

// ---- server → client ----

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
    pub to: Option<&'a Recipients>,
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

/// The online list: the `users` ack and the `users` push.
#[derive(Debug, Serialize)]
pub struct UsersList {
    /// Online users, sorted by name.
    pub users: Vec<UserEntry>,
    /// How many.
    #[serde(rename = "numUsers")]
    pub num_users: usize,
}

impl UsersList {
    /// The list for these users.
    pub fn new(users: Vec<Username>) -> Self {
        let num_users = users.len();
        Self { users: users.into_iter().map(|username| UserEntry { username }).collect(), num_users }
    }
}

/// `presence`: the changes an instance gathered while too many users were
/// online to announce each one (see `chat::presence`).
#[derive(Debug, Serialize)]
pub struct PresenceEvent {
    /// Named users online when the event is sent, oldest change first.
    pub joined: Vec<UserEntry>,
    /// Named users offline when the event is sent, oldest change first.
    pub left: Vec<UserEntry>,
    /// Users online when the event is sent.
    #[serde(rename = "numUsers")]
    pub num_users: usize,
}

// ---- ack bodies (sent as `{ ok: true, ...body }`) ----

/// An ack with nothing to add to `ok: true`.
#[derive(Debug, Serialize)]
pub struct Done {}

/// `add user` ack.
#[derive(Debug, Serialize)]
pub struct LoggedIn {
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
