//! Removing dead instances: their sockets, each user's departure told as
//! its socket goes, then the instance itself. Exactly one survivor does it,
//! whether the heartbeat expired or the instance's connections closed
//! ([`liveness`](super::liveness)); the maintenance loop decides when.

use std::time::Duration;

use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use tokio::time::Instant;

use crate::chat::{self, Chat};
use crate::metrics::metrics;
use crate::store::{RedisStore, StoreError};

/// How often a long purge renews its claim and this instance's heartbeat.
const PURGE_KEEPALIVE: Duration = Duration::from_secs(2);

/// Purges the instances whose heartbeat expired.
pub(super) async fn purge_expired<A: Adapter>(
    io: &SocketIo<A>,
    chat: &Chat,
    store: &RedisStore,
    ttl: Duration,
) {
    match store.dead_instances(ttl).await {
        Ok(dead) => {
            for instance in dead {
                purge(io, chat, store, &instance, "instance stopped heartbeating").await;
            }
        }
        Err(err) => tracing::warn!(error = %err, "could not look for dead instances"),
    }
}

/// Removes a dead instance's sockets, announcing each user's departure as
/// its socket goes, then removes the instance from the registry. Exactly one
/// survivor does it (the others leave it alone); a long purge keeps its
/// claim and this instance's heartbeat alive. True if this one did it.
pub(super) async fn purge<A: Adapter>(
    io: &SocketIo<A>,
    chat: &Chat,
    store: &RedisStore,
    instance: &str,
    why: &str,
) -> bool {
    match store.claim_purge(instance).await {
        Ok(true) => {}
        Ok(false) => return false,
        Err(err) => {
            tracing::warn!(%instance, error = %err, "could not claim the purge of a dead instance");
            return false;
        }
    }
    let removed = async {
        let mut removed = 0;
        let mut kept_alive = Instant::now();
        for socket in store.sockets_of(instance).await? {
            if let Some(logout) = store.purge_socket(&socket).await? {
                chat::announce_logout(chat, io, &logout, None).await;
                removed += 1;
            }
            if kept_alive.elapsed() >= PURGE_KEEPALIVE {
                kept_alive = Instant::now();
                store.claim_purge(instance).await?;
                store.heartbeat().await?;
            }
        }
        Ok::<_, StoreError>(removed)
    };
    match removed.await {
        Ok(removed) => {
            metrics().instance_purged();
            tracing::warn!(%instance, sockets = removed, "{why}: its sockets were removed");
        }
        Err(err) => {
            tracing::warn!(%instance, error = %err, "could not purge a dead instance; the next look tries again");
            store.release_purge(instance).await;
            return false;
        }
    }
    // Only now does it leave the registry: a survivor that waits for that
    // announces a name's return after its departure, never before.
    if let Err(err) = store.forget_instance(instance).await {
        tracing::warn!(%instance, error = %err, "purged a dead instance but could not remove it from the registry");
    }
    true
}
