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

use crate::domain::{Password, Username, ValidationError};
use crate::http::AddressKey;
use crate::store::{Account, AccountStore, OwnerProof, Store, StoreError};
pub use tokens::{TokenError, Tokens};

/// The proof under which every session of an account holds its name.
/// Guest proofs are 64 hex characters, so they can never equal it.
const ACCOUNT_PROOF: &str = "account";

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
    /// Too many attempts; try again later.
    #[error("too many attempts; try again in {} s", .0.as_secs())]
    RateLimited(Duration),
    /// The state store is unreachable.
    #[error("the account service is unavailable, try again shortly")]
    Unavailable,
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
        self.limit(&format!("addr:{}", AddressKey::of(from)), ATTEMPTS_PER_ADDRESS, ADDRESS_WINDOW).await?;
        let user = Username::parse(name).map_err(AuthError::Invalid)?;
        let password = Password::parse(password).map_err(AuthError::Invalid)?;
        if self.0.presence.owner_of(&user).await?.is_some() {
            return Err(AuthError::NameInUse(user.to_string()));
        }
        let password_hash = passwords::hash(password).await.map_err(|err| {
            tracing::error!(error = %err, "password hashing failed");
            AuthError::Unavailable
        })?;
        self.0.accounts.create_account(&Account { name: user.clone(), password_hash }).await?;
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
        self.limit(&format!("addr:{}", AddressKey::of(from)), ATTEMPTS_PER_ADDRESS, ADDRESS_WINDOW).await?;
        let (Ok(user), Ok(password)) = (Username::parse(name), Password::parse(password)) else {
            return Err(AuthError::BadCredentials);
        };
        let failures = format!("fail:{}", user.key());
        if self.0.accounts.attempts(&failures).await? >= FAILURES_PER_NAME {
            return Err(AuthError::RateLimited(NAME_WINDOW));
        }
        let account = self.0.accounts.account(&user).await?;
        let registered = account.as_ref().map(|account| account.name.clone());
        if passwords::verify(password, account.map(|account| account.password_hash)).await {
            let identity = Identity { user: registered.unwrap_or(user), kind: IdentityKind::Account };
            let token = self.0.tokens.issue(&identity);
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
