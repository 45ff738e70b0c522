//! Shared test helpers: start an app in-process on a free port, and talk to it.
#![allow(dead_code, unused_imports, unused_macros, reason = "each test binary uses a different subset")]

pub mod client;
pub mod process;
pub mod redis;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Once;

use clap::Parser;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use chatwire::app::Application;
use chatwire::config::{Config, Transport};
pub use client::{Client, bytes_of, placeholder};

/// A running app; stops when [`TestApp::stop`] is called or the test ends.
pub struct TestApp {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    handle: JoinHandle<std::io::Result<()>>,
}

/// Logs go to the test output only when TEST_LOG is set.
fn init_logs() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            chatwire::telemetry::init(chatwire::config::LogFormat::Text);
        }
    });
}

/// The token secret of every test deployment.
pub const TEST_SECRET: &str = "chatwire-test-secret-0123456789abcdef";

/// The settings tests start from: loopback, free port, memory mode.
pub fn test_config() -> Config {
    let mut config = Config::parse_from(["chatwire", "--host", "127.0.0.1", "--port", "0"]);
    config.redis_url = None;
    config.transports = vec![Transport::Websocket];
    config.public_dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/public"));
    config.instance_name = Some("test".into());
    config.secret = Some(TEST_SECRET.into());
    config.secret_file = None;
    // Every test client comes from 127.0.0.1, and some tests open over a
    // hundred sockets; tests of the cap set their own.
    config.max_connections_per_address = 0;
    config
}

/// Starts an app in cluster mode against `redis_url`, with fast heartbeats
/// and a key prefix of the test's own.
pub async fn spawn_clustered(redis_url: &str, prefix: &str, name: &str) -> TestApp {
    spawn_clustered_with(redis_url, prefix, name, |_| {}).await
}

/// [`spawn_clustered`], then lets the test adjust the settings.
pub async fn spawn_clustered_with(
    redis_url: &str,
    prefix: &str,
    name: &str,
    configure: impl FnOnce(&mut Config),
) -> TestApp {
    let (url, prefix, name) = (redis_url.to_owned(), prefix.to_owned(), name.to_owned());
    spawn_app_with(move |c| {
        c.redis_url = Some(url);
        c.redis_prefix = prefix;
        c.instance_name = Some(name);
        c.heartbeat_interval_ms = 200;
        c.instance_ttl_ms = 1_000;
        configure(c);
    })
    .await
}

/// Starts an app with default test settings.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Starts an app after letting the test adjust its settings.
pub async fn spawn_app_with(configure: impl FnOnce(&mut Config)) -> TestApp {
    init_logs();
    let mut config = test_config();
    configure(&mut config);
    let app = Application::build(config).await.expect("the app should start");
    let addr = app.local_addr();
    let (stop, stopped) = oneshot::channel::<()>();
    let handle = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    TestApp { addr, stop: Some(stop), handle }
}

impl TestApp {
    /// Waits until `/readyz` answers `status` (200 or 503).
    pub async fn wait_ready(&self, status: u16, within: std::time::Duration) {
        wait_ready_at(&format!("http://{}", self.addr), status, within).await;
    }

    /// Waits until `/metrics` counts `users` users online (a disconnect has
    /// been processed, say).
    pub async fn wait_online(&self, users: usize) {
        let wanted = format!("chatwire_users_online {users}\n");
        let deadline = tokio::time::Instant::now() + client::WAIT;
        loop {
            let metrics = reqwest::get(self.url("/metrics")).await.unwrap().text().await.unwrap();
            if metrics.contains(&wanted) {
                return;
            }
            assert!(tokio::time::Instant::now() < deadline, "never {users} online: {metrics}");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
    /// `http://addr/path`
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// A connected, not logged-in client.
    pub async fn client(&self) -> Client {
        Client::connect(self.addr).await
    }

    /// A client logged in as `name` (the test fails if the login is refused).
    pub async fn user(&self, name: &str) -> Client {
        let client = self.client().await;
        let reply = client.request("add user", json!(name)).await;
        assert_eq!(reply["ok"], true, "login as {name} refused: {reply}");
        client.next("login").await;
        client
    }

    /// A client logged in as `name` that joined `room`.
    pub async fn member(&self, name: &str, room: &str) -> Client {
        let client = self.user(name).await;
        let reply = client.request("join", json!({ "room": room })).await;
        assert_eq!(reply["ok"], true, "{name} could not join {room}: {reply}");
        client
    }

    /// Signals shutdown and waits for `run_until_stopped` to return.
    pub async fn stop(mut self) -> std::io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(std::time::Duration::from_secs(10), &mut self.handle)
            .await
            .expect("the app should stop within 10 s")
            .expect("the app task should not panic")
    }
}

/// Bytes that are a PNG as far as type detection goes, `len` long in all.
pub fn png(len: usize) -> Vec<u8> {
    let mut bytes =
        vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 0x0D, b'I', b'H', b'D', b'R'];
    bytes.extend((0..len.saturating_sub(bytes.len())).map(|i| (i * 7 % 251) as u8));
    bytes.truncate(len.max(16));
    bytes
}

impl TestApp {
    /// POSTs JSON to the API; returns the status and the JSON body.
    pub async fn post_json(&self, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        let response = reqwest::Client::new().post(self.url(path)).json(&body).send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// Registers `name` (password `password1234`) and returns a login token.
    pub async fn account(&self, name: &str) -> String {
        let (status, body) =
            self.post_json("/api/register", json!({ "username": name, "password": "password1234" })).await;
        assert_eq!(status, 201, "register {name}: {body}");
        let (status, body) =
            self.post_json("/api/login", json!({ "username": name, "password": "password1234" })).await;
        assert_eq!(status, 200, "login {name}: {body}");
        body["token"].as_str().unwrap().to_owned()
    }

    /// A client connected with `token`, logged in (its `login` event received).
    pub async fn with_token(&self, token: &str) -> Client {
        let client = Client::connect_with_auth(self.addr, Some(json!({ "token": token })))
            .await
            .expect("token accepted");
        client.next("login").await;
        client
    }
}

impl TestApp {
    /// The HTTP status of a socket.io websocket handshake sending these
    /// headers (`101` when it is accepted).
    pub async fn handshake_status(&self, headers: &[(&str, &str)]) -> u16 {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let url = format!("ws://{}/socket.io/?EIO=4&transport=websocket", self.addr);
        let mut request = url.into_client_request().unwrap();
        for (name, value) in headers {
            let name = tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(name.as_bytes()).unwrap();
            request.headers_mut().insert(name, value.parse().unwrap());
        }
        match tokio_tungstenite::connect_async(request).await {
            Ok((_, response)) => response.status().as_u16(),
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status().as_u16(),
            Err(err) => panic!("handshake failed: {err}"),
        }
    }
}

/// Asserts an error ack with `code`, and returns its message.
#[track_caller]
pub fn assert_error(reply: &Value, code: &str) -> String {
    assert_eq!(reply["ok"], false, "expected an error `{code}`, got {reply}");
    assert_eq!(reply["error"]["code"], code, "wrong error code in {reply}");
    let message = reply["error"]["message"].as_str().unwrap_or_default().to_owned();
    assert!(!message.is_empty(), "error without a message: {reply}");
    message
}

/// The status of `base/readyz`, or 0 when nothing answers.
pub async fn readyz(base: &str) -> u16 {
    reqwest::get(format!("{base}/readyz")).await.map_or(0, |response| response.status().as_u16())
}

/// Waits until `base/readyz` answers `status` (200: ready; 503: not),
/// failing after `within`. The one ready-wait of the Rust tests.
pub async fn wait_ready_at(base: &str, status: u16, within: std::time::Duration) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let got = readyz(base).await;
        if got == status {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{base}/readyz still {got}, wanted {status}, after {within:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// One test per scenario, run once against its own Redis (module
/// `single_redis`) and once against its own Redis Cluster
/// (`redis_cluster`). A scenario is an `async fn(url: &str, prefix: &str)`
/// of the calling file.
macro_rules! across_backends {
    ($($scenario:ident),+ $(,)?) => {
        mod single_redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    let redis = $crate::common::redis::RedisServer::start();
                    super::$scenario(&redis.url(), stringify!($scenario)).await
                }
            )+
        }

        mod redis_cluster {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    let cluster = $crate::common::redis::RedisCluster::start();
                    super::$scenario(&cluster.url(), stringify!($scenario)).await
                }
            )+
        }
    };
}
pub(crate) use across_backends;
