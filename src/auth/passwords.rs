//! Password hashing with argon2id (OWASP's recommended parameters, the
//! crate's defaults). Hashing takes tens of milliseconds of CPU on purpose,
//! so it runs on the blocking pool, never on the async workers.

use std::sync::OnceLock;

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

use crate::domain::Password;

/// Hashes a password into a PHC string (`$argon2id$v=19$...`).
pub async fn hash(password: Password) -> Result<String, String> {
    tokio::task::spawn_blocking(move || hash_now(&password)).await.map_err(|err| err.to_string())?
}

fn hash_now(password: &Password) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.expose().as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|err| err.to_string())
}

/// True if `password` matches `hash`. With no hash (unknown account) it
/// still spends the same work on a stand-in, so response times do not tell
/// which names are registered.
pub async fn verify(password: Password, hash: Option<String>) -> bool {
    tokio::task::spawn_blocking(move || {
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| stand_in().to_owned());
        let Ok(parsed) = PasswordHash::new(&hash) else { return false };
        Argon2::default().verify_password(password.expose().as_bytes(), &parsed).is_ok() && known
    })
    .await
    .unwrap_or(false)
}

fn stand_in() -> &'static str {
    static STAND_IN: OnceLock<String> = OnceLock::new();
    STAND_IN.get_or_init(|| {
        let password =
            Password::parse("stand-in password for unknown accounts").unwrap_or_else(|_| unreachable!());
        hash_now(&password).unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let password = Password::parse("correct horse battery").unwrap();
        let hashed = hash(password.clone()).await.unwrap();
        assert!(hashed.starts_with("$argon2id$"));
        assert!(!hashed.contains("correct horse"));
        assert!(verify(password, Some(hashed.clone())).await);
        assert!(!verify(Password::parse("wrong horse battery").unwrap(), Some(hashed)).await);
        assert!(!verify(Password::parse("stand-in password for unknown accounts").unwrap(), None).await);
    }
}
