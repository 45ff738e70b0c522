//! Who someone is: registered accounts (argon2id passwords), signed tokens,
//! guests, and the rate limits on login attempts.
//!
//! - [`tokens`]: issuing and verifying tokens (any instance verifies any other's)
//! - [`passwords`]: hashing and verifying passwords off the async workers,
//!   a bounded number at once
//! - [`limits`]: the attempt counters a login passes before its password is checked
//!
//! [`Auth`] is the service the HTTP API and the socket handshake share.

pub mod limits;
pub mod passwords;
pub mod tokens;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::domain::{Password, UserId, Username, ValidationError};
use crate::store::{Account, AccountStore, OwnerProof, Store, StoreError};
use limits::Limits;
use passwords::{HashError, Hasher};
pub use tokens::{Session, TokenError, Tokens};

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
    /// Too many attempts ([`limits`]); try again after this long.
    #[error("too many attempts; try again in {} s", whole_seconds(*.0))]
    RateLimited(Duration),
    /// Every password-hashing thread is taken and its queue is full; try
    /// again after this long. The password was not checked.
    #[error("the server is busy checking passwords; try again in {} s", whole_seconds(*.0))]
    Busy(Duration),
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

/// A wait in whole seconds, rounded up (a wait of 0.2 s is "1 s", not "0 s").
pub fn whole_seconds(wait: Duration) -> u64 {
    wait.as_millis().div_ceil(1000).try_into().unwrap_or(u64::MAX).max(1)
}

impl From<HashError> for AuthError {
    fn from(err: HashError) -> Self {
        match err {
            HashError::Busy => Self::Busy(passwords::BUSY_RETRY_AFTER),
            HashError::Failed(cause) => {
                tracing::error!(%cause, "password hashing failed");
                Self::Unavailable
            }
        }
    }
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

    /// The account behind a session, after checking its current password
    /// under the same limits as a login (a stolen token must not become a
    /// way to guess the password, nor to keep the hashing threads busy).
    async fn account_with_password(
        &self,
        session: &Session,
        password: &str,
        from: IpAddr,
    ) -> Result<Account, AuthError> {
        let IdentityKind::Account(id) = &session.identity.kind else { return Err(AuthError::NotAnAccount) };
        self.0.limits.address(from).await?;
        let Ok(password) = Password::parse(password) else { return Err(AuthError::BadCredentials) };
        let user = &session.identity.user;
        let account = self.0.accounts.account(user).await?;
        let account = account.filter(|account| account.id == *id).ok_or(AuthError::BadCredentials)?;
        let admission = self.0.limits.admit(user, from).await?;
        match self.0.hasher.verify(password, Some(account.password_hash.clone())).await {
            Ok(true) => {
                self.0.limits.succeeded(&admission).await;
                Ok(account)
            }
            Ok(false) => {
                tracing::info!(%user, %from, "wrong current password");
                Err(AuthError::BadCredentials)
            }
            Err(err) => {
                self.0.limits.unchecked(&admission).await;
                Err(err.into())
            }
        }
    }

    /// `POST /api/me/password`: checks the current password, sets the new
    /// one and revokes every token of the account; returns a fresh token.
    pub async fn change_password(
        &self,
        session: &Session,
        current: &str,
        new: &str,
        from: IpAddr,
    ) -> Result<String, AuthError> {
        let new = Password::parse(new).map_err(AuthError::Invalid)?;
        let account = self.account_with_password(session, current, from).await?;
        let password_hash = self.0.hasher.hash(new).await?;
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
    pub async fn delete_account(
        &self,
        session: &Session,
        password: &str,
        from: IpAddr,
    ) -> Result<Username, AuthError> {
        let account = self.account_with_password(session, password, from).await?;
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
}
