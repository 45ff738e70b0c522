//! [`ApiError`]: every way an HTTP API request fails, mapped once to a status
//! and a JSON body `{ "error": { "code", "message" } }` (the same shape as
//! socket errors).

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::auth::{AuthError, whole_seconds};
use crate::domain::ValidationError;
use crate::store::StoreError;
use crate::telemetry::Throttle;

/// A failed API request.
#[derive(Debug)]
pub enum ApiError {
    /// 400: the request is malformed or breaks a rule.
    BadRequest(&'static str, String),
    /// 401: no valid credentials.
    Unauthorized(&'static str, String),
    /// 403: valid credentials, but not allowed.
    Forbidden(String),
    /// 404
    NotFound(String),
    /// 409: the name is taken.
    Conflict(&'static str, String),
    /// 413
    TooLarge(String),
    /// 415: the bytes are not an accepted type.
    UnsupportedType(String),
    /// 429, with Retry-After.
    RateLimited(Duration),
    /// 503: the state store is unreachable.
    Unavailable,
    /// 503, with Retry-After: too much work at once (password checks).
    Busy(Duration),
}

/// Warnings of store failures answered 503: one per 10 s during an outage.
static STORE_FAILURES: Throttle = Throttle::new(Duration::from_secs(10));

impl ApiError {
    /// A request the state store failed: logged (throttled) with the store's
    /// error, answered 503 `unavailable`.
    pub fn store_failed(err: StoreError) -> Self {
        if let Some(unreported) = STORE_FAILURES.due(std::time::Instant::now()) {
            tracing::warn!(error = %err, unreported, "the state store failed an API request; answered 503");
        }
        Self::Unavailable
    }

    fn parts(&self) -> (StatusCode, &'static str, String) {
        match self {
            Self::BadRequest(code, message) => (StatusCode::BAD_REQUEST, code, message.clone()),
            Self::Unauthorized(code, message) => (StatusCode::UNAUTHORIZED, code, message.clone()),
            Self::Forbidden(message) => (StatusCode::FORBIDDEN, "forbidden", message.clone()),
            Self::NotFound(message) => (StatusCode::NOT_FOUND, "not_found", message.clone()),
            Self::Conflict(code, message) => (StatusCode::CONFLICT, code, message.clone()),
            Self::TooLarge(message) => (StatusCode::PAYLOAD_TOO_LARGE, "too_large", message.clone()),
            Self::UnsupportedType(message) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "file_type_not_allowed", message.clone())
            }
            Self::RateLimited(wait) => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!("too many attempts; try again in {} s", whole_seconds(*wait)),
            ),
            Self::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the service is unavailable, try again shortly".into(),
            ),
            Self::Busy(wait) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                format!("the server is busy; try again in {} s", whole_seconds(*wait)),
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, message) = self.parts();
        let mut response = crate::http::refusal(status, code, &message);
        match &self {
            Self::RateLimited(wait) | Self::Busy(wait) => {
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(whole_seconds(*wait)));
            }
            Self::Unauthorized(..) => {
                response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            _ => {}
        }
        response
    }
}

impl From<ValidationError> for ApiError {
    fn from(err: ValidationError) -> Self {
        let code = match err {
            ValidationError::Username(_) => "invalid_username",
            ValidationError::Password(_) => "invalid_password",
            ValidationError::FileType(_) => return Self::UnsupportedType(err.to_string()),
            ValidationError::FileTooLarge(_) => return Self::TooLarge(err.to_string()),
            _ => "invalid_payload",
        };
        Self::BadRequest(code, err.to_string())
    }
}

impl From<AuthError> for ApiError {
    fn from(err: AuthError) -> Self {
        match err {
            AuthError::Invalid(invalid) => invalid.into(),
            AuthError::AccountExists(_) => Self::Conflict("name_registered", err.to_string()),
            AuthError::NameInUse(_) => Self::Conflict("name_in_use", err.to_string()),
            AuthError::BadCredentials => Self::Unauthorized("bad_credentials", err.to_string()),
            AuthError::BadToken(_) | AuthError::SessionEnded => {
                Self::Unauthorized("bad_token", err.to_string())
            }
            AuthError::Revoked => Self::Unauthorized("token_revoked", err.to_string()),
            AuthError::NotAnAccount => Self::Forbidden(err.to_string()),
            AuthError::Conflict => Self::Conflict("conflict", err.to_string()),
            AuthError::RateLimited(wait) => Self::RateLimited(wait),
            AuthError::Busy(wait) => Self::Busy(wait),
            AuthError::Unavailable => Self::Unavailable,
        }
    }
}
