//! A deployment that mixes instances with `ROUTED_ROOMS=true` and instances
//! without (`false`, or a version before routing) loses no room message: a
//! routed instance publishes room broadcasts on the namespace channel, as
//! an unrouted one, until its checks find every live peer routing, and
//! before its first successful check. Each instance runs as a process, so
//! that its /metrics and its log are its own.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod common;

use std::time::Duration;

use common::Client;
use common::process::Process;
use common::redis::{RedisServer, redis_cli};
use serde_json::json;

const WITHIN: Duration = Duration::from_secs(10);
/// 1 while an instance publishes room broadcasts on room channels.
const ACTIVE: &str = "chatwire_routed_rooms_active";
/// Live peers that do not route rooms.
const UNROUTED: &str = "chatwire_unrouted_peers";
/// The warning a routed instance logs when it falls back.
const FALLBACK: &str = "room messages go on the namespace channel until every instance routes";
/// The line a routed instance logs when it starts using room channels.
const ROUTING: &str = "every live instance routes rooms";

/// An instance of the deployment `prefix` on `url`, routed or not, with
/// fast heartbeats, ready.
async fn instance(url: &str, prefix: &str, name: &str, routed: bool) -> Process {
    let process = Process::start(&[
        ("REDIS_URL", url),
        ("REDIS_PREFIX", prefix),
        ("INSTANCE_NAME", name),
        ("ROUTED_ROOMS", if routed { "true" } else { "false" }),
        ("HEARTBEAT_INTERVAL_MS", "200"),
        ("INSTANCE_TTL_MS", "1000"),
        ("EVENT_RATE", "10000"),
        ("EVENT_BURST", "10000"),
    ]);
    common::wait_ready_at(&format!("http://{}", process.addr), 200, WITHIN).await;
    process
}

/// The value of the metric line that starts with `name ` (0 if absent, as
/// a counter not yet counted).
async fn metric(process: &Process, name: &str) -> f64 {
    let text = reqwest::get(format!("http://{}/metrics", process.addr)).await.unwrap().text().await.unwrap();
    text.lines().find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok()).unwrap_or(0.0)
}

/// Waits until `process`'s metric `name` is `value`.
async fn wait_metric(process: &Process, name: &str, value: f64) {
    let deadline = tokio::time::Instant::now() + WITHIN;
    loop {
        let now = metric(process, name).await;
        if now == value {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{name} still {now}, wanted {value}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// redis-cli against the first node of `url` (`-c`: on a Redis Cluster it
/// follows redirections to the key's node).
fn cli(url: &str, args: &[&str]) -> String {
    let port = url.rsplit("//").next().unwrap().split(',').next().unwrap().rsplit(':').next().unwrap();
    let mut with_c = vec!["-c"];
    with_c.extend_from_slice(args);
    redis_cli(port.parse().unwrap(), &with_c)
}

/// The entries of a registry hash, as (instance id, value, milliseconds).
fn registry(url: &str, key: &str) -> Vec<(String, String, u64)> {
    let out = cli(url, &["HGETALL", key]);
    let lines: Vec<&str> = out.lines().map(str::trim).filter(|line| !line.is_empty()).collect();
    lines
        .chunks_exact(2)
        .filter_map(|pair| {
            let (value, at) = pair[1].split_once(' ')?;
            Some((pair[0].to_owned(), value.to_owned(), at.parse().ok()?))
        })
        .collect()
}

/// Waits until the instance named `name` has refreshed its routing entry
/// `rounds` more times: it has run that many more checks.
async fn wait_rounds(url: &str, prefix: &str, name: &str, rounds: usize) {
    let key = format!("{prefix}:routing");
    let stamp = || {
        let entries = registry(url, &key);
        entries.into_iter().find(|(id, _, _)| id.starts_with(&format!("{name}#"))).map(|(_, _, at)| at)
    };
    let deadline = tokio::time::Instant::now() + WITHIN;
    let mut last = stamp();
    let mut seen = 0;
    while seen < rounds {
        assert!(tokio::time::Instant::now() < deadline, "{name} ran {seen} of {rounds} rounds");
        tokio::time::sleep(Duration::from_millis(20)).await;
        let now = stamp();
        if now.is_some() && now != last {
            seen += 1;
            last = now;
        }
    }
}

/// A client of `process` logged in as `name`, in the room `general`.
async fn member(process: &Process, name: &str) -> Client {
    let client = process.user(name).await;
    client.next("login").await;
    let reply = client.request("join", json!({ "room": "general" })).await;
    assert_eq!(reply["ok"], true, "{reply}");
    client
}

/// `from` sends 10 messages to the room `general` and 10 private ones to
/// `to`; returns their texts, tagged `tag`.
async fn send(from: &Client, to: &str, tag: &str) -> Vec<String> {
    let mut texts = Vec::new();
    for i in 0..10 {
        let room = format!("{tag} room {i}");
        let reply = from.request("message", json!({ "room": "general", "text": room })).await;
        assert_eq!(reply["ok"], true, "{reply}");
        let private = format!("{tag} to {to} {i}");
        let reply = from.request("message", json!({ "to": to, "text": private })).await;
        assert_eq!(reply["ok"], true, "{reply}");
        texts.extend([room, private]);
    }
    texts
}

/// Asserts that `client` receives exactly `expected` (in any order), then,
/// once `from` sent a last room message and a last private one, nothing
/// else before them: no message lost, none twice.
async fn receives_exactly_once(client: &Client, name: &str, from: &Client, mut expected: Vec<String>) {
    let mut got = Vec::new();
    for _ in 0..expected.len() {
        got.push(client.next("message").await["text"].as_str().unwrap_or_default().to_owned());
    }
    got.sort();
    expected.sort();
    assert_eq!(got, expected, "{name} receives each message once");
    let ends = ["end room", "end private"];
    from.request("message", json!({ "room": "general", "text": ends[0] })).await;
    from.request("message", json!({ "to": name, "text": ends[1] })).await;
    let mut extra = Vec::new();
    let mut left = ends.to_vec();
    while !left.is_empty() {
        let text = client.next("message").await["text"].as_str().unwrap_or_default().to_owned();
        match left.iter().position(|end| *end == text) {
            Some(index) => drop(left.remove(index)),
            None => extra.push(text),
        }
    }
    assert!(extra.is_empty(), "{name} received extra copies: {extra:?}");
}

/// `x` (named `x_name`) and `y` exchange room and private messages both
/// ways; each receives every one of the other's exactly once.
async fn exchange(x: &Client, x_name: &str, y: &Client, y_name: &str, tag: &str) {
    let to_y = send(x, y_name, &format!("{tag} from {x_name}")).await;
    let to_x = send(y, x_name, &format!("{tag} from {y_name}")).await;
    receives_exactly_once(y, y_name, x, to_y).await;
    receives_exactly_once(x, x_name, y, to_x).await;
}

async fn a_routed_and_an_unrouted_instance_exchange_every_message_exactly_once(url: &str, prefix: &str) {
    let b = instance(url, prefix, "b", false).await;
    let a = instance(url, prefix, "a", true).await;
    // At once: a's first check ran before it was ready, and it had not
    // routed anything before.
    let alice = member(&a, "alice").await;
    let bob = member(&b, "bob").await;
    exchange(&alice, "alice", &bob, "bob", "early").await;

    assert_eq!(metric(&a, UNROUTED).await, 1.0, "a saw b");
    assert_eq!(metric(&a, ACTIVE).await, 0.0);
    let warning = a.wait_for_log(FALLBACK, WITHIN);
    assert!(warning.contains("WARN") && warning.contains("b#"), "names the unrouted peer: {warning}");
    assert_eq!(metric(&b, ACTIVE).await, 0.0, "b does not route");
    assert_eq!(metric(&b, UNROUTED).await, 0.0, "a routes");

    wait_rounds(url, prefix, "a", 3).await;
    exchange(&alice, "alice", &bob, "bob", "later").await;
    assert_eq!(a.count_logs(FALLBACK), 1, "said once, not every round");
    assert_eq!(a.count_logs(ROUTING), 0);
}

async fn routed_instances_route_once_their_unrouted_peer_is_gone(url: &str, prefix: &str) {
    let mut b = instance(url, prefix, "b", false).await;
    let a = instance(url, prefix, "a", true).await;
    let c = instance(url, prefix, "c", true).await;
    let alice = member(&a, "alice").await;
    let carol = member(&c, "carol").await;
    let _bob = member(&b, "bob").await;
    for routed in [&a, &c] {
        wait_metric(routed, UNROUTED, 1.0).await;
    }
    let room_bytes = "chatwire_pubsub_received_bytes_total{kind=\"room\"}";
    exchange(&alice, "alice", &carol, "carol", "fallback").await;
    assert_eq!(metric(&c, room_bytes).await, 0.0, "nothing went on room channels");

    b.terminate();
    b.wait_exit(WITHIN);
    for key in ["routing", "parsers"] {
        let entries = registry(url, &format!("{prefix}:{key}"));
        assert!(
            entries.iter().all(|(id, _, _)| !id.starts_with("b#")),
            "b withdrew its {key} entry: {entries:?}"
        );
    }
    for routed in [&a, &c] {
        wait_metric(routed, ACTIVE, 1.0).await;
        assert_eq!(metric(routed, UNROUTED).await, 0.0);
        assert!(routed.wait_for_log(ROUTING, WITHIN).contains("INFO"));
    }
    exchange(&alice, "alice", &carol, "carol", "routed").await;
    assert!(metric(&c, room_bytes).await > 0.0, "room messages came on room channels");
}

common::across_backends!(
    a_routed_and_an_unrouted_instance_exchange_every_message_exactly_once,
    routed_instances_route_once_their_unrouted_peer_is_gone,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_routed_instance_stays_on_the_namespace_channel_until_a_check_succeeds() {
    let redis = RedisServer::start();
    let (url, prefix) = (redis.url(), "unchecked");
    let parsers = format!("{prefix}:parsers");
    // The wrong type: every check fails until it is deleted.
    redis.cli(&["SET", &parsers, "not a hash"]);
    let mut b = instance(&url, prefix, "b", false).await;
    let a = instance(&url, prefix, "a", true).await;
    a.wait_for_log("could not compare PARSER", WITHIN);
    let alice = member(&a, "alice").await;
    let bob = member(&b, "bob").await;
    exchange(&alice, "alice", &bob, "bob", "unchecked").await;
    assert_eq!(metric(&a, ACTIVE).await, 0.0);
    assert_eq!(metric(&a, UNROUTED).await, 0.0, "no check said anything yet");

    redis.cli(&["DEL", &parsers]);
    wait_metric(&a, UNROUTED, 1.0).await;
    a.wait_for_log(FALLBACK, WITHIN);

    // Failed checks keep the last decision, even once b is gone.
    redis.cli(&["SET", &parsers, "not a hash"]);
    b.terminate();
    b.wait_exit(WITHIN);
    wait_rounds(&url, prefix, "a", 3).await;
    assert_eq!(metric(&a, ACTIVE).await, 0.0);
    redis.cli(&["DEL", &parsers]);
    wait_metric(&a, ACTIVE, 1.0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_of_an_earlier_version_counts_as_unrouted() {
    let redis = RedisServer::start();
    let (url, prefix) = (redis.url(), "earlier");
    let a = instance(&url, prefix, "a", true).await;
    wait_metric(&a, ACTIVE, 1.0).await;

    // An earlier version writes its parser entry only, on the Redis clock.
    let parsers = format!("{prefix}:parsers");
    let heartbeat = || {
        let time = redis.cli(&["TIME"]);
        let mut parts = time.lines().map(|line| line.trim().parse::<u64>().unwrap());
        let ms = parts.next().unwrap() * 1000 + parts.next().unwrap() / 1000;
        redis.cli(&["HSET", &parsers, "old#000001", &format!("common {ms}")]);
    };
    let deadline = tokio::time::Instant::now() + WITHIN;
    while metric(&a, ACTIVE).await != 0.0 {
        assert!(tokio::time::Instant::now() < deadline, "a never fell back");
        heartbeat();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(metric(&a, UNROUTED).await, 1.0);
    assert!(a.wait_for_log(FALLBACK, WITHIN).contains("old#000001"));

    // It stops: its entry expires (INSTANCE_TTL_MS) and a routes again.
    wait_metric(&a, ACTIVE, 1.0).await;
    assert_eq!(metric(&a, UNROUTED).await, 0.0);
    assert_eq!(a.count_logs(ROUTING), 2, "at the start, and after the earlier version left");
    assert!(registry(&url, &parsers).iter().all(|(id, _, _)| id != "old#000001"), "its entry was removed");
}
