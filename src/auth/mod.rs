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

use crate::domain::{Password, Username, ValidationError};
use crate::store::{Account, AccountStore, OwnerProof, Store, StoreError};
use limits::Limits;
use passwords::{HashError, Hasher};
pub use tokens::{TokenError, Tokens};

/// The proof under which every session of an account holds its name.
/// Guest proofs are 64 hex characters, so they can never equal it.
const ACCOUNT_PROOF: &str = "account";

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
    /// A registered account: owns its name for good.
    Account,
    /// A guest: holds the name only while online, under this proof.
    Guest(OwnerProof),
}

impl Identity {
    /// The proof this identity holds its name under in presence.
    pub fn proof(&self) -> OwnerProof {
        match &self.kind {
            IdentityKind::Account => OwnerProof(ACCOUNT_PROOF.into()),
            IdentityKind::Guest(proof) => proof.clone(),
        }
    }

    /// True for registered accounts.
    pub fn is_account(&self) -> bool {
        self.kind == IdentityKind::Account
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
        self.0.accounts.create_account(&Account { name: user.clone(), password_hash }).await?;
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
        let registered = account.as_ref().map(|account| account.name.clone());
        let admission = self.0.limits.admit(&user, from).await?;
        match self.0.hasher.verify(password, account.map(|account| account.password_hash)).await {
            Ok(true) => {
                self.0.limits.succeeded(&admission).await;
                let identity = Identity { user: registered.unwrap_or(user), kind: IdentityKind::Account };
                let token = self.0.tokens.issue(&identity);
                Ok((identity, token))
            }
            Ok(false) => {
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
        self.0.tokens.issue(&Identity { user: user.clone(), kind: IdentityKind::Guest(proof.clone()) })
    }

    /// The identity a token proves (signature and expiry only).
    pub fn verify(&self, token: &str) -> Result<Identity, AuthError> {
        self.0.tokens.verify(token).map_err(AuthError::BadToken)
    }

    /// Verifies a token and that its identity still stands: an account still
    /// exists; a guest still holds the name under the same proof.
    pub async fn authenticate(&self, token: &str) -> Result<Identity, AuthError> {
        let identity = self.verify(token)?;
        match &identity.kind {
            IdentityKind::Account => {
                if self.0.accounts.account(&identity.user).await?.is_none() {
                    return Err(AuthError::BadCredentials);
                }
            }
            IdentityKind::Guest(proof) => {
                if self.0.presence.owner_of(&identity.user).await?.as_ref() != Some(proof) {
                    return Err(AuthError::SessionEnded);
                }
            }
        }
        Ok(identity)
    }

    /// True if `user` is a registered account's name.
    pub async fn is_registered(&self, user: &Username) -> Result<bool, StoreError> {
        Ok(self.0.accounts.account(user).await?.is_some())
    }
}
