//! Look-alike names: a registered or online name cannot be taken by a name
//! that only looks like it, blank-looking names are refused, and accounts
//! stored under the old lowercase keys keep working after the upgrade.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod common;

use std::time::{Duration, Instant};

use chatwire::domain::Password;
use common::redis::{RedisCluster, RedisServer, redis_cli};
use common::{Client, TestApp, assert_error, spawn_app, spawn_clustered};
use serde_json::json;

/// Names that render like `alice` (homoglyphs, width, case).
const LOOK_ALIKES: [&str; 5] = [
    "\u{430}lice",                              // Cyrillic а
    "\u{FF41}lice",                             // fullwidth ａ
    "\u{FF21}\u{FF2C}\u{FF29}\u{FF23}\u{FF25}", // fullwidth ＡＬＩＣＥ
    "AL\u{399}CE",                              // Greek capital iota
    "ALICE",
];

/// `alice` with a character that shows nothing (bidi isolate, soft hyphen,
/// variation selector, zero-width space, word joiner).
const HIDDEN_CHARACTERS: [&str; 5] =
    ["alice\u{2066}", "ali\u{AD}ce", "alice\u{FE0F}", "ali\u{200B}ce", "al\u{2060}ice"];

/// Names that show as nothing at all, or break the line.
const BLANK_LOOKING: [&str; 5] =
    ["\u{3164}", "\u{2800}", "\u{3164}\u{3164}", "ali\u{2028}ce", "\u{2800} \u{2800}"];

async fn add_user(app: &TestApp, name: &str) -> (Client, serde_json::Value) {
    let client = app.client().await;
    let reply = client.request("add user", json!(name)).await;
    (client, reply)
}

#[tokio::test]
async fn a_guest_cannot_take_a_look_alike_of_a_registered_name() {
    let app = spawn_app().await;
    let (status, body) =
        app.post_json("/api/register", json!({ "username": "alice", "password": "password1234" })).await;
    assert_eq!(status, 201, "{body}");
    for name in LOOK_ALIKES {
        let (_, reply) = add_user(&app, name).await;
        assert_error(&reply, "name_registered");
    }
    for name in HIDDEN_CHARACTERS {
        let (_, reply) = add_user(&app, name).await;
        assert_error(&reply, "invalid_username");
    }
    let (_, reply) = add_user(&app, "alicia").await;
    assert_eq!(reply["ok"], true, "a different name is still free: {reply}");
}

#[tokio::test]
async fn a_look_alike_of_a_registered_name_cannot_be_registered() {
    let app = spawn_app().await;
    app.account("alice").await;
    for name in LOOK_ALIKES {
        let (status, body) =
            app.post_json("/api/register", json!({ "username": name, "password": "password1234" })).await;
        assert_eq!(status, 409, "{name:?}: {body}");
        assert_eq!(body["error"]["code"], "name_registered", "{name:?}");
    }
    // The account logs in under a look-alike spelling, as itself.
    let (status, body) =
        app.post_json("/api/login", json!({ "username": "\u{430}lice", "password": "password1234" })).await;
    assert_eq!((status, &body["username"]), (200, &json!("alice")), "{body}");
}

#[tokio::test]
async fn blank_looking_names_are_refused_by_register_and_by_add_user() {
    let app = spawn_app().await;
    for name in BLANK_LOOKING.into_iter().chain(HIDDEN_CHARACTERS) {
        let (status, body) =
            app.post_json("/api/register", json!({ "username": name, "password": "password1234" })).await;
        assert_eq!(status, 400, "{name:?}: {body}");
        assert_eq!(body["error"]["code"], "invalid_username", "{name:?}");
        assert!(body["error"]["message"].as_str().unwrap().starts_with("username must"), "{body}");
        let (_, reply) = add_user(&app, name).await;
        assert_error(&reply, "invalid_username");
    }
}

#[tokio::test]
async fn composed_and_decomposed_spellings_are_one_online_name() {
    let app = spawn_app().await;
    let first = app.user("caf\u{E9}").await;
    for name in ["cafe\u{301}", "CAF\u{C9}", "\u{441}afe\u{301}"] {
        let (_, reply) = add_user(&app, name).await;
        assert_error(&reply, "name_taken");
    }
    let users = first.request_empty("users").await;
    assert_eq!(users["users"], json!([{ "username": "caf\u{E9}" }]));
}

#[tokio::test]
async fn a_decomposed_name_is_shown_composed() {
    let app = spawn_app().await;
    let (client, reply) = add_user(&app, "  Zoe\u{308}  ").await;
    assert_eq!(reply["ok"], true, "{reply}");
    assert_eq!(reply["username"], "Zo\u{EB}");
    client.next("login").await;
    let users = client.request_empty("users").await;
    assert_eq!(users["users"], json!([{ "username": "Zo\u{EB}" }]));
}

/// An account record as versions before the skeleton key wrote it.
async fn legacy_record(name: &str, password: &str) -> String {
    let hash = chatwire::auth::passwords::Hasher::for_this_machine()
        .hash(Password::parse(password).unwrap())
        .await
        .unwrap();
    json!({ "name": name, "password_hash": hash }).to_string()
}

/// Polls `check` until it holds, for at most ten seconds.
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(Instant::now() < deadline, "{what}: not within 10 s");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn log_in(app: &TestApp, name: &str, password: &str) -> (u16, serde_json::Value) {
    app.post_json("/api/login", json!({ "username": name, "password": password })).await
}

/// Seeds legacy accounts through `cli` (redis-cli arguments), starts an
/// instance over `url`, and checks the accounts after the migration.
async fn legacy_accounts_keep_working(url: &str, prefix: &str, cli: impl Fn(&[&str]) -> String) {
    let key = |kind: &str, name: &str| format!("{prefix}:{kind}:{name}");
    // Bob1's key is now `bobl`: his record must move, avatar included.
    let bob = legacy_record("Bob1", "bob-password-1").await;
    assert_eq!(cli(&["set", &key("account", "bob1"), &bob]).trim(), "OK");
    cli(&["hset", &key("avatar", "bob1"), "mime", "image/png", "etag", "legacy", "data", "old-picture"]);
    // Mia (key `rnia`) and rnia were two accounts; now they are look-alikes.
    let mia = legacy_record("Mia", "mia-password-1").await;
    let rnia = legacy_record("rnia", "rnia-password-1").await;
    cli(&["set", &key("account", "mia"), &mia]);
    cli(&["set", &key("account", "rnia"), &rnia]);

    let app = spawn_clustered(url, prefix, "upgraded").await;
    app.wait_ready(200, Duration::from_secs(10)).await;
    // The account is removed from its old key last, once all is moved.
    eventually("Bob1's account moves", || cli(&["exists", &key("account", "bob1")]).trim() == "0").await;
    assert_eq!(cli(&["get", &key("account", "bobl")]).trim(), bob, "moved verbatim");
    assert_eq!(cli(&["exists", &key("avatar", "bob1")]).trim(), "0");
    for name in ["Bob1", "bob1", "BOBL"] {
        let (status, body) = log_in(&app, name, "bob-password-1").await;
        assert_eq!((status, &body["username"]), (200, &json!("Bob1")), "{name}: {body}");
    }
    let (status, _) = log_in(&app, "Bob1", "wrong-password-1").await;
    assert_eq!(status, 401);
    let avatar = reqwest::get(app.url("/api/users/Bob1/avatar")).await.unwrap();
    assert_eq!(avatar.status(), 200);
    assert_eq!(avatar.bytes().await.unwrap(), "old-picture");

    // The conflict: rnia keeps the key, Mia stays at her legacy key; each
    // logs in with her own password.
    assert_eq!(cli(&["get", &key("account", "mia")]).trim(), mia);
    assert_eq!(cli(&["get", &key("account", "rnia")]).trim(), rnia);
    let (status, body) = log_in(&app, "Mia", "mia-password-1").await;
    assert_eq!((status, &body["username"]), (200, &json!("Mia")), "{body}");
    let (status, body) = log_in(&app, "rnia", "rnia-password-1").await;
    assert_eq!((status, &body["username"]), (200, &json!("rnia")), "{body}");
    let (status, _) = log_in(&app, "Mia", "rnia-password-1").await;
    assert_eq!(status, 401, "Mia's login checks Mia's password");

    // Guests and new accounts cannot take look-alikes of either.
    for name in ["b0b1", "BOBL", "Bob1", "b\u{43E}b1", "rnia", "MIA"] {
        let (_, reply) = add_user(&app, name).await;
        assert_error(&reply, "name_registered");
        let (status, body) =
            app.post_json("/api/register", json!({ "username": name, "password": "password1234" })).await;
        assert_eq!(status, 409, "{name}: {body}");
    }
    app.stop().await.unwrap();
}

#[tokio::test]
async fn accounts_stored_under_lowercase_keys_keep_working_on_redis() {
    let redis = RedisServer::start();
    legacy_accounts_keep_working(&redis.url(), "names-legacy", |args| redis.cli(args)).await;
}

#[tokio::test]
async fn accounts_stored_under_lowercase_keys_keep_working_on_a_redis_cluster() {
    let cluster = RedisCluster::start();
    let port = cluster.nodes[0].port;
    legacy_accounts_keep_working(&cluster.url(), "names-legacy", |args| {
        let mut with_redirects = vec!["-c"];
        with_redirects.extend_from_slice(args);
        redis_cli(port, &with_redirects)
    })
    .await;
}

#[tokio::test]
async fn every_start_moves_accounts_written_since_the_last() {
    let redis = RedisServer::start();
    let prefix = "names-restart";
    let account = |name: &str| format!("{prefix}:account:{name}");
    redis.cli(&["set", &account("mo"), &legacy_record("Mo", "mo-password-1").await]);
    let first = spawn_clustered(&redis.url(), prefix, "first").await;
    first.wait_ready(200, Duration::from_secs(10)).await;
    eventually("the first start moves Mo", || redis.cli(&["exists", &account("rno")]).trim() == "1").await;
    first.stop().await.unwrap();

    // Written by an instance of the old version during a rolling upgrade.
    redis.cli(&["set", &account("max"), &legacy_record("Max", "max-password-1").await]);
    let second = spawn_clustered(&redis.url(), prefix, "second").await;
    second.wait_ready(200, Duration::from_secs(10)).await;
    eventually("the second start moves Max", || redis.cli(&["exists", &account("rnax")]).trim() == "1").await;
    for (name, password, registered) in [("mo", "mo-password-1", "Mo"), ("MAX", "max-password-1", "Max")] {
        let (status, body) = log_in(&second, name, password).await;
        assert_eq!((status, &body["username"]), (200, &json!(registered)), "{body}");
    }
    let (_, reply) = add_user(&second, "rnax").await;
    assert_error(&reply, "name_registered");
    assert_eq!(redis.cli(&["exists", &account("max"), &account("mo")]).trim(), "0");
    second.stop().await.unwrap();
}

#[tokio::test]
async fn the_user_list_is_sorted_as_names_are_shown() {
    let app = spawn_app().await;
    let mut clients = Vec::new();
    for name in ["sam", "Mallory", "quinn", "bob1", "Bob"] {
        clients.push(app.member(name, "lobby").await);
    }
    let users = clients[0].request_empty("users").await;
    let names: Vec<&str> =
        users["users"].as_array().unwrap().iter().map(|u| u["username"].as_str().unwrap()).collect();
    assert_eq!(names, ["Bob", "bob1", "Mallory", "quinn", "sam"]);
    let rooms = clients[0].request_empty("rooms").await;
    assert_eq!(rooms["rooms"][0]["members"], json!(["Bob", "bob1", "Mallory", "quinn", "sam"]), "{rooms}");
}
