//! Bad input costs nothing else: the sender gets a clear error (or, for
//! packets that break the protocol, loses its own connection), nothing
//! panics, and everyone else keeps chatting.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod common;

use std::time::Duration;

use common::{TestApp, assert_error, spawn_app, spawn_app_with};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message as Frame;

/// Asserts that the app still serves: two fresh users can chat.
async fn still_chatting(app: &TestApp) {
    let a = app.member(&format!("a{}", rand_suffix()), "check").await;
    let b = app.member(&format!("b{}", rand_suffix()), "check").await;
    a.request("message", json!({ "room": "check", "text": "still fine" })).await;
    assert_eq!(b.next("message").await["text"], "still fine");
}

fn rand_suffix() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

#[tokio::test]
async fn add_user_with_a_bad_name_is_refused_and_the_socket_stays_usable() {
    let app = spawn_app().await;
    let client = app.client().await;
    for bad in [json!(""), json!("  "), json!("x".repeat(33)), json!("tab\tname"), json!("zero\u{200B}width")]
    {
        assert_error(&client.request("add user", bad).await, "invalid_username");
    }
    for bad in [json!(42), json!(null), json!(["alice"]), json!({ "name": "alice" }), json!(true)] {
        assert_error(&client.request("add user", bad).await, "invalid_payload");
    }
    assert_error(&client.request_empty("add user").await, "invalid_payload");
    assert_eq!(client.request("add user", json!("x".repeat(32))).await["ok"], true, "32 characters is fine");
}

#[tokio::test]
async fn unknown_events_are_ignored() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    alice.emit("no such event", vec![json!({ "x": 1 })]).await;
    alice.emit("__proto__", vec![]).await;
    assert_eq!(alice.request_empty("users").await["ok"], true, "the socket still works");
    still_chatting(&app).await;
}

#[tokio::test]
async fn extra_arguments_are_ignored() {
    let app = spawn_app().await;
    let alice = app.member("alice", "general").await;
    let reply = alice
        .request_args("message", vec![json!({ "room": "general", "text": "hi" }), json!("extra"), json!(3)])
        .await;
    assert_eq!(reply["ok"], true);
}

#[tokio::test]
async fn an_oversized_frame_disconnects_only_its_sender() {
    let app = spawn_app_with(|c| {
        c.max_frame_bytes = Some(32 * 1024);
        c.max_file_bytes = 4 * 1024;
    })
    .await;
    let bystander = app.member("bystander", "general").await;
    let flooder = app.member("flooder", "general").await;
    let huge = format!("42{}", json!(["message", { "room": "general", "text": "x".repeat(40 * 1024) }]));
    flooder.send_raw(huge).await;
    assert!(flooder.wait_closed().await, "the oversized frame closes the connection");
    bystander.expect_none("message", Duration::from_millis(100)).await;
    assert_eq!(bystander.next("member left").await["username"], "flooder");
    still_chatting(&app).await;
}

#[tokio::test]
async fn malformed_packets_cost_only_the_senders_connection() {
    let app = spawn_app().await;
    let bystander = app.user("bystander").await;
    for junk in ["42[\"message\",", "42{}", "4x", "9", "", "42[1,2,3]", "42[\"message\"]]]"] {
        let client = app.client().await;
        client.send_raw(junk).await;
        // Either refused quietly or disconnected; never a crash.
        let _ = tokio::time::timeout(Duration::from_millis(300), client.wait_closed()).await;
    }
    let binary = app.client().await;
    binary.send_frame(Frame::binary(vec![0xff, 0x00, 0x13, 0x37])).await;
    assert_eq!(bystander.request_empty("users").await["ok"], true);
    still_chatting(&app).await;
}

#[tokio::test]
async fn deeply_nested_json_is_refused_without_crashing() {
    let app = spawn_app().await;
    let alice = app.member("alice", "general").await;
    let depth = 5000;
    let nested = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    alice.send_raw(format!("420[\"message\",{nested}]")).await;
    let _ = tokio::time::timeout(Duration::from_millis(500), alice.wait_closed()).await;
    still_chatting(&app).await;
}

#[tokio::test]
async fn a_connect_to_an_unknown_namespace_is_refused() {
    let app = spawn_app().await;
    let url = format!("ws://{}/socket.io/?EIO=4&transport=websocket", app.addr);
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    ws.next().await.unwrap().unwrap();
    ws.send(Frame::text("40/admin,")).await.unwrap();
    let reply = loop {
        let Frame::Text(text) = ws.next().await.unwrap().unwrap() else { continue };
        if text.as_str() != "2" {
            break text.as_str().to_owned();
        }
    };
    assert!(reply.starts_with("44/admin,"), "connect_error for the unknown namespace, got {reply}");
    still_chatting(&app).await;
}

#[tokio::test]
async fn many_bad_requests_in_a_row_leave_the_socket_usable() {
    // Within a generous allowance: this is about bad input, not floods.
    let app = spawn_app_with(|c| c.event_burst = 500).await;
    let alice = app.member("alice", "general").await;
    for i in 0..50 {
        let payload = if i % 2 == 0 { json!({ "room": 1 }) } else { json!({ "to": [] }) };
        alice.emit("message", vec![payload]).await;
    }
    for _ in 0..50 {
        assert_eq!(alice.next("chat error").await["code"], "invalid_payload");
    }
    let ok = alice.request("message", json!({ "room": "general", "text": "fine" })).await;
    assert_eq!(ok["ok"], true);
}
