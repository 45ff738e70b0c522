//! The maintenance loop of a clustered instance: every heartbeat interval
//! (and at once after Redis reconnects) it
//! 1. reports readiness (Redis reachable and this instance's presence back in
//!    it) and logs connection changes,
//! 2. renews this instance's heartbeat,
//! 3. resyncs this instance's presence if Redis lost it (outage, or we were
//!    taken for dead) and tells everyone what came back,
//! 4. flushes history written while Redis was away,
//! 5. purges instances whose heartbeat expired, announcing their users' departure,
//! 6. publishes this instance's PARSER and checks the live peers use the same.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use fred::prelude::EventInterface;
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use socketioxide::socket::Sid;
use tokio::task::JoinHandle;

use super::{Cluster, ParserCheck};
use crate::chat::{self, Chat, ChatError};
use crate::http::Readiness;
use crate::store::{RedisStore, Resync};

/// How often the connection state is looked at (readiness, logs).
const STATE_CHECK: Duration = Duration::from_millis(250);

/// How often instances prove they are alive, and how long silence means dead.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// Interval between heartbeats (and maintenance rounds).
    pub heartbeat: Duration,
    /// An instance silent for this long is purged by the others.
    pub ttl: Duration,
}

/// Starts the loop; it runs until aborted.
pub fn spawn_maintenance<A: Adapter>(
    io: SocketIo<A>,
    chat: Chat,
    store: Arc<RedisStore>,
    cluster: Cluster,
    readiness: Readiness,
    timing: Timing,
    mut parsers: ParserCheck,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut reconnects = cluster.commands().reconnect_rx();
        let mut checks = tokio::time::interval(STATE_CHECK);
        checks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut was_up: Option<bool> = None;
        let mut last_round: Option<tokio::time::Instant> = None;
        // Ready only once a round has put this instance's presence back into
        // Redis: until then other instances would not see its users. Any
        // reconnect forces a resync (Redis may be back from an old snapshot).
        let mut in_sync = false;
        loop {
            tokio::select! {
                _ = checks.tick() => {}
                _ = reconnects.recv() => {
                    crate::metrics::metrics().redis_reconnect();
                    last_round = None;
                    in_sync = false;
                }
            }
            let up = cluster.is_connected();
            match (was_up, up) {
                (Some(false) | None, true) => {
                    tracing::info!(redis = %cluster.describe(), "Redis reachable: cluster mode active");
                    last_round = None;
                    in_sync = false;
                }
                (Some(true), false) => {
                    tracing::warn!(redis = %cluster.describe(), "Redis unreachable: serving this instance's clients only, retrying");
                }
                (None, false) => tracing::info!(redis = %cluster.describe(), "waiting for Redis"),
                _ => {}
            }
            was_up = Some(up);
            let due = last_round.is_none_or(|at| at.elapsed() >= timing.heartbeat);
            if due && store.is_connected() {
                // A round can wait on Redis for seconds (a timeout per call):
                // a connection lost meanwhile must still turn readiness off.
                let work = round(&io, &chat, &store, timing.ttl, !in_sync);
                tokio::pin!(work);
                let result = loop {
                    tokio::select! {
                        result = &mut work => break result,
                        _ = checks.tick() => if !cluster.is_connected() { readiness.set_ready(false) },
                    }
                };
                // A failed heartbeat alone leaves the verdict as it was.
                if let Some(synced) = result {
                    in_sync = synced;
                    parsers.run().await;
                }
                last_round = Some(tokio::time::Instant::now());
            }
            // The connection as it is now, not as it was before the round.
            readiness.set_ready(in_sync && cluster.is_connected());
        }
    })
}

/// One maintenance round; each step logs its own failure and the next round
/// retries. `force` resyncs even if Redis seems to know this instance.
/// Returns whether this instance's presence is in Redis, or `None` if the
/// heartbeat failed and that could not be checked.
async fn round<A: Adapter>(
    io: &SocketIo<A>,
    chat: &Chat,
    store: &RedisStore,
    ttl: Duration,
    force: bool,
) -> Option<bool> {
    let registered = match store.heartbeat().await {
        Ok(registered) => registered,
        Err(err) => {
            tracing::warn!(error = %err, "heartbeat failed");
            return None;
        }
    };
    let mut in_sync = true;
    if force || !registered || store.needs_resync() {
        match store.resync().await {
            Ok(report) => announce_resync(io, chat, report).await,
            Err(err) => {
                tracing::warn!(error = %err, "resync failed; retrying next round");
                in_sync = false;
            }
        }
    }
    let unchecked = chat::recheck_guests(io, chat).await;
    if unchecked > 0 {
        tracing::warn!(unchecked, "guests still not checked against the accounts");
    }
    let pending = store.pending_writes();
    if pending > 0 {
        let flushed = store.flush_pending().await;
        tracing::info!(flushed, left = pending - flushed, "history written during the outage saved to Redis");
    }
    let dead = match store.dead_instances(ttl).await {
        Ok(dead) => dead,
        Err(err) => {
            tracing::warn!(error = %err, "could not look for dead instances");
            return Some(in_sync);
        }
    };
    for instance in dead {
        match store.purge_instance(&instance).await {
            Ok(purge) => {
                tracing::warn!(%instance, sockets = purge.logouts.len(), "instance stopped heartbeating: its sockets were removed");
                for logout in &purge.logouts {
                    chat::announce_logout(chat, io, logout, None).await;
                }
            }
            Err(err) => tracing::warn!(%instance, error = %err, "could not purge a dead instance"),
        }
    }
    Some(in_sync)
}

/// Tells the deployment what a resync re-recorded, and signs out sockets
/// whose name was taken elsewhere meanwhile.
async fn announce_resync<A: Adapter>(io: &SocketIo<A>, chat: &Chat, report: Resync) {
    if report.logins.is_empty()
        && report.joined.is_empty()
        && report.logouts.is_empty()
        && report.conflicts.is_empty()
    {
        return tracing::debug!("presence resync: Redis was already up to date");
    }
    tracing::info!(
        logins = report.logins.len(),
        joins = report.joined.len(),
        stale = report.logouts.len(),
        conflicts = report.conflicts.len(),
        "presence resynced with Redis"
    );
    for login in report.logins.iter().filter(|login| login.first_socket) {
        chat::announce_login(chat, io, &login.user, login.num_users).await;
    }
    for (room, user) in &report.joined {
        chat::announce_member_joined(io, room, user).await;
    }
    for logout in &report.logouts {
        chat::announce_logout(chat, io, logout, None).await;
    }
    for socket in &report.conflicts {
        let Some(socket) =
            Sid::from_str(&socket.sid).ok().and_then(|sid| chat::namespace(io)?.get_socket(sid))
        else {
            continue;
        };
        let body = ChatError::NameTaken("your name".into()).body();
        tracing::warn!(sid = %socket.id, "name taken elsewhere during the outage: signing the socket out");
        let _ = socket.emit("chat error", &body);
        let _ = socket.disconnect();
    }
    chat.presence_changed();
}
