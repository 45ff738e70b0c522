//! Hostile packets over a raw websocket: malformed engine.io and socket.io
//! framing, invalid and absurdly nested JSON, wrong argument types, binary
//! junk, oversized frames. After each one, two bystanders still chat and
//! the server still answers; nothing it did reaches them.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod common;

use std::time::Duration;

use common::{Client, TestApp, spawn_app_with};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message as Frame;

/// Two users in a room, used to check the server still works for others.
struct Bystanders {
    alice: Client,
    bob: Client,
    round: usize,
}

impl Bystanders {
    async fn new(app: &TestApp) -> Self {
        let alice = app.member("alice", "lobby").await;
        let bob = app.member("bob", "lobby").await;
        Self { alice, bob, round: 0 }
    }

    /// Asserts alice's next message reaches bob, and nothing else did.
    async fn still_chat(&mut self, app: &TestApp, after: &str) {
        self.round += 1;
        let text = format!("still fine {}", self.round);
        let sent = self.alice.request("message", json!({ "room": "lobby", "text": text })).await;
        assert_eq!(sent["ok"], true, "after {after}: {sent}");
        let got = self.bob.next("message").await;
        assert_eq!(got["text"], text, "after {after}: bob got {got}");
        let health = reqwest::get(app.url("/healthz")).await.unwrap();
        assert_eq!(health.status(), 200, "after {after}");
    }
}

/// A logged-in attacker in the bystanders' room.
async fn mallory(app: &TestApp) -> Client {
    app.member("mallory", "lobby").await
}

fn nested(depth: usize, open: &str, close: &str, leaf: &str) -> String {
    format!("{}{leaf}{}", open.repeat(depth), close.repeat(depth))
}

#[tokio::test]
async fn malformed_text_packets_hurt_nobody() {
    let app = spawn_app_with(|c| c.event_burst = 1_000).await;
    let mut bystanders = Bystanders::new(&app).await;
    let junk: Vec<String> = vec![
        String::new(),
        "x".into(),
        "4".into(),
        "42".into(),
        "42[".into(),
        "42{}".into(),
        "42[]".into(),
        r#"42["message""#.into(),
        r#"42["message",{"room":}]"#.into(),
        r#"42["message",{"room":"lobby","text":"\ud800"}]"#.into(),
        "43abc".into(),
        "43999[]".into(),
        "49".into(),
        "4/".into(),
        "40/nonexistent,".into(),
        "41/,".into(),
        r#"42[123,"x"]"#.into(),
        r#"42[null]"#.into(),
        r#"42["message",123]"#.into(),
        r#"42["message",{"room":["lobby"],"text":{"a":1}}]"#.into(),
        r#"42["message",{"to":[1,2,3],"text":"x"}]"#.into(),
        r#"42["add user",{"username":["x"]}]"#.into(),
        r#"42["history",{"room":"lobby","limit":1e309}]"#.into(),
        r#"42["history",{"room":"lobby","limit":-1,"before":"zz"}]"#.into(),
        r#"4299999999999999999999999["rooms"]"#.into(),
        format!(r#"42["message",{{"room":"lobby","text":"{}"}}]"#, "\u{202e}".repeat(5000)),
        format!(r#"42["message",{}]"#, nested(5_000, "[", "]", "1")),
        format!(r#"42["message",{}]"#, nested(5_000, r#"{"a":"#, "}", "1")),
        format!(r#"42["join",{{"room":{}}}]"#, nested(20_000, "[", "]", "")),
        format!("42{}", nested(50_000, "[", "]", "")),
        "2".into(),
        "3".into(),
        "5".into(),
        "6".into(),
        "1".into(),
    ];
    for packet in &junk {
        let attacker = mallory(&app).await;
        attacker.send_raw(packet.clone()).await;
        let label: String = packet.chars().take(60).collect();
        bystanders.still_chat(&app, &format!("packet {label:?}")).await;
        attacker.close().await;
        let _ = bystanders.alice.next("member left").await;
    }
}

#[tokio::test]
async fn binary_junk_hurts_nobody() {
    let app = spawn_app_with(|c| {
        c.event_burst = 1_000;
        c.max_file_bytes = 64 * 1024;
    })
    .await;
    let mut bystanders = Bystanders::new(&app).await;
    let cases: Vec<(&str, Vec<Frame>)> = vec![
        ("a binary frame out of the blue", vec![Frame::binary(vec![0u8, 1, 2, 255])]),
        ("an empty binary frame", vec![Frame::binary(Vec::<u8>::new())]),
        (
            "more attachments than allowed",
            vec![Frame::text(r#"4599-["message",{"_placeholder":true,"num":0}]"#)],
        ),
        ("a header with a negative count", vec![Frame::text(r#"45-1-["message"]"#)]),
        (
            "a placeholder pointing nowhere",
            vec![
                Frame::text(
                    r#"451-["message",{"room":"lobby","file":{"name":"a.png","data":{"_placeholder":true,"num":7}}}]"#,
                ),
                Frame::binary(vec![1u8; 10]),
            ],
        ),
        (
            "an attachment that never comes",
            vec![Frame::text(
                r#"451-["message",{"room":"lobby","file":{"name":"a.png","data":{"_placeholder":true,"num":0}}}]"#,
            )],
        ),
        (
            "an attachment over the frame cap",
            vec![
                Frame::text(
                    r#"451-["message",{"room":"lobby","file":{"name":"a.png","data":{"_placeholder":true,"num":0}}}]"#,
                ),
                Frame::binary(vec![0x89u8; 1_100_000]),
            ],
        ),
        (
            "random bytes",
            vec![Frame::binary(
                (0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect::<Vec<u8>>(),
            )],
        ),
    ];
    for (what, frames) in cases {
        let attacker = mallory(&app).await;
        for frame in frames {
            attacker.send_frame(frame).await;
        }
        bystanders.still_chat(&app, what).await;
        attacker.close().await;
        let _ = bystanders.alice.next("member left").await;
    }
}

#[tokio::test]
async fn an_oversized_frame_closes_only_that_connection() {
    // Frames are capped at the larger of MAX_FRAME_BYTES and twice MAX_FILE_BYTES.
    let app = spawn_app_with(|c| {
        c.max_frame_bytes = Some(64 * 1024);
        c.max_file_bytes = 64 * 1024;
    })
    .await;
    let mut bystanders = Bystanders::new(&app).await;
    let attacker = mallory(&app).await;
    let huge = format!(r#"42["message",{{"room":"lobby","text":"{}"}}]"#, "a".repeat(1024 * 1024));
    attacker.send_raw(huge).await;
    assert!(attacker.wait_closed().await, "the oversized frame's connection is closed");
    assert_eq!(bystanders.alice.next("member left").await["username"], "mallory");
    bystanders.still_chat(&app, "an oversized frame").await;
    bystanders.bob.expect_none("message", Duration::from_millis(100)).await;
}

#[tokio::test]
async fn many_hostile_connections_at_once_hurt_nobody() {
    let app = spawn_app_with(|c| c.event_burst = 1_000).await;
    let mut bystanders = Bystanders::new(&app).await;
    let mut attackers = Vec::new();
    for i in 0..50 {
        let attacker = app.client().await;
        attacker.send_raw(format!(r#"42["add user","m{i}"]"#)).await;
        attacker.send_raw(format!("42{}", nested(10_000, "[", "]", ""))).await;
        attacker.send_raw(r#"42["message",{"room":"lobby","text":"x"}]"#).await;
        attackers.push(attacker);
    }
    bystanders.still_chat(&app, "fifty hostile connections").await;
    bystanders.bob.expect_none("message", Duration::from_millis(200)).await;
}

#[tokio::test]
async fn text_under_the_frame_cap_is_answered_and_stray_attachments_disconnect() {
    let app = spawn_app_with(|c| c.max_frame_bytes = Some(64 * 1024)).await;
    let mut bystanders = Bystanders::new(&app).await;
    let attacker = mallory(&app).await;
    // 60 KiB of text: far over the 4,000-character limit, under
    // MAX_FRAME_BYTES: read and refused, not cut off. (Text over
    // MAX_FRAME_BYTES disconnects even though files raise the frame cap for
    // binaries: tests/limits.rs.)
    let big = format!(r#"42["message",{{"room":"lobby","text":"{}"}}]"#, "a".repeat(60 * 1024));
    attacker.send_raw(big).await;
    assert_eq!(attacker.next("chat error").await["code"], "text_too_long");
    bystanders.still_chat(&app, "oversized text").await;
    bystanders.bob.expect_none("message", Duration::from_millis(100)).await;
    attacker.close().await;
    assert_eq!(bystanders.alice.next("member left").await["username"], "mallory");

    let stray = mallory(&app).await;
    stray.send_raw(r#"451-["join",{"room":"lobby","x":{"_placeholder":true,"num":0}}]"#).await;
    stray.send_frame(Frame::binary(b"junk".to_vec())).await;
    assert!(stray.wait_closed().await, "binary attachments on anything but a message disconnect");
    bystanders.still_chat(&app, "a stray attachment").await;
}
