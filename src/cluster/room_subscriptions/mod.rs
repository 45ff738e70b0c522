//! The one task that subscribes and unsubscribes room channels
//! (`ROUTED_ROOMS`, see [`super::routing`]). Requests about one channel are
//! made in the order they are asked, so a late unsubscribe never overtakes a
//! re-join.
//!
//! It remembers which channels are wanted and whether Redis confirmed each:
//! - after a reconnect (or while disconnected) every channel counts as
//!   unconfirmed, and all are subscribed again;
//! - every [`RETRY`] it tries again the ones that failed;
//! - every [`SWEEP`] it subscribes them all again anyway: when a slot moves
//!   to another master, Redis tells subscribers with a `sunsubscribe`
//!   message that fred does not pass on, so nothing else would notice.
//!
//! Those passes never hold up a join for long: requests go first (the
//! select is biased), and a pass runs a chunk at a time: at most [`CHUNK`]
//! channels in at most [`CONCURRENCY`] hash slots, one SSUBSCRIBE per slot
//! (a Redis Cluster requires the channels of one call to share a slot), all
//! at once, so a chunk takes one round trip, or [`TIMEOUT`] at worst.
//!
//! After a subscribe in a slot fails or times out, that slot's requests are
//! answered `false` at once for [`BACKOFF`] instead of each waiting for its
//! own timeout (with a frozen master, logins would otherwise queue behind
//! one another here); other slots, on healthy masters, go on.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use fred::clients::SubscriberClient;
use fred::prelude::{ClientLike, EventInterface, PubsubInterface};
use fred::util::redis_keyslot;
use futures_util::StreamExt;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::time::Instant;

/// Longest a SSUBSCRIBE / SUNSUBSCRIBE may take.
const TIMEOUT: Duration = Duration::from_secs(2);
/// How often channels whose subscribe failed are tried again.
const RETRY: Duration = Duration::from_secs(5);
/// How often every wanted channel is subscribed again (idempotent).
const SWEEP: Duration = Duration::from_secs(60);
/// How long after a failure in a slot its requests are answered without
/// asking Redis.
const BACKOFF: Duration = Duration::from_secs(2);
/// Most channels subscribed again per chunk of a retry or sweep pass;
/// waiting requests are served between chunks.
const CHUNK: usize = 256;
/// Hash slots per chunk of a pass, subscribed at once (one SSUBSCRIBE each).
const CONCURRENCY: usize = 8;

/// What the task is asked to do.
pub(super) enum Request {
    /// Subscribe this channel (if not already); answer once subscribed.
    Watch(String, oneshot::Sender<bool>),
    /// Unsubscribe this channel.
    Unwatch(String),
}

/// Wanted channels and what Redis said of them.
struct Subscriptions {
    client: SubscriberClient,
    /// Wanted channels, `true` once Redis confirmed on this connection.
    wanted: HashMap<String, bool>,
    /// Hash slots whose last subscribe failed, and until when their
    /// requests are answered `false` without asking.
    failing: HashMap<u16, Instant>,
    /// Channels the current retry or sweep pass has still to subscribe.
    pending: BTreeSet<String>,
}

/// Runs the requests in order, and the retry and sweep passes between them.
pub(super) async fn run(client: SubscriberClient, mut asked: mpsc::UnboundedReceiver<Request>) {
    let mut reconnects = Some(client.reconnect_rx());
    let mut subscriptions =
        Subscriptions { client, wanted: HashMap::new(), failing: HashMap::new(), pending: BTreeSet::new() };
    let mut retries = tokio::time::interval(RETRY);
    let mut sweeps = tokio::time::interval_at(Instant::now() + SWEEP, SWEEP);
    loop {
        tokio::select! {
            biased;
            // First, so that no request is answered from the old connection.
            reconnected = next_reconnect(&mut reconnects) => match reconnected {
                Ok(()) | Err(broadcast::error::RecvError::Lagged(_)) => subscriptions.reconnected(),
                Err(broadcast::error::RecvError::Closed) => reconnects = None,
            },
            request = asked.recv() => match request {
                Some(request) => subscriptions.handle(request).await,
                None => return,
            },
            _ = retries.tick() => subscriptions.queue(false),
            _ = sweeps.tick() => subscriptions.queue(true),
            () = std::future::ready(()), if !subscriptions.pending.is_empty() => {
                subscriptions.next_chunk().await;
            }
        }
    }
}

/// The next reconnection, or never once fred stopped reporting them.
async fn next_reconnect(
    reconnects: &mut Option<broadcast::Receiver<fred::types::config::Server>>,
) -> Result<(), broadcast::error::RecvError> {
    match reconnects {
        Some(reconnects) => reconnects.recv().await.map(drop),
        None => std::future::pending().await,
    }
}

impl Subscriptions {
    async fn handle(&mut self, request: Request) {
        let connected = self.connected();
        match request {
            Request::Watch(channel, answer) => {
                let done = match self.wanted.get(&channel) {
                    Some(true) => true,
                    _ => self.subscribe(self.slot(&channel), vec![channel.clone()]).await,
                };
                self.wanted.insert(channel, done);
                let _ = answer.send(done);
            }
            Request::Unwatch(channel) => {
                self.pending.remove(&channel);
                if self.wanted.remove(&channel).is_some() && connected {
                    match tokio::time::timeout(TIMEOUT, self.client.sunsubscribe(channel.clone())).await {
                        Ok(Ok(())) => {}
                        Ok(Err(err)) => tracing::warn!(channel, error = %err, "room unsubscribe failed"),
                        Err(_) => tracing::warn!(channel, "room unsubscribe timed out"),
                    }
                }
            }
        }
    }

    /// The hash slot of `channel` on a Redis Cluster; on one Redis every
    /// channel shares slot 0, so a pass makes one call per chunk and a
    /// failure backs off the one server.
    fn slot(&self, channel: &str) -> u16 {
        if self.client.is_clustered() { redis_keyslot(channel.as_bytes()) } else { 0 }
    }

    /// Whether Redis is connected; if not, nothing counts as confirmed any
    /// more (the next connection starts with no subscriptions).
    fn connected(&mut self) -> bool {
        let connected = self.client.is_connected();
        if !connected {
            self.wanted.values_mut().for_each(|done| *done = false);
        }
        connected
    }

    /// A new connection: nothing is subscribed on it yet.
    fn reconnected(&mut self) {
        self.wanted.values_mut().for_each(|done| *done = false);
        self.failing.clear();
        self.queue(true);
        tracing::info!(rooms = self.wanted.len(), "subscribing room channels again");
    }

    /// Starts (or extends) a pass over every wanted channel (`all`), or over
    /// those not confirmed.
    fn queue(&mut self, all: bool) {
        let channels = self.wanted.iter().filter(|(_, done)| all || !**done).map(|(channel, _)| channel);
        self.pending.extend(channels.cloned());
    }

    /// Subscribes the next [`CHUNK`] channels of the pass: one SSUBSCRIBE per
    /// hash slot, several at once; a failing slot does not stop the others.
    async fn next_chunk(&mut self) {
        if !self.connected() {
            // The reconnect starts a new pass.
            self.pending.clear();
            return;
        }
        // At most CONCURRENCY slots: one round trip (or TIMEOUT) per chunk.
        let mut slots: HashMap<u16, Vec<String>> = HashMap::new();
        let mut taken = 0;
        while taken < CHUNK {
            let Some(channel) = self.pending.first() else { break };
            let slot = self.slot(channel);
            if slots.len() == CONCURRENCY && !slots.contains_key(&slot) {
                break;
            }
            let Some(channel) = self.pending.pop_first() else { break };
            if self.wanted.contains_key(&channel) {
                slots.entry(slot).or_default().push(channel);
                taken += 1;
            }
        }
        let now = Instant::now();
        let (waiting, asking): (Vec<_>, Vec<_>) =
            slots.into_iter().partition(|(slot, _)| self.failing.get(slot).is_some_and(|until| now < *until));
        for channel in waiting.into_iter().flat_map(|(_, channels)| channels) {
            self.wanted.insert(channel, false);
        }
        let client = &self.client;
        let results: Vec<(u16, Vec<String>, Result<(), String>)> = futures_util::stream::iter(asking)
            .map(|(slot, channels)| async move {
                let result = ssubscribe(client, channels.clone()).await;
                (slot, channels, result)
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        let mut failed = 0;
        for (slot, channels, result) in results {
            let done = self.answered(slot, &channels, result);
            failed += usize::from(!done) * channels.len();
            for channel in channels {
                self.wanted.insert(channel, done);
            }
        }
        if self.pending.is_empty() {
            let unconfirmed = self.wanted.values().filter(|done| !**done).count();
            tracing::debug!(rooms = self.wanted.len(), unconfirmed, failed, "room channel pass done");
        }
    }

    /// One SSUBSCRIBE of `channels` (all in `slot`), bounded; false if Redis
    /// is down, failing lately in this slot, or did not confirm.
    async fn subscribe(&mut self, slot: u16, channels: Vec<String>) -> bool {
        if !self.connected() || self.failing.get(&slot).is_some_and(|until| Instant::now() < *until) {
            return false;
        }
        let result = ssubscribe(&self.client, channels.clone()).await;
        self.answered(slot, &channels, result)
    }

    /// Records how a subscribe in `slot` went.
    fn answered(&mut self, slot: u16, channels: &[String], result: Result<(), String>) -> bool {
        match result {
            Ok(()) => {
                self.failing.remove(&slot);
                true
            }
            Err(failure) => {
                tracing::warn!(
                    slot,
                    channels = channels.len(),
                    first = channels.first().map(String::as_str),
                    error = failure,
                    "room subscribe failed; retrying in the background"
                );
                self.failing.insert(slot, Instant::now() + BACKOFF);
                false
            }
        }
    }
}

/// SSUBSCRIBE, bounded by [`TIMEOUT`].
async fn ssubscribe(client: &SubscriberClient, channels: Vec<String>) -> Result<(), String> {
    match tokio::time::timeout(TIMEOUT, client.ssubscribe(channels)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(err)) => Err(err.to_string()),
        Err(_) => Err("timed out".to_owned()),
    }
}
