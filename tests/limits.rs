//! Two kinds of limits, as with Node's socket.io: the transport reads frames
//! up to a cap (MAX_FRAME_BYTES, Node's `maxHttpBufferSize`, raised for
//! files) and closes the connection of a client that sends more; anything
//! under it is read, and content over an application limit is answered
//! with its error code while the socket stays connected.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod common;

use std::time::Duration;

use chatwire::config::Transport;
use common::redis::RedisServer;
use common::{Client, TestApp, assert_error, placeholder, png, spawn_app, spawn_app_with, spawn_clustered};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message as Frame;

/// The old cap on a packet's text: every payload below is larger, so each
/// would have cost its sender the connection.
const OLD_TEXT_CAP: usize = 64 * 1024;

/// Asserts that `from`'s next message in `room` reaches `to`, and that
/// `from` is still connected.
async fn keeps_chatting(from: &Client, to: &Client, room: &str, text: &str) {
    let sent = from.request("message", json!({ "room": room, "text": text })).await;
    assert_eq!(sent["ok"], true, "{sent}");
    assert_eq!(to.next("message").await["text"], text);
}

fn long(chars: usize) -> String {
    "x".repeat(chars)
}

#[tokio::test]
async fn a_100000_character_text_gets_text_too_long_and_the_sender_keeps_chatting() {
    let app = spawn_app().await;
    let alice = app.member("alice", "general").await;
    let bob = app.member("bob", "general").await;

    let reply = alice.request("message", json!({ "room": "general", "text": long(100_000) })).await;
    let message = assert_error(&reply, "text_too_long");
    assert!(message.contains("4000") && message.contains("100000"), "{message}");

    bob.expect_none("message", Duration::from_millis(100)).await;
    keeps_chatting(&alice, &bob, "general", "the next one arrives").await;
    let private = alice.request("message", json!({ "to": "bob", "text": long(100_000) })).await;
    assert_error(&private, "text_too_long");
    keeps_chatting(&alice, &bob, "general", "and the one after").await;
}

#[tokio::test]
async fn across_instances_a_long_text_is_answered_and_the_next_one_delivered() {
    let redis = RedisServer::start();
    let a = spawn_clustered(&redis.url(), "limits", "a").await;
    let b = spawn_clustered(&redis.url(), "limits", "b").await;
    for app in [&a, &b] {
        app.wait_ready(200, Duration::from_secs(10)).await;
    }
    let alice = a.member("alice", "general").await;
    let bob = b.member("bob", "general").await;
    let _ = alice.next("member joined").await;

    assert_error(
        &alice.request("message", json!({ "room": "general", "text": long(100_000) })).await,
        "text_too_long",
    );
    assert_error(
        &alice.request("message", json!({ "to": "bob", "text": long(100_000) })).await,
        "text_too_long",
    );
    keeps_chatting(&alice, &bob, "general", "from instance a to b").await;
}

#[tokio::test]
async fn an_event_without_an_ack_gets_its_limit_as_chat_error() {
    let app = spawn_app().await;
    let alice = app.member("alice", "general").await;
    let bob = app.member("bob", "general").await;

    alice.emit("message", vec![json!({ "room": "general", "text": long(100_000) })]).await;
    assert_eq!(alice.next("chat error").await["code"], "text_too_long");
    alice.emit("new message", vec![json!(long(100_000))]).await;
    assert_eq!(alice.next("chat error").await["code"], "text_too_long", "the demo's event too");

    bob.expect_none("new message", Duration::from_millis(100)).await;
    keeps_chatting(&alice, &bob, "general", "still here").await;
}

#[tokio::test]
async fn every_application_limit_answers_its_code_and_the_socket_stays() {
    let app = spawn_app().await;
    let bob = app.member("bob", "general").await;
    let client = app.client().await;

    let name = client.request("add user", json!(long(100_000))).await;
    assert!(assert_error(&name, "invalid_username").contains("at most 32"), "{name}");
    assert_eq!(client.request("add user", json!("alice")).await["ok"], true);

    let room = client.request("join", json!({ "room": long(100_000) })).await;
    assert!(assert_error(&room, "invalid_room").contains("at most 64"), "{room}");
    assert_eq!(client.request("join", json!({ "room": "general" })).await["ok"], true);

    let everyone: Vec<String> = (0..10_000).map(|i| format!("user{i}")).collect();
    assert!(json!(everyone).to_string().len() > OLD_TEXT_CAP);
    let multicast = client.request("message", json!({ "to": everyone, "text": "hi all" })).await;
    assert_error(&multicast, "too_many_recipients");

    let cursor = client.request("history", json!({ "room": "general", "before": long(100_000) })).await;
    assert!(assert_error(&cursor, "invalid_payload").len() < 200, "the echoed cursor is cut short: {cursor}");
    let page = client.request("history", json!({ "room": "general", "limit": 501 })).await;
    assert!(assert_error(&page, "invalid_payload").contains("between 1 and 500"), "{page}");
    let wrong_type = client.request("history", json!({ "room": "general", "limit": long(100_000) })).await;
    let explanation = assert_error(&wrong_type, "invalid_payload");
    assert!(explanation.contains("invalid type: string"), "{explanation}");
    assert!(explanation.chars().count() < 300, "the quoted value is cut short: {} chars", explanation.len());

    let file = json!({ "room": "general", "file": { "name": long(100_000), "type": "image/png", "data": placeholder(0) } });
    let named = client.request_binary("message", file, &[&png(100)]).await;
    assert!(assert_error(&named, "invalid_file_name").contains("255"), "{named}");

    bob.expect_none("message", Duration::from_millis(100)).await;
    keeps_chatting(&client, &bob, "general", "after all that").await;
}

#[tokio::test]
async fn frames_up_to_nodes_default_cap_are_read_and_larger_ones_disconnect() {
    // Files small enough not to raise it: the cap is Node's 1,000,000 bytes.
    let app = spawn_app_with(|c| c.max_file_bytes = 64 * 1024).await;
    let alice = app.member("alice", "general").await;
    let bob = app.member("bob", "general").await;

    let just_under = frame_of_size(1_000_000);
    alice.send_raw(just_under).await;
    assert_eq!(alice.next("chat error").await["code"], "text_too_long");
    keeps_chatting(&alice, &bob, "general", "a megabyte later").await;

    alice.send_raw(frame_of_size(1_000_001)).await;
    assert!(alice.wait_closed().await, "one byte over the cap closes the connection");
    assert_eq!(bob.next("member left").await["username"], "alice");
    bob.expect_none("message", Duration::from_millis(100)).await;
}

#[tokio::test]
async fn files_raise_the_frame_cap_for_binaries_only() {
    // Default files (5 MiB) raise the frame cap to 10 MiB; a text is still
    // held to MAX_FRAME_BYTES (1,000,000 bytes): serde buffers a text it
    // parses at several times its size.
    let app = spawn_app().await;
    let alice = app.member("alice", "general").await;
    let bob = app.member("bob", "general").await;
    alice.send_raw(frame_of_size(1_000_000)).await;
    assert_eq!(alice.next("chat error").await["code"], "text_too_long");
    alice.send_raw(frame_of_size(2_000_000)).await;
    assert!(alice.wait_closed().await, "a 2 MB text is over the text cap, whatever files allow");
    assert_eq!(bob.next("member left").await["username"], "alice");
}

/// A `message` event (no ack) whose websocket frame is exactly `bytes` long.
fn frame_of_size(bytes: usize) -> String {
    let frame = |text: &str| format!("42{}", json!(["message", { "room": "general", "text": text }]));
    let overhead = frame("").len();
    let framed = frame(&long(bytes - overhead));
    assert_eq!(framed.len(), bytes);
    framed
}

/// An app whose transport cap is 64 KiB (files up to 16 KiB), with a
/// bystander in `general`.
async fn app_with_a_64_kib_cap() -> (TestApp, Client) {
    let app = spawn_app_with(|c| {
        c.max_frame_bytes = Some(64 * 1024);
        c.max_file_bytes = 16 * 1024;
    })
    .await;
    let bystander = app.member("bystander", "general").await;
    (app, bystander)
}

#[tokio::test]
async fn a_text_frame_over_the_transport_cap_disconnects_only_its_sender() {
    let (app, bystander) = app_with_a_64_kib_cap().await;
    let sender = app.member("sender", "general").await;
    let under = sender.request("message", json!({ "room": "general", "text": long(60 * 1024) })).await;
    assert_error(&under, "text_too_long");

    sender.send_raw(frame_of_size(64 * 1024 + 1)).await;
    assert!(sender.wait_closed().await, "the oversized text frame closes the connection");
    assert_eq!(bystander.next("member left").await["username"], "sender");
    let other = app.member("other", "general").await;
    keeps_chatting(&other, &bystander, "general", "others are fine").await;
}

#[tokio::test]
async fn a_binary_frame_over_the_transport_cap_disconnects_only_its_sender() {
    let (app, bystander) = app_with_a_64_kib_cap().await;
    let sender = app.member("sender", "general").await;
    let file = |name: &str| json!({ "room": "general", "file": { "name": name, "type": "image/png", "data": placeholder(0) } });
    let over_the_file_limit = sender.request_binary("message", file("big.png"), &[&png(20 * 1024)]).await;
    assert_error(&over_the_file_limit, "file_too_large");
    keeps_chatting(&sender, &bystander, "general", "under the cap, answered").await;

    let header = format!("451-{}", json!(["message", file("huge.png")]));
    sender.send_raw(header).await;
    sender.send_frame(Frame::binary(png(64 * 1024 + 1))).await;
    assert!(sender.wait_closed().await, "the oversized binary frame closes the connection");
    assert_eq!(bystander.next("member left").await["username"], "sender");
    bystander.expect_none("message", Duration::from_millis(100)).await;
}

#[tokio::test]
async fn large_packets_cost_more_of_the_event_allowance() {
    // 22 events at once (two go to logging in and joining), one more a
    // second; a 600,000-byte packet costs 10.
    let app = spawn_app_with(|c| {
        c.event_rate = 1;
        c.event_burst = 22;
    })
    .await;
    let alice = app.member("alice", "general").await;
    let big = json!({ "room": "general", "text": long(600_000) });
    assert_error(&alice.request("message", big.clone()).await, "text_too_long");
    assert_error(&alice.request("message", big.clone()).await, "text_too_long");
    let third = alice.request("message", big).await;
    assert!(assert_error(&third, "rate_limited").contains("slow down"), "{third}");

    let bob = app.member("bob", "general").await;
    for i in 0..20 {
        let reply = bob.request("message", json!({ "room": "general", "text": format!("small {i}") })).await;
        assert_eq!(reply["ok"], true, "twenty small events fit where two large ones did: {reply}");
    }
}

#[tokio::test]
async fn over_polling_the_cap_bounds_the_request_body() {
    let app = spawn_app_with(|c| {
        c.transports = vec![Transport::Polling];
        c.max_file_bytes = 1024;
    })
    .await;
    let http = reqwest::Client::new();
    let open = http.get(app.url("/socket.io/?EIO=4&transport=polling")).send().await.unwrap();
    let open = open.text().await.unwrap();
    let handshake: Value = serde_json::from_str(open.strip_prefix('0').unwrap()).unwrap();
    let url =
        app.url(&format!("/socket.io/?EIO=4&transport=polling&sid={}", handshake["sid"].as_str().unwrap()));
    let post = |body: String| http.post(&url).body(body).send();
    assert_eq!(post("40".into()).await.unwrap().status(), 200);
    // Engine.IO v4 separates the packets of a payload with U+001E.
    let poll_for = |prefix: &'static str| {
        let (http, url) = (http.clone(), url.clone());
        async move {
            loop {
                let body = http.get(&url).send().await.unwrap().text().await.unwrap();
                if let Some(packet) = body.split('\u{1e}').find(|packet| packet.starts_with(prefix)) {
                    return packet.to_owned();
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), poll_for("40")).await.expect("connected");

    let big_text = format!("421{}", json!(["add user", long(900_000)]));
    assert_eq!(post(big_text).await.unwrap().status(), 200, "under the cap: read");
    let answer = tokio::time::timeout(Duration::from_secs(5), poll_for("431")).await.expect("answered");
    assert!(answer.contains("invalid_username"), "answered: {answer}");

    let too_big = format!("42{}", json!(["add user", long(1_000_000)]));
    assert_eq!(post(too_big).await.unwrap().status(), 413, "over the cap: refused");
    let after = http.get(&url).send().await.unwrap();
    assert_eq!(after.status(), 400, "and the session is closed");
}
