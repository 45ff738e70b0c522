//! [`Text`]: the text of a message.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::domain::ValidationError;

/// Longest message text, in characters.
pub const MAX_TEXT_CHARS: usize = 4000;

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
        let chars = raw.chars().count();
        if chars > MAX_TEXT_CHARS {
            return Err(ValidationError::TextTooLong(chars));
        }
        Ok(Self(raw.to_owned()))
    }
}
checked_string!(Text);
impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Text({} chars)", self.0.chars().count())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_limits_are_enforced() {
        assert!(Text::parse(" \n ").is_err());
        assert!(Text::parse(&"a".repeat(MAX_TEXT_CHARS)).is_ok());
        assert_eq!(
            Text::parse(&"a".repeat(MAX_TEXT_CHARS + 1)),
            Err(ValidationError::TextTooLong(MAX_TEXT_CHARS + 1))
        );
        assert_eq!(
            Text::parse(&"é".repeat(100_000)).unwrap_err().to_string(),
            "message text must be at most 4000 characters (this one has 100000)",
            "characters, not bytes"
        );
        assert_eq!(Text::parse(" two\nlines ").unwrap().as_str(), " two\nlines ");
    }
}
