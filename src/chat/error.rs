//! [`ChatError`]: every way a client request can fail, with the stable
//! snake_case code clients match on. Mapped to the wire in one place,
//! [`ChatError::body`].

use serde::Serialize;

use crate::domain::ValidationError;
use crate::store::StoreError;

/// A refused or failed client request. Each variant has one wire code.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ChatError {
    /// The payload has the wrong shape: wrong type, missing field, bad cursor.
    #[error("{0}")]
    InvalidPayload(String),
    /// A username, room name or text broke its rules.
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
    /// The socket is in as many rooms as it may be.
    #[error("a socket can be in at most {0} rooms")]
    TooManyRooms(u32),
    /// The user has as many sockets logged in as allowed.
    #[error("too many connections logged in as this user (at most {0})")]
    TooManySockets(u32),
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
            Self::Invalid(ValidationError::MessageId(_)) => "invalid_payload",
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
            Self::RateLimited => "rate_limited",
            Self::TooManyRooms(_) => "too_many_rooms",
            Self::TooManySockets(_) => "too_many_sockets",
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
