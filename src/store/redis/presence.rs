//! The presence scripts, one call each: login, logout, join, leave. Used by
//! the `Store` methods, by purging dead instances and by resyncs.

use fred::prelude::Value;

use super::scripts::socket_id;
use super::{RedisStore, int, room_name, text, username};
use crate::domain::roster;
use crate::domain::{RoomName, Username};
use crate::store::{Login, Logout, OwnerProof, RoomJoin, RoomLeave, SocketKey, StoreError};

impl RedisStore {
    /// Runs the logout script for any socket (this instance's or a dead one's).
    pub(super) async fn redis_logout(&self, socket: &SocketKey) -> Result<Option<Logout>, StoreError> {
        let keys = vec![
            self.keys.users.clone(),
            self.keys.sockets.clone(),
            self.keys.instance(&socket.instance),
            self.keys.rooms.clone(),
            self.keys.roster.clone(),
            self.keys.roster_entries.clone(),
        ];
        let args = vec![socket_id(socket), self.keys.room_prefix().to_owned()];
        let reply: Vec<Value> =
            self.call("logout", self.scripts.logout.evalsha_with_reload(&self.client, keys, args)).await?;
        match reply.as_slice() {
            [] => Ok(None),
            [user, last, count, rooms @ ..] => Ok(Some(Logout {
                user: username(user)?,
                last_socket: int(last) == 1,
                num_users: int(count) as usize,
                left_rooms: rooms.iter().map(room_name).collect::<Result<_, _>>()?,
            })),
            _ => Err(unexpected("logout", &reply)),
        }
    }

    /// Runs the login script; `Ok(Err(_))` is a refusal, `Err(_)` an outage.
    pub(super) async fn redis_login(
        &self,
        user: &Username,
        proof: &OwnerProof,
        socket: &SocketKey,
    ) -> Result<Result<Login, StoreError>, StoreError> {
        let id = socket_id(socket);
        let keys = vec![
            self.keys.users.clone(),
            self.keys.sockets.clone(),
            self.keys.instance(&socket.instance),
            self.keys.roster.clone(),
            self.keys.roster_entries.clone(),
        ];
        let entry = roster::entry(user);
        let args = vec![user.key().to_owned(), user.as_str().to_owned(), proof.0.clone(), id.clone(), entry];
        let reply: Vec<Value> =
            self.call("login", self.scripts.login.evalsha_with_reload(&self.client, keys, args)).await?;
        let status = reply.first().map(text);
        Ok(match (status.as_deref(), reply.as_slice()) {
            (Some("ok"), [_, user, first, count, sockets @ ..]) => Ok(Login {
                user: username(user)?,
                first_socket: int(first) == 1,
                num_users: int(count) as usize,
                sockets: sockets.first().map_or(1, |n| int(n) as usize),
            }),
            (Some("taken"), [_, holder]) => Err(StoreError::NameTaken(text(holder))),
            (Some("already"), [_]) => Err(StoreError::AlreadyLoggedIn(id)),
            _ => return Err(unexpected("login", &reply)),
        })
    }

    /// Runs the join script; `None` if Redis does not know the socket.
    pub(super) async fn redis_join(
        &self,
        room: &RoomName,
        socket: &SocketKey,
    ) -> Result<Option<RoomJoin>, StoreError> {
        let keys = vec![
            self.keys.users.clone(),
            self.keys.sockets.clone(),
            self.keys.rooms.clone(),
            self.keys.room(room),
        ];
        let args = vec![socket_id(socket), room.as_str().to_owned()];
        let reply: Vec<Value> =
            self.call("join", self.scripts.join.evalsha_with_reload(&self.client, keys, args)).await?;
        let status = reply.first().map(text);
        match (status.as_deref(), reply.as_slice()) {
            (Some("ok"), [_, first, members @ ..]) => {
                let mut members = members.iter().map(username).collect::<Result<Vec<_>, _>>()?;
                members.sort_by(Username::display_order);
                Ok(Some(RoomJoin { first_for_user: int(first) == 1, members }))
            }
            (Some("nologin"), [_]) => Ok(None),
            _ => Err(unexpected("join", &reply)),
        }
    }

    /// Runs the leave script; `None` if Redis does not know the socket or it is not in the room.
    pub(super) async fn redis_leave(
        &self,
        room: &RoomName,
        socket: &SocketKey,
    ) -> Result<Option<RoomLeave>, StoreError> {
        let keys = vec![self.keys.sockets.clone(), self.keys.rooms.clone(), self.keys.room(room)];
        let args = vec![socket_id(socket), room.as_str().to_owned()];
        let reply: Vec<Value> =
            self.call("leave", self.scripts.leave.evalsha_with_reload(&self.client, keys, args)).await?;
        let status = reply.first().map(text);
        match (status.as_deref(), reply.as_slice()) {
            (Some("ok"), [_, last]) => Ok(Some(RoomLeave { last_for_user: int(last) == 1 })),
            (Some("nologin" | "notin"), [_]) => Ok(None),
            _ => Err(unexpected("leave", &reply)),
        }
    }
}

/// A script's reply of a shape it never sends: an error, never a guess
/// (a different chatwire version's scripts under the same prefix, say).
fn unexpected(script: &str, reply: &[Value]) -> StoreError {
    StoreError::Unavailable(format!("unexpected reply from the {script} script: {reply:?}"))
}
