//! Messages to rooms, users and groups, and their history.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod common;

use std::time::Duration;

use common::{assert_error, spawn_app, spawn_app_with};
use serde_json::{Value, json};

fn texts(messages: &Value) -> Vec<String> {
    messages.as_array().unwrap().iter().map(|m| m["text"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn a_room_message_reaches_all_members_but_the_sending_socket() {
    let app = spawn_app().await;
    let alice = app.member("alice", "general").await;
    let bob = app.member("bob", "general").await;
    let carol = app.member("carol", "general").await;
    let outsider = app.user("dave").await;

    let reply = alice.request("message", json!({ "room": "general", "text": "hello" })).await;
    assert_eq!(reply["ok"], true);
    let message = &reply["message"];
    assert_eq!(message["from"], "alice");
    assert_eq!(message["room"], "general");
    assert_eq!(message["text"], "hello");
    assert!(message.get("to").is_none());
    assert_eq!(message["id"].as_str().unwrap().len(), 26);
    assert!(message["ts"].as_u64().unwrap() > 1_700_000_000_000);

    assert_eq!(&bob.next("message").await, message);
    assert_eq!(&carol.next("message").await, message);
    alice.expect_none("message", Duration::from_millis(200)).await;
    outsider.expect_none("message", Duration::from_millis(10)).await;
}

#[tokio::test]
async fn sending_to_a_room_you_have_not_joined_is_refused() {
    let app = spawn_app().await;
    let _bob = app.member("bob", "general").await;
    let alice = app.user("alice").await;
    assert_error(&alice.request("message", json!({ "room": "general", "text": "hi" })).await, "not_in_room");
}

#[tokio::test]
async fn a_private_message_reaches_every_socket_of_the_recipient_only() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.client().await;
    let login = bob.request("add user", json!("bob")).await;
    let bob_tab = app.client().await;
    bob_tab.request("add user", json!({ "username": "bob", "session": login["session"] })).await;
    let carol = app.user("carol").await;

    let reply = alice.request("message", json!({ "to": "BOB", "text": "psst" })).await;
    let message = &reply["message"];
    assert_eq!(message["to"], "bob", "the recipient as they spell their name");
    assert!(message.get("room").is_none());
    assert_eq!(&bob.next("message").await, message);
    assert_eq!(&bob_tab.next("message").await, message);
    carol.expect_none("message", Duration::from_millis(200)).await;
    alice.expect_none("message", Duration::from_millis(10)).await;
}

#[tokio::test]
async fn a_private_message_to_someone_offline_is_refused() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let message =
        assert_error(&alice.request("message", json!({ "to": "ghost", "text": "hi" })).await, "unknown_user");
    assert!(message.contains("ghost"));
}

#[tokio::test]
async fn a_multicast_reaches_each_chosen_user_with_the_full_list() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let carol = app.user("carol").await;
    let dave = app.user("dave").await;

    let reply = alice.request("message", json!({ "to": ["bob", "carol", "bob"], "text": "team" })).await;
    let message = &reply["message"];
    assert_eq!(message["to"], json!(["bob", "carol"]), "duplicates dropped, order kept");
    assert_eq!(&bob.next("message").await, message);
    assert_eq!(&carol.next("message").await, message);
    dave.expect_none("message", Duration::from_millis(200)).await;
}

#[tokio::test]
async fn a_multicast_with_one_unknown_user_goes_to_nobody() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    assert_error(
        &alice.request("message", json!({ "to": ["bob", "ghost"], "text": "hi" })).await,
        "unknown_user",
    );
    bob.expect_none("message", Duration::from_millis(200)).await;
}

#[tokio::test]
async fn a_multicast_has_a_size_limit() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let names: Vec<String> = (0..51).map(|i| format!("user{i}")).collect();
    assert_error(
        &alice.request("message", json!({ "to": names, "text": "hi" })).await,
        "too_many_recipients",
    );
    assert_error(&alice.request("message", json!({ "to": [], "text": "hi" })).await, "invalid_payload");
}

#[tokio::test]
async fn messages_from_one_sender_arrive_in_order() {
    // A burst allowance above the 200 messages: this is about ordering.
    let app = spawn_app_with(|c| c.event_burst = 500).await;
    let alice = app.member("alice", "general").await;
    let bob = app.member("bob", "general").await;
    for i in 0..200 {
        alice.emit("message", vec![json!({ "room": "general", "text": format!("m{i}") })]).await;
    }
    for i in 0..200 {
        assert_eq!(bob.next("message").await["text"], format!("m{i}"));
    }
}

#[tokio::test]
async fn room_history_pages_backwards_and_forwards() {
    let app = spawn_app().await;
    let alice = app.member("alice", "general").await;
    let mut ids = Vec::new();
    for i in 0..10 {
        let reply = alice.request("message", json!({ "room": "general", "text": format!("m{i}") })).await;
        ids.push(reply["message"]["id"].as_str().unwrap().to_owned());
    }
    let latest = alice.request("history", json!({ "room": "general", "limit": 3 })).await;
    assert_eq!(texts(&latest["messages"]), ["m7", "m8", "m9"]);
    let before = alice.request("history", json!({ "room": "general", "before": ids[7], "limit": 3 })).await;
    assert_eq!(texts(&before["messages"]), ["m4", "m5", "m6"]);
    let after = alice.request("history", json!({ "room": "general", "after": ids[2], "limit": 3 })).await;
    assert_eq!(texts(&after["messages"]), ["m3", "m4", "m5"], "after: the oldest ones missed, oldest first");
    let between =
        alice.request("history", json!({ "room": "general", "after": ids[2], "before": ids[5] })).await;
    assert_eq!(texts(&between["messages"]), ["m3", "m4"]);
    let none = alice.request("history", json!({ "room": "general", "after": ids[9] })).await;
    assert_eq!(none["messages"], json!([]));
}

#[tokio::test]
async fn history_is_capped_per_conversation() {
    let app = common::spawn_app_with(|c| c.history_limit = 5).await;
    let alice = app.member("alice", "general").await;
    for i in 0..8 {
        alice.request("message", json!({ "room": "general", "text": format!("m{i}") })).await;
    }
    let all = alice.request("history", json!({ "room": "general", "limit": 5 })).await;
    assert_eq!(texts(&all["messages"]), ["m3", "m4", "m5", "m6", "m7"]);
    assert_error(
        &alice.request("history", json!({ "room": "general", "limit": 6 })).await,
        "invalid_payload",
    );
}

#[tokio::test]
async fn private_history_is_shared_by_both_participants_only() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let carol = app.user("carol").await;
    alice.request("message", json!({ "to": "bob", "text": "hi bob" })).await;
    bob.request("message", json!({ "to": "alice", "text": "hi alice" })).await;
    alice.request("message", json!({ "to": ["bob", "carol"], "text": "group" })).await;

    let from_alice = alice.request("history", json!({ "with": "bob" })).await;
    let from_bob = bob.request("history", json!({ "with": "Alice" })).await;
    assert_eq!(texts(&from_alice["messages"]), ["hi bob", "hi alice"]);
    assert_eq!(from_alice["messages"], from_bob["messages"]);
    let group = carol.request("history", json!({ "with": ["bob", "alice"] })).await;
    assert_eq!(texts(&group["messages"]), ["group"], "a multicast is its own conversation");
    let carol_and_bob = carol.request("history", json!({ "with": "bob" })).await;
    assert_eq!(carol_and_bob["messages"], json!([]), "nobody reads a conversation they are not in");
}

#[tokio::test]
async fn room_history_needs_membership() {
    let app = spawn_app().await;
    let _bob = app.member("bob", "secret").await;
    let alice = app.user("alice").await;
    assert_error(&alice.request("history", json!({ "room": "secret" })).await, "not_in_room");
}

#[tokio::test]
async fn typing_in_a_room_or_to_a_user_reaches_only_them() {
    let app = spawn_app().await;
    let alice = app.member("alice", "general").await;
    let bob = app.member("bob", "general").await;
    let carol = app.user("carol").await;

    assert_eq!(alice.request("typing", json!({ "room": "general" })).await["ok"], true);
    assert_eq!(bob.next("typing").await, json!({ "username": "alice", "room": "general" }));
    carol.expect_none("typing", Duration::from_millis(200)).await;

    alice.request("stop typing", json!({ "to": "carol" })).await;
    assert_eq!(carol.next("stop typing").await, json!({ "username": "alice", "to": "carol" }));
    bob.expect_none("stop typing", Duration::from_millis(200)).await;
}

#[tokio::test]
async fn bad_message_payloads_are_refused_and_nothing_is_sent() {
    let app = spawn_app().await;
    let alice = app.member("alice", "general").await;
    let bob = app.member("bob", "general").await;
    let cases = [
        (json!({ "room": "general" }), "invalid_payload"),
        (json!({ "room": "general", "text": "" }), "invalid_text"),
        (json!({ "room": "general", "text": "  \n " }), "invalid_text"),
        (json!({ "room": "general", "text": "x".repeat(4001) }), "text_too_long"),
        (json!({ "room": "general", "text": 42 }), "invalid_payload"),
        (json!({ "text": "nowhere" }), "invalid_payload"),
        (json!({ "room": "general", "to": "bob", "text": "both" }), "invalid_payload"),
        (json!({ "to": 7, "text": "hi" }), "invalid_payload"),
        (json!({ "to": "", "text": "hi" }), "invalid_username"),
        (json!({ "to": ["bob", ""], "text": "hi" }), "invalid_username"),
        (json!({ "room": "", "text": "hi" }), "invalid_room"),
        (json!("just a string"), "invalid_payload"),
        (json!(null), "invalid_payload"),
    ];
    for (payload, code) in cases {
        assert_error(&alice.request("message", payload.clone()).await, code);
    }
    bob.expect_none("message", Duration::from_millis(200)).await;
    assert_eq!(
        alice.request("message", json!({ "room": "general", "text": "x".repeat(4000) })).await["ok"],
        true,
        "4000 characters is the limit, inclusive"
    );
}

#[tokio::test]
async fn bad_history_requests_are_refused() {
    let app = spawn_app().await;
    let alice = app.member("alice", "general").await;
    for payload in [
        json!({}),
        json!({ "room": "general", "with": "bob" }),
        json!({ "room": "general", "after": "nope" }),
        json!({ "room": "general", "before": 12 }),
        json!({ "room": "general", "limit": 0 }),
        json!({ "room": "general", "limit": -1 }),
        json!({ "room": "general", "limit": 1.5 }),
        json!({ "room": "general", "limit": 501 }),
    ] {
        assert_error(&alice.request("history", payload).await, "invalid_payload");
    }
}
