//! The `users` push: everyone gets the online list when it changes.
//!
//! Changes are coalesced: a burst of logins (a reconnect storm after a
//! restart) produces a handful of pushes, not one per login. A push goes to
//! every user, so its cost grows with the square of the deployment: pushes
//! list at most [`PUSH_MAX_USERS`] users (with `numUsers` and `truncated`),
//! and come at most once per [`push_delay`], which grows with the number of
//! users. (Unbounded, 8,000 idle users made each instance queue gigabytes.)

use std::time::Duration;

use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use tokio::task::JoinHandle;

use super::wire::UsersList;
use super::{Chat, channels, log_emit};

/// How long to gather changes before pushing the list, at least.
pub const PUSH_DELAY: Duration = Duration::from_millis(100);

/// Users listed in a push, at most; clients of larger deployments ask
/// `users` for the whole list when they need it.
pub const PUSH_MAX_USERS: usize = 500;

/// The pause between pushes: 100 ms, plus 100 µs per online user (one push
/// a second at 10,000 users), so push traffic stays bounded as users grow.
pub fn push_delay(users: usize) -> Duration {
    PUSH_DELAY.max(Duration::from_micros(100).saturating_mul(u32::try_from(users).unwrap_or(u32::MAX)))
}

/// How long to wait before retrying after the store failed.
const RETRY_DELAY: Duration = Duration::from_secs(1);

/// Starts the task that pushes `users` after [`Chat::presence_changed`].
/// It runs until aborted.
pub fn spawn_pusher<A: Adapter>(io: SocketIo<A>, chat: Chat) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut delay = PUSH_DELAY;
        loop {
            chat.presence_change().await;
            tokio::time::sleep(delay).await;
            if !chat.take_presence_change() {
                continue;
            }
            match chat.store().online_users().await {
                Ok(users) => {
                    delay = push_delay(users.len());
                    let list = UsersList::first(users, PUSH_MAX_USERS);
                    log_emit("users", io.to(channels::ONLINE).emit("users", &list).await)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Username;

    #[test]
    fn pushes_slow_down_and_shorten_as_the_deployment_grows() {
        assert_eq!(push_delay(10), PUSH_DELAY);
        assert_eq!(push_delay(10_000), Duration::from_secs(1));
        let users: Vec<Username> = (0..600).map(|i| Username::parse(&format!("u{i:03}")).unwrap()).collect();
        let list = UsersList::first(users.clone(), PUSH_MAX_USERS);
        assert_eq!((list.users.len(), list.num_users, list.truncated), (PUSH_MAX_USERS, 600, true));
        let json = serde_json::to_value(UsersList::new(users[..3].to_vec())).unwrap();
        assert!(json.get("truncated").is_none(), "small lists look as before: {json}");
    }
}
