//! Accounts, avatars and rate-limit counters, in memory.

use std::collections::hash_map::Entry;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{MemoryStore, lock};
use crate::domain::Username;
use crate::store::{Account, AccountStore, Attempts, Avatar, StoreError};

/// Above this many counters, expired windows are swept on the next count.
const SWEEP_ABOVE: usize = 10_000;

/// One rate-limit counter: attempts since `start`, for `length`.
pub struct Window {
    start: Instant,
    length: Duration,
    count: u64,
}

impl Window {
    fn is_over(&self, now: Instant) -> bool {
        now.duration_since(self.start) >= self.length
    }

    fn resets_in(&self, now: Instant) -> Duration {
        self.length.saturating_sub(now.duration_since(self.start))
    }
}

#[async_trait]
impl AccountStore for MemoryStore {
    async fn create_account(&self, account: &Account) -> Result<(), StoreError> {
        match lock(&self.accounts).entry(account.name.key().to_owned()) {
            Entry::Occupied(existing) => Err(StoreError::AccountExists(existing.get().name.to_string())),
            Entry::Vacant(slot) => {
                slot.insert(account.clone());
                Ok(())
            }
        }
    }

    async fn account(&self, name: &Username) -> Result<Option<Account>, StoreError> {
        Ok(lock(&self.accounts).get(name.key()).cloned())
    }

    async fn set_avatar(&self, name: &Username, avatar: &Avatar) -> Result<(), StoreError> {
        lock(&self.avatars).insert(name.key().to_owned(), avatar.clone());
        Ok(())
    }

    async fn avatar(&self, name: &Username) -> Result<Option<Avatar>, StoreError> {
        Ok(lock(&self.avatars).get(name.key()).cloned())
    }

    async fn count_attempt(&self, key: &str, max: u64, window: Duration) -> Result<Attempts, StoreError> {
        let now = Instant::now();
        // One lock for the read and the write: concurrent callers see
        // distinct counts, as with INCR in Redis.
        let mut attempts = lock(&self.attempts);
        if attempts.len() > SWEEP_ABOVE {
            attempts.retain(|_, counter| !counter.is_over(now));
        }
        let counter =
            attempts.entry(key.to_owned()).or_insert(Window { start: now, length: window, count: 0 });
        if counter.is_over(now) {
            *counter = Window { start: now, length: window, count: 0 };
        }
        let counted = counter.count < max;
        if counted {
            counter.count += 1;
        }
        Ok(Attempts { counted, count: counter.count, resets_in: counter.resets_in(now) })
    }

    async fn uncount_attempt(&self, key: &str) -> Result<(), StoreError> {
        let now = Instant::now();
        if let Some(counter) = lock(&self.attempts).get_mut(key).filter(|counter| !counter.is_over(now)) {
            counter.count = counter.count.saturating_sub(1);
        }
        Ok(())
    }

    async fn clear_attempts(&self, key: &str) -> Result<(), StoreError> {
        lock(&self.attempts).remove(key);
        Ok(())
    }

    async fn attempts(&self, key: &str) -> Result<u64, StoreError> {
        let now = Instant::now();
        Ok(lock(&self.attempts)
            .get(key)
            .filter(|counter| !counter.is_over(now))
            .map_or(0, |counter| counter.count))
    }
}
