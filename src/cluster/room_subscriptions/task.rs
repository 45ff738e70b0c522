//! The task behind [`super::RoomSubscriptions`]: it hands queued channels
//! to Redis calls, concurrently within the limits, one call per channel at
//! a time, and records what each call confirmed. Each master's queues and
//! limits are its [`Master`].

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use fred::types::config::Server;
use fred::util::redis_keyslot;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tokio::sync::broadcast;
use tokio::time::Instant;

use super::master::{Master, Op, Serving};
use super::subscriber::{SlotMap, Subscriber};
use super::{BACKOFF, CONNECT_POLL, RETRY, SWEEP, Shared, TIMEOUT};

/// The master of channels whose slot no master serves in fred's cached
/// slot map (none cached yet, or out of date): one for them all.
const UNKNOWN: &str = "unknown";

/// A call that ended.
struct Call {
    /// The master it was counted on.
    master: Arc<str>,
    op: Op,
    /// Made by a pass (counted in the master's `pass_in_flight`).
    pass: bool,
    /// The connection epoch it was made in.
    epoch: u64,
    /// The channels it was about (one hash slot).
    channels: Vec<String>,
    /// How Redis answered, or that it did not within [`TIMEOUT`].
    result: Result<(), String>,
}

type Calls = FuturesUnordered<Pin<Box<dyn Future<Output = Call> + Send>>>;

/// The task: the Redis side of [`super::RoomSubscriptions`].
pub(super) struct Task<S> {
    client: S,
    shared: Arc<Shared>,
    /// The cluster's slot map (`None`: not a cluster), taken again from
    /// fred by every pass and when a channel's slot is not in it; the slots
    /// it lacks go to one master, [`UNKNOWN`].
    slots: Option<SlotMap>,
    /// The masters with work queued, calls in flight or a backoff.
    masters: HashMap<Arc<str>, Master>,
    /// Calls in flight in all.
    in_flight: usize,
    /// Bumped at every reconnect: a call of an older epoch confirms nothing.
    epoch: u64,
    /// Whether Redis was connected at the last look.
    connected: bool,
}

impl<S: Subscriber> Task<S> {
    /// A task over `client`, serving `shared`'s queue.
    pub(super) fn new(client: S, shared: Arc<Shared>) -> Self {
        let slots = client.slot_map();
        Self { client, shared, slots, masters: HashMap::new(), in_flight: 0, epoch: 0, connected: true }
    }

    /// Runs until the front is dropped.
    pub(super) async fn run(mut self) {
        let shared = self.shared.clone();
        let mut reconnects = Some(self.client.reconnects());
        let mut calls = Calls::new();
        let mut retries = tokio::time::interval_at(Instant::now() + RETRY, RETRY);
        let mut sweeps = tokio::time::interval_at(Instant::now() + SWEEP, SWEEP);
        loop {
            if shared.closed.load(Ordering::Relaxed) {
                return;
            }
            self.dispatch(&mut calls);
            tokio::select! {
                biased;
                // First, so that no call ends up counted on the old connection.
                reconnected = next_reconnect(&mut reconnects) => match reconnected {
                    Ok(()) | Err(broadcast::error::RecvError::Lagged(_)) => self.reconnected(),
                    Err(broadcast::error::RecvError::Closed) => reconnects = None,
                },
                Some(call) = calls.next(), if !calls.is_empty() => self.finished(call),
                () = shared.work.notified() => {}
                // Work held for the connection: made as soon as it is up.
                () = tokio::time::sleep(CONNECT_POLL), if self.holding() => {}
                _ = retries.tick() => self.pass(false),
                _ = sweeps.tick() => self.pass(true),
            }
        }
    }

    /// Whether queued work waits for Redis to be connected.
    fn holding(&self) -> bool {
        !self.connected && self.masters.values().any(Master::queued)
    }

    /// The master serving `channel`, and its hash slot. A slot missing from
    /// the slot map makes it taken again from fred first, once per
    /// `refresh` (set to false then).
    fn master_of(&mut self, channel: &str, refresh: &mut bool) -> (u16, Arc<str>) {
        let slot = redis_keyslot(channel.as_bytes());
        let missing =
            |slots: &Option<SlotMap>| slots.as_ref().is_some_and(|slots| slots.master(slot).is_none());
        if missing(&self.slots) && std::mem::take(refresh) {
            self.slots = self.client.slot_map();
        }
        match &self.slots {
            None => (0, Arc::from("redis")),
            Some(slots) => (slot, slots.master(slot).cloned().unwrap_or_else(|| Arc::from(UNKNOWN))),
        }
    }

    /// Starts the calls queued work needs, as far as the limits allow;
    /// answers at once what cannot be asked now.
    fn dispatch(&mut self, calls: &mut Calls) {
        let shared = self.shared.clone();
        let mut table = shared.table();
        let connected = self.client.is_connected();
        if !connected && self.connected {
            table.unconfirm_all();
        }
        self.connected = connected;
        let mut refresh = true;
        while let Some(channel) = table.asked.pop_front() {
            let (slot, master) = self.master_of(&channel, &mut refresh);
            if let Err(channel) = self.masters.entry(master).or_default().ask(&mut table, slot, channel) {
                super::queue_full(&channel);
            }
        }
        let now = Instant::now();
        let mut started = Vec::new();
        for (name, master) in &mut self.masters {
            let serving = match (connected, master.backing_off(now)) {
                (false, _) => Serving::Holds,
                (true, true) => Serving::Refuses,
                (true, false) => Serving::Calls,
            };
            for (op, pass, channels) in master.take(&mut table, serving, &mut self.in_flight) {
                started.push((name.clone(), op, pass, channels));
            }
        }
        drop(table);
        self.masters.retain(|_, master| master.queued() || master.in_flight > 0 || master.backing_off(now));
        for (master, op, pass, channels) in started {
            calls.push(self.call(master, op, pass, channels));
        }
    }

    /// One call, bounded by [`TIMEOUT`].
    fn call(
        &self,
        master: Arc<str>,
        op: Op,
        pass: bool,
        channels: Vec<String>,
    ) -> Pin<Box<dyn Future<Output = Call> + Send>> {
        let client = self.client.clone();
        let epoch = self.epoch;
        Box::pin(async move {
            let asked = channels.clone();
            let result = match op {
                Op::Subscribe => tokio::time::timeout(TIMEOUT, client.shard_subscribe(asked)).await,
                Op::Unsubscribe => tokio::time::timeout(TIMEOUT, client.shard_unsubscribe(asked)).await,
            };
            let result = result.unwrap_or_else(|_| Err("timed out".to_owned()));
            Call { master, op, pass, epoch, channels, result }
        })
    }

    /// Records how a call went, answers the joins waiting on it, and queues
    /// what each channel needs next.
    fn finished(&mut self, call: Call) {
        self.in_flight -= 1;
        let master = self.masters.entry(call.master.clone()).or_default();
        master.in_flight = master.in_flight.saturating_sub(1);
        if call.pass {
            master.pass_in_flight = master.pass_in_flight.saturating_sub(1);
        }
        let ok = call.result.is_ok();
        // Made on a connection replaced since: says nothing of the new one.
        let stale = call.epoch != self.epoch;
        match &call.result {
            Ok(()) => master.failing = None,
            Err(failure) if stale => {
                tracing::debug!(master = %call.master, error = failure, op = ?call.op, "room channel call on an earlier connection failed");
            }
            Err(failure) => {
                master.failing = Some(Instant::now() + BACKOFF);
                tracing::warn!(
                    master = %call.master,
                    channels = call.channels.len(),
                    first = call.channels.first().map(String::as_str),
                    error = failure,
                    op = ?call.op,
                    "room channel call failed; its master's channels wait {BACKOFF:?}, then are retried in the background"
                );
            }
        }
        let current = !stale && self.connected;
        let mut table = self.shared.table();
        for channel in call.channels {
            let again = table.update(&channel, |entry| {
                entry.busy = false;
                match (call.op, ok) {
                    (Op::Subscribe, _) => {
                        entry.sent = true;
                        entry.confirmed = ok && current;
                    }
                    (Op::Unsubscribe, true) => {
                        entry.sent = false;
                        entry.confirmed = false;
                    }
                    (Op::Unsubscribe, false) => entry.confirmed = false,
                }
                // The joins waiting are told how the subscribe went.
                if call.op == Op::Subscribe && ok && current {
                    entry.answer(true);
                } else if !ok {
                    entry.answer(false);
                }
                if (!ok && !stale) || (entry.wanted && entry.confirmed) {
                    // Done, or left to the retry pass.
                    return false;
                }
                // Wanted again after an unsubscribe, a call on an old
                // connection (the reconnect's pass skipped it: it was in
                // flight), or unwanted meanwhile: next call.
                let again = entry.wanted || entry.sent;
                entry.asked |= again;
                again
            });
            if again == Some(true) {
                table.ask(channel);
            }
        }
    }

    /// A retry pass (`all` false: the channels not confirmed, and those
    /// still to unsubscribe) or a sweep (every channel).
    fn pass(&mut self, all: bool) {
        self.slots = self.client.slot_map();
        let mut refresh = false;
        let shared = self.shared.clone();
        let mut table = shared.table();
        let (wanted, confirmed) = table.counts();
        let mut queued = 0;
        for (channel, entry) in table.channels_mut() {
            let needed = (entry.wanted && (all || !entry.confirmed)) || (!entry.wanted && entry.sent);
            if !needed || entry.busy || entry.asked || entry.swept {
                continue;
            }
            entry.swept = true;
            queued += 1;
            let (slot, master) = self.master_of(channel, &mut refresh);
            let master = self.masters.entry(master).or_default();
            master.swept.entry(slot).or_default().push((channel.clone(), all));
        }
        if queued > 0 {
            tracing::debug!(rooms = wanted, confirmed, queued, all, "room channel pass");
        }
    }

    /// A new connection: nothing is subscribed on it yet.
    fn reconnected(&mut self) {
        self.epoch += 1;
        self.shared.table().unconfirm_all();
        self.masters.values_mut().for_each(|master| master.failing = None);
        self.pass(true);
        let (rooms, _) = self.shared.table().counts();
        tracing::info!(rooms, "subscribing room channels again");
    }
}

/// The next reconnection, or never once fred stopped reporting them.
async fn next_reconnect(
    reconnects: &mut Option<broadcast::Receiver<Server>>,
) -> Result<(), broadcast::error::RecvError> {
    match reconnects {
        Some(reconnects) => reconnects.recv().await.map(drop),
        None => std::future::pending().await,
    }
}
