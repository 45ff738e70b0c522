//! The gate in front of the socket.io engine, for what socketioxide cannot
//! refuse itself:
//! - Engine.IO protocol 3. socket.io-client 2.x speaks it, and socketioxide
//!   accepts it whenever its `v4` feature is compiled in; with
//!   `ALLOW_EIO3=false` such requests are answered here, exactly as a Node
//!   server without `allowEIO3` answers them.
//! - Engine connections per address. socket.io refuses a socket over
//!   MAX_CONNECTIONS_PER_ADDRESS with a code its client can read, but the
//!   refused connection stays open until the client closes it: socketioxide
//!   has no way to close one, and under protocol 4 (2.x) no connect timeout
//!   either. Honest clients close; a hostile one could keep thousands open.
//!   So each engine connection holds a slot of its own, at most twice the
//!   socket.io cap per address, taken at its handshake and kept in the
//!   request head the engine keeps for the connection's whole life, so it
//!   is freed exactly when the connection is gone.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::net::{AddressSlot, ClientAddr, ConnectionsPerAddress};

/// What the gate lets through.
#[derive(Debug, Clone)]
pub struct EngineGate {
    /// ALLOW_EIO3: socket.io-client 2.x may connect.
    allow_eio3: bool,
    /// Open engine connections per address (twice MAX_CONNECTIONS_PER_ADDRESS).
    connections: Arc<ConnectionsPerAddress>,
}

impl EngineGate {
    /// Lets Engine.IO 3 through if `allow_eio3`, and up to twice
    /// `max_sockets_per_address` connections per address (0: no cap).
    pub fn new(allow_eio3: bool, max_sockets_per_address: u32) -> Self {
        let connections = ConnectionsPerAddress::new(max_sockets_per_address.saturating_mul(2));
        Self { allow_eio3, connections }
    }
}

/// An engine connection's place in its address's count, freed when the
/// engine drops the connection's request head.
#[derive(Debug, Clone)]
struct EngineSlot(#[allow(dead_code, reason = "held for its Drop")] Arc<AddressSlot>);

/// Middleware on the socket.io endpoint: refuses Engine.IO 3 requests
/// (handshakes, polls, upgrades alike) unless they are allowed, and a new
/// engine connection from an address holding too many.
pub async fn gate(State(gate): State<EngineGate>, mut request: Request, next: Next) -> Response {
    let query = request.uri().query();
    if !gate.allow_eio3 && names_eio3(query) {
        tracing::debug!("refused an Engine.IO 3 request (socket.io-client 2.x): ALLOW_EIO3 is false");
        return unsupported_protocol();
    }
    if opens_a_session(query) && gate.connections.is_capped() {
        let client = request.extensions().get::<ClientAddr>().copied();
        if let Some(client) = client {
            let Some(slot) = gate.connections.acquire(client.key()) else {
                tracing::info!(ip = %client.0, key = %client.key(), "refused an engine connection: too many open from this address");
                return too_many_connections();
            };
            request.extensions_mut().insert(EngineSlot(Arc::new(slot)));
        }
    }
    next.run(request).await
}

/// True for a request that opens an engine session (a polling handshake or a
/// direct websocket): it names no `sid`.
fn opens_a_session(query: Option<&str>) -> bool {
    !query.is_some_and(|query| query.split('&').any(|pair| pair.starts_with("sid=")))
}

/// True if `query` asks for Engine.IO protocol 3. Read the way engineioxide
/// reads it (the first `EIO=` pair wins), so that no query can look like
/// another version here and like 3 to the engine.
fn names_eio3(query: Option<&str>) -> bool {
    let version = query
        .and_then(|query| query.split('&').find(|pair| pair.starts_with("EIO=")))
        .and_then(|pair| pair.split('=').nth(1));
    version == Some("3")
}

/// Node engine.io's answer to a protocol version it does not serve
/// (`Server.errors.UNSUPPORTED_PROTOCOL_VERSION`).
fn unsupported_protocol() -> Response {
    let body = json!({ "code": 5, "message": "Unsupported protocol version" });
    (StatusCode::BAD_REQUEST, Json(body)).into_response()
}

/// The answer to a connection over the engine cap. A browser's websocket
/// never shows it; the client just fails to connect, as at any full server.
fn too_many_connections() -> Response {
    super::refusal(
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_connections",
        "too many connections from your address",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_first_eio_pair_counts_as_engineioxide_reads_it() {
        assert!(names_eio3(Some("EIO=3&transport=polling")));
        assert!(names_eio3(Some("token=x&EIO=3&transport=websocket&sid=abc")));
        assert!(names_eio3(Some("EIO=3&EIO=4&transport=polling")));
        assert!(!names_eio3(Some("EIO=4&EIO=3&transport=polling")));
        assert!(!names_eio3(Some("EIO=4&transport=websocket")));
        assert!(!names_eio3(Some("xEIO=3&EIO=4")));
        assert!(!names_eio3(Some("EIO=33")));
        assert!(!names_eio3(None));
    }

    #[test]
    fn only_requests_without_a_sid_open_a_session() {
        assert!(opens_a_session(Some("EIO=4&transport=websocket")));
        assert!(opens_a_session(Some("EIO=3&transport=polling&t=abc")));
        assert!(opens_a_session(None));
        assert!(!opens_a_session(Some("EIO=4&transport=websocket&sid=abc")));
        assert!(!opens_a_session(Some("sid=abc&EIO=4&transport=polling")));
    }
}
