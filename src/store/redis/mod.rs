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
//!
//! - [`call`](self::call): how one call is made, and what a failed one falls back to
//! - `store`: the [`Store`] contract over Redis and the mirror
//! - `presence`, `sync`, `history`, `accounts`, `files`, `migrate`: the rest of the state
//! - `scripts`: the Lua scripts and the key layout; `reply`: their replies, read by shape

mod accounts;
mod call;
mod files;
mod history;
mod migrate;
mod presence;
mod reply;
mod scripts;
mod store;
mod sync;

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use fred::prelude::{Client, ClientLike};

pub use migrate::Migration;
pub use sync::{Heartbeat, Purge, Resync};

use self::scripts::{Keys, Scripts};
use super::MemoryStore;
#[cfg(doc)]
use super::Store;
use crate::domain::{Conversation, Message};
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
/// An instance silent for this long is not live, by default (`INSTANCE_TTL_MS`'s default).
const DEFAULT_INSTANCE_TTL: Duration = Duration::from_secs(15);

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
    /// Whether this instance's heartbeat says it routes room broadcasts.
    routes_rooms: bool,
    /// A peer whose last heartbeat is older than this is not live.
    instance_ttl: Duration,
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
            routes_rooms: false,
            instance_ttl: DEFAULT_INSTANCE_TTL,
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

    /// Heartbeats that say whether this instance routes room broadcasts
    /// (`ROUTED_ROOMS`), and count a peer as live while its last heartbeat
    /// is younger than `instance_ttl` (default: off, 15 s).
    pub fn with_heartbeat(self, routes_rooms: bool, instance_ttl: Duration) -> Self {
        Self { routes_rooms, instance_ttl, ..self }
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

    fn pending_lock(&self) -> std::sync::MutexGuard<'_, VecDeque<(Conversation, Message)>> {
        self.pending.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
