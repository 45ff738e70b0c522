//! The shared state of a deployment: who is online (and on which sockets),
//! which rooms exist and who is in them, and message history.
//!
//! Everything the instances must agree on goes through [`Store`]. The
//! in-memory implementation serves a single instance; the Redis one (same
//! contract, same test suite) serves many. Socket.io room membership, used to
//! deliver messages, is separate: it lives in the socketioxide adapter.

mod accounts;
mod files;
mod memory;
mod redis;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

pub use accounts::{Account, AccountStore, Attempts, Avatar, Charge};
pub use files::{FileStore, StoredFile};
pub use memory::{MemoryStore, SocketSnapshot};
pub use redis::{Heartbeat, Migration, Purge, RedisStore, Resync, TIMEOUT as REDIS_TIMEOUT};

use crate::domain::roster::RosterQuery;
use crate::domain::{Conversation, Message, MessageId, RoomName, UserId, Username};

/// Identifies one socket in the deployment: socket ids are only unique per
/// instance, so the instance is part of the key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SocketKey {
    /// The instance holding the socket's connection (shared: every socket
    /// of an instance holds the same name).
    pub instance: Arc<str>,
    /// The socket.io socket id.
    pub sid: String,
}

impl fmt::Display for SocketKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.instance, self.sid)
    }
}

/// Proof of owning a name: a fingerprint of the session secret given to the
/// client at login. A socket presenting the same secret may join an online
/// user (a second tab, or a reconnect before the old socket timed out);
/// anyone else gets `name_taken`. Only the fingerprint is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerProof(pub String);

/// The prefix of the proof under which an account's sessions hold its name:
/// `account:<account id>`. Guest proofs are 64 hex characters, so they can
/// never take that form.
const ACCOUNT_PROOF_PREFIX: &str = "account:";

impl OwnerProof {
    /// The proof every session of the account `account_id` holds its name under.
    pub fn account(account_id: &str) -> Self {
        Self(format!("{ACCOUNT_PROOF_PREFIX}{account_id}"))
    }

    /// The identity holding a name under this proof: the account, or the guest session.
    pub fn user_id(&self) -> UserId {
        match self.0.strip_prefix(ACCOUNT_PROOF_PREFIX) {
            Some(account_id) => UserId::account(account_id),
            None => UserId::guest(&self.0),
        }
    }
}

/// The result of a successful [`Store::login`].
#[derive(Debug, Clone, PartialEq)]
pub struct Login {
    /// The user as first claimed (its display spelling wins over a later one).
    pub user: Username,
    /// True if the user just came online (no other socket was logged in as them).
    pub first_socket: bool,
    /// Online users in the deployment, after this login.
    pub num_users: usize,
    /// The user's logged-in sockets, this one included.
    pub sockets: usize,
}

/// The result of [`Store::logout`] for a socket that was logged in.
#[derive(Debug, Clone, PartialEq)]
pub struct Logout {
    /// The user the socket was logged in as.
    pub user: Username,
    /// True if that was the user's last socket: the user is now offline.
    pub last_socket: bool,
    /// Online users in the deployment, after this logout.
    pub num_users: usize,
    /// Rooms the user is no longer in (their last socket in them left).
    pub left_rooms: Vec<RoomName>,
}

/// The result of [`Store::join_room`].
#[derive(Debug, Clone, PartialEq)]
pub struct RoomJoin {
    /// True if the user was not in the room before (through another socket).
    pub first_for_user: bool,
    /// Members after the join, sorted by name.
    pub members: Vec<Username>,
}

/// The result of [`Store::leave_room`].
#[derive(Debug, Clone, PartialEq)]
pub struct RoomLeave {
    /// True if the user has no socket left in the room.
    pub last_for_user: bool,
}

/// A room and its members, as listed by `rooms`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RoomInfo {
    /// The room.
    pub room: RoomName,
    /// Its members, sorted by name.
    pub members: Vec<Username>,
}

/// The result of [`Store::roster`].
#[derive(Debug, Clone, PartialEq)]
pub struct RosterPage {
    /// Online users, sorted by name.
    pub users: Vec<Username>,
    /// True if more users match after the last of these.
    pub more: bool,
}

impl RosterPage {
    /// The page of at most `limit` users held by these roster entries, read
    /// one past `limit` to tell whether more follow.
    fn of_entries(
        entries: impl IntoIterator<Item = impl AsRef<str>>,
        limit: usize,
    ) -> Result<Self, StoreError> {
        let mut users = entries
            .into_iter()
            .map(|entry| crate::domain::roster::user_of(entry.as_ref()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| StoreError::Unavailable(format!("corrupt roster entry: {err}")))?;
        let more = users.len() > limit;
        users.truncate(limit);
        Ok(Self { users, more })
    }
}

/// Which slice of a conversation's history to read. Without `after`, the
/// newest `limit` messages before `before` (or the end); with `after`, the
/// oldest `limit` messages after it, so a client can page forward through
/// what it missed. Results are always oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryPage {
    /// Only messages strictly older than this id.
    pub before: Option<MessageId>,
    /// Only messages strictly newer than this id.
    pub after: Option<MessageId>,
    /// At most this many messages.
    pub limit: usize,
}

/// Why a store operation failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StoreError {
    /// Another session owns this name.
    #[error("the name `{0}` is taken")]
    NameTaken(String),
    /// The socket is already logged in (a bug in the caller).
    #[error("socket {0} is already logged in")]
    AlreadyLoggedIn(String),
    /// An account with this name exists already.
    #[error("an account named `{0}` exists already")]
    AccountExists(String),
    /// A named user is not online.
    #[error("`{0}` is not online")]
    UnknownUser(String),
    /// The socket is not a member of the room.
    #[error("not a member of room `{0}`")]
    NotInRoom(String),
    /// The socket is not logged in (a bug in the caller, or a purged socket).
    #[error("socket {0} is not logged in")]
    NotLoggedIn(String),
    /// The backing service failed or timed out; the operation may be retried.
    #[error("state store unavailable: {0}")]
    Unavailable(String),
}

/// The deployment's shared state. Every method is atomic: two instances
/// racing for a name see exactly one winner.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Logs `socket` in as `user`, claiming the name unless it is held under
    /// another [`OwnerProof`].
    async fn login(
        &self,
        user: &Username,
        proof: &OwnerProof,
        socket: &SocketKey,
    ) -> Result<Login, StoreError>;

    /// Removes `socket` from presence and from all its rooms. `None` if the
    /// socket was not logged in.
    async fn logout(&self, socket: &SocketKey) -> Result<Option<Logout>, StoreError>;

    /// A page of the online list, sorted by name: its size, not the number
    /// of users online, is what it costs.
    async fn roster(&self, query: &RosterQuery) -> Result<RosterPage, StoreError>;

    /// The deployment's count, or an error when it cannot be read: unlike
    /// [`Self::count_online`], never this instance's own count in its place.
    async fn count_online_everywhere(&self) -> Result<usize, StoreError> {
        self.count_online().await
    }

    /// How many users are online, without reading the list (the presence
    /// push and `/metrics` ask often, and the list can be long).
    async fn count_online(&self) -> Result<usize, StoreError>;

    /// For each of these names, in the same order, the online user spelled as
    /// they logged in and the proof they hold the name under (whose
    /// [`OwnerProof::user_id`] says who they are), or `None` if offline.
    async fn holders_of(&self, names: &[Username])
    -> Result<Vec<Option<(Username, OwnerProof)>>, StoreError>;

    /// The online users with these names, in the same order, spelled as they
    /// logged in, with their identities. Fails with [`StoreError::UnknownUser`]
    /// naming the first one not online.
    async fn find_online(&self, names: &[Username]) -> Result<Vec<(Username, UserId)>, StoreError> {
        let found = self.holders_of(names).await?;
        names
            .iter()
            .zip(found)
            .map(|(name, found)| {
                let (user, proof) = found.ok_or_else(|| StoreError::UnknownUser(name.to_string()))?;
                Ok((user, proof.user_id()))
            })
            .collect()
    }

    /// Adds a logged-in socket to a room, creating the room if needed.
    async fn join_room(&self, room: &RoomName, socket: &SocketKey) -> Result<RoomJoin, StoreError>;

    /// Removes a socket from a room; the room disappears when its last member leaves.
    async fn leave_room(&self, room: &RoomName, socket: &SocketKey) -> Result<RoomLeave, StoreError>;

    /// Every room with at least one member, sorted by name.
    async fn rooms(&self) -> Result<Vec<RoomInfo>, StoreError>;

    /// True if any socket of `user` is in `room`.
    async fn is_member(&self, room: &RoomName, user: &Username) -> Result<bool, StoreError>;

    /// How many users are in `room` (one read: no member list is built).
    async fn room_size(&self, room: &RoomName) -> Result<usize, StoreError>;

    /// The proof an online name is held under; `None` if nobody holds it.
    async fn owner_of(&self, user: &Username) -> Result<Option<OwnerProof>, StoreError>;

    /// Appends a message to a conversation's history, dropping the oldest
    /// beyond the configured cap.
    async fn append_message(&self, conversation: &Conversation, message: &Message) -> Result<(), StoreError>;

    /// Reads a page of a conversation's history, oldest first.
    async fn history(
        &self,
        conversation: &Conversation,
        page: &HistoryPage,
    ) -> Result<Vec<Message>, StoreError>;
}

/// The three stores a backend provides, as the trait objects their users
/// need. One backend object implements all three.
#[derive(Clone)]
pub struct Stores {
    /// Presence, rooms and history.
    pub state: Arc<dyn Store>,
    /// Accounts, avatars, rate-limit counters.
    pub accounts: Arc<dyn AccountStore>,
    /// Files sent in messages.
    pub files: Arc<dyn FileStore>,
}

impl Stores {
    /// The stores of one backend.
    pub fn of<B: Store + AccountStore + FileStore>(backend: Arc<B>) -> Self {
        Self { state: backend.clone(), accounts: backend.clone(), files: backend }
    }
}
