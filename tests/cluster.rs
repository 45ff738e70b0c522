//! Every feature across instances: clients on two instances sharing one
//! real Redis (and a real three-master Redis Cluster) chat as if they were
//! on one server, and each event arrives exactly once.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod common;

use std::time::Duration;

use common::process::Process;
use common::{Client, TestApp, assert_error, spawn_clustered, spawn_clustered_with};
use serde_json::json;

/// Two instances over `url`, both connected to Redis.
async fn two_instances(url: &str, prefix: &str) -> (TestApp, TestApp) {
    let a = spawn_clustered(url, prefix, "a").await;
    let b = spawn_clustered(url, prefix, "b").await;
    for app in [&a, &b] {
        app.wait_ready(200, Duration::from_secs(10)).await;
    }
    (a, b)
}

/// Counts the `event`s that arrive until none has for 300 ms.
async fn count(client: &Client, event: &str) -> usize {
    client.until_quiet(event, Duration::from_millis(300)).await
}

async fn demo_events_cross_instances(url: &str, prefix: &str) {
    let (a, b) = two_instances(url, prefix).await;
    let alice = a.user("alice").await;
    let bob_client = b.client().await;
    bob_client.emit("add user", vec![json!("bob")]).await;
    assert_eq!(bob_client.next("login").await, json!({ "numUsers": 2 }), "numUsers counts both instances");
    assert_eq!(alice.next("user joined").await, json!({ "username": "bob", "numUsers": 2 }));

    alice.emit("new message", vec![json!("hello from A")]).await;
    assert_eq!(
        bob_client.next("new message").await,
        json!({ "username": "alice", "message": "hello from A" })
    );
    bob_client.emit("typing", vec![]).await;
    assert_eq!(alice.next("typing").await, json!({ "username": "bob" }));

    bob_client.close().await;
    assert_eq!(alice.next("user left").await, json!({ "username": "bob", "numUsers": 1 }));
}

async fn room_messages_reach_every_instance_exactly_once(url: &str, prefix: &str) {
    let (a, b) = two_instances(url, prefix).await;
    let alice = a.member("alice", "general").await;
    let carol = a.member("carol", "general").await;
    let bob = b.member("bob", "general").await;
    assert_eq!(alice.next("member joined").await["username"], "carol");
    assert_eq!(alice.next("member joined").await["username"], "bob", "member joined crosses instances");

    for i in 0..20 {
        alice.request("message", json!({ "room": "general", "text": format!("m{i}") })).await;
    }
    for i in 0..20 {
        assert_eq!(bob.next("message").await["text"], format!("m{i}"), "in order, across instances");
        assert_eq!(carol.next("message").await["text"], format!("m{i}"));
    }
    assert_eq!(count(&bob, "message").await, 0, "no duplicates on the remote instance");
    assert_eq!(count(&carol, "message").await, 0, "no duplicates on the local instance");
    assert_eq!(count(&alice, "message").await, 0, "the sender does not get its own message");

    let history = bob.request("history", json!({ "room": "general", "limit": 20 })).await;
    assert_eq!(history["messages"].as_array().unwrap().len(), 20, "history is shared");
    let rooms = bob.request_empty("rooms").await;
    assert_eq!(rooms["rooms"], json!([{ "room": "general", "members": ["alice", "bob", "carol"] }]));
}

async fn private_and_multicast_messages_cross_instances(url: &str, prefix: &str) {
    let (a, b) = two_instances(url, prefix).await;
    let alice = a.user("alice").await;
    let bob = b.user("bob").await;
    let carol = b.user("carol").await;
    let dave = a.user("dave").await;

    let sent = alice.request("message", json!({ "to": "bob", "text": "psst" })).await;
    assert_eq!(bob.next("message").await, sent["message"]);
    let group = alice.request("message", json!({ "to": ["bob", "carol"], "text": "team" })).await;
    assert_eq!(bob.next("message").await, group["message"]);
    assert_eq!(carol.next("message").await, group["message"]);
    let reply = carol.request("message", json!({ "to": "dave", "text": "hi dave" })).await;
    assert_eq!(dave.next("message").await, reply["message"]);
    assert_eq!(count(&bob, "message").await, 0);
    assert_eq!(count(&dave, "message").await, 0);

    carol.request("typing", json!({ "to": "alice" })).await;
    assert_eq!(alice.next("typing").await, json!({ "username": "carol", "to": "alice" }));
    let history = alice.request("history", json!({ "with": "bob" })).await;
    assert_eq!(history["messages"][0]["text"], "psst");
    assert_error(&alice.request("message", json!({ "to": "nobody", "text": "?" })).await, "unknown_user");
}

async fn names_are_unique_across_instances(url: &str, prefix: &str) {
    let (a, b) = two_instances(url, prefix).await;
    for round in 0..10 {
        let name = format!("contested{round}");
        let (x, y) = (a.client().await, b.client().await);
        let (rx, ry) = tokio::join!(x.request("add user", json!(name)), y.request("add user", json!(name)));
        let winners = [&rx, &ry].iter().filter(|r| r["ok"] == true).count();
        assert_eq!(winners, 1, "round {round}: exactly one of {rx} / {ry} wins");
        let loser = if rx["ok"] == true { &ry } else { &rx };
        assert_eq!(loser["error"]["code"], "name_taken");
    }
    let watcher = a.user("watcher").await;
    assert_eq!(watcher.request_empty("users").await["numUsers"], 11);
}

async fn users_are_listed_and_pushed_across_instances(url: &str, prefix: &str) {
    let (a, b) = two_instances(url, prefix).await;
    let alice = a.user("alice").await;
    let _bob = b.user("bob").await;
    let list = alice.request_empty("users").await;
    assert_eq!(list["users"], json!([{ "username": "alice" }, { "username": "bob" }]));
    loop {
        let pushed = alice.next("users").await;
        if pushed["numUsers"] == 2 {
            break;
        }
    }
}

async fn counts_cross_instances(url: &str, prefix: &str) {
    let a = spawn_clustered_with(url, prefix, "a", |c| c.announce_max_users = 1).await;
    let b = spawn_clustered_with(url, prefix, "b", |c| c.announce_max_users = 1).await;
    for app in [&a, &b] {
        app.wait_ready(200, Duration::from_secs(10)).await;
    }
    let alice = a.user("alice").await;
    let bob = b.user("bob").await;
    alice.count_told(2).await;
    bob.count_told(2).await;
    bob.close().await;
    alice.count_told(1).await;

    // Stopping an instance: its users leave the count.
    let _carol = b.user("carol").await;
    alice.count_told(2).await;
    b.stop().await.unwrap();
    alice.count_told(1).await;
    alice.expect_none("user joined", Duration::from_millis(10)).await;
    alice.expect_none("user left", Duration::from_millis(10)).await;
    let page = alice.request("users", json!({ "prefix": "a" })).await;
    assert_eq!(page["users"], json!([{ "username": "alice" }]));
}

async fn avatar_changes_are_announced_across_instances(url: &str, prefix: &str) {
    let (a, b) = two_instances(url, prefix).await;
    let token = a.account("lena").await;
    let bob = b.user("bob").await;
    let upload =
        reqwest::Client::new().put(a.url("/api/me/avatar")).bearer_auth(&token).body(common::png(100));
    assert_eq!(upload.send().await.unwrap().status(), 204);
    assert_eq!(bob.next("avatar changed").await, json!({ "username": "lena" }));
}

async fn a_stopped_instance_announces_its_users_leaving(url: &str, prefix: &str) {
    let (a, b) = two_instances(url, prefix).await;
    let alice = a.user("alice").await;
    let _bob = b.user("bob").await;
    assert_eq!(alice.next("user joined").await["username"], "bob");
    b.stop().await.unwrap();
    assert_eq!(alice.next("user left").await, json!({ "username": "bob", "numUsers": 1 }));
    assert_eq!(alice.request_empty("users").await["numUsers"], 1);
}

async fn a_killed_process_is_noticed_within_seconds(url: &str, prefix: &str) {
    let mut doomed = Process::in_cluster(url, prefix, "doomed");
    let survivor = Process::in_cluster(url, prefix, "survivor");
    survivor.watching(1);
    doomed.watching(1);
    let bob = survivor.user("bob").await;
    let _alice = doomed.user("alice").await;
    assert_eq!(bob.next("user joined").await["username"], "alice");
    doomed.kill();
    let killed = tokio::time::Instant::now();
    assert_eq!(bob.next("user left").await, json!({ "username": "alice", "numUsers": 1 }));
    assert!(killed.elapsed() < Duration::from_secs(3), "noticed {:?} after the kill", killed.elapsed());
    let again = Client::connect(survivor.addr).await;
    assert_eq!(again.request("add user", json!("alice")).await["ok"], true, "the name is free");
}

common::across_backends!(
    demo_events_cross_instances,
    room_messages_reach_every_instance_exactly_once,
    private_and_multicast_messages_cross_instances,
    names_are_unique_across_instances,
    users_are_listed_and_pushed_across_instances,
    counts_cross_instances,
    a_stopped_instance_announces_its_users_leaving,
    avatar_changes_are_announced_across_instances,
    a_killed_process_is_noticed_within_seconds
);
