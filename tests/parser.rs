//! PARSER: every client and every instance of a deployment must use the
//! same packet parser. A mismatch is said in the log and in /metrics, not
//! left to reconnect loops and lost events. The binary runs as a process so
//! that its real logging (telemetry::init) is what the tests read.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use common::process::Process;
use common::redis::RedisServer;

const WITHIN: Duration = Duration::from_secs(10);

/// Opens an engine.io websocket, reads its open packet, and sends `frame`
/// as the socket.io CONNECT: the server should close the connection.
async fn connect_with(addr: SocketAddr, frame: Message) {
    let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let open = tokio::time::timeout(WITHIN, ws.next()).await.unwrap().unwrap().unwrap();
    assert!(open.to_text().unwrap().starts_with('0'), "engine.io open packet: {open:?}");
    ws.send(frame).await.unwrap();
    let closed = tokio::time::timeout(WITHIN, async {
        while let Some(Ok(message)) = ws.next().await {
            if message.is_close() {
                break;
            }
        }
    });
    assert!(closed.await.is_ok(), "the server closes a connection it cannot decode");
}

/// The value of an unlabelled metric.
async fn metric(addr: SocketAddr, name: &str) -> i64 {
    let text = reqwest::get(format!("http://{addr}/metrics")).await.unwrap().text().await.unwrap();
    let line = text.lines().find(|line| line.starts_with(&format!("{name} "))).expect(name);
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

/// socket.io-msgpack-parser's CONNECT to `/`: `{ "type": 0, "nsp": "/" }`.
fn msgpack_connect() -> Message {
    let mut packet = vec![0x82, 0xa4];
    packet.extend_from_slice(b"type");
    packet.extend_from_slice(&[0x00, 0xa3]);
    packet.extend_from_slice(b"nsp");
    packet.extend_from_slice(&[0xa1, b'/']);
    Message::Binary(packet.into())
}

#[tokio::test]
async fn a_default_client_on_a_msgpack_server_is_a_warning_even_with_rust_log_warn() {
    // chatwire::app=info only for the line that says where it listens.
    let server = Process::start(&[("PARSER", "msgpack"), ("RUST_LOG", "warn,chatwire::app=info")]);
    connect_with(server.addr, Message::Text("40".into())).await;
    let line = server.wait_for_log("cannot decode", WITHIN);
    assert!(line.contains("WARN"), "{line}");
    assert!(line.contains("PARSER=msgpack cannot decode"), "{line}");
    assert!(line.contains("same parser as the server"), "{line}");
    assert!(metric(server.addr, "chatwire_undecodable_packets_total").await >= 1);
    let logs = server.logs();
    assert!(
        !logs.contains("DEBUG") && !logs.contains(" INFO engineioxide"),
        "no other output turned on:\n{logs}"
    );
}

#[tokio::test]
async fn a_msgpack_client_on_a_default_server_is_a_warning() {
    let server = Process::start(&[]);
    connect_with(server.addr, msgpack_connect()).await;
    let line = server.wait_for_log("cannot decode", WITHIN);
    assert!(line.contains("PARSER=common cannot decode"), "{line}");
    assert!(line.contains("PARSER=msgpack"), "it names the setting to use: {line}");
    assert!(metric(server.addr, "chatwire_undecodable_packets_total").await >= 1);
}

#[tokio::test]
async fn a_reconnect_loop_is_one_warning_not_one_per_attempt() {
    let server = Process::start(&[("PARSER", "msgpack")]);
    for _ in 0..5 {
        connect_with(server.addr, Message::Text("40".into())).await;
    }
    let deadline = tokio::time::Instant::now() + WITHIN;
    while metric(server.addr, "chatwire_undecodable_packets_total").await < 5 {
        assert!(tokio::time::Instant::now() < deadline, "five closes counted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(server.logs().matches("cannot decode").count(), 1, "{}", server.logs());
}

/// Each instance's entry in the parser registry: (instance id, parser, ms).
fn registry(redis: &RedisServer) -> Vec<(String, String, u64)> {
    let out = redis.cli(&["HGETALL", "chatwire:parsers"]);
    let lines: Vec<&str> = out.lines().map(str::trim).filter(|line| !line.is_empty()).collect();
    lines
        .chunks_exact(2)
        .map(|pair| {
            let (parser, at) = pair[1].split_once(' ').unwrap();
            (pair[0].to_owned(), parser.to_owned(), at.parse().unwrap())
        })
        .collect()
}

/// Waits until `count` instances are registered and each has refreshed its
/// entry after all of them were there: each has then compared itself with
/// every other one at least once.
async fn wait_until_all_compared(redis: &RedisServer, count: usize) {
    let deadline = tokio::time::Instant::now() + WITHIN;
    let all_there = loop {
        let entries = registry(redis);
        if entries.len() == count {
            break entries.iter().map(|(_, _, at)| *at).max().unwrap();
        }
        assert!(tokio::time::Instant::now() < deadline, "{count} instances registered: {entries:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    while !registry(redis).iter().all(|(_, _, at)| *at > all_there) {
        assert!(tokio::time::Instant::now() < deadline, "every instance ran another round");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn clustered<'a>(url: &'a str, name: &'a str, parser: &'a str) -> [(&'a str, &'a str); 5] {
    [
        ("REDIS_URL", url),
        ("INSTANCE_NAME", name),
        ("PARSER", parser),
        ("HEARTBEAT_INTERVAL_MS", "200"),
        ("INSTANCE_TTL_MS", "1000"),
    ]
}

#[tokio::test]
async fn instances_on_different_parsers_each_log_an_error_naming_both() {
    let redis = RedisServer::start();
    let url = redis.url();
    let a = Process::start(&clustered(&url, "parsers-a", "common"));
    let mut b = Process::start(&clustered(&url, "parsers-b", "msgpack"));

    let seen_by_a = a.wait_for_log("uses PARSER=msgpack, this instance PARSER=common", WITHIN);
    assert!(seen_by_a.contains("ERROR") && seen_by_a.contains("parsers-b#"), "{seen_by_a}");
    let seen_by_b = b.wait_for_log("uses PARSER=common, this instance PARSER=msgpack", WITHIN);
    assert!(seen_by_b.contains("ERROR") && seen_by_b.contains("parsers-a#"), "{seen_by_b}");
    assert_eq!(metric(a.addr, "chatwire_parser_mismatched_peers").await, 1);

    wait_until_all_compared(&redis, 2).await;
    assert_eq!(a.logs().matches("uses PARSER=").count(), 1, "once per peer, not every round");

    // A peer that leaves takes its entry along.
    b.terminate();
    b.wait_exit(WITHIN);
    let deadline = tokio::time::Instant::now() + WITHIN;
    while registry(&redis).len() != 1 || metric(a.addr, "chatwire_parser_mismatched_peers").await != 0 {
        assert!(tokio::time::Instant::now() < deadline, "b's entry gone: {:?}", registry(&redis));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn instances_on_the_same_parser_log_no_error() {
    let redis = RedisServer::start();
    let url = redis.url();
    let a = Process::start(&clustered(&url, "same-a", "msgpack"));
    let b = Process::start(&clustered(&url, "same-b", "msgpack"));
    wait_until_all_compared(&redis, 2).await;
    for instance in [&a, &b] {
        assert!(!instance.logs().contains("uses PARSER="), "{}", instance.logs());
        assert_eq!(metric(instance.addr, "chatwire_parser_mismatched_peers").await, 0);
    }
    assert!(registry(&redis).iter().all(|(_, parser, _)| parser == "msgpack"));
}
