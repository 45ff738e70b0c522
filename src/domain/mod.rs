//! Domain values: everything a client sends is parsed into one of these types
//! at the edge, so the rest of the server never sees an invalid name or text.
//!
//! Each type's `parse` is the single place its rules live; the limits are public
//! constants so the protocol document and the error messages quote the same numbers.

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
