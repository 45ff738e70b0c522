//! Signed tokens: JWTs (HS256) with a fixed header, signed with the
//! deployment's secret so any instance verifies what another issued.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as BASE64;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::{Identity, IdentityKind};
use crate::domain::Username;
use crate::store::OwnerProof;

type HmacSha256 = Hmac<Sha256>;

/// The only header chatwire issues or accepts (so `alg: none` and algorithm
/// confusion are impossible by construction).
const HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;
/// Longer tokens are refused before any decoding.
const MAX_TOKEN_BYTES: usize = 4096;

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a token chatwire could have issued.
    #[error("malformed token")]
    Malformed,
    /// The signature does not match (forged, or another deployment's secret).
    #[error("invalid token signature")]
    BadSignature,
    /// Past its expiry.
    #[error("token expired")]
    Expired,
}

#[derive(Serialize, Deserialize)]
struct Claims {
    /// The name's key (`Username::key`).
    sub: String,
    /// The name as registered or chosen.
    name: String,
    /// `account` or `guest`.
    kind: Kind,
    /// Guests: the proof their name is held under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    proof: Option<String>,
    iat: u64,
    exp: u64,
}

#[derive(Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "lowercase")]
enum Kind {
    Account,
    Guest,
}

/// Issues and verifies tokens with one secret.
pub struct Tokens {
    secret: Vec<u8>,
    ttl: Duration,
    header: String,
}

impl Tokens {
    /// Tokens signed with `secret`, valid for `ttl`.
    pub fn new(secret: &[u8], ttl: Duration) -> Self {
        Self { secret: secret.to_vec(), ttl, header: BASE64.encode(HEADER) }
    }

    /// How long tokens are valid.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC accepts keys of any length: this cannot fail.
        HmacSha256::new_from_slice(&self.secret).unwrap_or_else(|_| unreachable!("HMAC takes any key length"))
    }

    /// A token for `identity`, expiring after the configured time.
    pub fn issue(&self, identity: &Identity) -> String {
        let iat = now_secs();
        let (kind, proof) = match &identity.kind {
            IdentityKind::Account => (Kind::Account, None),
            IdentityKind::Guest(proof) => (Kind::Guest, Some(proof.0.clone())),
        };
        let claims = Claims {
            sub: identity.user.key().to_owned(),
            name: identity.user.to_string(),
            kind,
            proof,
            iat,
            exp: iat + self.ttl.as_secs(),
        };
        let payload = BASE64.encode(serde_json::to_vec(&claims).unwrap_or_default());
        let signing_input = format!("{}.{payload}", self.header);
        let mut mac = self.mac();
        mac.update(signing_input.as_bytes());
        let signature = BASE64.encode(mac.finalize().into_bytes());
        format!("{signing_input}.{signature}")
    }

    /// The identity a token proves, if it is genuine and unexpired.
    pub fn verify(&self, token: &str) -> Result<Identity, TokenError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::Malformed);
        }
        let (signing_input, signature) = token.rsplit_once('.').ok_or(TokenError::Malformed)?;
        let (header, payload) = signing_input.split_once('.').ok_or(TokenError::Malformed)?;
        if header != self.header {
            return Err(TokenError::Malformed);
        }
        let signature = BASE64.decode(signature).map_err(|_| TokenError::Malformed)?;
        let mut mac = self.mac();
        mac.update(signing_input.as_bytes());
        mac.verify_slice(&signature).map_err(|_| TokenError::BadSignature)?;
        let payload = BASE64.decode(payload).map_err(|_| TokenError::Malformed)?;
        let claims: Claims = serde_json::from_slice(&payload).map_err(|_| TokenError::Malformed)?;
        if claims.exp <= now_secs() {
            return Err(TokenError::Expired);
        }
        let user = Username::parse(&claims.name).map_err(|_| TokenError::Malformed)?;
        // Tokens issued before the skeleton key carry the lowercased name: still
        // good (`sub` is signed like `name`), so nobody is logged out by the upgrade.
        if user.key() != claims.sub && user.legacy_key() != claims.sub {
            return Err(TokenError::Malformed);
        }
        let kind = match (claims.kind, claims.proof) {
            (Kind::Account, None) => IdentityKind::Account,
            (Kind::Guest, Some(proof)) => IdentityKind::Guest(OwnerProof(proof)),
            _ => return Err(TokenError::Malformed),
        };
        Ok(Identity { user, kind })
    }
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> Identity {
        Identity { user: Username::parse("Alice").unwrap(), kind: IdentityKind::Account }
    }

    #[test]
    fn a_token_proves_who_it_was_issued_to() {
        let tokens = Tokens::new(b"0123456789abcdef0123456789abcdef", Duration::from_secs(60));
        let identity = tokens.verify(&tokens.issue(&alice())).unwrap();
        assert_eq!(identity.user.as_str(), "Alice");
        assert_eq!(identity.kind, IdentityKind::Account);
        let guest = Identity {
            user: Username::parse("bob").unwrap(),
            kind: IdentityKind::Guest(OwnerProof("p".into())),
        };
        assert_eq!(tokens.verify(&tokens.issue(&guest)).unwrap(), guest);
    }

    #[test]
    fn tokens_issued_under_the_lowercase_key_still_verify() {
        let tokens = Tokens::new(b"0123456789abcdef0123456789abcdef", Duration::from_secs(60));
        let sign = |sub: &str| {
            let claims = Claims {
                sub: sub.into(),
                name: "Bob1".into(),
                kind: Kind::Account,
                proof: None,
                iat: now_secs(),
                exp: now_secs() + 60,
            };
            let input = format!("{}.{}", tokens.header, BASE64.encode(serde_json::to_vec(&claims).unwrap()));
            let mut mac = tokens.mac();
            mac.update(input.as_bytes());
            format!("{input}.{}", BASE64.encode(mac.finalize().into_bytes()))
        };
        assert_eq!(tokens.verify(&sign("bob1")).unwrap().user.as_str(), "Bob1");
        assert_eq!(tokens.verify(&sign("bobl")).unwrap().user.as_str(), "Bob1");
        assert_eq!(tokens.verify(&sign("alice")), Err(TokenError::Malformed));
    }

    #[test]
    fn forged_tampered_and_expired_tokens_are_refused() {
        let tokens = Tokens::new(b"secret one secret one secret one!", Duration::from_secs(60));
        let other = Tokens::new(b"secret two secret two secret two!", Duration::from_secs(60));
        assert_eq!(tokens.verify(&other.issue(&alice())), Err(TokenError::BadSignature));

        let token = tokens.issue(&alice());
        let (head, _) = token.rsplit_once('.').unwrap();
        let (header, payload) = head.split_once('.').unwrap();
        let claims = String::from_utf8(BASE64.decode(payload).unwrap())
            .unwrap()
            .replace("alice", "mallory")
            .replace("Alice", "Mallory");
        let tampered = format!("{header}.{}.{}", BASE64.encode(claims), token.rsplit_once('.').unwrap().1);
        assert_eq!(tokens.verify(&tampered), Err(TokenError::BadSignature));

        let unsigned = format!("{}.{payload}.", BASE64.encode(r#"{"alg":"none","typ":"JWT"}"#));
        assert_eq!(tokens.verify(&unsigned), Err(TokenError::Malformed));
        for junk in ["", "a.b", "a.b.c", &"x".repeat(5000)] {
            assert!(tokens.verify(junk).is_err());
        }

        let expired = Tokens::new(b"secret one secret one secret one!", Duration::ZERO);
        assert_eq!(expired.verify(&expired.issue(&alice())), Err(TokenError::Expired));
    }
}
