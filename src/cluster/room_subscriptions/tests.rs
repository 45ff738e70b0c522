//! The task against a fake Redis Cluster of two masters, `a` (slots
//! 0-8191) and `b` (8192-16383), either of which can be frozen: its calls
//! then never answer. It reconnects in fred's order: the reconnect is
//! reported while the client still counts as disconnected. Time is paused:
//! timeouts pass as soon as nothing else can happen.

#![allow(clippy::unwrap_used, reason = "tests fail loudly")]

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize};

use tokio::sync::oneshot::error::TryRecvError;

use fred::types::config::Server;
use fred::util::redis_keyslot;
use tokio::sync::{Notify, broadcast};
use tokio::time::Instant;

use super::subscriber::SlotMap;
use super::*;

/// How long the fake takes to answer a call: long enough for calls to
/// overlap.
const DELAY: Duration = Duration::from_millis(10);
/// Longest a test waits for an answer: a lost one fails, not hangs.
const ANSWER: Duration = Duration::from_secs(10);

#[derive(Clone)]
struct Fake(Arc<Inner>);

struct Inner {
    frozen: Mutex<HashSet<&'static str>>,
    thawed: Notify,
    subscribed: Mutex<HashSet<String>>,
    calls: Mutex<Vec<String>>,
    connected: AtomicBool,
    reconnects: broadcast::Sender<Server>,
    /// Whether fred has a cached slot map.
    mapped: AtomicBool,
    /// Whether it is a Cluster (else one Redis: no slot map at all).
    clustered: AtomicBool,
    /// Bumped by every disconnect: a call still frozen then is lost with
    /// its connection (never answered).
    generation: AtomicUsize,
    /// Calls in flight, and the most there were at once.
    in_flight: AtomicUsize,
    peak: AtomicUsize,
}

fn master(channel: &str) -> &'static str {
    if redis_keyslot(channel.as_bytes()) <= 8191 { "a" } else { "b" }
}

/// `n` channel names served by `master`, each in a slot of its own.
fn on(master_name: &str, n: usize) -> Vec<String> {
    let mut slots = HashSet::new();
    (0..)
        .map(|i| format!("room{i}"))
        .filter(|channel| master(channel) == master_name && slots.insert(redis_keyslot(channel.as_bytes())))
        .take(n)
        .collect()
}

impl Fake {
    fn new() -> Self {
        Self(Arc::new(Inner {
            frozen: Mutex::default(),
            thawed: Notify::new(),
            subscribed: Mutex::default(),
            calls: Mutex::default(),
            connected: AtomicBool::new(true),
            reconnects: broadcast::channel(4).0,
            mapped: AtomicBool::new(true),
            clustered: AtomicBool::new(true),
            generation: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
        }))
    }

    /// A fake of one Redis: every channel in one call, whatever its slot
    /// (`freeze` both halves to freeze it).
    fn single() -> Self {
        let fake = Self::new();
        fake.0.clustered.store(false, Ordering::Relaxed);
        fake
    }

    /// The connection drops, and its subscriptions with it.
    fn disconnect(&self) {
        self.0.connected.store(false, Ordering::Relaxed);
        self.0.subscribed.lock().unwrap().clear();
        self.0.generation.fetch_add(1, Ordering::Relaxed);
        self.0.thawed.notify_waiters();
    }

    /// A new connection, in fred's order: reported while still counted as
    /// disconnected, counted as connected a moment later.
    fn reconnect(&self) {
        self.0.reconnects.send(Server::new("a", 1)).unwrap();
        let fake = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(1)).await;
            fake.0.connected.store(true, Ordering::Relaxed);
        });
    }

    fn freeze(&self, master: &'static str) {
        self.0.frozen.lock().unwrap().insert(master);
    }

    fn thaw(&self, master: &'static str) {
        self.0.frozen.lock().unwrap().remove(master);
        self.0.thawed.notify_waiters();
    }

    fn calls(&self) -> Vec<String> {
        self.0.calls.lock().unwrap().clone()
    }

    fn is_subscribed(&self, channel: &str) -> bool {
        self.0.subscribed.lock().unwrap().contains(channel)
    }

    /// Records the call, waits while its master is frozen, then applies it.
    async fn call(&self, op: &str, channels: Vec<String>) -> Result<(), String> {
        self.0.calls.lock().unwrap().push(format!("{op} {}", channels.join(" ")));
        let in_flight = self.0.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        self.0.peak.fetch_max(in_flight, Ordering::Relaxed);
        // Counted down even when the task's timeout drops this call.
        struct Ended<'a>(&'a AtomicUsize);
        impl Drop for Ended<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::Relaxed);
            }
        }
        let _ended = Ended(&self.0.in_flight);
        let master = master(&channels[0]);
        let generation = self.0.generation.load(Ordering::Relaxed);
        loop {
            let thawed = self.0.thawed.notified();
            if self.0.generation.load(Ordering::Relaxed) != generation {
                std::future::pending::<()>().await;
            }
            if !self.0.frozen.lock().unwrap().contains(master) {
                break;
            }
            thawed.await;
        }
        tokio::time::sleep(DELAY).await;
        let mut subscribed = self.0.subscribed.lock().unwrap();
        for channel in channels {
            if op == "subscribe" {
                subscribed.insert(channel);
            } else {
                subscribed.remove(&channel);
            }
        }
        Ok(())
    }
}

impl Subscriber for Fake {
    fn shard_subscribe(&self, channels: Vec<String>) -> impl Future<Output = Result<(), String>> + Send {
        let fake = self.clone();
        async move { fake.call("subscribe", channels).await }
    }

    fn shard_unsubscribe(&self, channels: Vec<String>) -> impl Future<Output = Result<(), String>> + Send {
        let fake = self.clone();
        async move { fake.call("unsubscribe", channels).await }
    }

    fn is_connected(&self) -> bool {
        self.0.connected.load(Ordering::Relaxed)
    }

    fn reconnects(&self) -> broadcast::Receiver<Server> {
        self.0.reconnects.subscribe()
    }

    fn slot_map(&self) -> Option<SlotMap> {
        if !self.0.clustered.load(Ordering::Relaxed) {
            return None;
        }
        if !self.0.mapped.load(Ordering::Relaxed) {
            return Some(SlotMap::default());
        }
        Some(SlotMap(vec![(0, 8191, Arc::from("a")), (8192, 16383, Arc::from("b"))]))
    }
}

/// Whether `answer` came without time passing (the task may run).
async fn at_once(answer: oneshot::Receiver<bool>) -> Option<bool> {
    tokio::time::timeout(Duration::from_millis(1), answer).await.ok().map(Result::unwrap)
}

/// The answer, which must come within [`ANSWER`].
async fn answer(answer: oneshot::Receiver<bool>) -> bool {
    tokio::time::timeout(ANSWER, answer).await.expect("answered in time").expect("answered")
}

/// Waits until `condition` holds, for at most `within`; whether it did.
async fn until(within: Duration, condition: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while !condition() {
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    true
}

/// A fake Redis (a cluster of fake masters) and a front started over it.
fn started() -> (Fake, RoomSubscriptions, JoinHandle<()>) {
    let fake = Fake::new();
    let (front, task) = start_over(fake.clone());
    (fake, front, task)
}

#[tokio::test(start_paused = true)]
async fn a_confirmed_channel_is_answered_at_once_without_the_task() {
    let (fake, front, task) = started();
    assert!(answer(front.watch("room")).await);
    task.abort();
    let _ = task.await;
    let mut again = front.watch("room");
    assert_eq!(again.try_recv(), Ok(true), "answered by the front alone");
    assert_eq!(fake.calls(), ["subscribe room"]);
}

#[tokio::test(start_paused = true)]
async fn a_frozen_master_holds_up_no_channel_of_another() {
    let (fake, front, _task) = started();
    let (a, b) = (on("a", 1), on("b", 1));
    fake.freeze("a");
    let mut frozen = front.watch(&a[0]);
    let healthy = front.watch(&b[0]);
    assert_eq!(tokio::time::timeout(TIMEOUT / 4, healthy).await, Ok(Ok(true)));
    assert_eq!(frozen.try_recv(), Err(TryRecvError::Empty), "still waiting on the frozen master");
    assert!(!answer(frozen).await, "answered once its call timed out");
    assert_eq!(front.shared.table().counts(), (2, 1), "two wanted, one confirmed");
}

#[tokio::test(start_paused = true)]
async fn after_a_failure_every_slot_of_that_master_is_answered_at_once_until_the_retry() {
    let (fake, front, _task) = started();
    let (a, b) = (on("a", 3), on("b", 1));
    fake.freeze("a");
    assert!(!answer(front.watch(&a[0])).await);
    let asked = fake.calls().len();
    assert_eq!(at_once(front.watch(&a[1])).await, Some(false), "another slot of the same master");
    assert_eq!(fake.calls().len(), asked, "not asked of Redis");
    assert!(answer(front.watch(&b[0])).await, "the other master goes on");

    fake.thaw("a");
    for _ in 0..3 {
        tokio::time::sleep(RETRY).await;
    }
    assert!(fake.is_subscribed(&a[0]) && fake.is_subscribed(&a[1]), "the retry pass subscribed them");
    assert_eq!(at_once(front.watch(&a[1])).await, Some(true));
    assert!(answer(front.watch(&a[2])).await, "no backoff any more");
}

#[tokio::test(start_paused = true)]
async fn a_frozen_master_holds_at_most_its_share_of_calls() {
    let (fake, front, _task) = started();
    fake.freeze("a");
    let answers: Vec<_> = on("a", 3 * PER_MASTER).iter().map(|channel| front.watch(channel)).collect();
    let healthy = front.watch(&on("b", 1)[0]);
    assert_eq!(tokio::time::timeout(TIMEOUT / 4, healthy).await, Ok(Ok(true)));
    for refused in answers {
        assert!(!answer(refused).await);
    }
    let to_a = fake.calls().iter().filter(|call| master(call.split(' ').nth(1).unwrap()) == "a").count();
    assert_eq!(to_a, PER_MASTER, "the rest answered by the backoff");
}

#[tokio::test(start_paused = true)]
async fn calls_about_one_channel_keep_their_order() {
    let (fake, front, _task) = started();

    // Watch, unwatch, watch before the task runs: one subscribe.
    let first = front.watch("r1");
    front.unwatch("r1");
    assert!(answer(front.watch("r1")).await);
    assert!(answer(first).await);
    assert!(fake.is_subscribed("r1"));

    // A watch while the unsubscribe is in flight waits for it, then
    // subscribes again.
    front.unwatch("r1");
    tokio::time::sleep(DELAY / 2).await;
    assert_eq!(fake.calls().last().unwrap(), "unsubscribe r1", "in flight");
    assert!(answer(front.watch("r1")).await);
    assert!(fake.is_subscribed("r1"));
    assert_eq!(fake.calls(), ["subscribe r1", "unsubscribe r1", "subscribe r1"]);

    // An unwatch while the subscribe is in flight undoes it afterwards.
    let joined = front.watch("r2");
    tokio::time::sleep(DELAY / 2).await;
    front.unwatch("r2");
    assert!(answer(joined).await, "the join is told its subscribe's outcome");
    tokio::time::sleep(DELAY * 2).await;
    assert!(!fake.is_subscribed("r2"));
    assert_eq!(fake.calls()[3..], ["subscribe r2", "unsubscribe r2"]);
    assert_eq!(front.shared.table().counts(), (1, 1), "r2 forgotten");
}

#[tokio::test(start_paused = true)]
async fn past_the_queue_bound_a_watch_is_answered_false_and_subscribed_by_the_retry() {
    let fake = Fake::new();
    let started = Instant::now();
    let (front, _task) = start_over(fake.clone());
    // The task does not run before the test awaits: all of these wait.
    let waiting: Vec<_> = (0..table::QUEUE).map(|i| front.watch(&format!("c{i}"))).collect();
    let mut refused = front.watch("one too many");
    assert_eq!(refused.try_recv(), Ok(false), "answered at once");
    for waiting in waiting {
        assert!(answer(waiting).await);
    }
    tokio::time::sleep_until(started + RETRY - DELAY).await;
    assert!(!fake.is_subscribed("one too many"), "not before the retry");
    tokio::time::sleep(DELAY * 3).await;
    assert!(fake.is_subscribed("one too many"), "still wanted: the retry pass made it");
}

#[tokio::test(start_paused = true)]
async fn a_frozen_masters_backlog_refuses_no_channel_of_another() {
    let (fake, front, _task) = started();
    fake.freeze("a");
    let on_a = on("a", table::QUEUE + PER_MASTER + 8);
    let backlog: Vec<_> = on_a[..table::QUEUE].iter().map(|channel| front.watch(channel)).collect();
    tokio::time::sleep(DELAY).await;
    assert_eq!(fake.calls().len(), PER_MASTER, "the task took the backlog; a's calls are stuck");
    let more: Vec<_> = on_a[table::QUEUE..].iter().map(|channel| front.watch(channel)).collect();
    let b = on("b", 1);
    let healthy = front.watch(&b[0]);
    assert_eq!(tokio::time::timeout(TIMEOUT / 4, healthy).await, Ok(Ok(true)), "b's channel served");
    assert!(fake.is_subscribed(&b[0]));
    for refused in backlog.into_iter().chain(more) {
        assert!(!answer(refused).await, "a frozen");
    }
}

#[tokio::test(start_paused = true)]
async fn channels_are_subscribed_again_as_soon_as_a_reconnect_is_up() {
    let (fake, front, _task) = started();
    assert!(answer(front.watch("room")).await);

    fake.disconnect();
    assert_eq!(front.watch("other").try_recv(), Ok(false), "Redis down: answered at once");
    assert_eq!(at_once(front.watch("room")).await, Some(false), "nothing counts as confirmed");

    fake.reconnect();
    let both = || fake.is_subscribed("room") && fake.is_subscribed("other");
    assert!(until(RETRY / 2, both).await, "subscribed again before any retry: {:?}", fake.calls());
    assert_eq!(fake.calls().iter().filter(|call| call.contains("room")).count(), 2, "room again");
    assert_eq!(front.watch("room").try_recv(), Ok(true));
}

#[tokio::test(start_paused = true)]
async fn a_join_queued_before_a_disconnect_is_answered_false_and_subscribed_after_the_reconnect() {
    let (fake, front, _task) = started();
    let joined = front.watch("room");
    fake.disconnect();
    assert!(!answer(joined).await, "not asked while disconnected");
    assert!(fake.calls().is_empty());
    fake.reconnect();
    assert!(until(RETRY / 2, || fake.is_subscribed("room")).await, "kept for the new connection");
}

#[tokio::test(start_paused = true)]
async fn a_pass_keeps_to_its_share_when_a_slot_needs_both_calls() {
    let (fake, front, _task) = started();
    // Hash tags on b, by slot: the first needs a subscribe only, the
    // others a subscribe and an unsubscribe each.
    let mut tags = on("b", 3);
    tags.sort_by_key(|tag| redis_keyslot(tag.as_bytes()));
    let kept: Vec<_> = tags.iter().map(|tag| format!("{{{tag}}}kept")).collect();
    let left: Vec<_> = tags[1..].iter().map(|tag| format!("{{{tag}}}left")).collect();
    for channel in &left {
        assert!(answer(front.watch(channel)).await);
    }
    // Their calls time out: left to the retry pass.
    fake.freeze("b");
    let joins: Vec<_> = kept.iter().map(|channel| front.watch(channel)).collect();
    left.iter().for_each(|channel| front.unwatch(channel));
    for join in joins {
        assert!(!answer(join).await);
    }
    fake.thaw("b");
    fake.0.peak.store(0, Ordering::Relaxed);

    let idle = || fake.0.in_flight.load(Ordering::Relaxed) == 0;
    let done = || kept.iter().all(|channel| fake.is_subscribed(channel)) && idle();
    assert!(until(RETRY * 2, done).await, "{:?}", fake.calls());
    assert!(left.iter().all(|channel| !fake.is_subscribed(channel)));
    assert_eq!(fake.0.peak.load(Ordering::Relaxed), PASS_PER_MASTER, "the pass's calls at once");
}

#[tokio::test(start_paused = true)]
async fn a_call_lost_with_the_old_connection_sets_no_backoff_on_the_new_one() {
    let (fake, front, _task) = started();
    let a = on("a", 2);
    fake.freeze("a");
    let lost = front.watch(&a[0]);
    tokio::time::sleep(DELAY).await;
    fake.disconnect();
    fake.reconnect();
    fake.thaw("a");
    assert!(!answer(lost).await, "its call timed out after the reconnect");
    assert!(answer(front.watch(&a[1])).await, "asked of the new connection at once");
    assert!(until(RETRY / 2, || fake.is_subscribed(&a[0])).await, "made again at once, not by the retry");
}

#[tokio::test(start_paused = true)]
async fn without_a_slot_map_every_channel_counts_on_one_master() {
    let fake = Fake::new();
    fake.0.mapped.store(false, Ordering::Relaxed);
    let (front, _task) = start_over(fake.clone());
    fake.freeze("a");
    let answers: Vec<_> = on("a", 3 * PER_MASTER).iter().map(|channel| front.watch(channel)).collect();
    for refused in answers {
        assert!(!answer(refused).await);
    }
    assert_eq!(fake.calls().len(), PER_MASTER, "one master's share, the rest answered by its backoff");
}

#[tokio::test(start_paused = true)]
async fn a_pass_leaves_room_for_joins() {
    let (fake, front, _task) = started();
    let channels = on("b", 4 * BATCH);
    for channel in &channels {
        front.watch(channel);
    }
    tokio::time::sleep(TIMEOUT).await;
    assert_eq!(front.shared.table().counts(), (channels.len() as i64, channels.len() as i64));

    // The sweep subscribes them all again, a batch per slot at most
    // PASS_PER_MASTER at a time; a join meanwhile does not wait for it.
    tokio::time::sleep(SWEEP - TIMEOUT).await;
    tokio::time::sleep(DELAY / 2).await;
    let swept = fake.calls().len();
    assert_eq!(swept, channels.len() + PASS_PER_MASTER, "a pass's calls are bounded");
    assert!(answer(front.watch(&on("b", 4 * BATCH + 1)[4 * BATCH])).await);
    let calls = fake.calls();
    assert!(calls.len() < channels.len() * 2, "joined before the sweep ended: {} calls", calls.len());
}

#[tokio::test(start_paused = true)]
async fn an_unsubscribe_that_timed_out_is_made_by_the_retry_pass() {
    let (fake, front, _task) = started();
    let a = on("a", 1);
    assert!(answer(front.watch(&a[0])).await);
    fake.freeze("a");
    front.unwatch(&a[0]);
    tokio::time::sleep(TIMEOUT + DELAY).await;
    assert_eq!(fake.calls().last().unwrap(), &format!("unsubscribe {}", a[0]), "made, and timed out");
    assert!(fake.is_subscribed(&a[0]));
    assert_eq!(front.shared.table().counts(), (0, 0), "no longer wanted");

    fake.thaw("a");
    tokio::time::sleep(RETRY * 2).await;
    assert!(!fake.is_subscribed(&a[0]), "the retry pass unsubscribed it");
    assert!(front.shared.table().channels_mut().next().is_none(), "and forgot it");
}

#[tokio::test(start_paused = true)]
async fn a_login_storm_on_one_redis_takes_a_call_per_batch() {
    let fake = Fake::single();
    let (front, _task) = start_over(fake.clone());
    // The task does not run before the test awaits: all of these queue.
    let channels: Vec<_> = (0..300).map(|i| format!("user{i}")).collect();
    let joins: Vec<_> = channels.iter().map(|channel| front.watch(channel)).collect();
    for join in joins {
        assert!(answer(join).await);
    }
    assert_eq!(fake.calls().len(), 300usize.div_ceil(BATCH), "{} calls", fake.calls().len());
    assert!(channels.iter().all(|channel| fake.is_subscribed(channel)));
    assert_eq!(front.shared.table().counts(), (300, 300));
}

#[tokio::test(start_paused = true)]
async fn joins_queued_behind_busy_calls_share_the_next_call() {
    let fake = Fake::single();
    let (front, _task) = start_over(fake.clone());
    // Every call in flight at once, one channel each (each watch runs the
    // task before the next), then a storm queued behind them.
    let mut first = Vec::new();
    for i in 0..PER_MASTER {
        first.push(front.watch(&format!("first{i}")));
        tokio::task::yield_now().await;
    }
    assert!(until(DELAY / 2, || fake.0.in_flight.load(Ordering::Relaxed) == PER_MASTER).await);
    let storm: Vec<_> = (0..500).map(|i| front.watch(&format!("storm{i}"))).collect();
    for join in first.into_iter().chain(storm) {
        assert!(answer(join).await);
    }
    assert!(fake.calls().len() <= PER_MASTER + 500usize.div_ceil(BATCH), "{} calls", fake.calls().len());
}

#[tokio::test(start_paused = true)]
async fn a_failed_batched_call_answers_all_its_channels_false_and_backs_off() {
    let fake = Fake::single();
    let (front, _task) = start_over(fake.clone());
    fake.freeze("a");
    fake.freeze("b");
    let channels: Vec<_> = (0..100).map(|i| format!("user{i}")).collect();
    let joins: Vec<_> = channels.iter().map(|channel| front.watch(channel)).collect();
    for join in joins {
        assert!(!answer(join).await, "its call timed out");
    }
    assert_eq!(fake.calls().len(), 1, "one call for them all");
    assert_eq!(at_once(front.watch("another")).await, Some(false), "backing off");
    assert_eq!(fake.calls().len(), 1, "not asked of Redis");

    fake.thaw("a");
    fake.thaw("b");
    let all = || channels.iter().all(|channel| fake.is_subscribed(channel)) && fake.is_subscribed("another");
    assert!(until(RETRY * 2, all).await, "the retry pass made them: {} calls", fake.calls().len());
    assert_eq!(at_once(front.watch(&channels[0])).await, Some(true));
}

#[tokio::test(start_paused = true)]
async fn on_a_cluster_only_channels_sharing_a_slot_share_a_call() {
    let (fake, front, _task) = started();
    // Ten channels in the slot of a's first tag, one in another slot of
    // a's, one on b.
    let (a, b) = (on("a", 2), on("b", 1));
    let tagged: Vec<_> = (0..10).map(|i| format!("{{{}}}user{i}", a[0])).collect();
    let alone = [a[1].clone(), b[0].clone()];
    let joins: Vec<_> = tagged.iter().chain(&alone).map(|channel| front.watch(channel)).collect();
    for join in joins {
        assert!(answer(join).await);
    }
    let mut calls = fake.calls();
    calls.sort();
    let mut expected = vec![format!("subscribe {}", tagged.join(" "))];
    expected.extend(alone.iter().map(|channel| format!("subscribe {channel}")));
    expected.sort();
    assert_eq!(calls, expected, "one call per slot");
}
