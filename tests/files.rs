//! Files in messages: the bytes reach every recipient intact (on this
//! instance or another), history points at a URL only the conversation can
//! fetch, and what is too big or of the wrong kind is refused. Also: no
//! password is ever kept in plain text.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod common;

use std::time::Duration;

use common::process::Process;
use common::redis::RedisServer;
use common::{
    Client, TestApp, assert_error, bytes_of, placeholder, png, spawn_app, spawn_app_with, spawn_clustered,
};
use serde_json::{Value, json};

/// Sends `message` with `arg` (whose `file.data` becomes attachment 0).
async fn send_file(client: &Client, mut arg: Value, bytes: &[u8]) -> Value {
    arg["file"]["data"] = placeholder(0);
    client.request_binary("message", arg, &[bytes]).await
}

/// `GET path` with an optional bearer token: status, content type, body.
async fn get(app: &TestApp, path: &str, token: Option<&str>) -> (u16, String, Vec<u8>) {
    let mut request = reqwest::Client::new().get(app.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let content_type =
        response.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    (status, content_type, response.bytes().await.unwrap().to_vec())
}

/// A logged-in account user who joined `room`, with its token.
async fn member_with_token(app: &TestApp, name: &str, room: &str) -> (Client, String) {
    let token = app.account(name).await;
    let client = app.with_token(&token).await;
    let reply = client.request("join", json!({ "room": room })).await;
    assert_eq!(reply["ok"], true, "{name} could not join {room}: {reply}");
    (client, token)
}

#[tokio::test]
async fn a_file_reaches_room_members_intact_and_history_links_to_it() {
    let app = spawn_app().await;
    let (alice, alice_token) = member_with_token(&app, "alice", "general").await;
    let (bob, bob_token) = member_with_token(&app, "bob", "general").await;
    let eve_token = app.account("eve").await;
    let picture = png(20_000);

    let reply = send_file(
        &alice,
        json!({ "room": "general", "text": "look", "file": { "name": "../cat.png", "type": "image/png" } }),
        &picture,
    )
    .await;
    assert_eq!(reply["ok"], true, "{reply}");
    let sent = &reply["message"]["file"];
    assert_eq!(sent["name"], "cat.png", "directories are dropped from names");
    assert_eq!(sent["type"], "image/png");
    assert_eq!(sent["size"], picture.len());
    assert!(sent.get("data").is_none(), "the ack does not echo the bytes: {sent}");

    let got = bob.next("message").await;
    assert_eq!(got["text"], "look");
    assert_eq!(bytes_of(&got["file"]["data"]), picture, "the bytes arrive intact");
    assert_eq!(got["file"]["url"], sent["url"]);

    let history = bob.request("history", json!({ "room": "general" })).await;
    let kept = &history["messages"][0]["file"];
    assert_eq!(kept["url"], sent["url"], "history keeps the file: {history}");
    assert!(kept.get("data").is_none(), "history carries a URL, not the bytes");

    let url = sent["url"].as_str().unwrap();
    for token in [&alice_token, &bob_token] {
        let (status, content_type, body) = get(&app, url, Some(token)).await;
        assert_eq!((status, content_type.as_str()), (200, "image/png"));
        assert_eq!(body, picture, "members fetch the same bytes");
    }
    assert_eq!(get(&app, url, Some(&eve_token)).await.0, 403, "a non-member may not fetch it");
    assert_eq!(get(&app, url, None).await.0, 401, "an anonymous request may not fetch it");
    assert_eq!(get(&app, "/api/files/0000000000000-zzzz", Some(&bob_token)).await.0, 404);
    assert_eq!(get(&app, "/api/files/not-an-id", Some(&bob_token)).await.0, 404);
}

#[tokio::test]
async fn private_files_are_for_the_two_participants_only() {
    let app = spawn_app().await;
    let alice_token = app.account("alice").await;
    let alice = app.with_token(&alice_token).await;
    let bob_token = app.account("bob").await;
    let bob = app.with_token(&bob_token).await;
    let carol_token = app.account("carol").await;
    let pdf = b"%PDF-1.7\n1 0 obj << >> endobj\ntrailer <<>>\n%%EOF\n".to_vec();

    let reply = send_file(
        &alice,
        json!({ "to": "bob", "file": { "name": "report.pdf", "type": "application/pdf" } }),
        &pdf,
    )
    .await;
    assert_eq!(reply["ok"], true, "a file needs no text: {reply}");
    assert_eq!(bytes_of(&bob.next("message").await["file"]["data"]), pdf);

    let url = reply["message"]["file"]["url"].as_str().unwrap();
    assert_eq!(get(&app, url, Some(&bob_token)).await.2, pdf);
    assert_eq!(get(&app, url, Some(&alice_token)).await.1, "application/pdf");
    assert_eq!(get(&app, url, Some(&carol_token)).await.0, 403);
}

#[tokio::test]
async fn files_cross_instances_intact_and_are_fetchable_from_either() {
    let redis = RedisServer::start();
    let a = spawn_clustered(&redis.url(), "files", "a").await;
    let b = spawn_clustered(&redis.url(), "files", "b").await;
    for app in [&a, &b] {
        app.wait_ready(200, Duration::from_secs(10)).await;
    }
    let (alice, _) = member_with_token(&a, "alice", "general").await;
    let (bob, bob_token) = member_with_token(&b, "bob", "general").await;
    let carol = b.user("carol").await;
    let picture = png(300_000);

    let reply = send_file(
        &alice,
        json!({ "room": "general", "file": { "name": "big.png", "type": "image/png" } }),
        &picture,
    )
    .await;
    assert_eq!(reply["ok"], true, "{reply}");
    assert_eq!(bytes_of(&bob.next("message").await["file"]["data"]), picture, "intact across instances");

    let clip = b"\x1aE\xdf\xa3\x9fB\x86\x81\x01B\xf7\x81\x01B\xf2\x81\x04B\xf3\x81\x08B\x82\x84webmB\x87\x81\x04B\x85\x81\x02"
        .iter()
        .copied()
        .chain((0..5_000).map(|i| (i % 256) as u8))
        .collect::<Vec<u8>>();
    let reply = send_file(
        &alice,
        json!({ "to": ["bob", "carol"], "file": { "name": "clip.webm", "type": "video/webm" } }),
        &clip,
    )
    .await;
    assert_eq!(reply["ok"], true, "{reply}");
    for client in [&bob, &carol] {
        let got = client.next("message").await;
        assert_eq!(got["to"], json!(["bob", "carol"]));
        assert_eq!(got["file"]["type"], "video/webm");
        assert_eq!(bytes_of(&got["file"]["data"]), clip);
    }

    // Stored in Redis: the other instance serves what this one received.
    let url = reply["message"]["file"]["url"].as_str().unwrap();
    let (status, content_type, body) = get(&b, url, Some(&bob_token)).await;
    assert_eq!((status, content_type.as_str()), (200, "video/webm"));
    assert_eq!(body, clip);
    let ttl = redis
        .cli(&["--scan", "--pattern", "files:file:*"])
        .lines()
        .map(|key| redis.cli(&["ttl", key]).trim().parse::<i64>().unwrap())
        .min()
        .expect("files are kept in Redis");
    assert!(ttl > 0, "stored files expire (ttl {ttl})");
}

#[tokio::test]
async fn files_that_are_too_big_or_not_media_are_refused_and_nobody_gets_them() {
    let app = spawn_app_with(|c| c.max_file_bytes = 64 * 1024).await;
    let alice = app.member("alice", "general").await;
    let bob = app.member("bob", "general").await;
    let file = |name: &str| json!({ "room": "general", "file": { "name": name, "type": "image/png" } });

    assert_error(&send_file(&alice, file("big.png"), &png(64 * 1024 + 1)).await, "file_too_large");
    let disguised: [&[u8]; 4] = [
        b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>",
        b"PK\x03\x04\x14\x00\x00\x00\x08\x00rest-of-a-zip",
        b"just some text pretending to be a picture",
        b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff",
    ];
    for bytes in disguised {
        assert_error(&send_file(&alice, file("cat.png"), bytes).await, "file_type_not_allowed");
    }
    for name in ["", "  ", "..", "dir/", "bad\u{7}name.png", &"x".repeat(256)] {
        assert_error(&send_file(&alice, file(name), &png(100)).await, "invalid_file_name");
    }
    let as_text = json!({ "room": "general", "file": { "name": "a.png", "type": "image/png", "data": "iVBORw0KGgo=" } });
    assert_error(&alice.request("message", as_text).await, "invalid_payload");
    assert_error(&alice.request("message", json!({ "room": "general" })).await, "invalid_payload");

    bob.expect_none("message", Duration::from_millis(200)).await;
    let reply = send_file(&alice, file("fine.png"), &png(64 * 1024)).await;
    assert_eq!(reply["ok"], true, "a file of exactly the limit passes, and the socket still works: {reply}");
    assert_eq!(bytes_of(&bob.next("message").await["file"]["data"]).len(), 64 * 1024);
}

#[tokio::test]
async fn passwords_never_reach_redis_or_the_logs_in_plain_text() {
    let redis = RedisServer::start();
    let mut server = Process::start(&[("REDIS_URL", &redis.url()), ("RUST_LOG", "debug")]);
    let base = format!("http://{}", server.addr);
    common::wait_ready_at(&base, 200, Duration::from_secs(10)).await;
    let password = "Sup3r-secret-passw0rd";
    let http = reqwest::Client::new();
    let body = json!({ "username": "alice", "password": password });
    assert_eq!(http.post(format!("{base}/api/register")).json(&body).send().await.unwrap().status(), 201);
    assert_eq!(http.post(format!("{base}/api/login")).json(&body).send().await.unwrap().status(), 200);
    let wrong = json!({ "username": "alice", "password": format!("{password}-typo") });
    assert_eq!(http.post(format!("{base}/api/login")).json(&wrong).send().await.unwrap().status(), 401);

    let mut hashes = 0;
    for key in redis.cli(&["--scan"]).lines() {
        let dump = match redis.cli(&["type", key]).trim() {
            "string" => redis.cli(&["get", key]),
            "hash" => redis.cli(&["hgetall", key]),
            "list" => redis.cli(&["lrange", key, "0", "-1"]),
            "set" => redis.cli(&["smembers", key]),
            "zset" => redis.cli(&["zrange", key, "0", "-1", "withscores"]),
            _ => String::new(),
        };
        assert!(!dump.contains(password), "plain-text password under {key}");
        hashes += dump.matches("$argon2id$").count();
    }
    assert_eq!(hashes, 1, "the account's password is kept as one argon2id hash");
    server.terminate();
    server.wait_exit(Duration::from_secs(10));
    assert!(!server.logs().contains(password), "the password appears in the logs");
}
