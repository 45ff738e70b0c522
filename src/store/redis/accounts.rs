//! Accounts, avatars and rate-limit counters in Redis. Accounts are JSON
//! strings created with `SET NX`, so two instances registering one name at
//! once see exactly one success.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use fred::prelude::{HashesInterface, KeysInterface, Value};
use fred::types::SetOptions;
use serde::{Deserialize, Serialize};

use super::RedisStore;
use crate::domain::Username;
use crate::store::{Account, AccountStore, Avatar, StoreError};

#[derive(Serialize, Deserialize)]
struct AccountRecord {
    name: String,
    password_hash: String,
}

impl RedisStore {
    /// The account record stored at account key `key`.
    async fn account_at(&self, key: &str) -> Result<Option<Account>, StoreError> {
        let json: Option<String> = self.call("account", self.client.get(self.keys.account(key))).await?;
        let Some(json) = json else { return Ok(None) };
        let record: AccountRecord = serde_json::from_str(&json)
            .map_err(|err| StoreError::Unavailable(format!("corrupt account: {err}")))?;
        let name = Username::parse(&record.name)
            .map_err(|err| StoreError::Unavailable(format!("corrupt account: {err}")))?;
        Ok(Some(Account { name, password_hash: record.password_hash }))
    }
}

#[async_trait]
impl AccountStore for RedisStore {
    async fn create_account(&self, account: &Account) -> Result<(), StoreError> {
        let record =
            AccountRecord { name: account.name.to_string(), password_hash: account.password_hash.clone() };
        let json = serde_json::to_string(&record).map_err(|err| StoreError::Unavailable(err.to_string()))?;
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

    async fn count_attempt(&self, key: &str, window: Duration) -> Result<u64, StoreError> {
        let keys = vec![self.keys.attempts(key)];
        let args = vec![window.as_millis().to_string()];
        let counted: Result<i64, _> = self
            .call("count attempt", self.scripts.count.evalsha_with_reload(&self.client, keys, args))
            .await;
        match counted {
            Ok(count) => Ok(count.max(0) as u64),
            // Rate limits keep working through an outage, per instance.
            Err(_) => self.local.count_attempt(key, window).await,
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
}
