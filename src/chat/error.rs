//! [`ChatError`]: every way a client request can fail, with the stable
//! snake_case code clients match on. Mapped to the wire in one place,
//! [`ChatError::body`].

use std::time::Duration;

use serde::Serialize;

use crate::domain::ValidationError;
use crate::store::StoreError;

/// A refused or failed client request. Each variant has one wire code.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ChatError {
    /// The payload has the wrong shape: wrong type, missing field, bad cursor.
    #[error("{0}")]
    InvalidPayload(String),
    /// A username, room name, text or file broke its rules.
    #[error("{0}")]
    Invalid(ValidationError),
    /// The name is held by another session.
    #[error("the name `{0}` is taken")]
    NameTaken(String),
    /// The event needs a logged-in socket (`add user` first).
    #[error("log in first with `add user`")]
    NotLoggedIn,
    /// `add user` on a socket already logged in under another name.
    #[error("already logged in as `{0}`")]
    AlreadyLoggedIn(String),
    /// The socket is not in the room it sent to, left or asked about.
    #[error("you are not in room `{0}`")]
    NotInRoom(String),
    /// A recipient is not online.
    #[error("`{0}` is not online")]
    UnknownUser(String),
    /// A multicast names more users than allowed.
    #[error("a message can go to at most {0} users")]
    TooManyRecipients(usize),
    /// A guest tried to take a registered account's name.
    #[error("`{0}` is a registered name: log in to use it")]
    NameRegistered(String),
    /// Guests are disabled (ALLOW_GUESTS=false).
    #[error("guests are disabled on this server: log in with an account")]
    GuestsDisabled,
    /// The socket sends events faster than its allowance (EVENT_RATE / EVENT_BURST).
    #[error("too many events: slow down")]
    RateLimited,
    /// The socket has more bytes delivered than its allowance
    /// (DELIVERY_BYTES_PER_SEC / DELIVERY_BURST_BYTES); wire code `rate_limited`.
    #[error(
        "too much data sent to too many people at once (a file counts once per recipient): try again in {}",
        wait(.retry_in)
    )]
    DeliveryLimited {
        /// How long until the same message would pass.
        retry_in: Duration,
    },
    /// The sender's files of the day would go over FILE_QUOTA_MB_PER_DAY.
    #[error(
        "this file would take you over your quota of {} of files a day ({} used): it resets in {}",
        size(*.limit), size(*.used), wait(.resets_in)
    )]
    QuotaExceeded {
        /// The quota, in bytes.
        limit: u64,
        /// Bytes sent in the current window.
        used: u64,
        /// How long until the window ends and the count starts again.
        resets_in: Duration,
    },
    /// The socket is in as many rooms as it may be.
    #[error("a socket can be in at most {0} rooms")]
    TooManyRooms(u32),
    /// The user has as many sockets logged in as allowed.
    #[error("too many connections logged in as this user (at most {0})")]
    TooManySockets(u32),
    /// The token the socket stood on was revoked (logout, password change,
    /// deleted account) or expired; sent as `chat error` before disconnecting.
    #[error(
        "your session has ended (logged out, password changed, account deleted, or token expired): log in again"
    )]
    SessionEnded,
    /// The socket did not log in within LOGIN_TIMEOUT_SECS; it is disconnected.
    #[error("not logged in within {0} s: connect again to log in")]
    LoginTimeout(u64),
    /// The state store failed; the request may succeed if retried.
    #[error("the server cannot reach its state store, try again shortly")]
    Unavailable,
    /// A bug on our side; logged with details, reported without them.
    #[error("internal error")]
    Internal,
}

impl ChatError {
    /// The stable code clients match on.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidPayload(_) => "invalid_payload",
            Self::Invalid(ValidationError::Username(_)) => "invalid_username",
            Self::Invalid(ValidationError::Room(_)) => "invalid_room",
            Self::Invalid(ValidationError::Text(_)) => "invalid_text",
            Self::Invalid(ValidationError::TextTooLong(_)) => "text_too_long",
            Self::Invalid(ValidationError::MessageId(_) | ValidationError::Roster(_)) => "invalid_payload",
            Self::Invalid(ValidationError::FileName(_)) => "invalid_file_name",
            Self::Invalid(ValidationError::FileType(_)) => "file_type_not_allowed",
            Self::Invalid(ValidationError::FileTooLarge(_)) => "file_too_large",
            Self::Invalid(ValidationError::Password(_)) => "invalid_password",
            Self::NameTaken(_) => "name_taken",
            Self::NotLoggedIn => "not_logged_in",
            Self::AlreadyLoggedIn(_) => "already_logged_in",
            Self::NotInRoom(_) => "not_in_room",
            Self::UnknownUser(_) => "unknown_user",
            Self::TooManyRecipients(_) => "too_many_recipients",
            Self::NameRegistered(_) => "name_registered",
            Self::GuestsDisabled => "guests_disabled",
            Self::RateLimited | Self::DeliveryLimited { .. } => "rate_limited",
            Self::QuotaExceeded { .. } => "quota_exceeded",
            Self::TooManyRooms(_) => "too_many_rooms",
            Self::TooManySockets(_) => "too_many_sockets",
            Self::SessionEnded => "session_ended",
            Self::LoginTimeout(_) => "login_timeout",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal",
        }
    }

    /// `{ code, message }`, as sent in error acks and `chat error` events.
    pub fn body(&self) -> ErrorBody {
        ErrorBody { code: self.code(), message: self.to_string() }
    }

    /// A shape error with a message for the client.
    pub fn invalid_payload(message: impl Into<String>) -> Self {
        Self::InvalidPayload(message.into())
    }
}

/// The wire form of an error.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorBody {
    /// Stable snake_case code.
    pub code: &'static str,
    /// Human-readable explanation.
    pub message: String,
}

/// A byte count as people read it: "1.5 MiB", "300 KiB", "12 bytes".
fn size(bytes: u64) -> String {
    const KIB: f64 = 1024.0;
    let b = bytes as f64;
    if b >= KIB * KIB {
        format!("{:.1} MiB", b / (KIB * KIB)).replace(".0 ", " ")
    } else if b >= KIB {
        format!("{:.0} KiB", b / KIB)
    } else {
        format!("{bytes} bytes")
    }
}

/// A wait as people read it, rounded up: "3 h 5 min", "12 min", "4 s".
fn wait(duration: &Duration) -> String {
    let secs = duration.as_secs() + u64::from(duration.subsec_nanos() > 0);
    match secs {
        0..60 => format!("{} s", secs.max(1)),
        60..3600 => format!("{} min", secs.div_ceil(60)),
        _ => {
            let minutes = secs.div_ceil(60);
            format!("{} h {} min", minutes / 60, minutes % 60)
        }
    }
}

impl From<ValidationError> for ChatError {
    fn from(err: ValidationError) -> Self {
        Self::Invalid(err)
    }
}

impl From<StoreError> for ChatError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NameTaken(name) => Self::NameTaken(name),
            StoreError::UnknownUser(name) => Self::UnknownUser(name),
            StoreError::NotInRoom(room) => Self::NotInRoom(room),
            StoreError::Unavailable(cause) => {
                tracing::warn!(%cause, "state store unavailable");
                Self::Unavailable
            }
            bug @ (StoreError::AlreadyLoggedIn(_)
            | StoreError::NotLoggedIn(_)
            | StoreError::AccountExists(_)) => {
                tracing::error!(error = %bug, "store and socket state disagree");
                Self::Internal
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quota_refusal_says_the_limit_and_when_it_resets() {
        let err = ChatError::QuotaExceeded {
            limit: 100 * 1024 * 1024,
            used: 99 * 1024 * 1024 + 512 * 1024,
            resets_in: Duration::from_secs(5 * 3600 + 59),
        };
        assert_eq!(err.code(), "quota_exceeded");
        assert_eq!(
            err.to_string(),
            "this file would take you over your quota of 100 MiB of files a day (99.5 MiB used): it resets in 5 h 1 min"
        );
        let limited = ChatError::DeliveryLimited { retry_in: Duration::from_millis(1500) };
        assert_eq!(limited.code(), "rate_limited");
        assert!(limited.to_string().ends_with("try again in 2 s"), "{limited}");
        assert_eq!(wait(&Duration::from_secs(61)), "2 min");
        assert_eq!(size(300 * 1024), "300 KiB");
    }

    #[test]
    fn a_too_long_text_has_its_own_code() {
        let too_long = ChatError::from(ValidationError::TextTooLong(100_000));
        assert_eq!(too_long.code(), "text_too_long");
        assert!(too_long.to_string().contains("at most 4000 characters"), "{too_long}");
        assert_eq!(ChatError::from(ValidationError::Text("must not be empty")).code(), "invalid_text");
    }
}
