//! History in memory, bounded three ways: at most `limit` messages per
//! conversation (HISTORY_LIMIT), at most `max_bytes` in all (HISTORY_MAX_MB:
//! the least recently used conversations lose their oldest messages first),
//! and conversations unused for `ttl` (HISTORY_TTL_DAYS) are dropped.
//!
//! Sizes are estimates: each message's strings plus its slot in its
//! conversation's buffer, kept as a running total so that checking the
//! budget costs nothing. Emptied conversations are dropped and buffers
//! shrink as they empty, so the memory really goes back to the allocator.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::mem::size_of;
use std::time::{Duration, Instant};

use crate::domain::{Message, Target, Username};
use crate::store::HistoryPage;

/// History kept in memory by default, at most (64 MiB).
pub const DEFAULT_MAX_BYTES: usize = 64 * 1024 * 1024;
/// A conversation unused this long is dropped, by default (30 days).
pub const DEFAULT_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// What the allocator adds to each heap string, roughly (its size class
/// rounding and bookkeeping).
const PER_ALLOCATION: usize = 16;
/// A conversation's fixed cost: its map entry, its place in the use order,
/// and the buffer's header.
const PER_CONVERSATION: usize = 128;

/// Every conversation's history, and the order they were last used in.
pub struct History {
    threads: HashMap<String, Thread>,
    /// (last use, key) of every conversation: least recently used first.
    by_use: BTreeSet<(u64, String)>,
    /// Counts appends and reads; a conversation's last one orders it in `by_use`.
    clock: u64,
    /// Estimated bytes held, all conversations together.
    bytes: usize,
    limit: usize,
    max_bytes: usize,
    ttl: Duration,
}

/// One conversation's messages, oldest first.
struct Thread {
    messages: VecDeque<Message>,
    /// Estimated heap bytes of the messages' strings.
    heap: usize,
    /// The clock at the conversation's last append or read.
    last_use: u64,
    /// When that was.
    used_at: Instant,
}

impl Thread {
    /// Estimated bytes the conversation holds (its key is stored twice).
    fn footprint(&self, key: &str) -> usize {
        self.heap + self.messages.capacity() * size_of::<Message>() + 2 * key.len() + PER_CONVERSATION
    }

    /// Drops the oldest message; returns false if there was none.
    fn pop_oldest(&mut self) -> bool {
        let Some(oldest) = self.messages.pop_front() else { return false };
        self.heap -= estimate(&oldest);
        // Halve the buffer once it is a quarter full: amortised O(1), and a
        // conversation that shrank does not keep its peak buffer.
        if self.messages.len() * 4 <= self.messages.capacity() {
            self.messages.shrink_to(self.messages.len() * 2);
        }
        true
    }
}

impl History {
    /// Empty history: `limit` messages per conversation, `max_bytes` in all,
    /// conversations dropped after `ttl` unused.
    pub fn new(limit: usize, max_bytes: usize, ttl: Duration) -> Self {
        Self {
            threads: HashMap::new(),
            by_use: BTreeSet::new(),
            clock: 0,
            bytes: 0,
            limit: limit.max(1),
            max_bytes,
            ttl,
        }
    }

    /// Messages kept per conversation, at most.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Estimated bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Appends a message to conversation `key`, then trims to the limits.
    pub fn append(&mut self, key: String, message: Message, now: Instant) {
        self.expire(now);
        let last_use = self.tick();
        let before = match self.threads.get(&key) {
            Some(thread) => {
                self.by_use.remove(&(thread.last_use, key.clone()));
                thread.footprint(&key)
            }
            None => 0,
        };
        let thread = self.threads.entry(key.clone()).or_insert_with(|| Thread {
            messages: VecDeque::new(),
            heap: 0,
            last_use,
            used_at: now,
        });
        thread.heap += estimate(&message);
        thread.messages.push_back(message);
        while thread.messages.len() > self.limit {
            thread.pop_oldest();
        }
        thread.last_use = last_use;
        thread.used_at = now;
        self.bytes = self.bytes - before + thread.footprint(&key);
        self.by_use.insert((last_use, key));
        self.evict();
    }

    /// A page of conversation `key`, oldest first; reading counts as a use.
    pub fn read(&mut self, key: &str, page: &HistoryPage, now: Instant) -> Vec<Message> {
        self.expire(now);
        let last_use = self.tick();
        let Some(thread) = self.threads.get_mut(key) else { return Vec::new() };
        self.by_use.remove(&(thread.last_use, key.to_owned()));
        self.by_use.insert((last_use, key.to_owned()));
        thread.last_use = last_use;
        thread.used_at = now;
        let in_range = |m: &&Message| {
            page.after.is_none_or(|after| m.id > after) && page.before.is_none_or(|before| m.id < before)
        };
        if page.after.is_some() {
            thread.messages.iter().filter(in_range).take(page.limit).cloned().collect()
        } else {
            let mut newest: Vec<Message> =
                thread.messages.iter().rev().filter(in_range).take(page.limit).cloned().collect();
            newest.reverse();
            newest
        }
    }

    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    /// Drops the oldest messages of the least recently used conversations
    /// until the total is within the budget.
    fn evict(&mut self) {
        while self.bytes > self.max_bytes {
            let Some((_, key)) = self.by_use.first() else { return };
            let Some(thread) = self.threads.get_mut(key) else {
                self.by_use.pop_first();
                continue;
            };
            let before = thread.footprint(key);
            thread.pop_oldest();
            if thread.messages.is_empty() {
                self.bytes -= before;
                if let Some((_, key)) = self.by_use.pop_first() {
                    self.threads.remove(&key);
                }
            } else {
                self.bytes = self.bytes - before + thread.footprint(key);
            }
        }
    }

    /// Drops the conversations unused for `ttl`: the least recently used
    /// come first, so this stops at the first one still in use.
    fn expire(&mut self, now: Instant) {
        while let Some((_, key)) = self.by_use.first() {
            let Some(thread) = self.threads.get(key) else {
                self.by_use.pop_first();
                continue;
            };
            if now.saturating_duration_since(thread.used_at) < self.ttl {
                return;
            }
            self.bytes -= thread.footprint(key);
            if let Some((_, key)) = self.by_use.pop_first() {
                self.threads.remove(&key);
            }
        }
    }
}

/// Estimated heap bytes of a message's strings (the message itself is
/// counted as a slot of its conversation's buffer).
fn estimate(message: &Message) -> usize {
    let string = |len: usize| if len == 0 { 0 } else { len + PER_ALLOCATION };
    let user = |user: &Username| string(user.as_str().len()) + string(user.key().len());
    let target = match &message.target {
        Target::Room(room) => string(room.as_str().len()),
        Target::User(one) => user(one),
        Target::Users(many) => {
            many.capacity() * size_of::<Username>() + PER_ALLOCATION + many.iter().map(user).sum::<usize>()
        }
    };
    let file = message.file.as_ref().map_or(0, |file| {
        string(file.name.as_str().len())
            + string(file.mime.len())
            + string(file.url.len())
            + file.data.as_ref().map_or(0, |data| string(data.len()))
    });
    user(&message.from) + message.text.as_ref().map_or(0, |text| string(text.as_str().len())) + target + file
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{IdGenerator, RoomName, Target, Text};

    const ALL: HistoryPage = HistoryPage { before: None, after: None, limit: usize::MAX };

    fn message(ids: &IdGenerator, room: &str, text: &str) -> Message {
        let target = Target::Room(RoomName::parse(room).unwrap());
        let text = Some(Text::parse(text).unwrap());
        Message::new(ids.next(), Username::parse("alice").unwrap(), target, text, None)
    }

    fn texts(history: &mut History, room: &str, now: Instant) -> Vec<String> {
        let read = history.read(&format!("room:{room}"), &ALL, now);
        read.iter().map(|m| m.text.as_ref().unwrap().as_str().to_owned()).collect()
    }

    /// Recomputes the total from scratch, to check the running one.
    fn recount(history: &History) -> usize {
        history.threads.iter().map(|(key, thread)| thread.footprint(key)).sum()
    }

    /// A conversation's texts, without counting as a use.
    fn peek(history: &History, room: &str) -> Vec<String> {
        let thread = history.threads.get(&format!("room:{room}"));
        let messages = thread.into_iter().flat_map(|thread| thread.messages.iter());
        messages.map(|m| m.text.as_ref().unwrap().as_str().to_owned()).collect()
    }

    #[test]
    fn the_least_recently_used_conversation_loses_its_oldest_messages_first() {
        let ids = IdGenerator::new();
        let now = Instant::now();
        let mut history = History::new(100, usize::MAX, DEFAULT_TTL);
        for room in ["a", "b", "c"] {
            for n in 0..10 {
                let m = message(&ids, room, &format!("{room}{n} {}", "x".repeat(500)));
                history.append(format!("room:{room}"), m, now);
            }
        }
        texts(&mut history, "a", now); // a read: b is now the least recently used, then c
        let full = history.bytes();
        history.max_bytes = full - 1;
        history.evict();
        let b = peek(&history, "b");
        assert_eq!(b.len(), 9, "one message of b went");
        assert!(b[0].starts_with("b1 "), "its oldest one");

        history.max_bytes = full / 2;
        history.evict();
        assert!(history.bytes() <= full / 2);
        assert_eq!(history.bytes(), recount(&history), "the running total is exact");
        assert!(!history.threads.contains_key("room:b"), "b went first, and emptied it is dropped");
        let c = peek(&history, "c");
        assert!((1..10).contains(&c.len()), "then c's oldest: {} left", c.len());
        assert!(c.last().unwrap().starts_with("c9 "), "c keeps its newest");
        assert_eq!(peek(&history, "a").len(), 10, "a was used last and is intact");
    }

    #[test]
    fn the_budget_holds_while_appending_and_buffers_shrink() {
        let ids = IdGenerator::new();
        let now = Instant::now();
        let mut history = History::new(500, 256 * 1024, DEFAULT_TTL);
        for n in 0..2_000 {
            let room = format!("room{}", n % 40);
            history.append(format!("room:{room}"), message(&ids, &room, &"y".repeat(1_000)), now);
            assert!(history.bytes() <= 256 * 1024);
        }
        assert_eq!(history.bytes(), recount(&history));
        let held: usize = history.threads.values().map(|t| t.messages.len()).sum();
        assert!(held > 100, "the budget is used, not wasted: {held} messages held");
        for thread in history.threads.values() {
            assert!(thread.messages.capacity() <= 4 * thread.messages.len().max(1) + 8);
        }
    }

    #[test]
    fn conversations_unused_for_the_ttl_are_dropped() {
        let ids = IdGenerator::new();
        let start = Instant::now();
        let ttl = Duration::from_secs(3600);
        let mut history = History::new(100, usize::MAX, ttl);
        history.append("room:old".into(), message(&ids, "old", "old news"), start);
        history.append("room:read".into(), message(&ids, "read", "still read"), start);
        let later = start + Duration::from_secs(3000);
        assert_eq!(texts(&mut history, "read", later), ["still read"], "a read is a use");
        history.append("room:new".into(), message(&ids, "new", "fresh"), later);

        let expired = start + ttl;
        history.append("room:new".into(), message(&ids, "new", "fresher"), expired);
        assert!(!history.threads.contains_key("room:old"), "unused for the ttl: dropped");
        assert_eq!(texts(&mut history, "read", expired), ["still read"]);
        assert_eq!(texts(&mut history, "new", expired).len(), 2);
        assert_eq!(history.bytes(), recount(&history));
        let much_later = expired + ttl;
        assert!(texts(&mut history, "new", much_later).is_empty(), "reads see expiry too");
        assert_eq!(history.bytes(), 0);
    }
}
