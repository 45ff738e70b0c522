//! Telling everyone who comes and goes, at a cost that stays bounded as the
//! deployment grows.
//!
//! - **Announcements.** Up to [`Policy::announce_max_users`] online, each
//!   login and logout is announced on its own (`user joined` / `user left`,
//!   as in the socket.io chat demo). Each one goes to every logged-in socket,
//!   so a reconnect storm of N users would cost N² deliveries.
//! - **Counts.** Above the limit a login or logout sends nothing. Each
//!   instance reads the deployment's count once every [`COUNT_INTERVAL`] and,
//!   when it changed, sends `presence` `{ numUsers }` to its *own* logged-in
//!   sockets: a storm of any size costs each socket one small frame a
//!   second, and every instance tells its sockets the same, current count.
//!   Names come on demand, a page or a search at a time (the `users`
//!   request, [`crate::store::Store::roster`]).
//! - **The `users` push.** In a small deployment everyone gets the online
//!   list when it changes, coalesced so that a burst of logins produces a
//!   handful of pushes. A push lists every user, so above
//!   [`PUSH_MAX_USERS`] online (or the announce limit, if lower) nothing is
//!   pushed. (Unbounded, 8,000 idle
//!   users made each instance queue gigabytes.)
//!
//! [`Policy::announce_max_users`]: super::Policy::announce_max_users

use std::time::Duration;

use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use socketioxide::operators::BroadcastOperators;
use tokio::task::JoinHandle;

use super::Chat;
use super::emit::{log_emit, online};
use super::events::{PRESENCE, USER_JOINED, USER_LEFT, USERS};
use super::wire::{CountEvent, UserEvent, UsersList};
use crate::domain::Username;
use crate::domain::roster::RosterQuery;
use crate::store::StoreError;

/// How long to gather changes before pushing the list, at least.
pub const PUSH_DELAY: Duration = Duration::from_millis(100);

/// The most users online for which the list is pushed.
pub const PUSH_MAX_USERS: usize = 100;

/// How often an instance reads the count, and tells its sockets if it changed.
pub const COUNT_INTERVAL: Duration = Duration::from_secs(1);

/// How long to wait before retrying after the store failed.
const RETRY_DELAY: Duration = Duration::from_secs(1);

/// A user came online, leaving `num_users` online: `user joined` to every
/// other logged-in socket, up to the announce limit. The caller picks the
/// recipients, since a login excludes the socket that logged in.
pub(super) async fn user_joined<A: Adapter>(
    chat: &Chat,
    everyone_else: BroadcastOperators<A>,
    user: &Username,
    num_users: usize,
) {
    if chat.announces_each(num_users) {
        let joined = UserEvent { username: user.clone(), num_users };
        log_emit(USER_JOINED, everyone_else.emit(USER_JOINED, &joined).await);
    }
    chat.presence_changed();
}

/// A user went offline, leaving `num_users` online: `user left` to every
/// other logged-in socket, up to the announce limit.
pub(super) async fn user_left<A: Adapter>(
    chat: &Chat,
    everyone_else: BroadcastOperators<A>,
    user: &Username,
    num_users: usize,
) {
    // Counted before the user left, so that, at the limit, a user is
    // announced both ways or neither.
    if chat.announces_each(num_users + 1) {
        let left = UserEvent { username: user.clone(), num_users };
        log_emit(USER_LEFT, everyone_else.emit(USER_LEFT, &left).await);
    }
    chat.presence_changed();
}

/// Starts presence's two background tasks, [`spawn_pusher`] and
/// [`spawn_counter`] (through [`super::spawn_tasks`]).
pub(super) fn spawn_tasks<A: Adapter>(io: &SocketIo<A>, chat: &Chat) -> [JoinHandle<()>; 2] {
    [spawn_pusher(io.clone(), chat.clone()), spawn_counter(io.clone(), chat.clone())]
}

/// Starts the task that tells this instance's sockets the count, once every
/// [`COUNT_INTERVAL`] if it changed. It runs until aborted.
fn spawn_counter<A: Adapter>(io: SocketIo<A>, chat: Chat) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(COUNT_INTERVAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut told = Told::default();
        loop {
            ticks.tick().await;
            // Not the store's fallback to this instance's own count: while
            // Redis cannot answer, sockets keep the last count they heard.
            let Ok(count) = chat.store().count_online_everywhere().await else { continue };
            if let Some(num_users) = told.next(count, chat.announce_limit())
                && let Some(online) = online(&io)
            {
                log_emit(PRESENCE, online.local().emit(PRESENCE, &CountEvent { num_users }).await);
            }
        }
    })
}

/// What this instance's sockets last heard of the count from `presence`.
#[derive(Debug, Default)]
struct Told(Option<usize>);

impl Told {
    /// The count to send now that `count` users are online, if any. Above
    /// the announce `limit` (`None`: no limit) every change is sent; back
    /// at or below it, once more, since from then on the single
    /// announcements carry it.
    fn next(&mut self, count: usize, limit: Option<usize>) -> Option<usize> {
        let above = limit.is_some_and(|limit| count > limit);
        let send = self.0 != Some(count) && (above || self.0.is_some());
        self.0 = above.then_some(count);
        send.then_some(count)
    }
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

/// Pushes the online list to everyone, if it is short enough: at most
/// [`PUSH_MAX_USERS`], and no more than the announce limit. The count is
/// asked first: above the limit the list itself is never read.
async fn push_users<A: Adapter>(io: &SocketIo<A>, chat: &Chat) -> Result<(), StoreError> {
    // Above the announce limit nothing is sent per login, this list neither.
    let limit = chat.announce_limit().map_or(PUSH_MAX_USERS, |announced| announced.min(PUSH_MAX_USERS));
    if chat.store().count_online().await? > limit {
        return Ok(());
    }
    let page = chat.store().roster(&RosterQuery::first(limit)).await?;
    // Logins between the two reads can take the list past the limit.
    if page.more {
        return Ok(());
    }
    if let Some(online) = online(io) {
        let num_users = page.users.len();
        log_emit(USERS, online.emit(USERS, &UsersList::new(page.users, num_users, false)).await);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_told_only_above_the_limit_and_only_when_they_change() {
        let mut told = Told::default();
        let sent: Vec<Option<usize>> = [1, 2, 3, 3, 4, 2].map(|count| told.next(count, Some(2))).into();
        assert_eq!(sent, [None, None, Some(3), None, Some(4), Some(2)]);
        assert_eq!(told.next(1, Some(2)), None, "back at the limit, the announcements carry the count");
        assert_eq!(told.next(3, Some(2)), Some(3));
    }

    #[test]
    fn without_a_limit_no_count_is_told() {
        let mut told = Told::default();
        assert!([1, 5000, 2].iter().all(|&count| told.next(count, None).is_none()));
    }
}
