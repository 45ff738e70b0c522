//! The `chatwire` binary as users run it: configured by environment,
//! logging its address, draining on SIGTERM.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod common;

use std::process::Command;
use std::time::Duration;

use common::Client;
use common::process::Process;
use common::redis::RedisServer;
use serde_json::json;

#[tokio::test]
async fn the_binary_serves_chat_and_drains_on_sigterm() {
    let mut server = Process::start(&[("INSTANCE_NAME", "bin-test")]);
    let alice = Client::connect(server.addr).await;
    assert_eq!(alice.request("add user", json!("alice")).await["ok"], true);

    let ready: serde_json::Value =
        reqwest::get(format!("http://{}/readyz", server.addr)).await.unwrap().json().await.unwrap();
    assert_eq!(ready["instance"], "bin-test");

    server.terminate();
    assert!(alice.wait_closed().await, "connected clients are closed on shutdown");
    let status = server.wait_exit(Duration::from_secs(5));
    assert!(status.success(), "exit status {status:?}");
    assert!(!server.logs().contains("panicked"), "{}", server.logs());
}

#[tokio::test]
async fn a_clustered_instance_leaves_cleanly_on_sigterm() {
    let redis = RedisServer::start();
    let url = redis.url();
    let mut server = Process::start(&[("INSTANCE_NAME", "bin-cluster"), ("REDIS_URL", &url)]);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let ready = reqwest::get(format!("http://{}/readyz", server.addr));
        let answer = tokio::time::timeout(Duration::from_secs(1), ready).await;
        if answer.is_ok_and(|response| response.is_ok_and(|r| r.status() == 200)) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "not ready within 10 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut clients = Vec::new();
    for name in ["alice", "bob", "carol"] {
        let client = Client::connect(server.addr).await;
        assert_eq!(client.request("add user", json!(name)).await["ok"], true);
        assert_eq!(client.request("join", json!({ "room": "general" })).await["ok"], true);
        clients.push(client);
    }
    assert_eq!(redis.cli(&["HLEN", "{chatwire}:users"]).trim(), "3");

    server.terminate();
    let status = server.wait_exit(Duration::from_secs(10));
    assert!(status.success(), "exit status {status:?}");
    // The disconnect handlers run after socketioxide closed the namespace:
    // broadcasting into it would panic (once per socket).
    assert!(!server.logs().contains("panicked"), "{}", server.logs());
    assert!(server.logs().contains("left the cluster"), "{}", server.logs());
    assert_eq!(redis.cli(&["HLEN", "{chatwire}:users"]).trim(), "0", "nobody is left online");
}

#[tokio::test]
async fn help_documents_every_setting() {
    let output = Command::new(env!("CARGO_BIN_EXE_chatwire")).arg("--help").output().unwrap();
    let help = String::from_utf8(output.stdout).unwrap();
    for variable in ["PORT", "HOST", "REDIS_URL", "TRANSPORTS", "PUBLIC_DIR", "INSTANCE_NAME", "RUST_LOG"] {
        assert!(help.contains(variable), "--help mentions {variable}");
    }
}

#[test]
fn a_bad_setting_is_a_clear_startup_error() {
    let output =
        Command::new(env!("CARGO_BIN_EXE_chatwire")).env("TRANSPORTS", "carrier-pigeon").output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("carrier-pigeon"), "{stderr}");
}

#[tokio::test]
async fn worker_threads_sets_how_many_threads_run_the_chat() {
    for (setting, expected) in [("1", 1), ("3", 3)] {
        let server = Process::start(&[("WORKER_THREADS", setting)]);
        let alice = Client::connect(server.addr).await;
        assert_eq!(alice.request("add user", json!("alice")).await["ok"], true);
        assert_eq!(runtime_workers(server.pid()), expected, "WORKER_THREADS={setting}");
    }
}

#[test]
fn a_worker_thread_count_of_zero_is_a_clear_startup_error() {
    let output = Command::new(env!("CARGO_BIN_EXE_chatwire")).env("WORKER_THREADS", "0").output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("WORKER_THREADS") || stderr.contains("worker-threads"), "{stderr}");
}

/// Threads of process `pid` that are tokio workers (by thread name:
/// tokio names them `tokio-rt-worker`).
fn runtime_workers(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.unwrap().path().join("comm")).ok())
        .filter(|name| name.trim() == "tokio-rt-worker")
        .count()
}

#[test]
fn a_bad_redis_url_is_a_clear_startup_error() {
    let output = Command::new(env!("CARGO_BIN_EXE_chatwire"))
        .env("REDIS_URL", "memcached://127.0.0.1:1")
        .env("PORT", "0")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("REDIS_URL"), "{stderr}");
}
