//! Accounts, avatars, revoked tokens and rate-limit counters in Redis.
//! Accounts are JSON strings created with `SET NX`, so two instances
//! registering one name at once see exactly one success, and changed or
//! deleted by a compare-and-set script on (id, generation).

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use fred::prelude::{HashesInterface, KeysInterface, Value};
use fred::types::SetOptions;
use serde::{Deserialize, Serialize};

use super::{RedisStore, reply};
use crate::domain::Username;
use crate::store::{Account, AccountStore, Attempts, Avatar, Charge, StoreError};

#[derive(Serialize, Deserialize)]
struct AccountRecord {
    /// Absent in records written before accounts had ids; such a record
    /// gets one the first time it is read.
    #[serde(default)]
    id: Option<String>,
    name: String,
    password_hash: String,
    #[serde(default)]
    generation: u64,
}

impl AccountRecord {
    fn of(account: &Account) -> Self {
        Self {
            id: Some(account.id.clone()),
            name: account.name.to_string(),
            password_hash: account.password_hash.clone(),
            generation: account.generation,
        }
    }

    fn json(&self) -> Result<String, StoreError> {
        serde_json::to_string(self).map_err(|err| StoreError::Unavailable(err.to_string()))
    }
}

impl RedisStore {
    /// Runs the compare-and-set script on the record at account key `key`:
    /// replaces the account read as (`id`, `generation`) with `new`, or
    /// deletes it when `new` is `None`. False if it is not that account.
    async fn replace_record(
        &self,
        key: &str,
        id: &str,
        generation: u64,
        new: Option<&AccountRecord>,
    ) -> Result<bool, StoreError> {
        let keys = vec![self.keys.account(key)];
        let args = vec![
            id.to_owned(),
            generation.to_string(),
            new.map(AccountRecord::json).transpose()?.unwrap_or_default(),
        ];
        let replaced: Value = self
            .call(
                "replace account",
                self.scripts.replace_account.evalsha_with_reload(&self.client, keys, args),
            )
            .await?;
        reply::yes_or_no("replace_account", replaced)
    }

    /// The account record stored at account key `key`. A record written
    /// before accounts had ids gets one there, once (the compare-and-set
    /// acts on that key only, so it can never touch another account); a
    /// lost race reads the winner's.
    async fn account_at(&self, key: &str) -> Result<Option<Account>, StoreError> {
        for _ in 0..3 {
            let json: Option<String> = self.call("account", self.client.get(self.keys.account(key))).await?;
            let Some(json) = json else { return Ok(None) };
            let mut record: AccountRecord = serde_json::from_str(&json)
                .map_err(|err| StoreError::Unavailable(format!("corrupt account: {err}")))?;
            let name = Username::parse(&record.name)
                .map_err(|err| StoreError::Unavailable(format!("corrupt account: {err}")))?;
            if let Some(id) = record.id {
                let (password_hash, generation) = (record.password_hash, record.generation);
                return Ok(Some(Account { id, name, password_hash, generation }));
            }
            record.id = Some(ulid::Ulid::new().to_string());
            self.replace_record(key, "", record.generation, Some(&record)).await?;
        }
        Err(StoreError::Unavailable("account changed during the read; try again".into()))
    }
}

/// The keys an account may sit at: its name's key, then (not yet moved, or
/// left behind by a look-alike, see migrate.rs) its legacy key.
fn storage_keys(name: &Username) -> Vec<String> {
    let mut keys = vec![name.key().to_owned()];
    if name.legacy_key() != name.key() {
        keys.push(name.legacy_key());
    }
    keys
}

/// Milliseconds since the Unix epoch, by this instance's clock (revocations
/// are compared with the token expiries this clock wrote).
fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

#[async_trait]
impl AccountStore for RedisStore {
    async fn create_account(&self, account: &Account) -> Result<(), StoreError> {
        let json = AccountRecord::of(account).json()?;
        let key = self.keys.account(account.name.key());
        let created: Option<String> = self
            .call("create account", self.client.set(key, json, None, Some(SetOptions::NX), false))
            .await?;
        match created {
            Some(_) => Ok(()),
            None => Err(StoreError::AccountExists(account.name.to_string())),
        }
    }

    async fn account(&self, name: &Username) -> Result<Option<Account>, StoreError> {
        let found = self.account_at(name.key()).await?;
        // An account not (yet) moved to its new key, or left at its legacy key
        // because a look-alike holds the new one (see migrate.rs).
        let legacy = name.legacy_key();
        if legacy != name.key() && found.as_ref().is_none_or(|account| account.name.legacy_key() != legacy) {
            let at_legacy = self.account_at(&legacy).await?;
            if let Some(account) = at_legacy.filter(|account| account.name == *name) {
                return Ok(Some(account));
            }
        }
        Ok(found)
    }

    async fn replace_account(&self, current: &Account, new: &Account) -> Result<bool, StoreError> {
        let record = AccountRecord::of(new);
        for key in storage_keys(&current.name) {
            if self.replace_record(&key, &current.id, current.generation, Some(&record)).await? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    async fn delete_account(&self, current: &Account) -> Result<bool, StoreError> {
        for key in storage_keys(&current.name) {
            if self.replace_record(&key, &current.id, current.generation, None).await? {
                let _: i64 = self.call("delete avatar", self.client.del(self.keys.avatar(&key))).await?;
                return Ok(true);
            }
        }
        Ok(false)
    }

    async fn revoke_token(&self, jti: &str, ttl: Duration) -> Result<(), StoreError> {
        let now = now_ms();
        let args =
            vec![jti.to_owned(), now.saturating_add(ttl.as_millis() as u64).to_string(), now.to_string()];
        let revoked: Value = self
            .call(
                "revoke token",
                self.scripts.revoke.evalsha_with_reload(&self.client, vec![self.keys.revoked()], args),
            )
            .await?;
        reply::done("revoke", revoked)
    }

    async fn revoked_tokens(&self, jtis: &[&str]) -> Result<Vec<bool>, StoreError> {
        if jtis.is_empty() {
            return Ok(Vec::new());
        }
        let mut args = Vec::with_capacity(jtis.len() + 1);
        args.push(now_ms().to_string());
        args.extend(jtis.iter().map(|jti| (*jti).to_owned()));
        let found: Value = self
            .call(
                "revoked tokens",
                self.scripts.revoked.evalsha_with_reload(&self.client, vec![self.keys.revoked()], args),
            )
            .await?;
        reply::revoked(found, jtis.len())
    }

    async fn set_avatar(&self, name: &Username, avatar: &Avatar) -> Result<(), StoreError> {
        let fields: Vec<(&str, Value)> = vec![
            ("mime", avatar.mime.clone().into()),
            ("etag", avatar.etag.clone().into()),
            ("data", Value::Bytes(avatar.bytes.clone())),
        ];
        let _: i64 = self.call("set avatar", self.client.hset(self.keys.avatar(name.key()), fields)).await?;
        Ok(())
    }

    async fn avatar(&self, name: &Username) -> Result<Option<Avatar>, StoreError> {
        let mut fields: HashMap<String, Value> =
            self.call("avatar", self.client.hgetall(self.keys.avatar(name.key()))).await?;
        let (Some(mime), Some(etag), Some(data)) =
            (fields.remove("mime"), fields.remove("etag"), fields.remove("data"))
        else {
            return Ok(None);
        };
        Ok(Some(Avatar {
            mime: mime.as_string().unwrap_or_default(),
            etag: etag.as_string().unwrap_or_default(),
            bytes: data.into_bytes().unwrap_or_else(Bytes::new),
        }))
    }

    async fn count_attempt(&self, key: &str, max: u64, window: Duration) -> Result<Attempts, StoreError> {
        let keys = vec![self.keys.attempts(key)];
        let args = vec![window.as_millis().to_string(), max.to_string()];
        let counted: Result<Value, _> = self
            .call("count attempt", self.scripts.count.evalsha_with_reload(&self.client, keys, args))
            .await;
        match counted {
            Ok(reply) => reply::attempts(reply),
            // Rate limits keep working through an outage, per instance.
            Err(_) => self.local.count_attempt(key, max, window).await,
        }
    }

    async fn uncount_attempt(&self, key: &str) -> Result<(), StoreError> {
        let keys = vec![self.keys.attempts(key)];
        let uncounted: Result<Value, _> = self
            .call(
                "uncount attempt",
                self.scripts.uncount.evalsha_with_reload(&self.client, keys, Vec::<String>::new()),
            )
            .await;
        match uncounted {
            Ok(left) => reply::count("uncount", &left).map(drop),
            Err(_) => self.local.uncount_attempt(key).await,
        }
    }

    async fn clear_attempts(&self, key: &str) -> Result<(), StoreError> {
        let cleared: Result<i64, _> =
            self.call("clear attempts", self.client.del(self.keys.attempts(key))).await;
        match cleared {
            Ok(_) => Ok(()),
            Err(_) => self.local.clear_attempts(key).await,
        }
    }

    async fn attempts(&self, key: &str) -> Result<u64, StoreError> {
        let count: Result<Option<u64>, _> =
            self.call("attempts", self.client.get(self.keys.attempts(key))).await;
        match count {
            Ok(count) => Ok(count.unwrap_or(0)),
            Err(_) => self.local.attempts(key).await,
        }
    }

    async fn charge(
        &self,
        key: &str,
        amount: u64,
        limit: u64,
        window: Duration,
    ) -> Result<Charge, StoreError> {
        let keys = vec![self.keys.quota(key)];
        let args = vec![amount.to_string(), limit.to_string(), window.as_millis().max(1).to_string()];
        let charged: Result<Value, _> =
            self.call("charge", self.scripts.charge.evalsha_with_reload(&self.client, keys, args)).await;
        match charged {
            Ok(reply) => reply::charge(reply),
            // Quotas keep working through an outage, per instance.
            Err(_) => self.local.charge(key, amount, limit, window).await,
        }
    }
}
