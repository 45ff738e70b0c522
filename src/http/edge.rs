//! The edge of every HTTP request, before any route sees it: who really sent
//! it (through trusted proxies only, see [`proxies`](super::proxies)),
//! whether it came over TLS, which web origin it comes from (see
//! [`origins`](super::origins)), which listener it arrived on; and the
//! security headers every response carries.
//!
//! - [`Edge::from_config`] reads TRUST_PROXY, FORCE_HTTPS, HSTS_MAX_AGE,
//!   ALLOWED_ORIGINS, PUBLIC_URL and METRICS_ADDR once;
//! - [`guard`] is the middleware: it keeps monitoring paths on their own
//!   listener, redirects plain HTTP to https, refuses websocket upgrades over
//!   plain HTTP and foreign origins, answers CORS for listed origins, records
//!   the [`ClientAddr`] and adds the [security headers](super::security_headers).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::uri::Authority;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::origins::{Origins, PublicUrl, normalize_origin, parse_host};
use super::proxies::TrustedProxies;
use super::refusal;
use super::security_headers::SecurityHeaders;
use super::serve::Port;
use crate::config::Config;
use crate::net::{ClientAddr, peer_of};

/// Paths that answer over plain HTTP even with FORCE_HTTPS: load balancers
/// and orchestrators probe them on the internal network.
const PLAIN_HTTP_PATHS: &[&str] = &["/healthz", "/readyz", "/metrics"];

/// Paths that move to METRICS_ADDR when it is set. `/healthz` stays on the
/// app port too: load balancers probe the port they send traffic to.
const MONITORING_PATHS: &[&str] = &["/readyz", "/metrics"];

/// The request-edge rules of this deployment.
#[derive(Debug, Clone)]
pub struct Edge {
    proxies: TrustedProxies,
    origins: Origins,
    public: Option<PublicUrl>,
    force_https: bool,
    tls: bool,
    hsts: Option<HeaderValue>,
    /// METRICS_ADDR is set: `/metrics` and `/readyz` answer only there.
    monitoring_elsewhere: bool,
    /// What every response carries (the pages' policy among them).
    headers: SecurityHeaders,
}

impl Edge {
    /// The rules from the configuration, or what is wrong with it.
    pub fn from_config(config: &Config) -> Result<Self, String> {
        let hsts = (config.hsts_max_age > 0)
            .then(|| HeaderValue::from_str(&format!("max-age={}; includeSubDomains", config.hsts_max_age)))
            .transpose()
            .map_err(|err| err.to_string())?;
        let public = config.public_url.as_deref().filter(|url| !url.trim().is_empty()).map(PublicUrl::parse);
        let public = public.transpose()?;
        let redirects = config.force_https || config.http_redirect_port.is_some();
        if redirects && public.as_ref().is_some_and(|public| !public.https) {
            return Err("PUBLIC_URL must be https:// with FORCE_HTTPS or HTTP_REDIRECT_PORT".into());
        }
        Ok(Self {
            proxies: TrustedProxies::parse(&config.trust_proxy)?,
            origins: Origins::parse(&config.allowed_origins, public.as_ref())?,
            public,
            force_https: config.force_https,
            tls: config.tls_enabled(),
            hsts,
            monitoring_elsewhere: config.metrics_addr.is_some(),
            headers: SecurityHeaders::from_config(config)?,
        })
    }

    /// Rules for the plain-HTTP port beside direct TLS: everything redirects.
    pub fn redirect_only(&self) -> Self {
        Self { force_https: true, tls: false, ..self.clone() }
    }

    /// Where the request really comes from, and how.
    fn inspect(&self, headers: &HeaderMap, peer: std::net::SocketAddr) -> Arrival {
        let forwarded = self.proxies.read(headers, peer.ip());
        let https = self.tls || forwarded.proto.is_some_and(|proto| proto.eq_ignore_ascii_case("https"));
        let host = forwarded
            .host
            .or_else(|| headers.get(header::HOST).and_then(|v| v.to_str().ok()))
            .and_then(parse_host);
        Arrival { client: forwarded.client, https, host }
    }

    /// Where a plain-HTTP request is sent over https: PUBLIC_URL's host if
    /// set (and the request named it), else the request's own valid host.
    fn https_authority(&self, host: Option<&Authority>) -> Option<String> {
        match (&self.public, host) {
            (Some(public), Some(host)) => public.is_host_of(host).then(|| public.authority.to_string()),
            (Some(_), None) | (None, None) => None,
            (None, Some(host)) => Some(match host.port_u16() {
                Some(80) | None => host.host().to_owned(),
                Some(_) => host.as_str().to_owned(),
            }),
        }
    }
}

/// What the edge found out about a request.
struct Arrival {
    client: std::net::IpAddr,
    https: bool,
    /// The host the client asked for, if it is a valid `host[:port]`.
    host: Option<Authority>,
}

/// The middleware applying [`Edge`] to every request.
pub async fn guard(State(edge): State<Arc<Edge>>, mut request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    let port = request.extensions().get::<Port>().copied().unwrap_or(Port::App);
    if port == Port::Metrics {
        // The monitoring listener serves nothing else, and nothing a browser uses.
        let monitoring = MONITORING_PATHS.contains(&path.as_str()) || path == "/healthz";
        return if monitoring { next.run(request).await } else { StatusCode::NOT_FOUND.into_response() };
    }
    let arrival = edge.inspect(request.headers(), peer_of(request.extensions()));
    request.extensions_mut().insert(ClientAddr(arrival.client));
    let api = path.starts_with("/api/");
    let (mut response, cors) = match admit(&edge, &request, &arrival, &path) {
        Verdict::Pass { cors } => (next.run(request).await, cors),
        Verdict::Answer(answer) => (answer, None),
    };
    let headers = response.headers_mut();
    edge.headers.apply(api, headers);
    if let Some(hsts) = edge.hsts.as_ref().filter(|_| arrival.https) {
        headers.insert(header::STRICT_TRANSPORT_SECURITY, hsts.clone());
    }
    if let Some(origin) = cors {
        add_cors(headers, origin);
    }
    response
}

/// What the edge decided about a request.
enum Verdict {
    /// On to the routes; answer CORS for this origin, if any.
    Pass { cors: Option<HeaderValue> },
    /// Answered here: 404, redirect, refusal or CORS preflight.
    Answer(Response),
}

/// Whether the request may reach the routes.
fn admit(edge: &Edge, request: &Request, arrival: &Arrival, path: &str) -> Verdict {
    if edge.monitoring_elsewhere && MONITORING_PATHS.contains(&path) {
        return Verdict::Answer(StatusCode::NOT_FOUND.into_response());
    }
    if edge.force_https && !arrival.https && !PLAIN_HTTP_PATHS.contains(&path) {
        return Verdict::Answer(plain_http(edge, request, arrival.host.as_ref()));
    }
    let guarded = path.starts_with("/api/") || path.starts_with("/socket.io");
    let origin = request.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok());
    let Some(origin) = origin.filter(|_| guarded) else { return Verdict::Pass { cors: None } };
    let normalized = normalize_origin(origin);
    let same = normalized.as_deref().zip(arrival.host.as_ref()).is_some_and(|(origin, host)| {
        origin.split_once("://").is_some_and(|(_, rest)| rest.eq_ignore_ascii_case(host.as_str()))
    });
    let listed = normalized.as_deref().is_some_and(|o| edge.origins.lists(o));
    // Same-as-Host counts only while no origin is configured (DNS rebinding).
    let own = same && edge.origins.trusts_host();
    if !(listed || own) {
        tracing::debug!(%origin, path, client = %arrival.client, "refused a foreign origin");
        let refused =
            refusal(StatusCode::FORBIDDEN, "origin_not_allowed", "this origin may not use this server");
        return Verdict::Answer(refused);
    }
    if !listed || same {
        return Verdict::Pass { cors: None };
    }
    let cors = HeaderValue::from_str(origin).ok();
    if request.method() == Method::OPTIONS {
        return Verdict::Answer(preflight(cors));
    }
    Verdict::Pass { cors }
}

/// A plain-HTTP request under FORCE_HTTPS: a 308 to the same URL over
/// https, except websocket upgrades, which are refused (a redirect would
/// carry the handshake in the clear first). The target host is PUBLIC_URL's
/// when set, so a forged `Host` cannot turn the server into a redirector.
fn plain_http(edge: &Edge, request: &Request, host: Option<&Authority>) -> Response {
    let upgrade = request.headers().get(header::UPGRADE).is_some();
    if upgrade {
        return refusal(StatusCode::FORBIDDEN, "https_required", "websockets need wss:// here");
    }
    let Some(https_host) = edge.https_authority(host) else {
        return refusal(StatusCode::BAD_REQUEST, "bad_host", "missing, invalid or foreign Host header");
    };
    let target = request.uri().path_and_query().map_or("/", |pq| pq.as_str());
    match HeaderValue::from_str(&format!("https://{https_host}{target}")) {
        Ok(location) => (StatusCode::PERMANENT_REDIRECT, [(header::LOCATION, location)]).into_response(),
        Err(_) => refusal(StatusCode::BAD_REQUEST, "bad_request", "the URL cannot be redirected"),
    }
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

    fn config(settings: &[&str]) -> Config {
        use clap::Parser;
        let mut args = vec!["chatwire"];
        args.extend(settings);
        Config::parse_from(args)
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        pairs.iter().map(|(k, v)| (k.parse().unwrap(), v.parse().unwrap())).collect()
    }

    #[test]
    fn forwarded_headers_count_only_from_trusted_proxies() {
        let edge = Edge::from_config(&config(&["--trust-proxy", "10.0.0.0/8,127.0.0.1"])).unwrap();
        let sent = headers(&[
            ("x-forwarded-proto", "https"),
            ("x-forwarded-for", "203.0.113.9, 10.1.2.3"),
            ("host", "chat.example.com"),
        ]);
        let trusted = edge.inspect(&sent, "127.0.0.1:5000".parse().unwrap());
        assert!(trusted.https);
        assert_eq!(trusted.client.to_string(), "203.0.113.9", "skips trusted hops");
        let stranger = edge.inspect(&sent, "198.51.100.7:5000".parse().unwrap());
        assert!(!stranger.https, "an untrusted peer cannot claim https");
        assert_eq!(stranger.client.to_string(), "198.51.100.7");
    }

    #[test]
    fn redirects_go_to_the_public_host_and_refuse_others() {
        let public = Edge::from_config(&config(&["--public-url", "https://chat.example.com"])).unwrap();
        let host = |h: &str| parse_host(h);
        assert_eq!(
            public.https_authority(host("chat.example.com:80").as_ref()).as_deref(),
            Some("chat.example.com")
        );
        assert_eq!(
            public.https_authority(host("CHAT.example.com.").as_ref()).as_deref(),
            Some("chat.example.com")
        );
        assert_eq!(public.https_authority(host("evil.example").as_ref()), None, "a foreign Host is refused");
        assert_eq!(public.https_authority(None), None);

        let open = Edge::from_config(&config(&[])).unwrap();
        assert_eq!(
            open.https_authority(host("chat.example.com:80").as_ref()).as_deref(),
            Some("chat.example.com")
        );
        assert_eq!(open.https_authority(host("10.0.0.1:8080").as_ref()).as_deref(), Some("10.0.0.1:8080"));
    }

    #[test]
    fn settings_are_checked() {
        assert!(
            Origins::parse(&["https://chat.example.com/".into()], None)
                .unwrap()
                .lists("https://chat.example.com")
        );
        assert!(Origins::parse(&["chat.example.com".into()], None).is_err());
        assert!(Origins::parse(&["https://user@evil.example".into()], None).is_err());
        assert_eq!(normalize_origin("HTTP://Example.com:8080").as_deref(), Some("http://example.com:8080"));
        assert_eq!(normalize_origin("null"), None);
        assert!(PublicUrl::parse("https://chat.example.com/path").is_err());
        assert!(PublicUrl::parse("chat.example.com").is_err());
        let plain = config(&["--public-url", "http://chat.example.com", "--force-https", "true"]);
        assert!(Edge::from_config(&plain).unwrap_err().contains("PUBLIC_URL"));
    }
}
