//! Running out of open files: the soft limit is raised to the hard one at
//! start, and near it new connections are refused cleanly while the ones
//! already open go on.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::process::Process;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A plain HTTP/1.1 GET on a connection of its own: the whole answer.
async fn get(addr: SocketAddr, path: &str) -> String {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: chatwire\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.unwrap();
        String::from_utf8_lossy(&answer).into_owned()
    };
    tokio::time::timeout(Duration::from_secs(5), exchange).await.expect("an answer within 5 s")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_open_files_limit_new_connections_get_503_and_the_others_go_on() {
    // 64 files are kept for the process itself: 16 for clients.
    let process = Process::start_with_open_files(80, &[]);
    let line = process.wait_for_log("open-files limit", Duration::from_secs(5));
    assert!(line.contains("limit=80") && line.contains("connections=16"), "{line}");

    let mut clients = Vec::new();
    for i in 0..16 {
        clients.push(process.user(&format!("user{i}")).await);
    }
    // The next connection is told at once, not left hanging in the backlog.
    let refused = get(process.addr, "/healthz").await;
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
    assert!(refused.contains("Retry-After: 5") && refused.contains("server_full"), "{refused}");
    process.wait_for_log("connection limit reached", Duration::from_secs(5));

    // Those connected go on.
    let users = clients[0].request("users", json!(null)).await;
    assert_eq!(users["numUsers"], 16, "{users}");

    // One leaves: there is room again.
    clients.pop().unwrap().close().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let metrics = loop {
        let answer = get(process.addr, "/metrics").await;
        if answer.starts_with("HTTP/1.1 200") {
            break answer;
        }
        assert!(tokio::time::Instant::now() < deadline, "no room after a client left: {answer}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(metrics.contains("chatwire_open_files_limit 80"), "{metrics}");
    assert!(!metrics.contains("chatwire_connections_refused_total 0"), "{metrics}");
}
