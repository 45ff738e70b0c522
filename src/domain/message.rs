//! Chat messages, where they go ([`Target`]) and where they are kept ([`Conversation`]).

use std::borrow::Cow;
use std::collections::BTreeSet;

use bytes::Bytes;
use serde::{Deserialize, Serialize, Serializer};

use super::{FileName, MessageId, RoomName, Text, UserId, Username};

/// A message as stored in history and delivered to recipients. On the
/// wire and in history its target is spelled `room` or `to` (see
/// `Fields`); absent fields are omitted, not sent as `null`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "Fields<'static>")]
pub struct Message {
    /// Unique, time-sortable id.
    pub id: MessageId,
    /// Milliseconds since the Unix epoch, taken from the id.
    pub ts: u64,
    /// The sender.
    pub from: Username,
    /// A room, or one or several users.
    pub target: Target,
    /// The text, if any.
    pub text: Option<Text>,
    /// An attached file, if any.
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
        Self { id, ts: id.timestamp_ms(), from, target, text, file }
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

/// The recipients of a private or multicast message, as the sender named
/// them: a message's `to`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Recipients<'a> {
    /// Private: `to: "name"`.
    One(&'a Username),
    /// Multicast: `to: ["a", "b"]`; every recipient sees the full list.
    Many(&'a [Username]),
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
    /// The room (`None` for users).
    pub fn room(&self) -> Option<&RoomName> {
        match self {
            Self::Room(room) => Some(room),
            Self::User(_) | Self::Users(_) => None,
        }
    }

    /// The recipients, as a message's `to` names them (`None` for a room).
    pub fn recipients(&self) -> Option<Recipients<'_>> {
        match self {
            Self::Room(_) => None,
            Self::User(user) => Some(Recipients::One(user)),
            Self::Users(users) => Some(Recipients::Many(users)),
        }
    }

    /// The users named (none for a room).
    pub fn users(&self) -> &[Username] {
        match self {
            Self::Room(_) => &[],
            Self::User(user) => std::slice::from_ref(user),
            Self::Users(users) => users,
        }
    }
}

/// A message's fields as the wire and history spell them. Its target is
/// two optional fields there, exactly one of them set. Borrowed from the
/// message when written; owned when read (serde reads a `Cow` as owned).
#[derive(Serialize, Deserialize)]
#[serde(rename = "Message")]
struct Fields<'a> {
    id: MessageId,
    ts: u64,
    from: Cow<'a, Username>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    room: Option<Cow<'a, RoomName>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    to: Option<To<'a>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    text: Option<Cow<'a, Text>>,
    #[serde(default, skip_serializing_if = "Option::is_none", serialize_with = "some_as_value")]
    file: Option<Cow<'a, Attachment>>,
}

/// `to`: a name or a list of names; borrowed when written, owned when read.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum To<'a> {
    One(Cow<'a, Username>),
    Many(Cow<'a, [Username]>),
}

impl Serialize for Message {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let to = self.target.recipients().map(|to| match to {
            Recipients::One(user) => To::One(Cow::Borrowed(user)),
            Recipients::Many(users) => To::Many(Cow::Borrowed(users)),
        });
        Fields {
            id: self.id,
            ts: self.ts,
            from: Cow::Borrowed(&self.from),
            room: self.target.room().map(Cow::Borrowed),
            to,
            text: self.text.as_ref().map(Cow::Borrowed),
            file: self.file.as_ref().map(Cow::Borrowed),
        }
        .serialize(serializer)
    }
}

impl TryFrom<Fields<'_>> for Message {
    type Error = &'static str;
    fn try_from(fields: Fields<'_>) -> Result<Self, Self::Error> {
        let target = match (fields.room, fields.to) {
            (Some(room), None) => Target::Room(room.into_owned()),
            (None, Some(To::One(user))) => Target::User(user.into_owned()),
            (None, Some(To::Many(users))) => Target::Users(users.into_owned()),
            (Some(_), Some(_)) => return Err("a message goes to a room or to users, not both"),
            (None, None) => return Err("a message needs a room or users"),
        };
        let (text, file) = (fields.text.map(Cow::into_owned), fields.file.map(Cow::into_owned));
        Ok(Self { id: fields.id, ts: fields.ts, from: fields.from.into_owned(), target, text, file })
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
    use crate::domain::testing::user;

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

    #[test]
    fn a_message_goes_to_a_room_or_to_users_on_the_wire_and_in_history() {
        let ids = IdGenerator::new();
        let room = Target::Room(RoomName::parse("general").unwrap());
        let users = Target::Users(vec![user("bob"), user("carol")]);
        for target in [room, users] {
            let msg = Message::new(ids.next(), user("alice"), target, Some(Text::parse("hi").unwrap()), None);
            let json = serde_json::to_value(&msg).unwrap();
            assert_eq!(json.get("room").is_some(), msg.target.room().is_some(), "{json}");
            assert_eq!(json.get("to").is_some(), msg.target.room().is_none(), "{json}");
            assert_eq!(serde_json::from_value::<Message>(json).unwrap(), msg);
        }
        let multicast = serde_json::to_value(Message::new(
            ids.next(),
            user("a"),
            Target::Users(vec![user("b")]),
            None,
            None,
        ));
        assert_eq!(multicast.unwrap()["to"], serde_json::json!(["b"]), "a list stays a list");
        let id = ids.next();
        let both = serde_json::json!({ "id": id, "ts": 1, "from": "a", "room": "r", "to": "b" });
        assert!(serde_json::from_value::<Message>(both).is_err());
        let neither = serde_json::json!({ "id": id, "ts": 1, "from": "a" });
        assert!(serde_json::from_value::<Message>(neither).is_err());
    }
}
