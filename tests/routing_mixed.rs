//! A deployment that mixes instances with `ROUTED_ROOMS=true` and instances
//! without (`false`, or a version whose heartbeat does not say) loses no
//! room message in the upgrade direction: a routed instance publishes room
//! broadcasts on the namespace channel, as an unrouted one, while its
//! heartbeat finds a live peer that does not route, and until its
//! heartbeats find none. An unrouted instance that starts among routed ones
//! gets every message sent once they have seen it. Each instance runs as a
//! process, so that its /metrics and its log are its own.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod common;

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use common::Client;
use common::process::Process;
use common::redis::{RedisServer, redis_cli};
use serde_json::json;
use tokio::task::JoinHandle;
use tokio::time::Instant;

const WITHIN: Duration = Duration::from_secs(10);
/// 1 while an instance publishes room broadcasts on room channels.
const ACTIVE: &str = "chatwire_routed_rooms_active";
/// Live peers that do not route rooms.
const UNROUTED: &str = "chatwire_unrouted_peers";
/// Bytes an instance read from room channels.
const ROOM_BYTES: &str = "chatwire_pubsub_received_bytes_total{kind=\"room\"}";
/// The warning a routed instance logs when it falls back.
const FALLBACK: &str = "room messages go on the namespace channel until every instance routes";
/// The line a routed instance logs when it starts using room channels.
const ROUTING: &str = "every live instance routes rooms";
/// The heartbeat interval of the tests' instances, in milliseconds.
const HEARTBEAT_MS: u64 = 200;
/// Their time-to-live: twenty heartbeats, so that a test's assertions
/// survive a stall of several seconds on a loaded machine.
const TTL_MS: u64 = 4_000;

/// Every HTTP request of these tests, each bounded.
static HTTP: LazyLock<reqwest::Client> =
    LazyLock::new(|| reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap());

/// An instance of the deployment `prefix` on `url`, routed or not, that
/// heartbeats every `heartbeat_ms`; not waited for.
fn start(url: &str, prefix: &str, name: &str, routed: bool, heartbeat_ms: u64) -> Process {
    let (heartbeat, ttl) = (heartbeat_ms.to_string(), (TTL_MS * heartbeat_ms / HEARTBEAT_MS).to_string());
    Process::start(&[
        ("REDIS_URL", url),
        ("REDIS_PREFIX", prefix),
        ("INSTANCE_NAME", name),
        ("ROUTED_ROOMS", if routed { "true" } else { "false" }),
        ("HEARTBEAT_INTERVAL_MS", &heartbeat),
        ("INSTANCE_TTL_MS", &ttl),
        ("EVENT_RATE", "10000"),
        ("EVENT_BURST", "10000"),
    ])
}

/// [`start`] with the tests' heartbeat, ready.
async fn instance(url: &str, prefix: &str, name: &str, routed: bool) -> Process {
    let process = start(url, prefix, name, routed, HEARTBEAT_MS);
    wait_ready(&process).await;
    process
}

/// Waits until `process`'s /readyz answers 200.
async fn wait_ready(process: &Process) {
    let deadline = Instant::now() + WITHIN;
    loop {
        let answer = HTTP.get(format!("http://{}/readyz", process.addr)).send().await;
        if answer.is_ok_and(|answer| answer.status() == 200) {
            return;
        }
        assert!(Instant::now() < deadline, "not ready within {WITHIN:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The value of the metric line that starts with `name ` (0 if absent, as
/// a counter not yet counted).
async fn metric(process: &Process, name: &str) -> f64 {
    let response = HTTP.get(format!("http://{}/metrics", process.addr)).send().await.unwrap();
    let text = response.text().await.unwrap();
    text.lines().find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok()).unwrap_or(0.0)
}

/// Waits until `process`'s metric `name` is `value`.
async fn wait_metric(process: &Process, name: &str, value: f64) {
    let deadline = Instant::now() + WITHIN;
    loop {
        let now = metric(process, name).await;
        if now == value {
            return;
        }
        assert!(Instant::now() < deadline, "{name} still {now}, wanted {value}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// redis-cli against the first node of `url` (`-c`: on a Redis Cluster it
/// follows redirections to the key's node).
fn cli(url: &str, args: &[&str]) -> String {
    let port = url.rsplit("//").next().unwrap().split(',').next().unwrap().rsplit(':').next().unwrap();
    let mut with_c = vec!["-c"];
    with_c.extend_from_slice(args);
    redis_cli(port.parse().unwrap(), &with_c)
}

/// The non-empty lines of a redis-cli answer, in pairs.
fn pairs(out: &str) -> Vec<(String, String)> {
    let lines: Vec<&str> = out.lines().map(str::trim).filter(|line| !line.is_empty()).collect();
    lines.chunks_exact(2).map(|pair| (pair[0].to_owned(), pair[1].to_owned())).collect()
}

/// The heartbeats of the deployment: instance id → Redis milliseconds.
fn heartbeats(url: &str, prefix: &str) -> HashMap<String, String> {
    pairs(&cli(url, &["ZRANGE", &format!("{{{prefix}}}:instances"), "0", "-1", "WITHSCORES"]))
        .into_iter()
        .collect()
}

/// The routing entries the heartbeats wrote: instance id → on|off.
fn routing_entries(url: &str, prefix: &str) -> HashMap<String, String> {
    pairs(&cli(url, &["HGETALL", &format!("{{{prefix}}}:routing")])).into_iter().collect()
}

/// The id of the instance named `name` among `ids`.
fn id_of<'a>(ids: impl IntoIterator<Item = &'a String>, name: &str) -> Option<String> {
    ids.into_iter().find(|id| id.starts_with(&format!("{name}#"))).cloned()
}

/// Waits until the instance named `name` has written `rounds` more
/// heartbeats (successful or not: its score moves either way).
async fn wait_rounds(url: &str, prefix: &str, name: &str, rounds: usize) {
    let stamp = || {
        let beats = heartbeats(url, prefix);
        id_of(beats.keys(), name).and_then(|id| beats.get(&id).cloned())
    };
    let deadline = Instant::now() + WITHIN;
    let mut last = stamp();
    let mut seen = 0;
    while seen < rounds {
        assert!(Instant::now() < deadline, "{name} ran {seen} of {rounds} rounds");
        tokio::time::sleep(Duration::from_millis(20)).await;
        let now = stamp();
        if now.is_some() && now != last {
            seen += 1;
            last = now;
        }
    }
}

/// A client of `process` logged in as `name`, in the room `general`.
async fn member(process: &Process, name: &str) -> Arc<Client> {
    let client = process.user(name).await;
    client.next("login").await;
    let reply = client.request("join", json!({ "room": "general" })).await;
    assert_eq!(reply["ok"], true, "{reply}");
    Arc::new(client)
}

/// The texts of the `i`th room and private message of the stream `tag`.
fn texts(tag: &str, i: usize) -> [String; 2] {
    [format!("{tag} room {i}"), format!("{tag} private {i}")]
}

/// Numbered messages from one user to another, a room message and a
/// private one at a time (each answered before the next), sent by a task
/// of its own until stopped.
struct Stream {
    /// The texts' prefix.
    tag: String,
    /// Pairs whose sending has started: every pair numbered from this on
    /// is sent after it was read.
    started: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    task: JoinHandle<usize>,
}

impl Stream {
    /// `from` starts sending to `general` and to `to`, a pair every 20 ms.
    fn start(from: &Arc<Client>, to: &str, tag: &str) -> Self {
        let (started, stop) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicBool::new(false)));
        let (from, to, tag_of_task) = (from.clone(), to.to_owned(), tag.to_owned());
        let (counter, stopped) = (started.clone(), stop.clone());
        let task = tokio::spawn(async move {
            let mut pace = tokio::time::interval(Duration::from_millis(20));
            let mut sent = 0;
            while !stopped.load(Ordering::SeqCst) {
                pace.tick().await;
                counter.store(sent + 1, Ordering::SeqCst);
                let [room, private] = texts(&tag_of_task, sent);
                let reply = from.request("message", json!({ "room": "general", "text": room })).await;
                assert_eq!(reply["ok"], true, "{reply}");
                let reply = from.request("message", json!({ "to": to, "text": private })).await;
                assert_eq!(reply["ok"], true, "{reply}");
                sent += 1;
            }
            sent
        });
        Self { tag: tag.to_owned(), started, stop, task }
    }

    /// The number of the first pair whose sending starts after this call.
    fn next(&self) -> usize {
        self.started.load(Ordering::SeqCst)
    }

    /// Waits until pair `n` has been started.
    async fn wait_past(&self, n: usize) {
        let deadline = Instant::now() + WITHIN;
        while self.next() <= n {
            assert!(Instant::now() < deadline, "{} stuck before pair {n}", self.tag);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops, and returns what was sent.
    async fn finish(self) -> Sent {
        self.stop.store(true, Ordering::SeqCst);
        let pairs = tokio::time::timeout(WITHIN, self.task).await.expect("the stream stops").unwrap();
        Sent { tag: self.tag, pairs }
    }
}

/// What a [`Stream`] sent.
struct Sent {
    tag: String,
    /// Pairs sent, numbered from 0.
    pairs: usize,
}

impl Sent {
    /// The texts of the pairs numbered from `first` on.
    fn from(&self, first: usize) -> BTreeSet<String> {
        (first..self.pairs).flat_map(|i| texts(&self.tag, i)).collect()
    }
}

/// Waits until `client` has every text of `expected` (others may come
/// too); then `from` closes each path a late copy could take with a
/// sentinel (a room message, a private one: room channels while routed;
/// the demo's `new message`: the namespace channel), sent after, and once
/// `client` has the three, returns every message text it received, the
/// sentinels left out. On one channel, messages arrive in the order they
/// were published, so any copy published before a sentinel is in.
async fn received(client: &Client, name: &str, from: &Client, expected: &BTreeSet<String>) -> Vec<String> {
    let mut got = Vec::new();
    let take = |got: &mut Vec<String>| {
        let drained = client.drain(&["message"]);
        got.extend(drained.into_iter().map(|(_, message)| message["text"].as_str().unwrap().to_owned()));
    };
    let deadline = Instant::now() + WITHIN;
    loop {
        take(&mut got);
        let have: BTreeSet<&String> = got.iter().collect();
        let missing: Vec<&String> = expected.iter().filter(|text| !have.contains(text)).collect();
        if missing.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "{name} never received {} messages: {missing:?}", missing.len());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let ends = ["end room", "end private"];
    let reply = from.request("message", json!({ "room": "general", "text": ends[0] })).await;
    assert_eq!(reply["ok"], true, "{reply}");
    let reply = from.request("message", json!({ "to": name, "text": ends[1] })).await;
    assert_eq!(reply["ok"], true, "{reply}");
    from.emit("new message", vec![json!("end")]).await;
    while client.next("new message").await["message"] != "end" {}
    loop {
        take(&mut got);
        if ends.iter().all(|end| got.iter().any(|text| text == end)) {
            break;
        }
        assert!(Instant::now() < deadline + WITHIN, "{name}: no sentinel");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    got.retain(|text| !ends.contains(&text.as_str()));
    got
}

/// Asserts that every text of `expected` is in `got` exactly once, and
/// that nothing in `got` is twice or from elsewhere than `sent`.
fn assert_exactly_once(got: &[String], expected: &BTreeSet<String>, sent: &BTreeSet<String>, who: &str) {
    let mut counts: HashMap<&String, usize> = HashMap::new();
    for text in got {
        *counts.entry(text).or_default() += 1;
    }
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "{who} received copies: {twice:?}");
    let foreign: Vec<_> = got.iter().filter(|text| !sent.contains(*text)).collect();
    assert!(foreign.is_empty(), "{who} received what was not sent: {foreign:?}");
    let missing: Vec<_> = expected.iter().filter(|text| !counts.contains_key(text)).collect();
    assert!(missing.is_empty(), "{who} missed {missing:?}");
}

/// Waits until `x` and `y` hear each other's demo `new message`: the
/// namespace channel carries them between their instances both ways.
async fn hear_each_other(x: &Client, y: &Client) {
    for (from, to) in [(x, y), (y, x)] {
        let deadline = Instant::now() + WITHIN;
        loop {
            from.emit("new message", vec![json!("probe")]).await;
            if tokio::time::timeout(Duration::from_millis(200), to.next("new message")).await.is_ok() {
                break;
            }
            assert!(Instant::now() < deadline, "the namespace channel carries nothing");
        }
    }
}

/// `x` (named `x_name`) and `y` exchange 10 room and 10 private messages
/// each way; each receives every one of the other's exactly once.
async fn exchange(x: &Client, x_name: &str, y: &Client, y_name: &str, tag: &str) {
    for (from, from_name, to, to_name) in [(x, x_name, y, y_name), (y, y_name, x, x_name)] {
        let tag = format!("{tag} from {from_name}");
        let mut sent = BTreeSet::new();
        for i in 0..10 {
            let [room, private] = texts(&tag, i);
            let reply = from.request("message", json!({ "room": "general", "text": room })).await;
            assert_eq!(reply["ok"], true, "{reply}");
            let reply = from.request("message", json!({ "to": to_name, "text": private })).await;
            assert_eq!(reply["ok"], true, "{reply}");
            sent.extend([room, private]);
        }
        let got = received(to, to_name, from, &sent).await;
        assert_exactly_once(&got, &sent, &sent, to_name);
    }
}

async fn a_routed_and_an_unrouted_instance_exchange_every_message_exactly_once(url: &str, prefix: &str) {
    let b = instance(url, prefix, "b", false).await;
    let a = instance(url, prefix, "a", true).await;
    // At once: a's first heartbeat ran before it was ready, and it had not
    // routed anything before.
    let alice = member(&a, "alice").await;
    let bob = member(&b, "bob").await;
    exchange(&alice, "alice", &bob, "bob", "early").await;

    assert_eq!(metric(&a, UNROUTED).await, 1.0, "a saw b");
    assert_eq!(metric(&a, ACTIVE).await, 0.0);
    let warning = a.wait_for_log(FALLBACK, WITHIN);
    assert!(warning.contains("WARN") && warning.contains("\"b#"), "names the unrouted peer: {warning}");
    assert_eq!(metric(&b, ACTIVE).await, 0.0, "b does not route");
    assert_eq!(metric(&b, UNROUTED).await, 0.0, "a routes");
    let entries = routing_entries(url, prefix);
    assert_eq!(entries.get(&id_of(entries.keys(), "a").unwrap()).unwrap(), "on", "{entries:?}");
    assert_eq!(entries.get(&id_of(entries.keys(), "b").unwrap()).unwrap(), "off", "{entries:?}");

    wait_rounds(url, prefix, "a", 3).await;
    exchange(&alice, "alice", &bob, "bob", "later").await;
    assert_eq!(a.count_logs(FALLBACK), 1, "said once, not every round");
    assert_eq!(a.count_logs(ROUTING), 0);
}

async fn routed_instances_switch_on_when_the_unrouted_peer_leaves_and_streams_lose_nothing(
    url: &str,
    prefix: &str,
) {
    let mut b = instance(url, prefix, "b", false).await;
    let a = instance(url, prefix, "a", true).await;
    let c = instance(url, prefix, "c", true).await;
    let alice = member(&a, "alice").await;
    let carol = member(&c, "carol").await;
    let _bob = member(&b, "bob").await;
    for routed in [&a, &c] {
        wait_metric(routed, UNROUTED, 1.0).await;
    }
    let to_carol = Stream::start(&alice, "carol", "alice");
    let to_alice = Stream::start(&carol, "alice", "carol");
    to_carol.wait_past(10).await;
    to_alice.wait_past(10).await;
    assert_eq!(metric(&c, ROOM_BYTES).await, 0.0, "nothing went on room channels yet");

    // b leaves while the messages stream: a and c switch on, each at its
    // own heartbeat.
    b.terminate();
    b.wait_exit(WITHIN);
    let beats = heartbeats(url, prefix);
    assert!(id_of(beats.keys(), "b").is_none(), "b left the instances: {beats:?}");
    let parsers = pairs(&cli(url, &["HGETALL", &format!("{prefix}:parsers")]));
    assert!(id_of(parsers.iter().map(|(id, _)| id), "b").is_none(), "b withdrew its PARSER: {parsers:?}");
    for routed in [&a, &c] {
        wait_metric(routed, ACTIVE, 1.0).await;
        assert_eq!(metric(routed, UNROUTED).await, 0.0);
        assert!(routed.wait_for_log(ROUTING, WITHIN).contains("INFO"));
    }
    let (alice_after, carol_after) = (to_carol.next(), to_alice.next());
    to_carol.wait_past(alice_after + 10).await;
    to_alice.wait_past(carol_after + 10).await;
    let (to_carol, to_alice) = (to_carol.finish().await.from(0), to_alice.finish().await.from(0));

    let got = received(&carol, "carol", &alice, &to_carol).await;
    assert_exactly_once(&got, &to_carol, &to_carol, "carol");
    let got = received(&alice, "alice", &carol, &to_alice).await;
    assert_exactly_once(&got, &to_alice, &to_alice, "alice");
    assert!(metric(&c, ROOM_BYTES).await > 0.0, "room messages came on room channels");
    // b's routing entry goes with the next heartbeat that finds b gone.
    let deadline = Instant::now() + WITHIN;
    while id_of(routing_entries(url, prefix).keys(), "b").is_some() {
        assert!(Instant::now() < deadline, "b's routing entry stays: {:?}", routing_entries(url, prefix));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn an_unrouted_instance_starting_among_routed_ones_gets_all_sent_once_they_saw_it(
    url: &str,
    prefix: &str,
) {
    // a heartbeats slowly, so that it notices b while messages stream.
    let a = start(url, prefix, "a", true, 1_000);
    wait_ready(&a).await;
    let alice = member(&a, "alice").await;
    wait_metric(&a, ACTIVE, 1.0).await;

    let b = instance(url, prefix, "b", false).await;
    let bob = member(&b, "bob").await;
    let to_bob = Stream::start(&alice, "bob", "alice");
    let to_alice = Stream::start(&bob, "alice", "bob");
    wait_metric(&a, UNROUTED, 1.0).await;
    // From here on, a publishes room messages where b reads them.
    let cutoff = to_bob.next();
    assert_eq!(metric(&a, ACTIVE).await, 0.0);
    to_bob.wait_past(cutoff + 20).await;
    to_alice.wait_past(20).await;
    let (to_bob, to_alice) = (to_bob.finish().await, to_alice.finish().await);

    // Before the cutoff, room and private messages to bob went on room
    // channels, which b does not read: at most once.
    let got = received(&bob, "bob", &alice, &to_bob.from(cutoff)).await;
    assert_exactly_once(&got, &to_bob.from(cutoff), &to_bob.from(0), "bob");
    // b publishes on the namespace channel, which a reads: all of them.
    let got = received(&alice, "alice", &bob, &to_alice.from(0)).await;
    assert_exactly_once(&got, &to_alice.from(0), &to_alice.from(0), "alice");
    assert_eq!(a.count_logs(FALLBACK), 1);
}

common::across_backends!(
    a_routed_and_an_unrouted_instance_exchange_every_message_exactly_once,
    routed_instances_switch_on_when_the_unrouted_peer_leaves_and_streams_lose_nothing,
    an_unrouted_instance_starting_among_routed_ones_gets_all_sent_once_they_saw_it,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_routed_instance_stays_on_the_namespace_channel_until_a_heartbeat_succeeds() {
    let redis = RedisServer::start();
    let (url, prefix) = (redis.url(), "unchecked");
    let routing = format!("{{{prefix}}}:routing");
    let mut b = instance(&url, prefix, "b", false).await;
    // The wrong type: every heartbeat fails until it is deleted (b stays
    // ready: a failed heartbeat changes nothing).
    redis.cli(&["SET", &routing, "not a hash"]);
    let a = start(&url, prefix, "a", true, HEARTBEAT_MS);
    a.wait_for_log("heartbeat failed", WITHIN);
    // Never ready: wait for its pub/sub connection instead.
    a.wait_for_log("Redis reachable", WITHIN);
    let alice = member(&a, "alice").await;
    let bob = member(&b, "bob").await;
    hear_each_other(&alice, &bob).await;
    exchange(&alice, "alice", &bob, "bob", "unchecked").await;
    assert_eq!(metric(&a, ACTIVE).await, 0.0);
    assert_eq!(metric(&a, UNROUTED).await, 0.0, "no heartbeat said anything yet");

    redis.cli(&["DEL", &routing]);
    wait_metric(&a, UNROUTED, 1.0).await;
    a.wait_for_log(FALLBACK, WITHIN);

    // Failed heartbeats keep the last decision, even once b is gone.
    redis.cli(&["SET", &routing, "not a hash"]);
    b.terminate();
    b.wait_exit(WITHIN);
    let failed = a.count_logs("heartbeat failed");
    let deadline = Instant::now() + WITHIN;
    while a.count_logs("heartbeat failed") < failed + 3 {
        assert!(Instant::now() < deadline, "a's heartbeats stopped failing");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(metric(&a, ACTIVE).await, 0.0);
    assert_eq!(metric(&a, UNROUTED).await, 1.0);
    redis.cli(&["DEL", &routing]);
    wait_metric(&a, ACTIVE, 1.0).await;
    assert_eq!(metric(&a, UNROUTED).await, 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_heartbeat_without_a_routing_entry_counts_as_an_unrouted_instance() {
    let redis = RedisServer::start();
    let (url, prefix) = (redis.url(), "earlier");
    let a = instance(&url, prefix, "a", true).await;
    wait_metric(&a, ACTIVE, 1.0).await;

    // An earlier version's heartbeat: its score in the instances set, on
    // the Redis clock, and nothing in the routing hash.
    let instances = format!("{{{prefix}}}:instances");
    let heartbeat = || {
        let time = redis.cli(&["TIME"]);
        let mut parts = time.lines().map(|line| line.trim().parse::<u64>().unwrap());
        let ms = parts.next().unwrap() * 1000 + parts.next().unwrap() / 1000;
        redis.cli(&["ZADD", &instances, &ms.to_string(), "old#000001"]);
    };
    let deadline = Instant::now() + WITHIN;
    while metric(&a, ACTIVE).await != 0.0 {
        assert!(Instant::now() < deadline, "a never fell back");
        heartbeat();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(metric(&a, UNROUTED).await, 1.0);
    assert!(a.wait_for_log(FALLBACK, WITHIN).contains("\"old#000001\""));

    // It stops: its heartbeat expires (INSTANCE_TTL_MS), a purges it, and
    // routes again.
    wait_metric(&a, ACTIVE, 1.0).await;
    assert_eq!(metric(&a, UNROUTED).await, 0.0);
    assert_eq!(a.count_logs(ROUTING), 2, "at the start, and after the earlier version left");
    assert!(!heartbeats(&url, prefix).contains_key("old#000001"), "it was purged");
    assert!(!routing_entries(&url, prefix).contains_key("old#000001"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_redis_lost_its_data_a_routed_instance_waits_a_heartbeat_for_its_unrouted_peer() {
    let mut redis = RedisServer::start();
    let (url, prefix) = (redis.url(), "forgotten");
    let b = instance(&url, prefix, "b", false).await;
    let a = start(&url, prefix, "a", true, 2_000);
    wait_ready(&a).await;
    wait_metric(&a, UNROUTED, 1.0).await;

    // Redis comes back empty, and b writes its heartbeat only after a has.
    b.freeze();
    redis.restart();
    let deadline = Instant::now() + WITHIN;
    while id_of(heartbeats(&url, prefix).keys(), "a").is_none() {
        assert!(Instant::now() < deadline, "a never wrote its heartbeat again");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    b.thaw();
    wait_metric(&a, UNROUTED, 1.0).await;
    assert_eq!(metric(&a, ACTIVE).await, 0.0);
    assert_eq!(a.count_logs(ROUTING), 0, "room channels stayed off meanwhile");
}
