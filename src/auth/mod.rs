//! Who someone is: registered accounts (argon2id passwords), signed tokens,
//! guests, and the rate limits on login attempts.
//!
//! - [`tokens`]: issuing and verifying tokens (any instance verifies any other's)
//! - [`passwords`]: hashing and verifying passwords off the async workers,
//!   a bounded number at once
//! - [`limits`]: the attempt counters a login passes before its password is checked
//! - `identity`: who a verified user is; `error`: [`AuthError`]
//! - `own_account`: what an account does to itself (its password, its deletion)
//!
//! [`Auth`] is the service the HTTP API and the socket handshake share.

mod error;
mod identity;
pub mod limits;
mod own_account;
pub mod passwords;
pub mod tokens;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

pub use error::{AuthError, whole_seconds};
pub use identity::{Identity, IdentityKind};
use limits::Limits;
use passwords::Hasher;
pub use tokens::{Session, TokenError, Tokens};

use crate::domain::{Password, Username};
use crate::store::{Account, AccountStore, OwnerProof, Store, StoreError};

/// Accounts and tokens. Cheap to clone.
#[derive(Clone)]
pub struct Auth(Arc<Inner>);

struct Inner {
    tokens: Tokens,
    accounts: Arc<dyn AccountStore>,
    presence: Arc<dyn Store>,
    /// Runs argon2, a bounded number at once.
    hasher: Hasher,
    /// The attempt counters.
    limits: Limits,
}

impl Auth {
    /// Accounts in `accounts`, presence in `presence`, tokens signed by `tokens`.
    pub fn new(tokens: Tokens, accounts: Arc<dyn AccountStore>, presence: Arc<dyn Store>) -> Self {
        let limits = Limits::new(accounts.clone());
        Self(Arc::new(Inner { tokens, accounts, presence, hasher: Hasher::for_this_machine(), limits }))
    }

    /// Registers an account. The name must be free: not registered, and not
    /// held by a guest online right now.
    pub async fn register(&self, name: &str, password: &str, from: IpAddr) -> Result<Username, AuthError> {
        self.0.limits.address(from).await?;
        let user = Username::parse(name).map_err(AuthError::Invalid)?;
        let password = Password::parse(password).map_err(AuthError::Invalid)?;
        if self.0.presence.owner_of(&user).await?.is_some() {
            return Err(AuthError::NameInUse(user.to_string()));
        }
        let password_hash = match self.0.hasher.hash(password).await {
            Ok(hash) => hash,
            Err(err) => {
                self.0.limits.unhashed(from).await;
                return Err(err.into());
            }
        };
        // Hashing may have waited in the queue: a guest may have come online meanwhile.
        if self.0.presence.owner_of(&user).await?.is_some() {
            return Err(AuthError::NameInUse(user.to_string()));
        }
        let account =
            Account { id: ulid::Ulid::new().to_string(), name: user.clone(), password_hash, generation: 0 };
        self.0.accounts.create_account(&account).await?;
        tracing::info!(user = %user, "account registered");
        Ok(user)
    }

    /// Checks a name and password; returns the account's identity and a
    /// token. The attempt passes the [`limits`] before the password is checked.
    pub async fn log_in(
        &self,
        name: &str,
        password: &str,
        from: IpAddr,
    ) -> Result<(Identity, String), AuthError> {
        self.0.limits.address(from).await?;
        let (Ok(user), Ok(password)) = (Username::parse(name), Password::parse(password)) else {
            return Err(AuthError::BadCredentials);
        };
        let account = self.0.accounts.account(&user).await?;
        let admission = self.0.limits.admit(&user, from).await?;
        let hash = account.as_ref().map(|account| account.password_hash.clone());
        match self.0.hasher.verify(password, hash).await {
            Ok(true) if let Some(account) = account => {
                self.0.limits.succeeded(&admission).await;
                let identity = Identity::of_account(&account);
                let token = self.0.tokens.issue(&identity, account.generation);
                Ok((identity, token))
            }
            Ok(_) => {
                tracing::info!(user = %user, %from, "failed login");
                Err(AuthError::BadCredentials)
            }
            Err(err) => {
                self.0.limits.unchecked(&admission).await;
                Err(err.into())
            }
        }
    }

    /// How long tokens stay valid.
    pub fn token_ttl(&self) -> Duration {
        self.0.tokens.ttl()
    }

    /// A token for a guest holding `user` under `proof`.
    pub fn guest_token(&self, user: &Username, proof: &OwnerProof) -> String {
        self.0.tokens.issue(&Identity { user: user.clone(), kind: IdentityKind::Guest(proof.clone()) }, 0)
    }

    /// The session a token proves (signature and expiry only).
    pub fn verify(&self, token: &str) -> Result<Session, AuthError> {
        self.0.tokens.verify(token).map_err(AuthError::BadToken)
    }

    /// Verifies a token and that its identity still stands: not revoked; an
    /// account still exists as the same account (same id, the token's
    /// generation); a guest still holds the name under the same proof.
    pub async fn authenticate(&self, token: &str) -> Result<Session, AuthError> {
        let session = self.verify(token)?;
        self.check(&session).await?;
        if let IdentityKind::Guest(proof) = &session.identity.kind
            && self.0.presence.owner_of(&session.identity.user).await?.as_ref() != Some(proof)
        {
            return Err(AuthError::SessionEnded);
        }
        Ok(session)
    }

    /// Checks what a signature cannot: that the token was not revoked and,
    /// for an account, that the account still exists as the one the token
    /// was issued for. A guest's name is not checked: the handshake lets a
    /// guest token take its free name back.
    pub async fn check(&self, session: &Session) -> Result<(), AuthError> {
        if self.0.accounts.revoked_tokens(&[session.jti.as_str()]).await?[..] != [false] {
            return Err(AuthError::Revoked);
        }
        match &session.identity.kind {
            IdentityKind::Account(id) => {
                let account = self.0.accounts.account(&session.identity.user).await?;
                match account {
                    Some(account) if account.id == *id && account.generation == session.generation => Ok(()),
                    Some(account) if account.id == *id => Err(AuthError::Revoked),
                    _ => Err(AuthError::BadCredentials),
                }
            }
            IdentityKind::Guest(_) => Ok(()),
        }
    }

    /// Which of these sessions no longer stand (revoked, expired, or their
    /// account changed or gone), checked in one pass: one read of the
    /// revocation list and one per distinct account. Store errors leave a
    /// session standing: it is checked again next time.
    pub async fn fallen(&self, sessions: &[&Session]) -> Vec<bool> {
        let jtis: Vec<&str> = sessions.iter().map(|session| session.jti.as_str()).collect();
        let revoked = self.0.accounts.revoked_tokens(&jtis).await.unwrap_or_else(|err| {
            tracing::warn!(error = %err, "cannot read revoked tokens; checking again later");
            vec![false; sessions.len()]
        });
        let mut accounts: std::collections::HashMap<&str, Option<Option<Account>>> = Default::default();
        let mut fallen = Vec::with_capacity(sessions.len());
        for (session, revoked) in sessions.iter().zip(revoked) {
            let mut gone = revoked || session.is_expired();
            if let (false, IdentityKind::Account(id)) = (gone, &session.identity.kind) {
                let user = &session.identity.user;
                let account = match accounts.get(user.key()) {
                    Some(known) => known.clone(),
                    None => {
                        let read = self.0.accounts.account(user).await.ok();
                        accounts.insert(user.key(), read.clone());
                        read
                    }
                };
                gone = match account {
                    Some(Some(account)) => account.id != *id || account.generation != session.generation,
                    Some(None) => true,
                    None => false,
                };
            }
            fallen.push(gone);
        }
        fallen
    }

    /// `POST /api/logout`: revokes the token, until it would have expired.
    pub async fn log_out(&self, session: &Session) -> Result<(), AuthError> {
        self.0.accounts.revoke_token(&session.jti, session.remaining()).await?;
        tracing::info!(user = %session.identity.user, "token revoked by logout");
        Ok(())
    }

    /// The account registered under `user`'s name, if any.
    pub async fn account(&self, user: &Username) -> Result<Option<Account>, StoreError> {
        self.0.accounts.account(user).await
    }

    /// True if `user` is a registered account's name.
    pub async fn is_registered(&self, user: &Username) -> Result<bool, StoreError> {
        Ok(self.0.accounts.account(user).await?.is_some())
    }
}
