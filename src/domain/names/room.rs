//! [`RoomName`]: a chat room's name.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::rules::parse_name;
use crate::domain::ValidationError;

/// Longest room name, in characters (after NFC).
pub const MAX_ROOM_CHARS: usize = 64;

/// A chat room's name. Rooms are case-sensitive, like socket.io rooms, and
/// have no skeleton; their names follow the same character rules as
/// usernames (NFC, no invisible or blank characters), so two rooms cannot look
/// the same by hiding characters.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RoomName(String);

impl RoomName {
    /// Validates a room name (surrounding whitespace is dropped).
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        parse_name(raw, MAX_ROOM_CHARS, "must be at most 64 characters")
            .map(Self)
            .map_err(ValidationError::Room)
    }
}
checked_string!(RoomName);
impl fmt::Display for RoomName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl fmt::Debug for RoomName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_name_limits_are_enforced() {
        assert!(RoomName::parse("general").is_ok());
        assert!(RoomName::parse(&"r".repeat(MAX_ROOM_CHARS + 1)).is_err());
        assert!(RoomName::parse("\t").is_err());
        assert_ne!(RoomName::parse("General").unwrap(), RoomName::parse("general").unwrap());
    }

    #[test]
    fn room_names_follow_the_character_rules_without_a_skeleton() {
        for name in
            ["gen\u{AD}eral", "general\u{2066}", "general\u{FE0F}", "gen\u{2028}eral", "\u{2800}", "\u{3164}"]
        {
            assert!(
                matches!(RoomName::parse(name), Err(ValidationError::Room(_))),
                "{name:?} should be refused"
            );
        }
        assert_eq!(RoomName::parse("cafe\u{301}").unwrap(), RoomName::parse("caf\u{E9}").unwrap());
        assert_ne!(RoomName::parse("\u{430}bc").unwrap(), RoomName::parse("abc").unwrap());
        assert!(RoomName::parse("\u{1F3AE}").is_ok(), "rooms need no letter");
    }
}
