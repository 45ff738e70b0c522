//! `typing` and `stop typing`: to everyone (the demo), to a room, or to users.

use socketioxide::adapter::Adapter;
use socketioxide::extract::{SocketRef, State};

use super::events::{STOP_TYPING, TYPING};
use super::extract::{OptionalPayload, Reply};
use super::messages::resolve_target;
use super::queue::InOrder;
use super::socket_state::SocketState;
use super::wire::{Done, TypingEvent, TypingRequest};
use super::{Chat, ChatError, channels, log_emit};
use crate::domain::Target;

/// `typing` [{ room } | { to }] → `typing` { username, room? , to? }.
pub(super) async fn on_typing<A: Adapter>(
    turn: InOrder,
    State(chat): State<Chat>,
    socket: SocketRef<A>,
    OptionalPayload(request): OptionalPayload<TypingRequest>,
    reply: Reply<A>,
) {
    let _turn = turn.wait().await;
    reply.send(notify(&chat, &socket, TYPING, request).await);
}

/// `stop typing`, same shape as `typing`.
pub(super) async fn on_stop_typing<A: Adapter>(
    turn: InOrder,
    State(chat): State<Chat>,
    socket: SocketRef<A>,
    OptionalPayload(request): OptionalPayload<TypingRequest>,
    reply: Reply<A>,
) {
    let _turn = turn.wait().await;
    reply.send(notify(&chat, &socket, STOP_TYPING, request).await);
}

async fn notify<A: Adapter>(
    chat: &Chat,
    socket: &SocketRef<A>,
    event: &'static str,
    request: Result<Option<TypingRequest>, ChatError>,
) -> Result<Done, ChatError> {
    let user = SocketState::of(socket).logged_in()?;
    let Some(request) = request? else {
        let notice = TypingEvent { username: &user, room: None, to: None };
        log_emit(event, socket.to(channels::ONLINE).emit(event, &notice).await);
        return Ok(Done {});
    };
    let target = resolve_target(chat, socket, request.room, request.to).await?.target;
    let to = target.recipients();
    let (room, destination) = match &target {
        Target::Room(room) => (Some(room), vec![channels::room(room)]),
        Target::User(user) => (None, vec![channels::user(user)]),
        Target::Users(users) => (None, users.iter().map(channels::user).collect()),
    };
    let notice = TypingEvent { username: &user, room, to: to.as_ref() };
    log_emit(event, socket.to(destination).emit(event, &notice).await);
    Ok(Done {})
}
