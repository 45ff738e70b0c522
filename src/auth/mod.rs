//! Who someone is: registered accounts (argon2id passwords), signed tokens,
//! guests, and the rate limits on login attempts.
//!
//! - [`tokens`]: issuing and verifying tokens (any instance verifies any other's)
//! - [`passwords`]: hashing and verifying passwords off the async workers
//!
//! [`Auth`] is the service the HTTP API and the socket handshake share.

pub mod passwords;
pub mod tokens;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::domain::{Password, UserId, Username, ValidationError};
use crate::store::{Account, AccountStore, OwnerProof, Store, StoreError};
pub use tokens::{Session, TokenError, Tokens};

/// Login and registration attempts one address may make per window.
pub const ATTEMPTS_PER_ADDRESS: u64 = 30;
/// The window for attempts per address.
pub const ADDRESS_WINDOW: Duration = Duration::from_secs(60);
/// Failed logins one account name may take per window before it is locked.
pub const FAILURES_PER_NAME: u64 = 10;
/// The window for failed logins per name.
pub const NAME_WINDOW: Duration = Duration::from_secs(15 * 60);

/// A verified identity.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    /// The name.
    pub user: Username,
    /// Account or guest.
    pub kind: IdentityKind,
}

/// What kind of user an identity is.
#[derive(Debug, Clone, PartialEq)]
pub enum IdentityKind {
    /// A registered account (by its id): owns its name for good.
    Account(String),
    /// A guest: holds the name only while online, under this proof.
    Guest(OwnerProof),
}

impl Identity {
    /// The identity of an account.
    pub fn of_account(account: &Account) -> Self {
        Self { user: account.name.clone(), kind: IdentityKind::Account(account.id.clone()) }
    }

    /// The proof this identity holds its name under in presence.
    pub fn proof(&self) -> OwnerProof {
        match &self.kind {
            IdentityKind::Account(id) => OwnerProof::account(id),
            IdentityKind::Guest(proof) => proof.clone(),
        }
    }

    /// Who this is, whatever the name: what private conversations and files belong to.
    pub fn id(&self) -> UserId {
        self.proof().user_id()
    }

    /// True for registered accounts.
    pub fn is_account(&self) -> bool {
        matches!(self.kind, IdentityKind::Account(_))
    }
}

/// Why an account operation failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AuthError {
    /// A name or password broke the rules.
    #[error("{0}")]
    Invalid(ValidationError),
    /// The name is registered already.
    #[error("the name `{0}` is registered already")]
    AccountExists(String),
    /// A guest is online under that name right now.
    #[error("the name `{0}` is in use by someone online")]
    NameInUse(String),
    /// Unknown name or wrong password (deliberately not told apart).
    #[error("wrong name or password")]
    BadCredentials,
    /// The token is forged, malformed or expired.
    #[error("{0}")]
    BadToken(TokenError),
    /// A guest token whose session is over (the name was released).
    #[error("this guest session has ended; log in again")]
    SessionEnded,
    /// The token was revoked (a logout, a password change, a deleted account).
    #[error("this token was revoked; log in again")]
    Revoked,
    /// Too many attempts; try again later.
    #[error("too many attempts; try again in {} s", .0.as_secs())]
    RateLimited(Duration),
    /// The state store is unreachable.
    #[error("the account service is unavailable, try again shortly")]
    Unavailable,
    /// Only accounts can do this (a guest token was used).
    #[error("only registered accounts can do this")]
    NotAnAccount,
    /// The account changed during the request (another change won); retry.
    #[error("the account changed meanwhile; try again")]
    Conflict,
}

impl From<StoreError> for AuthError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::AccountExists(name) => Self::AccountExists(name),
            other => {
                tracing::warn!(error = %other, "account store failed");
                Self::Unavailable
            }
        }
    }
}

/// Accounts and tokens. Cheap to clone.
#[derive(Clone)]
pub struct Auth(Arc<Inner>);

struct Inner {
    tokens: Tokens,
    accounts: Arc<dyn AccountStore>,
    presence: Arc<dyn Store>,
}

impl Auth {
    /// Accounts in `accounts`, presence in `presence`, tokens signed by `tokens`.
    pub fn new(tokens: Tokens, accounts: Arc<dyn AccountStore>, presence: Arc<dyn Store>) -> Self {
        Self(Arc::new(Inner { tokens, accounts, presence }))
    }

    /// Registers an account. The name must be free: not registered, and not
    /// held by a guest online right now.
    pub async fn register(&self, name: &str, password: &str, from: IpAddr) -> Result<Username, AuthError> {
        self.limit(&format!("addr:{from}"), ATTEMPTS_PER_ADDRESS, ADDRESS_WINDOW).await?;
        let user = Username::parse(name).map_err(AuthError::Invalid)?;
        let password = Password::parse(password).map_err(AuthError::Invalid)?;
        if self.0.presence.owner_of(&user).await?.is_some() {
            return Err(AuthError::NameInUse(user.to_string()));
        }
        let password_hash = passwords::hash(password).await.map_err(|err| {
            tracing::error!(error = %err, "password hashing failed");
            AuthError::Unavailable
        })?;
        let account =
            Account { id: ulid::Ulid::new().to_string(), name: user.clone(), password_hash, generation: 0 };
        self.0.accounts.create_account(&account).await?;
        tracing::info!(user = %user, "account registered");
        Ok(user)
    }

    /// Checks a name and password; returns the account's identity and a token.
    pub async fn log_in(
        &self,
        name: &str,
        password: &str,
        from: IpAddr,
    ) -> Result<(Identity, String), AuthError> {
        self.limit(&format!("addr:{from}"), ATTEMPTS_PER_ADDRESS, ADDRESS_WINDOW).await?;
        let (Ok(user), Ok(password)) = (Username::parse(name), Password::parse(password)) else {
            return Err(AuthError::BadCredentials);
        };
        let failures = format!("fail:{}", user.key());
        if self.0.accounts.attempts(&failures).await? >= FAILURES_PER_NAME {
            return Err(AuthError::RateLimited(NAME_WINDOW));
        }
        let account = self.0.accounts.account(&user).await?;
        let hash = account.as_ref().map(|account| account.password_hash.clone());
        if passwords::verify(password, hash).await
            && let Some(account) = account
        {
            let identity = Identity::of_account(&account);
            let token = self.0.tokens.issue(&identity, account.generation);
            return Ok((identity, token));
        }
        tracing::info!(user = %user, %from, "failed login");
        self.0.accounts.count_attempt(&failures, NAME_WINDOW).await?;
        Err(AuthError::BadCredentials)
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

    /// The account behind a session, after checking its current password.
    async fn account_with_password(&self, session: &Session, password: &str) -> Result<Account, AuthError> {
        let IdentityKind::Account(id) = &session.identity.kind else { return Err(AuthError::NotAnAccount) };
        let password = Password::parse(password).map_err(|_| AuthError::BadCredentials)?;
        let account = self.0.accounts.account(&session.identity.user).await?;
        let account = account.filter(|account| account.id == *id).ok_or(AuthError::BadCredentials)?;
        if !passwords::verify(password, Some(account.password_hash.clone())).await {
            return Err(AuthError::BadCredentials);
        }
        Ok(account)
    }

    /// `POST /api/me/password`: checks the current password, sets the new
    /// one and revokes every token of the account; returns a fresh token.
    pub async fn change_password(
        &self,
        session: &Session,
        current: &str,
        new: &str,
    ) -> Result<String, AuthError> {
        let new = Password::parse(new).map_err(AuthError::Invalid)?;
        let account = self.account_with_password(session, current).await?;
        let password_hash = passwords::hash(new).await.map_err(|err| {
            tracing::error!(error = %err, "password hashing failed");
            AuthError::Unavailable
        })?;
        let changed = Account { password_hash, generation: account.generation + 1, ..account.clone() };
        if !self.0.accounts.replace_account(&account, &changed).await? {
            return Err(AuthError::Conflict);
        }
        tracing::info!(user = %account.name, "password changed; earlier tokens revoked");
        Ok(self.0.tokens.issue(&Identity::of_account(&changed), changed.generation))
    }

    /// `DELETE /api/me`: checks the password, then deletes the account and
    /// its avatar. Its tokens stop working at once; its private history
    /// belongs to its id, which nobody can hold again.
    pub async fn delete_account(&self, session: &Session, password: &str) -> Result<Username, AuthError> {
        let account = self.account_with_password(session, password).await?;
        if !self.0.accounts.delete_account(&account).await? {
            return Err(AuthError::Conflict);
        }
        tracing::info!(user = %account.name, "account deleted");
        Ok(account.name)
    }

    /// The account registered under `user`'s name, if any.
    pub async fn account(&self, user: &Username) -> Result<Option<Account>, StoreError> {
        self.0.accounts.account(user).await
    }

    /// True if `user` is a registered account's name.
    pub async fn is_registered(&self, user: &Username) -> Result<bool, StoreError> {
        Ok(self.0.accounts.account(user).await?.is_some())
    }

    /// Counts an attempt under `key`; refuses once `max` is passed in the window.
    async fn limit(&self, key: &str, max: u64, window: Duration) -> Result<(), AuthError> {
        let count = self.0.accounts.count_attempt(key, window).await?;
        if count > max {
            tracing::warn!(key, count, "rate limit reached");
            return Err(AuthError::RateLimited(window));
        }
        Ok(())
    }
}
