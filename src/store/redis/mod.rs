//! The Redis store: shared state for a cluster of instances.
//!
//! Redis holds the deployment's view (who is online on which instance,
//! rooms, history). Each instance also keeps a local mirror of *its own*
//! sockets in a [`MemoryStore`]: that mirror is the truth about this
//! instance, and it is what the instance serves from while Redis is
//! unreachable, so local clients keep chatting through an outage. When Redis
//! returns, [`RedisStore::resync`] rewrites this instance's part of Redis from
//! the mirror, and buffered history writes are flushed.
//!
//! Every Redis call is bounded by [`TIMEOUT`] and refused at once while the
//! client is disconnected, so no request waits on a dead Redis.

mod accounts;
mod files;
mod history;
mod migrate;
mod presence;
mod scripts;
mod sync;

use std::collections::VecDeque;
use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use fred::prelude::{Client, ClientLike, FredResult, HashesInterface, Value};

pub use migrate::Migration;
pub use sync::{Purge, Resync};

use self::scripts::{Keys, Scripts};
use super::{
    HistoryPage, Login, Logout, MemoryStore, OwnerProof, RoomInfo, RoomJoin, RoomLeave, RosterPage,
    SocketKey, Store, StoreError,
};
use crate::domain::roster::RosterQuery;
use crate::domain::{Conversation, Message, RoomName, Username};
use crate::telemetry::Throttle;

/// Longest any single Redis call may take before it counts as failed.
pub const TIMEOUT: Duration = Duration::from_secs(2);
/// Redis commands this store has in flight at once. A reconnect storm sends
/// thousands of logins together: queued inside the client, each command's
/// [`TIMEOUT`] ran while it waited behind the others, and a healthy Redis
/// looked unreachable (measured: 18,800 logins at once on one instance,
/// logins past 2 s, the instance fell back to local state and resynced).
/// A command waits here before it exists, so its timeout covers only Redis.
const IN_FLIGHT: usize = 256;
/// The longest a command waits for its turn among the [`IN_FLIGHT`]: a
/// Redis that answers nothing frees a turn only every [`TIMEOUT`], and with
/// the command's own [`TIMEOUT`] a request still gets its answer within the
/// web client's 8 s.
const QUEUE_WAIT: Duration = Duration::from_secs(5);
/// The most often a read answered from local state is logged.
const FALLBACK_REPORT_INTERVAL: Duration = Duration::from_secs(10);
/// History writes kept while Redis is unreachable, flushed when it returns.
const PENDING_LIMIT: usize = 10_000;
/// Files are kept this long by default.
const DEFAULT_FILE_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// A conversation's history expires this long after its last message, by default.
const DEFAULT_HISTORY_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// [`Store`] backed by Redis (or a Redis Cluster), with a local mirror.
pub struct RedisStore {
    client: Client,
    scripts: Scripts,
    keys: Keys,
    /// This instance's id, as its sockets are known in Redis.
    instance: String,
    history_limit: usize,
    /// How long files are kept.
    file_ttl: Duration,
    /// How long a conversation's history outlives its last message.
    history_ttl: Duration,
    /// This instance's own sockets: the truth about them, and the fallback.
    local: MemoryStore,
    /// History writes that could not be made, oldest first.
    pending: Mutex<VecDeque<(Conversation, Message)>>,
    /// Presence writes take it shared; a resync takes it exclusively, so the
    /// mirror it copies cannot change under it.
    sync: tokio::sync::RwLock<()>,
    /// Set when a presence write reached only the mirror: Redis needs a resync.
    dirty: AtomicBool,
    /// Turns for commands, [`IN_FLIGHT`] at a time.
    in_flight: tokio::sync::Semaphore,
    /// Spaces the warnings of reads answered locally.
    fallbacks: Throttle,
}

impl RedisStore {
    /// A store over `client`, for instance `instance`, with keys under `prefix`.
    pub fn new(client: Client, prefix: &str, instance: impl Into<String>, history_limit: usize) -> Self {
        Self {
            client,
            scripts: Scripts::new(),
            keys: Keys::new(prefix),
            instance: instance.into(),
            history_limit,
            file_ttl: DEFAULT_FILE_TTL,
            history_ttl: DEFAULT_HISTORY_TTL,
            local: MemoryStore::new(history_limit),
            pending: Mutex::default(),
            sync: tokio::sync::RwLock::new(()),
            dirty: AtomicBool::new(false),
            in_flight: tokio::sync::Semaphore::new(IN_FLIGHT),
            fallbacks: Throttle::new(FALLBACK_REPORT_INTERVAL),
        }
    }

    /// Keeps files for `ttl` (default: a week).
    pub fn with_file_ttl(self, ttl: Duration) -> Self {
        Self { file_ttl: ttl, ..self }
    }

    /// Lets a conversation's history expire `ttl` after its last message
    /// (default: 30 days).
    pub fn with_history_ttl(self, ttl: Duration) -> Self {
        Self { history_ttl: ttl, ..self }
    }

    /// True while the command connection to Redis is up.
    pub fn is_connected(&self) -> bool {
        self.client.is_connected()
    }

    /// This instance's logged-in sockets.
    pub fn local_sockets(&self) -> usize {
        self.local.snapshot().len()
    }

    /// This instance's id in Redis.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// History writes waiting for Redis.
    pub fn pending_writes(&self) -> usize {
        self.pending_lock().len()
    }

    /// Runs one Redis call: refused at once while disconnected, sent once
    /// fewer than [`IN_FLIGHT`] are, bounded by [`TIMEOUT`].
    async fn call<T>(&self, what: &str, call: impl Future<Output = FredResult<T>>) -> Result<T, StoreError> {
        if !self.client.is_connected() {
            return Err(StoreError::Unavailable("Redis is not connected".into()));
        }
        let Ok(Ok(_turn)) = tokio::time::timeout(QUEUE_WAIT, self.in_flight.acquire()).await else {
            crate::metrics::metrics().redis_error();
            return Err(StoreError::Unavailable(format!(
                "{what}: no turn among {IN_FLIGHT} commands within {QUEUE_WAIT:?}"
            )));
        };
        self.call_now(what, call).await
    }

    /// [`Self::call`] without waiting for a turn: for the heartbeat and the
    /// look for dead instances, which must not queue behind a reconnect
    /// storm's logins (a late heartbeat gets a live instance purged).
    async fn call_now<T>(
        &self,
        what: &str,
        call: impl Future<Output = FredResult<T>>,
    ) -> Result<T, StoreError> {
        if !self.client.is_connected() {
            return Err(StoreError::Unavailable("Redis is not connected".into()));
        }
        let result = match tokio::time::timeout(TIMEOUT, call).await {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(err)) => StoreError::Unavailable(format!("{what}: {err}")),
            Err(_) => StoreError::Unavailable(format!("{what}: no answer within {TIMEOUT:?}")),
        };
        crate::metrics::metrics().redis_error();
        Err(result)
    }

    /// Notes that a presence change reached only the mirror.
    fn degraded(&self, what: &str, err: &StoreError) {
        if !self.dirty.swap(true, Ordering::AcqRel) {
            tracing::warn!(operation = what, error = %err, "Redis unreachable: serving this instance's clients from local state until it returns");
        }
    }

    /// A read Redis failed, answered from this instance's own state instead
    /// (partial: other instances' users and rooms are missing). Logged with
    /// the failure, at most once per [`FALLBACK_REPORT_INTERVAL`].
    async fn read_locally<T>(
        &self,
        what: &str,
        err: &StoreError,
        local: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        if let Some(unreported) = self.fallbacks.due(std::time::Instant::now()) {
            tracing::warn!(operation = what, error = %err, unreported, "Redis failed a read; answered from this instance's own state");
        }
        local.await
    }

    /// Applies a change Redis accepted to the mirror too. A refusal means the
    /// mirror and Redis disagree; the next resync repairs Redis.
    fn mirrored<T>(&self, what: &str, result: Result<T, StoreError>) {
        if let Err(err) = result {
            tracing::error!(operation = what, error = %err, "local mirror disagrees with Redis; scheduling a resync");
            self.dirty.store(true, Ordering::Release);
        }
    }

    /// Redis's answer when it gave one; otherwise the mirror's, noting that
    /// Redis missed a change (`Ok(None)`: Redis did not know the socket).
    fn prefer_redis<T>(&self, what: &str, redis: Result<Option<T>, StoreError>, local: T) -> T {
        match redis {
            Ok(Some(answer)) => answer,
            Ok(None) => {
                self.dirty.store(true, Ordering::Release);
                local
            }
            Err(err) => {
                self.degraded(what, &err);
                local
            }
        }
    }

    fn pending_lock(&self) -> std::sync::MutexGuard<'_, VecDeque<(Conversation, Message)>> {
        self.pending.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[async_trait]
impl Store for RedisStore {
    async fn login(
        &self,
        user: &Username,
        proof: &OwnerProof,
        socket: &SocketKey,
    ) -> Result<Login, StoreError> {
        let _shared = self.sync.read().await;
        match self.redis_login(user, proof, socket).await {
            Ok(Ok(login)) => {
                self.mirrored("login", self.local.login(&login.user, proof, socket).await);
                Ok(login)
            }
            Ok(Err(refused)) => Err(refused),
            Err(err) => {
                self.degraded("login", &err);
                self.local.login(user, proof, socket).await
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
        let entries: Result<Vec<String>, _> =
            self.call("roster", self.scripts.roster.evalsha_with_reload(&self.client, keys, args)).await;
        let entries = match entries {
            Ok(entries) => entries,
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
                    let proof = raw.split('\n').nth(1).unwrap_or_default();
                    Ok((user_record_name(&raw)?, OwnerProof(proof.to_owned())))
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
        let reply: Result<Vec<Value>, _> =
            self.call("rooms", self.scripts.rooms.evalsha_with_reload(&self.client, keys, args)).await;
        let reply = match reply {
            Ok(reply) => reply,
            Err(err) => return self.read_locally("rooms", &err, self.local.rooms()).await,
        };
        let mut rooms = Vec::new();
        let mut items = reply.iter();
        while let (Some(room), Some(count)) = (items.next(), items.next()) {
            let mut members =
                (0..int(count)).filter_map(|_| items.next()).map(username).collect::<Result<Vec<_>, _>>()?;
            members.sort_by(Username::display_order);
            rooms.push(RoomInfo { room: room_name(room)?, members });
        }
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
            Ok(record) => {
                Ok(record.and_then(|raw| raw.split('\n').nth(1).map(|proof| OwnerProof(proof.to_owned()))))
            }
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

fn text(value: &Value) -> String {
    value.as_string().unwrap_or_default()
}

fn int(value: &Value) -> i64 {
    value.as_i64().unwrap_or_default()
}

fn username(value: &Value) -> Result<Username, StoreError> {
    Username::parse(&text(value))
        .map_err(|err| StoreError::Unavailable(format!("corrupt user in Redis: {err}")))
}

fn room_name(value: &Value) -> Result<RoomName, StoreError> {
    RoomName::parse(&text(value))
        .map_err(|err| StoreError::Unavailable(format!("corrupt room in Redis: {err}")))
}

/// The display name in a users-hash record ("count\nproof\nname").
fn user_record_name(raw: &str) -> Result<Username, StoreError> {
    let name = raw.split('\n').nth(2).unwrap_or_default();
    Username::parse(name).map_err(|err| StoreError::Unavailable(format!("corrupt user in Redis: {err}")))
}
