//! Registered accounts, their avatars, and counters for rate limits.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use super::StoreError;
use crate::domain::Username;

/// A registered account. Only a password *hash* is ever stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Account {
    /// The name, as registered.
    pub name: Username,
    /// The argon2id hash of the password (PHC string format).
    pub password_hash: String,
}

/// A profile picture.
#[derive(Debug, Clone, PartialEq)]
pub struct Avatar {
    /// Its type, detected from the bytes.
    pub mime: String,
    /// A tag that changes when the picture does (for HTTP caching).
    pub etag: String,
    /// The image.
    pub bytes: Bytes,
}

/// Where accounts live: in memory, or in Redis for a cluster.
#[async_trait]
pub trait AccountStore: Send + Sync + 'static {
    /// Registers an account; [`StoreError::AccountExists`] if the name (in
    /// any case) is registered already.
    async fn create_account(&self, account: &Account) -> Result<(), StoreError>;

    /// The account registered under this name (any case).
    async fn account(&self, name: &Username) -> Result<Option<Account>, StoreError>;

    /// Sets (replaces) an account's avatar.
    async fn set_avatar(&self, name: &Username, avatar: &Avatar) -> Result<(), StoreError>;

    /// An account's avatar.
    async fn avatar(&self, name: &Username) -> Result<Option<Avatar>, StoreError>;

    /// Counts one attempt under `key` in a fixed window of `window` (it
    /// starts at the first attempt), unless `max` are counted in the window
    /// already. Atomic, even across instances: of any number of concurrent
    /// callers, exactly one sees each count, and at most `max` are counted.
    async fn count_attempt(&self, key: &str, max: u64, window: Duration) -> Result<Attempts, StoreError>;

    /// Takes back one attempt counted under `key` that turned out not to be
    /// used (the request was refused before the password was checked), if
    /// its window is still open. Never goes below zero.
    async fn uncount_attempt(&self, key: &str) -> Result<(), StoreError>;

    /// Forgets the attempts under `key`: its window closes now.
    async fn clear_attempts(&self, key: &str) -> Result<(), StoreError>;

    /// The count under `key` in its current window, without counting.
    async fn attempts(&self, key: &str) -> Result<u64, StoreError>;
}

/// A rate-limit counter right after counting an attempt, or refusing to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempts {
    /// False if the window was full: the attempt was not counted.
    pub counted: bool,
    /// Attempts in the window so far (this one included if counted).
    pub count: u64,
    /// How long until the window closes and the count starts again from zero.
    pub resets_in: Duration,
}
