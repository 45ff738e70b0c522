//! The Engine.IO protocol 3 gate. socket.io-client 2.x speaks Engine.IO 3,
//! which socketioxide accepts whenever its `v4` feature is compiled in; with
//! `ALLOW_EIO3=false` such requests are answered here, before they reach
//! socketioxide, exactly as a Node server without `allowEIO3` answers them.

use axum::Json;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Whether Engine.IO protocol 3 (socket.io-client 2.x) is let through.
#[derive(Debug, Clone, Copy)]
pub struct AllowEio3(pub bool);

/// Middleware on the socket.io endpoint: refuses Engine.IO 3 requests
/// (handshakes, polls, upgrades alike) unless they are allowed.
pub async fn gate(State(AllowEio3(allowed)): State<AllowEio3>, request: Request, next: Next) -> Response {
    if !allowed && names_eio3(request.uri().query()) {
        tracing::debug!("refused an Engine.IO 3 request (socket.io-client 2.x): ALLOW_EIO3 is false");
        return unsupported_protocol();
    }
    next.run(request).await
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
}
