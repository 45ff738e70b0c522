//! Every socket.io event name of the contract (docs/PROTOCOL.md), written
//! once. Handlers emit with these constants; the table of incoming events
//! (`chat::table`) names its rows with them; `/metrics` counts under them.
//!
//! A leaf: it imports nothing from the chat, so every part of the chat can
//! use it.

/// `add user`: a guest login (client → server).
pub const ADD_USER: &str = "add user";
/// `users`: a page of the online list (client → server), and the online
/// list pushed to everyone (server → client).
pub const USERS: &str = "users";
/// `new message`: the demo's text to everyone, both ways.
pub const NEW_MESSAGE: &str = "new message";
/// `message`: a room, private or multicast message, both ways.
pub const MESSAGE: &str = "message";
/// `history`: a page of a conversation (client → server).
pub const HISTORY: &str = "history";
/// `join`: enter a room (client → server).
pub const JOIN: &str = "join";
/// `leave`: leave a room (client → server).
pub const LEAVE: &str = "leave";
/// `rooms`: every room with members (client → server).
pub const ROOMS: &str = "rooms";
/// `typing`: someone is typing, both ways.
pub const TYPING: &str = "typing";
/// `stop typing`: someone stopped, both ways.
pub const STOP_TYPING: &str = "stop typing";
/// `login`: to the socket that logged in.
pub const LOGIN: &str = "login";
/// `user joined`: a user came online.
pub const USER_JOINED: &str = "user joined";
/// `user left`: a user went offline.
pub const USER_LEFT: &str = "user left";
/// `member joined`: a user entered a room.
pub const MEMBER_JOINED: &str = "member joined";
/// `member left`: a user left a room.
pub const MEMBER_LEFT: &str = "member left";
/// `presence`: the count, while too many are online to announce each login.
pub const PRESENCE: &str = "presence";
/// `avatar changed`: a user's picture changed.
pub const AVATAR_CHANGED: &str = "avatar changed";
/// `chat error`: a refusal without an ack, or why the socket is signed out.
pub const CHAT_ERROR: &str = "chat error";

/// Every event the server emits, in the order `/metrics` lists them.
pub const OUTGOING: &[&str] = &[
    LOGIN,
    USER_JOINED,
    USER_LEFT,
    NEW_MESSAGE,
    MESSAGE,
    TYPING,
    STOP_TYPING,
    MEMBER_JOINED,
    MEMBER_LEFT,
    USERS,
    PRESENCE,
    AVATAR_CHANGED,
    CHAT_ERROR,
];
