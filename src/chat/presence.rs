//! Telling everyone who comes and goes, at a cost that stays bounded as the
//! deployment grows.
//!
//! - **Announcements.** Up to [`Policy::announce_max_users`] online, each
//!   login and logout is announced on its own (`user joined` / `user left`,
//!   as in the socket.io chat demo). Each one goes to every logged-in socket,
//!   so a reconnect storm of N users costs N² deliveries: above the limit the
//!   changes are gathered into one `presence` event a second per instance,
//!   naming at most [`BATCH_MAX_NAMES`] users (the rest wait for the next).
//! - **The `users` push.** In a small deployment everyone gets the online
//!   list when it changes, coalesced so that a burst of logins produces a
//!   handful of pushes. A push lists every user, so above
//!   [`PUSH_MAX_USERS`] online nothing is pushed and clients keep their list
//!   from the announcements and the `users` request. (Unbounded, 8,000 idle
//!   users made each instance queue gigabytes.)
//!
//! [`Policy::announce_max_users`]: super::Policy::announce_max_users

use std::collections::HashMap;
use std::time::Duration;

use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use socketioxide::operators::BroadcastOperators;
use tokio::task::JoinHandle;

use super::wire::{PresenceEvent, UserEntry, UserEvent, UsersList};
use super::{Chat, channels, log_emit};
use crate::domain::Username;
use crate::store::StoreError;

/// How long to gather changes before pushing the list, at least.
pub const PUSH_DELAY: Duration = Duration::from_millis(100);

/// The most users online for which the list is pushed.
pub const PUSH_MAX_USERS: usize = 100;

/// How often an instance sends its gathered changes as `presence`.
pub const BATCH_INTERVAL: Duration = Duration::from_secs(1);

/// The most names one `presence` event carries: it goes to every socket, and
/// each socket's write buffer keeps the size of the largest batch it wrote.
pub const BATCH_MAX_NAMES: usize = 100;

/// How long to wait before retrying after the store failed.
const RETRY_DELAY: Duration = Duration::from_secs(1);

/// Presence changes waiting for the next `presence` event: each user's
/// latest state, oldest change first.
#[derive(Debug, Default)]
pub(super) struct Batch {
    /// User → (order of its latest change, online now).
    changes: HashMap<Username, (u64, bool)>,
    next_order: u64,
    /// Users online at the latest change.
    num_users: usize,
}

impl Batch {
    /// Records that `user` came online (or went offline), leaving `num_users`
    /// online. A later change of the same user replaces an earlier one.
    pub(super) fn record(&mut self, user: &Username, online: bool, num_users: usize) {
        self.next_order += 1;
        // Removed first: the map would keep the old key, and the latest
        // change's spelling is the one to show.
        self.changes.remove(user);
        self.changes.insert(user.clone(), (self.next_order, online));
        self.num_users = num_users;
    }

    /// The oldest changes, at most [`BATCH_MAX_NAMES`], as an event; `None`
    /// if nothing changed. The others stay for the next call.
    pub(super) fn take(&mut self) -> Option<PresenceEvent> {
        if self.changes.is_empty() {
            return None;
        }
        let mut oldest: Vec<(u64, Username, bool)> =
            self.changes.iter().map(|(user, &(order, online))| (order, user.clone(), online)).collect();
        oldest.sort_unstable_by_key(|(order, _, _)| *order);
        oldest.truncate(BATCH_MAX_NAMES);
        let mut event = PresenceEvent { joined: Vec::new(), left: Vec::new(), num_users: self.num_users };
        for (_, username, online) in oldest {
            self.changes.remove(&username);
            let list = if online { &mut event.joined } else { &mut event.left };
            list.push(UserEntry { username });
        }
        Some(event)
    }
}

/// A user came online, leaving `num_users` online: `user joined` to every
/// other logged-in socket, or into the next `presence` batch. The caller
/// picks the recipients, since a login excludes the socket that logged in.
pub(super) async fn user_joined<A: Adapter>(
    chat: &Chat,
    everyone_else: BroadcastOperators<A>,
    user: &Username,
    num_users: usize,
) {
    if chat.announces_each(num_users) {
        let joined = UserEvent { username: user.clone(), num_users };
        log_emit("user joined", everyone_else.emit("user joined", &joined).await);
    } else {
        chat.batch(|batch| batch.record(user, true, num_users));
    }
    chat.presence_changed();
}

/// A user went offline, leaving `num_users` online: `user left` to every
/// other logged-in socket, or into the next `presence` batch.
pub(super) async fn user_left<A: Adapter>(
    chat: &Chat,
    everyone_else: BroadcastOperators<A>,
    user: &Username,
    num_users: usize,
) {
    // Counted before the user left, so that a user is announced both ways or neither.
    if chat.announces_each(num_users + 1) {
        let left = UserEvent { username: user.clone(), num_users };
        log_emit("user left", everyone_else.emit("user left", &left).await);
    } else {
        chat.batch(|batch| batch.record(user, false, num_users));
    }
    chat.presence_changed();
}

/// Starts the task that sends this instance's gathered changes as
/// `presence`, once every [`BATCH_INTERVAL`]. It runs until aborted.
pub fn spawn_batcher<A: Adapter>(io: SocketIo<A>, chat: Chat) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(BATCH_INTERVAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let Some(everyone) = channels::everyone(&io) else { continue };
            if let Some(event) = chat.batch(Batch::take) {
                log_emit("presence", everyone.to(channels::ONLINE).emit("presence", &event).await);
            }
        }
    })
}

/// Starts the task that pushes `users` after [`Chat::presence_changed`].
/// It runs until aborted.
pub fn spawn_pusher<A: Adapter>(io: SocketIo<A>, chat: Chat) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            chat.presence_change().await;
            tokio::time::sleep(PUSH_DELAY).await;
            if !chat.take_presence_change() {
                continue;
            }
            if let Err(err) = push_users(&io, &chat).await {
                tracing::warn!(error = %err, "could not read the online list; retrying");
                tokio::time::sleep(RETRY_DELAY).await;
                chat.presence_changed();
            }
        }
    })
}

/// Pushes the online list to everyone, if it is short enough. The count is
/// asked first: above the limit the list itself is never read.
async fn push_users<A: Adapter>(io: &SocketIo<A>, chat: &Chat) -> Result<(), StoreError> {
    if chat.store().count_online().await? > PUSH_MAX_USERS {
        return Ok(());
    }
    let users = chat.store().online_users().await?;
    // Logins between the two reads can take the list past the limit.
    if let Some(everyone) = channels::everyone(io).filter(|_| users.len() <= PUSH_MAX_USERS) {
        log_emit("users", everyone.to(channels::ONLINE).emit("users", &UsersList::new(users)).await);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly")]

    use super::*;

    fn user(name: &str) -> Username {
        Username::parse(name).unwrap()
    }

    fn names(list: &[UserEntry]) -> Vec<&str> {
        list.iter().map(|entry| entry.username.as_str()).collect()
    }

    #[test]
    fn an_empty_batch_sends_nothing() {
        assert!(Batch::default().take().is_none());
    }

    #[test]
    fn a_batch_keeps_each_users_latest_change_and_the_latest_count() {
        let mut batch = Batch::default();
        batch.record(&user("alice"), true, 1001);
        batch.record(&user("bob"), true, 1002);
        batch.record(&user("alice"), false, 1001);
        batch.record(&user("carol"), false, 1000);
        batch.record(&user("Carol"), true, 1001);
        let event = batch.take().unwrap();
        assert_eq!(names(&event.joined), ["bob", "Carol"], "oldest change first, latest spelling");
        assert_eq!(names(&event.left), ["alice"]);
        assert_eq!(event.num_users, 1001);
        assert!(batch.take().is_none(), "a change is sent once");
    }

    #[test]
    fn a_large_batch_is_sent_oldest_first_over_several_events() {
        let mut batch = Batch::default();
        let total = BATCH_MAX_NAMES + 30;
        for i in 0..total {
            batch.record(&user(&format!("user{i:04}")), true, 2000 + i);
        }
        let first = batch.take().unwrap();
        assert_eq!(first.joined.len(), BATCH_MAX_NAMES);
        assert_eq!(first.joined[0].username.as_str(), "user0000");
        let second = batch.take().unwrap();
        assert_eq!(names(&second.joined).len(), 30);
        assert_eq!(second.joined[0].username.as_str(), format!("user{BATCH_MAX_NAMES:04}"));
        assert_eq!(second.num_users, 2000 + total - 1, "every event carries the latest count");
        assert!(batch.take().is_none());
    }
}
