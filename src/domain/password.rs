//! [`Password`]: what an account's password must be.

use std::fmt;

use super::ValidationError;

/// Shortest password accepted, in characters.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Longest password accepted, in characters (hashing cost stays bounded).
pub const MAX_PASSWORD_CHARS: usize = 1024;

/// A password as typed. Never logged or displayed: `Debug` hides it.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    /// Validates a new password.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let chars = raw.chars().count();
        if chars < MIN_PASSWORD_CHARS {
            return Err(ValidationError::Password("must be at least 8 characters"));
        }
        if chars > MAX_PASSWORD_CHARS {
            return Err(ValidationError::Password("must be at most 1024 characters"));
        }
        Ok(Self(raw.to_owned()))
    }

    /// The password, for hashing and verifying only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_have_a_minimum_and_a_maximum_length() {
        assert!(Password::parse("1234567").is_err());
        assert!(Password::parse("12345678").is_ok());
        assert!(Password::parse(&"p".repeat(MAX_PASSWORD_CHARS + 1)).is_err());
        assert_eq!(format!("{:?}", Password::parse("secret-secret").unwrap()), "Password(***)");
    }
}
