//! Chat messages, where they go ([`Target`]) and where they are kept ([`Conversation`]).

use std::collections::BTreeSet;

use bytes::Bytes;
use serde::{Deserialize, Serialize, Serializer};

use super::{FileName, MessageId, RoomName, Text, UserId, Username};

/// A message as stored in history and delivered to recipients. Field names are
/// the wire names; absent fields are omitted, not sent as `null`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Unique, time-sortable id.
    pub id: MessageId,
    /// Milliseconds since the Unix epoch, taken from the id.
    pub ts: u64,
    /// The sender.
    pub from: Username,
    /// Set for room messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<RoomName>,
    /// Set for private (one name) and multicast (list of names) messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Recipients>,
    /// The text, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<Text>,
    /// An attached file, if any.
    #[serde(default, skip_serializing_if = "Option::is_none", serialize_with = "some_as_value")]
    pub file: Option<Attachment>,
}

/// A file sent with a message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attachment {
    /// The file's name, as the sender gave it (without directories).
    pub name: FileName,
    /// Its type, detected from its bytes.
    #[serde(rename = "type")]
    pub mime: String,
    /// Its size in bytes.
    pub size: u64,
    /// Where members of the conversation can fetch it (`GET`, with a token).
    pub url: String,
    /// The bytes themselves, as a socket.io binary attachment: present in
    /// live deliveries only; acks and history carry `url` instead.
    #[serde(default, skip_serializing_if = "Option::is_none", serialize_with = "some_as_value")]
    pub data: Option<Bytes>,
}

/// Serializes `Some(value)` as `value` itself. socketioxide's serializer
/// turns bytes into binary attachments everywhere but inside `Some` (its
/// `serialize_some` bypasses it), so every `Option` on the way to a file's
/// bytes is written this way; `None`s are skipped before reaching here.
fn some_as_value<T: Serialize, S: Serializer>(value: &Option<T>, serializer: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(value) => value.serialize(serializer),
        None => serializer.serialize_none(),
    }
}

impl Message {
    /// Builds a message from validated parts, stamped with `id`'s time.
    pub fn new(
        id: MessageId,
        from: Username,
        target: Target,
        text: Option<Text>,
        file: Option<Attachment>,
    ) -> Self {
        let to = target.recipients();
        let room = match target {
            Target::Room(room) => Some(room),
            Target::User(_) | Target::Users(_) => None,
        };
        Self { id, ts: id.timestamp_ms(), from, room, to, text, file }
    }

    /// The message as acks and history carry it: the file by its URL, without its bytes.
    pub fn without_data(&self) -> Self {
        let mut message = self.clone();
        if let Some(file) = &mut message.file {
            file.data = None;
        }
        message
    }
}

/// The recipients of a private or multicast message, as the sender named them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Recipients {
    /// Private: `to: "name"`.
    One(Username),
    /// Multicast: `to: ["a", "b"]`; every recipient sees the full list.
    Many(Vec<Username>),
}

impl Recipients {
    /// The recipient names.
    pub fn names(&self) -> &[Username] {
        match self {
            Self::One(user) => std::slice::from_ref(user),
            Self::Many(users) => users,
        }
    }
}

/// Where a message is sent.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// Every member of a room.
    Room(RoomName),
    /// Every socket of one user.
    User(Username),
    /// Every socket of each listed user.
    Users(Vec<Username>),
}

impl Target {
    /// The channel-independent recipients, as a message's `to` names them
    /// (`None` for a room).
    pub fn recipients(&self) -> Option<Recipients> {
        match self {
            Self::Room(_) => None,
            Self::User(user) => Some(Recipients::One(user.clone())),
            Self::Users(users) => Some(Recipients::Many(users.clone())),
        }
    }
}

/// A history thread: a room, or the set of identities in a private
/// conversation. A private message to Bob and a multicast to Bob and Carol
/// are different conversations, as group chats are.
///
/// Private conversations belong to [`UserId`]s, not names: whoever takes a
/// name later (a guest, or a new account) starts with nothing.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Conversation {
    /// A room's messages.
    Room(RoomName),
    /// Private and multicast messages among exactly these identities
    /// (sender included). Named apart from the old name-keyed `Direct`, so
    /// that nothing stored under names is ever read as an identity's.
    Private(BTreeSet<UserId>),
}

impl Conversation {
    /// True if `user` takes part in this private conversation (rooms: false;
    /// room membership is the presence store's business).
    pub fn includes(&self, user: &UserId) -> bool {
        match self {
            Self::Room(_) => false,
            Self::Private(ids) => ids.contains(user),
        }
    }

    /// The conversation of `me` with `others` (order and duplicates don't matter).
    pub fn private<'a>(me: &UserId, others: impl IntoIterator<Item = &'a UserId>) -> Self {
        let mut ids: BTreeSet<UserId> = others.into_iter().cloned().collect();
        ids.insert(me.clone());
        Self::Private(ids)
    }

    /// A stable string naming the conversation, used as a storage key.
    pub fn storage_key(&self) -> String {
        match self {
            Self::Room(room) => format!("room:{}", room.as_str()),
            Self::Private(ids) => {
                let list: Vec<&str> = ids.iter().map(UserId::as_str).collect();
                format!("private:{}", list.join(","))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::IdGenerator;

    fn user(name: &str) -> Username {
        Username::parse(name).unwrap()
    }

    #[test]
    fn private_conversation_ignores_order_and_duplicates() {
        let (alice, bob, carol) = (UserId::account("1"), UserId::account("2"), UserId::guest("3"));
        let a = Conversation::private(&alice, [&bob, &carol]);
        let b = Conversation::private(&carol, [&alice, &bob, &bob]);
        assert_eq!(a, b);
        assert_eq!(a.storage_key(), b.storage_key());
        assert_ne!(a, Conversation::private(&alice, [&bob]));
        assert!(a.includes(&carol));
        assert!(!a.includes(&UserId::guest("4")));
    }

    #[test]
    fn message_serializes_with_wire_names_and_no_nulls() {
        let id = IdGenerator::new().next();
        let text = Text::parse("hi").unwrap();
        let msg = Message::new(id, user("alice"), Target::User(user("bob")), Some(text), None);
        let json = serde_json::to_value(&msg).unwrap();
        assert_eq!(json["from"], "alice");
        assert_eq!(json["to"], "bob");
        assert_eq!(json["text"], "hi");
        assert_eq!(json["ts"], id.timestamp_ms());
        assert!(json.get("room").is_none());
        let back: Message = serde_json::from_value(json).unwrap();
        assert_eq!(back, msg);
    }
}
