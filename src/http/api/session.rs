//! A token's life cycle: `POST /api/logout` revokes the token it is called
//! with; `POST /api/me/password` changes an account's password and revokes
//! all its tokens; `DELETE /api/me` deletes the account. Live sockets that
//! stand on a revoked token are disconnected by the session sweeper
//! (`chat::sessions`), at once on this instance and within
//! `SESSION_CHECK_MS` on the others.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::bearer::SignedBearer;
use super::{Api, ApiError, Bearer};
use crate::net::ClientAddr;

/// The body of `POST /api/me/password`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PasswordChange {
    current_password: String,
    new_password: String,
}

/// The body of `DELETE /api/me`.
#[derive(Deserialize)]
struct Deletion {
    password: String,
}

/// Reads a JSON object body into `T`, with a clear 400 otherwise.
pub(super) fn json_body<T: DeserializeOwned>(body: &[u8], expected: &str) -> Result<T, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|err| ApiError::BadRequest("invalid_json", format!("malformed JSON: {err}")))?;
    if !value.is_object() {
        return Err(ApiError::BadRequest("invalid_payload", format!("expected a JSON object {expected}")));
    }
    serde_json::from_value(value)
        .map_err(|err| ApiError::BadRequest("invalid_payload", format!("expected {expected}: {err}")))
}

/// `POST /api/logout` → 204; the token no longer works anywhere. Any
/// genuine unexpired token may be revoked, even one whose session already
/// ended (a guest who just left).
pub async fn logout(
    State(api): State<Api>,
    SignedBearer(session): SignedBearer,
) -> Result<StatusCode, ApiError> {
    api.auth.log_out(&session).await?;
    api.notices.sessions_changed();
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/me/password` { currentPassword, newPassword } → 200 { token, … }:
/// every earlier token of the account is revoked; the new one replaces them.
pub async fn change_password(
    State(api): State<Api>,
    ClientAddr(client): ClientAddr,
    Bearer(session): Bearer,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let change: PasswordChange = json_body(&body, "{ currentPassword, newPassword }")?;
    let token =
        api.auth.change_password(&session, &change.current_password, &change.new_password, client).await?;
    api.notices.sessions_changed();
    Ok(Json(json!({
        "token": token,
        "username": session.identity.user,
        "expiresIn": api.auth.token_ttl().as_secs(),
    })))
}

/// `DELETE /api/me` { password } → 204: the account, its avatar and its
/// tokens are gone; the name can be registered again, by anyone, as a new
/// account that inherits nothing.
pub async fn delete_me(
    State(api): State<Api>,
    ClientAddr(client): ClientAddr,
    Bearer(session): Bearer,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let deletion: Deletion = json_body(&body, "{ password }")?;
    api.auth.delete_account(&session, &deletion.password, client).await?;
    api.notices.sessions_changed();
    Ok(StatusCode::NO_CONTENT)
}
