//! Ids. Message ids are ULIDs, so an id is unique across instances and its
//! string form sorts by creation time (`history { after }` relies on that).
//! [`UserId`]s name the identity behind a username, which names alone cannot:
//! names are reused.

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
parsed_from_string!(MessageId);
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

/// Who someone is, whatever name they hold: an account (`a:<ulid>`, fixed at
/// registration, so an account registered later under the same name is
/// someone else) or a guest session (`g:<hash>`, from the session's secret,
/// so it ends with the session). Private conversations and their files
/// belong to these ids, never to names.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserId(String);

impl UserId {
    /// The id of the account whose own id is `account_id`.
    pub fn account(account_id: &str) -> Self {
        Self(format!("a:{account_id}"))
    }

    /// The id of the guest session whose secret's fingerprint is `proof`.
    /// Hashed once more so the fingerprint itself never reaches history keys.
    pub fn guest(proof: &str) -> Self {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(format!("guest-id:{proof}").as_bytes());
        let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
        Self(format!("g:{hex}"))
    }

    /// The id as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl fmt::Debug for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
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
    fn guest_ids_differ_by_session_and_never_equal_an_account_id() {
        assert_eq!(UserId::guest("p1"), UserId::guest("p1"));
        assert_ne!(UserId::guest("p1"), UserId::guest("p2"));
        assert_ne!(UserId::guest("x"), UserId::account("x"));
        assert!(!UserId::guest("p1").as_str().contains("p1"));
    }

    #[test]
    fn ids_round_trip_and_reject_junk() {
        let id = IdGenerator::new().next();
        assert_eq!(MessageId::parse(&id.to_string()).unwrap(), id);
        assert!(MessageId::parse("not-an-id").is_err());
        assert!(MessageId::parse("").is_err());
    }
}
