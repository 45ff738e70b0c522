//! `avatar changed`: tells everyone online that a user's picture changed, so
//! clients fetch that one picture again instead of checking every avatar they
//! show on a timer (which costs each client a request per user online).

use std::sync::Mutex;
use std::time::Duration;

use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::Chat;
use super::emit::{log_emit, online};
use super::events::AVATAR_CHANGED;
use super::wire::UserEntry;
use crate::domain::Username;

/// Least time between two rounds of announcements: changes made meanwhile
/// (one account uploading again and again) go out together, once per user,
/// so uploads cannot make every client refetch faster than this.
const ANNOUNCE_INTERVAL: Duration = Duration::from_secs(1);

/// Users whose avatar changed, waiting for the announcer.
#[derive(Default)]
pub(super) struct Changes {
    names: Mutex<Vec<Username>>,
    noted: Notify,
}

impl Changes {
    /// Notes a change and wakes the announcer.
    pub(super) fn note(&self, user: &Username) {
        let mut names = self.names.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if !names.contains(user) {
            names.push(user.clone());
        }
        self.noted.notify_one();
    }

    /// Waits for changes and takes them all.
    async fn next(&self) -> Vec<Username> {
        loop {
            let names =
                std::mem::take(&mut *self.names.lock().unwrap_or_else(|poisoned| poisoned.into_inner()));
            if !names.is_empty() {
                return names;
            }
            self.noted.notified().await;
        }
    }
}

/// Starts the task that sends `avatar changed` { username } to every
/// logged-in socket of the deployment (through the adapter, so the instance
/// that took the upload tells the others), at most one round every
/// [`ANNOUNCE_INTERVAL`]. It runs until aborted.
pub(super) fn spawn_announcer<A: Adapter>(io: SocketIo<A>, chat: Chat) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let names = chat.0.avatar_changes.next().await;
            for username in names {
                let Some(online) = online(&io) else { break };
                let event = UserEntry { username };
                log_emit(AVATAR_CHANGED, online.emit(AVATAR_CHANGED, &event).await);
            }
            tokio::time::sleep(ANNOUNCE_INTERVAL).await;
        }
    })
}
