//! What the Lua scripts answer, read by shape.
//!
//! Each script documents its reply on its `-- →` line; the functions here
//! match a reply against exactly those shapes. Anything else (a short
//! array, an unknown status, a string where a count belongs, another
//! chatwire version's scripts under the same prefix) is [`unexpected`]: a
//! [`StoreError`] naming the script, never a guess, a default or a panic.

use std::fmt::Debug;
use std::time::Duration;

use fred::prelude::Value;

use crate::domain::{RoomName, Username};
use crate::store::{Attempts, Charge, Heartbeat, RoomInfo, StoreError};

/// A script's reply of a shape it never sends.
pub(super) fn unexpected(script: &str, reply: &impl Debug) -> StoreError {
    StoreError::Unavailable(format!("unexpected reply from the {script} script: {reply:?}"))
}

/// The items of an array reply.
pub(super) fn items(script: &str, reply: Value) -> Result<Vec<Value>, StoreError> {
    match reply {
        Value::Array(items) => Ok(items),
        other => Err(unexpected(script, &other)),
    }
}

/// A Lua number.
fn integer(script: &str, value: &Value) -> Result<i64, StoreError> {
    match value {
        Value::Integer(n) => Ok(*n),
        other => Err(unexpected(script, other)),
    }
}

/// A Lua 0 or 1.
pub(super) fn flag(script: &str, value: &Value) -> Result<bool, StoreError> {
    match integer(script, value)? {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(unexpected(script, value)),
    }
}

/// A Lua number that counts something: never negative.
pub(super) fn count(script: &str, value: &Value) -> Result<usize, StoreError> {
    usize::try_from(integer(script, value)?).map_err(|_| unexpected(script, value))
}

/// A Lua number of milliseconds: never negative.
fn millis(script: &str, value: &Value) -> Result<Duration, StoreError> {
    let ms = u64::try_from(integer(script, value)?).map_err(|_| unexpected(script, value))?;
    Ok(Duration::from_millis(ms))
}

/// A Lua string.
pub(super) fn string(script: &str, value: &Value) -> Result<String, StoreError> {
    match value {
        Value::String(text) => Ok(text.to_string()),
        Value::Bytes(bytes) => String::from_utf8(bytes.to_vec()).map_err(|_| unexpected(script, value)),
        other => Err(unexpected(script, other)),
    }
}

/// A display name the script read from the users hash.
pub(super) fn username(script: &str, value: &Value) -> Result<Username, StoreError> {
    Username::parse(&string(script, value)?)
        .map_err(|err| StoreError::Unavailable(format!("corrupt user in Redis: {err}")))
}

/// A room name the script read from presence.
pub(super) fn room_name(script: &str, value: &Value) -> Result<RoomName, StoreError> {
    RoomName::parse(&string(script, value)?)
        .map_err(|err| StoreError::Unavailable(format!("corrupt room in Redis: {err}")))
}

/// A reply that is 1 whenever the script ran to its end (append, forget,
/// put_file, revoke).
pub(super) fn done(script: &str, reply: Value) -> Result<(), StoreError> {
    match reply {
        Value::Integer(1) => Ok(()),
        other => Err(unexpected(script, &other)),
    }
}

/// A reply that is 0 or 1 (claim, delete_if, replace_account).
pub(super) fn yes_or_no(script: &str, reply: Value) -> Result<bool, StoreError> {
    flag(script, &reply)
}

/// An array of strings (dead, roster).
pub(super) fn strings(script: &str, reply: Value) -> Result<Vec<String>, StoreError> {
    items(script, reply)?.iter().map(|item| string(script, item)).collect()
}

/// heartbeat.lua: `{registered (0|1), unrouted live peer...}`.
pub(super) fn heartbeat(reply: Value) -> Result<Heartbeat, StoreError> {
    const SCRIPT: &str = "heartbeat";
    match items(SCRIPT, reply)?.as_slice() {
        [registered, peers @ ..] => Ok(Heartbeat {
            registered: flag(SCRIPT, registered)?,
            unrouted: peers.iter().map(|peer| string(SCRIPT, peer)).collect::<Result<_, _>>()?,
        }),
        other => Err(unexpected(SCRIPT, &other)),
    }
}

/// rooms.lua: `{room, member count, member display name..., room, ...}`,
/// rooms in no order and members sorted by name.
pub(super) fn rooms(reply: Value) -> Result<Vec<RoomInfo>, StoreError> {
    const SCRIPT: &str = "rooms";
    let items = items(SCRIPT, reply)?;
    let mut rest = items.as_slice();
    let mut rooms = Vec::new();
    while let [room, size, after @ ..] = rest {
        let size = count(SCRIPT, size)?;
        let (names, after) = after.split_at_checked(size).ok_or_else(|| unexpected(SCRIPT, &items))?;
        let mut members = names.iter().map(|name| username(SCRIPT, name)).collect::<Result<Vec<_>, _>>()?;
        members.sort_by(Username::display_order);
        rooms.push(RoomInfo { room: room_name(SCRIPT, room)?, members });
        rest = after;
    }
    if !rest.is_empty() {
        return Err(unexpected(SCRIPT, &items));
    }
    Ok(rooms)
}

/// count.lua: `{counted (0|1), count in this window, milliseconds until it closes}`.
pub(super) fn attempts(reply: Value) -> Result<Attempts, StoreError> {
    const SCRIPT: &str = "count";
    let (counted, count, resets_in) = window(SCRIPT, reply)?;
    Ok(Attempts { counted, count, resets_in })
}

/// charge.lua: `{accepted (0|1), count in this window, milliseconds until it resets}`.
pub(super) fn charge(reply: Value) -> Result<Charge, StoreError> {
    const SCRIPT: &str = "charge";
    let (accepted, used, resets_in) = window(SCRIPT, reply)?;
    Ok(Charge { accepted, used, resets_in })
}

/// The reply of a script counting in a fixed window (count.lua,
/// charge.lua): `{yes (0|1), count in this window, milliseconds until it
/// closes}`.
fn window(script: &str, reply: Value) -> Result<(bool, u64, Duration), StoreError> {
    match items(script, reply)?.as_slice() {
        [yes, in_window, left] => {
            Ok((flag(script, yes)?, count(script, in_window)? as u64, millis(script, left)?))
        }
        other => Err(unexpected(script, &other)),
    }
}

/// revoked.lua: one 0 or 1 per token asked about, in order.
pub(super) fn revoked(reply: Value, asked: usize) -> Result<Vec<bool>, StoreError> {
    const SCRIPT: &str = "revoked";
    let items = items(SCRIPT, reply)?;
    if items.len() != asked {
        return Err(unexpected(SCRIPT, &items));
    }
    items.iter().map(|item| flag(SCRIPT, item)).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly")]

    use super::*;

    fn array(items: &[Value]) -> Value {
        Value::Array(items.to_vec())
    }

    fn says_script(result: Result<impl Debug, StoreError>, script: &str) {
        match result {
            Err(StoreError::Unavailable(why)) => {
                assert!(why.contains(&format!("from the {script} script")), "{why}")
            }
            other => panic!("expected an error naming {script}, got {other:?}"),
        }
    }

    #[test]
    fn rooms_are_read_room_by_room() {
        let reply = array(&["b".into(), 2.into(), "Zoe".into(), "al".into(), "a".into(), 0.into()]);
        let rooms = rooms(reply).unwrap();
        assert_eq!(rooms.len(), 2);
        assert_eq!(rooms[0].room.as_str(), "b");
        let members: Vec<&str> = rooms[0].members.iter().map(Username::as_str).collect();
        assert_eq!(members, ["al", "Zoe"], "sorted by name");
        assert!(rooms[1].members.is_empty());
        assert!(super::rooms(array(&[])).unwrap().is_empty());
    }

    #[test]
    fn a_rooms_reply_short_of_its_members_or_counts_is_an_error() {
        says_script(rooms(array(&["b".into(), 3.into(), "al".into()])), "rooms");
        says_script(rooms(array(&["b".into(), "two".into(), "al".into()])), "rooms");
        says_script(rooms(array(&["b".into(), (-1).into()])), "rooms");
        says_script(rooms(array(&["b".into(), 0.into(), "c".into()])), "rooms");
        says_script(rooms(Value::Integer(1)), "rooms");
    }

    #[test]
    fn counters_and_charges_must_have_their_three_numbers() {
        let counted = attempts(array(&[1.into(), 3.into(), 1500.into()])).unwrap();
        assert_eq!(counted, Attempts { counted: true, count: 3, resets_in: Duration::from_millis(1500) });
        says_script(attempts(array(&[1.into(), 3.into()])), "count");
        says_script(attempts(array(&[2.into(), 3.into(), 10.into()])), "count");
        says_script(attempts(array(&[1.into(), 3.into(), (-5).into()])), "count");
        let charged = charge(array(&[0.into(), 7.into(), 10.into()])).unwrap();
        assert_eq!(charged, Charge { accepted: false, used: 7, resets_in: Duration::from_millis(10) });
        says_script(charge(array(&[0.into(), 7.into(), 10.into(), 1.into()])), "charge");
    }

    #[test]
    fn revocations_answer_every_token_asked_about() {
        assert_eq!(revoked(array(&[0.into(), 1.into()]), 2).unwrap(), [false, true]);
        says_script(revoked(array(&[0.into()]), 2), "revoked");
        says_script(revoked(array(&[0.into(), 3.into()]), 2), "revoked");
    }

    #[test]
    fn a_heartbeat_answers_whether_it_was_registered_then_the_unrouted_peers() {
        let told = heartbeat(array(&[1.into(), "b#1".into(), "c#2".into()])).unwrap();
        assert!(told.registered);
        assert_eq!(told.unrouted.into_iter().collect::<Vec<_>>(), ["b#1", "c#2"]);
        let first = heartbeat(array(&[0.into()])).unwrap();
        assert!(!first.registered && first.unrouted.is_empty());
        says_script(heartbeat(array(&[])), "heartbeat");
        says_script(heartbeat(array(&[2.into()])), "heartbeat");
        says_script(heartbeat(array(&[1.into(), 7.into()])), "heartbeat");
        says_script(heartbeat(Value::Integer(1)), "heartbeat");
    }

    #[test]
    fn yes_no_and_done_replies_take_nothing_else() {
        assert!(yes_or_no("claim", 1.into()).unwrap());
        assert!(!yes_or_no("claim", 0.into()).unwrap());
        says_script(yes_or_no("claim", 2.into()), "claim");
        says_script(yes_or_no("claim", "1".into()), "claim");
        assert!(done("append", 1.into()).is_ok());
        says_script(done("append", Value::Null), "append");
        assert_eq!(strings("dead", array(&["i1".into()])).unwrap(), ["i1"]);
        says_script(strings("dead", array(&[1.into()])), "dead");
    }
}
