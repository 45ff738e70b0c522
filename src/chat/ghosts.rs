//! Names held by ghosts: sockets of an instance whose process died, still
//! recorded in the shared store until someone notices.
//!
//! A login refused for a taken name asks the cluster to look for dead
//! instances at once ([`Ghosts::reap`]); the maintenance loop answers once
//! it knows: after purging the dead (their users' `user left` already
//! sent), or when nobody is suspect. The login is then tried once more: the
//! name may also have been freed by another instance's purge meanwhile.
//! In memory mode there are no other instances, and no ghosts.

use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

/// Longest a login waits for the verdict before answering `name_taken`.
const WAIT: Duration = Duration::from_millis(2_500);
/// Requests waiting for the maintenance loop; more are answered "no ghost".
const QUEUE: usize = 1_024;

/// A request for a look at the other instances, answered once dead ones
/// are purged, or none is suspect.
pub type ReapRequest = oneshot::Sender<()>;

/// The handle logins use to ask for a look. Cheap to clone.
#[derive(Clone, Default)]
pub struct Ghosts(Option<mpsc::Sender<ReapRequest>>);

impl Ghosts {
    /// No other instances, so never a ghost (memory mode).
    pub fn none() -> Self {
        Self(None)
    }

    /// A handle, and the requests it sends, for the maintenance loop to answer.
    pub fn channel() -> (Self, mpsc::Receiver<ReapRequest>) {
        let (requests, received) = mpsc::channel(QUEUE);
        (Self(Some(requests)), received)
    }

    /// Asks for dead instances to be found and purged now. True once the
    /// cluster looked: a name that was taken is worth trying again.
    pub async fn reap(&self) -> bool {
        let Some(requests) = &self.0 else { return false };
        let (request, answer) = oneshot::channel();
        if requests.try_send(request).is_err() {
            return false;
        }
        matches!(tokio::time::timeout(WAIT, answer).await, Ok(Ok(())))
    }
}
