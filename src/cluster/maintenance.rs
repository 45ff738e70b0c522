//! The maintenance loop of a clustered instance: every heartbeat interval
//! (and at once after Redis reconnects) it
//! 1. reports readiness (Redis reachable and this instance's presence back in
//!    it) and logs connection changes,
//! 2. renews this instance's heartbeat,
//! 3. resyncs this instance's presence if Redis lost it (outage, or we were
//!    taken for dead) and tells everyone what came back,
//! 4. flushes history written while Redis was away,
//! 5. purges instances whose heartbeat expired, announcing their users' departure,
//! 6. publishes this instance's PARSER and checks the live peers use the same;
//!
//! and twice a second it looks at the other instances' Redis connections
//! ([`liveness`](super::liveness)): an instance whose process died is purged
//! about a second later, and a login that met a name it held gets it.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use fred::prelude::EventInterface;
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use socketioxide::socket::Sid;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, Interval};

use super::liveness::{self, Liveness, LivenessError};
use super::{Cluster, ParserCheck};
use crate::chat::{self, Chat, ChatError, ReapRequest};
use crate::http::Readiness;
use crate::store::{RedisStore, Resync};

/// How often the connection state is looked at (readiness, logs).
const STATE_CHECK: Duration = Duration::from_millis(250);
/// How often the other instances' connections are looked at, when nobody
/// is suspect (every [`STATE_CHECK`] while someone is).
const SWEEP: Duration = Duration::from_millis(500);

/// How often instances prove they are alive, and how long silence means dead.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// Interval between heartbeats (and maintenance rounds).
    pub heartbeat: Duration,
    /// An instance silent for this long is purged by the others.
    pub ttl: Duration,
}

/// What the maintenance loop works with.
pub struct Maintenance<A: Adapter> {
    /// To announce what purges and resyncs change.
    pub io: SocketIo<A>,
    /// The chat state the announcements go through.
    pub chat: Chat,
    /// Heartbeats, purges, resyncs.
    pub store: Arc<RedisStore>,
    /// The connections, watched for readiness.
    pub cluster: Cluster,
    /// What `/readyz` answers.
    pub readiness: Readiness,
    /// Heartbeat interval and time-to-live.
    pub timing: Timing,
    /// The PARSER registry.
    pub parsers: ParserCheck,
    /// Logins that met a taken name, asking for a look at the others now.
    pub reap_requests: mpsc::Receiver<ReapRequest>,
}

impl<A: Adapter> Maintenance<A> {
    /// Starts the loop; it runs until aborted.
    pub fn spawn(self) -> JoinHandle<()> {
        tokio::spawn(self.run())
    }

    async fn run(self) {
        let Self { io, chat, store, cluster, readiness, timing, mut parsers, mut reap_requests } = self;
        let mut reconnects = cluster.commands().reconnect_rx();
        let mut checks = tokio::time::interval(STATE_CHECK);
        checks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut was_up: Option<bool> = None;
        let mut last_round: Option<Instant> = None;
        // Ready only once a round has put this instance's presence back into
        // Redis: until then other instances would not see its users. Any
        // reconnect forces a resync (Redis may be back from an old snapshot).
        let mut in_sync = false;
        let mut liveness = Liveness::new(cluster.commands());
        let mut connected_since: Option<Instant> = None;
        let mut last_sweep: Option<Instant> = None;
        let mut waiting: Vec<ReapRequest> = Vec::new();
        let mut watching = false;
        loop {
            tokio::select! {
                _ = checks.tick() => {}
                _ = reconnects.recv() => {
                    crate::metrics::metrics().redis_reconnect();
                    last_round = None;
                    in_sync = false;
                    connected_since = None;
                    liveness.reset();
                }
                Some(request) = reap_requests.recv() => waiting.push(request),
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
            connected_since = if up { Some(connected_since.unwrap_or_else(Instant::now)) } else { None };
            let mut purged = 0;
            let due = last_round.is_none_or(|at| at.elapsed() >= timing.heartbeat);
            if due && store.is_connected() {
                let work = async {
                    // A failed heartbeat alone leaves the verdict as it was.
                    let synced = round(&io, &chat, &store, !in_sync).await?;
                    let purged = purge_expired(&io, &chat, &store, timing.ttl).await;
                    parsers.run().await;
                    Some((synced, purged))
                };
                if let Some((synced, expired)) =
                    while_connected(work, &mut checks, &cluster, &readiness).await
                {
                    in_sync = synced;
                    purged += expired;
                }
                last_round = Some(Instant::now());
            }
            // The connection as it is now, not as it was before the round.
            readiness.set_ready(in_sync && cluster.is_connected());

            // Dead instances, by their connections: every SWEEP, and
            // sooner while someone is suspect or a login waits.
            waiting.retain(|request| !request.is_closed());
            let settled = connected_since.is_some_and(|at| at.elapsed() >= liveness::SETTLE);
            if settled && !watching {
                tracing::info!("connection to Redis settled: watching the other instances' connections");
            }
            watching = settled;
            let gap = if waiting.is_empty() && !liveness.has_suspects() { SWEEP } else { STATE_CHECK };
            let verdict =
                if settled && store.is_connected() && last_sweep.is_none_or(|at| at.elapsed() >= gap) {
                    last_sweep = Some(Instant::now());
                    let work = sweep(&io, &chat, &store, &mut liveness);
                    while_connected(work, &mut checks, &cluster, &readiness).await
                } else {
                    None
                };
            purged += verdict.map_or(0, |(dead, _)| dead);
            // Logins waiting get their answer once there is one: some
            // instance is gone (purged here or elsewhere), or a look found
            // nobody suspect.
            if purged > 0 || matches!(verdict, Some((_, 0))) {
                for request in waiting.drain(..) {
                    let _ = request.send(());
                }
            }
        }
    }
}

/// Awaits `work`, which may wait on Redis for seconds (a timeout per call),
/// while still turning readiness off the moment the connection drops.
async fn while_connected<T>(
    work: impl Future<Output = T>,
    checks: &mut Interval,
    cluster: &Cluster,
    readiness: &Readiness,
) -> T {
    tokio::pin!(work);
    loop {
        tokio::select! {
            result = &mut work => return result,
            _ = checks.tick() => if !cluster.is_connected() { readiness.set_ready(false) },
        }
    }
}

/// One look at the other instances' connections; purges those confirmed
/// dead. Returns (instances gone: purged here or by another instance,
/// instances still suspect), or `None` when there is no verdict.
async fn sweep<A: Adapter>(
    io: &SocketIo<A>,
    chat: &Chat,
    store: &RedisStore,
    liveness: &mut Liveness,
) -> Option<(usize, usize)> {
    let peers = match store.peer_connections().await {
        Ok(peers) => peers,
        Err(err) => {
            tracing::debug!(error = %err, "could not read the other instances' connection names");
            return None;
        }
    };
    let verdict = match liveness.sweep(&peers).await {
        Ok(verdict) => verdict,
        Err(err) => {
            liveness_unavailable(&err);
            return None;
        }
    };
    let mut gone = verdict.vanished;
    for instance in &verdict.dead {
        if purge(io, chat, store, instance, "its Redis connections closed: the process is gone").await {
            gone += 1;
        }
    }
    Some((gone, verdict.suspects))
}

/// Logs, at most once a minute, that connections could not be looked at
/// (an ACL without CLIENT LIST, say): heartbeats alone tell then.
fn liveness_unavailable(err: &LivenessError) {
    static LAST: std::sync::Mutex<Option<std::time::Instant>> = std::sync::Mutex::new(None);
    let mut last = LAST.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if last.is_none_or(|at| at.elapsed() >= Duration::from_secs(60)) {
        *last = Some(std::time::Instant::now());
        tracing::warn!(error = %err, "cannot see the other instances' connections: a dead instance is noticed by its heartbeat only (INSTANCE_TTL_MS)");
    }
}

/// Purges the instances whose heartbeat expired. Returns how many.
async fn purge_expired<A: Adapter>(
    io: &SocketIo<A>,
    chat: &Chat,
    store: &RedisStore,
    ttl: Duration,
) -> usize {
    let dead = match store.dead_instances(ttl).await {
        Ok(dead) => dead,
        Err(err) => {
            tracing::warn!(error = %err, "could not look for dead instances");
            return 0;
        }
    };
    let mut purged = 0;
    for instance in dead {
        if purge(io, chat, store, &instance, "instance stopped heartbeating").await {
            purged += 1;
        }
    }
    purged
}

/// Removes a dead instance's sockets, announcing their users' departure.
async fn purge<A: Adapter>(
    io: &SocketIo<A>,
    chat: &Chat,
    store: &RedisStore,
    instance: &str,
    why: &str,
) -> bool {
    match store.purge_instance(instance).await {
        Ok(purge) => {
            crate::metrics::metrics().instance_purged();
            tracing::warn!(%instance, sockets = purge.logouts.len(), "{why}: its sockets were removed");
            for logout in &purge.logouts {
                chat::announce_logout(chat, io, logout, None).await;
            }
            true
        }
        Err(err) => {
            tracing::warn!(%instance, error = %err, "could not purge a dead instance");
            false
        }
    }
}

/// One maintenance round (all but purging); each step logs its own failure
/// and the next round retries. `force` resyncs even if Redis seems to know
/// this instance. Returns whether this instance's presence is in Redis, or
/// `None` if the heartbeat failed and that could not be checked.
async fn round<A: Adapter>(io: &SocketIo<A>, chat: &Chat, store: &RedisStore, force: bool) -> Option<bool> {
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
