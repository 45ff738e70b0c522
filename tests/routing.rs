//! Room-routed delivery (`ROUTED_ROOMS=true`, issue 18): each room's
//! broadcasts travel on a sharded channel of their own, which an instance
//! reads only while it has members in that room. Messages still arrive
//! exactly once, on one Redis and on a Redis Cluster; an instance that hosts
//! none of the recipients reads almost none of their traffic; joins, leaves,
//! disconnects and a Redis restart lose nothing after the join's answer;
//! a frozen master of a Redis Cluster holds up no room of the others.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::process::Process;
use common::redis::{RedisCluster, RedisServer};
use common::{Client, TestApp, spawn_clustered_with};
use serde_json::{Value, json};

const RECOVERY: Duration = Duration::from_secs(10);

/// An instance over `url` with rooms routed, connected to Redis; flood
/// control out of the way of the tests that send hundreds of messages.
async fn routed(url: &str, prefix: &str, name: &str) -> TestApp {
    let app = spawn_clustered_with(url, prefix, name, |c| {
        c.routed_rooms = true;
        c.event_rate = 10_000;
        c.event_burst = 10_000;
    })
    .await;
    app.wait_ready(200, RECOVERY).await;
    app
}

/// The texts of the next `n` messages `client` receives (each within the
/// client's bounded wait).
async fn texts(client: &Client, n: usize) -> Vec<String> {
    let mut texts = Vec::with_capacity(n);
    for _ in 0..n {
        texts.push(client.next("message").await["text"].as_str().unwrap_or_default().to_owned());
    }
    texts
}

/// The texts of the messages `client` receives before the one whose text is
/// `sentinel` (sent last, on the same path as those it closes).
async fn texts_until(client: &Client, sentinel: &str) -> Vec<String> {
    let mut texts = Vec::new();
    loop {
        let text = client.next("message").await["text"].as_str().unwrap_or_default().to_owned();
        if text == sentinel {
            return texts;
        }
        texts.push(text);
    }
}

/// Asserts that no text occurs twice (anywhere, not only side by side).
fn assert_no_duplicates(texts: &[String], context: &str) {
    let mut seen = HashSet::new();
    let twice: Vec<&String> = texts.iter().filter(|text| !seen.insert(*text)).collect();
    assert!(twice.is_empty(), "{context}: received twice: {twice:?} in {texts:?}");
}

/// A second socket of the user `first` logged in as (its session).
async fn second_socket(app: &TestApp, name: &str, session: &Value) -> Client {
    let client = app.client().await;
    let reply = client.request("add user", json!({ "username": name, "session": session })).await;
    assert_eq!(reply["ok"], true, "{reply}");
    client.next("login").await;
    client
}

async fn join(client: &Client, room: &str) {
    let reply = client.request("join", json!({ "room": room })).await;
    assert_eq!(reply["ok"], true, "{reply}");
}

async fn private_room_and_multicast_messages_arrive_exactly_once(url: &str, prefix: &str) {
    let a = routed(url, prefix, "a").await;
    let b = routed(url, prefix, "b").await;
    let alice = a.client().await;
    let login = alice.request("add user", json!("alice")).await;
    alice.next("login").await;
    let alice_on_b = second_socket(&b, "alice", &login["session"]).await;
    let bob = b.user("bob").await;
    let carol = a.user("carol").await;
    let dave = a.user("dave").await;
    for client in [&alice, &alice_on_b, &bob, &carol] {
        join(client, "general").await;
    }
    for client in [&alice, &alice_on_b, &bob, &carol, &dave] {
        client.clear();
    }

    for i in 0..10 {
        bob.request("message", json!({ "to": "alice", "text": format!("to alice {i}") })).await;
        alice.request("message", json!({ "to": "bob", "text": format!("to bob {i}") })).await;
        alice.request("message", json!({ "to": ["bob", "carol"], "text": format!("group {i}") })).await;
        carol.request("message", json!({ "room": "general", "text": format!("room {i}") })).await;
    }
    // alice: bob's 10, the room's 10. Her socket on B: the same, plus her
    // own 20 sent from A. bob: 10 private, 10 group, 10 room. carol: 10
    // group. dave: none. Every text is unique.
    let expected =
        [(&alice, 20, "alice"), (&alice_on_b, 40, "alice on B"), (&bob, 30, "bob"), (&carol, 10, "carol")];
    for (client, n, who) in expected {
        assert_no_duplicates(&texts(client, n).await, who);
    }
    // Then nothing more: sentinels sent last, on the paths of the messages.
    carol.request("message", json!({ "room": "general", "text": "end room" })).await;
    for (client, who) in [(&alice, "alice"), (&alice_on_b, "alice on B"), (&bob, "bob")] {
        assert_eq!(texts_until(client, "end room").await, Vec::<String>::new(), "{who}: no extra copy");
    }
    alice.request("message", json!({ "to": ["bob", "carol"], "text": "end group" })).await;
    assert_eq!(texts_until(&carol, "end group").await, Vec::<String>::new(), "carol: no extra copy");
    bob.request("message", json!({ "to": "dave", "text": "end dave" })).await;
    assert_eq!(texts_until(&dave, "end dave").await, Vec::<String>::new(), "dave got nothing else");
}

async fn joins_racing_with_messages_lose_nothing_after_the_answer(url: &str, prefix: &str) {
    let a = routed(url, prefix, "a").await;
    let b = routed(url, prefix, "b").await;
    let alice = a.user("alice").await;
    for i in 0..8 {
        let room = format!("race{i}");
        join(&alice, &room).await;
        let guest = b.user(&format!("guest{i}")).await;
        // Messages sent while the join is on its way may or may not arrive;
        // each one sent after its answer must, and none twice.
        let (_, joined) = tokio::join!(
            async {
                for n in 0..5 {
                    alice.request("message", json!({ "room": room, "text": format!("early {n}") })).await;
                }
            },
            guest.request("join", json!({ "room": room })),
        );
        assert_eq!(joined["ok"], true, "{joined}");
        // One room channel, one sender: "after" is the last to arrive.
        alice.request("message", json!({ "room": room, "text": "after" })).await;
        let texts = texts_until(&guest, "after").await;
        assert_no_duplicates(&texts, &format!("round {i}"));
        // Alternately a leave and a disconnect, racing with the next message.
        if i % 2 == 0 {
            let (_, left) = tokio::join!(
                alice.request("message", json!({ "room": room, "text": "while leaving" })),
                guest.request("leave", json!({ "room": room })),
            );
            assert_eq!(left["ok"], true);
        } else {
            tokio::join!(
                alice.request("message", json!({ "room": room, "text": "while leaving" })),
                guest.close()
            );
        }
    }
}

async fn the_last_member_leaving_with_messages_in_flight_then_rejoining(url: &str, prefix: &str) {
    let a = routed(url, prefix, "a").await;
    let b = routed(url, prefix, "b").await;
    let alice = a.member("alice", "general").await;
    let bob = b.member("bob", "general").await;
    let sending = async {
        for n in 0..50 {
            alice.request("message", json!({ "room": "general", "text": format!("m{n}") })).await;
        }
    };
    let leaving = async {
        bob.next("message").await;
        let left = bob.request("leave", json!({ "room": "general" })).await;
        assert_eq!(left["ok"], true);
    };
    tokio::join!(sending, leaving);
    join(&bob, "general").await;
    alice.request("message", json!({ "room": "general", "text": "welcome back" })).await;
    // Before it: the messages bob got before leaving, and maybe some sent
    // before he came back that were still on their way; in order, none twice.
    let texts = texts_until(&bob, "welcome back").await;
    let numbers: Vec<u32> = texts.iter().map(|text| text.trim_start_matches('m').parse().unwrap()).collect();
    assert!(numbers.windows(2).all(|pair| pair[0] < pair[1]), "in order, none twice: {texts:?}");
    assert!(numbers.iter().all(|&n| n > 0 && n < 50), "{texts:?}");
    alice.request("message", json!({ "room": "general", "text": "last" })).await;
    assert_eq!(bob.next("message").await["text"], "last", "welcome back came once");
}

common::across_backends!(
    private_room_and_multicast_messages_arrive_exactly_once,
    joins_racing_with_messages_lose_nothing_after_the_answer,
    the_last_member_leaving_with_messages_in_flight_then_rejoining
);

/// Sends room messages from `from` until `to` receives one.
async fn wait_for_delivery(from: &Client, to: &Client, room: &str) {
    let started = Instant::now();
    for i in 0.. {
        from.request("message", json!({ "room": room, "text": format!("probe {i}") })).await;
        if tokio::time::timeout(Duration::from_millis(250), to.next("message")).await.is_ok() {
            return;
        }
        assert!(started.elapsed() < RECOVERY, "no cross-instance delivery within {RECOVERY:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn room_subscriptions_come_back_after_a_redis_restart() {
    let (mut redis, a, b) = pair("routed_restart").await;
    let alice = a.member("alice", "general").await;
    let bob = b.member("bob", "general").await;
    wait_for_delivery(&alice, &bob, "general").await;

    redis.kill();
    a.wait_ready(503, RECOVERY).await;
    b.wait_ready(503, RECOVERY).await;
    redis.restart();
    a.wait_ready(200, RECOVERY).await;
    b.wait_ready(200, RECOVERY).await;

    bob.clear();
    wait_for_delivery(&alice, &bob, "general").await;
    alice.clear();
    wait_for_delivery(&bob, &alice, "general").await;
    let sent = alice.request("message", json!({ "to": "bob", "text": "after the restart" })).await;
    assert_eq!(sent["ok"], true);
    bob.until_text("message", "after the restart").await;
    alice.request("message", json!({ "to": "bob", "text": "sentinel" })).await;
    assert_eq!(texts_until(&bob, "sentinel").await, Vec::<String>::new(), "nothing twice");
}

/// A Redis and two routed instances sharing it, `a` and `b`, under `prefix`.
async fn pair(prefix: &str) -> (RedisServer, TestApp, TestApp) {
    let redis = RedisServer::start();
    let a = routed(&redis.url(), prefix, "a").await;
    let b = routed(&redis.url(), prefix, "b").await;
    (redis, a, b)
}

/// Waits until `channel` has `count` shard subscribers on `redis`.
async fn wait_subscribers(redis: &RedisServer, channel: &str, count: usize) {
    let subscribers = || redis.cli(&["PUBSUB", "SHARDNUMSUB", channel]).trim_end().to_owned();
    let deadline = Instant::now() + Duration::from_secs(15);
    while !subscribers().ends_with(&format!("\n{count}")) {
        assert!(Instant::now() < deadline, "{channel}: {} subscribers, not {count}", subscribers());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disconnected_users_channel_is_unsubscribed_after_the_linger() {
    let redis = RedisServer::start();
    let a = routed(&redis.url(), "linger_disconnect", "a").await;
    let bob = a.user("bob").await;
    let channel = "linger_disconnect-request#/#user:bob#";
    wait_subscribers(&redis, channel, 1).await;
    assert_eq!(
        redis
            .cli(&["PUBSUB", "SHARDNUMSUB", "linger_disconnect-request#/#online#"])
            .trim_end()
            .lines()
            .last(),
        Some("0"),
        "no channel for the namespace-wide room"
    );
    bob.close().await;
    wait_subscribers(&redis, channel, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unused_room_channel_is_unsubscribed_after_the_linger() {
    let (redis, a, b) = pair("linger").await;
    let channel = "linger-request#/#room:quiet#";
    let _alice = a.member("alice", "quiet").await;
    let bob = b.member("bob", "quiet").await;
    wait_subscribers(&redis, channel, 2).await;
    bob.request("leave", json!({ "room": "quiet" })).await;
    wait_subscribers(&redis, channel, 1).await;
}

/// The counting case: one of two local members leaving must not unsubscribe.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_stays_subscribed_while_another_local_member_remains() {
    let (redis, a, b) = pair("counted").await;
    let alice = a.member("alice", "shared").await;
    let carol = a.member("carol", "shared").await;
    let dave = a.member("dave", "solo").await;
    let bob = b.member("bob", "shared").await;
    let (shared, solo) = ("counted-request#/#room:shared#", "counted-request#/#room:solo#");
    wait_subscribers(&redis, shared, 2).await;

    // carol leaves the room alice stays in; then dave empties his room, whose
    // unsubscribe, after the same linger, tells when carol's has passed.
    assert_eq!(carol.request("leave", json!({ "room": "shared" })).await["ok"], true);
    assert_eq!(dave.request("leave", json!({ "room": "solo" })).await["ok"], true);
    wait_subscribers(&redis, solo, 0).await;

    wait_subscribers(&redis, shared, 2).await;
    bob.request("message", json!({ "room": "shared", "text": "still here" })).await;
    assert_eq!(alice.next("message").await["text"], "still here");
    carol.expect_none("message", Duration::ZERO).await;
}

/// `chatwire_pubsub_received_bytes_total`, summed over kinds.
async fn pubsub_bytes(process: &Process) -> f64 {
    let text = reqwest::get(format!("http://{}/metrics", process.addr)).await.unwrap().text().await.unwrap();
    text.lines()
        .filter(|line| line.starts_with("chatwire_pubsub_received_bytes_total{"))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Three instances: alice on A and bob on B exchange 200 private and 200
/// room messages of about 200 bytes; carol is on C. Returns the pub/sub
/// bytes B and C read meanwhile.
async fn bytes_read_by_recipient_and_bystander(url: &str, prefix: &str, routed: &str) -> (f64, f64) {
    let env = |name: &'static str| {
        [
            ("REDIS_URL", url),
            ("REDIS_PREFIX", prefix),
            ("INSTANCE_NAME", name),
            ("ROUTED_ROOMS", routed),
            ("EVENT_RATE", "10000"),
            ("EVENT_BURST", "10000"),
        ]
    };
    let (a, b, c) = (Process::start(&env("a")), Process::start(&env("b")), Process::start(&env("c")));
    for process in [&a, &b, &c] {
        common::wait_ready_at(&format!("http://{}", process.addr), 200, RECOVERY).await;
    }
    let alice = a.user("alice").await;
    let bob = b.user("bob").await;
    let _carol = c.user("carol").await;
    join(&alice, "pair").await;
    join(&bob, "pair").await;
    wait_for_delivery(&alice, &bob, "pair").await;
    while tokio::time::timeout(Duration::from_millis(300), bob.next("message")).await.is_ok() {}

    let (b_before, c_before) = (pubsub_bytes(&b).await, pubsub_bytes(&c).await);
    let text = "x".repeat(200);
    for i in 0..200 {
        alice.request("message", json!({ "to": "bob", "text": format!("{i} {text}") })).await;
        alice.request("message", json!({ "room": "pair", "text": format!("{i} {text}") })).await;
    }
    for _ in 0..400 {
        bob.next("message").await;
    }
    let (b_read, c_read) = (pubsub_bytes(&b).await - b_before, pubsub_bytes(&c).await - c_before);
    eprintln!(
        "ROUTED_ROOMS={routed}: pub/sub bytes in the window: B {b_read}, C {c_read} (C/B {:.4})",
        c_read / b_read
    );
    assert!(c_before > 0.0, "C's counter counts (the logins' presence events)");
    assert!(b_read > 400.0 * 200.0, "B read the messages: {b_read}");
    (b_read, c_read)
}

async fn uninvolved_instance_reads_almost_nothing(url: &str, prefix: &str) {
    let (b_read, c_read) = bytes_read_by_recipient_and_bystander(url, prefix, "true").await;
    assert!(c_read <= 0.05 * b_read, "C read {c_read} bytes, B {b_read}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_routing_the_uninvolved_instance_reads_as_much_as_the_recipient() {
    let redis = RedisServer::start();
    let (b_read, c_read) = bytes_read_by_recipient_and_bystander(&redis.url(), "unrouted", "false").await;
    assert!(c_read >= 0.95 * b_read, "C read {c_read} bytes, B {b_read}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uninvolved_instance_reads_under_five_percent_of_the_recipients_bytes() {
    let redis = RedisServer::start();
    uninvolved_instance_reads_almost_nothing(&redis.url(), "bytes").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uninvolved_instance_reads_under_five_percent_on_a_redis_cluster() {
    let cluster = RedisCluster::start();
    uninvolved_instance_reads_almost_nothing(&cluster.url(), "bytes_cluster").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn room_publishes_spread_over_the_masters_of_a_cluster() {
    let cluster = RedisCluster::start();
    let a = routed(&cluster.url(), "spread", "a").await;
    let b = routed(&cluster.url(), "spread", "b").await;
    let alice = a.user("alice").await;
    let bob = b.user("bob").await;
    for i in 0..40 {
        join(&alice, &format!("r{i}")).await;
        join(&bob, &format!("r{i}")).await;
    }
    wait_for_delivery(&alice, &bob, "r0").await;
    while tokio::time::timeout(Duration::from_millis(300), bob.next("message")).await.is_ok() {}
    for node in &cluster.nodes {
        node.cli(&["CONFIG", "RESETSTAT"]);
    }
    for n in 0..20 {
        for i in 0..40 {
            alice.request("message", json!({ "room": format!("r{i}"), "text": format!("{n}") })).await;
        }
    }
    for _ in 0..800 {
        bob.next("message").await;
    }
    let publishes: Vec<u64> = cluster
        .nodes
        .iter()
        .map(|node| {
            let stats = node.cli(&["INFO", "commandstats"]);
            stats
                .lines()
                .find(|line| line.starts_with("cmdstat_spublish:"))
                .and_then(|line| line.split("calls=").nth(1)?.split(',').next()?.parse().ok())
                .unwrap_or(0)
        })
        .collect();
    eprintln!("SPUBLISH per master: {publishes:?}");
    let total: u64 = publishes.iter().sum();
    assert!(total >= 800, "{publishes:?}");
    assert!(publishes.iter().all(|&calls| calls * 2 <= total), "no master over half: {publishes:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_joined_while_redis_is_down_is_subscribed_once_it_is_back() {
    let (mut redis, a, b) = pair("routed_outage").await;
    let alice = a.member("alice", "general").await;

    redis.kill();
    b.wait_ready(503, RECOVERY).await;
    // Served locally, without waiting on Redis for each subscription.
    let started = Instant::now();
    let bob = b.member("bob", "general").await;
    assert!(started.elapsed() < Duration::from_secs(4), "login and join took {:?}", started.elapsed());

    redis.restart();
    a.wait_ready(200, RECOVERY).await;
    b.wait_ready(200, RECOVERY).await;
    wait_for_delivery(&alice, &bob, "general").await;
    let sent = alice.request("message", json!({ "to": "bob", "text": "private, after the outage" })).await;
    assert_eq!(sent["ok"], true);
    loop {
        if bob.next("message").await["text"] == "private, after the outage" {
            break;
        }
    }
}

/// A counter of `process`'s `/metrics`.
async fn counter(process: &Process, name: &str) -> f64 {
    let text = reqwest::get(format!("http://{}/metrics", process.addr)).await.unwrap().text().await.unwrap();
    let value = text.lines().find_map(|line| line.strip_prefix(&format!("{name} ")));
    value.unwrap_or_else(|| panic!("no {name} in {text}")).parse().unwrap()
}

/// A login storm on a routed instance: the users' channels are subscribed
/// in batches while the instance publishes the logins' presence events.
/// Every publish succeeds (fred took Redis's extra replies to a
/// multi-channel SSUBSCRIBE for those of the next commands: publishes
/// failed though Redis had delivered them, and later subscribes were
/// answered early), and each user hears from another instance as soon as
/// its login is answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_login_storm_publishes_everything_and_every_user_is_reachable_at_once() {
    let redis = RedisServer::start();
    let url = redis.url();
    let env = |name: &'static str| {
        [
            ("REDIS_URL", url.as_str()),
            ("REDIS_PREFIX", "storm"),
            ("INSTANCE_NAME", name),
            ("ROUTED_ROOMS", "true"),
            ("MAX_CONNECTIONS_PER_ADDRESS", "0"),
            ("EVENT_RATE", "10000"),
            ("EVENT_BURST", "10000"),
        ]
    };
    let (a, b) = (Process::start(&env("a")), Process::start(&env("b")));
    for process in [&a, &b] {
        common::wait_ready_at(&format!("http://{}", process.addr), 200, RECOVERY).await;
    }
    let sender = Arc::new(a.user("sender").await);
    let logins = (0..300).map(|i| {
        let (b, sender) = (&b, sender.clone());
        async move {
            let name = format!("storm{i}");
            let user = b.user(&name).await;
            let sent = sender.request("message", json!({ "to": name, "text": name })).await;
            assert_eq!(sent["ok"], true, "{sent}");
            assert_eq!(user.next("message").await["text"], name.as_str(), "{name} hears at once");
            user
        }
    });
    let users = futures_util::future::join_all(logins).await;
    // Publishes leave in order: once this one arrived, b's earlier ones are done.
    let flush = users[0].request("message", json!({ "to": "sender", "text": "flush" })).await;
    assert_eq!(flush["ok"], true, "{flush}");
    assert_eq!(sender.next("message").await["text"], "flush");
    for (process, name) in [(&a, "a"), (&b, "b")] {
        let unpublished = counter(process, "chatwire_pubsub_unpublished_total").await;
        assert_eq!(unpublished, 0.0, "instance {name} published everything");
    }
}

/// `chatwire_room_channels{state}` of `process`.
async fn room_channels(process: &Process, state: &str) -> u64 {
    let text = reqwest::get(format!("http://{}/metrics", process.addr)).await.unwrap().text().await.unwrap();
    let prefix = format!("chatwire_room_channels{{state=\"{state}\"}} ");
    let line = text.lines().find_map(|line| line.strip_prefix(&prefix));
    line.unwrap_or_else(|| panic!("no {prefix}in {text}")).parse().unwrap()
}

/// Waits until `process` has `count` room channels in `state`.
async fn wait_room_channels(process: &Process, state: &str, count: u64) {
    let deadline = Instant::now() + RECOVERY;
    while room_channels(process, state).await != count {
        assert!(
            Instant::now() < deadline,
            "{state}: {} room channels, not {count}",
            room_channels(process, state).await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Rooms whose channels hash to the cluster's master `node`, and whose
/// history keys do not hash to `avoid`.
fn rooms_on(cluster: &RedisCluster, prefix: &str, node: usize, avoid: usize, n: usize) -> Vec<String> {
    let slot = |key: String| fred::util::redis_keyslot(key.as_bytes());
    (0..)
        .map(|i| format!("n{node}r{i}"))
        .filter(|room| {
            cluster.owner(slot(format!("{prefix}-request#/#room:{room}#")), node) == node
                && cluster.owner(slot(format!("{prefix}:history:room:{room}")), node) != avoid
        })
        .take(n)
        .collect()
}

/// A join sent in the background; its ack is awaited later.
fn join_later(client: &Arc<Client>, room: &str) -> tokio::task::JoinHandle<Value> {
    let (client, room) = (client.clone(), room.to_owned());
    tokio::spawn(async move {
        client.request_within("join", vec![json!({ "room": room })], Duration::from_secs(15)).await
    })
}

/// One master of a Redis Cluster frozen (SIGSTOP: its connections stay
/// open and nothing answers), for less than the cluster's node timeout.
/// Joins to rooms whose channels hash to the other masters do not wait on
/// it: they are answered while the joins to the frozen master's rooms still
/// wait for their subscriptions, and their messages cross instances. Once
/// it thaws, the frozen master's rooms are subscribed and deliver, each
/// message once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_on_healthy_masters_are_served_while_another_master_is_frozen() {
    let cluster = RedisCluster::start_with_node_timeout(60_000);
    let prefix = "frozen_master";
    let slot = |key: &str| fred::util::redis_keyslot(key.as_bytes());
    // Frozen: neither the master of the state keys (logins and joins would
    // wait on it) nor that of the namespace channel (presence).
    let busy = [cluster.owner(slot(prefix), 0), cluster.owner(slot(&format!("{prefix}-request#/#")), 0)];
    let frozen = (0..3).find(|node| !busy.contains(node)).unwrap();
    let healthy: Vec<usize> = (0..3).filter(|node| *node != frozen).collect();
    let healthy_rooms = [
        rooms_on(&cluster, prefix, healthy[0], frozen, 1).remove(0),
        rooms_on(&cluster, prefix, healthy[1], frozen, 1).remove(0),
    ];
    let frozen_rooms = rooms_on(&cluster, prefix, frozen, frozen, 2);
    let channel = |room: &str| format!("{prefix}-request#/#room:{room}#");

    let url = cluster.url();
    let start = |name| {
        let routed = [("REDIS_URL", url.as_str()), ("REDIS_PREFIX", prefix), ("ROUTED_ROOMS", "true")];
        Process::start(&[routed.as_slice(), &[("INSTANCE_NAME", name), ("EVENT_RATE", "10000")]].concat())
    };
    let (a, b) = (start("a"), start("b"));
    for process in [&a, &b] {
        common::wait_ready_at(&format!("http://{}", process.addr), 200, RECOVERY).await;
    }
    let [alice, carol, erin] =
        [a.user("alice").await, a.user("carol").await, a.user("erin").await].map(Arc::new);
    let [bob, dave, frank] = [b.user("bob").await, b.user("dave").await, b.user("frank").await].map(Arc::new);
    // The store's scripts are loaded at their first use, on every master at
    // once (fred's SCRIPT LOAD waits for all of them): with one frozen, that
    // would hold up every store call. So each script the test uses runs
    // before: the lists a login pushes, a join, a message.
    for client in [&alice, &bob] {
        assert_eq!(client.request("users", Value::Null).await["ok"], true);
        assert_eq!(client.request("rooms", Value::Null).await["ok"], true);
        join(client, "warm").await;
    }
    wait_for_delivery(&alice, &bob, "warm").await;
    for process in [&a, &b] {
        wait_room_channels(process, "confirmed", 4).await; // the users' own channels, and warm
        wait_room_channels(process, "pending", 0).await;
    }

    cluster.nodes[frozen].freeze();
    let frozen_at = Instant::now();
    // carol and dave join a room of the frozen master: their subscriptions
    // wait on it (until their timeout), and so do their joins.
    let carol_joined = join_later(&carol, &frozen_rooms[0]);
    let dave_joined = join_later(&dave, &frozen_rooms[0]);
    wait_room_channels(&a, "pending", 1).await;
    wait_room_channels(&b, "pending", 1).await;
    // Meanwhile alice and bob join rooms of the two healthy masters.
    for room in &healthy_rooms {
        join(&alice, room).await;
        join(&bob, room).await;
    }
    assert!(
        !carol_joined.is_finished() && !dave_joined.is_finished(),
        "the joins to healthy masters' rooms were answered first"
    );
    let healthy_joined = frozen_at.elapsed();
    for (node, room) in healthy.iter().zip(&healthy_rooms) {
        wait_subscribers(&cluster.nodes[*node], &channel(room), 2).await;
    }
    alice.request("message", json!({ "room": healthy_rooms[0], "text": "from A while frozen" })).await;
    bob.request("message", json!({ "room": healthy_rooms[1], "text": "from B while frozen" })).await;
    bob.until_text("message", "from A while frozen").await;
    alice.until_text("message", "from B while frozen").await;
    assert_eq!(room_channels(&a, "confirmed").await, 6, "alice's two rooms confirmed");
    // Answered once their subscriptions gave up; the joins go on.
    assert_eq!(carol_joined.await.unwrap()["ok"], true);
    assert_eq!(dave_joined.await.unwrap()["ok"], true);
    eprintln!(
        "while frozen: 4 joins to healthy masters' rooms answered within {healthy_joined:?}, those to the frozen one's after {:?}",
        frozen_at.elapsed()
    );
    // Another slot of the frozen master, while it is still frozen: answered
    // by the master's backoff, without a call of its own. The joins above
    // may be answered (membership's 2 s bound) just before their call times
    // out (also 2 s): wait until each instance's call failed and its backoff
    // began.
    let deadline = Instant::now() + RECOVERY;
    while [&a, &b].iter().any(|process| process.count_logs("room channel call failed") == 0) {
        assert!(Instant::now() < deadline, "no failed call within {RECOVERY:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let erin_joined = join_later(&erin, &frozen_rooms[1]);
    let frank_joined = join_later(&frank, &frozen_rooms[1]);
    assert_eq!(erin_joined.await.unwrap()["ok"], true);
    assert_eq!(frank_joined.await.unwrap()["ok"], true);
    for process in [&a, &b] {
        assert_eq!(process.count_logs("room channel call failed"), 1, "{}", process.logs());
    }

    cluster.nodes[frozen].thaw();
    for room in &frozen_rooms {
        wait_subscribers(&cluster.nodes[frozen], &channel(room), 2).await;
    }
    wait_room_channels(&a, "pending", 0).await;
    wait_room_channels(&b, "pending", 0).await;
    assert_eq!(room_channels(&a, "confirmed").await, 8);
    wait_for_delivery(&carol, &dave, &frozen_rooms[0]).await;
    wait_for_delivery(&frank, &erin, &frozen_rooms[1]).await;
    // Every room delivers each message once.
    let rooms = [
        (&alice, &bob, &healthy_rooms[0]),
        (&carol, &dave, &frozen_rooms[0]),
        (&frank, &erin, &frozen_rooms[1]),
    ];
    for (from, to, room) in rooms {
        for text in ["once 1", "once 2", "end"] {
            from.request("message", json!({ "room": room, "text": format!("{room} {text}") })).await;
        }
        to.until_text("message", &format!("{room} once 1")).await;
        assert_eq!(texts_until(to, &format!("{room} end")).await, [format!("{room} once 2")], "{room}");
    }
}
