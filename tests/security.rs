//! TLS and the request edge: https redirects and HSTS behind a trusted
//! proxy (and only a trusted one), direct TLS with certificate reload,
//! security headers, and the Origin / CORS rules.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod common;

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use common::redis::free_port;
use common::{TestApp, spawn_app, spawn_app_with};
use reqwest::redirect::Policy;

const PROXY: &str = "127.0.0.2";

/// A client that does not follow redirects, connecting from `from`.
fn http_from(from: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .local_address(from.parse::<IpAddr>().unwrap())
        .build()
        .unwrap()
}

async fn behind_proxy() -> TestApp {
    spawn_app_with(|c| {
        c.trust_proxy = vec![PROXY.into()];
        c.force_https = true;
    })
    .await
}

#[tokio::test]
async fn plain_http_is_redirected_and_https_gets_hsts() {
    let app = behind_proxy().await;
    let proxy = http_from(PROXY);
    let plain = proxy
        .get(app.url("/some/page?x=1&y=%20"))
        .header("host", "chat.example.com")
        .header("x-forwarded-proto", "http")
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), 308);
    assert_eq!(plain.headers()["location"], "https://chat.example.com/some/page?x=1&y=%20");
    assert!(plain.headers().get("strict-transport-security").is_none());

    let secure = proxy.get(app.url("/")).header("x-forwarded-proto", "https").send().await.unwrap();
    assert_eq!(secure.status(), 200);
    assert_eq!(secure.headers()["strict-transport-security"], "max-age=31536000; includeSubDomains");

    let probe = proxy.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(probe.status(), 200, "health checks answer over plain HTTP");
}

#[tokio::test]
async fn an_untrusted_peer_cannot_claim_https() {
    let app = behind_proxy().await;
    let stranger = http_from("127.0.0.1");
    let faked = stranger
        .get(app.url("/"))
        .header("host", "chat.example.com")
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap();
    assert_eq!(faked.status(), 308, "X-Forwarded-Proto from an untrusted peer is ignored");
    assert!(faked.headers().get("strict-transport-security").is_none());
}

#[tokio::test]
async fn websocket_upgrades_over_plain_http_are_refused() {
    let app = behind_proxy().await;
    let url = format!("ws://{}/socket.io/?EIO=4&transport=websocket", app.addr);
    let refused = tokio_tungstenite::connect_async(url.as_str()).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => assert_eq!(response.status(), 403),
        other => panic!("expected a 403, got {other:?}"),
    }
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let app = spawn_app().await;
    let http = reqwest::Client::new();
    for path in ["/", "/healthz", "/api/files/x", "/socket.io/socket.io.js"] {
        let response = http.get(app.url(path)).send().await.unwrap();
        let headers = response.headers();
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(headers["referrer-policy"], "no-referrer", "{path}");
        assert!(headers.get("strict-transport-security").is_none(), "no HSTS over plain HTTP");
    }
    let page = http.get(app.url("/")).send().await.unwrap();
    let csp = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.starts_with("default-src 'self'"), "{csp}");
    let api = http.get(app.url("/api/files/x")).send().await.unwrap();
    assert!(api.headers()["content-security-policy"].to_str().unwrap().contains("sandbox"));
}

#[tokio::test]
async fn foreign_origins_are_refused_and_listed_ones_get_cors() {
    let app = spawn_app_with(|c| c.allowed_origins = vec!["https://chat.example.com".into()]).await;
    assert_eq!(app.handshake_status(&[("origin", "https://evil.example")]).await, 403);
    assert_eq!(app.handshake_status(&[("origin", "https://chat.example.com")]).await, 101);
    assert_eq!(
        app.handshake_status(&[("origin", &format!("http://{}", app.addr))]).await,
        403,
        "with origins configured, naming the Host is not enough (DNS rebinding)"
    );
    assert_eq!(app.handshake_status(&[("origin", "null")]).await, 403);

    let http = reqwest::Client::new();
    let preflight = http
        .request(reqwest::Method::OPTIONS, app.url("/api/login"))
        .header("origin", "https://chat.example.com")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 204);
    assert_eq!(preflight.headers()["access-control-allow-origin"], "https://chat.example.com");
    assert!(preflight.headers()["access-control-allow-headers"].to_str().unwrap().contains("authorization"));

    let login = http
        .post(app.url("/api/login"))
        .header("origin", "https://evil.example")
        .json(&serde_json::json!({ "username": "alice", "password": "password1234" }))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 403, "a foreign page cannot call the API");
    let login = http
        .post(app.url("/api/login"))
        .header("origin", "https://chat.example.com")
        .json(&serde_json::json!({ "username": "alice", "password": "password1234" }))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 401, "a listed origin reaches the API");
    assert_eq!(login.headers()["access-control-allow-origin"], "https://chat.example.com");
    // Non-browser clients send no Origin and are not affected.
    assert_eq!(http.get(app.url("/healthz")).send().await.unwrap().status(), 200);
}

/// A self-signed certificate for 127.0.0.1 / localhost, written to a fresh
/// directory: (directory, cert path, key path, cert PEM).
fn self_signed(dir: &std::path::Path) -> (PathBuf, PathBuf, String) {
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let pem = certified.cert.pem();
    std::fs::write(&cert, &pem).unwrap();
    std::fs::write(&key, certified.key_pair.serialize_pem()).unwrap();
    (cert, key, pem)
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("chatwire-{name}-{}-{}", std::process::id(), rand_suffix()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
}

/// The DER of the certificate the server presents.
async fn served_certificate(app: &TestApp, trusted: &[&str]) -> Vec<u8> {
    use tokio_rustls::rustls;
    let mut roots = rustls::RootCertStore::empty();
    for pem in trusted {
        for cert in rustls_pemfile_certs(pem) {
            roots.add(cert).unwrap();
        }
    }
    let config =
        rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let tls = connector.connect(name, tcp).await.unwrap();
    tls.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

/// `chatwire_tls_reload_failures_total` of this process (the app runs in it).
fn tls_reload_failures() -> u64 {
    let exposition = chatwire::metrics::metrics().render(None, None);
    let line = exposition.lines().find(|line| line.starts_with("chatwire_tls_reload_failures_total "));
    line.and_then(|line| line.rsplit(' ').next()?.parse().ok()).expect("the failures are counted")
}

fn rustls_pemfile_certs(pem: &str) -> Vec<rustls_pki_types::CertificateDer<'static>> {
    use rustls_pki_types::pem::PemObject;
    rustls_pki_types::CertificateDer::pem_slice_iter(pem.as_bytes()).map(Result::unwrap).collect()
}

#[tokio::test]
async fn direct_tls_serves_https_and_reloads_a_renewed_certificate() {
    let dir = temp_dir("tls");
    let (cert, key, first_pem) = self_signed(&dir);
    let redirect_port = free_port(false);
    let app = spawn_app_with(|c| {
        c.tls_cert = Some(cert.clone());
        c.tls_key = Some(key.clone());
        c.http_redirect_port = Some(redirect_port);
    })
    .await;

    let https = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(first_pem.as_bytes()).unwrap())
        .build()
        .unwrap();
    let page = https.get(format!("https://127.0.0.1:{}/", app.addr.port())).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.headers().contains_key("strict-transport-security"), "direct TLS is https");

    let plain = http_from("127.0.0.1")
        .get(format!("http://127.0.0.1:{redirect_port}/rooms?x=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), 308);
    assert_eq!(plain.headers()["location"], format!("https://127.0.0.1:{redirect_port}/rooms?x=1"));

    // Renewal: new files in place, picked up without a restart.
    let first_der = rustls_pemfile_certs(&first_pem).remove(0).to_vec();
    assert_eq!(served_certificate(&app, &[&first_pem]).await, first_der);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let (_, _, second_pem) = self_signed(&dir);
    let second_der = rustls_pemfile_certs(&second_pem).remove(0).to_vec();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while served_certificate(&app, &[&first_pem, &second_pem]).await != second_der {
        assert!(tokio::time::Instant::now() < deadline, "the renewed certificate was not picked up");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // A broken renewal keeps the working certificate, once the reloader has
    // tried it (and counted the failure).
    let failures_before = tls_reload_failures();
    std::fs::write(&cert, "not a certificate").unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while tls_reload_failures() == failures_before {
        assert!(tokio::time::Instant::now() < deadline, "the broken renewal was never tried");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(served_certificate(&app, &[&first_pem, &second_pem]).await, second_der);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn bad_tls_and_proxy_settings_stop_the_start() {
    let dir = temp_dir("badtls");
    std::fs::write(dir.join("cert.pem"), "garbage").unwrap();
    std::fs::write(dir.join("key.pem"), "garbage").unwrap();
    let mut config = common::test_config();
    config.tls_cert = Some(dir.join("cert.pem"));
    config.tls_key = Some(dir.join("key.pem"));
    let err = chatwire::app::Application::build(config).await.err().expect("a bad certificate is refused");
    assert!(err.to_string().contains("TLS_CERT"), "{err}");

    let mut config = common::test_config();
    config.trust_proxy = vec!["10.0.0.0/33".into()];
    let err = chatwire::app::Application::build(config).await.err().expect("a bad range is refused");
    assert!(err.to_string().contains("TRUST_PROXY"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}
