//! The maintenance loop of a clustered instance: every heartbeat interval
//! (and at once after Redis reconnects) it
//! 1. reports readiness (Redis reachable and this instance's presence back in
//!    it) and logs connection changes,
//! 2. renews this instance's heartbeat, which says whether it routes rooms,
//!    and uses room channels only while every live peer routes
//!    ([`RoutingSwitch`]),
//! 3. resyncs this instance's presence if Redis lost it (outage, or we were
//!    taken for dead) and tells everyone what came back,
//! 4. flushes history written while Redis was away,
//! 5. purges instances whose heartbeat expired ([`purge`](super::purge)),
//! 6. publishes this instance's PARSER and checks the live peers use the
//!    same ([`PeerCheck`]);
//!
//! and twice a second it looks at the other instances' Redis connections
//! ([`liveness`](super::liveness)): an instance whose process died is purged
//! about 1.5 s later, and a login that met a name it held gets it.

use std::collections::HashSet;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use fred::prelude::{EventInterface, Server};
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use socketioxide::socket::Sid;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tokio::time::{Instant, Interval};

use super::liveness::{Liveness, LivenessError};
use super::purge::{purge, purge_expired};
use super::{Cluster, PeerCheck, RoutingSwitch};
use crate::chat::{self, Chat, ChatError, GhostWatch};
use crate::http::Readiness;
use crate::store::{RedisStore, Resync};

/// How often the connection state is looked at (readiness, logs).
const STATE_CHECK: Duration = Duration::from_millis(250);
/// How often the other instances' connections are looked at, when nobody
/// is suspect (every [`STATE_CHECK`] while someone is, or a login waits).
const LOOK: Duration = Duration::from_millis(500);

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
    pub peers: PeerCheck,
    /// Room channels on or off, as the heartbeats find the peers routing.
    pub routing: RoutingSwitch,
    /// Logins that met a taken name, asking for a look at the others now.
    pub ghosts: GhostWatch,
}

/// Where the loop stands between two turns.
#[derive(Default)]
struct Turns {
    /// The connection at the last turn (`None` before the first).
    was_up: Option<bool>,
    last_round: Option<Instant>,
    /// Ready only once a round has put this instance's presence back into
    /// Redis: until then other instances would not see its users. Any
    /// reconnect forces a resync (Redis may be back from an old snapshot).
    in_sync: bool,
    last_look: Option<Instant>,
    /// A login asked for a look that has not settled yet.
    asked: bool,
    /// Other instances watched, as last logged.
    watched: usize,
}

impl Turns {
    /// The connection broke or came back: resync, and forget who was seen.
    fn reconnected(&mut self, liveness: &mut Liveness) {
        self.last_round = None;
        self.in_sync = false;
        liveness.reset();
    }
}

impl<A: Adapter> Maintenance<A> {
    /// Starts the loop; it runs until aborted.
    pub fn spawn(self) -> JoinHandle<()> {
        tokio::spawn(self.run())
    }

    async fn run(mut self) {
        let mut reconnects = self.cluster.commands().reconnect_rx();
        let mut checks = tokio::time::interval(STATE_CHECK);
        checks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut liveness =
            Liveness::new(self.cluster.commands()).on_sentinel_primary(self.cluster.sentinel_primary());
        let mut turns = Turns::default();
        loop {
            tokio::select! {
                _ = checks.tick() => {}
                _ = reconnects.recv() => {
                    crate::metrics::metrics().redis_reconnect();
                    turns.reconnected(&mut liveness);
                }
                () = self.ghosts.asked() => turns.asked = true,
            }
            let up = self.cluster.is_connected();
            self.log_connection(&mut turns, &mut liveness, up);

            let due = turns.last_round.is_none_or(|at| at.elapsed() >= self.timing.heartbeat);
            if due && self.store.is_connected() {
                let work = async {
                    // A failed heartbeat alone leaves the verdict as it was.
                    let synced =
                        round(&self.io, &self.chat, &self.store, &mut self.routing, !turns.in_sync).await?;
                    purge_expired(&self.io, &self.chat, &self.store, self.timing.ttl).await;
                    self.peers.run().await;
                    Some(synced)
                };
                if let Some(synced) = while_connected(work, &mut checks, &self.cluster, &self.readiness).await
                {
                    turns.in_sync = synced;
                }
                turns.last_round = Some(Instant::now());
            }
            // The connection as it is now, not as it was before the round.
            self.readiness.set_ready(turns.in_sync && self.cluster.is_connected());

            // Dead instances, by their connections: every LOOK, and sooner
            // while someone is suspect or a login waits.
            let gap = if turns.asked || liveness.has_suspects() { STATE_CHECK } else { LOOK };
            if up && self.store.is_connected() && turns.last_look.is_none_or(|at| at.elapsed() >= gap) {
                turns.last_look = Some(Instant::now());
                let number = self.ghosts.look_started();
                let work = self.look(&mut liveness, &reconnects);
                if while_connected(work, &mut checks, &self.cluster, &self.readiness).await {
                    self.ghosts.settled(number);
                    turns.asked = false;
                }
                if liveness.watched() != turns.watched {
                    turns.watched = liveness.watched();
                    tracing::info!(instances = turns.watched, "watching the other instances' connections");
                }
            }
        }
    }

    /// Logs connection changes; a change resets what depends on the connection.
    fn log_connection(&self, turns: &mut Turns, liveness: &mut Liveness, up: bool) {
        match (turns.was_up, up) {
            (Some(false) | None, true) => {
                tracing::info!(redis = %self.cluster.describe(), "Redis reachable: cluster mode active");
                turns.reconnected(liveness);
            }
            (Some(true), false) => {
                tracing::warn!(redis = %self.cluster.describe(), "Redis unreachable: serving this instance's clients only, retrying");
                turns.reconnected(liveness);
            }
            (None, false) => tracing::info!(redis = %self.cluster.describe(), "waiting for Redis"),
            _ => {}
        }
        turns.was_up = Some(up);
        if !up {
            self.ghosts.set_watching(false);
        }
    }

    /// One look at the other instances' connections: purges those found
    /// dead. True when nobody is left suspect (every dead instance purged
    /// and announced, by this instance or another).
    async fn look(&self, liveness: &mut Liveness, reconnects: &broadcast::Receiver<Server>) -> bool {
        let peers = match self.store.peer_connections().await {
            Ok(peers) => peers,
            Err(err) => {
                tracing::debug!(error = %err, "could not read the other instances' connection names");
                return false;
            }
        };
        let open = if peers.is_empty() { Ok(HashSet::new()) } else { liveness.look().await };
        let open = match open {
            Ok(open) => open,
            Err(err) => {
                self.cannot_look(liveness, &err);
                return false;
            }
        };
        if !reconnects.is_empty() {
            // This instance's connection broke meanwhile: no verdict.
            return false;
        }
        self.ghosts.set_watching(true);
        let verdict = liveness.judge(&peers, &open, Instant::now());
        let mut unresolved = verdict.suspects;
        for instance in &verdict.dead {
            let why = "its Redis connections closed: the process is gone";
            if !purge(&self.io, &self.chat, &self.store, instance, why).await {
                unresolved += 1;
            }
        }
        unresolved == 0
    }

    /// Logs why connections could not be looked at: at once if Redis refuses
    /// `CLIENT LIST` (then at most once a minute), at debug level otherwise
    /// (a node failing over). Logins stop waiting for looks meanwhile.
    fn cannot_look(&self, liveness: &mut Liveness, err: &LivenessError) {
        self.ghosts.set_watching(false);
        match err {
            LivenessError::Refused { .. } if liveness.report_refusal() => tracing::warn!(
                error = %err,
                "cannot see the other instances' connections: a dead instance is noticed by its heartbeat only (INSTANCE_TTL_MS); grant +client|list"
            ),
            LivenessError::Refused { .. } => {}
            LivenessError::Unanswered { .. } => {
                tracing::debug!(error = %err, "no look at the other instances' connections this time")
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

/// One maintenance round (all but purging and the PARSER check); each step
/// logs its own failure and the next round retries. The heartbeat's answer
/// sets `routing` at once, before a resync that may be long. `force`
/// resyncs even if Redis seems to know this instance. Returns whether this
/// instance's presence is in Redis, or `None` if the heartbeat failed and
/// that could not be checked (`routing` then stays as it was).
async fn round<A: Adapter>(
    io: &SocketIo<A>,
    chat: &Chat,
    store: &RedisStore,
    routing: &mut RoutingSwitch,
    force: bool,
) -> Option<bool> {
    let heartbeat = match store.heartbeat().await {
        Ok(heartbeat) => heartbeat,
        Err(err) => {
            tracing::warn!(error = %err, "heartbeat failed");
            return None;
        }
    };
    routing.follow(&heartbeat);
    let mut in_sync = true;
    if force || !heartbeat.registered || store.needs_resync() {
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
        tracing::warn!(sid = %socket.id, "name taken elsewhere during the outage: signing the socket out");
        chat::sign_out(&socket, &ChatError::NameTaken("your name".into()));
    }
    chat.presence_changed();
}
