//! Files sent in messages, kept for a while so history can link to them.

use async_trait::async_trait;
use bytes::Bytes;

use super::StoreError;
use crate::domain::{Conversation, MessageId};

/// A stored file and who may read it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredFile {
    /// The id of the message that carried it (also the file's id).
    pub id: MessageId,
    /// Its name.
    pub name: String,
    /// Its type, detected from the bytes.
    pub mime: String,
    /// The conversation it was sent to: its members may fetch it.
    pub conversation: Conversation,
    /// The bytes.
    pub bytes: Bytes,
}

/// Where files live: in memory (bounded), or in Redis with a time-to-live.
#[async_trait]
pub trait FileStore: Send + Sync + 'static {
    /// Keeps a file for the configured time.
    async fn put_file(&self, file: &StoredFile) -> Result<(), StoreError>;

    /// A file by id, if it is still kept.
    async fn file(&self, id: &MessageId) -> Result<Option<StoredFile>, StoreError>;
}
