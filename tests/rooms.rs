//! Rooms: join, leave, membership notices, room listing.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod common;

use std::time::Duration;

use common::{assert_error, spawn_app};
use serde_json::json;

#[tokio::test]
async fn join_returns_members_and_tells_the_others() {
    let app = spawn_app().await;
    let alice = app.member("alice", "general").await;
    let bob = app.user("bob").await;
    let reply = bob.request("join", json!({ "room": "general" })).await;
    assert_eq!(reply["ok"], true);
    assert_eq!(reply["room"], "general");
    assert_eq!(reply["members"], json!(["alice", "bob"]));
    assert_eq!(reply["history"], json!([]));
    assert_eq!(alice.next("member joined").await, json!({ "room": "general", "username": "bob" }));
    bob.expect_none("member joined", Duration::from_millis(200)).await;
}

#[tokio::test]
async fn join_carries_the_room_history() {
    let app = spawn_app().await;
    let alice = app.member("alice", "general").await;
    for text in ["one", "two", "three"] {
        alice.request("message", json!({ "room": "general", "text": text })).await;
    }
    let bob = app.user("bob").await;
    let reply = bob.request("join", json!({ "room": "general" })).await;
    let texts: Vec<&str> =
        reply["history"].as_array().unwrap().iter().map(|m| m["text"].as_str().unwrap()).collect();
    assert_eq!(texts, ["one", "two", "three"], "oldest first");
}

#[tokio::test]
async fn joining_twice_is_harmless() {
    let app = spawn_app().await;
    let alice = app.member("alice", "general").await;
    let bob = app.member("bob", "general").await;
    alice.next("member joined").await;
    let again = bob.request("join", json!({ "room": "general" })).await;
    assert_eq!(again["members"], json!(["alice", "bob"]));
    alice.expect_none("member joined", Duration::from_millis(200)).await;
}

#[tokio::test]
async fn leave_tells_the_others_and_stops_delivery() {
    let app = spawn_app().await;
    let alice = app.member("alice", "general").await;
    let bob = app.member("bob", "general").await;
    assert_eq!(
        bob.request("leave", json!({ "room": "general" })).await,
        json!({ "ok": true, "room": "general" })
    );
    assert_eq!(alice.next("member left").await, json!({ "room": "general", "username": "bob" }));
    alice.request("message", json!({ "room": "general", "text": "still there?" })).await;
    bob.expect_none("message", Duration::from_millis(200)).await;
}

#[tokio::test]
async fn leaving_a_room_you_are_not_in_is_refused() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    assert_error(&alice.request("leave", json!({ "room": "general" })).await, "not_in_room");
}

#[tokio::test]
async fn disconnecting_leaves_every_room() {
    let app = spawn_app().await;
    let alice = app.member("alice", "general").await;
    let bob = app.member("bob", "general").await;
    bob.request("join", json!({ "room": "random" })).await;
    alice.request("join", json!({ "room": "random" })).await;
    bob.close().await;
    let mut left = vec![alice.next("member left").await, alice.next("member left").await];
    left.sort_by_key(|event| event["room"].as_str().unwrap().to_owned());
    assert_eq!(
        left,
        [json!({ "room": "general", "username": "bob" }), json!({ "room": "random", "username": "bob" })]
    );
    assert_eq!(alice.request("join", json!({ "room": "general" })).await["members"], json!(["alice"]));
}

#[tokio::test]
async fn rooms_lists_rooms_with_their_members() {
    let app = spawn_app().await;
    let alice = app.member("alice", "general").await;
    let _bob = app.member("bob", "random").await;
    alice.request("join", json!({ "room": "random" })).await;
    let reply = alice.request_empty("rooms").await;
    assert_eq!(
        reply,
        json!({ "ok": true, "rooms": [
            { "room": "general", "members": ["alice"] },
            { "room": "random", "members": ["alice", "bob"] },
        ]})
    );
}

#[tokio::test]
async fn an_empty_room_disappears_from_the_list() {
    let app = spawn_app().await;
    let alice = app.member("alice", "temporary").await;
    alice.request("leave", json!({ "room": "temporary" })).await;
    assert_eq!(alice.request_empty("rooms").await["rooms"], json!([]));
}

#[tokio::test]
async fn room_names_are_validated() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    for bad in [json!(""), json!("   "), json!("r".repeat(65)), json!("bad\u{0007}name")] {
        assert_error(&alice.request("join", json!({ "room": bad })).await, "invalid_room");
    }
    for bad in [json!({}), json!({ "room": 5 }), json!("general"), json!(null), json!([1])] {
        assert_error(&alice.request("join", bad).await, "invalid_payload");
    }
    assert_error(&alice.request_empty("join").await, "invalid_payload");
    assert_eq!(
        alice.request("join", json!({ "room": "r".repeat(64) })).await["ok"],
        true,
        "64 characters is fine"
    );
}
