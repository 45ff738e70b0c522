//! [`Username`]: a user's display name, and its identity key.

use std::fmt;
use std::hash::{Hash, Hasher};

use caseless::Caseless;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::key::identity_key;
use super::rules::{is_letter_or_digit, parse_name};
use crate::domain::ValidationError;

/// Longest username, in characters (Unicode scalar values, after NFC).
pub const MAX_USERNAME_CHARS: usize = 32;

/// A user's display name. Identity is [`Username::key`]: case-insensitive
/// and blind to look-alike characters, so nobody can take a name that looks
/// like an online or registered one.
#[derive(Clone)]
pub struct Username {
    /// The name as shown: trimmed, NFC, single spaces.
    display: String,
    /// [`identity_key`] of `display`, computed once.
    key: String,
}

impl Username {
    /// Validates a name typed by a user (surrounding whitespace is dropped).
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let display = parse_name(raw, MAX_USERNAME_CHARS, "must be at most 32 characters")
            .map_err(ValidationError::Username)?;
        if !display.chars().any(is_letter_or_digit) {
            return Err(ValidationError::Username("must contain at least one letter or digit"));
        }
        let key = identity_key(&display);
        Ok(Self { display, key })
    }

    /// The name as shown: as the user typed it, in NFC, with surrounding
    /// whitespace dropped and runs of spaces collapsed.
    pub fn as_str(&self) -> &str {
        &self.display
    }

    /// The identity used for uniqueness and lookups everywhere (presence,
    /// `user:<key>` channels, account keys): the name's confusable skeleton
    /// (see the module docs). Not for display.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Orders names for people: by their case fold, as shown (then by key,
    /// so the order is total). [`Ord`] orders by key, which keeps it
    /// consistent with equality but files `mallory` under `rnallory`; lists
    /// shown to users are sorted with this instead.
    pub fn display_order(a: &Self, b: &Self) -> std::cmp::Ordering {
        a.fold().cmp(&b.fold()).then_with(|| a.key.cmp(&b.key))
    }

    /// The name as shown, case folded: what [`Self::display_order`] sorts by
    /// first, and what a search matches.
    pub fn fold(&self) -> String {
        self.display.chars().default_case_fold().collect()
    }

    /// The key names had before the skeleton: the lowercased name.
    /// Accounts registered then were stored under it; the Redis store looks
    /// there for one that could not be moved to [`Username::key`].
    pub fn legacy_key(&self) -> String {
        self.display.to_lowercase()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::testing::{refusal_of, user};

    #[test]
    fn username_is_trimmed_and_case_insensitive() {
        let a = user("  Alice ");
        assert_eq!(a.as_str(), "Alice");
        assert_eq!(a, user("alice"));
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
        // Counted after NFC: 32 decomposed é (64 code points) are 32 characters.
        assert!(Username::parse(&"e\u{301}".repeat(MAX_USERNAME_CHARS)).is_ok());
        assert!(Username::parse(&"e\u{301}".repeat(MAX_USERNAME_CHARS + 1)).is_err());
    }

    #[test]
    fn lists_are_ordered_as_shown_ignoring_case() {
        let mut names: Vec<Username> = ["sam", "Mallory", "quinn", "bob1", "Bob", "alice"].map(user).to_vec();
        names.sort_by(Username::display_order);
        let shown: Vec<&str> = names.iter().map(Username::as_str).collect();
        assert_eq!(shown, ["alice", "Bob", "bob1", "Mallory", "quinn", "sam"]);
    }

    #[test]
    fn legacy_key_is_the_lowercased_name() {
        assert_eq!(user("Bob1").legacy_key(), "bob1");
        assert_eq!(user("cafe\u{301}").legacy_key(), "caf\u{E9}");
    }

    #[test]
    fn names_need_a_letter_or_digit() {
        for name in ["!!!", "\u{1F642}", "...", "\u{2014}", "\u{301}"] {
            assert_eq!(refusal_of(name), "must contain at least one letter or digit", "{name:?}");
        }
        assert!(Username::parse("7").is_ok());
        assert!(Username::parse("\u{2163}").is_ok(), "Roman numeral four is a number (Nl)");
    }

    #[test]
    fn ordinary_names_are_accepted_as_typed() {
        for name in [
            "alice",
            "Bob 2",
            "user_42",
            "O'Brien",
            "Jos\u{E9}",
            "Zo\u{EB} Kov\u{E1}\u{159}",
            "\u{674E}\u{5C0F}\u{9F8D}",
            "\u{5C71}\u{7530}\u{592A}\u{90CE}",
            "\u{C9C0}\u{BBFC}",
            "\u{395}\u{3BB}\u{3AD}\u{3BD}\u{3B7}",
            "\u{414}\u{43C}\u{438}\u{442}\u{440}\u{438}\u{439}",
            "\u{645}\u{62D}\u{645}\u{62F}",
            "\u{5E9}\u{5DC}\u{5D5}\u{5DD}",
            "\u{928}\u{92E}\u{938}\u{94D}\u{924}\u{947}",
            "alice \u{1F642}",
        ] {
            assert_eq!(user(name).as_str(), name, "{name:?}");
        }
    }
}
