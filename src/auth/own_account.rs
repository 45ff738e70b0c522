//! What an account does to itself: change its password, delete itself.
//! Both check the current password under the same limits as a login.

use std::net::IpAddr;

use super::{Auth, AuthError, Identity, IdentityKind, Session};
use crate::domain::{Password, Username};
use crate::store::Account;

impl Auth {
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
}
