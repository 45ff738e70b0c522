//! Telling everyone who comes and goes, at a cost that stays bounded as the
//! deployment grows.
//!
//! - **Announcements.** Up to [`Policy::announce_max_users`] online, each
//!   login and logout is announced on its own (`user joined` / `user left`,
//!   as in the socket.io chat demo). Each one goes to every logged-in socket,
//!   so a reconnect storm of N users costs N² deliveries: above the limit an
//!   instance notes who changed, and once a second sends one `presence`
//!   event naming at most [`BATCH_MAX_NAMES`] of them (the rest wait for the
//!   next). Each name goes out with its state in the store *at sending
//!   time*, not as it was noted: events from several instances, or a single
//!   announcement after a noted change, can then arrive in any order and
//!   still leave clients with the truth.
//! - **The `users` push.** In a small deployment everyone gets the online
//!   list when it changes, coalesced so that a burst of logins produces a
//!   handful of pushes. A push lists every user, so above
//!   [`PUSH_MAX_USERS`] online nothing is pushed and clients keep their list
//!   from the announcements and the `users` request. (Unbounded, 8,000 idle
//!   users made each instance queue gigabytes.)
//!
//! [`Policy::announce_max_users`]: super::Policy::announce_max_users

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use socketioxide::operators::BroadcastOperators;
use tokio::task::JoinHandle;

use super::wire::{PresenceEvent, UserEntry, UserEvent, UsersList};
use super::{Chat, log_emit};
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

/// Users whose presence changed since the last `presence` event, in the
/// order they first changed. A user who changes again keeps their place, so
/// nobody waits behind a backlog for ever.
#[derive(Debug, Default)]
pub(super) struct Batch {
    /// Who changed, oldest first.
    order: VecDeque<Username>,
    /// The same users, each with the spelling of their latest change (the
    /// store forgets a user who left, so `left` uses this one).
    latest: HashMap<Username, Username>,
}

impl Batch {
    /// Notes that `user` came online or went offline.
    pub(super) fn record(&mut self, user: &Username) {
        if self.latest.insert(user.clone(), user.clone()).is_none() {
            self.order.push_back(user.clone());
        }
    }

    /// Takes up to `max` of the oldest noted users.
    pub(super) fn take(&mut self, max: usize) -> Vec<Username> {
        let count = max.min(self.order.len());
        self.order.drain(..count).filter_map(|user| self.latest.remove(&user)).collect()
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
        chat.batch(|batch| batch.record(user));
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
    // Counted before the user left, so that, at the limit, a user is
    // announced both ways or batched both ways.
    if chat.announces_each(num_users + 1) {
        let left = UserEvent { username: user.clone(), num_users };
        log_emit("user left", everyone_else.emit("user left", &left).await);
    } else {
        chat.batch(|batch| batch.record(user));
    }
    chat.presence_changed();
}

/// Starts presence's two background tasks, [`spawn_pusher`] and
/// [`spawn_batcher`] (through [`super::spawn_tasks`]).
pub(super) fn spawn_tasks<A: Adapter>(io: &SocketIo<A>, chat: &Chat) -> [JoinHandle<()>; 2] {
    [spawn_pusher(io.clone(), chat.clone()), spawn_batcher(io.clone(), chat.clone())]
}

/// Starts the task that sends this instance's noted changes as `presence`,
/// once every [`BATCH_INTERVAL`]. It runs until aborted.
fn spawn_batcher<A: Adapter>(io: SocketIo<A>, chat: Chat) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(BATCH_INTERVAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            if let Err(err) = send_batch(&io, &chat).await {
                tracing::warn!(error = %err, "could not read presence for the `presence` event; retrying");
            }
        }
    })
}

/// Sends everything noted, [`BATCH_MAX_NAMES`] names an event: at shutdown,
/// before the namespace closes, so the other instances still hear of the
/// last second's changes. Stops at the first failure.
pub async fn send_all_batches<A: Adapter>(io: &SocketIo<A>, chat: &Chat) {
    loop {
        match send_batch(io, chat).await {
            Ok(true) => continue,
            Ok(false) => return,
            Err(err) => return tracing::warn!(error = %err, "could not send the last `presence` events"),
        }
    }
}

/// Sends one `presence` event naming the oldest noted users, each with their
/// state now, and the count now. False if nothing was noted. On a store
/// failure the users are noted again, for the next try.
async fn send_batch<A: Adapter>(io: &SocketIo<A>, chat: &Chat) -> Result<bool, StoreError> {
    let users = chat.batch(|batch| batch.take(BATCH_MAX_NAMES));
    if users.is_empty() {
        return Ok(false);
    }
    let now = tokio::try_join!(chat.store().presence_of(&users), chat.store().count_online());
    let (states, num_users) = match now {
        Ok(now) => now,
        Err(err) => {
            chat.batch(|batch| users.iter().for_each(|user| batch.record(user)));
            return Err(err);
        }
    };
    let mut event = PresenceEvent { joined: Vec::new(), left: Vec::new(), num_users };
    for (user, online) in users.into_iter().zip(states) {
        match online {
            Some(username) => event.joined.push(UserEntry { username }),
            None => event.left.push(UserEntry { username: user }),
        }
    }
    let Some(online) = super::online(io) else { return Ok(true) };
    log_emit("presence", online.emit("presence", &event).await);
    Ok(true)
}

/// Starts the task that pushes `users` after [`Chat::presence_changed`].
/// It runs until aborted.
fn spawn_pusher<A: Adapter>(io: SocketIo<A>, chat: Chat) -> JoinHandle<()> {
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
    if users.len() > PUSH_MAX_USERS {
        return Ok(());
    }
    if let Some(online) = super::online(io) {
        log_emit("users", online.emit("users", &UsersList::new(users)).await);
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

    fn names(users: &[Username]) -> Vec<&str> {
        users.iter().map(Username::as_str).collect()
    }

    #[test]
    fn an_empty_batch_names_nobody() {
        assert!(Batch::default().take(BATCH_MAX_NAMES).is_empty());
    }

    #[test]
    fn a_batch_names_each_user_once_in_first_change_order_with_the_latest_spelling() {
        let mut batch = Batch::default();
        batch.record(&user("alice"));
        batch.record(&user("bob"));
        batch.record(&user("ALICE"));
        assert_eq!(names(&batch.take(BATCH_MAX_NAMES)), ["ALICE", "bob"]);
        assert!(batch.take(BATCH_MAX_NAMES).is_empty(), "a user is named once");
    }

    #[test]
    fn a_large_batch_is_taken_oldest_first_over_several_events() {
        let mut batch = Batch::default();
        let total = BATCH_MAX_NAMES + 30;
        for i in 0..total {
            batch.record(&user(&format!("user{i:04}")));
        }
        batch.record(&user("user0000"));
        let first = batch.take(BATCH_MAX_NAMES);
        assert_eq!(first.len(), BATCH_MAX_NAMES);
        assert_eq!(first[0].as_str(), "user0000", "changing again keeps a user's place");
        let second = batch.take(BATCH_MAX_NAMES);
        assert_eq!(second.len(), 30);
        assert_eq!(second[0].as_str(), format!("user{BATCH_MAX_NAMES:04}"));
        assert!(batch.take(BATCH_MAX_NAMES).is_empty());
    }
}
