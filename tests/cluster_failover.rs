//! Redis Cluster failover, again and again: a cluster of three masters with
//! a replica each, two instances over it, and every original master killed
//! in turn. After each failover both instances are ready again, accounts log
//! in, users and history are there and messages cross instances, within
//! seconds of the cluster being `ok`.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::redis::ReplicatedCluster;
use common::{Client, TestApp, spawn_clustered};
use serde_json::{Value, json};
use tokio::time::Instant;

/// How long Redis may take to notice a dead master and promote its replica
/// (node timeout 1 s, then an election).
const FAILOVER: Duration = Duration::from_secs(30);
/// How long after the cluster is `ok` again chatwire may take to serve fully.
const RECOVERY: Duration = Duration::from_secs(5);

/// Polls `attempt` until it returns `Some`, failing the test at `deadline`.
async fn eventually<T, F: Future<Output = Option<T>>>(
    what: &str,
    deadline: Instant,
    mut attempt: impl FnMut() -> F,
) -> T {
    loop {
        if let Some(value) = attempt().await {
            return value;
        }
        assert!(Instant::now() < deadline, "{what}: not within {RECOVERY:?} of the cluster being ok");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The status of `/readyz`, or 0 when the instance does not answer.
async fn readyz(app: &TestApp) -> u16 {
    common::readyz(&app.url("")).await
}

/// Polls `url/readyz` until `stop` is set; true if it ever answered
/// anything but 200.
async fn saw_unready(url: String, stop: Arc<AtomicBool>) -> bool {
    let mut unready = false;
    while !stop.load(Ordering::Relaxed) {
        unready |= common::readyz(&url).await != 200;
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    unready
}

/// Logs `name` in over HTTP; the status and body.
async fn http_login(app: &TestApp, name: &str) -> (u16, Value) {
    app.post_json("/api/login", json!({ "username": name, "password": "password1234" })).await
}

/// Sends probes from `from` to `room` until `to` receives one.
async fn deliver(from: &Client, to: &Client, room: &str, deadline: Instant) {
    for i in 0.. {
        let text = format!("probe {i}");
        let sent = from.request("message", json!({ "room": room, "text": text })).await;
        assert_eq!(sent["ok"], true, "sending keeps working: {sent}");
        if let Ok(got) = tokio::time::timeout(Duration::from_millis(250), to.next("message")).await {
            assert!(got["text"].as_str().unwrap().starts_with("probe"), "{got}");
            return;
        }
        assert!(Instant::now() < deadline, "no cross-instance message within {RECOVERY:?}");
    }
}

/// The texts of `room`'s history as `client` reads it.
async fn history(client: &Client, room: &str) -> Vec<String> {
    let reply = client.request("history", json!({ "room": room, "limit": 100 })).await;
    assert_eq!(reply["ok"], true, "history refused: {reply}");
    reply["messages"].as_array().unwrap().iter().map(|m| m["text"].as_str().unwrap().to_owned()).collect()
}

/// What one failover cost, from the moment the cluster was `ok` again.
struct Recovery {
    /// From the SIGKILL to the cluster being `ok` without the node.
    cluster: Duration,
    /// Both instances' `/readyz` 200.
    ready: Duration,
    /// The account logged in over HTTP on both instances.
    login: Duration,
    /// A message sent on one instance reached the other, both ways.
    message: Duration,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_master_failing_over_in_turn_leaves_both_instances_serving() {
    let mut cluster = tokio::task::spawn_blocking(ReplicatedCluster::start).await.unwrap();
    let url = cluster.masters_url();
    let (a, b) = (spawn_clustered(&url, "failover", "a").await, spawn_clustered(&url, "failover", "b").await);
    for app in [&a, &b] {
        app.wait_ready(200, Duration::from_secs(10)).await;
    }
    let token = a.account("alice").await;
    let bob = a.member("bob", "general").await;
    let carol = b.member("carol", "general").await;
    let mut written = Vec::new();
    for (i, (from, to)) in [(&bob, &carol), (&carol, &bob)].into_iter().enumerate() {
        let text = format!("before the failovers {i}");
        assert_eq!(from.request("message", json!({ "room": "general", "text": text })).await["ok"], true);
        assert_eq!(to.next("message").await["text"], text);
        written.push(text);
    }

    let mut recoveries = Vec::new();
    for index in cluster.original_masters.clone() {
        tokio::task::block_in_place(|| cluster.wait_replicated(index, Duration::from_secs(10)));
        let stop = Arc::new(AtomicBool::new(false));
        let watches = [&a, &b].map(|app| tokio::spawn(saw_unready(app.url(""), stop.clone())));
        let down = tokio::task::block_in_place(|| cluster.kill_and_wait_for_failover(index, FAILOVER));
        let ok = Instant::now();
        let deadline = ok + RECOVERY;
        stop.store(true, Ordering::Relaxed);
        for watch in watches {
            assert!(watch.await.unwrap(), "/readyz said 200 all the while a master was down");
        }

        for app in [&a, &b] {
            eventually("/readyz 200", deadline, || async { (readyz(app).await == 200).then_some(()) }).await;
        }
        let ready = ok.elapsed();
        for app in [&a, &b] {
            let login = || async {
                let (status, body) = http_login(app, "alice").await;
                (status == 200).then_some(body)
            };
            let body = eventually("/api/login 200", deadline, login).await;
            assert!(body["token"].is_string(), "{body}");
        }
        let login = ok.elapsed();
        bob.clear();
        carol.clear();
        deliver(&bob, &carol, "general", deadline).await;
        deliver(&carol, &bob, "general", deadline).await;
        let message = ok.elapsed();

        let alice = b.with_token(&token).await;
        eventually("the users list", deadline, || async {
            let users = alice.request_empty("users").await;
            let expected = json!([{ "username": "alice" }, { "username": "bob" }, { "username": "carol" }]);
            (users["users"] == expected).then_some(())
        })
        .await;
        for client in [&bob, &carol] {
            let texts = history(client, "general").await;
            for text in &written {
                assert!(texts.contains(text), "`{text}` lost from the history: {texts:?}");
            }
        }
        alice.close().await;
        recoveries.push(Recovery { cluster: down, ready, login, message });
    }
    for (n, Recovery { cluster, ready, login, message }) in recoveries.iter().enumerate() {
        println!(
            "failover {}: cluster ok {cluster:?} after the kill; then ready {ready:?}, login {login:?}, messages {message:?}",
            n + 1
        );
    }
    a.stop().await.expect("instance a ran until stopped");
    b.stop().await.expect("instance b ran until stopped");
}
