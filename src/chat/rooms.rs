//! `join`, `leave` and `rooms`.

use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{SocketRef, State};

use super::events::{MEMBER_JOINED, MEMBER_LEFT};
use super::extract::{Payload, Reply};
use super::queue::InOrder;
use super::socket_state::SocketState;
use super::wire::{Joined, Left, MemberEvent, RoomRequest, RoomsList};
use super::{Chat, ChatError, channels, log_emit};
use crate::domain::{Conversation, RoomName, Username};
use crate::store::HistoryPage;

/// How many recent messages a `join` ack carries.
pub const JOIN_HISTORY: usize = 50;

/// `join` { room } → members and recent history; `member joined` to the others.
pub(super) async fn on_join<A: Adapter>(
    turn: InOrder,
    State(chat): State<Chat>,
    socket: SocketRef<A>,
    Payload(request): Payload<RoomRequest>,
    reply: Reply<A>,
) {
    let _turn = turn.wait().await;
    reply.send(join(&chat, &socket, request).await);
}

async fn join<A: Adapter>(
    chat: &Chat,
    socket: &SocketRef<A>,
    request: Result<RoomRequest, ChatError>,
) -> Result<Joined, ChatError> {
    let user = SocketState::of(socket).logged_in()?;
    let room = RoomName::parse(&request?.room)?;
    let max_rooms = chat.policy().max_rooms_per_socket;
    let rooms = socket.rooms();
    let already_in = rooms.iter().any(|channel| *channel == channels::room(&room));
    if !already_in && rooms.iter().filter(|channel| channels::is_room(channel)).count() >= max_rooms as usize
    {
        return Err(ChatError::TooManyRooms(max_rooms));
    }
    let joined = chat.store().join_room(&room, &chat.socket_key(socket.id)).await?;
    let channel = channels::room(&room);
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
pub(super) async fn on_leave<A: Adapter>(
    turn: InOrder,
    State(chat): State<Chat>,
    socket: SocketRef<A>,
    Payload(request): Payload<RoomRequest>,
    reply: Reply<A>,
) {
    let _turn = turn.wait().await;
    reply.send(leave(&chat, &socket, request).await);
}

async fn leave<A: Adapter>(
    chat: &Chat,
    socket: &SocketRef<A>,
    request: Result<RoomRequest, ChatError>,
) -> Result<Left, ChatError> {
    let user = SocketState::of(socket).logged_in()?;
    let room = RoomName::parse(&request?.room)?;
    ensure_member(socket, &room)?;
    let left = chat.store().leave_room(&room, &chat.socket_key(socket.id)).await?;
    let channel = channels::room(&room);
    if left.last_for_user {
        let event = MemberEvent { room: &room, username: &user };
        log_emit(MEMBER_LEFT, socket.to(channel.clone()).emit(MEMBER_LEFT, &event).await);
    }
    socket.leave(channel);
    Ok(Left { room })
}

/// `rooms` → every room with its members.
pub(super) async fn on_rooms<A: Adapter>(
    turn: InOrder,
    State(chat): State<Chat>,
    socket: SocketRef<A>,
    reply: Reply<A>,
) {
    let _turn = turn.wait().await;
    let result = async {
        SocketState::of(&socket).logged_in()?;
        Ok(RoomsList { rooms: chat.store().rooms().await? })
    };
    reply.send(result.await);
}

/// `member joined` to a room's members: after a resync, for memberships the
/// rest of the deployment had not seen.
pub async fn announce_member_joined<A: Adapter>(io: &SocketIo<A>, room: &RoomName, user: &Username) {
    let Some(namespace) = super::namespace(io) else { return };
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
