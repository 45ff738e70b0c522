//! Registered accounts, their avatars, and counters for rate limits.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use super::StoreError;
use crate::domain::Username;

/// A registered account. Only a password *hash* is ever stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Account {
    /// Fixed at registration and never reused: what the account's private
    /// conversations, files and tokens belong to. The same name registered
    /// again later is another account with another id.
    pub id: String,
    /// The name, as registered.
    pub name: Username,
    /// The argon2id hash of the password (PHC string format).
    pub password_hash: String,
    /// Tokens carry the generation they were issued under; raising it (a
    /// password change) revokes every token issued before.
    pub generation: u64,
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

/// The outcome of [`AccountStore::charge`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Charge {
    /// True if the amount fitted under the limit and was counted; a refused
    /// amount is not counted.
    pub accepted: bool,
    /// The count in the current window, after this charge.
    pub used: u64,
    /// When the current window ends and the count starts again from zero.
    pub resets_in: Duration,
}

/// Where accounts live: in memory, or in Redis for a cluster.
#[async_trait]
pub trait AccountStore: Send + Sync + 'static {
    /// Registers an account; [`StoreError::AccountExists`] if the name (in
    /// any case) is registered already.
    async fn create_account(&self, account: &Account) -> Result<(), StoreError>;

    /// The account registered under this name (any case).
    async fn account(&self, name: &Username) -> Result<Option<Account>, StoreError>;

    /// Replaces `current` with `new` (same name), only if the stored account
    /// is still `current` (same id and generation): two password changes
    /// racing cannot both win. False if it changed or is gone.
    async fn replace_account(&self, current: &Account, new: &Account) -> Result<bool, StoreError>;

    /// Deletes the account and its avatar, only if the stored account is
    /// still `current`. False if it changed or is gone.
    async fn delete_account(&self, current: &Account) -> Result<bool, StoreError>;

    /// Revokes one token (by its `jti`) until `ttl` from now, when it would
    /// have expired anyway.
    async fn revoke_token(&self, jti: &str, ttl: Duration) -> Result<(), StoreError>;

    /// For each token id, in order, whether it was revoked.
    async fn revoked_tokens(&self, jtis: &[&str]) -> Result<Vec<bool>, StoreError>;

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

    /// Adds `amount` to the counter under `key`, unless that would take it
    /// past `limit` within the current fixed window of `window` (a window
    /// starts at the first charge). Atomic across instances: two charges
    /// racing for the last of a quota see one of them refused.
    async fn charge(
        &self,
        key: &str,
        amount: u64,
        limit: u64,
        window: Duration,
    ) -> Result<Charge, StoreError>;
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
