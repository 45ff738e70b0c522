//! Message ids: ULIDs, so an id is unique across instances and its string
//! form sorts by creation time (`history { after }` relies on that).

use std::fmt;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use ulid::Ulid;

use super::ValidationError;

/// A message's id: 26 characters of Crockford base32 whose lexical order is
/// time order (millisecond timestamp first, then a random or incremented tail).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MessageId(Ulid);

impl MessageId {
    /// Parses an id sent by a client (for example a history cursor).
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        Ulid::from_string(raw)
            .map(Self)
            .map_err(|_| ValidationError::MessageId(raw.chars().take(40).collect()))
    }

    /// Milliseconds since the Unix epoch at which the id was made.
    pub fn timestamp_ms(&self) -> u64 {
        self.0.timestamp_ms()
    }
}
impl TryFrom<String> for MessageId {
    type Error = ValidationError;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(&raw)
    }
}
impl From<MessageId> for String {
    fn from(id: MessageId) -> Self {
        id.0.to_string()
    }
}
impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}
impl fmt::Debug for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// Makes strictly increasing ids on this instance, even within one millisecond.
#[derive(Default)]
pub struct IdGenerator(Mutex<ulid::Generator>);

impl IdGenerator {
    /// A generator starting now.
    pub fn new() -> Self {
        Self::default()
    }

    /// The next id. Falls back to a random ULID in the same millisecond if the
    /// monotonic counter overflows (2^80 ids in one millisecond: never in practice).
    pub fn next(&self) -> MessageId {
        let mut generator = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        MessageId(generator.generate().unwrap_or_else(|_| Ulid::new()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_increase_and_sort_as_strings() {
        let ids = IdGenerator::new();
        let many: Vec<MessageId> = (0..1000).map(|_| ids.next()).collect();
        for pair in many.windows(2) {
            assert!(pair[0] < pair[1]);
            assert!(pair[0].to_string() < pair[1].to_string());
        }
    }

    #[test]
    fn ids_round_trip_and_reject_junk() {
        let id = IdGenerator::new().next();
        assert_eq!(MessageId::parse(&id.to_string()).unwrap(), id);
        assert!(MessageId::parse("not-an-id").is_err());
        assert!(MessageId::parse("").is_err());
    }
}
