//! The HTTP surface: web client, socket.io bundle, health checks, transports, shutdown.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod common;

use chatwire::config::Transport;
use common::{spawn_app, spawn_app_with};

#[tokio::test]
async fn serves_the_web_client_at_root() {
    let app = spawn_app().await;
    let response = reqwest::get(app.url("/")).await.unwrap();
    assert_eq!(response.status(), 200);
    let body = response.text().await.unwrap();
    assert!(body.contains("/js/main.js"));
    let loader = reqwest::get(app.url("/js/socket-io.js")).await.unwrap().text().await.unwrap();
    assert!(loader.contains("/socket.io/socket.io.js"), "the page loads the client from the server");
    assert!(loader.contains("/socket.io/socket.io.msgpack.min.js"), "in the build for PARSER=msgpack too");
}

#[tokio::test]
async fn serves_the_pinned_socketio_browser_client() {
    let app = spawn_app().await;
    for file in [
        "socket.io.js",
        "socket.io.min.js",
        "socket.io.esm.min.js",
        "socket.io.js.map",
        "socket.io.msgpack.min.js",
        "socket.io.msgpack.min.js.map",
    ] {
        let response = reqwest::get(app.url(&format!("/socket.io/{file}"))).await.unwrap();
        assert_eq!(response.status(), 200, "{file}");
        assert_eq!(response.headers()["etag"], "\"4.8.4\"");
        let body = response.text().await.unwrap();
        assert!(body.len() > 1000, "{file} is not empty");
    }
    let full = reqwest::get(app.url("/socket.io/socket.io.js")).await.unwrap();
    assert!(full.headers()["content-type"].to_str().unwrap().starts_with("application/javascript"));
    assert!(full.text().await.unwrap().contains("Socket.IO v4.8.4"));
}

#[tokio::test]
async fn socketio_client_is_not_sent_again_when_cached() {
    let app = spawn_app().await;
    let response = reqwest::Client::new()
        .get(app.url("/socket.io/socket.io.min.js"))
        .header("if-none-match", "\"4.8.4\"")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 304);
}

#[tokio::test]
async fn unknown_paths_are_404() {
    let app = spawn_app().await;
    assert_eq!(reqwest::get(app.url("/nope.html")).await.unwrap().status(), 404);
    assert_eq!(reqwest::get(app.url("/socket.io/other.js")).await.unwrap().status(), 404);
}

#[tokio::test]
async fn health_and_readiness_report_mode_and_instance() {
    let app = spawn_app().await;
    assert_eq!(reqwest::get(app.url("/healthz")).await.unwrap().status(), 200);
    let ready = reqwest::get(app.url("/readyz")).await.unwrap();
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["status"], "ready");
    assert_eq!(body["mode"], "memory");
    assert_eq!(body["instance"], "test");
}

#[tokio::test]
async fn polling_handshake_is_refused_by_default() {
    let app = spawn_app().await;
    let response = reqwest::get(app.url("/socket.io/?EIO=4&transport=polling")).await.unwrap();
    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn polling_handshake_works_when_enabled() {
    let app = spawn_app_with(|c| c.transports = vec![Transport::Websocket, Transport::Polling]).await;
    let response = reqwest::get(app.url("/socket.io/?EIO=4&transport=polling")).await.unwrap();
    assert_eq!(response.status(), 200);
    let body = response.text().await.unwrap();
    assert!(body.starts_with("0{"), "engine.io open packet, got {body}");
    assert!(body.contains("\"websocket\""), "upgrades to websocket are offered: {body}");
}

#[tokio::test]
async fn shutdown_closes_sockets_and_returns() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let started = std::time::Instant::now();
    app.stop().await.expect("clean shutdown");
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "drained quickly");
    assert!(alice.wait_closed().await, "the client's connection was closed");
}

#[tokio::test]
async fn the_limits_are_published_for_clients() {
    let app = spawn_app_with(|c| {
        c.max_file_bytes = 12_345;
        c.allow_guests = false;
    })
    .await;
    let config: serde_json::Value = reqwest::get(app.url("/api/config")).await.unwrap().json().await.unwrap();
    assert_eq!(config["maxFileBytes"], 12_345);
    assert_eq!(config["allowGuests"], false);
    assert_eq!(config["maxTextChars"], 4000);
    assert_eq!(config["maxAvatarBytes"], 1024 * 1024);
    assert_eq!(config["parser"], "common", "the web client loads the socket.io build that matches");
}
