//! Logging in: the socket.io chat demo's contract, name rules, sessions, presence.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod common;

use std::time::Duration;

use common::{Client, assert_error, spawn_app, spawn_app_with};
use serde_json::json;

#[tokio::test]
async fn demo_login_announces_the_user_to_everyone_else() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;

    let bob = app.client().await;
    bob.emit("add user", vec![json!("bob")]).await;
    assert_eq!(bob.next("login").await, json!({ "numUsers": 2 }));
    assert_eq!(alice.next("user joined").await, json!({ "username": "bob", "numUsers": 2 }));
    bob.expect_none("user joined", Duration::from_millis(200)).await;
}

#[tokio::test]
async fn add_user_ack_carries_name_count_and_session() {
    let app = spawn_app().await;
    let alice = app.client().await;
    let reply = alice.request("add user", json!("  Alice ")).await;
    assert_eq!(reply["ok"], true);
    assert_eq!(reply["username"], "Alice", "surrounding spaces are dropped");
    assert_eq!(reply["numUsers"], 1);
    assert_eq!(reply["session"].as_str().map(str::len), Some(32));
}

#[tokio::test]
async fn demo_new_message_reaches_everyone_but_the_sender() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let carol = app.user("carol").await;

    alice.emit("new message", vec![json!("hello all")]).await;
    let expected = json!({ "username": "alice", "message": "hello all" });
    assert_eq!(bob.next("new message").await, expected);
    assert_eq!(carol.next("new message").await, expected);
    alice.expect_none("new message", Duration::from_millis(200)).await;
}

#[tokio::test]
async fn demo_typing_and_stop_typing_name_the_typist() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;

    alice.emit("typing", vec![]).await;
    assert_eq!(bob.next("typing").await, json!({ "username": "alice" }));
    alice.emit("stop typing", vec![]).await;
    assert_eq!(bob.next("stop typing").await, json!({ "username": "alice" }));
}

#[tokio::test]
async fn disconnect_announces_user_left_with_the_new_count() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    bob.close().await;
    assert_eq!(alice.next("user left").await, json!({ "username": "bob", "numUsers": 1 }));
}

#[tokio::test]
async fn names_are_unique_among_online_users_ignoring_case() {
    let app = spawn_app().await;
    let _alice = app.user("alice").await;
    let impostor = app.client().await;
    let message = assert_error(&impostor.request("add user", json!("ALICE")).await, "name_taken");
    assert!(message.contains("taken"));
    // Refused without side effects: the socket can still log in under a free name.
    let reply = impostor.request("add user", json!("mallory")).await;
    assert_eq!(reply["ok"], true);
    assert_eq!(reply["numUsers"], 2);
}

#[tokio::test]
async fn a_name_is_free_again_once_its_owner_leaves() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    alice.close().await;
    bob.next("user left").await;
    let again = app.client().await;
    assert_eq!(again.request("add user", json!("alice")).await["ok"], true);
}

#[tokio::test]
async fn the_session_secret_lets_a_second_socket_share_the_name() {
    let app = spawn_app().await;
    let observer = app.user("observer").await;
    let first = app.client().await;
    let login = first.request("add user", json!("alice")).await;
    observer.next("user joined").await;

    let second = app.client().await;
    let reply = second.request("add user", json!({ "username": "alice", "session": login["session"] })).await;
    assert_eq!(reply["ok"], true, "{reply}");
    assert_eq!(reply["numUsers"], 2, "still two users: the name is shared, not duplicated");
    observer.expect_none("user joined", Duration::from_millis(200)).await;

    // Only when the last socket goes is the user gone.
    first.close().await;
    observer.expect_none("user left", Duration::from_millis(300)).await;
    second.close().await;
    assert_eq!(observer.next("user left").await["username"], "alice");
}

#[tokio::test]
async fn a_wrong_session_secret_does_not_take_the_name() {
    let app = spawn_app().await;
    let _alice = app.user("alice").await;
    let thief = app.client().await;
    let guess = json!({ "username": "alice", "session": "0123456789abcdef0123456789abcdef" });
    assert_error(&thief.request("add user", guess).await, "name_taken");
    let malformed = json!({ "username": "alice", "session": "not-a-session" });
    assert_error(&thief.request("add user", malformed).await, "invalid_payload");
}

#[tokio::test]
async fn logging_in_twice_is_refused() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let message = assert_error(&alice.request("add user", json!("alice2")).await, "already_logged_in");
    assert!(message.contains("alice"));
}

#[tokio::test]
async fn events_before_login_are_refused_and_never_broadcast() {
    let app = spawn_app().await;
    let bob = app.user("bob").await;
    let anonymous = app.client().await;
    for (event, arg) in [
        ("new message", json!("hi")),
        ("message", json!({ "room": "general", "text": "hi" })),
        ("join", json!({ "room": "general" })),
        ("leave", json!({ "room": "general" })),
        ("history", json!({ "room": "general" })),
        ("typing", json!({ "room": "general" })),
        ("stop typing", json!({ "room": "general" })),
    ] {
        assert_error(&anonymous.request(event, arg).await, "not_logged_in");
    }
    for event in ["users", "rooms", "typing"] {
        assert_error(&anonymous.request_empty(event).await, "not_logged_in");
    }
    // Without an ack the refusal comes as a `chat error` event.
    anonymous.emit("new message", vec![json!("hi")]).await;
    assert_eq!(anonymous.next("chat error").await["code"], "not_logged_in");
    bob.expect_none("new message", Duration::from_millis(200)).await;
    bob.expect_none("typing", Duration::from_millis(10)).await;
}

#[tokio::test]
async fn users_lists_everyone_online_and_is_pushed_on_change() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let _bob = app.user("bob").await;
    let reply = alice.request_empty("users").await;
    assert_eq!(
        reply,
        json!({ "ok": true, "users": [{ "username": "alice" }, { "username": "bob" }], "numUsers": 2 })
    );

    // The push is coalesced: wait for the one that includes carol.
    alice.clear();
    let _carol = app.user("carol").await;
    let pushed = loop {
        let pushed = alice.next("users").await;
        if pushed["numUsers"] == 3 {
            break pushed;
        }
    };
    assert_eq!(pushed["users"][2], json!({ "username": "carol" }));
}

#[tokio::test]
async fn a_burst_of_logins_gives_few_users_pushes() {
    let app = spawn_app().await;
    let watcher = app.user("watcher").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    watcher.clear();
    let mut clients: Vec<Client> = Vec::new();
    for i in 0..20 {
        let client = app.client().await;
        client.emit("add user", vec![json!(format!("user{i}"))]).await;
        clients.push(client);
    }
    let mut pushes = 0;
    loop {
        let pushed = watcher.next("users").await;
        pushes += 1;
        if pushed["numUsers"] == 21 {
            break;
        }
    }
    assert!(pushes < 10, "{pushes} pushes for 20 logins: presence updates should be batched");
}

#[tokio::test]
async fn a_large_deployment_gets_join_events_instead_of_users_pushes() {
    let app = spawn_app().await;
    let watcher = app.user("watcher").await;
    let mut clients: Vec<Client> = Vec::new();
    for i in 0..chatwire::chat::PUSH_MAX_USERS {
        clients.push(app.user(&format!("user{i:03}")).await);
    }
    // PUSH_MAX_USERS + 1 online now: the last pushes are still coming.
    tokio::time::sleep(Duration::from_millis(500)).await;
    watcher.clear();

    let _late = app.user("late").await;
    let joined = watcher.next("user joined").await;
    assert_eq!(joined, json!({ "username": "late", "numUsers": chatwire::chat::PUSH_MAX_USERS + 2 }));
    watcher.expect_none("users", Duration::from_millis(500)).await;
    let listed = watcher.request_empty("users").await;
    assert_eq!(listed["numUsers"], chatwire::chat::PUSH_MAX_USERS + 2, "the request still lists everyone");
}

#[tokio::test]
async fn above_the_announce_limit_logins_and_logouts_arrive_batched_as_presence() {
    let app = spawn_app_with(|c| c.announce_max_users = 2).await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    assert_eq!(alice.next("user joined").await["username"], "bob", "up to the limit each login is announced");

    let carol = app.user("carol").await;
    let dave = app.user("dave").await;
    let mut joined = Vec::new();
    while joined.len() < 2 {
        let event = alice.next("presence").await;
        assert_eq!(event["left"], json!([]));
        joined.extend(event["joined"].as_array().unwrap().iter().map(|entry| entry["username"].clone()));
        if joined.len() == 2 {
            assert_eq!(event["numUsers"], 4, "the latest count");
        }
    }
    joined.sort_by_key(|name| name.to_string());
    assert_eq!(joined, [json!("carol"), json!("dave")]);
    alice.expect_none("user joined", Duration::from_millis(10)).await;

    carol.close().await;
    assert_eq!(
        alice.next("presence").await,
        json!({ "joined": [], "left": [{ "username": "carol" }], "numUsers": 3 })
    );
    dave.close().await;
    assert_eq!(
        alice.next("presence").await,
        json!({ "joined": [], "left": [{ "username": "dave" }], "numUsers": 2 })
    );
    // Back at the limit: each logout is announced again.
    bob.close().await;
    assert_eq!(alice.next("user left").await, json!({ "username": "bob", "numUsers": 1 }));
    alice.expect_none("presence", Duration::from_millis(1200)).await;
}

#[tokio::test]
async fn an_announce_limit_of_zero_announces_every_login() {
    let app = spawn_app_with(|c| c.announce_max_users = 0).await;
    let alice = app.user("alice").await;
    let _bob = app.user("bob").await;
    let _carol = app.user("carol").await;
    assert_eq!(alice.next("user joined").await["username"], "bob");
    assert_eq!(alice.next("user joined").await["username"], "carol");
    alice.expect_none("presence", Duration::from_millis(1200)).await;
}

#[tokio::test]
async fn a_batched_change_never_overrides_a_later_single_announcement() {
    let app = spawn_app_with(|c| c.announce_max_users = 2).await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let dave = app.user("dave").await; // 3 online: batched
    alice.next("presence").await;

    // Noted for the next `presence`: carol came (4 online), dave and bob
    // left. Then carol leaves at the limit, announced at once.
    let carol = app.user("carol").await;
    dave.close().await;
    bob.close().await;
    carol.close().await;

    // Replay what alice saw, in order, until bob's departure has been sent.
    let presence = ["user joined", "user left", "presence"];
    let names = |event: &serde_json::Value, list: &str| -> Vec<String> {
        event[list].as_array().map_or(Vec::new(), |l| l.iter().map(|e| e["username"].to_string()).collect())
    };
    let (mut seen, deadline) = (Vec::new(), tokio::time::Instant::now() + common::client::WAIT);
    while !seen
        .iter()
        .any(|(name, event)| name == "presence" && names(event, "left").contains(&"\"bob\"".into()))
    {
        assert!(tokio::time::Instant::now() < deadline, "bob's departure never came: {seen:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
        seen.extend(alice.drain(&presence));
    }
    let mut carol_online = false;
    for (name, event) in &seen {
        match name.as_str() {
            "user joined" | "user left" if event["username"] == "carol" => {
                carol_online = name == "user joined"
            }
            "presence" if names(event, "joined").contains(&"\"carol\"".into()) => carol_online = true,
            "presence" if names(event, "left").contains(&"\"carol\"".into()) => carol_online = false,
            _ => {}
        }
    }
    assert!(
        seen.iter().any(|(_, event)| event.to_string().contains("carol")),
        "carol was announced: {seen:?}"
    );
    assert!(!carol_online, "alice must not be left believing carol is online: {seen:?}");
}
