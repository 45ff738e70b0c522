//! Quotas: what one user may store and have delivered. Files beyond the
//! daily quota are refused with `quota_exceeded` (on one instance, and
//! counted once across two on Redis); in-memory history stays within its
//! budget, oldest conversations first, and the process's memory with it;
//! history in Redis expires; and fanning big files out to many people runs
//! into the delivery allowance while everyone else chats on.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chatwire::domain::{Conversation, IdGenerator, Message, RoomName, Target, Text, Username};
use chatwire::store::{AccountStore, Charge, HistoryPage, MemoryStore, RedisStore, Store};
use common::process::Process;
use common::redis::RedisServer;
use common::{
    Client, TestApp, assert_error, bytes_of, placeholder, png, spawn_app_with, spawn_clustered_with,
};
use futures_util::future::join_all;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message as Frame;

const MIB: usize = 1024 * 1024;

/// Sends `message` with `arg` (whose `file.data` becomes attachment 0).
async fn send_file(client: &Client, mut arg: Value, bytes: &[u8]) -> Value {
    arg["file"]["data"] = placeholder(0);
    client.request_binary("message", arg, &[bytes]).await
}

/// A private file message to `to` named `name`.
fn file_to(to: Value, name: &str) -> Value {
    json!({ "to": to, "file": { "name": name, "type": "image/png" } })
}

/// A guest `name` on `first`, and a second socket of the same guest on
/// `second` (its session secret lets it in).
async fn guest_on_both(first: &TestApp, second: &TestApp, name: &str) -> (Client, Client) {
    let one = first.client().await;
    let reply = one.request("add user", json!(name)).await;
    assert_eq!(reply["ok"], true, "{reply}");
    let two = second.client().await;
    let again = two.request("add user", json!({ "username": name, "session": reply["session"] })).await;
    assert_eq!(again["ok"], true, "the session lets the second socket in: {again}");
    (one, two)
}

/// FILE_QUOTA_MB_PER_DAY=1 and files of 300 KiB: three pass, the fourth is
/// refused, whichever instance each is sent through.
async fn the_file_quota_holds_across(a: &TestApp, b: &TestApp) {
    let (alice_a, alice_b) = guest_on_both(a, b, "alice").await;
    let bob = b.user("bob").await;
    let carol = a.user("carol").await;
    let file = png(300 * 1024);

    for (n, alice) in [&alice_a, &alice_b, &alice_a].into_iter().enumerate() {
        let reply = send_file(alice, file_to(json!("bob"), &format!("{n}.png")), &file).await;
        assert_eq!(reply["ok"], true, "file {n} is within the quota: {reply}");
        assert_eq!(bytes_of(&bob.next("message").await["file"]["data"]).len(), file.len());
    }
    for alice in [&alice_b, &alice_a] {
        let refused = send_file(alice, file_to(json!("bob"), "over.png"), &file).await;
        let message = assert_error(&refused, "quota_exceeded");
        assert!(message.contains("1 MiB") && message.contains("900 KiB used"), "says the limit: {message}");
        assert!(
            message.contains("resets in 23 h") || message.contains("resets in 24 h"),
            "and when: {message}"
        );
    }
    bob.expect_none("message", Duration::from_millis(300)).await;

    let text = alice_b.request("message", json!({ "to": "bob", "text": "words still pass" })).await;
    assert_eq!(text["ok"], true, "the quota is on files only: {text}");
    assert_eq!(bob.next("message").await["text"], "words still pass");
    let reply = send_file(&carol, file_to(json!("bob"), "carol.png"), &file).await;
    assert_eq!(reply["ok"], true, "another user has a quota of their own: {reply}");
    assert_eq!(bob.next("message").await["from"], "carol");
}

#[tokio::test]
async fn files_beyond_the_daily_quota_are_refused_and_never_delivered() {
    let app = spawn_app_with(|c| c.file_quota_mb_per_day = 1).await;
    the_file_quota_holds_across(&app, &app).await;
}

#[tokio::test]
async fn the_file_quota_is_one_counter_across_instances() {
    let redis = RedisServer::start();
    let quota = |c: &mut chatwire::config::Config| c.file_quota_mb_per_day = 1;
    let a = spawn_clustered_with(&redis.url(), "quota", "a", quota).await;
    let b = spawn_clustered_with(&redis.url(), "quota", "b", quota).await;
    for app in [&a, &b] {
        app.wait_ready(200, Duration::from_secs(10)).await;
    }
    the_file_quota_holds_across(&a, &b).await;
    // Counters belong to identities (guest sessions: `g:…`), not names.
    let keys = redis.cli(&["--scan", "--pattern", "quota:quota:files:*"]);
    let keys: Vec<&str> = keys.lines().filter(|line| !line.is_empty()).collect();
    assert!(keys.iter().all(|key| key.starts_with("quota:quota:files:g:")), "{keys:?}");
    let alices = keys
        .iter()
        .find(|key| redis.cli(&["get", key]).trim() == (3 * 300 * 1024).to_string())
        .unwrap_or_else(|| panic!("no counter holds alice's three files: {keys:?}"));
    let ttl: i64 = redis.cli(&["ttl", alices]).trim().parse().unwrap();
    assert!((86_000..=86_400).contains(&ttl), "the counter lasts a day from the first file: {ttl}");
}

#[tokio::test]
async fn a_quota_of_zero_means_unlimited() {
    let app = spawn_app_with(|c| c.file_quota_mb_per_day = 0).await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let file = png(MIB);
    for n in 0..3 {
        let reply = send_file(&alice, file_to(json!("bob"), &format!("{n}.png")), &file).await;
        assert_eq!(reply["ok"], true, "{reply}");
        bob.next("message").await;
    }
}

/// The store contract of `charge`: counts up to the limit, refuses without
/// counting, and has exactly one winner for the last of a quota.
async fn charges_count_to_the_limit_and_no_further(store: Arc<dyn AccountStore>) {
    let day = Duration::from_secs(24 * 3600);
    let first = store.charge("files:alice", 600, 1000, day).await.unwrap();
    assert_eq!((first.accepted, first.used), (true, 600));
    assert!(first.resets_in > day - Duration::from_secs(5) && first.resets_in <= day);
    let over = store.charge("files:alice", 500, 1000, day).await.unwrap();
    assert_eq!((over.accepted, over.used), (false, 600), "refused, and not counted");
    assert_eq!(store.charge("files:alice", 400, 1000, day).await.unwrap().used, 1000, "exactly the limit");
    assert!(store.charge("files:bob", 1000, 1000, day).await.unwrap().accepted, "bob counts apart");

    let racing = join_all((0..20).map(|_| store.charge("files:carol", 100, 1000, day))).await;
    let won: Vec<Charge> = racing.into_iter().map(Result::unwrap).filter(|c| c.accepted).collect();
    assert_eq!(won.len(), 10, "twenty racing charges of 100 under 1000: ten win");
    assert_eq!(store.charge("files:carol", 0, 1000, day).await.unwrap().used, 1000);

    let short = Duration::from_millis(300);
    assert!(store.charge("files:dave", 1000, 1000, short).await.unwrap().accepted);
    assert!(!store.charge("files:dave", 1, 1000, short).await.unwrap().accepted);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !store.charge("files:dave", 1, 1000, short).await.unwrap().accepted {
        assert!(Instant::now() < deadline, "the window never reset");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_charges_count_to_the_limit_and_no_further() {
    charges_count_to_the_limit_and_no_further(Arc::new(MemoryStore::new(10))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_charges_count_to_the_limit_and_no_further() {
    let server = RedisServer::start();
    let target = chatwire::cluster::RedisTarget::parse(&server.url()).unwrap();
    let client = chatwire::cluster::client_builder(&target).build().unwrap();
    fred::prelude::ClientLike::init(&client).await.unwrap();
    charges_count_to_the_limit_and_no_further(Arc::new(RedisStore::new(client, "charge", "test", 10))).await;
}

fn room_message(ids: &IdGenerator, room: &str, text: &str) -> Message {
    let target = Target::Room(RoomName::parse(room).unwrap());
    Message::new(
        ids.next(),
        Username::parse("alice").unwrap(),
        target,
        Some(Text::parse(text).unwrap()),
        None,
    )
}

async fn room_texts(store: &MemoryStore, room: &str) -> Vec<String> {
    let all = HistoryPage { before: None, after: None, limit: 500 };
    let conversation = chatwire::domain::Conversation::Room(RoomName::parse(room).unwrap());
    let messages = store.history(&conversation, &all).await.unwrap();
    messages.into_iter().map(|m| m.text.unwrap().as_str().to_owned()).collect()
}

#[tokio::test]
async fn history_over_its_budget_loses_the_least_recently_used_rooms_first() {
    let budget = MIB;
    let store = MemoryStore::new(500).with_history_limits(budget, Duration::from_secs(30 * 24 * 3600));
    let ids = IdGenerator::new();
    let filler = "x".repeat(2_000);
    store
        .append_message(
            &Conversation::Room(RoomName::parse("lobby").unwrap()),
            &room_message(&ids, "lobby", "kept because it is read"),
        )
        .await
        .unwrap();
    // 200 rooms of 20 messages of 2 KB: 8 MB written, in room order.
    for room in 0..200 {
        let name = format!("room{room}");
        for n in 0..20 {
            let room = Conversation::Room(RoomName::parse(&name).unwrap());
            store
                .append_message(&room, &room_message(&ids, &name, &format!("{name}/{n} {filler}")))
                .await
                .unwrap();
            assert!(store.history_bytes() <= budget, "over budget: {} bytes", store.history_bytes());
        }
        if room % 10 == 0 {
            room_texts(&store, "lobby").await; // someone keeps reading the lobby
        }
    }
    assert!(store.history_bytes() > budget * 3 / 4, "the budget is used: {}", store.history_bytes());
    assert_eq!(room_texts(&store, "lobby").await, ["kept because it is read"], "reads count as use");
    let mut kept = Vec::new();
    for room in 0..200 {
        let texts = room_texts(&store, &format!("room{room}")).await;
        if let Some(newest) = texts.last() {
            assert!(newest.starts_with(&format!("room{room}/19 ")), "a room loses its oldest messages first");
        }
        kept.push(texts.len());
    }
    assert!(kept[..100].iter().all(|&n| n == 0), "the oldest rooms are gone: {kept:?}");
    assert!(kept[185..].iter().all(|&n| n == 20), "the most recent rooms are intact: {kept:?}");
    assert!(kept.is_sorted(), "older rooms never keep more than newer ones: {kept:?}");
}

#[tokio::test]
async fn history_in_redis_expires_after_history_ttl_days() {
    let redis = RedisServer::start();
    let app = spawn_clustered_with(&redis.url(), "ttl", "a", |c| c.history_ttl_days = 2).await;
    app.wait_ready(200, Duration::from_secs(10)).await;
    let alice = app.member("alice", "general").await;
    let _bob = app.user("bob").await;
    for message in [json!({ "room": "general", "text": "hi" }), json!({ "to": "bob", "text": "psst" })] {
        assert_eq!(alice.request("message", message).await["ok"], true);
    }
    let keys = redis.cli(&["--scan", "--pattern", "ttl:history:*"]);
    let keys: Vec<&str> = keys.lines().collect();
    assert_eq!(keys.len(), 2, "a room and a private conversation: {keys:?}");
    for key in keys {
        let ttl: i64 = redis.cli(&["ttl", key]).trim().parse().unwrap();
        assert!((2 * 86_400 - 60..=2 * 86_400).contains(&ttl), "{key} expires in two days: {ttl} s");
    }
}

/// Resident memory of a process, in bytes.
fn rss(pid: u32) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|line| line.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse::<usize>().unwrap() * 1024
}

/// Writes `messages` messages of `text` across `rooms` rooms (each client
/// its own rooms, so nothing is delivered), through `clients` clients.
async fn fill_history(
    server: &Process,
    name: &str,
    clients: usize,
    rooms: usize,
    messages: usize,
    text: &str,
) {
    let mut senders = Vec::new();
    for c in 0..clients {
        let client = Client::connect(server.addr).await;
        assert_eq!(client.request("add user", json!(format!("{name}{c}"))).await["ok"], true);
        for room in (c..rooms).step_by(clients).map(|r| format!("{name}-{r}")) {
            assert_eq!(client.request("join", json!({ "room": room })).await["ok"], true);
        }
        senders.push(client);
    }
    let per_client = messages / clients;
    join_all(senders.iter().enumerate().map(|(c, client)| async move {
        let own: Vec<usize> = (c..rooms).step_by(clients).collect();
        for n in 0..per_client {
            let room = format!("{name}-{}", own[n % own.len()]);
            let reply = client.request("message", json!({ "room": room, "text": text })).await;
            assert_eq!(reply["ok"], true, "{reply}");
        }
    }))
    .await;
}

/// HISTORY_MAX_MB=8 while 96 MB of history is written: the process grows
/// by less than the budget plus 40 MiB. Without the budget it grows by
/// about 100 MiB, and this fails: run it with `QUOTAS_HISTORY_MAX_MB=100000`
/// to see that.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_memory_stays_bounded_in_the_real_process() {
    const BUDGET_MB: usize = 8;
    let budget = std::env::var("QUOTAS_HISTORY_MAX_MB").unwrap_or_else(|_| BUDGET_MB.to_string());
    let server = Process::start(&[
        ("HISTORY_MAX_MB", &budget),
        ("HISTORY_LIMIT", "100000"),
        ("EVENT_RATE", "100000"),
        ("EVENT_BURST", "100000"),
    ]);
    // 4,000 characters of a 3-byte character: 12 KB a message.
    let text = "€".repeat(4_000);
    fill_history(&server, "warm", 4, 8, 400, &text).await; // allocator arenas, buffers
    let baseline = rss(server.pid());
    let started = Instant::now();
    fill_history(&server, "fill", 8, 80, 8_000, &text).await; // 96 MB
    let after = rss(server.pid());
    let grown = after.saturating_sub(baseline) / MIB;
    eprintln!(
        "HISTORY_MAX_MB={budget}: RSS {} MiB before, {} MiB after writing 96 MB of history in {:?} (+{grown} MiB)",
        baseline / MIB,
        after / MIB,
        started.elapsed()
    );
    let bound = BUDGET_MB + 40;
    assert!(grown <= bound, "RSS grew {grown} MiB, more than the budget plus 40 MiB ({bound} MiB)");
}

/// A user who only tallies what reaches it: the files (by their binary
/// frames, which [`Client`] would decode: too slow for 100 MiB) and the texts.
struct Tally {
    files: Arc<AtomicUsize>,
    texts: Arc<Mutex<Vec<String>>>,
}

impl Tally {
    /// Connects and logs in as `name` (the raw engine.io / socket.io framing).
    async fn join(addr: std::net::SocketAddr, name: &str) -> Self {
        let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
        let (ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        let (mut sink, mut stream) = ws.split();
        let mut next_starting = async |prefix: &str| {
            let found = tokio::time::timeout(Duration::from_secs(5), async {
                while let Some(Ok(frame)) = stream.next().await {
                    if frame.to_text().is_ok_and(|text| text.starts_with(prefix)) {
                        return frame.into_text().unwrap().to_string();
                    }
                }
                panic!("closed while waiting for {prefix}");
            });
            found.await.unwrap_or_else(|_| panic!("no {prefix} packet within 5 s"))
        };
        next_starting("0").await; // engine.io open
        sink.send(Frame::text("40")).await.unwrap();
        next_starting("40").await; // namespace connected
        sink.send(Frame::text(format!("420{}", json!(["add user", name])))).await.unwrap();
        let ack = next_starting("430").await;
        assert!(ack.contains(r#""ok":true"#), "{name} could not log in: {ack}");
        let (files, texts) = (Arc::new(AtomicUsize::new(0)), Arc::new(Mutex::new(Vec::new())));
        let (files_seen, texts_seen) = (files.clone(), texts.clone());
        tokio::spawn(async move {
            while let Some(Ok(frame)) = stream.next().await {
                match frame {
                    // A file message carries exactly one attachment.
                    Frame::Binary(_) => _ = files_seen.fetch_add(1, Ordering::SeqCst),
                    Frame::Text(text) if text.as_str() == "2" => _ = sink.send(Frame::text("3")).await,
                    Frame::Text(text) => {
                        let Some(body) = text.as_str().strip_prefix("42") else { continue };
                        let Ok(Value::Array(event)) = serde_json::from_str::<Value>(body) else { continue };
                        if event[0] == "message"
                            && event[1]["text"].is_string()
                            && event[1].get("file").is_none()
                        {
                            texts_seen.lock().unwrap().push(event[1]["text"].as_str().unwrap().to_owned());
                        }
                    }
                    _ => {}
                }
            }
        });
        Self { files, texts }
    }

    /// Waits (up to 10 s) until `files` files and then exactly `texts` arrived.
    async fn wait_for(&self, files: usize, texts: &[&str]) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.files.load(Ordering::SeqCst) < files || self.texts.lock().unwrap().len() < texts.len() {
            assert!(
                Instant::now() < deadline,
                "{} files, texts {:?}",
                self.files.load(Ordering::SeqCst),
                self.texts.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(self.files.load(Ordering::SeqCst), files);
        assert_eq!(*self.texts.lock().unwrap(), texts);
    }
}

/// Ten 1 MiB files, each to the same ten people, sent in one burst (without
/// waiting for acks): with the default allowance (2 MiB/s, bursts of
/// 32 MiB) three pass and the rest are refused with `rate_limited` and reach
/// nobody. The sender's small texts, and other users, are not held up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanning_big_files_out_runs_into_the_delivery_allowance() {
    let app = spawn_app_with(|_| {}).await;
    let sender = app.user("sender").await;
    let names: Vec<String> = (0..10).map(|n| format!("r{n}")).collect();
    let recipients = join_all(names.iter().map(|name| Tally::join(app.addr, name))).await;
    let dave = app.user("dave").await;
    let file = png(MIB);

    for n in 0..10 {
        let mut arg = file_to(json!(names), &format!("{n}.png"));
        arg["file"]["data"] = placeholder(0);
        sender.send_raw(format!("451-{}", json!(["message", arg]))).await;
        sender.send_frame(Frame::binary(file.clone())).await;
    }
    // Handled in order: once this is answered, so are the ten files.
    let small = sender.request("message", json!({ "to": names, "text": "a few words still go" })).await;
    assert_eq!(small["ok"], true, "small messages still fit the allowance: {small}");
    let refusals = sender.drain(&["chat error"]);
    let passed = 10 - refusals.len();
    eprintln!("{passed} of 10 fan-outs of 10 MiB passed");
    assert!(
        (3..=4).contains(&passed),
        "the burst holds three 10 MiB deliveries, the rate little more: {passed}"
    );
    for (_, error) in &refusals {
        assert_eq!(error["code"], "rate_limited", "{error}");
        let message = error["message"].as_str().unwrap();
        assert!(message.contains("once per recipient") && message.contains("try again in"), "{message}");
    }
    let chat = dave.request("message", json!({ "to": "r0", "text": "unaffected" })).await;
    assert_eq!(chat["ok"], true, "{chat}");

    recipients[0].wait_for(passed, &["a few words still go", "unaffected"]).await;
    for recipient in &recipients[1..] {
        recipient.wait_for(passed, &["a few words still go"]).await;
    }
}
