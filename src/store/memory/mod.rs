//! The embedded store: the whole shared state in this process, for a single
//! instance without Redis. Presence here; history, accounts and files in
//! the submodules.

mod accounts;
mod files;
mod history;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{
    Account, Avatar, HistoryPage, Login, Logout, OwnerProof, RoomInfo, RoomJoin, RoomLeave, RosterPage,
    SocketKey, Store, StoreError,
};
use crate::domain::roster::{self, RosterQuery};
use crate::domain::{Conversation, Message, RoomName, Username};

/// In-memory [`Store`]. Presence and history have separate locks so that a
/// long history read never delays a login. No lock is held across an await.
pub struct MemoryStore {
    presence: Mutex<Presence>,
    history: Mutex<history::History>,
    /// Accounts by name key.
    accounts: Mutex<HashMap<String, Account>>,
    /// Avatars by name key.
    avatars: Mutex<HashMap<String, Avatar>>,
    /// Rate-limit windows by key.
    attempts: Mutex<accounts::Expiring<accounts::Window>>,
    /// Revoked token ids, until their tokens would have expired.
    revoked: Mutex<accounts::Expiring<std::time::Instant>>,
    files: Mutex<files::FileCache>,
}

/// Who is online and where, indexed both ways.
#[derive(Default)]
struct Presence {
    /// Online users by name key.
    users: HashMap<String, OnlineUser>,
    /// The same users' [`roster::entry`], in display order, for paging.
    roster: BTreeSet<String>,
    /// Logged-in sockets.
    sockets: HashMap<SocketKey, OnlineSocket>,
    /// Room → name key → how many of that user's sockets are in the room.
    rooms: BTreeMap<RoomName, HashMap<String, usize>>,
}

struct OnlineUser {
    name: Username,
    proof: OwnerProof,
    /// How many logged-in sockets the user has (the sockets themselves
    /// are in [`Presence::sockets`]).
    sockets: usize,
}

struct OnlineSocket {
    user_key: String,
    rooms: BTreeSet<RoomName>,
}

impl MemoryStore {
    /// A store keeping at most `history_limit` messages per conversation,
    /// and 64 MiB of history for 30 days unused (see
    /// [`MemoryStore::with_history_limits`]).
    pub fn new(history_limit: usize) -> Self {
        Self {
            presence: Mutex::default(),
            history: Mutex::new(history::History::new(
                history_limit,
                history::DEFAULT_MAX_BYTES,
                history::DEFAULT_TTL,
            )),
            accounts: Mutex::default(),
            avatars: Mutex::default(),
            attempts: Mutex::default(),
            revoked: Mutex::default(),
            files: Mutex::new(files::FileCache::new(files::DEFAULT_TTL, files::DEFAULT_MAX_BYTES)),
        }
    }

    /// Keeps files for `ttl`, and at most `max_bytes` of them (oldest go first).
    pub fn with_file_limits(self, ttl: std::time::Duration, max_bytes: usize) -> Self {
        Self { files: Mutex::new(files::FileCache::new(ttl, max_bytes)), ..self }
    }

    /// Keeps at most `max_bytes` of history (estimated; the least recently
    /// used conversations lose their oldest messages first) and drops
    /// conversations neither written nor read for `ttl`.
    pub fn with_history_limits(self, max_bytes: usize, ttl: Duration) -> Self {
        let limit = lock(&self.history).limit();
        Self { history: Mutex::new(history::History::new(limit, max_bytes, ttl)), ..self }
    }

    /// Estimated bytes of history held, which stays within the budget.
    pub fn history_bytes(&self) -> usize {
        lock(&self.history).bytes()
    }

    fn presence(&self) -> MutexGuard<'_, Presence> {
        lock(&self.presence)
    }
}

/// One logged-in socket, with what it takes to record it elsewhere.
#[derive(Debug, Clone)]
pub struct SocketSnapshot {
    /// The socket.
    pub socket: SocketKey,
    /// Who it is logged in as.
    pub user: Username,
    /// The proof the user's name is held under.
    pub proof: OwnerProof,
    /// The rooms it joined.
    pub rooms: Vec<RoomName>,
}

impl MemoryStore {
    /// Every logged-in socket, as of now.
    pub fn snapshot(&self) -> Vec<SocketSnapshot> {
        let p = self.presence();
        p.sockets
            .iter()
            .filter_map(|(socket, entry)| {
                let user = p.users.get(&entry.user_key)?;
                Some(SocketSnapshot {
                    socket: socket.clone(),
                    user: user.name.clone(),
                    proof: user.proof.clone(),
                    rooms: entry.rooms.iter().cloned().collect(),
                })
            })
            .collect()
    }
}

/// Locks a mutex of the store. A panic while holding one cannot leave the
/// maps half-updated in a way worse than refusing all further work, so the
/// store keeps serving.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Presence {
    fn members(&self, room: &RoomName) -> Vec<Username> {
        let mut members: Vec<Username> = self
            .rooms
            .get(room)
            .into_iter()
            .flat_map(|counts| counts.keys())
            .filter_map(|key| self.users.get(key).map(|u| u.name.clone()))
            .collect();
        members.sort_by(Username::display_order);
        members
    }

    /// Takes one of a user's sockets out of a room; true if it was their last one there.
    fn remove_from_room(&mut self, room: &RoomName, user_key: &str) -> bool {
        let Some(counts) = self.rooms.get_mut(room) else { return false };
        let last = match counts.get_mut(user_key) {
            Some(count) if *count > 1 => {
                *count -= 1;
                false
            }
            Some(_) => {
                counts.remove(user_key);
                true
            }
            None => false,
        };
        if counts.is_empty() {
            self.rooms.remove(room);
        }
        last
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn login(
        &self,
        user: &Username,
        proof: &OwnerProof,
        socket: &SocketKey,
    ) -> Result<Login, StoreError> {
        let mut p = self.presence();
        if p.sockets.contains_key(socket) {
            return Err(StoreError::AlreadyLoggedIn(socket.to_string()));
        }
        let online = p.users.entry(user.key().to_owned()).or_insert_with(|| OnlineUser {
            name: user.clone(),
            proof: proof.clone(),
            sockets: 0,
        });
        if online.proof != *proof {
            return Err(StoreError::NameTaken(online.name.to_string()));
        }
        let first_socket = online.sockets == 0;
        online.sockets += 1;
        let name = online.name.clone();
        let sockets = online.sockets;
        if first_socket {
            p.roster.insert(roster::entry(&name));
        }
        p.sockets
            .insert(socket.clone(), OnlineSocket { user_key: user.key().to_owned(), rooms: BTreeSet::new() });
        Ok(Login { user: name, first_socket, num_users: p.users.len(), sockets })
    }

    async fn logout(&self, socket: &SocketKey) -> Result<Option<Logout>, StoreError> {
        let mut p = self.presence();
        let Some(entry) = p.sockets.remove(socket) else { return Ok(None) };
        let left_rooms =
            entry.rooms.into_iter().filter(|room| p.remove_from_room(room, &entry.user_key)).collect();
        let Some(user) = p.users.get_mut(&entry.user_key) else {
            return Err(StoreError::NotLoggedIn(socket.to_string()));
        };
        user.sockets = user.sockets.saturating_sub(1);
        let last_socket = user.sockets == 0;
        let name = user.name.clone();
        if last_socket {
            p.users.remove(&entry.user_key);
            p.roster.remove(&roster::entry(&name));
        }
        Ok(Some(Logout { user: name, last_socket, num_users: p.users.len(), left_rooms }))
    }

    async fn roster(&self, query: &RosterQuery) -> Result<RosterPage, StoreError> {
        let p = self.presence();
        let from = query.start().map_or(Bound::Unbounded, Bound::Included);
        let entries =
            p.roster.range::<String, _>((from, Bound::Unbounded)).take_while(|entry| query.contains(entry));
        RosterPage::of_entries(entries.take(query.limit() + 1), query.limit())
    }

    async fn count_online(&self) -> Result<usize, StoreError> {
        Ok(self.presence().users.len())
    }

    async fn holders_of(
        &self,
        names: &[Username],
    ) -> Result<Vec<Option<(Username, OwnerProof)>>, StoreError> {
        let p = self.presence();
        Ok(names
            .iter()
            .map(|name| p.users.get(name.key()).map(|u| (u.name.clone(), u.proof.clone())))
            .collect())
    }

    async fn join_room(&self, room: &RoomName, socket: &SocketKey) -> Result<RoomJoin, StoreError> {
        let mut p = self.presence();
        let Some(entry) = p.sockets.get_mut(socket) else {
            return Err(StoreError::NotLoggedIn(socket.to_string()));
        };
        let newly_in = entry.rooms.insert(room.clone());
        let user_key = entry.user_key.clone();
        let counts = p.rooms.entry(room.clone()).or_default();
        let first_for_user = !counts.contains_key(&user_key);
        if newly_in {
            *counts.entry(user_key).or_default() += 1;
        }
        Ok(RoomJoin { first_for_user, members: p.members(room) })
    }

    async fn leave_room(&self, room: &RoomName, socket: &SocketKey) -> Result<RoomLeave, StoreError> {
        let mut p = self.presence();
        let Some(entry) = p.sockets.get_mut(socket) else {
            return Err(StoreError::NotLoggedIn(socket.to_string()));
        };
        if !entry.rooms.remove(room) {
            return Err(StoreError::NotInRoom(room.to_string()));
        }
        let user_key = entry.user_key.clone();
        Ok(RoomLeave { last_for_user: p.remove_from_room(room, &user_key) })
    }

    async fn rooms(&self) -> Result<Vec<RoomInfo>, StoreError> {
        let p = self.presence();
        Ok(p.rooms.keys().map(|room| RoomInfo { room: room.clone(), members: p.members(room) }).collect())
    }

    async fn is_member(&self, room: &RoomName, user: &Username) -> Result<bool, StoreError> {
        Ok(self.presence().rooms.get(room).is_some_and(|counts| counts.contains_key(user.key())))
    }

    async fn room_size(&self, room: &RoomName) -> Result<usize, StoreError> {
        Ok(self.presence().rooms.get(room).map_or(0, HashMap::len))
    }

    async fn owner_of(&self, user: &Username) -> Result<Option<OwnerProof>, StoreError> {
        Ok(self.presence().users.get(user.key()).map(|online| online.proof.clone()))
    }

    async fn history(
        &self,
        conversation: &Conversation,
        page: &HistoryPage,
    ) -> Result<Vec<Message>, StoreError> {
        Ok(lock(&self.history).read(&conversation.storage_key(), page, Instant::now()))
    }

    async fn append_message(&self, conversation: &Conversation, message: &Message) -> Result<(), StoreError> {
        lock(&self.history).append(conversation.storage_key(), message.clone(), Instant::now());
        Ok(())
    }
}
