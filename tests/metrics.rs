//! `/metrics`: Prometheus text with sockets, users, rooms, events in and out
//! by name, flood refusals and the emit latency histogram.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod common;

use common::spawn_app;
use serde_json::json;

/// The value of the sample `name` (with its labels) in the exposition.
fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("no sample {name} in:\n{text}"))
        .parse()
        .unwrap()
}

#[tokio::test]
async fn metrics_count_what_happens() {
    let app = spawn_app().await;
    let scrape = || async { reqwest::get(app.url("/metrics")).await.unwrap().text().await.unwrap() };
    let before = scrape().await;
    let alice = app.member("alice", "general").await;
    let bob = app.member("bob", "general").await;
    alice.request("message", json!({ "room": "general", "text": "hi" })).await;
    bob.next("message").await;

    let after = scrape().await;
    assert_eq!(sample(&after, "chatwire_users_online"), 2.0, "this app's store has two users");
    assert_eq!(sample(&after, "chatwire_rooms"), 1.0);
    // Counters are per process (tests share one), so compare with before.
    let grew = |name: &str| sample(&after, name) - sample(&before, name);
    assert!(grew("chatwire_events_in_total{event=\"message\"}") >= 1.0);
    assert!(grew("chatwire_events_in_total{event=\"add user\"}") >= 2.0);
    assert!(grew("chatwire_events_out_total{event=\"message\"}") >= 1.0);
    assert!(grew("chatwire_emit_seconds_count") >= 1.0);
    assert!(sample(&after, "chatwire_sockets") >= 2.0);
    assert!(after.contains("# TYPE chatwire_emit_seconds histogram"));
}
