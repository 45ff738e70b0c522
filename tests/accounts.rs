//! Accounts over HTTP, tokens at the socket handshake, and avatars.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod common;

use std::time::Duration;

use chatwire::auth::{Identity, IdentityKind, Tokens};
use chatwire::domain::Username;
use common::{Client, TEST_SECRET, assert_error, png, spawn_app, spawn_app_with};
use serde_json::json;

#[tokio::test]
async fn register_then_log_in_gives_a_token() {
    let app = spawn_app().await;
    let (status, body) =
        app.post_json("/api/register", json!({ "username": " Alice ", "password": "password1234" })).await;
    assert_eq!((status, body), (201, json!({ "username": "Alice" })));
    let (status, body) =
        app.post_json("/api/login", json!({ "username": "alice", "password": "password1234" })).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["username"], "Alice", "the registered spelling");
    assert_eq!(body["token"].as_str().unwrap().split('.').count(), 3);
    assert_eq!(body["expiresIn"], 86400);
}

#[tokio::test]
async fn a_name_registers_once_whatever_its_case() {
    let app = spawn_app().await;
    app.account("bob").await;
    let (status, body) =
        app.post_json("/api/register", json!({ "username": "BOB", "password": "another-password" })).await;
    assert_eq!(status, 409);
    assert_eq!(body["error"]["code"], "name_registered");
}

#[tokio::test]
async fn registration_input_is_checked_with_reasons() {
    let app = spawn_app().await;
    let cases = [
        (json!({ "username": "carol", "password": "short" }), "invalid_password"),
        (json!({ "username": "", "password": "password1234" }), "invalid_username"),
        (json!({ "username": "x".repeat(33), "password": "password1234" }), "invalid_username"),
        (json!({ "username": "carol" }), "invalid_payload"),
        (json!({ "username": 5, "password": "password1234" }), "invalid_payload"),
        (json!(["carol", "password1234"]), "invalid_payload"),
    ];
    for (body, code) in cases {
        let (status, reply) = app.post_json("/api/register", body.clone()).await;
        assert_eq!(status, 400, "{body} → {reply}");
        assert_eq!(reply["error"]["code"], code, "{body} → {reply}");
        assert!(!reply["error"]["message"].as_str().unwrap().is_empty());
    }
    let malformed =
        reqwest::Client::new().post(app.url("/api/register")).body("{ not json").send().await.unwrap();
    assert_eq!(malformed.status(), 400);
    let body: serde_json::Value = malformed.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_json");
}

#[tokio::test]
async fn wrong_passwords_and_unknown_names_look_the_same() {
    let app = spawn_app().await;
    app.account("dave").await;
    for body in [
        json!({ "username": "dave", "password": "wrong-password" }),
        json!({ "username": "nobody", "password": "password1234" }),
    ] {
        let (status, reply) = app.post_json("/api/login", body).await;
        assert_eq!(status, 401);
        assert_eq!(reply["error"]["code"], "bad_credentials");
    }
}

#[tokio::test]
async fn failed_logins_lock_a_name_for_a_while() {
    let app = spawn_app().await;
    app.account("erin").await;
    for _ in 0..10 {
        let (status, _) =
            app.post_json("/api/login", json!({ "username": "erin", "password": "guess-guess" })).await;
        assert_eq!(status, 401);
    }
    let response = reqwest::Client::new()
        .post(app.url("/api/login"))
        .json(&json!({ "username": "erin", "password": "password1234" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429, "even the right password waits out the lock");
    assert!(response.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn one_address_cannot_hammer_the_login() {
    let app = spawn_app().await;
    let mut limited = false;
    for i in 0..35 {
        let (status, _) = app
            .post_json("/api/login", json!({ "username": format!("user{i}"), "password": "password1234" }))
            .await;
        if status == 429 {
            assert!(i >= 30, "limited after only {i} attempts");
            limited = true;
            break;
        }
    }
    assert!(limited, "31 attempts in a minute from one address are refused");
}

#[tokio::test]
async fn a_token_logs_a_socket_in_at_connect() {
    let app = spawn_app().await;
    let watcher = app.user("watcher").await;
    let token = app.account("frank").await;
    let frank = Client::connect_with_auth(app.addr, Some(json!({ "token": token }))).await.unwrap();
    assert_eq!(frank.next("login").await, json!({ "numUsers": 2 }));
    assert_eq!(watcher.next("user joined").await, json!({ "username": "frank", "numUsers": 2 }));
    // Logged in before its first event: it can chat at once.
    assert_eq!(frank.request("join", json!({ "room": "general" })).await["ok"], true);
    assert_error(&frank.request("add user", json!("frank2")).await, "already_logged_in");
    // A second tab with the same account shares the name.
    let tab = app.with_token(&token).await;
    assert_eq!(tab.request_empty("users").await["numUsers"], 2);
}

#[tokio::test]
async fn bad_and_expired_tokens_are_refused_at_connect() {
    let app = spawn_app().await;
    app.account("gina").await;
    let expired = Tokens::new(TEST_SECRET.as_bytes(), Duration::ZERO).issue(
        &Identity { user: Username::parse("gina").unwrap(), kind: IdentityKind::Account("x".into()) },
        0,
    );
    let forged = Tokens::new(b"some other deployment's secret!!", Duration::from_secs(60)).issue(
        &Identity { user: Username::parse("gina").unwrap(), kind: IdentityKind::Account("x".into()) },
        0,
    );
    for token in [json!("garbage"), json!(expired), json!(forged), json!(42)] {
        let refused = Client::connect_with_auth(app.addr, Some(json!({ "token": token }))).await;
        let error = refused.err().unwrap_or_else(|| panic!("token {token} was accepted"));
        let code = if token == json!(42) { "invalid_payload" } else { "bad_token" };
        assert_eq!(error.0["message"], code, "{token}");
    }
    // A token for an account that does not exist (signed with the right secret) is refused too.
    let ghost = Tokens::new(TEST_SECRET.as_bytes(), Duration::from_secs(60)).issue(
        &Identity { user: Username::parse("ghost").unwrap(), kind: IdentityKind::Account("x".into()) },
        0,
    );
    assert!(Client::connect_with_auth(app.addr, Some(json!({ "token": ghost }))).await.is_err());
}

#[tokio::test]
async fn guests_cannot_take_registered_names_nor_names_take_guests() {
    let app = spawn_app().await;
    app.account("hank").await;
    let guest = app.client().await;
    assert_error(&guest.request("add user", json!("HANK")).await, "name_registered");
    let _ivy = app.user("ivy").await;
    let (status, body) =
        app.post_json("/api/register", json!({ "username": "ivy", "password": "password1234" })).await;
    assert_eq!(status, 409);
    assert_eq!(body["error"]["code"], "name_in_use");
}

#[tokio::test]
async fn guests_can_be_disabled() {
    let app = spawn_app_with(|c| c.allow_guests = false).await;
    let refused =
        Client::connect_with_auth(app.addr, None).await.err().expect("a guest connection is refused");
    assert_eq!(refused.0, json!({ "message": "guests_disabled" }));
    let token = app.account("jack").await;
    let jack = app.with_token(&token).await;
    assert_eq!(jack.request_empty("users").await["numUsers"], 1);
}

#[tokio::test]
async fn a_guest_token_reclaims_the_name_and_opens_the_api() {
    let app = spawn_app().await;
    let guest = app.client().await;
    let login = guest.request("add user", json!("kim")).await;
    let token = login["token"].as_str().unwrap().to_owned();
    guest.close().await;
    app.wait_online(0).await;
    let again = app.with_token(&token).await;
    assert_eq!(again.request_empty("users").await["users"], json!([{ "username": "kim" }]));
}

#[tokio::test]
async fn accounts_set_avatars_that_anyone_can_see() {
    let app = spawn_app().await;
    let token = app.account("lena").await;
    let http = reqwest::Client::new();
    let put = |body: Vec<u8>, token: Option<String>| {
        let mut request = http.put(app.url("/api/me/avatar")).body(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    let image = png(20_000);
    assert_eq!(put(image.clone(), Some(token.clone())).await.unwrap().status(), 204);
    let got = reqwest::get(app.url("/api/users/LENA/avatar")).await.unwrap();
    assert_eq!(got.status(), 200);
    assert_eq!(got.headers()["content-type"], "image/png");
    let etag = got.headers()["etag"].to_str().unwrap().to_owned();
    assert_eq!(got.bytes().await.unwrap().to_vec(), image);
    let cached =
        http.get(app.url("/api/users/lena/avatar")).header("if-none-match", etag).send().await.unwrap();
    assert_eq!(cached.status(), 304);

    assert_eq!(put(b"%PDF-1.7 not an image".to_vec(), Some(token.clone())).await.unwrap().status(), 415);
    assert_eq!(put(png(1024 * 1024 + 1), Some(token.clone())).await.unwrap().status(), 413);
    assert_eq!(put(png(100), None).await.unwrap().status(), 401);
    assert_eq!(put(png(100), Some("nonsense".into())).await.unwrap().status(), 401);
    let guest = app.client().await;
    let guest_token = guest.request("add user", json!("mo")).await["token"].as_str().unwrap().to_owned();
    assert_eq!(put(png(100), Some(guest_token)).await.unwrap().status(), 403, "guests have no avatars");
    assert_eq!(reqwest::get(app.url("/api/users/nobody/avatar")).await.unwrap().status(), 404);
}

#[tokio::test]
async fn a_new_avatar_is_announced_to_everyone_online() {
    let app = spawn_app().await;
    let token = app.account("lena").await;
    let bob = app.user("bob").await;
    let stranger = app.client().await;
    let put = |body: Vec<u8>| {
        reqwest::Client::new().put(app.url("/api/me/avatar")).bearer_auth(&token).body(body).send()
    };

    assert_eq!(put(png(100)).await.unwrap().status(), 204);
    assert_eq!(bob.next("avatar changed").await, json!({ "username": "lena" }));
    stranger.expect_none("avatar changed", Duration::from_millis(300)).await;

    assert_eq!(put(b"not a picture".to_vec()).await.unwrap().status(), 415);
    bob.expect_none("avatar changed", Duration::from_millis(300)).await;

    // Uploads in quick succession are announced together, once.
    for _ in 0..5 {
        assert_eq!(put(png(100)).await.unwrap().status(), 204);
    }
    assert_eq!(bob.next("avatar changed").await, json!({ "username": "lena" }));
    bob.expect_none("avatar changed", Duration::from_millis(1500)).await;
}
