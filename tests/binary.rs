//! The `chatwire` binary as users run it: configured by environment,
//! logging its address, draining on SIGTERM.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::Client;
use serde_json::json;

struct Server {
    child: Child,
    addr: std::net::SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the binary on a free loopback port and reads the address it logs.
fn start(extra_env: &[(&str, &str)]) -> Server {
    let mut command = Command::new(env!("CARGO_BIN_EXE_chatwire"));
    command
        .env("PORT", "0")
        .env("HOST", "127.0.0.1")
        .env("RUST_LOG", "info")
        .env_remove("REDIS_URL")
        .env("PUBLIC_DIR", concat!(env!("CARGO_MANIFEST_DIR"), "/public"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (key, value) in extra_env {
        command.env(key, value);
    }
    // In the guard at once, so a failed start still kills the process.
    let mut server =
        Server { child: command.spawn().expect("start chatwire"), addr: ([0, 0, 0, 0], 0).into() };
    let stdout = server.child.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let line =
            rx.recv_timeout(deadline.saturating_duration_since(Instant::now())).expect("no listening line");
        if let Some(rest) = line.split("listening on http://").nth(1) {
            server.addr = rest.split_whitespace().next().unwrap().parse().expect("address in the log line");
            // Keep draining stdout so the child never blocks on a full pipe.
            std::thread::spawn(move || while rx.recv().is_ok() {});
            return server;
        }
    }
}

fn sigterm(child: &Child) {
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("run kill");
    assert!(status.success());
}

fn wait_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        assert!(Instant::now() < deadline, "did not exit within {within:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test]
async fn the_binary_serves_chat_and_drains_on_sigterm() {
    let mut server = start(&[("INSTANCE_NAME", "bin-test")]);
    let alice = Client::connect(server.addr).await;
    assert_eq!(alice.request("add user", json!("alice")).await["ok"], true);

    let ready: serde_json::Value =
        reqwest::get(format!("http://{}/readyz", server.addr)).await.unwrap().json().await.unwrap();
    assert_eq!(ready["instance"], "bin-test");

    sigterm(&server.child);
    assert!(alice.wait_closed().await, "connected clients are closed on shutdown");
    let status = wait_exit(&mut server.child, Duration::from_secs(5));
    assert!(status.success(), "exit status {status:?}");
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
