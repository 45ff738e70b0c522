//! The embedded store: the whole shared state in this process, for a single
//! instance without Redis. Presence and history here; accounts and files in
//! the submodules.

mod accounts;
mod files;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;

use super::{
    Account, Avatar, HistoryPage, Login, Logout, OwnerProof, RoomInfo, RoomJoin, RoomLeave, SocketKey, Store,
    StoreError,
};
use crate::domain::{Conversation, Message, RoomName, Username};

/// In-memory [`Store`]. Presence and history have separate locks so that a
/// long history read never delays a login. No lock is held across an await.
pub struct MemoryStore {
    presence: Mutex<Presence>,
    history: Mutex<HashMap<String, VecDeque<Message>>>,
    history_limit: usize,
    /// Accounts by name key.
    accounts: Mutex<HashMap<String, Account>>,
    /// Avatars by name key.
    avatars: Mutex<HashMap<String, Avatar>>,
    /// Rate-limit windows by key.
    attempts: Mutex<HashMap<String, accounts::Window>>,
    files: Mutex<files::FileCache>,
}

/// Who is online and where, indexed both ways.
#[derive(Default)]
struct Presence {
    /// Online users by name key.
    users: HashMap<String, OnlineUser>,
    /// Logged-in sockets.
    sockets: HashMap<SocketKey, OnlineSocket>,
    /// Room → name key → how many of that user's sockets are in the room.
    rooms: BTreeMap<RoomName, HashMap<String, usize>>,
}

struct OnlineUser {
    name: Username,
    proof: OwnerProof,
    sockets: BTreeSet<SocketKey>,
}

struct OnlineSocket {
    user_key: String,
    rooms: BTreeSet<RoomName>,
}

impl MemoryStore {
    /// A store keeping at most `history_limit` messages per conversation.
    pub fn new(history_limit: usize) -> Self {
        Self {
            presence: Mutex::default(),
            history: Mutex::default(),
            history_limit,
            accounts: Mutex::default(),
            avatars: Mutex::default(),
            attempts: Mutex::default(),
            files: Mutex::new(files::FileCache::new(files::DEFAULT_TTL, files::DEFAULT_MAX_BYTES)),
        }
    }

    /// Keeps files for `ttl`, and at most `max_bytes` of them (oldest go first).
    pub fn with_file_limits(self, ttl: std::time::Duration, max_bytes: usize) -> Self {
        Self { files: Mutex::new(files::FileCache::new(ttl, max_bytes)), ..self }
    }

    fn presence(&self) -> MutexGuard<'_, Presence> {
        lock(&self.presence)
    }

    fn history_lock(&self) -> MutexGuard<'_, HashMap<String, VecDeque<Message>>> {
        lock(&self.history)
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
            sockets: BTreeSet::new(),
        });
        if online.proof != *proof {
            return Err(StoreError::NameTaken(online.name.to_string()));
        }
        let first_socket = online.sockets.is_empty();
        online.sockets.insert(socket.clone());
        let name = online.name.clone();
        let sockets = online.sockets.len();
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
        user.sockets.remove(socket);
        let last_socket = user.sockets.is_empty();
        let name = user.name.clone();
        if last_socket {
            p.users.remove(&entry.user_key);
        }
        Ok(Some(Logout { user: name, last_socket, num_users: p.users.len(), left_rooms }))
    }

    async fn online_users(&self) -> Result<Vec<Username>, StoreError> {
        let p = self.presence();
        let mut users: Vec<Username> = p.users.values().map(|u| u.name.clone()).collect();
        users.sort_by(Username::display_order);
        Ok(users)
    }

    async fn count_online(&self) -> Result<usize, StoreError> {
        Ok(self.presence().users.len())
    }

    async fn presence_of(&self, names: &[Username]) -> Result<Vec<Option<Username>>, StoreError> {
        let p = self.presence();
        Ok(names.iter().map(|name| p.users.get(name.key()).map(|u| u.name.clone())).collect())
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

    async fn owner_of(&self, user: &Username) -> Result<Option<OwnerProof>, StoreError> {
        Ok(self.presence().users.get(user.key()).map(|online| online.proof.clone()))
    }

    async fn append_message(&self, message: &Message) -> Result<(), StoreError> {
        let mut history = self.history_lock();
        let thread = history.entry(message.conversation().storage_key()).or_default();
        thread.push_back(message.clone());
        while thread.len() > self.history_limit {
            thread.pop_front();
        }
        Ok(())
    }

    async fn history(
        &self,
        conversation: &Conversation,
        page: &HistoryPage,
    ) -> Result<Vec<Message>, StoreError> {
        let history = self.history_lock();
        let Some(thread) = history.get(&conversation.storage_key()) else { return Ok(Vec::new()) };
        let in_range = |m: &&Message| {
            page.after.is_none_or(|after| m.id > after) && page.before.is_none_or(|before| m.id < before)
        };
        Ok(if page.after.is_some() {
            thread.iter().filter(in_range).take(page.limit).cloned().collect()
        } else {
            let mut newest: Vec<Message> =
                thread.iter().rev().filter(in_range).take(page.limit).cloned().collect();
            newest.reverse();
            newest
        })
    }
}
