//! Cluster mode: several instances sharing Redis. The Redis store, the
//! socket.io Redis adapter and the maintenance loop (all from
//! [`crate::cluster`]), wired into a [`Wiring`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use socketioxide::handler::ConnectHandler;
use socketioxide_redis::{CustomRedisAdapter, RedisAdapterConfig, RedisAdapterCtr};

use super::{Instance, StartError, Wiring, router, services, socketio_builder};
use crate::chat;
use crate::cluster::{Cluster, Maintenance, PeerCheck, PubSub, RedisTarget, RoutingSwitch, Timing};
use crate::config::Config;
use crate::http::Readiness;
use crate::store::{RedisStore, Stores};

/// How long shutdown waits for disconnect handlers to record their logouts.
const LOGOUT_GRACE: Duration = Duration::from_secs(2);

/// Builds cluster mode. Returns without waiting for Redis: an instance that
/// starts while Redis is down serves its own clients and joins the cluster
/// when Redis answers.
pub async fn wire(config: &Config, instance: &Instance, url: &str) -> Result<Wiring, StartError> {
    let target = RedisTarget::parse(url).map_err(|err| StartError::Redis(err.to_string()))?;
    let (cluster, mut tasks) = Cluster::connect(&target).map_err(|err| StartError::Redis(err.to_string()))?;
    let history_limit = config.history_limit as usize;
    let secret = config.token_secret().map_err(StartError::Config)?.ok_or_else(|| {
        StartError::Config(
            "SECRET (or SECRET_FILE) is required with REDIS_URL: every instance must verify the tokens the others issue"
                .into(),
        )
    })?;
    let store = Arc::new(
        RedisStore::new(cluster.commands(), &config.redis_prefix, instance.id.clone(), history_limit)
            .with_file_ttl(config.file_ttl())
            .with_history_ttl(config.history_ttl())
            .with_heartbeat(config.routed_rooms, Duration::from_millis(config.instance_ttl_ms)),
    );
    let (ghosts, ghost_watch) = chat::Ghosts::channel();
    let (chat, api) = services(config, instance, Stores::of(store.clone()), &secret, ghosts);
    if config.routed_rooms {
        // socketioxide-redis's request channel of the namespace `/`.
        let req_chan = format!("{}-request#/#", config.redis_prefix);
        tasks.extend(cluster.pubsub().route_rooms(req_chan, vec![chat::ONLINE.to_owned()]));
        chat.route_rooms(Arc::new(cluster.pubsub()));
        tracing::info!("routed rooms: room broadcasts on per-room channels");
        if config.redis_prefix.contains('{') {
            // Every room channel would carry the prefix's hash tag: one
            // slot, one master, which is what routing is meant to undo.
            tracing::warn!(
                prefix = %config.redis_prefix,
                "REDIS_PREFIX has a `{{`: on a Redis Cluster every room channel hashes to its tag's one slot"
            );
        }
    }

    let adapter = RedisAdapterCtr::new_with_driver(
        cluster.pubsub(),
        RedisAdapterConfig::new().with_prefix(config.redis_prefix.clone()).with_stream_buffer(8192),
    );
    let (socketio, io) = socketio_builder(config)
        .with_state(chat.clone())
        .with_adapter::<CustomRedisAdapter<_, PubSub>>(adapter)
        .build_svc();
    io.ns("/", chat::on_connect.with(chat::prepare_socket))
        .await
        .map_err(|err| StartError::Redis(format!("socket.io adapter: {err}")))?;

    let readiness = Readiness::new(instance.name.clone(), "redis", false);
    let timing = Timing {
        heartbeat: Duration::from_millis(config.heartbeat_interval_ms),
        ttl: Duration::from_millis(config.instance_ttl_ms),
    };
    tasks.extend(chat::spawn_tasks(&io, &chat));
    tasks.push(store.clone().spawn_key_migration());
    let peers =
        PeerCheck::new(cluster.commands(), &config.redis_prefix, &instance.id, config.parser, timing.ttl);
    let routing = RoutingSwitch::new(config.routed_rooms.then(|| cluster.pubsub()), timing.heartbeat);
    let leaving = peers.clone();
    let maintenance = Maintenance {
        io: io.clone(),
        chat: chat.clone(),
        store: store.clone(),
        cluster: cluster.clone(),
        readiness: readiness.clone(),
        timing,
        peers,
        routing,
        ghosts: ghost_watch,
    }
    .spawn();
    tracing::info!(redis = %cluster.describe(), prefix = %config.redis_prefix, "cluster mode: connecting to Redis in the background");

    let shutdown = Box::pin(async move {
        // A maintenance round would write our sockets, heartbeat and PARSER
        // entry back after we left: stop it, and wait until it has. Its
        // commands already handed to the client go out before ours, on the
        // same connection, so Redis runs them first.
        maintenance.abort();
        if let Err(err) = maintenance.await
            && !err.is_cancelled()
        {
            tracing::warn!(error = %err, "the maintenance task failed");
        }
        // Leave while the namespace is open: once socketioxide closes it,
        // nothing can be broadcast, and the other instances would never hear
        // that our users went offline (most come back through another
        // instance within seconds, and are announced again).
        leaving.withdraw().await;
        match store.purge_instance(store.instance()).await {
            Ok(purge) => {
                for logout in &purge.logouts {
                    chat::announce_logout(&chat, &io, logout, None).await;
                }
                tracing::info!(sockets = purge.logouts.len(), "left the cluster");
            }
            Err(err) => {
                tracing::warn!(error = %err, "could not leave the cluster cleanly; the others will purge us")
            }
        }
        io.close().await;
        // The disconnect handlers empty the local mirror; give them a moment,
        // then remove whatever logged in meanwhile.
        let started = Instant::now();
        while store.local_sockets() > 0 && started.elapsed() < LOGOUT_GRACE {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if let Ok(late) = store.purge_instance(store.instance()).await
            && !late.logouts.is_empty()
        {
            tracing::info!(sockets = late.logouts.len(), "removed sockets that logged in during shutdown");
        }
        cluster.quit().await;
    });
    Ok(Wiring { router: router(config, readiness, api, socketio)?, tasks, shutdown })
}

/// Room channels are the driver's (`ROUTED_ROOMS`).
impl chat::RoomChannels for PubSub {
    fn watch(&self, room: &str) -> Option<tokio::sync::oneshot::Receiver<bool>> {
        self.watch_room(room)
    }

    fn unwatch(&self, room: &str) {
        self.unwatch_room(room);
    }
}
