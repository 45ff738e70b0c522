//! Files in Redis: one hash per file (metadata and bytes), with a
//! time-to-live set in the same script, so no file is ever kept forever.

use std::collections::HashMap;

use async_trait::async_trait;
use bytes::Bytes;
use fred::prelude::{HashesInterface, Value};
use serde::{Deserialize, Serialize};

use super::{RedisStore, reply};
use crate::domain::{Conversation, MessageId};
use crate::store::{FileStore, StoreError, StoredFile};

#[derive(Serialize, Deserialize)]
struct FileMeta {
    name: String,
    mime: String,
    conversation: Conversation,
}

#[async_trait]
impl FileStore for RedisStore {
    async fn put_file(&self, file: &StoredFile) -> Result<(), StoreError> {
        let meta = FileMeta {
            name: file.name.clone(),
            mime: file.mime.clone(),
            conversation: file.conversation.clone(),
        };
        let meta = serde_json::to_string(&meta).map_err(|err| StoreError::Unavailable(err.to_string()))?;
        let keys = vec![self.keys.file(&file.id.to_string())];
        let args: Vec<Value> = vec![
            meta.into(),
            Value::Bytes(file.bytes.clone()),
            (self.file_ttl.as_secs().max(1) as i64).into(),
        ];
        let stored: Value = self
            .call("store file", self.scripts.put_file.evalsha_with_reload(&self.client, keys, args))
            .await?;
        reply::done("put_file", stored)
    }

    async fn file(&self, id: &MessageId) -> Result<Option<StoredFile>, StoreError> {
        let mut fields: HashMap<String, Value> =
            self.call("file", self.client.hgetall(self.keys.file(&id.to_string()))).await?;
        let (Some(meta), Some(data)) = (fields.remove("meta"), fields.remove("data")) else {
            return Ok(None);
        };
        // A record from before private conversations belonged to identities
        // (`Direct`, by names) belongs to nobody now: not found, like an expired one.
        let Ok(meta) = serde_json::from_str::<FileMeta>(&meta.as_string().unwrap_or_default()) else {
            tracing::debug!(%id, "file record of an older format: treated as gone");
            return Ok(None);
        };
        Ok(Some(StoredFile {
            id: *id,
            name: meta.name,
            mime: meta.mime,
            conversation: meta.conversation,
            bytes: data.into_bytes().unwrap_or_else(Bytes::new),
        }))
    }
}
