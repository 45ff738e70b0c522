//! `PUT /api/me/avatar` (accounts only; everyone online then hears
//! `avatar changed`) and `GET /api/users/{name}/avatar`.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::{Api, ApiError, Bearer};
use crate::domain::{MediaType, Username};
use crate::store::Avatar;

/// Largest avatar accepted.
pub const MAX_AVATAR_BYTES: usize = 1024 * 1024;

/// Stores the caller's avatar: an image of at most 1 MiB, its type read from the bytes.
pub async fn upload(
    State(api): State<Api>,
    Bearer(session): Bearer,
    body: Result<Bytes, BytesRejection>,
) -> Result<StatusCode, ApiError> {
    let identity = session.identity;
    if !identity.is_account() {
        return Err(ApiError::Forbidden("register an account to set an avatar".into()));
    }
    let bytes = body.map_err(|rejection| match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::TooLarge(format!("an avatar is at most {MAX_AVATAR_BYTES} bytes"))
        }
        _ => ApiError::BadRequest("invalid_payload", rejection.body_text()),
    })?;
    let media = MediaType::sniff_image(&bytes)?;
    let etag = Sha256::digest(&bytes).iter().take(12).map(|b| format!("{b:02x}")).collect();
    let avatar = Avatar { mime: media.mime.to_owned(), etag, bytes };
    api.stores.accounts.set_avatar(&identity.user, &avatar).await.map_err(ApiError::store_failed)?;
    tracing::info!(user = %identity.user, bytes = avatar.bytes.len(), "avatar updated");
    api.notices.avatar_changed(&identity.user);
    Ok(StatusCode::NO_CONTENT)
}

/// Serves a user's avatar (public), revalidated with its ETag.
pub async fn fetch(
    State(api): State<Api>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let user = Username::parse(&name).map_err(|_| ApiError::NotFound("no such user".into()))?;
    let avatar = api.stores.accounts.avatar(&user).await.map_err(ApiError::store_failed)?;
    let avatar = avatar.ok_or_else(|| ApiError::NotFound(format!("{user} has no avatar")))?;
    let etag = format!("\"{}\"", avatar.etag);
    let cache = [
        (header::ETAG, HeaderValue::from_str(&etag).unwrap_or(HeaderValue::from_static("\"\""))),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
    ];
    if headers.get(header::IF_NONE_MATCH).is_some_and(|tag| tag.as_bytes() == etag.as_bytes()) {
        return Ok((StatusCode::NOT_MODIFIED, cache).into_response());
    }
    let content_type =
        HeaderValue::from_str(&avatar.mime).unwrap_or(HeaderValue::from_static("application/octet-stream"));
    Ok((cache, [(header::CONTENT_TYPE, content_type)], avatar.bytes).into_response())
}
