//! What a token says: its claims, as they are on the wire, and the
//! [`Session`] a verified one proves.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::auth::Identity;

/// A token's claims. The names are the wire's: renaming one invalidates
/// every token issued.
#[derive(Serialize, Deserialize)]
pub(super) struct Claims {
    /// The name's key (`Username::key`).
    pub(super) sub: String,
    /// The name as registered or chosen.
    pub(super) name: String,
    /// `account` or `guest`.
    pub(super) kind: Kind,
    /// Guests: the proof their name is held under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) proof: Option<String>,
    /// Accounts: the account's id, so a token never opens another account
    /// registered later under the same name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) aid: Option<String>,
    /// Accounts: the account's generation when issued (a password change
    /// raises it, revoking every earlier token).
    #[serde(default)]
    pub(super) generation: u64,
    /// This token's own id, for revoking it alone (logout).
    pub(super) jti: String,
    /// Issued at, in seconds since the Unix epoch.
    pub(super) iat: u64,
    /// Expires at, in seconds since the Unix epoch (`exp <= now`: expired).
    pub(super) exp: u64,
}

/// A verified token: who it names, and what it takes to revoke it.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    /// Who the token proves.
    pub identity: Identity,
    /// The token's own id (its entry in the revocation list).
    pub jti: String,
    /// Accounts: the account generation it was issued under.
    pub generation: u64,
    /// When it expires, in seconds since the Unix epoch.
    pub expires_at: u64,
}

impl Session {
    /// True once the token has expired.
    pub fn is_expired(&self) -> bool {
        self.expires_at <= now_secs()
    }

    /// How long the token has left (zero once expired).
    pub fn remaining(&self) -> Duration {
        Duration::from_secs(self.expires_at.saturating_sub(now_secs()))
    }
}

#[derive(Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "lowercase")]
pub(super) enum Kind {
    Account,
    Guest,
}

/// Seconds since the Unix epoch, as `iat` and `exp` count them.
pub(super) fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
