//! Domain values: everything a client sends is parsed into one of these types
//! at the edge, so the rest of the server never sees an invalid name or text.
//!
//! Each type's `parse` is the single place its rules live; the limits are public
//! constants so the protocol document and the error messages quote the same numbers.

mod ids;
mod message;
mod names;

pub use ids::{IdGenerator, MessageId};
pub use message::{Conversation, Message, Recipients, Target};
pub use names::{MAX_ROOM_CHARS, MAX_TEXT_CHARS, MAX_USERNAME_CHARS, RoomName, Text, Username};

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
    /// A message text was empty or too long.
    #[error("message text {0}")]
    Text(&'static str),
    /// A history cursor was not a message id.
    #[error("`{0}` is not a message id")]
    MessageId(String),
}
