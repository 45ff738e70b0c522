//! The `users` push: everyone gets the online list when it changes.
//!
//! Changes are coalesced: a burst of logins (a reconnect storm after a
//! restart) produces a handful of pushes, not one per login, so the cost
//! stays linear in the number of users instead of quadratic.

use std::time::Duration;

use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use tokio::task::JoinHandle;

use super::wire::UsersList;
use super::{Chat, channels, log_emit};

/// How long to gather changes before pushing the list.
pub const PUSH_DELAY: Duration = Duration::from_millis(100);

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
            match chat.store().online_users().await {
                Ok(users) => {
                    log_emit("users", io.to(channels::ONLINE).emit("users", &UsersList::new(users)).await)
                }
                Err(err) => {
                    tracing::warn!(error = %err, "could not read the online list; retrying");
                    tokio::time::sleep(RETRY_DELAY).await;
                    chat.presence_changed();
                }
            }
        }
    })
}
