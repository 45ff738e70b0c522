//! Domain values: everything a client sends is parsed into one of these types
//! at the edge, so the rest of the server never sees an invalid name or text.
//!
//! Each type's `parse` is the single place its rules live; the limits are public
//! constants so the protocol document and the error messages quote the same numbers.

/// `TryFrom<String>` through the type's `parse`: what serde's
/// `#[serde(try_from = "String")]` calls, so a payload is parsed by the
/// same rules as everything else.
macro_rules! parsed_from_string {
    ($type:ty) => {
        impl TryFrom<String> for $type {
            type Error = $crate::domain::ValidationError;
            fn try_from(raw: String) -> Result<Self, Self::Error> {
                Self::parse(&raw)
            }
        }
    };
}

/// A value that is a checked `String` (`struct T(String)`): read it with
/// `as_str`, make it with `parse` or `try_from`, give it back with `into`.
macro_rules! checked_string {
    ($type:ident) => {
        impl $type {
            /// The value, as parsed.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        parsed_from_string!($type);
        impl From<$type> for String {
            fn from(value: $type) -> Self {
                value.0
            }
        }
    };
}

/// Test helpers shared by the domain's tests.
#[cfg(test)]
pub(crate) mod testing {
    use super::{Username, ValidationError};

    /// A valid username.
    pub(crate) fn user(name: &str) -> Username {
        Username::parse(name).unwrap()
    }

    /// Why `name` is refused as a username.
    pub(crate) fn refusal_of(name: &str) -> &'static str {
        match Username::parse(name) {
            Err(ValidationError::Username(why)) => why,
            other => panic!("{name:?} should be refused, got {other:?}"),
        }
    }
}

mod ids;
mod media;
mod message;
mod names;
mod password;
pub mod roster;

pub use ids::{IdGenerator, MessageId, UserId};
pub use media::{FileName, MAX_FILE_NAME_CHARS, MediaKind, MediaType};
pub use message::{Attachment, Conversation, Message, Recipients, Target};
pub use names::{MAX_ROOM_CHARS, MAX_TEXT_CHARS, MAX_USERNAME_CHARS, RoomName, Text, Username};
pub use password::{MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS, Password};

/// Why a client-supplied value was refused. The text completes the sentence
/// "<field> …" and is shown to the user as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    /// A username broke the naming rules.
    #[error("username {0}")]
    Username(&'static str),
    /// A room name broke the naming rules.
    #[error("room name {0}")]
    Room(&'static str),
    /// A message text was empty or blank.
    #[error("message text {0}")]
    Text(&'static str),
    /// A message text was longer than [`MAX_TEXT_CHARS`]; holds its length
    /// in characters, so the sender learns how much to cut.
    #[error("message text must be at most {MAX_TEXT_CHARS} characters (this one has {0})")]
    TextTooLong(usize),
    /// A page of the online list was asked for wrongly.
    #[error("{0}")]
    Roster(&'static str),
    /// A history cursor was not a message id.
    #[error("`{0}` is not a message id")]
    MessageId(String),
    /// A file name was empty, too long or had control characters.
    #[error("file name {0}")]
    FileName(&'static str),
    /// A file is not of an accepted type (detected from its bytes).
    #[error("files of type {0} are not accepted (images, audio, video and PDF are)")]
    FileType(String),
    /// A file is larger than allowed.
    #[error("the file is larger than the limit of {0} bytes")]
    FileTooLarge(usize),
    /// A password broke the password rules.
    #[error("password {0}")]
    Password(&'static str),
}
