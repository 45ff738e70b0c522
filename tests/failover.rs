//! Surviving failures, each with a real redis-server the test starts and
//! kills: Redis down at start, Redis restarting under traffic, and an
//! instance dying without cleaning up.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod common;

use std::time::Duration;

use common::process::Process;
use common::redis::{RedisServer, free_port};
use common::{Client, TestApp, assert_error, spawn_clustered};
use serde_json::json;

const RECOVERY: Duration = Duration::from_secs(10);
/// Longer than an instance would take to judge another dead by its
/// connections (a look every 0.5 s, 1.5 s of absence), with room to spare.
const LIVENESS_VERDICT: Duration = Duration::from_secs(5);

/// Sends probes from `from` to `room` until `to` receives one; returns how long it took.
async fn wait_for_delivery(from: &Client, to: &Client, room: &str, within: Duration) -> Duration {
    let started = tokio::time::Instant::now();
    for i in 0.. {
        let text = format!("probe {i}");
        let sent = from.request("message", json!({ "room": room, "text": text })).await;
        assert_eq!(sent["ok"], true, "local sending keeps working: {sent}");
        if let Ok(got) = tokio::time::timeout(Duration::from_millis(250), to.next("message")).await {
            assert!(got["text"].as_str().unwrap().starts_with("probe"));
            return started.elapsed();
        }
        assert!(started.elapsed() < within, "no cross-instance delivery within {within:?}");
    }
    unreachable!()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_started_without_redis_serves_locally_then_joins_the_cluster() {
    let port = free_port(false);
    let url = format!("redis://127.0.0.1:{port}");
    let a = spawn_clustered(&url, "late", "a").await;
    a.wait_ready(503, Duration::from_secs(5)).await;

    // Local clients are served while Redis is down.
    let alice = a.member("alice", "general").await;
    let dave = a.member("dave", "general").await;
    alice.request("message", json!({ "room": "general", "text": "no redis yet" })).await;
    assert_eq!(dave.next("message").await["text"], "no redis yet");
    let private = alice.request("message", json!({ "to": "dave", "text": "psst" })).await;
    assert_eq!(private["ok"], true);
    assert_eq!(dave.next("message").await["text"], "psst");

    // Redis appears: the instance connects by itself and publishes its users.
    let _redis = RedisServer::start_on(port);
    a.wait_ready(200, RECOVERY).await;
    let b = spawn_clustered(&url, "late", "b").await;
    b.wait_ready(200, RECOVERY).await;
    let carol = b.member("carol", "general").await;
    let users = carol.request_empty("users").await;
    assert_eq!(
        users["users"],
        json!([{ "username": "alice" }, { "username": "carol" }, { "username": "dave" }])
    );
    let joined = carol.request("join", json!({ "room": "general" })).await;
    assert_eq!(joined["members"], json!(["alice", "carol", "dave"]));
    wait_for_delivery(&alice, &carol, "general", RECOVERY).await;
    let history = carol.request("history", json!({ "room": "general" })).await;
    assert!(
        history["messages"].as_array().unwrap().iter().any(|m| m["text"] == "no redis yet"),
        "history written before Redis came up is saved once it does: {history}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_under_traffic_heals_by_itself() {
    let mut redis = RedisServer::start();
    let (a, b) = (
        spawn_clustered(&redis.url(), "restart", "a").await,
        spawn_clustered(&redis.url(), "restart", "b").await,
    );
    a.wait_ready(200, RECOVERY).await;
    b.wait_ready(200, RECOVERY).await;
    let alice = a.member("alice", "general").await;
    let dave = a.member("dave", "general").await;
    let bob = b.member("bob", "general").await;
    wait_for_delivery(&alice, &bob, "general", RECOVERY).await;
    dave.clear();

    redis.kill();
    a.wait_ready(503, RECOVERY).await;

    // Clients on the same instance keep chatting, without waiting on Redis:
    // twenty messages in a row would take minutes if each waited for a timeout.
    for i in 0..20 {
        let reply =
            alice.request("message", json!({ "room": "general", "text": format!("outage {i}") })).await;
        assert_eq!(reply["ok"], true);
    }
    for i in 0..20 {
        assert_eq!(dave.next("message").await["text"], format!("outage {i}"));
    }
    // New logins on an instance are served locally too.
    let erin = a.member("erin", "general").await;
    // Asking for history during the outage is answered, not left hanging.
    let history = erin.request("history", json!({ "room": "general" })).await;
    assert!(history["ok"] == true || history["error"]["code"] == "unavailable", "{history}");

    redis.restart();
    a.wait_ready(200, RECOVERY).await;
    b.wait_ready(200, RECOVERY).await;
    // Subscriptions are restored: delivery crosses instances again, both ways.
    bob.clear();
    let took = wait_for_delivery(&alice, &bob, "general", RECOVERY).await;
    assert!(took < RECOVERY);
    alice.clear();
    wait_for_delivery(&bob, &alice, "general", RECOVERY).await;
    // The restarted (empty) Redis was refilled from the instances' own state.
    let users = bob.request_empty("users").await;
    assert_eq!(users["numUsers"], 4, "{users}");
    let history = bob.request("history", json!({ "room": "general", "limit": 50 })).await;
    let texts: Vec<&str> =
        history["messages"].as_array().unwrap().iter().filter_map(|m| m["text"].as_str()).collect();
    assert!(texts.contains(&"outage 19"), "messages sent during the outage reach history: {texts:?}");
    // Every instance's Redis connections closed with the restart, and none
    // was taken for dead.
    bob.expect_none("user left", LIVENESS_VERDICT).await;
    alice.expect_none("user left", Duration::ZERO).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_request_hangs_while_redis_is_down() {
    let mut redis = RedisServer::start();
    let a = spawn_clustered(&redis.url(), "hang", "a").await;
    a.wait_ready(200, RECOVERY).await;
    let alice = a.member("alice", "general").await;
    let bob = a.member("bob", "general").await;
    redis.kill();
    a.wait_ready(503, RECOVERY).await;
    // Every event gets an answer within the client's patience.
    for (event, arg) in [
        ("users", None),
        ("rooms", None),
        ("join", Some(json!({ "room": "other" }))),
        ("leave", Some(json!({ "room": "other" }))),
        ("history", Some(json!({ "room": "general" }))),
        ("history", Some(json!({ "with": "bob" }))),
        ("message", Some(json!({ "to": "bob", "text": "hi" }))),
        ("typing", Some(json!({ "room": "general" }))),
        ("new message", Some(json!("hi all"))),
    ] {
        let reply = match arg {
            Some(arg) => alice.request(event, arg).await,
            None => alice.request_empty(event).await,
        };
        assert!(reply["ok"] == true || reply["error"]["code"] == "unavailable", "{event}: {reply}");
    }
    assert_eq!(bob.next("message").await["text"], "hi");
    assert_error(&alice.request("message", json!({ "to": "ghost", "text": "?" })).await, "unknown_user");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_instance_is_purged_and_its_users_names_are_freed() {
    let redis = RedisServer::start();
    let url = redis.url();
    let env = [
        ("REDIS_URL", url.as_str()),
        ("REDIS_PREFIX", "crash"),
        ("INSTANCE_NAME", "doomed"),
        ("HEARTBEAT_INTERVAL_MS", "200"),
        ("INSTANCE_TTL_MS", "1000"),
    ];
    let mut doomed = Process::start(&env);
    doomed.wait_for_log("Redis reachable", RECOVERY);
    let survivor: TestApp = spawn_clustered(&url, "crash", "survivor").await;
    survivor.wait_ready(200, RECOVERY).await;

    let alice = Client::connect(doomed.addr).await;
    assert_eq!(alice.request("add user", json!("alice")).await["ok"], true);
    assert_eq!(alice.request("join", json!({ "room": "general" })).await["ok"], true);
    let bob = survivor.member("bob", "general").await;
    assert_eq!(bob.request_empty("users").await["numUsers"], 2);

    doomed.kill();
    // The survivor notices the silence, removes alice and tells everyone.
    assert_eq!(bob.next("member left").await, json!({ "room": "general", "username": "alice" }));
    assert_eq!(bob.next("user left").await, json!({ "username": "alice", "numUsers": 1 }));
    // alice's name is free again, even for someone without her session.
    let new_alice = survivor.client().await;
    assert_eq!(new_alice.request("add user", json!("alice")).await["ok"], true);
    assert_eq!(bob.request_empty("users").await["numUsers"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_says_what_is_happening_with_redis() {
    let port = free_port(false);
    let url = format!("redis://127.0.0.1:{port}");
    let process = Process::start(&[("REDIS_URL", url.as_str()), ("INSTANCE_NAME", "logger")]);
    let started = process.wait_for_log("listening on", RECOVERY);
    assert!(started.contains("mode=\"redis\"") || started.contains("mode=redis"), "{started}");
    process.wait_for_log("waiting for Redis", RECOVERY);
    let mut redis = RedisServer::start_on(port);
    process.wait_for_log("Redis reachable", RECOVERY);
    redis.kill();
    process.wait_for_log("Redis unreachable", RECOVERY);
    let ready = reqwest::get(format!("http://{}/readyz", process.addr)).await.unwrap();
    assert_eq!(ready.status(), 503);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body, json!({ "status": "unavailable", "mode": "redis", "instance": "logger" }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_held_by_a_killed_process_is_free_again_within_seconds() {
    let redis = RedisServer::start();
    let mut doomed = Process::in_cluster(&redis.url(), "ghost", "doomed");
    let survivor = Process::in_cluster(&redis.url(), "ghost", "survivor");
    survivor.watching(1);
    doomed.watching(1);
    let _alice = doomed.user("alice").await;
    let bob = survivor.user("bob").await;
    bob.clear();
    // A live holder keeps its name.
    let impostor = Client::connect(survivor.addr).await;
    assert_error(&impostor.request("add user", json!("alice")).await, "name_taken");

    let named = || redis.cli(&["client", "list"]).matches("name=fred-").count();
    let connections = named();
    doomed.kill();
    let killed = tokio::time::Instant::now();
    // Redis saw the process's connections close (a client reconnects half
    // a second later at the earliest, by then it always has).
    while named() >= connections {
        assert!(killed.elapsed() < RECOVERY, "Redis still lists the dead process's connections");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // A demo frontend reconnecting through the survivor logs in with its
    // name, no session, once: it gets the name the dead process held.
    let again = Client::connect(survivor.addr).await;
    let login = again.request("add user", json!("alice")).await;
    assert_eq!(login["ok"], true, "{login}");
    let took = killed.elapsed();
    assert!(took < Duration::from_secs(3), "taken over {took:?} after the kill");
    // Everyone saw the ghost leave, then alice come back, in that order.
    assert_eq!(bob.next("user left").await, json!({ "username": "alice", "numUsers": 1 }));
    assert_eq!(bob.next("user joined").await, json!({ "username": "alice", "numUsers": 2 }));
    assert_eq!(bob.request_empty("users").await["numUsers"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_process_is_noticed_by_its_closed_connections_not_its_heartbeat() {
    let redis = RedisServer::start();
    let mut doomed = Process::in_cluster(&redis.url(), "closed", "doomed");
    let survivor = Process::in_cluster(&redis.url(), "closed", "survivor");
    survivor.watching(1);
    doomed.watching(1);
    let alice = doomed.user("alice").await;
    assert_eq!(alice.request("join", json!({ "room": "general" })).await["ok"], true);
    let bob = survivor.user("bob").await;
    assert_eq!(bob.request("join", json!({ "room": "general" })).await["ok"], true);
    bob.clear();

    doomed.kill();
    let killed = tokio::time::Instant::now();
    assert_eq!(bob.next("member left").await, json!({ "room": "general", "username": "alice" }));
    assert_eq!(bob.next("user left").await, json!({ "username": "alice", "numUsers": 1 }));
    let took = killed.elapsed();
    assert!(took < Duration::from_secs(3), "noticed {took:?} after the kill (the heartbeat would take 30 s)");
    let metrics =
        reqwest::get(format!("http://{}/metrics", survivor.addr)).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("chatwire_instances_purged_total 1"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_slow_to_come_back_after_a_redis_restart_is_not_taken_for_dead() {
    let mut redis = RedisServer::start();
    let a = Process::in_cluster(&redis.url(), "slow", "a");
    let b = Process::in_cluster(&redis.url(), "slow", "b");
    a.watching(1);
    b.watching(1);
    let alice = a.user("alice").await;
    let _bob = b.user("bob").await;
    assert_eq!(alice.next("user joined").await["username"], "bob");

    // Redis restarts with its data (b's connection name still registered),
    // and b takes seconds to reconnect: its connection is nowhere meanwhile.
    redis.cli(&["save"]);
    b.freeze();
    redis.restart();
    let back = tokio::time::Instant::now();
    assert_eq!(
        redis.cli(&["hlen", "{slow}:connections"]).trim(),
        "2",
        "both connection names survived the restart"
    );
    let watched_again = || a.count_logs("watching the other instances' connections instances=0") >= 1;
    while !watched_again() {
        assert!(back.elapsed() < RECOVERY, "a never reconnected:\n{}", a.logs());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Longer than a verdict takes (a look every 0.5 s, 1.5 s of absence).
    tokio::time::sleep(LIVENESS_VERDICT).await;
    b.thaw();
    alice.expect_none("user left", Duration::ZERO).await;
    assert_eq!(a.count_logs("connections closed"), 0, "a took b for dead:\n{}", a.logs());
    // b is back, and watched again.
    while a.count_logs("watching the other instances' connections instances=1") < 2 {
        assert!(back.elapsed() < RECOVERY * 2, "a does not see b again:\n{}", a.logs());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(alice.request_empty("users").await["numUsers"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_client_list_heartbeats_alone_tell_and_logins_do_not_wait() {
    // An ACL user that may do everything but list the connections.
    let redis =
        RedisServer::start_with(&["--user", "chatwire", "on", ">pw", "~*", "&*", "+@all", "-client|list"]);
    let url = format!("redis://chatwire:pw@127.0.0.1:{}", redis.port);
    let a = Process::in_cluster(&url, "acl", "a");
    let b = Process::in_cluster(&url, "acl", "b");
    a.wait_for_log("grant +client|list", RECOVERY);
    let _bob = b.user("bob").await;
    let impostor = Client::connect(a.addr).await;
    let asked = tokio::time::Instant::now();
    assert_error(&impostor.request("add user", json!("bob")).await, "name_taken");
    assert!(
        asked.elapsed() < Duration::from_secs(1),
        "refused at once, not after a wait: {:?}",
        asked.elapsed()
    );
    assert_eq!(impostor.request("add user", json!("carol")).await["ok"], true, "the cluster works otherwise");
}

#[tokio::test]
async fn reads_answered_locally_while_redis_is_down_are_logged_once_not_each_time() {
    let mut redis = RedisServer::start();
    let server = Process::start(&[("REDIS_URL", &redis.url())]);
    common::wait_ready_at(&format!("http://{}", server.addr), 200, Duration::from_secs(10)).await;
    let alice = server.user("alice").await;
    assert_eq!(alice.request("join", json!({ "room": "lobby" })).await["ok"], true);
    redis.kill();
    let needle = "Redis failed a read; answered from this instance's own state";
    for _ in 0..5 {
        let rooms = alice.request_empty("rooms").await;
        assert_eq!(rooms["rooms"][0]["room"], "lobby", "this instance's own rooms still answer: {rooms}");
    }
    assert_eq!(server.count_logs(needle), 1, "one warning for five reads, within 10 s:\n{}", server.logs());
    let warning = server.wait_for_log(needle, Duration::from_secs(1));
    assert!(
        warning.contains("operation=") && warning.contains("error="),
        "with what failed and why: {warning}"
    );
}
