//! The few engine.io v4 / socket.io v4 packets the load generator speaks.
//! Hot-path packets (`message` out, `message` in) are written and read by
//! hand, as bytes, without a JSON parser; only handshake acks are parsed.

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Deserialize;

/// engine.io ping from the server.
pub const PING: &[u8] = b"2";
/// engine.io pong, the answer to [`PING`].
pub const PONG: &[u8] = b"3";
/// socket.io CONNECT to namespace `/` (engine.io message `4` + connect `0`).
pub const CONNECT: &[u8] = b"40";

/// How a `message` event from the server starts.
const MESSAGE_EVENT: &str = "42[\"message\",";
/// The text field of a load generator message: `t` then the send time.
const TEXT_FIELD: &str = "\"text\":\"t";

/// Microseconds since the Unix epoch: the clock both ends of a latency
/// sample read, since sender and receiver run on the same machine.
pub fn unix_micros() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.as_micros() as u64)
}

/// `42<id>["<event>",<arg>]`: an event asking for an ack.
pub fn request(id: u64, event: &str, arg_json: &str) -> String {
    format!("42{id}[\"{event}\",{arg_json}]")
}

/// A JSON string literal for `value`.
pub fn json_string(value: &str) -> String {
    serde_json::Value::from(value).to_string()
}

/// Writes `message` events into one room without an ack, each stamped with
/// its send time: `42["message",{"room":R,"text":"t<micros>"}]`.
#[derive(Debug)]
pub struct MessageEncoder {
    /// Everything before the timestamp, built once.
    prefix: String,
}

impl MessageEncoder {
    /// An encoder for messages to `room`.
    pub fn new(room: &str) -> Self {
        Self { prefix: format!("{MESSAGE_EVENT}{{\"room\":{},{TEXT_FIELD}", json_string(room)) }
    }

    /// Writes a message stamped with `micros` into `packet`, replacing its
    /// contents (the buffer is reused from message to message).
    pub fn encode_into(&self, packet: &mut String, micros: u64) {
        packet.clear();
        packet.push_str(&self.prefix);
        // Writing to a String cannot fail.
        let _ = write!(packet, "{micros}\"}}]");
    }
}

/// The send time carried by a `message` event written by [`MessageEncoder`],
/// or `None` for any other packet. Both servers put `text` last, so it is
/// looked for at the end first; a search is the fallback.
pub fn sent_micros(packet: &[u8]) -> Option<u64> {
    let body = packet.strip_prefix(MESSAGE_EVENT.as_bytes())?;
    let field = TEXT_FIELD.as_bytes();
    if let Some(before_end) = body.strip_suffix(b"\"}]") {
        let digits = before_end.iter().rev().take_while(|b| b.is_ascii_digit()).count();
        let (head, stamp) = before_end.split_at(before_end.len() - digits);
        if head.ends_with(field) {
            return parse_decimal(stamp);
        }
    }
    let start = body.windows(field.len()).position(|window| window == field)? + field.len();
    let stamp = &body[start..];
    parse_decimal(&stamp[..stamp.iter().take_while(|b| b.is_ascii_digit()).count()])
}

/// A non-empty run of ASCII digits as a number.
fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |value, digit| value.checked_mul(10)?.checked_add(u64::from(digit - b'0')))
}

/// The argument list of `43<id>[...]` if `packet` is the ack for `id`.
pub fn ack_body(packet: &[u8], id: u64) -> Option<&[u8]> {
    let rest = packet.strip_prefix(b"43")?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    let (number, body) = rest.split_at(digits);
    (parse_decimal(number) == Some(id)).then_some(body)
}

/// The first argument of a chat ack: `{ ok, error? }`, other fields skipped.
#[derive(Deserialize)]
struct AckReply {
    /// Whether the server did what was asked.
    ok: bool,
    /// Why not, when `ok` is false.
    #[serde(default)]
    error: Option<serde_json::Value>,
}

/// Checks an ack's argument list: `Err` with the server's reason unless it
/// says `ok: true`.
pub fn check_ack(body: &[u8]) -> Result<(), String> {
    match serde_json::from_slice::<(AckReply,)>(body) {
        Ok((AckReply { ok: true, .. },)) => Ok(()),
        Ok((AckReply { error, .. },)) => Err(error.map_or_else(|| "ok: false".to_owned(), |e| e.to_string())),
        Err(err) => Err(format!("unreadable ack ({err}): {}", preview(body))),
    }
}

/// The start of a packet as text, for error messages.
pub fn preview(packet: &[u8]) -> String {
    String::from_utf8_lossy(&packet[..packet.len().min(120)]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_round_trips_its_timestamp() {
        let encoder = MessageEncoder::new("bench");
        let mut sent = String::new();
        encoder.encode_into(&mut sent, 1_700_000_000_123_456);
        assert_eq!(sent, r#"42["message",{"room":"bench","text":"t1700000000123456"}]"#);
        let delivered =
            br#"42["message",{"id":"01J","ts":1,"from":"a","room":"bench","text":"t1700000000123456"}]"#;
        assert_eq!(sent_micros(delivered), Some(1_700_000_000_123_456));
        let text_first = br#"42["message",{"text":"t1700000000123456","from":"a","room":"bench"}]"#;
        assert_eq!(sent_micros(text_first), Some(1_700_000_000_123_456));
        assert_eq!(sent_micros(br#"42["user joined",{"username":"a"}]"#), None);
        assert_eq!(sent_micros(br#"42["message",{"text":"t"}]"#), None);
    }

    #[test]
    fn acks_are_matched_by_id_and_checked() {
        assert_eq!(ack_body(br#"4312[{"ok":true}]"#, 12), Some(&br#"[{"ok":true}]"#[..]));
        assert_eq!(ack_body(br#"431[{"ok":true}]"#, 12), None);
        assert!(check_ack(br#"[{"ok":true,"history":[{"text":"x"}]}]"#).is_ok());
        assert!(check_ack(br#"[{"ok":false,"error":{"code":"x"}}]"#).is_err());
    }
}
