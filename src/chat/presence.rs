//! The `users` push: in a small deployment everyone gets the online list
//! when it changes.
//!
//! Changes are coalesced: a burst of logins (a reconnect storm after a
//! restart) produces a handful of pushes, not one per login. A push goes to
//! every user and lists every user, so its cost grows with the square of the
//! deployment: above [`PUSH_MAX_USERS`] online nothing is pushed, and
//! clients keep their list from `user joined` / `user left` (which carry the
//! same changes) and the `users` request. (Unbounded, 8,000 idle users made
//! each instance queue gigabytes; bounded to 500 names a push, each socket's
//! websocket write buffer still grew to tens of kilobytes and kept them.)

use std::time::Duration;

use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use tokio::task::JoinHandle;

use super::wire::UsersList;
use super::{Chat, channels, log_emit};
use crate::store::StoreError;

/// How long to gather changes before pushing the list, at least.
pub const PUSH_DELAY: Duration = Duration::from_millis(100);

/// The most users online for which the list is pushed.
pub const PUSH_MAX_USERS: usize = 100;

/// How long to wait before retrying after the store failed.
const RETRY_DELAY: Duration = Duration::from_secs(1);

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
    if users.len() <= PUSH_MAX_USERS {
        log_emit("users", io.to(channels::ONLINE).emit("users", &UsersList::new(users)).await);
    }
    Ok(())
}
