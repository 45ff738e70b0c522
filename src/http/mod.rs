//! The HTTP side: the web client, the socket.io browser bundle, health
//! checks, the `/api` endpoints, and the socket.io endpoint itself, all behind
//! the [`edge`] rules (proxies, https, origins, security headers). [`router`]
//! is a pure function of its inputs so tests can drive it; [`serve`] runs
//! it on a listener.

mod api;
mod capacity;
mod client_bundle;
mod edge;
mod engine_gate;
mod health;
mod origins;
mod own_head;
mod proxies;
mod security_headers;
mod serve;

use std::convert::Infallible;
use std::path::Path;
use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::middleware;
use axum::response::IntoResponse;
use axum::routing::get;
use tower::{Layer, Service, ServiceExt};
use tower_http::services::ServeDir;
use tower_http::trace::{DefaultOnFailure, TraceLayer};
use tracing::Level;

pub use api::{Api, ApiError, ChatNotices, Limits, MAX_AVATAR_BYTES};
pub use capacity::{Capacity, raise_open_files_limit};
pub use edge::Edge;
pub use engine_gate::EngineGate;
pub use health::Readiness;
pub use security_headers::SecurityHeaders;
pub use serve::{Port, serve};

/// Builds the router. `socketio` is the socket.io service, mounted at
/// `/socket.io/` only, so that the bundle routes beside it stay reachable;
/// `gate` admits engine connections (protocol versions, per-address cap).
pub fn router<S>(
    public_dir: &Path,
    edge: Edge,
    readiness: Readiness,
    api: Api,
    socketio: S,
    gate: EngineGate,
) -> Router
where
    S: Service<Request, Error = Infallible> + Clone + Send + Sync + 'static,
    S::Response: IntoResponse + 'static,
    S::Future: Send + 'static,
{
    let socketio = middleware::from_fn_with_state(gate, engine_gate::gate).layer(socketio);
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/socket.io/{file}", get(client_bundle::serve))
        .route_service("/socket.io/", socketio.clone().map_request(own_head::own_head))
        .route_service("/socket.io", socketio.map_request(own_head::own_head))
        .with_state(readiness)
        .merge(api::routes(api))
        .fallback_service(ServeDir::new(public_dir))
        // 503s from /readyz during a Redis outage are expected; the cluster
        // code logs the outage itself, once.
        .layer(middleware::from_fn_with_state(Arc::new(edge), edge::guard))
        .layer(TraceLayer::new_for_http().on_failure(DefaultOnFailure::new().level(Level::DEBUG)))
}

/// The router of the plain-HTTP port beside direct TLS: it only redirects.
pub fn redirect_router(edge: Edge) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .layer(middleware::from_fn_with_state(Arc::new(edge.redirect_only()), edge::guard))
}

/// The body every HTTP refusal carries: `{ error: { code, message } }`, as
/// the API's errors and the socket events' acks.
fn refusal(status: axum::http::StatusCode, code: &str, message: &str) -> axum::response::Response {
    let body = serde_json::json!({ "error": { "code": code, "message": message } });
    (status, axum::Json(body)).into_response()
}
