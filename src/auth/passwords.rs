//! Password hashing with argon2id (OWASP's recommended parameters, the
//! crate's defaults: 19 MiB of memory, 2 passes). Hashing takes tens of
//! milliseconds of CPU and 19 MiB of memory on purpose, so it runs on the
//! blocking pool, never on the async workers, and a [`Hasher`] bounds how
//! many hashes run at once: without a bound, 120 concurrent logins took the
//! process from 11 to 425 MiB.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use tokio::sync::Semaphore;

use crate::domain::Password;

/// Most hashes that run at once, whatever the core count: each holds
/// 19 MiB, so 8 hold 152 MiB at most.
pub const MAX_HASHING_THREADS: usize = 8;
/// Requests that may wait for a hashing thread, per thread. Waiting costs no
/// argon2 memory; the queue only keeps the wait short and bounded.
pub const QUEUE_PER_THREAD: usize = 2;
/// Longest a request waits for a hashing thread before it is refused.
pub const MAX_QUEUE_WAIT: Duration = Duration::from_secs(2);
/// What a refused request is told to wait (`Retry-After`).
pub const BUSY_RETRY_AFTER: Duration = Duration::from_secs(1);

/// Why a password could not be hashed or checked.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HashError {
    /// Every hashing thread is taken and the queue is full, or the wait for
    /// a thread was over [`MAX_QUEUE_WAIT`]. The password was not looked at.
    #[error("too many password checks at once")]
    Busy,
    /// argon2 failed, or its thread panicked (a bug).
    #[error("password hashing failed: {0}")]
    Failed(String),
}

/// Runs argon2 on a bounded number of blocking threads, with a short,
/// bounded queue in front. Cheap to clone; clones share the bound.
#[derive(Clone)]
pub struct Hasher {
    /// One permit per hash that may run at once.
    running: Arc<Semaphore>,
    /// One permit per request running or waiting: a full queue refuses at once.
    admitted: Arc<Semaphore>,
    /// Longest wait for a running permit.
    max_wait: Duration,
}

impl Hasher {
    /// One hashing thread per core (at most [`MAX_HASHING_THREADS`]), and
    /// [`QUEUE_PER_THREAD`] waiting places per thread.
    pub fn for_this_machine() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let threads = cores.clamp(1, MAX_HASHING_THREADS);
        Self::new(threads, threads * QUEUE_PER_THREAD, MAX_QUEUE_WAIT)
    }

    /// At most `threads` hashes at once, `queue` requests waiting, each for
    /// at most `max_wait`.
    pub fn new(threads: usize, queue: usize, max_wait: Duration) -> Self {
        Self {
            running: Arc::new(Semaphore::new(threads.max(1))),
            admitted: Arc::new(Semaphore::new(threads.max(1) + queue)),
            max_wait,
        }
    }

    /// Hashes a password into a PHC string (`$argon2id$v=19$...`).
    pub async fn hash(&self, password: Password) -> Result<String, HashError> {
        self.run(move || hash_now(&password)).await?
    }

    /// True if `password` matches `hash`. With no hash (unknown account) it
    /// still spends the same work on a stand-in, under the same bound, so
    /// neither response times nor refusals tell which names are registered.
    pub async fn verify(&self, password: Password, hash: Option<String>) -> Result<bool, HashError> {
        self.run(move || {
            let known = hash.is_some();
            let hash = hash.unwrap_or_else(|| stand_in().to_owned());
            let Ok(parsed) = PasswordHash::new(&hash) else { return false };
            Argon2::default().verify_password(password.expose().as_bytes(), &parsed).is_ok() && known
        })
        .await
    }

    /// Runs `work` on the blocking pool once a hashing thread is free.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let place = self.admitted.clone().try_acquire_owned().map_err(|_| HashError::Busy)?;
        let permit = tokio::time::timeout(self.max_wait, self.running.clone().acquire_owned())
            .await
            .map_err(|_| HashError::Busy)?
            .map_err(|_| HashError::Busy)?;
        // The permits move into the blocking task: if the request is dropped
        // (the client went away), the hash still runs to its end, and holds
        // its thread's permit until then.
        tokio::task::spawn_blocking(move || {
            let _held = (place, permit);
            work()
        })
        .await
        .map_err(|err| HashError::Failed(err.to_string()))
    }
}

fn hash_now(password: &Password) -> Result<String, HashError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.expose().as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|err| HashError::Failed(err.to_string()))
}

fn stand_in() -> &'static str {
    static STAND_IN: OnceLock<String> = OnceLock::new();
    STAND_IN.get_or_init(|| {
        let password =
            Password::parse("stand-in password for unknown accounts").unwrap_or_else(|_| unreachable!());
        hash_now(&password).unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let hasher = Hasher::for_this_machine();
        let password = Password::parse("correct horse battery").unwrap();
        let hashed = hasher.hash(password.clone()).await.unwrap();
        assert!(hashed.starts_with("$argon2id$"));
        assert!(!hashed.contains("correct horse"));
        assert!(hasher.verify(password, Some(hashed.clone())).await.unwrap());
        assert!(!hasher.verify(Password::parse("wrong horse battery").unwrap(), Some(hashed)).await.unwrap());
        let stand_in = Password::parse("stand-in password for unknown accounts").unwrap();
        assert!(!hasher.verify(stand_in, None).await.unwrap());
    }

    #[tokio::test]
    async fn a_full_queue_is_refused_at_once_and_a_long_wait_in_time() {
        let hasher = Hasher::new(1, 1, Duration::from_millis(300));
        let (release, released) = std::sync::mpsc::channel::<()>();
        let (started, running) = tokio::sync::oneshot::channel();
        let busy = {
            let hasher = hasher.clone();
            tokio::spawn(async move {
                hasher
                    .run(move || {
                        let _ = started.send(());
                        let _ = released.recv();
                    })
                    .await
            })
        };
        running.await.unwrap();
        // The one thread is taken: the next request waits, and gives up in time.
        let waited = tokio::time::Instant::now();
        assert_eq!(hasher.run(|| ()).await, Err(HashError::Busy));
        assert!(waited.elapsed() >= Duration::from_millis(300));
        // While one waits, the queue (one place) is full: refused at once.
        let waiting = {
            let hasher = hasher.clone();
            tokio::spawn(async move { hasher.run(|| 7).await })
        };
        tokio::time::timeout(Duration::from_secs(5), async {
            while hasher.admitted.available_permits() > 0 {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the second request waits in the queue");
        let refused = tokio::time::Instant::now();
        assert_eq!(hasher.run(|| ()).await, Err(HashError::Busy));
        assert!(refused.elapsed() < Duration::from_millis(100));
        release.send(()).unwrap();
        busy.await.unwrap().unwrap();
        assert_eq!(waiting.await.unwrap(), Ok(7));
    }
}
