//! Signed tokens: JWTs (HS256) with a fixed header, signed with the
//! deployment's secret so any instance verifies what another issued.
//!
//! Signing and verifying are `jsonwebtoken`'s (on `ring`, which TLS already brings), pinned
//! to HS256 with `exp` validated; what is ours is the exact header (the
//! bytes every release has issued, so tokens stay valid across upgrades in
//! both directions) and the claims.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as BASE64;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Validation};
use rand::RngCore;

mod claims;

pub use self::claims::Session;
use self::claims::{Claims, Kind, now_secs};
use super::{Identity, IdentityKind};
use crate::domain::Username;
use crate::store::OwnerProof;

/// The only header chatwire issues or accepts (so `alg: none` and algorithm
/// confusion are impossible by construction). `jsonwebtoken::encode` would
/// write `typ` first: the header is written here so that its bytes stay
/// those of every earlier release, whose instances compare them exactly.
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

/// Issues and verifies tokens with one secret.
pub struct Tokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl: Duration,
    header: String,
}

impl Tokens {
    /// Tokens signed with `secret`, valid for `ttl`.
    pub fn new(secret: &[u8], ttl: Duration) -> Self {
        let (encoding, decoding) = (EncodingKey::from_secret(secret), DecodingKey::from_secret(secret));
        // HS256 only, `exp` required. Expiry is checked in `verify`: a
        // token is expired from its `exp` second on (`exp <= now`), as
        // chatwire has always read it, which jsonwebtoken 9 can only say
        // with `reject_tokens_expiring_in_less_than = 1`, and that computes
        // `exp - 1` (a panic, or a token that never expires, at `exp` 0).
        let mut validation = Validation::new(Algorithm::HS256);
        validation.validate_exp = false;
        Self { encoding, decoding, validation, ttl, header: BASE64.encode(HEADER) }
    }

    /// How long tokens are valid.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// A token for `identity` (for an account, issued under its
    /// `generation`), expiring after the configured time.
    pub fn issue(&self, identity: &Identity, generation: u64) -> String {
        let iat = now_secs();
        let (kind, proof, aid) = match &identity.kind {
            IdentityKind::Account(id) => (Kind::Account, None, Some(id.clone())),
            IdentityKind::Guest(proof) => (Kind::Guest, Some(proof.0.clone()), None),
        };
        let mut jti = [0u8; 16];
        rand::rng().fill_bytes(&mut jti);
        self.sign(&Claims {
            sub: identity.user.key().to_owned(),
            name: identity.user.to_string(),
            kind,
            proof,
            aid,
            generation,
            jti: BASE64.encode(jti),
            iat,
            exp: iat + self.ttl.as_secs(),
        })
    }

    /// `claims` under [`HEADER`], signed.
    fn sign(&self, claims: &Claims) -> String {
        let payload = BASE64.encode(serde_json::to_vec(claims).unwrap_or_default());
        let signing_input = format!("{}.{payload}", self.header);
        match jsonwebtoken::crypto::sign(signing_input.as_bytes(), &self.encoding, Algorithm::HS256) {
            Ok(signature) => format!("{signing_input}.{signature}"),
            Err(err) => unreachable!("HS256 signs with any HMAC key: {err}"),
        }
    }

    /// The session a token proves, if it is genuine and unexpired. Tokens
    /// issued before accounts had ids (no `aid`) are refused: their holders
    /// log in again.
    pub fn verify(&self, token: &str) -> Result<Session, TokenError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::Malformed);
        }
        if token.split('.').next() != Some(self.header.as_str()) {
            return Err(TokenError::Malformed);
        }
        let claims = match jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation) {
            Ok(data) => data.claims,
            Err(err) => {
                return Err(match err.kind() {
                    ErrorKind::InvalidSignature => TokenError::BadSignature,
                    _ => TokenError::Malformed,
                });
            }
        };
        if claims.exp <= now_secs() {
            return Err(TokenError::Expired);
        }
        let user = Username::parse(&claims.name).map_err(|_| TokenError::Malformed)?;
        // Tokens issued before the skeleton key carry the lowercased name: still
        // good (`sub` is signed like `name`), so nobody is logged out by the upgrade.
        if user.key() != claims.sub && user.legacy_key() != claims.sub {
            return Err(TokenError::Malformed);
        }
        let kind = match (claims.kind, claims.proof, claims.aid) {
            (Kind::Account, None, Some(id)) => IdentityKind::Account(id),
            (Kind::Guest, Some(proof), None) => IdentityKind::Guest(OwnerProof(proof)),
            _ => return Err(TokenError::Malformed),
        };
        if claims.jti.is_empty() || claims.jti.len() > 64 {
            return Err(TokenError::Malformed);
        }
        Ok(Session {
            identity: Identity { user, kind },
            jti: claims.jti,
            generation: claims.generation,
            expires_at: claims.exp,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> Identity {
        Identity { user: Username::parse("Alice").unwrap(), kind: IdentityKind::Account("01ACCOUNT".into()) }
    }

    #[test]
    fn a_token_proves_who_it_was_issued_to() {
        let tokens = Tokens::new(b"0123456789abcdef0123456789abcdef", Duration::from_secs(60));
        let session = tokens.verify(&tokens.issue(&alice(), 7)).unwrap();
        assert_eq!(session.identity, alice());
        assert_eq!(session.generation, 7);
        assert!(!session.is_expired());
        let guest = Identity {
            user: Username::parse("bob").unwrap(),
            kind: IdentityKind::Guest(OwnerProof("p".into())),
        };
        let first = tokens.verify(&tokens.issue(&guest, 0)).unwrap();
        assert_eq!(first.identity, guest);
        let second = tokens.verify(&tokens.issue(&guest, 0)).unwrap();
        assert_ne!(first.jti, second.jti, "each token can be revoked alone");
    }

    /// Bob1's account token, under key `sub`, expiring at `exp`.
    fn signed(tokens: &Tokens, sub: &str, exp: u64) -> String {
        let claims = Claims {
            sub: sub.into(),
            name: "Bob1".into(),
            kind: Kind::Account,
            proof: None,
            aid: Some("01ACCOUNT".into()),
            generation: 0,
            jti: "j".into(),
            iat: now_secs(),
            exp,
        };
        tokens.sign(&claims)
    }

    #[test]
    fn tokens_issued_under_the_lowercase_key_still_verify() {
        let tokens = Tokens::new(b"0123456789abcdef0123456789abcdef", Duration::from_secs(60));
        let sign = |sub: &str| signed(&tokens, sub, now_secs() + 60);
        assert_eq!(tokens.verify(&sign("bob1")).unwrap().identity.user.as_str(), "Bob1");
        assert_eq!(tokens.verify(&sign("bobl")).unwrap().identity.user.as_str(), "Bob1");
        assert_eq!(tokens.verify(&sign("alice")), Err(TokenError::Malformed));
    }

    #[test]
    fn a_token_is_expired_from_its_exp_second_on_even_at_zero() {
        let tokens = Tokens::new(b"0123456789abcdef0123456789abcdef", Duration::from_secs(60));
        for exp in [0, 1, now_secs()] {
            assert_eq!(tokens.verify(&signed(&tokens, "bob1", exp)), Err(TokenError::Expired), "exp {exp}");
        }
        assert!(tokens.verify(&signed(&tokens, "bob1", now_secs() + 2)).is_ok());
    }

    #[test]
    fn forged_tampered_and_expired_tokens_are_refused() {
        let tokens = Tokens::new(b"secret one secret one secret one!", Duration::from_secs(60));
        let other = Tokens::new(b"secret two secret two secret two!", Duration::from_secs(60));
        assert_eq!(tokens.verify(&other.issue(&alice(), 0)), Err(TokenError::BadSignature));

        let token = tokens.issue(&alice(), 0);
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
        assert_eq!(expired.verify(&expired.issue(&alice(), 0)), Err(TokenError::Expired));
    }

    /// Tokens the hand-written HS256 code issued (before `jsonwebtoken`),
    /// with a fixed secret: their exact bytes, which must keep verifying.
    const FIXTURE_SECRET: &[u8] = b"chatwire fixture secret, 32 byte";
    /// An account's, expiring in 2100.
    const OLD_ACCOUNT_TOKEN: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJib2JsIiwibmFtZSI6IkJvYjEiLCJraW5kIjoiYWNjb3VudCIsImFpZCI6IjAxSFpYRklYVFVSRUFDQ09VTlQwMDAwMDAwIiwiZ2VuZXJhdGlvbiI6MywianRpIjoiZml4dHVyZS1qdGktMSIsImlhdCI6MTcwMDAwMDAwMCwiZXhwIjo0MTAyNDQ0ODAwfQ.pGYtHVlb_eIEK1Zm8HkDiUCe4W9le5tBQvpuFw5YOts";
    /// A guest's, expiring in 2100.
    const OLD_GUEST_TOKEN: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJib2JsIiwibmFtZSI6IkJvYjEiLCJraW5kIjoiZ3Vlc3QiLCJwcm9vZiI6Imd1ZXN0LXByb29mIiwiZ2VuZXJhdGlvbiI6MCwianRpIjoiZml4dHVyZS1qdGktMSIsImlhdCI6MTcwMDAwMDAwMCwiZXhwIjo0MTAyNDQ0ODAwfQ.Vmbm_H4BHCNt9qyPybLAUGMegsQhofZxCVHixN1b35o";
    /// A guest's, expired in 2023.
    const OLD_EXPIRED_TOKEN: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJib2JsIiwibmFtZSI6IkJvYjEiLCJraW5kIjoiZ3Vlc3QiLCJwcm9vZiI6Imd1ZXN0LXByb29mIiwiZ2VuZXJhdGlvbiI6MCwianRpIjoiZml4dHVyZS1qdGktMSIsImlhdCI6MTcwMDAwMDAwMCwiZXhwIjoxNzAwMDAwMDYwfQ.nc0-pmrDFdF8LLGuSyLC3iU0iHKMkEPJJstYg7xZzKs";

    #[test]
    fn tokens_issued_by_earlier_releases_still_verify() {
        let tokens = Tokens::new(FIXTURE_SECRET, Duration::from_secs(60));
        let account = tokens.verify(OLD_ACCOUNT_TOKEN).unwrap();
        assert_eq!(account.identity.user.as_str(), "Bob1");
        assert_eq!(account.identity.kind, IdentityKind::Account("01HZXFIXTUREACCOUNT0000000".into()));
        assert_eq!(
            (account.jti.as_str(), account.generation, account.expires_at),
            ("fixture-jti-1", 3, 4_102_444_800)
        );
        let guest = tokens.verify(OLD_GUEST_TOKEN).unwrap();
        assert_eq!(guest.identity.kind, IdentityKind::Guest(OwnerProof("guest-proof".into())));
        assert_eq!(tokens.verify(OLD_EXPIRED_TOKEN), Err(TokenError::Expired));
        let other = Tokens::new(b"another deployment's secret!!!!!", Duration::from_secs(60));
        assert_eq!(other.verify(OLD_ACCOUNT_TOKEN), Err(TokenError::BadSignature));
    }

    #[test]
    fn tokens_are_issued_byte_for_byte_as_before() {
        let tokens = Tokens::new(FIXTURE_SECRET, Duration::from_secs(60));
        let claims = Claims {
            sub: "bobl".into(),
            name: "Bob1".into(),
            kind: Kind::Account,
            proof: None,
            aid: Some("01HZXFIXTUREACCOUNT0000000".into()),
            generation: 3,
            jti: "fixture-jti-1".into(),
            iat: 1_700_000_000,
            exp: 4_102_444_800,
        };
        assert_eq!(
            tokens.sign(&claims),
            OLD_ACCOUNT_TOKEN,
            "instances of earlier releases verify new tokens"
        );
    }

    #[test]
    fn only_the_one_header_is_accepted_even_validly_signed() {
        let tokens = Tokens::new(FIXTURE_SECRET, Duration::from_secs(60));
        let (_, rest) = OLD_ACCOUNT_TOKEN.split_once('.').unwrap();
        let (payload, _) = rest.split_once('.').unwrap();
        for header in [r#"{"typ":"JWT","alg":"HS256"}"#, r#"{"alg":"HS384","typ":"JWT"}"#] {
            let input = format!("{}.{payload}", BASE64.encode(header));
            let alg = if header.contains("HS384") { Algorithm::HS384 } else { Algorithm::HS256 };
            let signature = jsonwebtoken::crypto::sign(input.as_bytes(), &tokens.encoding, alg).unwrap();
            assert_eq!(
                tokens.verify(&format!("{input}.{signature}")),
                Err(TokenError::Malformed),
                "{header}"
            );
        }
    }
}
