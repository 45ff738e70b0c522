//! Every socket.io event name of the contract (docs/PROTOCOL.md), written
//! once. Handlers emit with these constants; what the server receives is
//! registered from the table of incoming events (`chat::table`), which
//! names its rows with them; `/metrics` counts by these names
//! ([`name_metrics`]).
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

/// Every event the server handles, in the order `/metrics` lists them.
pub const INCOMING: &[&str] =
    &[ADD_USER, USERS, NEW_MESSAGE, MESSAGE, HISTORY, JOIN, LEAVE, ROOMS, TYPING, STOP_TYPING];

/// Gives `/metrics` the names it counts events under (once per process;
/// the names are the same for every chat).
pub fn name_metrics() {
    crate::metrics::name_events(INCOMING, OUTGOING);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::metrics;

    #[test]
    fn every_event_the_server_emits_is_counted_by_name() {
        name_metrics();
        let m = metrics();
        m.event_out(AVATAR_CHANGED);
        let text = m.render(None, None);
        assert!(text.contains("chatwire_events_out_total{event=\"avatar changed\"} "), "{text}");
    }
}
