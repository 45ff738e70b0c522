//! The server's decoding of one incoming packet, without a socket: the
//! socket.io packet parser socketioxide runs, then the table of events'
//! checks (`chat::table`): whether the event may carry binaries, and its
//! payload read into its request by the conversion its handler uses
//! (`chat::request`), so the verdict is the handler's. What needs a socket
//! or the store (being logged in, a room joined, a user online) and the
//! deployment's settings (MAX_FILE_BYTES, the history limit) is left out.
//! It exists for fuzzing (`fuzz/`) and for the randomized test that runs in
//! the test suite: whatever the bytes, decoding ends in a verdict, never a
//! panic.

use bytes::Bytes;
use socketioxide_core::Str;
use socketioxide_core::packet::PacketData;
use socketioxide_core::parser::{Parse, ParseConfig, ParseError, ParserState};
use socketioxide_parser_common::CommonParser;

use super::limits::MAX_BINARY_ATTACHMENTS;
use super::table;

/// What the server makes of a packet.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Not a valid socket.io packet, or one the server does not act on.
    Malformed,
    /// A binary packet still waiting for attachments.
    Incomplete,
    /// An event the server refuses (its handler would answer an error, or
    /// the server disconnects its sender), with the reason.
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
    let config = ParseConfig { max_incoming_binaries: MAX_BINARY_ATTACHMENTS, ..ParseConfig::default() };
    let state = ParserState::default();
    let mut result = CommonParser.decode_str(&config, &state, Str::from(text.to_owned()));
    for attachment in attachments {
        if !matches!(result, Err(ParseError::NeedsMoreBinaryData)) {
            break;
        }
        result = CommonParser.decode_bin(&config, &state, Bytes::copy_from_slice(attachment));
    }
    let (mut value, binary) = match result {
        Ok(packet) => match packet.inner {
            PacketData::Event(value, _) => (value, false),
            PacketData::BinaryEvent(value, _) => (value, true),
            _ => return Verdict::Malformed,
        },
        Err(ParseError::NeedsMoreBinaryData) => return Verdict::Incomplete,
        Err(_) => return Verdict::Malformed,
    };
    let Ok(event) = CommonParser.read_event(&value).map(str::to_owned) else { return Verdict::Malformed };
    if binary && !table::accepts_binary(&event) {
        return Verdict::Refused(
            "this event takes no binary attachments: its sender is disconnected".to_owned(),
        );
    }
    match table::incoming(&event).map(|incoming| (incoming.check)(&mut value)) {
        Some(Err(refusal)) => Verdict::Refused(refusal.to_string()),
        Some(Ok(())) | None => Verdict::Accepted(event),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::chat::events::{ADD_USER, HISTORY, JOIN, MESSAGE, TYPING};

    /// An engine.io frame of `event` with these arguments, after `prefix`.
    fn frame(prefix: &str, event: &str, args: &[Value]) -> String {
        format!("{prefix}{}", Value::from([&[Value::from(event)], args].concat()))
    }

    fn refused(verdict: Verdict) -> bool {
        matches!(verdict, Verdict::Refused(_))
    }

    #[test]
    fn verdicts_follow_the_rules() {
        let join = |room: &str| frame("42", JOIN, &[json!({ "room": room })]);
        assert_eq!(decode(&join("general"), &[]), Verdict::Accepted(JOIN.into()));
        assert!(matches!(decode(&join(""), &[]), Verdict::Refused(_)));
        assert_eq!(decode("42[", &[]), Verdict::Malformed);
        let png = [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 0x0D, b'I', b'H', b'D', b'R'];
        let placeholder = json!({ "_placeholder": true, "num": 0 });
        let file = frame(
            "451-",
            MESSAGE,
            &[json!({ "to": "bob", "file": { "name": "a.png", "data": placeholder } })],
        );
        assert_eq!(decode(&file, &[]), Verdict::Incomplete);
        assert_eq!(decode(&file, &[&png]), Verdict::Accepted(MESSAGE.into()));
        assert!(matches!(decode(&file, &[b"<svg/>"]), Verdict::Refused(_)));
    }

    #[test]
    fn the_verdict_is_the_handlers_where_the_probe_used_to_differ() {
        assert_eq!(
            decode(&frame("42", TYPING, &[]), &[]),
            Verdict::Accepted(TYPING.into()),
            "typing to everyone"
        );
        let session = json!({ "username": "alice", "session": "not-a-session" });
        assert!(refused(decode(&frame("42", ADD_USER, &[session]), &[])), "a session from no login");
        let no_text = json!({ "room": "general" });
        assert!(refused(decode(&frame("42", MESSAGE, &[no_text]), &[])), "neither text nor file");
        let both = json!({ "room": "general", "with": "bob" });
        assert!(refused(decode(&frame("42", HISTORY, &[both]), &[])), "a room and users");
        let placeholder = json!({ "_placeholder": true, "num": 0 });
        let stray = frame("451-", JOIN, &[json!({ "room": placeholder })]);
        assert!(refused(decode(&stray, &[b"x"])), "a binary where none is taken disconnects its sender");
    }
}
