//! Chat messages, where they go ([`Target`]) and where they are kept ([`Conversation`]).

use std::collections::BTreeSet;

use bytes::Bytes;
use serde::{Deserialize, Serialize, Serializer};

use super::{FileName, MessageId, RoomName, Text, Username};

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

    /// The conversation this message belongs to.
    pub fn conversation(&self) -> Conversation {
        match (&self.room, &self.to) {
            (Some(room), _) => Conversation::Room(room.clone()),
            (None, Some(to)) => Conversation::direct(&self.from, to.names()),
            // A message always has a target; a message without one is kept with the sender alone.
            (None, None) => Conversation::direct(&self.from, &[]),
        }
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

/// A history thread: a room, or the set of people in a private conversation.
/// A private message to Bob and a multicast to Bob and Carol are different
/// conversations, as group chats are.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Conversation {
    /// A room's messages.
    Room(RoomName),
    /// Private and multicast messages among exactly these users (sender included).
    Direct(BTreeSet<String>),
}

impl Conversation {
    /// True if `user` takes part in this private conversation (rooms: false;
    /// room membership is the presence store's business).
    pub fn includes(&self, user: &Username) -> bool {
        match self {
            Self::Room(_) => false,
            Self::Direct(keys) => keys.contains(user.key()),
        }
    }

    /// The conversation of `me` with `others` (order and duplicates don't matter).
    pub fn direct(me: &Username, others: &[Username]) -> Self {
        let mut keys: BTreeSet<String> = others.iter().map(|u| u.key().to_owned()).collect();
        keys.insert(me.key().to_owned());
        Self::Direct(keys)
    }

    /// A stable string naming the conversation, used as a storage key.
    /// Names may contain any visible character, so participants are encoded
    /// as a JSON array rather than joined with a separator.
    pub fn storage_key(&self) -> String {
        match self {
            Self::Room(room) => format!("room:{}", room.as_str()),
            Self::Direct(keys) => {
                let list: Vec<&str> = keys.iter().map(String::as_str).collect();
                format!("dm:{}", serde_json::Value::from(list))
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
    fn direct_conversation_ignores_order_case_and_duplicates() {
        let a = Conversation::direct(&user("Alice"), &[user("bob"), user("carol")]);
        let b = Conversation::direct(&user("carol"), &[user("ALICE"), user("Bob"), user("bob")]);
        assert_eq!(a, b);
        assert_eq!(a.storage_key(), b.storage_key());
        assert_ne!(a, Conversation::direct(&user("alice"), &[user("bob")]));
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
