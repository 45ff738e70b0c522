//! The one shape of an event handler, [`answer`]: wait for the event's
//! turn, check who asks ([`LoggedIn`], [`Guest`]), take the parsed request,
//! act, and answer ([`Reply`]). Handlers are plain async functions of who
//! asks and what; the table of events (`chat::table`) wraps each in this.
//!
//! Who asks is checked after the turn, not when the packet arrives: `add
//! user` and a `message` sent right after it are queued back to back, and
//! the message must see the login.

use std::convert::Infallible;
use std::sync::Arc;

use serde::Serialize;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{AckSender, SocketRef};
use socketioxide::handler::{FromMessageParts, Value};
use socketioxide::socket::Socket;

use super::error::ErrorBody;
use super::events::CHAT_ERROR;
use super::queue::InOrder;
use super::socket_state::SocketState;
use super::{Chat, ChatError};
use crate::domain::{UserId, Username};

/// Who may send an event, checked once its turn has come.
pub trait Asker<A: Adapter>: Sized {
    /// The asker, or why the socket may not send this event now.
    fn after_turn(chat: Chat, socket: SocketRef<A>) -> Result<Self, ChatError>;
}

/// A logged-in socket, who every event but `add user` comes from.
pub struct LoggedIn<A: Adapter> {
    /// The chat.
    pub chat: Chat,
    /// The socket that sent the event.
    pub socket: SocketRef<A>,
    /// Who it is logged in as.
    pub user: Username,
    /// The identity behind the name (what private conversations belong to).
    pub id: UserId,
}

impl<A: Adapter> Asker<A> for LoggedIn<A> {
    fn after_turn(chat: Chat, socket: SocketRef<A>) -> Result<Self, ChatError> {
        let (user, id) = SocketState::of(&socket).logged_in_as()?;
        Ok(Self { chat, socket, user, id })
    }
}

/// A socket not logged in yet, on a deployment that admits guests: who may
/// send `add user`.
pub struct Guest<A: Adapter> {
    /// The chat.
    pub chat: Chat,
    /// The socket that sent the event.
    pub socket: SocketRef<A>,
}

impl<A: Adapter> Asker<A> for Guest<A> {
    fn after_turn(chat: Chat, socket: SocketRef<A>) -> Result<Self, ChatError> {
        if let Some(current) = SocketState::of(&socket).user() {
            return Err(ChatError::AlreadyLoggedIn(current.to_string()));
        }
        if !chat.policy().allow_guests {
            return Err(ChatError::GuestsDisabled);
        }
        Ok(Self { chat, socket })
    }
}

/// Runs `handler` in the event's turn and answers with its outcome. The
/// refusals come in this order: who asks (`not_logged_in`, …), then the
/// request (`invalid_payload`, …), then whatever the handler finds.
pub async fn answer<A, Who, R, T, F, Fut>(
    turn: InOrder,
    chat: Chat,
    socket: SocketRef<A>,
    request: Result<R, ChatError>,
    reply: Reply<A>,
    handler: F,
) where
    A: Adapter,
    Who: Asker<A>,
    T: Serialize,
    F: FnOnce(Who, R) -> Fut,
    Fut: Future<Output = Result<T, ChatError>>,
{
    let _turn = turn.wait().await;
    let outcome = match Who::after_turn(chat, socket).and_then(|who| Ok((who, request?))) {
        Ok((who, request)) => handler(who, request).await,
        Err(err) => Err(err),
    };
    reply.send(outcome);
}

/// Answers the event: through the client's ack callback if it gave one,
/// otherwise (for failures only) with a `chat error` event.
pub struct Reply<A: Adapter> {
    socket: SocketRef<A>,
    ack: AckSender<A>,
    wants_ack: bool,
}

impl<A: Adapter> FromMessageParts<A> for Reply<A> {
    type Error = Infallible;
    fn from_message_parts(s: &Arc<Socket<A>>, v: &mut Value, ack: &Option<i64>) -> Result<Self, Infallible> {
        let Ok(socket) = SocketRef::from_message_parts(s, v, ack);
        let Ok(sender) = AckSender::from_message_parts(s, v, ack);
        Ok(Self { socket, ack: sender, wants_ack: ack.is_some() })
    }
}

/// A successful ack: `{ ok: true, ...body }`.
#[derive(Serialize)]
struct Success<T> {
    ok: bool,
    #[serde(flatten)]
    body: T,
}

/// A failed ack: `{ ok: false, error: { code, message } }`.
#[derive(Serialize)]
struct Failure {
    ok: bool,
    error: ErrorBody,
}

impl<A: Adapter> Reply<A> {
    /// Sends the outcome of the event to the client.
    pub fn send<T: Serialize>(self, result: Result<T, ChatError>) {
        let sent = match result {
            Ok(body) if self.wants_ack => self.ack.send(&Success { ok: true, body }),
            Ok(_) => Ok(()),
            Err(err) => {
                tracing::debug!(sid = %self.socket.id, code = err.code(), error = %err, "request refused");
                if self.wants_ack {
                    self.ack.send(&Failure { ok: false, error: err.body() })
                } else {
                    self.socket.emit(CHAT_ERROR, &err.body())
                }
            }
        };
        if let Err(err) = sent {
            tracing::debug!(sid = %self.socket.id, error = %err, "could not answer a request");
        }
    }
}
