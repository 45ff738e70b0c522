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
        if reply.is_empty() {
            return Ok(None);
        }
        Ok(Some(Logout {
            user: username(&reply[0])?,
            last_socket: int(&reply[1]) == 1,
            num_users: int(&reply[2]) as usize,
            left_rooms: reply[3..].iter().map(room_name).collect::<Result<_, _>>()?,
        }))
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
        Ok(match text(&reply[0]).as_str() {
            "ok" => Ok(Login {
                user: username(&reply[1])?,
                first_socket: int(&reply[2]) == 1,
                num_users: int(&reply[3]) as usize,
                sockets: reply.get(4).map_or(1, |n| int(n) as usize),
            }),
            "taken" => Err(StoreError::NameTaken(text(&reply[1]))),
            _ => Err(StoreError::AlreadyLoggedIn(id)),
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
        if text(&reply[0]) != "ok" {
            return Ok(None);
        }
        let mut members = reply[2..].iter().map(username).collect::<Result<Vec<_>, _>>()?;
        members.sort_by(Username::display_order);
        Ok(Some(RoomJoin { first_for_user: int(&reply[1]) == 1, members }))
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
        Ok((text(&reply[0]) == "ok").then(|| RoomLeave { last_for_user: int(&reply[1]) == 1 }))
    }
}
