//! Identity, not names: private conversations and their files belong to
//! identities (an account's id, a guest's session), so whoever takes a name
//! later (a guest, or a new account) starts with nothing; and tokens have a
//! life cycle (logout, password change, account deletion, expiry) that
//! reaches live sockets on every instance.
//!
//! Every attack runs in the embedded mode and across two instances sharing
//! a real Redis (the second instance is where the attacker arrives).

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod common;

use std::time::Duration;

use chatwire::config::Config;
use common::redis::RedisServer;
use common::{Client, TestApp, assert_error, placeholder, png, spawn_app_with, spawn_clustered_with};
use serde_json::{Value, json};

/// One deployment: one instance, or two over a shared Redis.
struct Deployment {
    apps: Vec<TestApp>,
    _redis: Option<RedisServer>,
}

impl Deployment {
    /// The instance the victims use.
    fn home(&self) -> &TestApp {
        &self.apps[0]
    }

    /// The instance the attacker reaches (the other one, when there are two).
    fn other(&self) -> &TestApp {
        self.apps.last().unwrap()
    }
}

/// A file URL that needs a valid token before it can say "not found".
const NO_SUCH_FILE: &str = "/api/files/01ARZ3NDEKTSV4RRFFQ69G5FAV";

/// Sweeps tokens often, so revocations show within the tests' waits.
fn fast_sweeps(config: &mut Config) {
    config.session_check_ms = 200;
}

async fn embedded() -> Deployment {
    Deployment { apps: vec![spawn_app_with(fast_sweeps).await], _redis: None }
}

async fn on_redis() -> Deployment {
    let redis = RedisServer::start();
    let mut apps = Vec::new();
    for name in ["a", "b"] {
        let app = spawn_clustered_with(&redis.url(), "identity", name, fast_sweeps).await;
        app.wait_ready(200, Duration::from_secs(10)).await;
        apps.push(app);
    }
    Deployment { apps, _redis: Some(redis) }
}

/// Logs a guest in; returns the client and its token.
async fn guest(app: &TestApp, name: &str) -> (Client, String) {
    let client = app.client().await;
    let reply = client.request("add user", json!(name)).await;
    assert_eq!(reply["ok"], true, "login as {name} refused: {reply}");
    client.next("login").await;
    (client, reply["token"].as_str().unwrap().to_owned())
}

/// Logs a guest in as soon as the name is free again (a departed holder's
/// logout is processed asynchronously); returns the client and its token.
async fn guest_once_free(app: &TestApp, name: &str) -> (Client, String) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let client = app.client().await;
        let reply = client.request("add user", json!(name)).await;
        if reply["ok"] == true {
            client.next("login").await;
            return (client, reply["token"].as_str().unwrap().to_owned());
        }
        assert_error(&reply, "name_taken");
        assert!(tokio::time::Instant::now() < deadline, "{name} never became free");
        client.close().await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `alice` sends `to` a private text and a private file; returns the file's URL.
async fn secrets(alice: &Client, to: &str) -> String {
    let reply = alice.request("message", json!({ "to": to, "text": "the secret" })).await;
    assert_eq!(reply["ok"], true, "{reply}");
    let arg =
        json!({ "to": to, "file": { "name": "secret.png", "type": "image/png", "data": placeholder(0) } });
    let reply = alice.request_binary("message", arg, &[&png(2_000)]).await;
    assert_eq!(reply["ok"], true, "{reply}");
    reply["message"]["file"]["url"].as_str().unwrap().to_owned()
}

/// The texts of a private history page.
async fn private_history(client: &Client, with: &str) -> Vec<String> {
    let reply = client.request("history", json!({ "with": with })).await;
    assert_eq!(reply["ok"], true, "{reply}");
    reply["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["text"].as_str().map(str::to_owned))
        .collect()
}

/// `GET path` with a bearer token; the status.
async fn get_status(app: &TestApp, path: &str, token: &str) -> u16 {
    let response = reqwest::Client::new().get(app.url(path)).bearer_auth(token).send().await.unwrap();
    response.status().as_u16()
}

/// A request with a bearer token and an optional JSON body; status and body.
async fn call(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = reqwest::Client::new().request(method, app.url(path)).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// `DELETE /api/me` { password } with a bearer token; status and body.
async fn delete_me(app: &TestApp, token: &str, password: &str) -> (u16, Value) {
    call(app, reqwest::Method::DELETE, "/api/me", token, Some(json!({ "password": password }))).await
}

/// Waits until the server disconnects `client`, having said `session_ended`.
/// `token` is refused as revoked by `app` (another instance than the one
/// that revoked it).
async fn assert_revoked_on(app: &TestApp, token: &str) {
    let (status, body) = call(app, reqwest::Method::GET, NO_SUCH_FILE, token, None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("token_revoked")),
        "refused on every instance"
    );
}

async fn assert_session_ended(client: &Client) {
    let said = client.next("chat error").await;
    assert_eq!(said["code"], "session_ended", "{said}");
    assert!(client.wait_closed().await, "the socket should be disconnected");
}

async fn a_guest_taking_a_departed_guests_name_starts_with_nothing(d: Deployment) {
    let (alice, _) = guest(d.home(), "alice").await;
    let (bob, bob_token) = guest(d.home(), "bob").await;
    let url = secrets(&alice, "bob").await;
    assert_eq!(private_history(&bob, "alice").await, ["the secret"], "bob reads his own conversation");
    assert_eq!(get_status(d.home(), &url, &bob_token).await, 200);
    bob.close().await;

    let (mallory, mallory_token) = guest_once_free(d.other(), "Bob").await;
    assert!(private_history(&mallory, "alice").await.is_empty(), "the name's next holder reads nothing");
    assert!(private_history(&alice, "bob").await.is_empty(), "alice's conversation with the new Bob is new");
    assert_eq!(get_status(d.other(), &url, &mallory_token).await, 403, "nor fetches the file");
}

async fn an_account_registered_under_a_departed_guests_name_starts_with_nothing(d: Deployment) {
    let (alice, _) = guest(d.home(), "alice").await;
    let (bob, _) = guest(d.home(), "bob").await;
    let url = secrets(&alice, "bob").await;
    bob.close().await;

    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let token = loop {
        let (status, body) = d
            .other()
            .post_json("/api/register", json!({ "username": "bob", "password": "password1234" }))
            .await;
        if status == 201 {
            break d
                .other()
                .post_json("/api/login", json!({ "username": "bob", "password": "password1234" }))
                .await
                .1["token"]
                .as_str()
                .unwrap()
                .to_owned();
        }
        assert_eq!(status, 409, "{body}");
        assert!(tokio::time::Instant::now() < deadline, "bob's name never became free");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let account = d.other().with_token(&token).await;
    assert!(private_history(&account, "alice").await.is_empty());
    assert_eq!(get_status(d.other(), &url, &token).await, 403);
}

async fn a_departed_guests_old_token_never_reads_the_next_holders_messages(d: Deployment) {
    let (alice, _) = guest(d.home(), "alice").await;
    let (bob, old_token) = guest(d.home(), "bob").await;
    alice.request("message", json!({ "to": "bob", "text": "for the first bob" })).await;
    bob.close().await;

    let (next_bob, _) = guest_once_free(d.other(), "bob").await;
    let url = secrets(&alice, "bob").await;
    assert_eq!(private_history(&next_bob, "alice").await, ["the secret"]);
    next_bob.close().await;

    // The old token takes the free name back: it is the first bob again,
    // and sees the first bob's conversation only.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let returning = loop {
        match Client::connect_with_auth(d.other().addr, Some(json!({ "token": old_token }))).await {
            Ok(client) => {
                let event = tokio::time::timeout(Duration::from_secs(5), async {
                    tokio::select! {
                        _ = client.next("login") => true,
                        _ = client.next("chat error") => false,
                    }
                })
                .await
                .unwrap();
                if event {
                    break client;
                }
            }
            Err(err) => panic!("the old token should still be accepted while the name is free: {err:?}"),
        }
        assert!(tokio::time::Instant::now() < deadline, "the name never became free");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(private_history(&returning, "alice").await, ["for the first bob"]);
    assert_eq!(get_status(d.other(), &url, &old_token).await, 403);
}

async fn a_deleted_accounts_name_registered_again_inherits_nothing(d: Deployment) {
    let alice_token = d.home().account("alice").await;
    let alice = d.home().with_token(&alice_token).await;
    let (bob, _) = guest(d.home(), "bob").await;
    let reply = bob.request("message", json!({ "to": "alice", "text": "for alice" })).await;
    assert_eq!(reply["ok"], true, "{reply}");
    assert_eq!(private_history(&alice, "bob").await, ["for alice"]);

    let (status, body) = delete_me(d.home(), &alice_token, "wrong password").await;
    assert_eq!(status, 401, "deleting needs the password: {body}");
    let (status, body) = delete_me(d.home(), &alice_token, "password1234").await;
    assert_eq!(status, 204, "{body}");
    assert_session_ended(&alice).await;
    assert_eq!(get_status(d.other(), NO_SUCH_FILE, &alice_token).await, 401);

    let new_token = d.other().account("alice").await;
    let new_alice = d.other().with_token(&new_token).await;
    assert!(private_history(&new_alice, "bob").await.is_empty(), "the new alice is someone else");
    let refused = Client::connect_with_auth(d.other().addr, Some(json!({ "token": alice_token }))).await;
    assert!(refused.is_err(), "the deleted account's token opens nothing");
}

async fn logout_revokes_the_token_and_ends_its_sockets_everywhere(d: Deployment) {
    let token = d.home().account("alice").await;
    let on_home = d.home().with_token(&token).await;
    let on_other = d.other().with_token(&token).await;
    let second_token =
        d.home().post_json("/api/login", json!({ "username": "alice", "password": "password1234" })).await.1
            ["token"]
            .as_str()
            .unwrap()
            .to_owned();
    let other_device = d.other().with_token(&second_token).await;

    let (status, _) = call(d.home(), reqwest::Method::POST, "/api/logout", &token, None).await;
    assert_eq!(status, 204);
    assert_session_ended(&on_home).await;
    assert_session_ended(&on_other).await;
    assert_revoked_on(d.other(), &token).await;
    assert!(Client::connect_with_auth(d.other().addr, Some(json!({ "token": token }))).await.is_err());

    let reply = other_device.request("users", json!(null)).await;
    assert_eq!(reply["ok"], true, "a token not logged out keeps working: {reply}");
}

async fn a_password_change_revokes_every_token_of_the_account(d: Deployment) {
    let token = d.home().account("alice").await;
    let on_other = d.other().with_token(&token).await;
    let change = |current: &str| json!({ "currentPassword": current, "newPassword": "a new password 42" });

    let (status, _) =
        call(d.home(), reqwest::Method::POST, "/api/me/password", &token, Some(change("wrong password")))
            .await;
    assert_eq!(status, 401, "the current password is required");
    let (status, body) =
        call(d.home(), reqwest::Method::POST, "/api/me/password", &token, Some(change("password1234"))).await;
    assert_eq!(status, 200, "{body}");
    let fresh = body["token"].as_str().unwrap().to_owned();

    assert_session_ended(&on_other).await;
    assert_revoked_on(d.other(), &token).await;
    let (status, _) =
        d.other().post_json("/api/login", json!({ "username": "alice", "password": "password1234" })).await;
    assert_eq!(status, 401, "the old password no longer works");
    let (status, _) = d
        .other()
        .post_json("/api/login", json!({ "username": "alice", "password": "a new password 42" }))
        .await;
    assert_eq!(status, 200);
    let client = d.other().with_token(&fresh).await;
    assert_eq!(client.request("users", json!(null)).await["ok"], true, "the new token works");
}

async fn a_guest_logout_ends_the_guest_session(d: Deployment) {
    let (bob, token) = guest(d.other(), "bob").await;
    let (status, _) = call(d.home(), reqwest::Method::POST, "/api/logout", &token, None).await;
    assert_eq!(status, 204);
    assert_session_ended(&bob).await;
    assert!(Client::connect_with_auth(d.home().addr, Some(json!({ "token": token }))).await.is_err());
}

async fn a_guest_token_logged_out_after_its_guest_left_cannot_take_the_name_back(d: Deployment) {
    let (bob, token) = guest(d.home(), "bob").await;
    bob.close().await;
    // The web client disconnects, then revokes: by then the name may be free.
    let (status, body) = call(d.other(), reqwest::Method::POST, "/api/logout", &token, None).await;
    assert_eq!(status, 204, "{body}");
    let refused = Client::connect_with_auth(d.other().addr, Some(json!({ "token": token }))).await;
    assert!(refused.is_err(), "a revoked guest token takes nothing back");
}

async fn a_stolen_token_cannot_guess_the_password_faster_than_a_login(d: Deployment) {
    let token = d.home().account("alice").await;
    let guess =
        |i: usize| json!({ "currentPassword": format!("guess number {i}"), "newPassword": "mine now 1234" });
    let mut statuses = Vec::new();
    for i in 0..12 {
        let app = if i % 2 == 0 { d.home() } else { d.other() };
        statuses.push(call(app, reqwest::Method::POST, "/api/me/password", &token, Some(guess(i))).await.0);
    }
    assert_eq!(&statuses[..10], &[401; 10], "ten guesses are checked: {statuses:?}");
    assert_eq!(&statuses[10..], &[429; 2], "then the address is held back, on every instance: {statuses:?}");
    let (status, _) =
        call(d.other(), reqwest::Method::DELETE, "/api/me", &token, Some(json!({ "password": "guess 13" })))
            .await;
    assert_eq!(status, 429, "deleting is the same guess");
}

/// Generates one test per scenario and deployment.
macro_rules! in_both_modes {
    ($($scenario:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test]
                async fn $scenario() {
                    super::$scenario(super::embedded().await).await;
                }
            )*
        }
        mod across_instances {
            $(
                #[tokio::test]
                async fn $scenario() {
                    super::$scenario(super::on_redis().await).await;
                }
            )*
        }
    };
}

in_both_modes!(
    a_guest_taking_a_departed_guests_name_starts_with_nothing,
    an_account_registered_under_a_departed_guests_name_starts_with_nothing,
    a_departed_guests_old_token_never_reads_the_next_holders_messages,
    a_deleted_accounts_name_registered_again_inherits_nothing,
    logout_revokes_the_token_and_ends_its_sockets_everywhere,
    a_password_change_revokes_every_token_of_the_account,
    a_guest_logout_ends_the_guest_session,
    a_guest_token_logged_out_after_its_guest_left_cannot_take_the_name_back,
    a_stolen_token_cannot_guess_the_password_faster_than_a_login,
);

#[tokio::test]
async fn an_expired_token_disconnects_its_live_socket() {
    let app = spawn_app_with(|config| {
        fast_sweeps(config);
        config.token_ttl_secs = 2;
    })
    .await;
    let token = app.account("alice").await;
    let client = app.with_token(&token).await;
    assert_eq!(client.request("users", json!(null)).await["ok"], true);
    assert_session_ended(&client).await;
}
