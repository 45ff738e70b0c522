//! The Lua scripts that make presence changes atomic, and the key layout
//! they work on.
//!
//! Presence keys all carry the same hash tag (`{prefix}`), so they live in
//! one cluster slot and a script may touch several of them atomically, even
//! on a Redis Cluster. History keys carry no shared tag: conversations spread
//! over the cluster.

use fred::types::scripts::Script;

use crate::domain::{Conversation, RoomName};
use crate::store::SocketKey;

const PRELUDE: &str = include_str!("prelude.lua");

fn script(body: &str) -> Script {
    Script::from_lua(format!("{PRELUDE}\n{body}"))
}

/// Every script chatwire runs, loaded lazily (EVALSHA, SCRIPT LOAD on NOSCRIPT).
pub struct Scripts {
    pub login: Script,
    pub logout: Script,
    pub join: Script,
    pub leave: Script,
    pub rooms: Script,
    pub heartbeat: Script,
    pub dead: Script,
    pub claim: Script,
    pub forget: Script,
    pub append: Script,
    pub count: Script,
    pub charge: Script,
    pub uncount: Script,
    pub put_file: Script,
    pub replace_account: Script,
    pub delete_if: Script,
    pub revoke: Script,
    pub revoked: Script,
    pub roster: Script,
}

impl Scripts {
    pub fn new() -> Self {
        Self {
            login: script(include_str!("login.lua")),
            logout: script(include_str!("logout.lua")),
            roster: script(include_str!("roster.lua")),
            join: script(include_str!("join.lua")),
            leave: script(include_str!("leave.lua")),
            rooms: script(include_str!("rooms.lua")),
            heartbeat: script(include_str!("heartbeat.lua")),
            dead: script(include_str!("dead.lua")),
            claim: script(include_str!("claim.lua")),
            forget: script(include_str!("forget.lua")),
            append: script(include_str!("append.lua")),
            count: script(include_str!("count.lua")),
            charge: script(include_str!("charge.lua")),
            uncount: script(include_str!("uncount.lua")),
            put_file: script(include_str!("put_file.lua")),
            replace_account: script(include_str!("replace_account.lua")),
            delete_if: script(include_str!("delete_if.lua")),
            revoke: script(include_str!("revoke.lua")),
            revoked: script(include_str!("revoked.lua")),
        }
    }
}

/// Redis key names, all under one configurable prefix so several
/// deployments can share a Redis.
#[derive(Debug, Clone)]
pub struct Keys {
    /// user key → "count\nproof\ndisplay name"
    pub users: String,
    /// The online users' roster entries (`domain::roster`), score 0, for paging by name
    pub roster: String,
    /// user key → its entry in `roster` (what logout removes)
    pub roster_entries: String,
    /// "instance/sid" → "user key\nroom\nroom..."
    pub sockets: String,
    /// rooms with at least one member
    pub rooms: String,
    /// instance id → last heartbeat (ms, Redis clock)
    pub instances: String,
    /// instance id → the name of its command connections (`CLIENT SETNAME`)
    pub connections: String,
    /// instance id → "on" if it routes room broadcasts (`ROUTED_ROOMS`),
    /// else "off"; written with its heartbeat
    pub routing: String,
    room_prefix: String,
    instance_prefix: String,
    purging_prefix: String,
    history_prefix: String,
    prefix: String,
}

impl Keys {
    pub fn new(prefix: &str) -> Self {
        let tag = format!("{{{prefix}}}");
        Self {
            users: format!("{tag}:users"),
            roster: format!("{tag}:roster"),
            roster_entries: format!("{tag}:roster_entries"),
            sockets: format!("{tag}:sockets"),
            rooms: format!("{tag}:rooms"),
            instances: format!("{tag}:instances"),
            connections: format!("{tag}:connections"),
            routing: format!("{tag}:routing"),
            room_prefix: format!("{tag}:room:"),
            instance_prefix: format!("{tag}:instance:"),
            purging_prefix: format!("{tag}:purging:"),
            history_prefix: format!("{prefix}:history:"),
            prefix: prefix.to_owned(),
        }
    }

    /// Prefix of the per-room hashes (user key → sockets in the room).
    pub fn room_prefix(&self) -> &str {
        &self.room_prefix
    }

    /// The hash of one room's members.
    pub fn room(&self, room: &RoomName) -> String {
        format!("{}{}", self.room_prefix, room.as_str())
    }

    /// The set of one instance's sockets.
    pub fn instance(&self, instance: &str) -> String {
        format!("{}{instance}", self.instance_prefix)
    }

    /// The claim a survivor holds while it purges a dead instance.
    pub fn purging(&self, instance: &str) -> String {
        format!("{}{instance}", self.purging_prefix)
    }

    /// An account (JSON string), by name key. Spread over the cluster.
    pub fn account(&self, user_key: &str) -> String {
        format!("{}:account:{user_key}", self.prefix)
    }

    /// An account's avatar (hash of mime, etag, data).
    pub fn avatar(&self, user_key: &str) -> String {
        format!("{}:avatar:{user_key}", self.prefix)
    }

    /// A rate-limit counter.
    pub fn attempts(&self, key: &str) -> String {
        format!("{}:attempts:{key}", self.prefix)
    }

    /// Revoked token ids, scored by when their tokens expire. No TTL, so
    /// eviction of volatile keys never un-revokes a token.
    pub fn revoked(&self) -> String {
        format!("{}:revoked", self.prefix)
    }

    /// A quota counter (see `AccountStore::charge`).
    pub fn quota(&self, key: &str) -> String {
        format!("{}:quota:{key}", self.prefix)
    }

    /// A stored file (hash of meta, data).
    pub fn file(&self, id: &str) -> String {
        format!("{}:file:{id}", self.prefix)
    }

    /// The sorted set holding one conversation's history.
    pub fn history(&self, conversation: &Conversation) -> String {
        format!("{}{}", self.history_prefix, conversation.storage_key())
    }
}

/// How a socket is named in Redis.
pub fn socket_id(socket: &SocketKey) -> String {
    format!("{}/{}", socket.instance, socket.sid)
}

/// The reverse of [`socket_id`].
pub fn parse_socket_id(id: &str) -> Option<SocketKey> {
    let (instance, sid) = id.rsplit_once('/')?;
    Some(SocketKey { instance: instance.into(), sid: sid.to_owned() })
}
