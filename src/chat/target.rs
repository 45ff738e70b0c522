//! Where a message, a typing notice or a history request points: a room,
//! or users. The choice is read once, by [`parse`] (from the payload
//! alone), into a [`Target`]; [`resolve`] then checks it against the socket
//! and the store.

use socketioxide::adapter::Adapter;
use socketioxide::extract::SocketRef;

use super::rooms::ensure_member;
use super::wire::{MAX_RECIPIENTS, Names};
use super::{Chat, ChatError};
use crate::domain::{RoomName, Target, UserId, Username};

/// How a request names its target's fields, for the errors that quote them.
pub struct Fields {
    /// The field naming users (`to`, or `with` in `history`).
    users: &'static str,
    /// The refusal when neither field is given.
    neither: &'static str,
}

/// `message`, `typing` and `stop typing`: `room` or `to`.
pub const ROOM_OR_TO: Fields = Fields { users: "to", neither: "say where the message goes: `room` or `to`" };

/// `history`: `room` or `with`.
pub const ROOM_OR_WITH: Fields = Fields { users: "with", neither: "say which history: `room` or `with`" };

/// Reads a target from its two wire fields, exactly one of which is given.
pub fn parse(room: Option<String>, users: Option<Names>, fields: &Fields) -> Result<Target, ChatError> {
    match (room, users) {
        (Some(room), None) => Ok(Target::Room(RoomName::parse(&room)?)),
        (None, Some(Names::One(name))) => Ok(Target::User(Username::parse(&name)?)),
        (None, Some(Names::Many(names))) => Ok(Target::Users(parse_names(&names)?)),
        (Some(_), Some(_)) => {
            Err(ChatError::invalid_payload(format!("give either `room` or `{}`, not both", fields.users)))
        }
        (None, None) => Err(ChatError::invalid_payload(fields.neither)),
    }
}

/// A recipient list: 1 to [`MAX_RECIPIENTS`] valid names, duplicates dropped.
fn parse_names(raw: &[String]) -> Result<Vec<Username>, ChatError> {
    if raw.is_empty() {
        return Err(ChatError::invalid_payload("`to` must name at least one user"));
    }
    if raw.len() > MAX_RECIPIENTS {
        return Err(ChatError::TooManyRecipients(MAX_RECIPIENTS));
    }
    let mut names: Vec<Username> = Vec::with_capacity(raw.len());
    for name in raw {
        let name = Username::parse(name)?;
        if !names.contains(&name) {
            names.push(name);
        }
    }
    Ok(names)
}

/// A target checked against the socket and the store.
pub struct Resolved {
    /// The room, or the users as the deployment spells their names.
    pub target: Target,
    /// The users' identities (empty for a room).
    pub ids: Vec<UserId>,
}

/// Checks that the socket joined the room (`not_in_room`), or that every
/// user named is online (`unknown_user`).
pub async fn resolve<A: Adapter>(
    chat: &Chat,
    socket: &SocketRef<A>,
    target: Target,
) -> Result<Resolved, ChatError> {
    match target {
        Target::Room(room) => {
            ensure_member(socket, &room)?;
            Ok(Resolved { target: Target::Room(room), ids: Vec::new() })
        }
        Target::User(name) => {
            let online = chat.store().find_online(std::slice::from_ref(&name)).await?;
            let (user, id) = online.into_iter().next().ok_or(ChatError::UnknownUser(name.to_string()))?;
            Ok(Resolved { target: Target::User(user), ids: vec![id] })
        }
        Target::Users(names) => {
            let (users, ids) = chat.store().find_online(&names).await?.into_iter().unzip();
            Ok(Resolved { target: Target::Users(users), ids })
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly")]

    use super::*;

    fn code(result: Result<Target, ChatError>) -> &'static str {
        result.map_or_else(|err| err.code(), |_| "ok")
    }

    #[test]
    fn a_target_is_a_room_or_users_never_both_nor_neither() {
        let room = || Some("general".to_owned());
        let bob = || Some(Names::One("bob".to_owned()));
        assert_eq!(
            parse(room(), None, &ROOM_OR_TO).unwrap(),
            Target::Room(RoomName::parse("general").unwrap())
        );
        assert_eq!(parse(None, bob(), &ROOM_OR_TO).unwrap(), Target::User(Username::parse("bob").unwrap()));
        let both = parse(room(), bob(), &ROOM_OR_WITH).unwrap_err();
        assert_eq!(both.to_string(), "give either `room` or `with`, not both");
        assert_eq!(code(parse(None, None, &ROOM_OR_TO)), "invalid_payload");
        assert_eq!(code(parse(Some(String::new()), None, &ROOM_OR_TO)), "invalid_room");
    }

    #[test]
    fn a_recipient_list_is_one_to_the_limit_of_names_without_duplicates() {
        let list = |names: &[&str]| Some(Names::Many(names.iter().map(|name| (*name).to_owned()).collect()));
        let Target::Users(users) = parse(None, list(&["a", "b", "a"]), &ROOM_OR_TO).unwrap() else {
            panic!("a list of users")
        };
        assert_eq!(users.len(), 2, "duplicates dropped");
        assert_eq!(code(parse(None, list(&[]), &ROOM_OR_TO)), "invalid_payload");
        assert_eq!(code(parse(None, list(&["x"; MAX_RECIPIENTS + 1]), &ROOM_OR_TO)), "too_many_recipients");
        assert_eq!(code(parse(None, list(&["a", ""]), &ROOM_OR_TO)), "invalid_username");
    }
}
