//! The server's decoding of one incoming packet, without a socket: the
//! socket.io packet parser socketioxide runs, then the request types and
//! domain rules the handlers apply. It exists for fuzzing (`fuzz/`) and for
//! the randomized test that runs in the test suite: whatever the bytes,
//! decoding ends in a verdict, never a panic.

use bytes::Bytes;
use serde::de::DeserializeOwned;
use socketioxide_core::Str;
use socketioxide_core::packet::PacketData;
use socketioxide_core::parser::{Parse, ParseConfig, ParseError, ParserState};
use socketioxide_parser_common::CommonParser;

use super::events::{ADD_USER, HISTORY, JOIN, LEAVE, MESSAGE, NEW_MESSAGE, STOP_TYPING, TYPING};
use super::extract::FirstArg;
use super::wire::{AddUser, HistoryRequest, Names, RoomRequest, SendMessage, TypingRequest};
use crate::domain::{FileName, MediaType, MessageId, RoomName, Text, Username, ValidationError};

/// What the server makes of a packet.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Not a valid socket.io packet, or one the server does not act on.
    Malformed,
    /// A binary packet still waiting for attachments.
    Incomplete,
    /// An event whose payload the handler would refuse, with the reason.
    Refused(String),
    /// An event the handler would go on to act on.
    Accepted(String),
}

/// Decodes `frame` (an engine.io text frame, `42[event, payload]`, and its
/// binary `attachments`) as a socket.io packet and checks the event's
/// payload as its handler would.
pub fn decode(frame: &str, attachments: &[&[u8]]) -> Verdict {
    // Engine.io's message type; the others (ping, pong, …) carry no payload.
    let Some(text) = frame.strip_prefix('4') else { return Verdict::Malformed };
    let config = ParseConfig { max_incoming_binaries: 2, ..ParseConfig::default() };
    let state = ParserState::default();
    let mut result = CommonParser.decode_str(&config, &state, Str::from(text.to_owned()));
    for attachment in attachments {
        if !matches!(result, Err(ParseError::NeedsMoreBinaryData)) {
            break;
        }
        result = CommonParser.decode_bin(&config, &state, Bytes::copy_from_slice(attachment));
    }
    let mut value = match result {
        Ok(packet) => match packet.inner {
            PacketData::Event(value, _) | PacketData::BinaryEvent(value, _) => value,
            _ => return Verdict::Malformed,
        },
        Err(ParseError::NeedsMoreBinaryData) => return Verdict::Incomplete,
        Err(_) => return Verdict::Malformed,
    };
    let Ok(event) = CommonParser.read_event(&value).map(str::to_owned) else { return Verdict::Malformed };
    let checked = match event.as_str() {
        ADD_USER => arg::<AddUser>(&mut value).and_then(|request| {
            let name = match request {
                AddUser::Name(name) | AddUser::WithSession { username: name, .. } => name,
            };
            rule(Username::parse(&name))
        }),
        JOIN | LEAVE => arg::<RoomRequest>(&mut value).and_then(|r| rule(RoomName::parse(&r.room))),
        MESSAGE => arg::<SendMessage>(&mut value).and_then(check_message),
        HISTORY => arg::<HistoryRequest>(&mut value).and_then(|request| {
            request.room.as_deref().map(RoomName::parse).transpose().map_err(|e| e.to_string())?;
            names(request.with.as_ref())?;
            for cursor in [&request.before, &request.after].into_iter().flatten() {
                rule(MessageId::parse(cursor))?;
            }
            Ok(())
        }),
        TYPING | STOP_TYPING => arg::<Option<TypingRequest>>(&mut value).and_then(|request| {
            let Some(request) = request else { return Ok(()) };
            request.room.as_deref().map(RoomName::parse).transpose().map_err(|e| e.to_string())?;
            names(request.to.as_ref())
        }),
        NEW_MESSAGE => arg::<String>(&mut value).and_then(|text| rule(Text::parse(&text))),
        _ => Ok(()),
    };
    match checked {
        Ok(()) => Verdict::Accepted(event),
        Err(reason) => Verdict::Refused(reason),
    }
}

fn arg<T: DeserializeOwned>(value: &mut socketioxide_core::Value) -> Result<T, String> {
    let FirstArg(first) = CommonParser.decode_value::<FirstArg<T>>(value, true).map_err(|e| e.to_string())?;
    first.ok_or_else(|| "missing argument".to_owned())
}

fn rule<T>(result: Result<T, ValidationError>) -> Result<(), String> {
    result.map(|_| ()).map_err(|err| err.to_string())
}

fn names(names: Option<&Names>) -> Result<(), String> {
    match names {
        None => Ok(()),
        Some(Names::One(name)) => rule(Username::parse(name)),
        Some(Names::Many(list)) => list.iter().try_for_each(|name| rule(Username::parse(name))),
    }
}

fn check_message(request: SendMessage) -> Result<(), String> {
    request.room.as_deref().map(RoomName::parse).transpose().map_err(|e| e.to_string())?;
    names(request.to.as_ref())?;
    if let Some(text) = &request.text {
        rule(Text::parse(text))?;
    }
    if let Some(file) = &request.file {
        rule(FileName::parse(&file.name))?;
        rule(MediaType::sniff(&file.data))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_follow_the_rules() {
        let frame = |prefix: &str, event: &str, payload: serde_json::Value| {
            format!("{prefix}{}", serde_json::json!([event, payload]))
        };
        let join = |room: &str| frame("42", JOIN, serde_json::json!({ "room": room }));
        assert_eq!(decode(&join("general"), &[]), Verdict::Accepted(JOIN.into()));
        assert!(matches!(decode(&join(""), &[]), Verdict::Refused(_)));
        assert_eq!(decode("42[", &[]), Verdict::Malformed);
        let png = [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 0x0D, b'I', b'H', b'D', b'R'];
        let placeholder = serde_json::json!({ "_placeholder": true, "num": 0 });
        let file = frame(
            "451-",
            MESSAGE,
            serde_json::json!({ "to": "bob", "file": { "name": "a.png", "data": placeholder } }),
        );
        assert_eq!(decode(&file, &[]), Verdict::Incomplete);
        assert_eq!(decode(&file, &[&png]), Verdict::Accepted(MESSAGE.into()));
        assert!(matches!(decode(&file, &[b"<svg/>"]), Verdict::Refused(_)));
    }
}
