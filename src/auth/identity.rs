//! Who a verified user is: an account, or a guest holding a name.

use crate::domain::{UserId, Username};
use crate::store::{Account, OwnerProof};

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
