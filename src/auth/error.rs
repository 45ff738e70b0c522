//! [`AuthError`]: why an account operation failed.

use std::time::Duration;

use super::TokenError;
use super::passwords::{self, HashError};
use crate::domain::ValidationError;
use crate::store::StoreError;

/// Why an account operation failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AuthError {
    /// A name or password broke the rules.
    #[error("{0}")]
    Invalid(ValidationError),
    /// The name is registered already.
    #[error("the name `{0}` is registered already")]
    AccountExists(String),
    /// A guest is online under that name right now.
    #[error("the name `{0}` is in use by someone online")]
    NameInUse(String),
    /// Unknown name or wrong password (deliberately not told apart).
    #[error("wrong name or password")]
    BadCredentials,
    /// The token is forged, malformed or expired.
    #[error("{0}")]
    BadToken(TokenError),
    /// A guest token whose session is over (the name was released).
    #[error("this guest session has ended; log in again")]
    SessionEnded,
    /// The token was revoked (a logout, a password change, a deleted account).
    #[error("this token was revoked; log in again")]
    Revoked,
    /// Too many attempts ([`limits`]); try again after this long.
    #[error("too many attempts; try again in {} s", whole_seconds(*.0))]
    RateLimited(Duration),
    /// Every password-hashing thread is taken and its queue is full; try
    /// again after this long. The password was not checked.
    #[error("the server is busy checking passwords; try again in {} s", whole_seconds(*.0))]
    Busy(Duration),
    /// The state store is unreachable.
    #[error("the account service is unavailable, try again shortly")]
    Unavailable,
    /// Only accounts can do this (a guest token was used).
    #[error("only registered accounts can do this")]
    NotAnAccount,
    /// The account changed during the request (another change won); retry.
    #[error("the account changed meanwhile; try again")]
    Conflict,
}

/// A wait in whole seconds, rounded up (a wait of 0.2 s is "1 s", not "0 s").
pub fn whole_seconds(wait: Duration) -> u64 {
    wait.as_millis().div_ceil(1000).try_into().unwrap_or(u64::MAX).max(1)
}

impl From<HashError> for AuthError {
    fn from(err: HashError) -> Self {
        match err {
            HashError::Busy => Self::Busy(passwords::BUSY_RETRY_AFTER),
            HashError::Failed(cause) => {
                tracing::error!(%cause, "password hashing failed");
                Self::Unavailable
            }
        }
    }
}

impl From<StoreError> for AuthError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::AccountExists(name) => Self::AccountExists(name),
            other => {
                tracing::warn!(error = %other, "account store failed");
                Self::Unavailable
            }
        }
    }
}
