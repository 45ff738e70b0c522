//! Subscribing and unsubscribing room channels (`ROUTED_ROOMS`, see
//! [`super::routing`]): a front that joins and leaves call without
//! waiting ([`RoomSubscriptions`]), and one task that makes the Redis calls
//! ([`start`]).
//!
//! The front and the task share a table of channels ([`table`]): whether
//! each is wanted, whether Redis confirmed it on the current connection,
//! whether a call about it is in flight. A watch of a confirmed channel is
//! answered `true` on the spot; anything else is queued for the task.
//!
//! The task runs calls concurrently: at most [`PER_MASTER`] in flight per
//! master and [`IN_FLIGHT`] in all, each bounded by [`TIMEOUT`]. A channel
//! has at most one call in flight, and when it ends the channel's state
//! decides the next one, so calls about one channel keep their order: a
//! late unsubscribe never overtakes a re-join, and a watch arriving while
//! the channel's unsubscribe is in flight waits for it, then subscribes.
//! Watches and unwatches go first; a pass uses at most [`PASS_PER_MASTER`]
//! of a master's calls.
//!
//! After a call to a master fails or times out, every channel on that
//! master is answered `false` at once for [`BACKOFF`], without asking
//! Redis; the other masters go on. On a Redis Cluster the master of a
//! channel is the owner of its hash slot in fred's cached slot map; on one
//! Redis there is one server.
//!
//! Channels asked for and not yet handed to a call are bounded
//! ([`table::QUEUE`]): past it, a watch is answered `false` at once (with a
//! throttled warning) and the channel, still wanted, is subscribed by the
//! next retry pass. Entries exist only for wanted channels and for
//! unwanted ones still to be unsubscribed.
//!
//! Passes:
//! - after a reconnect (or while disconnected) every channel counts as
//!   unconfirmed, and all are subscribed again;
//! - every [`RETRY`] the task tries again the channels whose subscribe (or
//!   unsubscribe) failed or was not made;
//! - every [`SWEEP`] it subscribes every wanted channel again anyway: when a
//!   slot moves to another master, Redis tells subscribers with a
//!   `sunsubscribe` message that fred does not pass on, so nothing else
//!   would notice.
//!
//! A pass makes one SSUBSCRIBE per hash slot (a Redis Cluster requires the
//! channels of one call to share a slot) of at most [`BATCH`] channels.
//! The gauge `chatwire_room_channels{state}` counts wanted channels as
//! `confirmed` or `pending`.

mod table;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use fred::clients::SubscriberClient;
use fred::prelude::{ClientLike, ClusterInterface, EventInterface, PubsubInterface};
use fred::types::config::Server;
use fred::util::redis_keyslot;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tokio::sync::{Notify, broadcast, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use self::table::{Table, Watched};
use crate::telemetry::Throttle;

/// Longest a SSUBSCRIBE / SUNSUBSCRIBE may take.
const TIMEOUT: Duration = Duration::from_secs(2);
/// How often channels whose subscribe failed are tried again.
const RETRY: Duration = Duration::from_secs(5);
/// How often every wanted channel is subscribed again (idempotent).
const SWEEP: Duration = Duration::from_secs(60);
/// How long after a failed call to a master its channels are answered
/// without asking Redis.
const BACKOFF: Duration = Duration::from_secs(2);
/// Most channels of one SSUBSCRIBE in a pass.
const BATCH: usize = 256;
/// Calls in flight to one master: a frozen one holds at most this many for
/// [`TIMEOUT`] before its backoff answers the rest.
const PER_MASTER: usize = 8;
/// Of a master's calls, how many a pass may use: the rest stay free for joins.
const PASS_PER_MASTER: usize = 2;
/// Calls in flight in all.
const IN_FLIGHT: usize = 64;

/// Watches answered `false` because too many channels were waiting.
static QUEUE_FULL: Throttle = Throttle::new(Duration::from_secs(10));

/// What the task needs from the pub/sub connection (fred's
/// [`SubscriberClient`]; a fake in the unit tests).
pub(super) trait Subscriber: Clone + Send + Sync + 'static {
    /// SSUBSCRIBE `channels` (all in one hash slot).
    fn shard_subscribe(&self, channels: Vec<String>) -> impl Future<Output = Result<(), String>> + Send;
    /// SUNSUBSCRIBE `channels` (all in one hash slot).
    fn shard_unsubscribe(&self, channels: Vec<String>) -> impl Future<Output = Result<(), String>> + Send;
    /// Whether the connection is up (every master's, on a cluster).
    fn is_connected(&self) -> bool;
    /// Reports each (re)connection.
    fn reconnects(&self) -> broadcast::Receiver<Server>;
    /// Which master serves which hash slots, `None` when not a cluster.
    fn slot_map(&self) -> Option<SlotMap>;
}

impl Subscriber for SubscriberClient {
    fn shard_subscribe(&self, channels: Vec<String>) -> impl Future<Output = Result<(), String>> + Send {
        let client = self.clone();
        async move { client.ssubscribe(channels).await.map_err(|err| err.to_string()) }
    }

    fn shard_unsubscribe(&self, channels: Vec<String>) -> impl Future<Output = Result<(), String>> + Send {
        let client = self.clone();
        async move { client.sunsubscribe(channels).await.map_err(|err| err.to_string()) }
    }

    fn is_connected(&self) -> bool {
        ClientLike::is_connected(self)
    }

    fn reconnects(&self) -> broadcast::Receiver<Server> {
        self.reconnect_rx()
    }

    fn slot_map(&self) -> Option<SlotMap> {
        if !self.is_clustered() {
            return None;
        }
        let ranges = self.cached_cluster_state().map(|state| {
            let ranges = state.slots().iter();
            ranges.map(|range| (range.start, range.end, Arc::from(range.primary.to_string()))).collect()
        });
        Some(SlotMap(ranges.unwrap_or_default()))
    }
}

/// Which master serves which hash slots: `(first, last, master)`, sorted.
#[derive(Clone, Default)]
pub(super) struct SlotMap(pub(super) Vec<(u16, u16, Arc<str>)>);

impl SlotMap {
    fn master(&self, slot: u16) -> Option<&Arc<str>> {
        let index = self.0.partition_point(|(_, last, _)| *last < slot);
        self.0.get(index).filter(|(first, _, _)| *first <= slot).map(|(_, _, master)| master)
    }
}

/// The front: watches and unwatches room channels, without waiting.
pub(super) struct RoomSubscriptions {
    shared: Arc<Shared>,
    connected: Box<dyn Fn() -> bool + Send + Sync>,
}

/// What the front and the task share.
#[derive(Default)]
struct Shared {
    table: Mutex<Table>,
    /// Wakes the task when a watch or unwatch queued a channel.
    work: Notify,
    /// The front is gone: the task ends.
    closed: AtomicBool,
}

impl Shared {
    fn table(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Starts the task over `client`; returns the front and the task.
pub(super) fn start<S: Subscriber>(client: S) -> (RoomSubscriptions, JoinHandle<()>) {
    let shared = Arc::new(Shared::default());
    let task = Task {
        client: client.clone(),
        shared: shared.clone(),
        slots: client.slot_map(),
        masters: HashMap::new(),
        in_flight: 0,
        epoch: 0,
        connected: true,
    };
    let connected = Box::new(move || client.is_connected());
    (RoomSubscriptions { shared, connected }, tokio::spawn(task.run()))
}

impl RoomSubscriptions {
    /// Subscribes `channel` (unless it is already); the receiver answers
    /// `true` once Redis confirmed it (at once if it had), `false` if it
    /// failed or cannot be asked now (it is made later: the channel stays
    /// wanted).
    pub(super) fn watch(&self, channel: &str) -> oneshot::Receiver<bool> {
        let (answer, answered) = oneshot::channel();
        let connected = (self.connected)();
        let watched = self.shared.table().watch(channel, answer, connected);
        match watched {
            Watched::Queued => self.shared.work.notify_one(),
            Watched::Full => {
                if let Some(unreported) = QUEUE_FULL.due(std::time::Instant::now()) {
                    tracing::warn!(
                        channel,
                        unreported,
                        "too many room subscriptions waiting: answered at once, subscribed by the next retry"
                    );
                }
            }
            Watched::Answered | Watched::Waiting => {}
        }
        answered
    }

    /// Unsubscribes `channel`, after every call about it made before.
    pub(super) fn unwatch(&self, channel: &str) {
        if self.shared.table().unwatch(channel) {
            self.shared.work.notify_one();
        }
    }
}

#[cfg(test)]
impl RoomSubscriptions {
    /// A front with no task behind it, and Redis down (for the tests of
    /// what surrounds it).
    pub(super) fn unstarted() -> Self {
        Self { shared: Arc::default(), connected: Box::new(|| false) }
    }
}

impl Drop for RoomSubscriptions {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::Relaxed);
        self.shared.work.notify_one();
    }
}

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

/// The task: the Redis side of [`RoomSubscriptions`].
struct Task<S> {
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
    async fn run(mut self) {
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
            while refused || (master.in_flight < PER_MASTER && self.in_flight < IN_FLIGHT) {
                let Some(channel) = master.asked.pop_front() else { break };
                table.waiting = table.waiting.saturating_sub(1);
                if let Some(op) = take(&mut table, &channel, None, refused) {
                    started.push((name.clone(), op, false, vec![channel]));
                    master.in_flight += 1;
                    self.in_flight += 1;
                }
            }
            while refused
                || (master.pass_in_flight < PASS_PER_MASTER
                    && master.in_flight < PER_MASTER
                    && self.in_flight < IN_FLIGHT)
            {
                let Some((slot, mut channels)) = master.swept.pop_first() else { break };
                if channels.len() > BATCH {
                    master.swept.insert(slot, channels.split_off(BATCH));
                }
                let mut ops: [Vec<String>; 2] = Default::default();
                for (channel, force) in channels {
                    match take(&mut table, &channel, Some(force), refused) {
                        Some(Op::Subscribe) => ops[0].push(channel),
                        Some(Op::Unsubscribe) => ops[1].push(channel),
                        None => {}
                    }
                }
                for (op, channels) in [Op::Subscribe, Op::Unsubscribe].into_iter().zip(ops) {
                    if !channels.is_empty() {
                        started.push((name.clone(), op, true, channels));
                        master.in_flight += 1;
                        master.pass_in_flight += 1;
                        self.in_flight += 1;
                    }
                }
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
