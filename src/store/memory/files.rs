//! Files in memory: kept for a time-to-live, and within a byte budget
//! (the oldest go first), so a busy single instance cannot run out of memory.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{MemoryStore, lock};
use crate::domain::MessageId;
use crate::store::{FileStore, StoreError, StoredFile};

/// Files are kept a week by default.
pub const DEFAULT_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// At most 256 MiB of files are kept in memory by default.
pub const DEFAULT_MAX_BYTES: usize = 256 * 1024 * 1024;

/// The files, oldest first.
pub struct FileCache {
    files: HashMap<MessageId, (StoredFile, Instant)>,
    order: VecDeque<MessageId>,
    bytes: usize,
    ttl: Duration,
    max_bytes: usize,
}

impl FileCache {
    pub fn new(ttl: Duration, max_bytes: usize) -> Self {
        Self { files: HashMap::new(), order: VecDeque::new(), bytes: 0, ttl, max_bytes }
    }

    fn evict_oldest(&mut self) -> bool {
        let Some(id) = self.order.pop_front() else { return false };
        if let Some((file, _)) = self.files.remove(&id) {
            self.bytes -= file.bytes.len();
        }
        true
    }

    fn insert(&mut self, file: StoredFile) {
        let now = Instant::now();
        while self
            .order
            .front()
            .and_then(|id| self.files.get(id))
            .is_some_and(|(_, at)| now.duration_since(*at) > self.ttl)
        {
            self.evict_oldest();
        }
        while self.bytes + file.bytes.len() > self.max_bytes && self.evict_oldest() {}
        if file.bytes.len() > self.max_bytes {
            return;
        }
        self.bytes += file.bytes.len();
        self.order.push_back(file.id);
        self.files.insert(file.id, (file, now));
    }

    fn get(&self, id: &MessageId) -> Option<StoredFile> {
        let (file, at) = self.files.get(id)?;
        (at.elapsed() <= self.ttl).then(|| file.clone())
    }
}

#[async_trait]
impl FileStore for MemoryStore {
    async fn put_file(&self, file: &StoredFile) -> Result<(), StoreError> {
        lock(&self.files).insert(file.clone());
        Ok(())
    }

    async fn file(&self, id: &MessageId) -> Result<Option<StoredFile>, StoreError> {
        Ok(lock(&self.files).get(id))
    }
}
