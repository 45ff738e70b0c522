//! `join`, `leave` and `rooms`.

use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use socketioxide::extract::SocketRef;

use super::answer::LoggedIn;
use super::emit::{log_emit, namespace};
use super::events::{MEMBER_JOINED, MEMBER_LEFT};
use super::request::{NoArguments, Request};
use super::wire::{Joined, Left, MemberEvent, RoomRequest, RoomsList};
use super::{ChatError, channels};
use crate::domain::{Conversation, RoomName, Username};
use crate::store::HistoryPage;

/// How many recent messages a `join` ack carries.
pub const JOIN_HISTORY: usize = 50;

/// `join` and `leave` take a room: `{ room }`.
impl Request for RoomName {
    type Wire = RoomRequest;

    fn from_wire(request: RoomRequest) -> Result<Self, ChatError> {
        Ok(RoomName::parse(&request.room)?)
    }
}

/// `join` { room } → members and recent history; `member joined` to the others.
pub(super) async fn join<A: Adapter>(me: LoggedIn<A>, room: RoomName) -> Result<Joined, ChatError> {
    let LoggedIn { chat, socket, user, .. } = me;
    let max_rooms = chat.policy().max_rooms_per_socket;
    let rooms = socket.rooms();
    let already_in = rooms.iter().any(|channel| *channel == channels::room(&room));
    if !already_in && rooms.iter().filter(|channel| channels::is_room(channel)).count() >= max_rooms as usize
    {
        return Err(ChatError::TooManyRooms(max_rooms));
    }
    let joined = chat.store().join_room(&room, &chat.socket_key(socket.id)).await?;
    let channel = channels::room(&room);
    if !already_in {
        // Subscribed before `member joined` and the answer (ROUTED_ROOMS).
        chat.membership().enter([channel.clone()]).await;
    }
    socket.join(channel.clone());
    if joined.first_for_user {
        let event = MemberEvent { room: &room, username: &user };
        log_emit(MEMBER_JOINED, socket.to(channel).emit(MEMBER_JOINED, &event).await);
    }
    let page = HistoryPage { before: None, after: None, limit: JOIN_HISTORY };
    // The join happened; history that cannot be read now (Redis outage) is
    // left for a later `history` request rather than undoing it.
    let history =
        chat.store().history(&Conversation::Room(room.clone()), &page).await.unwrap_or_else(|err| {
            tracing::warn!(%room, error = %err, "joined without history: it cannot be read right now");
            Vec::new()
        });
    Ok(Joined { room, members: joined.members, history })
}

/// `leave` { room }; `member left` to the others.
pub(super) async fn leave<A: Adapter>(me: LoggedIn<A>, room: RoomName) -> Result<Left, ChatError> {
    let LoggedIn { chat, socket, user, .. } = me;
    ensure_member(&socket, &room)?;
    let left = chat.store().leave_room(&room, &chat.socket_key(socket.id)).await?;
    let channel = channels::room(&room);
    if left.last_for_user {
        let event = MemberEvent { room: &room, username: &user };
        log_emit(MEMBER_LEFT, socket.to(channel.clone()).emit(MEMBER_LEFT, &event).await);
    }
    socket.leave(channel.clone());
    chat.membership().leave([channel]);
    Ok(Left { room })
}

/// `rooms` → every room with its members.
pub(super) async fn rooms<A: Adapter>(me: LoggedIn<A>, _: NoArguments) -> Result<RoomsList, ChatError> {
    Ok(RoomsList { rooms: me.chat.store().rooms().await? })
}

/// `member joined` to a room's members: after a resync, for memberships the
/// rest of the deployment had not seen.
pub async fn announce_member_joined<A: Adapter>(io: &SocketIo<A>, room: &RoomName, user: &Username) {
    let Some(namespace) = namespace(io) else { return };
    let event = MemberEvent { room, username: user };
    log_emit(MEMBER_JOINED, namespace.to(channels::room(room)).emit(MEMBER_JOINED, &event).await);
}

/// Fails with `not_in_room` unless this socket joined `room`. Answered from
/// the socket's own adapter rooms: no store round trip on the message path.
pub(super) fn ensure_member<A: Adapter>(socket: &SocketRef<A>, room: &RoomName) -> Result<(), ChatError> {
    let channel = channels::room(room);
    if socket.rooms().iter().any(|joined| *joined == channel) {
        Ok(())
    } else {
        Err(ChatError::NotInRoom(room.to_string()))
    }
}
