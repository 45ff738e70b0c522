//! `POST /api/register` and `POST /api/login`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::session::json_body;
use super::{Api, ApiError};
use crate::net::ClientAddr;

/// The body of both endpoints.
#[derive(Deserialize)]
struct Credentials {
    username: String,
    password: String,
}

/// Reads the JSON body, whatever its Content-Type, with a clear 400 otherwise.
fn credentials(body: &[u8]) -> Result<Credentials, ApiError> {
    json_body(body, "{ username, password } (strings)")
}

/// `POST /api/register` { username, password } → 201 { username }; 429 past
/// the attempt limits and 503 `busy` while password hashing is saturated,
/// both with `Retry-After`.
pub async fn register(
    State(api): State<Api>,
    ClientAddr(client): ClientAddr,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let credentials = credentials(&body)?;
    let user = api.auth.register(&credentials.username, &credentials.password, client).await?;
    Ok((StatusCode::CREATED, Json(json!({ "username": user }))))
}

/// `POST /api/login` { username, password } → 200 { token, username, expiresIn };
/// 401 for a wrong name or password, 429 past the attempt limits
/// ([`crate::auth::limits`]) and 503 `busy` while password hashing is
/// saturated, both with `Retry-After`.
pub async fn login(
    State(api): State<Api>,
    ClientAddr(client): ClientAddr,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let credentials = credentials(&body)?;
    let (identity, token) = api.auth.log_in(&credentials.username, &credentials.password, client).await?;
    Ok(Json(
        json!({ "token": token, "username": identity.user, "expiresIn": api.auth.token_ttl().as_secs() }),
    ))
}
