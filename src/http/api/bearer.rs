//! [`Bearer`]: the caller's identity, from `Authorization: Bearer <token>`.

use axum::extract::{FromRef, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;

use super::{Api, ApiError};
use crate::auth::Session;

/// A request made with a valid token (an account's, or a guest's whose
/// session is still on), not revoked.
pub struct Bearer(pub Session);

impl<S: Send + Sync> FromRequestParts<S> for Bearer
where
    Api: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let api = Api::from_ref(state);
        Ok(Self(api.auth.authenticate(bearer_token(parts)?).await?))
    }
}

/// A request made with a genuine, unexpired token, whether or not its
/// session still stands: what `POST /api/logout` needs, since revoking a
/// guest token whose name was just released must still work (the token
/// could otherwise take the free name back).
pub struct SignedBearer(pub Session);

impl<S: Send + Sync> FromRequestParts<S> for SignedBearer
where
    Api: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let api = Api::from_ref(state);
        Ok(Self(api.auth.verify(bearer_token(parts)?)?))
    }
}

/// The token of `Authorization: Bearer <token>`.
fn bearer_token(parts: &Parts) -> Result<&str, ApiError> {
    parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(|| ApiError::Unauthorized("missing_token", "send `Authorization: Bearer <token>`".into()))
}
