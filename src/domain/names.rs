//! Usernames, room names and message texts, with the rules that make them valid.

use std::fmt;
use std::hash::{Hash, Hasher};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::ValidationError;

/// Longest username, in characters (Unicode scalar values).
pub const MAX_USERNAME_CHARS: usize = 32;
/// Longest room name, in characters.
pub const MAX_ROOM_CHARS: usize = 64;
/// Longest message text, in characters.
pub const MAX_TEXT_CHARS: usize = 4000;

/// Shared rules for names: trimmed, non-empty, bounded, and free of control
/// and invisible formatting characters (which would let two names look alike).
/// `too_long` is the refusal for names over `max`, spelled with the number.
fn parse_name(raw: &str, max: usize, too_long: &'static str) -> Result<String, &'static str> {
    let name = raw.trim();
    if name.is_empty() {
        return Err("must not be empty");
    }
    if name.chars().count() > max {
        return Err(too_long);
    }
    if name.chars().any(|c| c.is_control() || is_invisible(c)) {
        return Err("must not contain control or invisible characters");
    }
    Ok(name.to_owned())
}

/// Zero-width and bidirectional-override characters: legal Unicode, but in a
/// name they only serve to impersonate someone else.
fn is_invisible(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}')
}

/// A user's display name. Identity is case-insensitive: "Alice" and "alice"
/// are the same user, so nobody can take a look-alike of an online name.
#[derive(Clone)]
pub struct Username {
    display: String,
    key: String,
}

impl Username {
    /// Validates a name typed by a user (surrounding whitespace is dropped).
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let display = parse_name(raw, MAX_USERNAME_CHARS, "must be at most 32 characters")
            .map_err(ValidationError::Username)?;
        let key = display.to_lowercase();
        Ok(Self { display, key })
    }

    /// The name as the user typed it.
    pub fn as_str(&self) -> &str {
        &self.display
    }

    /// The case-folded identity used for uniqueness and lookups.
    pub fn key(&self) -> &str {
        &self.key
    }
}

impl PartialEq for Username {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}
impl Eq for Username {}
impl Hash for Username {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key.hash(state);
    }
}
impl PartialOrd for Username {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Username {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key.cmp(&other.key)
    }
}
impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display)
    }
}
impl fmt::Debug for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.display, f)
    }
}
impl Serialize for Username {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.display)
    }
}
impl<'de> Deserialize<'de> for Username {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// A chat room's name. Rooms are case-sensitive, like socket.io rooms.
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

    /// The room name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
impl TryFrom<String> for RoomName {
    type Error = ValidationError;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(&raw)
    }
}
impl From<RoomName> for String {
    fn from(room: RoomName) -> Self {
        room.0
    }
}
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

/// The text of a message: at least one visible character, at most
/// [`MAX_TEXT_CHARS`]. Kept verbatim (newlines included); clients render it as
/// text, never as markup.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Text(String);

impl Text {
    /// Validates a message text.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        if raw.trim().is_empty() {
            return Err(ValidationError::Text("must not be empty"));
        }
        if raw.chars().count() > MAX_TEXT_CHARS {
            return Err(ValidationError::Text("must be at most 4000 characters"));
        }
        Ok(Self(raw.to_owned()))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
impl TryFrom<String> for Text {
    type Error = ValidationError;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(&raw)
    }
}
impl From<Text> for String {
    fn from(text: Text) -> Self {
        text.0
    }
}
impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Text({} chars)", self.0.chars().count())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn username_is_trimmed_and_case_insensitive() {
        let a = Username::parse("  Alice ").unwrap();
        assert_eq!(a.as_str(), "Alice");
        assert_eq!(a, Username::parse("alice").unwrap());
    }

    #[test]
    fn username_limits_are_enforced() {
        assert!(Username::parse("").is_err());
        assert!(Username::parse("   ").is_err());
        assert!(Username::parse(&"x".repeat(MAX_USERNAME_CHARS)).is_ok());
        assert!(Username::parse(&"x".repeat(MAX_USERNAME_CHARS + 1)).is_err());
        assert!(Username::parse("bad\nname").is_err());
        assert!(Username::parse("ali\u{200B}ce").is_err());
        // Characters, not bytes: 32 multi-byte characters are fine.
        assert!(Username::parse(&"é".repeat(MAX_USERNAME_CHARS)).is_ok());
    }

    #[test]
    fn room_name_limits_are_enforced() {
        assert!(RoomName::parse("general").is_ok());
        assert!(RoomName::parse(&"r".repeat(MAX_ROOM_CHARS + 1)).is_err());
        assert!(RoomName::parse("\t").is_err());
        assert_ne!(RoomName::parse("General").unwrap(), RoomName::parse("general").unwrap());
    }

    #[test]
    fn text_limits_are_enforced() {
        assert!(Text::parse(" \n ").is_err());
        assert!(Text::parse(&"a".repeat(MAX_TEXT_CHARS)).is_ok());
        assert!(Text::parse(&"a".repeat(MAX_TEXT_CHARS + 1)).is_err());
        assert_eq!(Text::parse(" two\nlines ").unwrap().as_str(), " two\nlines ");
    }
}
