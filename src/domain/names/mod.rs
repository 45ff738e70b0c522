//! Usernames, room names and message texts, with the rules that make them valid.
//!
//! Names are what people recognise each other by, so two names that *look*
//! the same must not belong to two people. Every name is
//! 1. trimmed, put in Unicode NFC, and its runs of spaces collapsed to one,
//!    so the same visible name is always stored and shown the same way;
//! 2. refused if it holds a character that is invisible, reorders the text
//!    around it, or renders as a blank other than the ordinary space
//!    (`rules::refusal`);
//! 3. for users only, given an identity [`Username::key`]: the Unicode TR39
//!    confusable skeleton of its case fold, so `alice`, `ALICE`, `аlice`
//!    (Cyrillic а) and `ａlice` (fullwidth) are one user.
//!
//! - `rules`: the character rules every name follows (steps 1 and 2)
//! - `key`: what makes two usernames one (step 3)
//! - `username`, `room`, `text`: the three types, each with its limit

mod key;
mod room;
mod rules;
mod text;
mod username;

pub use room::{MAX_ROOM_CHARS, RoomName};
pub use text::{MAX_TEXT_CHARS, Text};
pub use username::{MAX_USERNAME_CHARS, Username};
