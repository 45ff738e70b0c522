//! The presence scripts, one call each: login, logout, join, leave. Used by
//! the `Store` methods, by purging dead instances and by resyncs.

use fred::prelude::Value;

use super::RedisStore;
use super::reply::{count, flag, items, room_name, string, unexpected, username};
use super::scripts::socket_id;
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
        let reply: Value =
            self.call("logout", self.scripts.logout.evalsha_with_reload(&self.client, keys, args)).await?;
        const SCRIPT: &str = "logout";
        match items(SCRIPT, reply)?.as_slice() {
            [] => Ok(None),
            [user, last, users, rooms @ ..] => Ok(Some(Logout {
                user: username(SCRIPT, user)?,
                last_socket: flag(SCRIPT, last)?,
                num_users: count(SCRIPT, users)?,
                left_rooms: rooms.iter().map(|room| room_name(SCRIPT, room)).collect::<Result<_, _>>()?,
            })),
            other => Err(unexpected(SCRIPT, &other)),
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
        let reply: Value =
            self.call("login", self.scripts.login.evalsha_with_reload(&self.client, keys, args)).await?;
        read_login(reply, id)
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
        let reply: Value =
            self.call("join", self.scripts.join.evalsha_with_reload(&self.client, keys, args)).await?;
        const SCRIPT: &str = "join";
        let reply = items(SCRIPT, reply)?;
        let status = reply.first().map(|status| string(SCRIPT, status)).transpose()?;
        match (status.as_deref(), reply.as_slice()) {
            (Some("ok"), [_, first, members @ ..]) => {
                let mut members =
                    members.iter().map(|name| username(SCRIPT, name)).collect::<Result<Vec<_>, _>>()?;
                members.sort_by(Username::display_order);
                Ok(Some(RoomJoin { first_for_user: flag(SCRIPT, first)?, members }))
            }
            (Some("nologin"), [_]) => Ok(None),
            _ => Err(unexpected(SCRIPT, &reply)),
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
        let reply: Value =
            self.call("leave", self.scripts.leave.evalsha_with_reload(&self.client, keys, args)).await?;
        const SCRIPT: &str = "leave";
        let reply = items(SCRIPT, reply)?;
        let status = reply.first().map(|status| string(SCRIPT, status)).transpose()?;
        match (status.as_deref(), reply.as_slice()) {
            (Some("ok"), [_, last]) => Ok(Some(RoomLeave { last_for_user: flag(SCRIPT, last)? })),
            (Some("nologin" | "notin"), [_]) => Ok(None),
            _ => Err(unexpected(SCRIPT, &reply)),
        }
    }
}

/// login.lua's reply: `{"ok", name, first socket, users online, the user's
/// sockets}` (the last missing from scripts before it), `{"taken", holder}`
/// or `{"already"}`; `Ok(Err(_))` is a refusal.
fn read_login(reply: Value, id: String) -> Result<Result<Login, StoreError>, StoreError> {
    const SCRIPT: &str = "login";
    let reply = items(SCRIPT, reply)?;
    let status = reply.first().map(|status| string(SCRIPT, status)).transpose()?;
    Ok(match (status.as_deref(), reply.as_slice()) {
        (Some("ok"), [_, user, first, users, sockets @ ..]) if sockets.len() <= 1 => Ok(Login {
            user: username(SCRIPT, user)?,
            first_socket: flag(SCRIPT, first)?,
            num_users: count(SCRIPT, users)?,
            sockets: sockets.first().map_or(Ok(1), |n| count(SCRIPT, n))?,
        }),
        (Some("taken"), [_, holder]) => Err(StoreError::NameTaken(string(SCRIPT, holder)?)),
        (Some("already"), [_]) => Err(StoreError::AlreadyLoggedIn(id)),
        _ => return Err(unexpected(SCRIPT, &reply)),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly")]

    use super::*;

    fn login(items: &[Value]) -> Result<Result<Login, StoreError>, StoreError> {
        read_login(Value::Array(items.to_vec()), "i/s".into())
    }

    #[test]
    fn a_login_reply_is_read_by_its_status() {
        let ok = login(&["ok".into(), "Bob".into(), 1.into(), 4.into(), 2.into()]).unwrap().unwrap();
        assert_eq!((ok.user.as_str(), ok.first_socket, ok.num_users, ok.sockets), ("Bob", true, 4, 2));
        let older = login(&["ok".into(), "Bob".into(), 0.into(), 4.into()]).unwrap().unwrap();
        assert_eq!(older.sockets, 1, "scripts before the count of sockets");
        assert_eq!(login(&["taken".into(), "Bob".into()]).unwrap(), Err(StoreError::NameTaken("Bob".into())));
        assert_eq!(login(&["already".into()]).unwrap(), Err(StoreError::AlreadyLoggedIn("i/s".into())));
    }

    #[test]
    fn an_unknown_or_short_login_reply_is_an_error_not_a_refusal() {
        for reply in [
            vec!["maybe".into()],
            vec!["ok".into(), "Bob".into()],
            vec!["ok".into(), "Bob".into(), 2.into(), 4.into()],
            vec!["taken".into()],
            vec![1.into()],
            vec![],
        ] {
            match login(&reply) {
                Err(StoreError::Unavailable(why)) => assert!(why.contains("the login script"), "{why}"),
                other => panic!("{reply:?} read as {other:?}"),
            }
        }
    }
}
