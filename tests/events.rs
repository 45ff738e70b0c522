//! The probe (`chat::probe`, what the fuzz target runs) and the running
//! server read a payload the same way: for bad payloads of every event, the
//! probe's reason is the server's error message, word for word, and what
//! the probe accepts the server acts on.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod common;

use chatwire::chat::probe::{Verdict, decode};
use common::{Client, spawn_app, spawn_app_with};
use serde_json::{Value, json};

/// The raw frame a client sends for `event` with these arguments.
fn frame(event: &str, args: &[Value]) -> String {
    format!("42{}", Value::from([&[Value::from(event)], args].concat()))
}

/// Sends `event` and checks that the server's answer is the probe's verdict.
async fn agree(client: &Client, event: &str, args: &[Value]) {
    let verdict = decode(&frame(event, args), &[]);
    let reply = client.request_args(event, args.to_vec()).await;
    match verdict {
        Verdict::Refused(reason) => {
            assert_eq!(
                reply["ok"], false,
                "{event} {args:?}: the probe refused ({reason}), the server did not"
            );
            assert_eq!(reply["error"]["message"], reason.as_str(), "{event} {args:?}");
        }
        Verdict::Accepted(name) => {
            assert_eq!(name, event);
            assert_eq!(
                reply["ok"], true,
                "{event} {args:?}: the probe accepted, the server answered {reply}"
            );
        }
        other => panic!("{event} {args:?}: {other:?}"),
    }
}

#[tokio::test]
async fn the_probe_refuses_what_the_server_refuses_with_the_same_reason() {
    // Some fifty requests from one socket: more than the default burst allows.
    let app = spawn_app_with(|config| config.event_burst = 1000).await;
    let alice = app.member("alice", "general").await;
    let _bob = app.user("bob").await;
    let guest = app.client().await;
    let bad_session = json!({ "username": "carol", "session": "not-a-session" });
    let add_user = [vec![], vec![json!(42)], vec![json!(null)], vec![json!("")], vec![bad_session]];
    for args in add_user {
        agree(&guest, "add user", &args).await;
    }
    let cases: &[(&str, &[Value])] = &[
        ("users", &[json!(5)]),
        ("users", &[json!({ "limit": 0 })]),
        ("users", &[json!({ "after": "" })]),
        ("users", &[]),
        ("users", &[json!(null)]),
        ("users", &[json!({ "prefix": "a" })]),
        ("new message", &[]),
        ("new message", &[json!({ "text": "hi" })]),
        ("new message", &[json!(" ")]),
        ("new message", &[json!("hello")]),
        ("message", &[]),
        ("message", &[json!("hello")]),
        ("message", &[json!({ "text": "hi" })]),
        ("message", &[json!({ "room": "general" })]),
        ("message", &[json!({ "room": "general", "to": "bob", "text": "hi" })]),
        ("message", &[json!({ "to": [], "text": "hi" })]),
        ("message", &[json!({ "to": ["bob", ""], "text": "hi" })]),
        ("message", &[json!({ "room": "", "text": "hi" })]),
        ("message", &[json!({ "room": "general", "text": "x".repeat(4001) })]),
        ("message", &[json!({ "room": "general", "text": "hi" })]),
        ("message", &[json!({ "to": "bob", "text": "hi" })]),
        ("history", &[json!({})]),
        ("history", &[json!({ "room": "general", "with": "bob" })]),
        ("history", &[json!({ "room": "general", "after": "not-an-id" })]),
        ("history", &[json!({ "with": 7 })]),
        ("history", &[json!({ "room": "general" })]),
        ("history", &[json!({ "with": ["bob"] })]),
        ("join", &[]),
        ("join", &[json!(5)]),
        ("join", &[json!({})]),
        ("join", &[json!({ "room": "" })]),
        ("join", &[json!({ "room": "elsewhere" })]),
        ("leave", &[json!({ "room": ["a"] })]),
        ("leave", &[json!({ "room": "elsewhere" })]),
        ("rooms", &[]),
        ("rooms", &[json!("ignored")]),
        ("typing", &[json!(17)]),
        ("typing", &[json!({})]),
        ("typing", &[json!({ "room": "" })]),
        ("typing", &[]),
        ("typing", &[json!(null)]),
        ("stop typing", &[json!({ "room": "general" })]),
        ("stop typing", &[json!({ "to": "bob" })]),
    ];
    for (event, args) in cases {
        agree(&alice, event, args).await;
    }
}

#[tokio::test]
async fn a_binary_on_an_event_that_takes_none_is_refused_by_both() {
    let app = spawn_app().await;
    let alice = app.member("alice", "general").await;
    let arg = json!({ "room": { "_placeholder": true, "num": 0 } });
    let header = format!("451-{}", json!(["join", arg]));
    assert!(matches!(decode(&header, &[b"x"]), Verdict::Refused(_)));
    alice.send_raw(header).await;
    alice.send_frame(tokio_tungstenite::tungstenite::Message::binary(b"x".to_vec())).await;
    assert!(alice.wait_closed().await, "the server disconnects the sender");
}
