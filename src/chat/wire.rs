//! The wire types of the event contract (see docs/PROTOCOL.md). Field
//! names are the wire names. Here, what clients send: each event's first
//! argument. Requests hold raw strings: `Request::from_wire`
//! (`chat::request`) parses them into domain values, so each rule gives its
//! own error code. What the server sends is in [`outgoing`].

mod outgoing;

pub use outgoing::*;

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

/// Most users one multicast may name.
pub const MAX_RECIPIENTS: usize = 50;

/// `add user`: the demo sends a bare name; our client adds the session
/// secret it got at its first login, to take its name back on reconnect.
///
/// Read by hand, not as a `#[serde(untagged)]` enum: serde buffers an
/// untagged value whole (at 10 to 30 times its size) before trying each
/// variant, and this payload is read before its sender has logged in.
#[derive(Debug)]
pub enum AddUser {
    /// `"alice"`
    Name(String),
    /// `{ username, session? }`
    WithSession {
        /// The name to log in as.
        username: String,
        /// The secret returned by an earlier login.
        session: Option<String>,
    },
}

impl<'de> Deserialize<'de> for AddUser {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        /// The object form; unknown fields are skipped, not kept.
        #[derive(Deserialize)]
        struct WithSession {
            username: String,
            #[serde(default)]
            session: Option<String>,
        }
        struct NameOrObject;
        impl<'de> Visitor<'de> for NameOrObject {
            type Value = AddUser;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a name, or an object { username, session? }")
            }
            fn visit_str<E: de::Error>(self, name: &str) -> Result<AddUser, E> {
                Ok(AddUser::Name(name.to_owned()))
            }
            fn visit_string<E: de::Error>(self, name: String) -> Result<AddUser, E> {
                Ok(AddUser::Name(name))
            }
            fn visit_map<M: MapAccess<'de>>(self, map: M) -> Result<AddUser, M::Error> {
                let WithSession { username, session } =
                    WithSession::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(AddUser::WithSession { username, session })
            }
        }
        deserializer.deserialize_any(NameOrObject)
    }
}

/// `join` and `leave`.
#[derive(Debug, Deserialize)]
#[serde(expecting = "an object { room }")]
pub struct RoomRequest {
    /// The room.
    pub room: String,
}

/// One name or a list of names (`to` of `message`, `with` of `history`).
///
/// Read by hand, not as a `#[serde(untagged)]` enum (which buffers the
/// whole value first): a list keeps at most one name more than
/// [`MAX_RECIPIENTS`], enough to answer
/// `too_many_recipients`, and skips the rest without keeping it.
#[derive(Debug)]
pub enum Names {
    /// A single user.
    One(String),
    /// Several users.
    Many(Vec<String>),
}

impl<'de> Deserialize<'de> for Names {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NameOrList;
        impl<'de> Visitor<'de> for NameOrList {
            type Value = Names;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a name or a list of names")
            }
            fn visit_str<E: de::Error>(self, name: &str) -> Result<Names, E> {
                Ok(Names::One(name.to_owned()))
            }
            fn visit_string<E: de::Error>(self, name: String) -> Result<Names, E> {
                Ok(Names::One(name))
            }
            fn visit_seq<S: de::SeqAccess<'de>>(self, mut seq: S) -> Result<Names, S::Error> {
                let keep = MAX_RECIPIENTS + 1;
                let mut names = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(keep));
                while names.len() < keep {
                    match seq.next_element::<String>()? {
                        Some(name) => names.push(name),
                        None => return Ok(Names::Many(names)),
                    }
                }
                while seq.next_element::<de::IgnoredAny>()?.is_some() {}
                Ok(Names::Many(names))
            }
        }
        deserializer.deserialize_any(NameOrList)
    }
}

/// `message`: exactly one of `room` / `to`, and a text, a file, or both.
#[derive(Debug, Deserialize)]
#[serde(expecting = "an object { room | to, text?, file? }")]
pub struct SendMessage {
    /// A room the sender has joined.
    pub room: Option<String>,
    /// A user, or a list of users.
    pub to: Option<Names>,
    /// The text.
    pub text: Option<String>,
    /// A file.
    #[serde(default, deserialize_with = "binary_safe_option")]
    pub file: Option<FileUpload>,
}

/// `Option<T>` for values that may carry binary attachments. socketioxide's
/// deserializer swaps attachments in for their placeholders everywhere but
/// inside `Option` (its `deserialize_option` drops that wrapping), so an
/// optional file is read as "null, or a map read with the wrapping kept".
fn binary_safe_option<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct NullOrMap<T>(PhantomData<T>);
    impl<'de, T: Deserialize<'de>> Visitor<'de> for NullOrMap<T> {
        type Value = Option<T>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("null or an object")
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_map<M: MapAccess<'de>>(self, map: M) -> Result<Self::Value, M::Error> {
            T::deserialize(de::value::MapAccessDeserializer::new(map)).map(Some)
        }
    }
    deserializer.deserialize_any(NullOrMap(PhantomData))
}

/// A file sent with `message`: `data` must be binary (a socket.io binary
/// attachment: an ArrayBuffer, Blob or Buffer in the JavaScript client).
#[derive(Debug, Deserialize)]
#[serde(expecting = "a file { name, type, data }, data being binary")]
pub struct FileUpload {
    /// The file's name.
    pub name: String,
    /// The type the sender claims; ignored (the type is read from the bytes).
    #[serde(rename = "type", default)]
    pub claimed_type: Option<String>,
    /// The bytes.
    pub data: bytes::Bytes,
}

/// `history`: exactly one of `room` / `with`, and an optional page.
#[derive(Debug, Deserialize)]
#[serde(expecting = "an object { room | with, before?, after?, limit? }")]
pub struct HistoryRequest {
    /// A room the requester has joined.
    pub room: Option<String>,
    /// The other participant(s) of a private conversation.
    pub with: Option<Names>,
    /// Only messages older than this id.
    pub before: Option<String>,
    /// Only messages newer than this id.
    pub after: Option<String>,
    /// How many messages at most.
    pub limit: Option<u64>,
}

/// `users`: nothing (the first page), or which page.
#[derive(Debug, Default, Deserialize)]
#[serde(expecting = "nothing, or an object { after?, prefix?, limit? }")]
pub struct UsersRequest {
    /// The last name of the previous page (its `next`).
    pub after: Option<String>,
    /// Only names starting with this, ignoring case.
    pub prefix: Option<String>,
    /// How many names at most.
    pub limit: Option<u64>,
}

/// `typing` / `stop typing`: no argument (everyone, like the demo), a room,
/// or users.
#[derive(Debug, Deserialize)]
#[serde(expecting = "nothing, or an object { room } or { to }")]
pub struct TypingRequest {
    /// A room the typist has joined.
    pub room: Option<String>,
    /// The user(s) of a private conversation.
    pub to: Option<Names>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly")]

    use super::*;

    #[test]
    fn add_user_takes_a_name_or_an_object() {
        assert!(
            matches!(serde_json::from_str(r#""alice""#).unwrap(), AddUser::Name(name) if name == "alice")
        );
        let object = r#"{ "username": "alice", "session": "s", "extra": [1, 2, 3] }"#;
        let parsed: AddUser = serde_json::from_str(object).unwrap();
        assert!(
            matches!(parsed, AddUser::WithSession { username, session: Some(session) } if username == "alice" && session == "s")
        );
        assert!(serde_json::from_str::<AddUser>(r#"{ "session": "s" }"#).is_err(), "a username is required");
        assert!(serde_json::from_str::<AddUser>("42").is_err());
        assert!(serde_json::from_str::<AddUser>(r#"["alice"]"#).is_err());
    }

    #[test]
    fn a_list_of_names_keeps_one_more_than_the_recipient_limit() {
        assert!(matches!(serde_json::from_str(r#""bob""#).unwrap(), Names::One(name) if name == "bob"));
        let Names::Many(two) = serde_json::from_str(r#"["a", "b"]"#).unwrap() else { panic!("a list") };
        assert_eq!(two, ["a", "b"]);
        let many = serde_json::to_string(&vec!["x"; 10_000]).unwrap();
        let Names::Many(kept) = serde_json::from_str(&many).unwrap() else { panic!("a list") };
        assert_eq!(kept.len(), MAX_RECIPIENTS + 1, "enough to answer too_many_recipients");
        let mixed = format!(r#"[{}, 1, {{"x": []}}]"#, vec![r#""x""#; 60].join(","));
        assert!(serde_json::from_str::<Names>(&mixed).is_ok(), "what is past the limit is skipped");
        assert!(serde_json::from_str::<Names>(r#"["a", 1]"#).is_err(), "names within the limit are names");
        assert!(serde_json::from_str::<Names>("{}").is_err());
    }
}
