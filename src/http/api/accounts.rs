//! `POST /api/register` and `POST /api/login`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Api, ApiError};
use crate::http::ClientAddr;

/// The body of both endpoints.
#[derive(Deserialize)]
struct Credentials {
    username: String,
    password: String,
}

/// Reads the JSON body, whatever its Content-Type, with a clear 400 otherwise.
fn credentials(body: &[u8]) -> Result<Credentials, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|err| ApiError::BadRequest("invalid_json", format!("malformed JSON: {err}")))?;
    if !value.is_object() {
        return Err(ApiError::BadRequest(
            "invalid_payload",
            "expected a JSON object { username, password }".into(),
        ));
    }
    serde_json::from_value(value).map_err(|err| {
        ApiError::BadRequest("invalid_payload", format!("expected {{ username, password }} (strings): {err}"))
    })
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
