//! Names held by ghosts: sockets of an instance whose process died, still
//! recorded in the shared store until someone notices.
//!
//! A login refused for a taken name asks the cluster to look for dead
//! instances at once ([`Ghosts::reap`]) and waits for a look that started
//! after it asked and left nobody suspect: every dead instance found is
//! purged by then, its users' `user left` already sent. The login is then
//! tried once more. In memory mode there are no other instances, and no
//! ghosts; in cluster mode, while the instance cannot look (Redis away, or
//! `CLIENT LIST` refused), a taken name is answered at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, watch};

/// Longest a login waits for the verdict before answering `name_taken`
/// (purging an instance that held thousands of sockets takes a while).
const WAIT: Duration = Duration::from_secs(5);

/// The handle logins use to ask for a look. Cheap to clone.
#[derive(Clone, Default)]
pub struct Ghosts(Option<Arc<Shared>>);

/// The maintenance loop's side: it hears the requests and answers them.
pub struct GhostWatch(Arc<Shared>);

struct Shared {
    asked: Notify,
    /// Looks started so far.
    started: AtomicU64,
    answers: watch::Sender<Answers>,
    /// Whether looks can be made at all now.
    watching: AtomicBool,
}

/// What the logins waiting are told.
#[derive(Debug, Default, Clone, Copy)]
struct Answers {
    /// The last look that left nobody suspect.
    settled: u64,
    /// Times looks became impossible: whoever waits stops waiting.
    gave_up: u64,
}

impl Ghosts {
    /// No other instances, so never a ghost (memory mode).
    pub fn none() -> Self {
        Self(None)
    }

    /// A handle, and the side that answers it.
    pub fn channel() -> (Self, GhostWatch) {
        let shared = Arc::new(Shared {
            asked: Notify::new(),
            started: AtomicU64::new(0),
            answers: watch::Sender::new(Answers::default()),
            watching: AtomicBool::new(false),
        });
        (Self(Some(shared.clone())), GhostWatch(shared))
    }

    /// Asks for dead instances to be found and purged now. True once a look
    /// that started after the request is done: a name that was taken is
    /// worth trying again.
    pub async fn reap(&self) -> bool {
        let Some(shared) = &self.0 else { return false };
        if !shared.watching.load(Ordering::Acquire) {
            return false;
        }
        let mut answers = shared.answers.subscribe();
        let gave_up = answers.borrow().gave_up;
        let asked_after = shared.started.load(Ordering::Acquire);
        shared.asked.notify_one();
        let answer = answers.wait_for(|now| now.settled > asked_after || now.gave_up > gave_up);
        match tokio::time::timeout(WAIT, answer).await {
            Ok(Ok(now)) => now.settled > asked_after,
            _ => false,
        }
    }
}

impl GhostWatch {
    /// Resolves when a login asks for a look.
    pub async fn asked(&self) {
        self.0.asked.notified().await;
    }

    /// Says whether looks can be made now; while not, logins do not wait
    /// (and those waiting stop).
    pub fn set_watching(&self, watching: bool) {
        let was = self.0.watching.swap(watching, Ordering::AcqRel);
        if was && !watching {
            self.0.answers.send_modify(|answers| answers.gave_up += 1);
        }
    }

    /// A look starts: returns its number.
    pub fn look_started(&self) -> u64 {
        self.0.started.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// Look `look` left nobody suspect: the logins that asked before it
    /// started may try again.
    pub fn settled(&self, look: u64) {
        self.0.answers.send_if_modified(|answers| {
            let newer = look > answers.settled;
            if newer {
                answers.settled = look;
            }
            newer
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_login_waits_for_a_look_that_started_after_it_asked() {
        let (ghosts, watch) = Ghosts::channel();
        watch.set_watching(true);
        let before = watch.look_started();
        let asking = tokio::spawn(async move { ghosts.reap().await });
        watch.asked().await;
        watch.settled(before);
        let after = watch.look_started();
        assert!(!asking.is_finished(), "a look that started before the request does not answer it");
        watch.settled(after);
        assert!(asking.await.unwrap());
    }

    #[tokio::test]
    async fn logins_waiting_stop_when_looks_become_impossible() {
        let (ghosts, watch) = Ghosts::channel();
        watch.set_watching(true);
        let asking = tokio::spawn(async move { ghosts.reap().await });
        watch.asked().await;
        watch.set_watching(false);
        let answer = tokio::time::timeout(Duration::from_secs(1), asking).await;
        assert!(!answer.expect("answered at once").unwrap(), "no look: not worth a retry");
    }

    #[tokio::test]
    async fn nobody_waits_while_no_look_can_be_made() {
        let (ghosts, _watch) = Ghosts::channel();
        assert!(!ghosts.reap().await);
        assert!(!Ghosts::none().reap().await);
    }
}
