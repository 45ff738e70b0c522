//! The task behind [`super::RoomSubscriptions`]: it hands queued channels
//! to Redis calls, concurrently within the limits, one call per channel at
//! a time, and records what each call confirmed.

use std::collections::{BTreeMap, HashMap, VecDeque};
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

use super::subscriber::{SlotMap, Subscriber};
use super::table::Table;
use super::{BACKOFF, BATCH, IN_FLIGHT, PASS_PER_MASTER, PER_MASTER, RETRY, SWEEP, Shared, TIMEOUT};

/// A SSUBSCRIBE or a SUNSUBSCRIBE.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Op {
    Subscribe,
    Unsubscribe,
}

/// A call that ended.
struct Call {
    master: Arc<str>,
    op: Op,
    /// Made by a pass.
    pass: bool,
    /// The connection epoch it was made in.
    epoch: u64,
    channels: Vec<String>,
    result: Result<(), String>,
}

type Calls = FuturesUnordered<Pin<Box<dyn Future<Output = Call> + Send>>>;

/// One master's queues, calls in flight and backoff.
#[derive(Default)]
struct Master {
    /// Channels asked by watches and unwatches, in order.
    asked: VecDeque<String>,
    /// Channels of a pass by hash slot, with whether to subscribe them even
    /// if confirmed (a sweep).
    swept: BTreeMap<u16, Vec<(String, bool)>>,
    in_flight: usize,
    pass_in_flight: usize,
    /// Until when its channels are answered without asking.
    failing: Option<Instant>,
}

impl Master {
    /// Takes the calls this master's queues need now, asked channels first,
    /// as far as the limits allow (`in_flight`: the task's calls), each as
    /// `(op, made by a pass, channels)`. When `refused` it empties its
    /// queues, answering at once instead.
    fn take(
        &mut self,
        table: &mut Table,
        refused: bool,
        in_flight: &mut usize,
    ) -> Vec<(Op, bool, Vec<String>)> {
        let mut calls = Vec::new();
        while refused || (self.in_flight < PER_MASTER && *in_flight < IN_FLIGHT) {
            let Some(channel) = self.asked.pop_front() else { break };
            table.waiting = table.waiting.saturating_sub(1);
            if let Some(op) = take(table, &channel, None, refused) {
                calls.push((op, false, vec![channel]));
                self.in_flight += 1;
                *in_flight += 1;
            }
        }
        while refused
            || (self.pass_in_flight < PASS_PER_MASTER
                && self.in_flight < PER_MASTER
                && *in_flight < IN_FLIGHT)
        {
            let Some((slot, mut channels)) = self.swept.pop_first() else { break };
            if channels.len() > BATCH {
                self.swept.insert(slot, channels.split_off(BATCH));
            }
            let (mut subscribe, mut unsubscribe) = (Vec::new(), Vec::new());
            for (channel, force) in channels {
                match take(table, &channel, Some(force), refused) {
                    Some(Op::Subscribe) => subscribe.push(channel),
                    Some(Op::Unsubscribe) => unsubscribe.push(channel),
                    None => {}
                }
            }
            for (op, channels) in [(Op::Subscribe, subscribe), (Op::Unsubscribe, unsubscribe)] {
                if !channels.is_empty() {
                    calls.push((op, true, channels));
                    self.in_flight += 1;
                    self.pass_in_flight += 1;
                    *in_flight += 1;
                }
            }
        }
        calls
    }
}

/// The task: the Redis side of [`super::RoomSubscriptions`].
pub(super) struct Task<S> {
    client: S,
    shared: Arc<Shared>,
    /// The cluster's slot map as of the last pass (`None`: not a cluster).
    slots: Option<SlotMap>,
    masters: HashMap<Arc<str>, Master>,
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
        let mut retries = tokio::time::interval(RETRY);
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
                _ = retries.tick() => self.pass(false),
                _ = sweeps.tick() => self.pass(true),
            }
        }
    }

    /// The master serving `channel`, and its hash slot.
    fn master_of(&self, channel: &str) -> (u16, Arc<str>) {
        let Some(slots) = &self.slots else { return (0, Arc::from("redis")) };
        let slot = redis_keyslot(channel.as_bytes());
        let master = slots.master(slot).cloned().unwrap_or_else(|| Arc::from(format!("slot {slot}")));
        (slot, master)
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
        while let Some(channel) = table.asked.pop_front() {
            let (_, master) = self.master_of(&channel);
            self.masters.entry(master).or_default().asked.push_back(channel);
        }
        let now = Instant::now();
        let mut started = Vec::new();
        for (name, master) in &mut self.masters {
            let refused = !connected || master.failing.is_some_and(|until| now < until);
            for (op, pass, channels) in master.take(&mut table, refused, &mut self.in_flight) {
                started.push((name.clone(), op, pass, channels));
            }
        }
        drop(table);
        self.masters.retain(|_, master| {
            !master.asked.is_empty()
                || !master.swept.is_empty()
                || master.in_flight > 0
                || master.failing.is_some_and(|until| now < until)
        });
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
        match &call.result {
            Ok(()) => master.failing = None,
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
        let current = call.epoch == self.epoch && self.connected;
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
                if !ok || (entry.wanted && entry.confirmed) {
                    // Done, or left to the retry pass.
                    return false;
                }
                // Wanted again after an unsubscribe, a subscribe from an
                // old connection, or unwanted meanwhile: next call.
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
            let (slot, master) = self.master_of(channel);
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

/// Takes `channel` off a queue (`pass`: `Some(force)` for a pass's) and
/// says which call it needs now, marking it busy; `None` if none, or if it
/// cannot be made now (`refused`: Redis down, or the master backing off),
/// in which case a subscribe's waiting joins are answered `false` and the
/// channel is left to the retry pass.
fn take(table: &mut Table, channel: &str, pass: Option<bool>, refused: bool) -> Option<Op> {
    table
        .update(channel, |entry| {
            match pass {
                Some(_) => entry.swept = false,
                None => entry.asked = false,
            }
            // A pass's entry that is asked or in flight is handled there.
            if entry.busy || (pass.is_some() && entry.asked) {
                return None;
            }
            let op = match (entry.wanted, entry.confirmed, entry.sent) {
                (true, true, _) if pass != Some(true) => {
                    entry.answer(true);
                    return None;
                }
                (true, _, _) => Op::Subscribe,
                (false, _, true) => Op::Unsubscribe,
                (false, _, false) => return None,
            };
            if refused {
                if op == Op::Subscribe {
                    entry.answer(false);
                }
                return None;
            }
            entry.busy = true;
            // Going: a watch from now on waits for it, then subscribes.
            entry.confirmed &= op == Op::Subscribe;
            Some(op)
        })
        .flatten()
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
