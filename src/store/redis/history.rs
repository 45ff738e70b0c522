//! History in Redis: one sorted set per conversation whose members are
//! `"<id> <json>"` with equal scores, so lexical order is id order and
//! `ZRANGE … BYLEX` pages by id. Writes that fail are buffered and flushed
//! when Redis returns.

use fred::prelude::{SortedSetsInterface, Value};
use fred::types::sorted_sets::{ZRange, ZRangeBound, ZRangeKind, ZSort};

use super::{RedisStore, reply};
use crate::domain::{Conversation, Message};
use crate::store::{HistoryPage, StoreError};

impl RedisStore {
    pub(super) async fn redis_append(
        &self,
        conversation: &Conversation,
        message: &Message,
    ) -> Result<(), StoreError> {
        let json = serde_json::to_string(message).map_err(|err| StoreError::Unavailable(err.to_string()))?;
        let keys = vec![self.keys.history(conversation)];
        let args = vec![
            format!("{} {json}", message.id),
            self.history_limit.to_string(),
            self.history_ttl.as_millis().max(1).to_string(),
        ];
        let appended: Value =
            self.call("append", self.scripts.append.evalsha_with_reload(&self.client, keys, args)).await?;
        reply::done("append", appended)
    }

    /// Writes buffered history to Redis, oldest first. Returns how many were written.
    pub async fn flush_pending(&self) -> usize {
        let mut written = 0;
        loop {
            let Some((conversation, message)) = self.pending_lock().pop_front() else { return written };
            if let Err(err) = self.redis_append(&conversation, &message).await {
                tracing::warn!(error = %err, pending = self.pending_writes() + 1, "history flush interrupted");
                self.pending_lock().push_front((conversation, message));
                return written;
            }
            written += 1;
        }
    }

    /// Reads a page of a conversation, oldest first.
    pub(super) async fn read_history(
        &self,
        conversation: &Conversation,
        page: &HistoryPage,
    ) -> Result<Vec<Message>, StoreError> {
        // Members are "<id> <json>" with equal scores, so lexical ranges are id ranges:
        // "(<id>~" excludes exactly the members of ids up to <id>; "(<id>" those from <id> on.
        let lower =
            page.after.map_or(ZRangeBound::NegInfinityLex, |after| ZRangeBound::Lex(format!("({after}~")));
        let upper =
            page.before.map_or(ZRangeBound::InfiniteLex, |before| ZRangeBound::Lex(format!("({before}")));
        let bound = |range| ZRange { kind: ZRangeKind::Inclusive, range };
        let newest_first = page.after.is_none();
        let (start, stop) = if newest_first { (upper, lower) } else { (lower, upper) };
        let limit = Some((0, page.limit as i64));
        let key = self.keys.history(conversation);
        let members: Vec<String> = self
            .call(
                "history",
                self.client.zrange(
                    key,
                    bound(start),
                    bound(stop),
                    Some(ZSort::ByLex),
                    newest_first,
                    limit,
                    false,
                ),
            )
            .await?;
        let mut messages = members
            .iter()
            .map(|member| {
                let json = member.split_once(' ').map_or("", |(_, json)| json);
                serde_json::from_str::<Message>(json)
                    .map_err(|err| StoreError::Unavailable(format!("corrupt history entry: {err}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if newest_first {
            messages.reverse();
        }
        Ok(messages)
    }
}
