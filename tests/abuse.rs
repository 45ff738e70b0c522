//! Floods and hoarding: the per-socket event allowance, disconnection of a
//! socket that keeps flooding, and the caps on rooms, sockets per user,
//! connections per address and unfinished handshakes. Whatever one socket
//! does, the others keep chatting.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod common;

use std::time::{Duration, Instant};

use common::{Client, assert_error, spawn_app_with};
use futures_util::StreamExt;
use serde_json::json;

#[tokio::test]
async fn a_flooding_socket_is_refused_then_cut_off_while_others_chat_on() {
    let app = spawn_app_with(|c| {
        c.event_rate = 5;
        c.event_burst = 10;
    })
    .await;
    let flooder = app.member("flooder", "general").await;
    let alice = app.member("alice", "general").await;
    let bob = app.member("bob", "general").await;

    // Fire a flood without waiting: the first events pass, the rest are refused.
    for i in 0..30 {
        flooder.emit("message", vec![json!({ "room": "general", "text": format!("spam {i}") })]).await;
    }
    assert_error(&flooder.request_empty("rooms").await, "rate_limited");
    let mut refused = 0;
    while tokio::time::timeout(Duration::from_millis(300), flooder.next("chat error")).await.is_ok_and(
        |error| {
            assert_eq!(error["code"], "rate_limited", "{error}");
            true
        },
    ) {
        refused += 1;
    }
    assert!((15..=30).contains(&refused), "most of the flood is refused ({refused})");

    // Meanwhile the others' chat is untouched.
    let started = Instant::now();
    let sent = alice.request("message", json!({ "room": "general", "text": "still here" })).await;
    assert_eq!(sent["ok"], true);
    for got in bob.until_text("message", "still here").await {
        assert!(got["text"].as_str().unwrap().starts_with("spam"), "{got}");
    }
    assert!(started.elapsed() < Duration::from_secs(2), "others are not slowed down");

    // It keeps flooding: disconnected.
    for _ in 0..60 {
        flooder.emit("typing", vec![]).await;
    }
    assert!(flooder.wait_closed().await, "a socket that keeps flooding is disconnected");
    assert_eq!(alice.next("member left").await["username"], "flooder");
}

#[tokio::test]
async fn unknown_events_count_against_the_allowance() {
    let app = spawn_app_with(|c| {
        c.event_rate = 1;
        c.event_burst = 5;
    })
    .await;
    let flooder = app.user("flooder").await;
    for _ in 0..40 {
        flooder.emit("no such event", vec![json!("x")]).await;
    }
    assert!(flooder.wait_closed().await, "a flood of unknown events is a flood");
}

#[tokio::test]
async fn a_socket_cannot_hoard_rooms_nor_a_user_sockets() {
    let app = spawn_app_with(|c| {
        c.max_rooms_per_socket = 3;
        c.max_sockets_per_user = 2;
    })
    .await;
    let alice = app.user("alice").await;
    for room in ["a", "b", "c"] {
        assert_eq!(alice.request("join", json!({ "room": room })).await["ok"], true);
    }
    assert_error(&alice.request("join", json!({ "room": "d" })).await, "too_many_rooms");
    assert_eq!(alice.request("join", json!({ "room": "a" })).await["ok"], true, "rejoining is fine");
    alice.request("leave", json!({ "room": "a" })).await;
    assert_eq!(alice.request("join", json!({ "room": "d" })).await["ok"], true, "leaving frees a place");

    let token = app.account("bob").await;
    let _first = app.with_token(&token).await;
    let _second = app.with_token(&token).await;
    let third = Client::connect_with_auth(app.addr, Some(json!({ "token": token }))).await.unwrap();
    let error = third.next("chat error").await;
    assert_eq!(error["code"], "too_many_sockets", "{error}");
    assert!(third.wait_closed().await, "a socket whose token cannot log in is closed");
    let users = alice.request_empty("users").await;
    assert_eq!(users["numUsers"], 2, "the refused socket did not log in: {users}");
}

#[tokio::test]
async fn connections_per_address_are_capped() {
    let app = spawn_app_with(|c| c.max_connections_per_address = 2).await;
    let first = app.client().await;
    let _second = app.client().await;
    let refused = Client::connect_with_auth(app.addr, None).await;
    assert!(refused.is_err(), "the third connection from one address is refused");
    first.close().await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while Client::connect_with_auth(app.addr, None).await.is_err() {
        assert!(Instant::now() < deadline, "a closed connection frees its place");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn refused_connections_left_open_still_count_against_their_address() {
    let app = spawn_app_with(|c| c.max_connections_per_address = 2).await;
    let first = app.client().await;
    let _second = app.client().await;
    // socket.io-client 2.x sockets join `/` with no connect packet: refused
    // by the cap, they stay open for as long as their client likes, since
    // socketioxide cannot close them. Each keeps its engine slot (twice the
    // cap per address): two fit, the next is refused before the upgrade.
    let url = format!("ws://{}/socket.io/?EIO=3&transport=websocket", app.addr);
    let mut lingering = Vec::new();
    for _ in 0..2 {
        let (mut ws, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
        let refusal = tokio::time::timeout(Duration::from_secs(5), async {
            while let Some(Ok(frame)) = ws.next().await {
                if frame.to_text().is_ok_and(|text| text.starts_with("44")) {
                    return frame.into_text().unwrap().to_string();
                }
            }
            panic!("closed without a refusal");
        })
        .await
        .expect("no refusal within 5 s");
        assert!(refusal.contains("too_many_connections"), "{refusal}");
        lingering.push(ws);
    }
    let eio4 = format!("ws://{}/socket.io/?EIO=4&transport=websocket", app.addr);
    for url in [&url, &eio4] {
        match tokio_tungstenite::connect_async(url).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => assert_eq!(response.status(), 429),
            other => panic!("expected a 429, got {other:?}"),
        }
    }

    // Closing connections frees their places.
    first.close().await;
    drop(lingering);
    let deadline = Instant::now() + Duration::from_secs(5);
    while tokio_tungstenite::connect_async(&eio4).await.is_err() {
        assert!(Instant::now() < deadline, "closed connections free their places");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_refused_2x_socket_that_connects_later_is_not_disconnected_by_its_refusal() {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message as Frame;

    let app = spawn_app_with(|c| c.max_connections_per_address = 2).await;
    let holder = app.client().await;
    let observer = app.user("observer").await;
    // A 2.x socket joins `/` at once and is refused: the address is full.
    let url = format!("ws://{}/socket.io/?EIO=3&transport=websocket", app.addr);
    let (mut ws, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    let mut texts = Vec::new();
    while !texts.iter().any(|t: &String| t.starts_with("44")) {
        match tokio::time::timeout(Duration::from_secs(5), ws.next()).await.expect("no refusal in 5 s") {
            Some(Ok(Frame::Text(text))) => texts.push(text.to_string()),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(texts.iter().any(|t| t.contains("too_many_connections")), "{texts:?}");

    // A place frees up, and the client connects with a packet of its own
    // (the same sid), then logs in, all before its refusal's delayed
    // disconnect is due.
    holder.close().await;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        ws.send(Frame::text("40")).await.unwrap();
        let answer = loop {
            match tokio::time::timeout(Duration::from_secs(5), ws.next()).await.expect("no answer in 5 s") {
                Some(Ok(Frame::Text(text))) if text.starts_with("4") => break text.to_string(),
                Some(Ok(_)) => {}
                other => panic!("unexpected {other:?}"),
            }
        };
        if answer == "40" {
            break;
        }
        assert!(Instant::now() < deadline, "never admitted: {answer}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    ws.send(Frame::text(r#"42["add user","ghost"]"#)).await.unwrap();
    assert_eq!(observer.next("user joined").await["username"], "ghost");

    // The refusal's delayed disconnect must not touch the new socket: no
    // disconnect packet arrives, and when the client goes, so does its user.
    let quiet = tokio::time::timeout(Duration::from_millis(1500), async {
        while let Some(Ok(frame)) = ws.next().await {
            if frame.to_text().is_ok_and(|text| text == "41") {
                return;
            }
        }
    })
    .await;
    assert!(quiet.is_err(), "the live socket was disconnected by its earlier refusal");
    drop(ws);
    assert_eq!(observer.next("user left").await["username"], "ghost", "the user left with its socket");
}

#[tokio::test]
async fn connections_that_never_finish_the_handshake_are_closed() {
    let app = spawn_app_with(|c| c.connect_timeout_secs = 1).await;
    let url = format!("ws://{}/socket.io/?EIO=4&transport=websocket", app.addr);
    let (ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let (_sink, mut stream) = ws.split();
    let started = Instant::now();
    // The engine.io open packet, then nothing from us: the server hangs up.
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(frame)) = stream.next().await {
            if frame.is_close() {
                break;
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "still open after 5 s");
    assert!(started.elapsed() >= Duration::from_millis(900), "closed by the timeout, not at once");
}
