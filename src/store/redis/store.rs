//! [`Store`] over Redis: each change made in Redis and mirrored locally,
//! each read answered by Redis, or by the mirror while Redis fails.

use async_trait::async_trait;
use fred::prelude::{HashesInterface, Value};

use super::{PENDING_LIMIT, RedisStore, reply};
use crate::domain::roster::RosterQuery;
use crate::domain::{Conversation, Message, RoomName, Username};
use crate::store::{
    HistoryPage, Login, Logout, OwnerProof, RoomInfo, RoomJoin, RoomLeave, RosterPage, SocketKey, Store,
    StoreError,
};

#[async_trait]
impl Store for RedisStore {
    async fn login(&self, user: &Username, proof: &OwnerProof, key: &SocketKey) -> Result<Login, StoreError> {
        let _shared = self.sync.read().await;
        match self.redis_login(user, proof, key).await {
            Ok(Ok(login)) => {
                self.mirrored("login", self.local.login(&login.user, proof, key).await);
                Ok(login)
            }
            Ok(Err(refused)) => Err(refused),
            Err(err) => {
                self.degraded("login", &err);
                self.local.login(user, proof, key).await
            }
        }
    }

    async fn logout(&self, socket: &SocketKey) -> Result<Option<Logout>, StoreError> {
        let _shared = self.sync.read().await;
        let local = self.local.logout(socket).await?;
        let redis = self.redis_logout(socket).await.map(|logout| logout.map(Some));
        Ok(self.prefer_redis("logout", redis, local))
    }

    async fn roster(&self, query: &RosterQuery) -> Result<RosterPage, StoreError> {
        let start = query.start().map_or_else(|| "-".to_owned(), |start| format!("[{start}"));
        let end = query.end().map_or_else(|| "+".to_owned(), |end| format!("({end}"));
        let keys = vec![self.keys.users.clone(), self.keys.roster.clone(), self.keys.roster_entries.clone()];
        let args = vec![start, end, (query.limit() + 1).to_string()];
        let reply: Result<Value, _> =
            self.call("roster", self.scripts.roster.evalsha_with_reload(&self.client, keys, args)).await;
        let entries = match reply {
            Ok(reply) => reply::strings("roster", reply)?,
            Err(err) => return self.read_locally("roster", &err, self.local.roster(query)).await,
        };
        RosterPage::of_entries(&entries, query.limit())
    }

    async fn count_online_everywhere(&self) -> Result<usize, StoreError> {
        self.call("count users", self.client.hlen(&self.keys.users)).await
    }

    async fn count_online(&self) -> Result<usize, StoreError> {
        let count: Result<usize, _> = self.call("count users", self.client.hlen(&self.keys.users)).await;
        match count {
            Ok(count) => Ok(count),
            Err(err) => self.read_locally("count users", &err, self.local.count_online()).await,
        }
    }

    async fn holders_of(
        &self,
        names: &[Username],
    ) -> Result<Vec<Option<(Username, OwnerProof)>>, StoreError> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let fields: Vec<&str> = names.iter().map(Username::key).collect();
        let values: Result<Vec<Option<String>>, _> =
            self.call("find holders", self.client.hmget(&self.keys.users, fields)).await;
        let values = match values {
            Ok(values) => values,
            Err(err) => return self.read_locally("find holders", &err, self.local.holders_of(names)).await,
        };
        values
            .into_iter()
            .map(|raw| {
                raw.map(|raw| {
                    let proof = user_record_proof(&raw).unwrap_or_else(|| OwnerProof(String::new()));
                    Ok((user_record_name(&raw)?, proof))
                })
                .transpose()
            })
            .collect()
    }

    async fn join_room(&self, room: &RoomName, socket: &SocketKey) -> Result<RoomJoin, StoreError> {
        let _shared = self.sync.read().await;
        let local = self.local.join_room(room, socket).await?;
        Ok(self.prefer_redis("join", self.redis_join(room, socket).await, local))
    }

    async fn leave_room(&self, room: &RoomName, socket: &SocketKey) -> Result<RoomLeave, StoreError> {
        let _shared = self.sync.read().await;
        let local = self.local.leave_room(room, socket).await?;
        Ok(self.prefer_redis("leave", self.redis_leave(room, socket).await, local))
    }

    async fn rooms(&self) -> Result<Vec<RoomInfo>, StoreError> {
        let keys = vec![self.keys.users.clone(), self.keys.rooms.clone()];
        let args = vec![self.keys.room_prefix().to_owned()];
        let reply: Result<Value, _> =
            self.call("rooms", self.scripts.rooms.evalsha_with_reload(&self.client, keys, args)).await;
        let mut rooms = match reply {
            Ok(reply) => reply::rooms(reply)?,
            Err(err) => return self.read_locally("rooms", &err, self.local.rooms()).await,
        };
        rooms.sort_by(|a, b| a.room.cmp(&b.room));
        Ok(rooms)
    }

    async fn is_member(&self, room: &RoomName, user: &Username) -> Result<bool, StoreError> {
        let member: Result<bool, _> =
            self.call("is member", self.client.hexists(self.keys.room(room), user.key())).await;
        match member {
            Ok(member) => Ok(member),
            Err(err) => self.read_locally("is member", &err, self.local.is_member(room, user)).await,
        }
    }

    async fn room_size(&self, room: &RoomName) -> Result<usize, StoreError> {
        let size: Result<usize, _> = self.call("room size", self.client.hlen(self.keys.room(room))).await;
        match size {
            Ok(size) => Ok(size),
            Err(err) => self.read_locally("room size", &err, self.local.room_size(room)).await,
        }
    }

    async fn owner_of(&self, user: &Username) -> Result<Option<OwnerProof>, StoreError> {
        let record: Result<Option<String>, _> =
            self.call("owner", self.client.hget(&self.keys.users, user.key())).await;
        match record {
            Ok(record) => Ok(record.as_deref().and_then(user_record_proof)),
            Err(err) => self.read_locally("owner", &err, self.local.owner_of(user)).await,
        }
    }

    async fn append_message(&self, conversation: &Conversation, message: &Message) -> Result<(), StoreError> {
        if self.pending_writes() == 0 {
            match self.redis_append(conversation, message).await {
                Ok(()) => return Ok(()),
                Err(err) => {
                    tracing::warn!(id = %message.id, error = %err, "history write failed; buffering until Redis returns")
                }
            }
        }
        // Behind earlier buffered writes, or failed: keep it, in order, for the flush.
        let mut pending = self.pending_lock();
        pending.push_back((conversation.clone(), message.clone()));
        if pending.len() > PENDING_LIMIT {
            let dropped = pending.pop_front();
            tracing::error!(id = ?dropped.map(|(_, m)| m.id), limit = PENDING_LIMIT, "history buffer full: oldest unsaved message dropped");
        }
        Ok(())
    }

    async fn history(
        &self,
        conversation: &Conversation,
        page: &HistoryPage,
    ) -> Result<Vec<Message>, StoreError> {
        self.read_history(conversation, page).await
    }
}

/// The owner proof in a users-hash record ("count\nproof\nname").
fn user_record_proof(raw: &str) -> Option<OwnerProof> {
    raw.split('\n').nth(1).map(|proof| OwnerProof(proof.to_owned()))
}

/// The display name in a users-hash record ("count\nproof\nname").
fn user_record_name(raw: &str) -> Result<Username, StoreError> {
    let name = raw.split('\n').nth(2).unwrap_or_default();
    Username::parse(name).map_err(|err| StoreError::Unavailable(format!("corrupt user in Redis: {err}")))
}
