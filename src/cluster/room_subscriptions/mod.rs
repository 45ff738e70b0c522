//! Subscribing and unsubscribing room channels (`ROUTED_ROOMS`, see
//! [`super::routing`]): a front, called by joins and leaves, that never
//! waits ([`RoomSubscriptions`]), and one task that makes the Redis calls
//! ([`start`]).
//!
//! The front and the task share a table of channels ([`table`]): whether
//! each is wanted, whether Redis confirmed it on the current connection,
//! whether a call about it is queued or in flight. A watch of a confirmed
//! channel is answered `true` on the spot; while Redis is disconnected, or
//! when too many channels wait for the task ([`table::QUEUE`]), it is
//! answered `false` at once (the channel stays wanted, and a later pass
//! subscribes it); anything else is queued for the task.
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
//! After a call to a master fails or times out, that master's channels not
//! yet confirmed are answered `false` at once for [`BACKOFF`], without
//! asking Redis (the confirmed ones still answer `true`); the other masters
//! go on. On a Redis Cluster the master of a channel is the owner of its
//! hash slot in fred's cached slot map (taken again when a slot is missing
//! from it; slots it still lacks share one master); on one Redis there is
//! one server. (A master that stays silent is taken for gone by fred after
//! about 5 s, and fred then reconnects the whole pub/sub connection, which
//! it cannot finish until that master answers or is failed over: from then
//! on every channel counts as unconfirmed, as with Redis down.)
//!
//! The task's queue is bounded per master ([`table::QUEUE`] channels each):
//! past it, the channel is answered `false` (with a throttled warning) and,
//! still wanted, subscribed by the next retry pass; a frozen master's
//! backlog refuses none of another master's channels. Entries exist only
//! for wanted channels, for unwanted ones still to be unsubscribed, and for
//! channels queued or in flight.
//!
//! Passes:
//! - after a reconnect every channel counts as unconfirmed, and all are
//!   subscribed again as soon as fred counts the connection as up (it
//!   reports the reconnect just before): while Redis is disconnected the
//!   task holds its queues and looks again every [`CONNECT_POLL`];
//! - every [`RETRY`] the task tries again the channels whose subscribe (or
//!   unsubscribe) failed or was not made;
//! - every [`SWEEP`] it subscribes every wanted channel again anyway: when a
//!   slot moves to another master, Redis tells subscribers with a
//!   `sunsubscribe` message that fred does not pass on, so nothing else
//!   would notice.
//!
//! Calls are batched: the channels a watch or unwatch queued that share a
//! hash slot and an op go in one call of at most [`BATCH`] (on one Redis
//! every channel counts as one slot: a login storm queued behind the calls
//! in flight takes a call per [`BATCH`] logins, not one each), and a pass
//! makes one call per hash slot of at most [`BATCH`] channels. A call
//! unsubscribes with one SUNSUBSCRIBE (a Redis Cluster requires its
//! channels to share a slot) and subscribes with one SSUBSCRIBE per
//! channel, pipelined ([`subscriber`] says why).
//! The gauge `chatwire_room_channels{state}` counts wanted channels as
//! `confirmed` or `pending`.
//!
//! - [`table`]: the shared table, and the front's side of it
//! - [`task`]: the calls, the passes, the connection
//! - [`master`]: one master's queues, limits and backoff
//! - [`subscriber`]: what the task needs of fred's pub/sub client

mod master;
mod subscriber;
mod table;
mod task;
#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use fred::clients::SubscriberClient;
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;

use self::subscriber::Subscriber;
use self::table::{Table, Watched};
use self::task::Task;
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
/// Most channels of one SSUBSCRIBE or SUNSUBSCRIBE.
const BATCH: usize = 256;
/// Calls in flight to one master: a frozen one holds at most this many for
/// [`TIMEOUT`] before its backoff answers the rest. fred pipelines them on
/// one connection; on a Cluster, where a login storm's user channels
/// rarely share a slot (and so a call), they set a master's pace.
const PER_MASTER: usize = 32;
/// Of a master's calls, how many a pass may use: the rest stay free for joins.
const PASS_PER_MASTER: usize = 2;
/// Calls in flight in all.
const IN_FLIGHT: usize = 128;
/// While Redis is disconnected with work queued, how often the task looks
/// whether it is connected again (fred reports a reconnect before it counts
/// the connection as up, and reports nothing then).
const CONNECT_POLL: Duration = Duration::from_millis(20);

/// Watches answered `false` because too many channels were waiting.
static QUEUE_FULL: Throttle = Throttle::new(Duration::from_secs(10));
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

/// Starts the task over the pub/sub connection; returns the front and the
/// task.
pub(super) fn start(client: SubscriberClient) -> (RoomSubscriptions, JoinHandle<()>) {
    start_over(client)
}

/// [`start`] over any [`Subscriber`] (a fake in the unit tests).
fn start_over<S: Subscriber>(client: S) -> (RoomSubscriptions, JoinHandle<()>) {
    let shared = Arc::new(Shared::default());
    let task = Task::new(client.clone(), shared.clone());
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
            Watched::Full => queue_full(channel),
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

/// Reports (throttled) a watch answered `false` because too many channels
/// were waiting.
fn queue_full(channel: &str) {
    if let Some(unreported) = QUEUE_FULL.due(std::time::Instant::now()) {
        tracing::warn!(
            channel,
            unreported,
            "too many room subscriptions waiting: answered at once, subscribed by the next retry"
        );
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
