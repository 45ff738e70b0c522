//! Accounts, avatars and rate-limit counters, in memory.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{MemoryStore, lock};
use crate::domain::Username;
use crate::store::{Account, AccountStore, Attempts, Avatar, Charge, StoreError};

/// Expiring entries are first swept when a map reaches this many.
const SWEEP_ABOVE: usize = 10_000;

/// A map of expiring entries (rate-limit windows, revoked tokens), swept of
/// expired ones when it has doubled since the last sweep: a sweep costs one
/// pass, paid for by as many inserts, however many entries stay alive (a
/// sweep on every insert above a fixed size made each one O(n) under the
/// store's lock once many were alive).
pub struct Expiring<V> {
    map: HashMap<String, V>,
    sweep_at: usize,
}

impl<V> Default for Expiring<V> {
    fn default() -> Self {
        Self { map: HashMap::new(), sweep_at: SWEEP_ABOVE }
    }
}

impl<V> Expiring<V> {
    /// Drops the expired entries if the map has grown enough since the last sweep.
    fn sweep(&mut self, expired: impl Fn(&V) -> bool) {
        if self.map.len() >= self.sweep_at {
            self.map.retain(|_, value| !expired(value));
            self.sweep_at = (self.map.len() * 2).max(SWEEP_ABOVE);
        }
    }
}

impl<V> std::ops::Deref for Expiring<V> {
    type Target = HashMap<String, V>;
    fn deref(&self) -> &Self::Target {
        &self.map
    }
}

impl<V> std::ops::DerefMut for Expiring<V> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.map
    }
}

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
        revoked.sweep(|until| *until <= now);
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
    counters: &'a mut Expiring<Window>,
    key: &str,
    length: Duration,
    now: Instant,
) -> &'a mut Window {
    counters.sweep(|counter| counter.is_over(now));
    let counter = counters.entry(key.to_owned()).or_insert(Window { start: now, length, count: 0 });
    if counter.is_over(now) {
        *counter = Window { start: now, length, count: 0 };
    }
    counter
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiring_maps_sweep_once_they_double_not_on_every_insert() {
        let mut map: Expiring<bool> = Expiring::default();
        for i in 0..SWEEP_ABOVE {
            map.insert(format!("live{i}"), false);
        }
        map.sweep(|expired| *expired);
        assert_eq!(map.len(), SWEEP_ABOVE, "live entries stay");
        assert_eq!(map.sweep_at, 2 * SWEEP_ABOVE, "the next sweep waits for the map to double");
        for i in 0..SWEEP_ABOVE {
            map.insert(format!("dead{i}"), true);
        }
        map.sweep(|expired| *expired);
        assert_eq!(map.len(), SWEEP_ABOVE, "expired entries are gone");
    }
}
