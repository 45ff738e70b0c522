//! [`PubSub`]: the socketioxide-redis driver chatwire uses, over fred's
//! sharded pub/sub (SPUBLISH / SSUBSCRIBE).
//!
//! It differs from socketioxide-redis's own fred driver where failures are
//! concerned:
//! - `publish` never waits on Redis. The adapter publishes *before* it
//!   delivers locally and skips local delivery if the publish fails; here a
//!   publish is queued (in order) and reported as sent, so clients on this
//!   instance are served at once, with or without Redis. Messages that cannot
//!   be published are counted and logged, never dropped silently.
//! - Subscriptions are remembered and made again after every reconnect:
//!   fred only restores them if asked to, and the adapter never asks.
//! - Nothing blocks while Redis is down: subscribing records the channel for
//!   later, and every call is bounded by a timeout.
//! - With `ROUTED_ROOMS`, room broadcasts go on per-room channels
//!   ([`super::routing`]), which this instance subscribes while it has
//!   members in the room ([`PubSub::route_rooms`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use fred::clients::SubscriberClient;
use fred::prelude::{ClientLike, EventInterface, PubsubInterface};
use socketioxide_redis::drivers::{ChanItem, Driver, MessageStream};
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;

use super::routing::{Received, Routing};

/// Longest a pub/sub call may take.
const TIMEOUT: Duration = Duration::from_secs(2);
/// Publishes queued for Redis before new ones are counted as lost.
const OUTBOX: usize = 16_384;
/// How often the pub/sub connection is pinged.
const PING_INTERVAL: Duration = Duration::from_secs(2);
/// Publishes sent to Redis together (in order) by the publisher task.
const BATCH: usize = 128;

/// Why a pub/sub call failed.
#[derive(Debug, thiserror::Error)]
#[error("redis pub/sub: {0}")]
pub struct PubSubError(String);

/// Sharded pub/sub for the socket.io adapter. Clones share one connection.
#[derive(Clone)]
pub struct PubSub(Arc<Inner>);

struct Inner {
    client: SubscriberClient,
    /// Subscribed channels and where their messages go.
    handlers: RwLock<HashMap<String, mpsc::Sender<ChanItem>>>,
    outbox: mpsc::Sender<(String, Vec<u8>)>,
    /// Messages delivered only locally since the last report.
    unpublished: AtomicU64,
    /// With `ROUTED_ROOMS`: how room broadcasts are routed.
    routing: OnceLock<Routing>,
}

impl PubSub {
    /// Starts the connection (in the background, retrying until Redis
    /// answers) and the tasks that publish, dispatch and resubscribe.
    pub fn start(client: SubscriberClient) -> (Self, Vec<JoinHandle<()>>) {
        let (outbox, queued) = mpsc::channel(OUTBOX);
        let inner = Arc::new(Inner {
            client,
            handlers: RwLock::default(),
            outbox,
            unpublished: AtomicU64::new(0),
            routing: OnceLock::new(),
        });
        let tasks = vec![
            tokio::spawn(dispatch(inner.client.message_rx(), inner.clone())),
            tokio::spawn(resubscribe_on_reconnect(inner.clone())),
            tokio::spawn(publish_in_order(queued, inner.clone())),
            tokio::spawn(ping(inner.clone())),
        ];
        drop(inner.client.connect());
        (Self(inner), tasks)
    }

    /// True while the pub/sub connection is up.
    pub fn is_connected(&self) -> bool {
        self.0.client.is_connected()
    }

    /// Routes the broadcasts of the namespace whose request channel is
    /// `req_chan` by room, except those to a `wide` room. Returns the task
    /// that (un)subscribes room channels; `None` if already routing.
    pub fn route_rooms(&self, req_chan: String, wide: Vec<String>) -> Option<JoinHandle<()>> {
        let (routing, task) = Routing::start(self.0.client.clone(), req_chan, wide);
        match self.0.routing.set(routing) {
            Ok(()) => Some(task),
            Err(_) => {
                task.abort();
                None
            }
        }
    }

    /// If rooms are routed: publishes room broadcasts on room channels
    /// (`true`) or on the namespace channel (`false`, until the heartbeats
    /// find every live instance routing: [`super::RoutingSwitch`]). Room
    /// channels stay subscribed either way.
    pub fn route_room_broadcasts(&self, on: bool) {
        if let Some(routing) = self.0.routing.get() {
            routing.set_active(on);
        }
    }

    /// Subscribes `room`'s channel, if rooms are routed; the receiver
    /// answers whether Redis confirmed it.
    pub fn watch_room(&self, room: &str) -> Option<tokio::sync::oneshot::Receiver<bool>> {
        self.0.routing.get().and_then(|routing| routing.watch(room))
    }

    /// Unsubscribes `room`'s channel, if rooms are routed.
    pub fn unwatch_room(&self, room: &str) {
        if let Some(routing) = self.0.routing.get() {
            routing.unwatch(room);
        }
    }

    /// Closes the connection.
    pub async fn quit(&self) {
        let _ = tokio::time::timeout(TIMEOUT, self.0.client.quit()).await;
    }
}

impl Inner {
    fn handlers(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, mpsc::Sender<ChanItem>>> {
        self.handlers.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn handlers_mut(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, mpsc::Sender<ChanItem>>> {
        self.handlers.write().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Counts `copies` publishes (a room-routed broadcast has one per room)
    /// that reached only this instance; the first of an outage is logged at
    /// once, the total when Redis is back.
    fn unpublished(&self, copies: u64, cause: &str) {
        crate::metrics::metrics().pubsub_unpublished(copies);
        if self.unpublished.fetch_add(copies, Ordering::Relaxed) == 0 {
            tracing::warn!(
                cause,
                "cross-instance delivery paused: messages reach this instance's clients only"
            );
        }
    }

    /// Subscribes the adapter's channels again (room channels' own task
    /// sees the reconnect itself).
    async fn subscribe_all(&self) {
        let channels: Vec<String> = self.handlers().keys().cloned().collect();
        for channel in channels {
            match tokio::time::timeout(TIMEOUT, self.client.ssubscribe(channel.clone())).await {
                Ok(Ok(())) => tracing::debug!(channel, "subscribed"),
                Ok(Err(err)) => {
                    tracing::warn!(channel, error = %err, "could not subscribe; retrying on the next reconnect")
                }
                Err(_) => tracing::warn!(channel, "subscribe timed out; retrying on the next reconnect"),
            }
        }
    }
}

impl Driver for PubSub {
    type Error = PubSubError;

    async fn publish(&self, chan: String, val: Vec<u8>) -> Result<(), Self::Error> {
        let copies = match self.0.routing.get() {
            Some(routing) => routing.fan_out(chan, val),
            None => vec![(chan, val)],
        };
        if !self.0.client.is_connected() {
            self.0.unpublished(copies.len() as u64, "Redis is not connected");
            return Ok(());
        }
        for copy in copies {
            if self.0.outbox.try_send(copy).is_err() {
                self.0.unpublished(1, "publish queue full");
            }
        }
        // Always Ok: the adapter skips local delivery when a publish fails.
        Ok(())
    }

    async fn subscribe(&self, chan: String, size: usize) -> Result<MessageStream<ChanItem>, Self::Error> {
        let (tx, rx) = mpsc::channel(size);
        self.0.handlers_mut().insert(chan.clone(), tx);
        if self.0.client.is_connected() {
            match tokio::time::timeout(TIMEOUT, self.0.client.ssubscribe(chan.clone())).await {
                Ok(Ok(())) => {}
                Ok(Err(err)) => {
                    tracing::warn!(channel = chan, error = %err, "subscribe failed; retrying on reconnect")
                }
                Err(_) => tracing::warn!(channel = chan, "subscribe timed out; retrying on reconnect"),
            }
        }
        Ok(MessageStream::new(rx))
    }

    async fn unsubscribe(&self, chan: String) -> Result<(), Self::Error> {
        self.0.handlers_mut().remove(&chan);
        if self.0.client.is_connected() {
            let _ = tokio::time::timeout(TIMEOUT, self.0.client.sunsubscribe(chan)).await;
        }
        Ok(())
    }

    async fn num_serv(&self, chan: &str) -> Result<u16, Self::Error> {
        if !self.0.client.is_connected() {
            return Err(PubSubError("Redis is not connected".into()));
        }
        let reply = tokio::time::timeout(TIMEOUT, self.0.client.pubsub_shardnumsub::<(String, u16), _>(chan))
            .await
            .map_err(|_| PubSubError("PUBSUB SHARDNUMSUB timed out".into()))?
            .map_err(|err| PubSubError(err.to_string()))?;
        Ok(reply.1)
    }
}

/// Routes received messages to the adapter's streams.
async fn dispatch(mut messages: broadcast::Receiver<fred::types::Message>, inner: Arc<Inner>) {
    loop {
        match messages.recv().await {
            Ok(message) => {
                let channel = message.channel.to_string();
                let Some(data) = message.value.into_owned_bytes() else { continue };
                let routed = inner.routing.get().filter(|routing| routing.is_room_channel(&channel));
                let handler = inner.handlers().get(&channel).cloned();
                let kind = match (&handler, routed) {
                    (None, Some(_)) => "room",
                    _ if channel.contains("-response#") => "response",
                    _ => "namespace",
                };
                crate::metrics::metrics().pubsub_received(kind, channel.len() + data.len());
                let handler = match (handler, inner.routing.get()) {
                    // This instance's own broadcasts come back on the
                    // namespace channel too: dropped here, not decoded.
                    (Some(handler), Some(routing)) if channel == routing.req_chan() => {
                        if routing.receive(&data, false) == Received::Own {
                            continue;
                        }
                        Some(handler)
                    }
                    (Some(handler), _) => Some(handler),
                    (None, Some(routing)) if routed.is_some() => match routing.receive(&data, true) {
                        Received::New => inner.handlers().get(routing.req_chan()).cloned(),
                        Received::Duplicate => {
                            crate::metrics::metrics().pubsub_duplicate();
                            continue;
                        }
                        Received::Own => continue,
                    },
                    (None, _) => None,
                };
                match handler {
                    Some(tx) => {
                        if let Err(err) = tx.try_send((channel.clone(), data)) {
                            tracing::warn!(channel, error = %err, "adapter is not keeping up: a cluster message was dropped");
                        }
                    }
                    None => tracing::debug!(channel, "message on a channel with no handler"),
                }
            }
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                tracing::warn!(missed, "pub/sub receiver lagged: cluster messages were dropped");
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// After every (re)connection: subscribe again, and report what was missed.
async fn resubscribe_on_reconnect(inner: Arc<Inner>) {
    let mut reconnects = inner.client.reconnect_rx();
    loop {
        match reconnects.recv().await {
            Ok(server) => {
                let missed = inner.unpublished.swap(0, Ordering::Relaxed);
                tracing::info!(%server, missed, "pub/sub connected; restoring subscriptions");
                if missed > 0 {
                    tracing::warn!(
                        missed,
                        "messages sent while Redis was unreachable reached this instance's clients only"
                    );
                }
                inner.subscribe_all().await;
            }
            Err(broadcast::error::RecvError::Lagged(_)) => inner.subscribe_all().await,
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// Pings on the pub/sub connection, so a frozen Redis is noticed there too:
/// fred's unresponsiveness check ignores pub/sub traffic.
async fn ping(inner: Arc<Inner>) {
    let mut ticks = tokio::time::interval(PING_INTERVAL);
    loop {
        ticks.tick().await;
        if inner.client.is_connected() {
            let _ = tokio::time::timeout(TIMEOUT, inner.client.ping::<()>(None)).await;
        }
    }
}

/// Sends queued publishes to Redis in order, several at a time: fred writes
/// commands in the order their futures are first polled, which `join_all`
/// does in sequence.
async fn publish_in_order(mut queued: mpsc::Receiver<(String, Vec<u8>)>, inner: Arc<Inner>) {
    let mut batch = Vec::with_capacity(BATCH);
    while queued.recv_many(&mut batch, BATCH).await > 0 {
        let sent = batch.len() as u64;
        let sends = batch.drain(..).map(|(chan, val)| inner.client.spublish::<i64, _, _>(chan, val));
        match tokio::time::timeout(TIMEOUT, futures_util::future::join_all(sends)).await {
            Ok(results) => {
                for err in results.into_iter().filter_map(Result::err) {
                    inner.unpublished(1, &err.to_string());
                }
            }
            Err(_) => inner.unpublished(sent, "publish timed out"),
        }
    }
}
