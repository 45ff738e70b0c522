//! Accounts, avatars and rate-limit counters, in memory.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{MemoryStore, lock};
use crate::domain::Username;
use crate::store::{Account, AccountStore, Attempts, Avatar, Charge, StoreError};

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

/// True if `stored` is the version of the account `expected` was read as.
fn same_version(stored: &Account, expected: &Account) -> bool {
    stored.id == expected.id && stored.generation == expected.generation
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

    async fn replace_account(&self, current: &Account, new: &Account) -> Result<bool, StoreError> {
        let mut accounts = lock(&self.accounts);
        match accounts.get_mut(current.name.key()) {
            Some(stored) if same_version(stored, current) => {
                *stored = new.clone();
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn delete_account(&self, current: &Account) -> Result<bool, StoreError> {
        let key = current.name.key();
        let mut accounts = lock(&self.accounts);
        if !accounts.get(key).is_some_and(|stored| same_version(stored, current)) {
            return Ok(false);
        }
        accounts.remove(key);
        lock(&self.avatars).remove(key);
        Ok(true)
    }

    async fn revoke_token(&self, jti: &str, ttl: Duration) -> Result<(), StoreError> {
        let now = Instant::now();
        let mut revoked = lock(&self.revoked);
        if revoked.len() > SWEEP_ABOVE {
            revoked.retain(|_, until| *until > now);
        }
        revoked.insert(jti.to_owned(), now + ttl);
        Ok(())
    }

    async fn revoked_tokens(&self, jtis: &[&str]) -> Result<Vec<bool>, StoreError> {
        let now = Instant::now();
        let revoked = lock(&self.revoked);
        Ok(jtis.iter().map(|jti| revoked.get(*jti).is_some_and(|until| *until > now)).collect())
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
        let counter = current_window(&mut attempts, key, window, now);
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

    async fn charge(
        &self,
        key: &str,
        amount: u64,
        limit: u64,
        window: Duration,
    ) -> Result<Charge, StoreError> {
        let now = Instant::now();
        let mut counters = lock(&self.attempts);
        let counter = current_window(&mut counters, key, window, now);
        let after = counter.count.saturating_add(amount);
        let accepted = after <= limit;
        if accepted {
            counter.count = after;
        }
        Ok(Charge { accepted, used: counter.count, resets_in: counter.resets_in(now) })
    }
}

/// The counter under `key`, started afresh if its window is over (or it
/// had none). Sweeps expired windows once there are many.
fn current_window<'a>(
    counters: &'a mut HashMap<String, Window>,
    key: &str,
    length: Duration,
    now: Instant,
) -> &'a mut Window {
    if counters.len() > SWEEP_ABOVE {
        counters.retain(|_, counter| !counter.is_over(now));
    }
    let counter = counters.entry(key.to_owned()).or_insert(Window { start: now, length, count: 0 });
    if counter.is_over(now) {
        *counter = Window { start: now, length, count: 0 };
    }
    counter
}
