//! The table of incoming events: one row per event the server handles,
//! giving its name, its request (the domain value the payload is parsed
//! into, see `chat::request`), its handler, and whether its packets may
//! carry binary attachments. A new event is one row here, plus its request
//! type and handler in the module of its area.
//!
//! Everything about incoming events is derived from the rows: registration
//! on each socket ([`register`]), the names `/metrics` counts
//! ([`name_metrics`]), which events may carry a file ([`accepts_binary`])
//! and the probe's checks ([`INCOMING`], used by `chat::probe`).
//!
//! Why a macro and not a `const` array alone: registering needs each
//! handler instantiated for the socket's adapter type, which a const table
//! of function pointers cannot hold. The macro expands the one list into
//! both the const table and the registration, so the two cannot drift.

use socketioxide::adapter::Adapter;
use socketioxide::extract::{SocketRef, State};
use socketioxide::handler::Value;

use super::answer::{Reply, answer};
use super::events::{
    ADD_USER, HISTORY, JOIN, LEAVE, MESSAGE, NEW_MESSAGE, OUTGOING, ROOMS, STOP_TYPING, TYPING, USERS,
};
use super::history::{self, HistoryQuery};
use super::login::{self, NewLogin};
use super::messages::{self, NewMessage};
use super::queue::InOrder;
use super::request::{self, NoArguments, Parsed};
use super::typing::{self, Notice};
use super::{Chat, ChatError, rooms};
use crate::domain::roster::RosterQuery;
use crate::domain::{RoomName, Text};

/// An incoming event, as far as it is known without a socket.
pub struct Incoming {
    /// Its name.
    pub name: &'static str,
    /// Whether its packets may carry binary attachments (a file). Any other
    /// event carrying one disconnects its socket.
    pub binary: bool,
    /// Reads its payload as its handler does (the probe's check).
    pub check: fn(&mut Value) -> Result<(), ChatError>,
}

/// Expands the rows into [`INCOMING`], [`NAMES`] and [`register`].
macro_rules! events {
    ($( $name:ident: $request:ty => $module:ident::$handler:ident, binary: $binary:literal; )*) => {
        /// Every incoming event, in the order `/metrics` lists them.
        pub const INCOMING: &[Incoming] = &[
            $( Incoming { name: $name, binary: $binary, check: request::check::<$request> }, )*
        ];

        /// Their names.
        pub const NAMES: &[&str] = &[$( $name, )*];

        /// Registers every event's handler on a socket: each waits for its
        /// turn, checks who asks, takes its parsed request and answers
        /// (see `chat::answer`).
        pub fn register<A: Adapter>(socket: &SocketRef<A>) {
            $(
                socket.on(
                    $name,
                    |turn: InOrder,
                     State(chat): State<Chat>,
                     socket: SocketRef<A>,
                     Parsed(request): Parsed<$request>,
                     reply: Reply<A>| {
                        answer(turn, chat, socket, request, reply, $module::$handler::<A>)
                    },
                );
            )*
        }
    };
}

events! {
    // event        request          handler                   binary attachments
    ADD_USER:       NewLogin      => login::add_user,          binary: false;
    USERS:          RosterQuery   => login::users,             binary: false;
    NEW_MESSAGE:    Text          => messages::new_message,    binary: false;
    MESSAGE:        NewMessage    => messages::send,           binary: true;
    HISTORY:        HistoryQuery  => history::history,         binary: false;
    JOIN:           RoomName      => rooms::join,              binary: false;
    LEAVE:          RoomName      => rooms::leave,             binary: false;
    ROOMS:          NoArguments   => rooms::rooms,             binary: false;
    TYPING:         Notice        => typing::typing,           binary: false;
    STOP_TYPING:    Notice        => typing::stop_typing,      binary: false;
}

/// The row of event `name`, if the server handles it.
pub fn incoming(name: &str) -> Option<&'static Incoming> {
    INCOMING.iter().find(|event| event.name == name)
}

/// Whether `event`'s packets may carry binary attachments: only `message`
/// (a file).
pub fn accepts_binary(event: &str) -> bool {
    incoming(event).is_some_and(|event| event.binary)
}

/// Gives `/metrics` the names it counts events under: this table's, and
/// every event the server emits. Once per process; every chat has the same.
pub fn name_metrics() {
    crate::metrics::name_events(NAMES, OUTGOING);
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::chat::events::AVATAR_CHANGED;
    use crate::metrics::metrics;

    #[test]
    fn every_event_name_is_distinct() {
        let handled: HashSet<&str> = NAMES.iter().copied().collect();
        assert_eq!(handled.len(), NAMES.len(), "{NAMES:?}");
        let outgoing: HashSet<&str> = OUTGOING.iter().copied().collect();
        assert_eq!(outgoing.len(), OUTGOING.len(), "{OUTGOING:?}");
        assert!(NAMES.iter().all(|name| incoming(name).is_some_and(|row| row.name == *name)));
    }

    #[test]
    fn every_event_in_the_table_and_every_event_emitted_has_a_metrics_slot() {
        name_metrics();
        let text = metrics().render(None, None);
        for (metric, names) in [("chatwire_events_in_total", NAMES), ("chatwire_events_out_total", OUTGOING)]
        {
            for name in names.iter().chain(&["other"]) {
                assert!(text.contains(&format!("{metric}{{event=\"{name}\"}} ")), "{metric} {name}: {text}");
            }
        }
    }

    #[test]
    fn every_event_the_server_emits_is_counted_by_name() {
        name_metrics();
        let m = metrics();
        m.event_out(AVATAR_CHANGED);
        let text = m.render(None, None);
        assert!(text.contains("chatwire_events_out_total{event=\"avatar changed\"} "), "{text}");
    }

    #[test]
    fn only_message_carries_binary_attachments() {
        let binary: Vec<&str> =
            INCOMING.iter().filter(|event| event.binary).map(|event| event.name).collect();
        assert_eq!(binary, [MESSAGE]);
        assert!(accepts_binary(MESSAGE) && !accepts_binary(JOIN) && !accepts_binary("made-up event"));
    }
}
