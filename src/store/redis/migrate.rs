//! Moving accounts to the key their name has now.
//!
//! Account records live at `{prefix}:account:{Username::key}` and avatars at
//! `{prefix}:avatar:{key}`. Versions before the skeleton key used the
//! lowercased name; now `bob1` belongs at `…:bobl`. Once Redis answers, each
//! instance makes one pass at startup: it SCANs the account keys in batches
//! (on every primary of a Redis Cluster), reads each batch in one pipeline,
//! and moves every record whose name's key is not the key it sits at, avatar
//! included. The pass runs at every start, not once per deployment: records
//! written meanwhile by instances of the old version (a rolling upgrade), or
//! keys changed by a new version of the pinned Unicode crates, are moved by
//! the next start.
//!
//! Moving is `SET NX` of the record at the new key, then `DEL` of the old
//! one (and `DUMP`/`RESTORE` for the avatar): unlike `RENAMENX` it works when
//! the two keys hash to different slots of a Redis Cluster. If the new key
//! is taken by another account (two legacy names that are now look-alikes),
//! the one already there keeps it and the other stays at its legacy key,
//! where [`AccountStore::account`](crate::store::AccountStore::account)
//! still finds it by its own name. Two instances migrating at once move each
//! record once: the second finds its record already at the new key. Until the
//! pass reaches an account, the same fallback finds it (a look-alike of it is
//! not refused until then).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use fred::prelude::{ClientLike, ClusterInterface, KeysInterface, Value};
use fred::types::SetOptions;
use fred::types::config::{Options, Server};
use serde::Deserialize;
use tokio::task::JoinHandle;

use super::{RedisStore, reply};
use crate::domain::Username;
use crate::store::StoreError;

/// Keys asked of SCAN per call (a hint to Redis, which bounds each call's work).
const BATCH: u32 = 500;
/// How long to wait before trying a failed pass again.
const RETRY: Duration = Duration::from_secs(1);
/// How long after a completed pass the next one runs.
const REPASS: Duration = Duration::from_secs(3600);

/// What a pass did, for the log.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Migration {
    /// Account records looked at.
    pub scanned: usize,
    /// Records moved to their new key.
    pub moved: usize,
    /// Records left at their legacy key because another account has the new one.
    pub conflicts: usize,
    /// Records whose name the rules now refuse: left alone, and they cannot log in.
    pub refused: usize,
}

/// The part of an account record the migration reads.
#[derive(Deserialize)]
struct Named {
    name: String,
}

impl RedisStore {
    /// Runs [`RedisStore::migrate_account_keys`] in the background once Redis is
    /// connected, trying again every second until a pass completes, then
    /// again every [`REPASS`]: instances of an older version may still write
    /// accounts under legacy keys during a rolling upgrade.
    pub fn spawn_key_migration(self: Arc<Self>) -> JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                if self.is_connected() {
                    match self.migrate_account_keys().await {
                        Ok(done) => {
                            tracing::info!(
                                scanned = done.scanned,
                                moved = done.moved,
                                conflicts = done.conflicts,
                                refused = done.refused,
                                "account keys checked"
                            );
                            tokio::time::sleep(REPASS).await;
                            continue;
                        }
                        Err(err) => tracing::warn!(error = %err, "account key migration failed; retrying"),
                    }
                }
                tokio::time::sleep(RETRY).await;
            }
        })
    }

    /// One pass of the migration (see the module docs). Fails on the first
    /// Redis error; the pass can simply be run again.
    pub async fn migrate_account_keys(&self) -> Result<Migration, StoreError> {
        let mut report = Migration::default();
        let prefix = self.keys.account("");
        let mut scan = Scan::new(self, &prefix)?;
        while let Some(keys) = scan.next(self).await? {
            let reads = self.client.pipeline();
            for key in &keys {
                let _: () = self.call("read accounts", reads.get(key)).await?;
            }
            let records =
                self.call("read accounts", async { Ok(reads.try_all::<Option<String>>().await) }).await?;
            for (key, record) in keys.iter().zip(records) {
                let record = record.map_err(|err| StoreError::Unavailable(format!("read account: {err}")))?;
                let (Some(sits_at), Some(json)) = (key.strip_prefix(&prefix), record) else { continue };
                report.scanned += 1;
                self.migrate_account(sits_at, &json, &mut report).await?;
            }
        }
        Ok(report)
    }

    /// Moves `json`, the record at account key `sits_at`, to its name's key
    /// if that differs.
    async fn migrate_account(
        &self,
        sits_at: &str,
        json: &str,
        report: &mut Migration,
    ) -> Result<(), StoreError> {
        let old = self.keys.account(sits_at);
        let name = match serde_json::from_str::<Named>(json) {
            Ok(record) => Username::parse(&record.name).map_err(|err| (record.name, err.to_string())),
            Err(err) => Err((String::new(), err.to_string())),
        };
        let name = match name {
            Ok(name) => name,
            Err((name, why)) => {
                report.refused += 1;
                tracing::warn!(key = %old, name, why, "account name no longer valid: left as is, it cannot log in");
                return Ok(());
            }
        };
        if name.key() == sits_at {
            return Ok(());
        }
        let new = self.keys.account(name.key());
        let set: Option<String> =
            self.call("move account", self.client.set(&new, json, None, Some(SetOptions::NX), false)).await?;
        if set.is_none() {
            let there: Option<String> = self.call("read account", self.client.get(&new)).await?;
            if there.as_deref() != Some(json) {
                report.conflicts += 1;
                tracing::warn!(
                    user = %name, legacy = %old, taken = %new,
                    "account's new key is another account's (look-alike names): it stays at its legacy key; both share one identity"
                );
                return Ok(());
            }
            // Another instance moved this very record meanwhile.
        }
        // The avatar first: the account leaves its old key last, once all is
        // moved. (Avatars are looked up by the name's new key already.)
        self.move_avatar(sits_at, name.key()).await?;
        // The record may have changed at its legacy key since it was read (a
        // password change, a deletion, its first id): then the copy is
        // undone, and the next pass moves what is there by then.
        if !self.delete_if(&old, json).await? {
            self.delete_if(&new, json).await?;
            tracing::info!(user = %name, legacy = %old, "account changed while being moved; left for the next pass");
            return Ok(());
        }
        report.moved += 1;
        tracing::info!(user = %name, from = %old, to = %new, "account moved to its new key");
        Ok(())
    }

    /// Deletes `key` only if it still holds `value`; false if it changed.
    async fn delete_if(&self, key: &str, value: &str) -> Result<bool, StoreError> {
        let (keys, args) = (vec![key.to_owned()], vec![value.to_owned()]);
        let deleted: Value = self
            .call("delete if unchanged", self.scripts.delete_if.evalsha_with_reload(&self.client, keys, args))
            .await?;
        reply::yes_or_no("delete_if", deleted)
    }

    /// Moves an avatar. One already at the new key is newer (uploaded since
    /// the upgrade, through the fallback lookup) and is kept.
    async fn move_avatar(&self, from: &str, to: &str) -> Result<(), StoreError> {
        let old = self.keys.avatar(from);
        let dump: Option<Bytes> = self.call("dump avatar", self.client.dump(&old)).await?;
        let Some(dump) = dump else { return Ok(()) };
        let restore = async {
            match self
                .client
                .restore::<(), _>(self.keys.avatar(to), 0, Value::Bytes(dump), false, false, None, None)
                .await
            {
                Err(err) if err.to_string().contains("BUSYKEY") => Ok(()),
                other => other,
            }
        };
        self.call("move avatar", restore).await?;
        let _: i64 = self.call("remove legacy avatar", self.client.del(&old)).await?;
        Ok(())
    }
}

/// SCAN for the keys under a prefix, one bounded batch per call, on every
/// primary of a Redis Cluster (SCAN sees one node's keys).
struct Scan {
    pattern: String,
    /// Nodes still to scan (`None`: the one server), the current one last.
    nodes: Vec<Option<Server>>,
    /// Where the current node's scan stands; `None` before it starts.
    cursor: Option<String>,
}

impl Scan {
    fn new(store: &RedisStore, prefix: &str) -> Result<Self, StoreError> {
        let nodes = if store.client.is_clustered() {
            let state = store.client.cached_cluster_state();
            let nodes = state.map(|state| state.unique_primary_nodes()).unwrap_or_default();
            if nodes.is_empty() {
                return Err(StoreError::Unavailable("migration: cluster layout not known yet".into()));
            }
            nodes.into_iter().map(Some).collect()
        } else {
            vec![None]
        };
        Ok(Self { pattern: format!("{}*", escape_glob(prefix)), nodes, cursor: None })
    }

    /// The next non-empty batch of keys, or `None` when every node is done.
    async fn next(&mut self, store: &RedisStore) -> Result<Option<Vec<String>>, StoreError> {
        while let Some(node) = self.nodes.last() {
            let on = store.client.with_options(&Options { cluster_node: node.clone(), ..Options::default() });
            let cursor = self.cursor.take().unwrap_or_else(|| "0".to_owned());
            let page = on.scan_page(cursor, &*self.pattern, Some(BATCH), None);
            let (next, keys): (String, Vec<String>) = store.call("scan keys", page).await?;
            if next == "0" {
                self.nodes.pop();
            } else {
                self.cursor = Some(next);
            }
            if !keys.is_empty() {
                return Ok(Some(keys));
            }
        }
        Ok(None)
    }
}

/// `text` with Redis glob characters escaped, so a prefix matches only itself.
fn escape_glob(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_characters_in_the_prefix_are_escaped() {
        assert_eq!(escape_glob("chat*[1]?:account:"), "chat\\*\\[1\\]\\?:account:");
        assert_eq!(escape_glob("chatwire:account:"), "chatwire:account:");
    }
}
