//! The edge of every HTTP request, before any route sees it: who really sent
//! it (through trusted proxies only, see [`client_addr`](super::client_addr)),
//! whether it came over TLS, which web
//! origin it comes from; and the security headers every response carries.
//!
//! - [`Edge::from_config`] reads TRUST_PROXY, FORCE_HTTPS, HSTS_MAX_AGE and
//!   ALLOWED_ORIGINS once;
//! - [`guard`] is the middleware: it redirects plain HTTP to https, refuses
//!   websocket upgrades over plain HTTP and foreign origins, answers CORS for
//!   listed origins, records the [`ClientAddr`] and adds the headers.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::Json;
use axum::extract::{Request, State};
use axum::http::uri::Authority;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::client_addr::{ClientAddr, TrustedProxies, peer_of};
use crate::config::Config;

/// The page's policy: everything from this origin, media from blob URLs
/// (files received live), nothing inline, never framed.
const PAGE_CSP: &str = "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; \
     style-src 'self'; script-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

/// API answers (JSON, user files) are data, never documents: a file opened
/// directly runs no script and cannot be framed.
const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'; sandbox";

/// Paths that answer over plain HTTP even with FORCE_HTTPS: load balancers
/// and orchestrators probe them on the internal network.
const PLAIN_HTTP_PATHS: &[&str] = &["/healthz", "/readyz", "/metrics"];

/// Which web origins may use the socket endpoint and the API.
#[derive(Debug, Clone)]
enum Origins {
    /// Same origin (and non-browser clients) only, plus these.
    Listed(Vec<String>),
    /// Any origin (`*`).
    Any,
}

impl Origins {
    fn parse(entries: &[String]) -> Result<Self, String> {
        let mut listed = Vec::new();
        for entry in entries.iter().map(|e| e.trim()).filter(|e| !e.is_empty()) {
            if entry == "*" {
                return Ok(Self::Any);
            }
            let origin = normalize_origin(entry).ok_or_else(|| {
                format!("ALLOWED_ORIGINS: `{entry}` is not an origin like https://chat.example.com")
            })?;
            listed.push(origin);
        }
        Ok(Self::Listed(listed))
    }

    fn lists(&self, origin: &str) -> bool {
        match self {
            Self::Any => true,
            Self::Listed(list) => list.iter().any(|o| o == origin),
        }
    }
}

/// `scheme://host[:port]`, lower-cased, or None if `raw` is not an origin.
fn normalize_origin(raw: &str) -> Option<String> {
    let raw = raw.trim_end_matches('/').to_ascii_lowercase();
    let (scheme, rest) = raw.split_once("://")?;
    if !matches!(scheme, "http" | "https") {
        return None;
    }
    let authority: Authority = rest.parse().ok()?;
    (authority.as_str() == rest && !rest.contains('@')).then_some(raw)
}

/// The request-edge rules of this deployment.
#[derive(Debug, Clone)]
pub struct Edge {
    proxies: TrustedProxies,
    origins: Origins,
    force_https: bool,
    tls: bool,
    hsts: Option<HeaderValue>,
}

impl Edge {
    /// The rules from the configuration, or what is wrong with it.
    pub fn from_config(config: &Config) -> Result<Self, String> {
        let hsts = (config.hsts_max_age > 0)
            .then(|| HeaderValue::from_str(&format!("max-age={}; includeSubDomains", config.hsts_max_age)))
            .transpose()
            .map_err(|err| err.to_string())?;
        Ok(Self {
            proxies: TrustedProxies::parse(&config.trust_proxy)?,
            origins: Origins::parse(&config.allowed_origins)?,
            force_https: config.force_https,
            tls: config.tls_enabled(),
            hsts,
        })
    }

    /// Rules for the plain-HTTP port beside direct TLS: everything redirects.
    pub fn redirect_only(&self) -> Self {
        Self { force_https: true, tls: false, ..self.clone() }
    }

    /// Where the request really comes from, and how.
    fn inspect(&self, headers: &HeaderMap, peer: SocketAddr) -> Arrival {
        let forwarded = self.proxies.read(headers, peer.ip());
        let https = self.tls || forwarded.proto.is_some_and(|proto| proto.eq_ignore_ascii_case("https"));
        let host = forwarded
            .host
            .or_else(|| headers.get(header::HOST).and_then(|v| v.to_str().ok()))
            .and_then(|host| host.trim().parse::<Authority>().ok())
            .filter(|authority| !authority.as_str().contains('@'));
        Arrival { client: forwarded.client, https, host }
    }
}

/// What the edge found out about a request.
struct Arrival {
    client: IpAddr,
    https: bool,
    host: Option<Authority>,
}

/// The middleware applying [`Edge`] to every request.
pub async fn guard(State(edge): State<Arc<Edge>>, mut request: Request, next: Next) -> Response {
    let arrival = edge.inspect(request.headers(), peer_of(request.extensions()));
    request.extensions_mut().insert(ClientAddr(arrival.client));
    let path = request.uri().path().to_owned();
    let api = path.starts_with("/api/");
    let guarded = api || path.starts_with("/socket.io");

    if edge.force_https && !arrival.https && !PLAIN_HTTP_PATHS.contains(&path.as_str()) {
        return plain_http(&request, arrival.host.as_ref());
    }
    let origin = request.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let mut cors = None;
    if let Some(origin) = origin.filter(|_| guarded) {
        let normalized = normalize_origin(&origin);
        let same = normalized.as_deref().zip(arrival.host.as_ref()).is_some_and(|(origin, host)| {
            origin.split_once("://").is_some_and(|(_, rest)| rest.eq_ignore_ascii_case(host.as_str()))
        });
        let listed = normalized.as_deref().is_some_and(|o| edge.origins.lists(o));
        if !same && !listed {
            tracing::debug!(%origin, path, client = %arrival.client, "refused a foreign origin");
            return refusal(
                StatusCode::FORBIDDEN,
                "origin_not_allowed",
                "this origin may not use this server",
            );
        }
        if listed && !same {
            cors = HeaderValue::from_str(&origin).ok();
            if request.method() == Method::OPTIONS {
                return preflight(cors);
            }
        }
    }

    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let csp = if api { API_CSP } else { PAGE_CSP };
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, csp),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::HeaderName::from_static("cross-origin-opener-policy"), "same-origin"),
        (header::HeaderName::from_static("permissions-policy"), "camera=(), microphone=(), geolocation=()"),
    ] {
        headers.entry(name).or_insert(HeaderValue::from_static(value));
    }
    if let Some(hsts) = edge.hsts.as_ref().filter(|_| arrival.https) {
        headers.insert(header::STRICT_TRANSPORT_SECURITY, hsts.clone());
    }
    if let Some(origin) = cors {
        add_cors(headers, origin);
    }
    response
}

/// A plain-HTTP request under FORCE_HTTPS: a 308 to the same URL over
/// https, except websocket upgrades, which are refused (a redirect would
/// carry the handshake in the clear first).
fn plain_http(request: &Request, host: Option<&Authority>) -> Response {
    let upgrade = request.headers().get(header::UPGRADE).is_some();
    if upgrade {
        return refusal(StatusCode::FORBIDDEN, "https_required", "websockets need wss:// here");
    }
    let Some(host) = host else {
        return refusal(StatusCode::BAD_REQUEST, "bad_host", "missing or invalid Host header");
    };
    let target = request.uri().path_and_query().map_or("/", |pq| pq.as_str());
    let https_host = match host.port_u16() {
        Some(80) | None => host.host().to_owned(),
        Some(_) => host.as_str().to_owned(),
    };
    match HeaderValue::from_str(&format!("https://{https_host}{target}")) {
        Ok(location) => (StatusCode::PERMANENT_REDIRECT, [(header::LOCATION, location)]).into_response(),
        Err(_) => refusal(StatusCode::BAD_REQUEST, "bad_request", "the URL cannot be redirected"),
    }
}

fn refusal(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({ "error": { "code": code, "message": message } }))).into_response()
}

/// The answer to a CORS preflight from a listed origin.
fn preflight(origin: Option<HeaderValue>) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    let headers = response.headers_mut();
    headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, POST, PUT, OPTIONS"));
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("authorization, content-type"),
    );
    headers.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
    if let Some(origin) = origin {
        add_cors(headers, origin);
    }
    response
}

fn add_cors(headers: &mut HeaderMap, origin: HeaderValue) {
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static("retry-after, etag"));
    headers.append(header::VARY, HeaderValue::from_static("origin"));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edge(trust: &[&str]) -> Edge {
        Edge {
            proxies: TrustedProxies::parse(&trust.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap(),
            origins: Origins::Listed(vec![]),
            force_https: true,
            tls: false,
            hsts: None,
        }
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        pairs.iter().map(|(k, v)| (k.parse().unwrap(), v.parse().unwrap())).collect()
    }

    #[test]
    fn forwarded_headers_count_only_from_trusted_proxies() {
        let edge = edge(&["10.0.0.0/8", "127.0.0.1"]);
        let sent = headers(&[
            ("x-forwarded-proto", "https"),
            ("x-forwarded-for", "203.0.113.9, 10.1.2.3"),
            ("host", "chat.example.com"),
        ]);
        let trusted = edge.inspect(&sent, "127.0.0.1:5000".parse().unwrap());
        assert!(trusted.https);
        assert_eq!(trusted.client, "203.0.113.9".parse::<IpAddr>().unwrap(), "skips trusted hops");
        let stranger = edge.inspect(&sent, "198.51.100.7:5000".parse().unwrap());
        assert!(!stranger.https, "an untrusted peer cannot claim https");
        assert_eq!(stranger.client, "198.51.100.7".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn settings_are_checked() {
        assert!(
            Origins::parse(&["https://chat.example.com/".into()]).unwrap().lists("https://chat.example.com")
        );
        assert!(Origins::parse(&["chat.example.com".into()]).is_err());
        assert!(Origins::parse(&["https://user@evil.example".into()]).is_err());
        assert_eq!(normalize_origin("HTTP://Example.com:8080").as_deref(), Some("http://example.com:8080"));
        assert_eq!(normalize_origin("null"), None);
    }
}
