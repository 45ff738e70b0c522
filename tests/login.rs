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
    // The watcher's own login is pushed first.
    while watcher.next("users").await["numUsers"] != 1 {}
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
    // Announced up to 1,000 online: past 100 the list is no longer pushed.
    let app = spawn_app_with(|c| c.announce_max_users = 1000).await;
    let watcher = app.user("watcher").await;
    let mut clients: Vec<Client> = Vec::new();
    for i in 0..chatwire::chat::PUSH_MAX_USERS {
        clients.push(app.user(&format!("user{i:03}")).await);
    }
    // PUSH_MAX_USERS + 1 online now: the last pushes may still be coming.
    watcher.until_quiet("users", Duration::from_millis(300)).await;
    watcher.clear();

    let _late = app.user("late").await;
    let joined = watcher.next("user joined").await;
    assert_eq!(joined, json!({ "username": "late", "numUsers": chatwire::chat::PUSH_MAX_USERS + 2 }));
    watcher.expect_none("users", Duration::from_millis(500)).await;
    let listed = watcher.request_empty("users").await;
    assert_eq!(listed["numUsers"], chatwire::chat::PUSH_MAX_USERS + 2, "the request still lists everyone");
}

#[tokio::test]
async fn above_the_announce_limit_only_the_count_is_told() {
    let app = spawn_app_with(|c| c.announce_max_users = 2).await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    assert_eq!(alice.next("user joined").await["username"], "bob", "up to the limit each login is announced");

    let carol = app.user("carol").await;
    let dave = app.user("dave").await;
    alice.count_told(4).await;
    alice.expect_none("user joined", Duration::from_millis(10)).await;

    carol.close().await;
    alice.count_told(3).await;
    dave.close().await;
    // Back at the limit, once more, then the announcements carry the count.
    alice.count_told(2).await;
    bob.close().await;
    assert_eq!(alice.next("user left").await, json!({ "username": "bob", "numUsers": 1 }));
    alice.expect_none("presence", Duration::from_millis(1200)).await;
    alice.expect_none("user left", Duration::from_millis(10)).await;
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
async fn counts_stay_exact_through_racing_logins_and_logouts() {
    let app = spawn_app_with(|c| c.announce_max_users = 2).await;
    let alice = app.user("alice").await;
    let mut users = Vec::new();
    for i in 0..12 {
        users.push(app.user(&format!("user{i:02}")).await);
    }
    let leaving = users.split_off(8);
    futures_util::future::join_all(leaving.into_iter().map(Client::close)).await;
    let names: Vec<String> = (12..15).map(|i| format!("user{i:02}")).collect();
    let arriving = names.iter().map(|name| app.user(name));
    let _arrived = futures_util::future::join_all(arriving).await;

    // 1 + 8 + 3 online: the last count alice hears is that, whatever the order.
    alice.count_told(12).await;
    alice.expect_none("presence", Duration::from_millis(1500)).await;
    let listed = alice.request("users", json!({ "limit": 500 })).await;
    assert_eq!(listed["numUsers"], 12);
    assert_eq!(listed["users"].as_array().unwrap().len(), 12);
    assert_eq!(listed.get("next"), None, "all on one page");
}

#[tokio::test]
async fn a_new_client_pages_and_searches_who_is_online() {
    let app = spawn_app_with(|c| c.announce_max_users = 2).await;
    let mut online = Vec::new();
    for i in 0..11 {
        online.push(app.user(&format!("user{i:02}")).await);
    }
    let zoe = app.user("Zoe").await;

    let mut seen = Vec::new();
    let mut request = json!({ "limit": 5 });
    loop {
        let page = zoe.request("users", request.clone()).await;
        assert_eq!(page["numUsers"], 12, "the count of everyone, not of the page: {page}");
        let names = page["users"].as_array().unwrap();
        assert!(names.len() <= 5, "{page}");
        seen.extend(names.iter().map(|entry| entry["username"].as_str().unwrap().to_owned()));
        match page.get("next") {
            Some(next) => request["after"] = next.clone(),
            None => break,
        }
    }
    let mut expected: Vec<String> = (0..11).map(|i| format!("user{i:02}")).collect();
    expected.push("Zoe".into());
    assert_eq!(seen, expected, "every name once, in order");
    assert_eq!(
        zoe.request_empty("users").await["users"].as_array().unwrap().len(),
        12,
        "no argument: one page"
    );

    let found = zoe.request("users", json!({ "prefix": "USER1" })).await;
    assert_eq!(found["users"], json!([{ "username": "user10" }]));
    let found = zoe.request("users", json!({ "prefix": "user0", "limit": 3 })).await;
    assert_eq!(found["users"].as_array().unwrap().len(), 3);
    assert_eq!(found["next"], "user02");
    let rest = zoe.request("users", json!({ "prefix": "user0", "after": "user02", "limit": 100 })).await;
    assert_eq!(rest["users"].as_array().unwrap().len(), 7, "user03 to user09: {rest}");

    for bad in [json!({ "limit": 0 }), json!({ "limit": 501 }), json!({ "after": "" }), json!("everyone")] {
        assert_error(&zoe.request("users", bad).await, "invalid_payload");
    }
}
