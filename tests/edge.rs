//! The request edge against the real server over TCP: clients behind
//! proxies get their own limits and cannot forge them, slow or silent
//! connections are closed, sockets that never log in are dropped, the
//! per-address cap, redirects and origins under PUBLIC_URL, and the
//! separate monitoring listener.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::redis::free_port;
use common::{TestApp, spawn_app_with};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message as Frame;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long any single wait may take before the test fails.
const WAIT: Duration = Duration::from_secs(5);

/// `POST /api/login` for a name nobody registered, as forwarded by a proxy
/// with `x_forwarded_for`; the status (401 wrong credentials, 429 limited).
async fn forwarded_login(app: &TestApp, name: &str, x_forwarded_for: &str) -> u16 {
    reqwest::Client::new()
        .post(app.url("/api/login"))
        .header("x-forwarded-for", x_forwarded_for)
        .json(&json!({ "username": name, "password": "password1234" }))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn clients_behind_a_trusted_proxy_get_their_own_login_limit() {
    // `true`: the peer is one proxy; a list: these are the proxies. The
    // test client is the proxy either way: it connects from 127.0.0.1.
    for trust in ["true", "127.0.0.1"] {
        let app = spawn_app_with(|c| c.trust_proxy = vec![trust.into()]).await;
        // A distinct name each time: failed logins per name have a limit of their own.
        for i in 0..31 {
            let status = forwarded_login(&app, &format!("crowd{i}"), &format!("203.0.113.{}", i + 1)).await;
            assert_eq!(status, 401, "TRUST_PROXY={trust}: client {i} has its own counter");
        }

        let attacker = "198.51.100.66";
        for i in 0..30 {
            // Whatever the client prepends, the proxy's own entry is last.
            let forged = format!("10.{i}.0.1, 192.0.2.{i}, {attacker}");
            let status = forwarded_login(&app, &format!("guess{i}"), &forged).await;
            assert_eq!(status, 401, "TRUST_PROXY={trust}: attempt {i}");
        }
        let status = forwarded_login(&app, "guess30", &format!("1.2.3.4, {attacker}")).await;
        assert_eq!(status, 429, "TRUST_PROXY={trust}: the 31st attempt");
        let status = forwarded_login(&app, "guess31", attacker).await;
        assert_eq!(status, 429, "TRUST_PROXY={trust}: still the same client");
        let status = forwarded_login(&app, "bystander", "203.0.113.200").await;
        assert_eq!(status, 401, "TRUST_PROXY={trust}: others are not affected");
    }
}

#[tokio::test]
async fn a_forwarded_clients_login_limit_is_shared_by_every_instance() {
    let redis = common::redis::RedisServer::start();
    let trust = |c: &mut chatwire::config::Config| c.trust_proxy = vec!["127.0.0.1".into()];
    let a = common::spawn_clustered_with(&redis.url(), "edge", "a", trust).await;
    let b = common::spawn_clustered_with(&redis.url(), "edge", "b", trust).await;
    for app in [&a, &b] {
        app.wait_ready(200, Duration::from_secs(10)).await;
    }
    let attacker = "198.51.100.66";
    for i in 0..30 {
        let app = if i % 2 == 0 { &a } else { &b };
        let forged = format!("10.{i}.0.1, {attacker}");
        assert_eq!(forwarded_login(app, &format!("guess{i}"), &forged).await, 401, "attempt {i}");
    }
    for app in [&a, &b] {
        assert_eq!(forwarded_login(app, "guess30", attacker).await, 429, "the 31st, on either instance");
        assert_eq!(forwarded_login(app, "bystander", "203.0.113.200").await, 401, "others are not affected");
    }
}

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

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Opens a socket.io connection from local address `from`: `Ok` once the
/// namespace accepted it, `Err` with the `connect_error` payload.
async fn connect_from(app: &TestApp, from: &str) -> Result<Socket, String> {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(from.parse().unwrap(), 0)).unwrap();
    let tcp = socket.connect(app.addr).await.unwrap();
    let url = format!("ws://{}/socket.io/?EIO=4&transport=websocket", app.addr);
    let (mut ws, _) = tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(tcp)).await.unwrap();
    let open = next_text(&mut ws).await;
    assert!(open.starts_with('0'), "engine.io open packet, got {open}");
    ws.send(Frame::text("40")).await.unwrap();
    let reply = next_text(&mut ws).await;
    match reply.get(..2) {
        Some("40") => Ok(ws),
        Some("44") => Err(reply),
        _ => panic!("expected a connect or connect_error packet, got {reply}"),
    }
}

async fn next_text(ws: &mut Socket) -> String {
    loop {
        let frame = tokio::time::timeout(WAIT, ws.next()).await.unwrap().unwrap().unwrap();
        match frame {
            Frame::Text(text) if text.as_str() == "2" => ws.send(Frame::text("3")).await.unwrap(),
            Frame::Text(text) => return text.as_str().to_owned(),
            _ => {}
        }
    }
}

#[tokio::test]
async fn the_connection_cap_refuses_one_address_but_not_another() {
    let app = spawn_app_with(|c| c.max_connections_per_address = 3).await;
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(connect_from(&app, "127.0.0.1").await.expect("within the cap"));
    }
    let refused = connect_from(&app, "127.0.0.1").await.expect_err("the fourth socket is refused");
    assert_eq!(refused, r#"44{"message":"too_many_connections"}"#);
    for _ in 0..3 {
        open.push(connect_from(&app, "127.0.0.2").await.expect("another address has its own cap"));
    }
}

/// A client that does not follow redirects.
fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

#[tokio::test]
async fn with_public_url_redirects_go_there_whatever_the_host() {
    let app = spawn_app_with(|c| {
        c.force_https = true;
        c.public_url = Some("https://chat.example.com".into());
    })
    .await;
    let http = no_redirects();
    let get = |host: &'static str| http.get(app.url("/rooms?x=1")).header("host", host).send();
    let hostile = get("evil.example").await.unwrap();
    assert_eq!(hostile.status(), 400, "a foreign Host is not redirected anywhere");
    assert!(hostile.headers().get("location").is_none());
    let public = get("chat.example.com").await.unwrap();
    assert_eq!(public.status(), 308);
    assert_eq!(public.headers()["location"], "https://chat.example.com/rooms?x=1");
    let with_port = get("CHAT.example.com:80").await.unwrap();
    assert_eq!(with_port.headers()["location"], "https://chat.example.com/rooms?x=1");
}

#[tokio::test]
async fn without_public_url_an_invalid_host_is_not_redirected() {
    let app = spawn_app_with(|c| c.force_https = true).await;
    let http = no_redirects();
    for host in ["bad host", "evil.example:99999", "a..b"] {
        let response = http.get(app.url("/")).header("host", host).send().await.unwrap();
        assert_eq!(response.status(), 400, "{host}");
    }
    let fine = http.get(app.url("/x")).header("host", "chat.example.com:8443").send().await.unwrap();
    assert_eq!(fine.headers()["location"], "https://chat.example.com:8443/x", "as before");
}

#[tokio::test]
async fn a_rebinding_origin_is_refused_once_the_public_origin_is_known() {
    // A DNS-rebinding page: its own name, resolved to this server, in both
    // Origin and Host.
    let rebound = "rebound.example:3000";
    let open = spawn_app_with(|_| {}).await;
    assert_eq!(
        open.handshake_status(&[("host", rebound), ("origin", &format!("http://{rebound}"))]).await,
        101,
        "nothing configured: Host is all the server knows of itself"
    );

    let public = spawn_app_with(|c| c.public_url = Some("https://chat.example.com".into())).await;
    assert_eq!(
        public.handshake_status(&[("host", rebound), ("origin", &format!("http://{rebound}"))]).await,
        403
    );
    assert_eq!(
        public
            .handshake_status(&[("host", "chat.example.com"), ("origin", "https://chat.example.com")])
            .await,
        101
    );

    let listed = spawn_app_with(|c| c.allowed_origins = vec!["https://app.example.com".into()]).await;
    assert_eq!(
        listed.handshake_status(&[("host", rebound), ("origin", &format!("http://{rebound}"))]).await,
        403
    );
    assert_eq!(
        listed.handshake_status(&[("host", rebound), ("origin", "https://app.example.com")]).await,
        101
    );
}

#[tokio::test]
async fn metrics_addr_moves_metrics_and_readiness_off_the_app_port() {
    let port = free_port(false);
    let app = spawn_app_with(|c| c.metrics_addr = Some(SocketAddr::from(([127, 0, 0, 1], port)))).await;
    let _alice = app.user("alice").await;
    let internal = |path: &str| reqwest::get(format!("http://127.0.0.1:{port}{path}"));

    let metrics = internal("/metrics").await.unwrap();
    assert_eq!(metrics.status(), 200);
    assert!(metrics.text().await.unwrap().contains("chatwire_sockets"));
    assert_eq!(internal("/readyz").await.unwrap().status(), 200);
    assert_eq!(internal("/").await.unwrap().status(), 404, "nothing else is served there");
    assert_eq!(internal("/api/config").await.unwrap().status(), 404);

    for path in ["/metrics", "/readyz"] {
        assert_eq!(reqwest::get(app.url(path)).await.unwrap().status(), 404, "{path} on the app port");
    }
    assert_eq!(reqwest::get(app.url("/healthz")).await.unwrap().status(), 200, "load balancers probe it");
    assert_eq!(reqwest::get(app.url("/")).await.unwrap().status(), 200);
}

#[tokio::test]
async fn a_socket_from_a_forwarded_client_counts_against_that_client() {
    // Through the proxy at 127.0.0.1, two clients with a cap of one each.
    let app = spawn_app_with(|c| {
        c.trust_proxy = vec!["127.0.0.1".into()];
        c.max_connections_per_address = 1;
    })
    .await;
    let forwarded = |client: &str| {
        let url = format!("ws://{}/socket.io/?EIO=4&transport=websocket", app.addr);
        let mut request = url.into_client_request().unwrap();
        request.headers_mut().insert("x-forwarded-for", client.parse().unwrap());
        request
    };
    let connect = |client: &'static str| {
        let request = forwarded(client);
        async move {
            let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
            assert!(next_text(&mut ws).await.starts_with('0'));
            ws.send(Frame::text("40")).await.unwrap();
            let reply = next_text(&mut ws).await;
            (reply.starts_with("40"), ws)
        }
    };
    let (accepted, _first) = connect("2001:db8:1:2::1").await;
    assert!(accepted);
    let (accepted, _) = connect("1.2.3.4, 2001:db8:1:2::ffff").await;
    assert!(!accepted, "the same /64, whatever it prepends");
    let (accepted, _other) = connect("2001:db8:1:3::1").await;
    assert!(accepted, "another /64");
}
