//! How one Redis call is made: refused at once while disconnected, given a
//! turn among the commands in flight, bounded by [`TIMEOUT`]; and what a
//! failed one falls back to (the local mirror), logged.

use std::future::Future;
use std::sync::atomic::Ordering;

use fred::prelude::{ClientLike, FredResult};

use super::{IN_FLIGHT, QUEUE_WAIT, RedisStore, TIMEOUT};
use crate::store::StoreError;

impl RedisStore {
    /// Runs one Redis call: refused at once while disconnected, sent once
    /// fewer than [`IN_FLIGHT`] are, bounded by [`TIMEOUT`].
    pub(super) async fn call<T>(
        &self,
        what: &str,
        call: impl Future<Output = FredResult<T>>,
    ) -> Result<T, StoreError> {
        self.connected()?;
        let Ok(Ok(_turn)) = tokio::time::timeout(QUEUE_WAIT, self.in_flight.acquire()).await else {
            crate::metrics::metrics().redis_error();
            return Err(StoreError::Unavailable(format!(
                "{what}: no turn among {IN_FLIGHT} commands within {QUEUE_WAIT:?}"
            )));
        };
        self.call_now(what, call).await
    }

    /// Refuses a call at once while Redis is not connected.
    fn connected(&self) -> Result<(), StoreError> {
        match self.client.is_connected() {
            true => Ok(()),
            false => Err(StoreError::Unavailable("Redis is not connected".into())),
        }
    }

    /// [`Self::call`] without waiting for a turn: for the heartbeat and the
    /// look for dead instances, which must not queue behind a reconnect
    /// storm's logins (a late heartbeat gets a live instance purged).
    pub(super) async fn call_now<T, F>(&self, what: &str, call: F) -> Result<T, StoreError>
    where
        F: Future<Output = FredResult<T>>,
    {
        self.connected()?;
        let result = match tokio::time::timeout(TIMEOUT, call).await {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(err)) => StoreError::Unavailable(format!("{what}: {err}")),
            Err(_) => StoreError::Unavailable(format!("{what}: no answer within {TIMEOUT:?}")),
        };
        crate::metrics::metrics().redis_error();
        Err(result)
    }

    /// Notes that a presence change reached only the mirror.
    pub(super) fn degraded(&self, what: &str, err: &StoreError) {
        if !self.dirty.swap(true, Ordering::AcqRel) {
            tracing::warn!(operation = what, error = %err, "Redis unreachable: serving this instance's clients from local state until it returns");
        }
    }

    /// A read Redis failed, answered from this instance's own state instead
    /// (partial: other instances' users and rooms are missing). Logged with
    /// the failure, at most once per [`FALLBACK_REPORT_INTERVAL`](super::FALLBACK_REPORT_INTERVAL).
    pub(super) async fn read_locally<T>(
        &self,
        what: &str,
        err: &StoreError,
        local: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        if let Some(unreported) = self.fallbacks.due(std::time::Instant::now()) {
            tracing::warn!(operation = what, error = %err, unreported, "Redis failed a read; answered from this instance's own state");
        }
        local.await
    }

    /// Applies a change Redis accepted to the mirror too. A refusal means the
    /// mirror and Redis disagree; the next resync repairs Redis.
    pub(super) fn mirrored<T>(&self, what: &str, result: Result<T, StoreError>) {
        if let Err(err) = result {
            tracing::error!(operation = what, error = %err, "local mirror disagrees with Redis; scheduling a resync");
            self.dirty.store(true, Ordering::Release);
        }
    }

    /// Redis's answer when it gave one; otherwise the mirror's, noting that
    /// Redis missed a change (`Ok(None)`: Redis did not know the socket).
    pub(super) fn prefer_redis<T>(&self, what: &str, redis: Result<Option<T>, StoreError>, local: T) -> T {
        match redis {
            Ok(Some(answer)) => answer,
            Ok(None) => {
                self.dirty.store(true, Ordering::Release);
                local
            }
            Err(err) => {
                self.degraded(what, &err);
                local
            }
        }
    }
}
