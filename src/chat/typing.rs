//! `typing` and `stop typing`: to everyone (the demo), to a room, or to users.

use socketioxide::adapter::Adapter;

use super::answer::LoggedIn;
use super::emit::log_emit;
use super::events::{STOP_TYPING, TYPING};
use super::request::Request;
use super::target::{self, ROOM_OR_TO};
use super::wire::{Done, TypingEvent, TypingRequest};
use super::{ChatError, channels};
use crate::domain::Target;

/// Who a typing notice is for: everyone (no argument, like the demo), or a
/// room or users.
pub(super) struct Notice(Option<Target>);

impl Request for Notice {
    type Wire = Option<TypingRequest>;

    fn from_wire(request: Option<TypingRequest>) -> Result<Self, ChatError> {
        let target = request.map(|request| target::parse(request.room, request.to, &ROOM_OR_TO));
        Ok(Self(target.transpose()?))
    }

    fn missing() -> Result<Self, ChatError> {
        Ok(Self(None))
    }
}

/// `typing` [{ room } | { to }] → `typing` { username, room? , to? }.
pub(super) async fn typing<A: Adapter>(me: LoggedIn<A>, notice: Notice) -> Result<Done, ChatError> {
    notify(TYPING, me, notice).await
}

/// `stop typing`, same shape as `typing`.
pub(super) async fn stop_typing<A: Adapter>(me: LoggedIn<A>, notice: Notice) -> Result<Done, ChatError> {
    notify(STOP_TYPING, me, notice).await
}

async fn notify<A: Adapter>(event: &'static str, me: LoggedIn<A>, notice: Notice) -> Result<Done, ChatError> {
    let LoggedIn { chat, socket, user, .. } = me;
    let Notice(Some(target)) = notice else {
        let notice = TypingEvent { username: &user, room: None, to: None };
        log_emit(event, socket.to(channels::ONLINE).emit(event, &notice).await);
        return Ok(Done {});
    };
    let target = target::resolve(&chat, &socket, target).await?.target;
    let notice = TypingEvent { username: &user, room: target.room(), to: target.recipients() };
    log_emit(event, socket.to(channels::of(&target)).emit(event, &notice).await);
    Ok(Done {})
}
