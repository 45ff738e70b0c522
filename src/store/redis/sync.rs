//! Keeping Redis right about which sockets exist: heartbeats, purging the
//! sockets of dead instances, and rewriting this instance's own part of Redis
//! from its local mirror after an outage.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::time::Duration;

use fred::prelude::{ClientLike, HashesInterface, SetsInterface, Value};

use super::scripts::{parse_socket_id, socket_id};
use super::{RedisStore, reply};
use crate::domain::{RoomName, Username};
use crate::store::{Login, Logout, SocketKey, StoreError};

/// How long a survivor may take to purge a dead instance before another
/// may (it died too, say).
pub const PURGE_LOCK: Duration = Duration::from_secs(15);

/// What purging a dead instance did.
#[derive(Debug, Default)]
pub struct Purge {
    /// One entry per socket removed, to announce like a disconnect.
    pub logouts: Vec<Logout>,
}

/// What a heartbeat found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Heartbeat {
    /// False if Redis did not know this instance (first heartbeat, purged
    /// as dead, or Redis lost its data): a resync is due, and peers may not
    /// have put themselves back yet.
    pub registered: bool,
    /// The other live instances (a heartbeat within the time-to-live) that
    /// do not route room broadcasts: `ROUTED_ROOMS=false`, or a version
    /// whose heartbeat does not say.
    pub unrouted: BTreeSet<String>,
}

/// What a resync changed in Redis, for the others to be told.
#[derive(Debug, Default)]
pub struct Resync {
    /// Logins re-recorded; `first_socket` ones are users coming back online.
    pub logins: Vec<Login>,
    /// Room memberships re-recorded where the user was not in the room before.
    pub joined: Vec<(RoomName, Username)>,
    /// Sockets Redis still had for this instance that no longer exist.
    pub logouts: Vec<Logout>,
    /// Sockets whose name another session took while this instance was cut
    /// off: they must log in again.
    pub conflicts: Vec<SocketKey>,
}

impl RedisStore {
    /// Records that this instance is alive, and whether it routes room
    /// broadcasts, in one step; reads which live peers do not route.
    pub async fn heartbeat(&self) -> Result<Heartbeat, StoreError> {
        let keys =
            vec![self.keys.instances.clone(), self.keys.connections.clone(), self.keys.routing.clone()];
        let routes = if self.routes_rooms { "on" } else { "off" };
        let args = vec![
            self.instance.clone(),
            self.client.id().to_owned(),
            routes.to_owned(),
            self.instance_ttl.as_millis().to_string(),
        ];
        let told: Value = self
            .call_now("heartbeat", self.scripts.heartbeat.evalsha_with_reload(&self.client, keys, args))
            .await?;
        reply::heartbeat(told)
    }

    /// Other instances whose last heartbeat is older than `ttl`.
    pub async fn dead_instances(&self, ttl: Duration) -> Result<Vec<String>, StoreError> {
        let keys = vec![self.keys.instances.clone()];
        let args = vec![ttl.as_millis().to_string()];
        let dead: Value = self
            .call_now("dead instances", self.scripts.dead.evalsha_with_reload(&self.client, keys, args))
            .await?;
        Ok(reply::strings("dead", dead)?.into_iter().filter(|id| *id != self.instance).collect())
    }

    /// The other registered instances, each with the name its command
    /// connections carry (instances that never said are left out).
    pub async fn peer_connections(&self) -> Result<Vec<(String, String)>, StoreError> {
        let named: HashMap<String, String> =
            self.call_now("instance connections", self.client.hgetall(&self.keys.connections)).await?;
        Ok(named.into_iter().filter(|(id, _)| *id != self.instance).collect())
    }

    /// Removes every socket of an instance, then the instance itself (this
    /// instance leaving, at shutdown).
    pub async fn purge_instance(&self, instance: &str) -> Result<Purge, StoreError> {
        let mut purge = Purge::default();
        for socket in self.sockets_of(instance).await? {
            if let Some(logout) = self.purge_socket(&socket).await? {
                purge.logouts.push(logout);
            }
        }
        self.forget_instance(instance).await?;
        Ok(purge)
    }

    /// Claims, or renews, the right to purge a dead instance: true for one
    /// survivor at a time, until it calls [`Self::forget_instance`] or
    /// [`Self::release_purge`] (or [`PURGE_LOCK`] passes, if it died too).
    /// The purger announces every logout before the instance leaves the
    /// registry, so a survivor that waits for that never announces a name's
    /// return before its departure.
    pub async fn claim_purge(&self, instance: &str) -> Result<bool, StoreError> {
        let keys = vec![self.keys.purging(instance)];
        let args = vec![self.instance.clone(), PURGE_LOCK.as_millis().to_string()];
        let claimed: Value = self
            .call_now("claim purge", self.scripts.claim.evalsha_with_reload(&self.client, keys, args))
            .await?;
        reply::yes_or_no("claim", claimed)
    }

    /// Gives up a claim (a purge that failed: the next look tries again).
    pub async fn release_purge(&self, instance: &str) {
        let keys = vec![self.keys.purging(instance)];
        let args = vec![self.instance.clone()];
        let release = self.scripts.delete_if.evalsha_with_reload::<Value, _, _>(&self.client, keys, args);
        let released = self.call("release purge", release).await;
        if let Err(err) = released.and_then(|released| reply::yes_or_no("delete_if", released)) {
            tracing::debug!(%instance, error = %err, "could not release a purge claim; it expires");
        }
    }

    /// The sockets Redis holds for an instance.
    pub async fn sockets_of(&self, instance: &str) -> Result<Vec<SocketKey>, StoreError> {
        let ids: Vec<String> =
            self.call("dead sockets", self.client.smembers(self.keys.instance(instance))).await?;
        Ok(ids.iter().filter_map(|id| parse_socket_id(id)).collect())
    }

    /// Removes one socket of a dead instance; `None` if it was already gone.
    /// Safe to run from several survivors at once: each socket's removal is
    /// atomic and reported to exactly one of them.
    pub async fn purge_socket(&self, socket: &SocketKey) -> Result<Option<Logout>, StoreError> {
        self.redis_logout(socket).await
    }

    /// Removes a purged instance from the registry (heartbeat, connection
    /// name) and releases this instance's claim on it, in one step.
    pub async fn forget_instance(&self, instance: &str) -> Result<(), StoreError> {
        let keys =
            vec![self.keys.instances.clone(), self.keys.connections.clone(), self.keys.purging(instance)];
        let args = vec![instance.to_owned(), self.instance.clone()];
        let forgotten: Value = self
            .call_now("forget instance", self.scripts.forget.evalsha_with_reload(&self.client, keys, args))
            .await?;
        reply::done("forget", forgotten)
    }

    /// True if a presence change reached only the local mirror.
    pub fn needs_resync(&self) -> bool {
        self.dirty.load(Ordering::Acquire)
    }

    /// Makes Redis's record of this instance's sockets match the local
    /// mirror exactly: removes what is gone, re-records what is missing.
    pub async fn resync(&self) -> Result<Resync, StoreError> {
        let _exclusive = self.sync.write().await;
        self.dirty.store(false, Ordering::Release);
        let result = self.resync_locked().await;
        if result.is_err() {
            self.dirty.store(true, Ordering::Release);
        }
        result
    }

    async fn resync_locked(&self) -> Result<Resync, StoreError> {
        let mine = self.keys.instance(&self.instance);
        let recorded: HashSet<String> = self.call("own sockets", self.client.smembers(&mine)).await?;
        let local = self.local.snapshot();
        let live: HashSet<String> = local.iter().map(|s| socket_id(&s.socket)).collect();
        let mut report = Resync::default();

        for gone in recorded.difference(&live).filter_map(|id| parse_socket_id(id)) {
            if let Some(logout) = self.redis_logout(&gone).await? {
                report.logouts.push(logout);
            }
        }
        for socket in &local {
            let id = socket_id(&socket.socket);
            if !recorded.contains(&id) {
                match self.redis_login(&socket.user, &socket.proof, &socket.socket).await? {
                    Ok(login) => report.logins.push(login),
                    Err(StoreError::NameTaken(_)) => {
                        report.conflicts.push(socket.socket.clone());
                        continue;
                    }
                    Err(down @ StoreError::Unavailable(_)) => return Err(down),
                    // One socket Redis refuses must not keep the rest out
                    // (nor keep the instance unready): skip it, loudly.
                    Err(refused) => {
                        tracing::error!(sid = %socket.socket.sid, error = %refused, "resync: Redis refused a socket; skipped");
                        continue;
                    }
                }
            }
            let record: Option<String> =
                self.call("socket record", self.client.hget(&self.keys.sockets, &id)).await?;
            let in_redis: HashSet<RoomName> = record
                .iter()
                .flat_map(|raw| raw.split('\n').skip(1))
                .filter_map(|room| RoomName::parse(room).ok())
                .collect();
            for room in socket.rooms.iter().filter(|room| !in_redis.contains(room)) {
                if let Some(joined) = self.redis_join(room, &socket.socket).await?
                    && joined.first_for_user
                {
                    report.joined.push((room.clone(), socket.user.clone()));
                }
            }
            for room in in_redis.iter().filter(|room| !socket.rooms.contains(room)) {
                self.redis_leave(room, &socket.socket).await?;
            }
        }
        Ok(report)
    }
}
