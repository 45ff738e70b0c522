//! The request edge against the real server over TCP: slow or silent
//! connections are closed, sockets that never log in are dropped.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod common;

use std::time::Duration;

use common::spawn_app_with;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// How long any single wait may take before the test fails.
const WAIT: Duration = Duration::from_secs(5);

/// Reads until the server closes the connection; false if it is still open
/// after `within`.
async fn closed_within(stream: &mut tokio::net::tcp::OwnedReadHalf, within: Duration) -> bool {
    let mut buf = [0u8; 1024];
    tokio::time::timeout(within, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

#[tokio::test]
async fn connections_that_do_not_finish_their_headers_in_time_are_closed() {
    let app = spawn_app_with(|c| c.header_read_timeout_secs = 1).await;

    // Half a request, then nothing.
    let (mut read, mut write) = TcpStream::connect(app.addr).await.unwrap().into_split();
    write.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ").await.unwrap();
    let started = Instant::now();
    assert!(closed_within(&mut read, WAIT).await, "a half-sent request is still open after {WAIT:?}");
    assert!(started.elapsed() >= Duration::from_millis(900), "closed by the timeout, not at once");

    // A byte every 200 ms: progress does not extend the deadline.
    let (mut read, mut write) = TcpStream::connect(app.addr).await.unwrap().into_split();
    let trickle = tokio::spawn(async move {
        for byte in b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: abcdefghijklmnopqrstuvwxyz".iter().cycle()
        {
            if write.write_all(&[*byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    assert!(closed_within(&mut read, WAIT).await, "a trickled request is still open after {WAIT:?}");
    trickle.abort();

    // Nothing at all.
    let (mut read, _write) = TcpStream::connect(app.addr).await.unwrap().into_split();
    assert!(closed_within(&mut read, WAIT).await, "a silent connection is still open after {WAIT:?}");

    // A prompt request is served as before.
    assert_eq!(reqwest::get(app.url("/healthz")).await.unwrap().status(), 200);
}

#[tokio::test]
async fn a_socket_that_does_not_log_in_in_time_is_disconnected() {
    let app = spawn_app_with(|c| c.login_timeout_secs = 1).await;
    let alice = app.user("alice").await;
    let idle = app.client().await;
    let error = idle.next("chat error").await;
    assert_eq!(error["code"], "login_timeout", "{error}");
    assert!(idle.wait_closed().await, "the idle socket is disconnected");
    // alice connected first, so her deadline has passed too.
    assert_eq!(alice.request_empty("users").await["numUsers"], 1, "a logged-in socket stays");
}

#[tokio::test]
async fn the_login_timeout_can_be_turned_off() {
    let app = spawn_app_with(|c| c.login_timeout_secs = 0).await;
    let idle = app.client().await;
    // Longer than the 1 s deadline that disconnects in the test above.
    idle.expect_none("chat error", Duration::from_millis(1500)).await;
    assert_eq!(idle.request("add user", json!("late")).await["ok"], true, "still connected");
}
