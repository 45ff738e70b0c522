//! Events under `PARSER=msgpack`, where each one arrives as a single
//! MessagePack value (`[event, ...args]`, socketioxide's `Value::Bytes`)
//! instead of JSON text with binary attachments.
//!
//! - [`shape`] tells what the common parser's split tells for free: how
//!   many bytes are not binary (the "text" that MAX_MESSAGE_BYTES bounds),
//!   and whether there are binaries at all (only `message` may carry one).
//! - [`normalize`] turns what socket.io-msgpack-parser (notepack.io) writes
//!   for JavaScript-only values into plain MessagePack, so the handlers read
//!   them as Node's socket.io would: `undefined` (an extension value) becomes
//!   nil, as a JSON client's left-out field; an `ArrayBuffer` or typed array
//!   (the browser's binary, an extension of type 0) becomes `bin`, as a Node
//!   `Buffer` is sent.
//!
//! Both walk the value marker by marker without decoding it: each step
//! consumes at least one byte, so a walk is bounded by the packet's length
//! whatever lengths the packet claims. socketioxide has already checked
//! that the packet is well-formed; a packet that is not anyway counts as
//! all text and binary (the strictest reading) and is left as it is.

use std::ops::Range;

use rmp::Marker;

/// MessagePack's nil.
const NIL: u8 = 0xc0;
/// notepack.io's `undefined`: a 1-byte extension of type 0, holding 0.
const UNDEFINED: [u8; 3] = [0xd4, 0x00, 0x00];
/// notepack.io's extension type for an `ArrayBuffer` or typed array.
const ARRAY_BUFFER_EXT: u8 = 0;

/// What one MessagePack value is, as far as this module cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `bin`: bytes.
    Bin,
    /// notepack.io's `ArrayBuffer`: bytes, as an extension of type 0 whose
    /// header (marker, length, type) is `header` bytes long.
    ArrayBuffer { header: usize },
    /// notepack.io's `undefined`.
    Undefined,
    /// Anything else (containers are walked into, not reported).
    Other,
}

/// Calls `visit` with each scalar value of `packet` and the bytes it spans,
/// in order. `None` if the packet is not well-formed MessagePack.
fn walk(packet: &[u8], mut visit: impl FnMut(Kind, Range<usize>)) -> Option<()> {
    let mut pos = 0;
    let mut pending: u64 = 1;
    while pending > 0 {
        pending -= 1;
        let start = pos;
        let marker = Marker::from_u8(*packet.get(pos)?);
        pos += 1;
        let mut length = |bytes: usize| -> Option<usize> {
            let field = packet.get(pos..pos.checked_add(bytes)?)?;
            pos += bytes;
            Some(field.iter().fold(0usize, |n, byte| (n << 8) | usize::from(*byte)))
        };
        let (kind, body) = match marker {
            Marker::FixArray(n) => (None, u64::from(n)),
            Marker::Array16 => (None, length(2)? as u64),
            Marker::Array32 => (None, length(4)? as u64),
            Marker::FixMap(n) => (None, 2 * u64::from(n)),
            Marker::Map16 => (None, 2 * length(2)? as u64),
            Marker::Map32 => (None, 2 * length(4)? as u64),
            Marker::FixStr(n) => (Some((Kind::Other, usize::from(n))), 0),
            Marker::Str8 => (Some((Kind::Other, length(1)?)), 0),
            Marker::Str16 => (Some((Kind::Other, length(2)?)), 0),
            Marker::Str32 => (Some((Kind::Other, length(4)?)), 0),
            Marker::Bin8 => (Some((Kind::Bin, length(1)?)), 0),
            Marker::Bin16 => (Some((Kind::Bin, length(2)?)), 0),
            Marker::Bin32 => (Some((Kind::Bin, length(4)?)), 0),
            Marker::Ext8 | Marker::Ext16 | Marker::Ext32 => {
                let size = length(match marker {
                    Marker::Ext8 => 1,
                    Marker::Ext16 => 2,
                    _ => 4,
                })?;
                let kind = match packet.get(pos)? {
                    &ARRAY_BUFFER_EXT => Kind::ArrayBuffer { header: pos + 1 - start },
                    _ => Kind::Other,
                };
                (Some((kind, size.checked_add(1)?)), 0)
            }
            Marker::FixExt1 if packet.get(start..start + 3) == Some(&UNDEFINED[..]) => {
                (Some((Kind::Undefined, 2)), 0)
            }
            Marker::FixExt1 => (Some((Kind::Other, 2)), 0),
            Marker::FixExt2 => (Some((Kind::Other, 3)), 0),
            Marker::FixExt4 => (Some((Kind::Other, 5)), 0),
            Marker::FixExt8 => (Some((Kind::Other, 9)), 0),
            Marker::FixExt16 => (Some((Kind::Other, 17)), 0),
            Marker::U8 | Marker::I8 => (Some((Kind::Other, 1)), 0),
            Marker::U16 | Marker::I16 => (Some((Kind::Other, 2)), 0),
            Marker::U32 | Marker::I32 | Marker::F32 => (Some((Kind::Other, 4)), 0),
            Marker::U64 | Marker::I64 | Marker::F64 => (Some((Kind::Other, 8)), 0),
            Marker::FixPos(_)
            | Marker::FixNeg(_)
            | Marker::Null
            | Marker::True
            | Marker::False
            | Marker::Reserved => (Some((Kind::Other, 0)), 0),
        };
        pending = pending.saturating_add(body);
        if let Some((kind, size)) = kind {
            pos = pos.checked_add(size).filter(|end| *end <= packet.len())?;
            visit(kind, start..pos);
        }
    }
    Some(())
}

/// The bytes of `packet` that are not binary, and how many binaries it
/// holds: the common parser's (text length, attachments). A packet this
/// walker cannot read counts as all text and one binary, the strictest
/// reading (socketioxide's decoder rejects it anyway).
pub(super) fn shape(packet: &[u8]) -> (usize, usize) {
    let mut binary_bytes = 0;
    let mut binaries = 0;
    let walked = walk(packet, |kind, span| {
        if matches!(kind, Kind::Bin | Kind::ArrayBuffer { .. }) {
            binary_bytes += span.len();
            binaries += 1;
        }
    });
    match walked {
        Some(()) => (packet.len() - binary_bytes, binaries),
        None => (packet.len(), 1),
    }
}

/// `packet` with notepack.io's `undefined` as nil and its `ArrayBuffer` as
/// `bin`, or `None` if it holds neither (or is not well-formed).
pub(super) fn normalize(packet: &[u8]) -> Option<Vec<u8>> {
    let mut rewrites = Vec::new();
    walk(packet, |kind, span| {
        if matches!(kind, Kind::Undefined | Kind::ArrayBuffer { .. }) {
            rewrites.push((kind, span));
        }
    })?;
    if rewrites.is_empty() {
        return None;
    }
    let mut out = Vec::with_capacity(packet.len());
    let mut copied = 0;
    for (kind, span) in rewrites {
        out.extend_from_slice(&packet[copied..span.start]);
        match kind {
            Kind::ArrayBuffer { header } => {
                // ext 8/16/32 (c7/c8/c9) → bin 8/16/32 (c4/c5/c6): same
                // length field, without the type byte.
                out.push(packet[span.start] - 3);
                out.extend_from_slice(&packet[span.start + 1..span.start + header - 1]);
                out.extend_from_slice(&packet[span.start + header..span.end]);
            }
            _ => out.push(NIL),
        }
        copied = span.end;
    }
    out.extend_from_slice(&packet[copied..]);
    Some(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly")]

    use super::*;
    use crate::chat::events::{HISTORY, MESSAGE, NEW_MESSAGE, TYPING};

    /// `[MESSAGE, {"text": "hi", "file": {"name": "a", "data": <bin 3>}}]`
    fn message_with_bin() -> Vec<u8> {
        let mut packet = vec![0x92, 0xa7];
        packet.extend_from_slice(MESSAGE.as_bytes());
        packet.extend_from_slice(&[0x82, 0xa4]);
        packet.extend_from_slice(b"text");
        packet.extend_from_slice(&[0xa2, b'h', b'i', 0xa4]);
        packet.extend_from_slice(b"file");
        packet.extend_from_slice(&[0x82, 0xa4]);
        packet.extend_from_slice(b"name");
        packet.extend_from_slice(&[0xa1, b'a', 0xa4]);
        packet.extend_from_slice(b"data");
        packet.extend_from_slice(&[0xc4, 3, 1, 2, 3]);
        packet
    }

    #[test]
    fn text_only_packets_have_no_binaries_and_count_every_byte() {
        // [NEW_MESSAGE, "hello"]
        let mut packet = vec![0x92, 0xab];
        packet.extend_from_slice(NEW_MESSAGE.as_bytes());
        packet.extend_from_slice(&[0xa5]);
        packet.extend_from_slice(b"hello");
        assert_eq!(shape(&packet), (packet.len(), 0));
    }

    #[test]
    fn every_bin_value_is_counted() {
        // [MESSAGE, [bin(0), bin(0), bin(0)]]: three binaries, none of them a file.
        let mut packet = vec![0x92, 0xa7];
        packet.extend_from_slice(MESSAGE.as_bytes());
        packet.extend_from_slice(&[0x93, 0xc4, 0x00, 0xc4, 0x00, 0xc4, 0x00]);
        assert_eq!(shape(&packet), (packet.len() - 6, 3));
    }

    #[test]
    fn a_bin_value_is_a_binary_and_not_text() {
        let packet = message_with_bin();
        assert_eq!(shape(&packet), (packet.len() - 5, 1));
    }

    #[test]
    fn a_browser_array_buffer_is_a_binary_too() {
        // [TYPING, <ext 8, type 0, 2 bytes>]
        let mut packet = vec![0x92, 0xa6];
        packet.extend_from_slice(TYPING.as_bytes());
        packet.extend_from_slice(&[0xc7, 2, 0, 9, 9]);
        assert_eq!(shape(&packet), (packet.len() - 5, 1));
    }

    #[test]
    fn undefined_and_other_extensions_are_not_binaries() {
        // [TYPING, undefined, <fixext 8 type 0: a Date>]
        let mut packet = vec![0x93, 0xa6];
        packet.extend_from_slice(TYPING.as_bytes());
        packet.extend_from_slice(&UNDEFINED);
        packet.extend_from_slice(&[0xd7, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(shape(&packet), (packet.len(), 0));
    }

    #[test]
    fn big_lengths_and_nesting_are_walked() {
        // [[{"k": <str 16, 300 bytes>}], <bin 32, 70,000 bytes>]
        let mut packet = vec![0x92, 0x91, 0x81, 0xa1, b'k', 0xda, 0x01, 0x2c];
        packet.extend(std::iter::repeat_n(b'x', 300));
        packet.extend_from_slice(&[0xc6, 0, 1, 0x11, 0x70]);
        packet.extend(std::iter::repeat_n(7u8, 70_000));
        assert_eq!(shape(&packet), (packet.len() - 70_005, 1));
    }

    #[test]
    fn malformed_packets_count_as_all_text_and_binary() {
        // A string claiming 200 bytes that has 2; an array claiming 2^32-1 elements.
        for packet in [vec![0x92, 0xd9, 200, b'a', b'b'], vec![0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0]] {
            assert_eq!(shape(&packet), (packet.len(), 1), "{packet:?}");
            assert_eq!(normalize(&packet), None);
        }
    }

    #[test]
    fn normalize_leaves_plain_messagepack_alone() {
        assert_eq!(normalize(&message_with_bin()), None);
    }

    #[test]
    fn normalize_turns_undefined_into_nil_and_array_buffers_into_bin() {
        // [HISTORY, {"room": "a", "before": undefined}, <ext 16 type 0, 2 bytes>]
        let mut packet = vec![0x93, 0xa7];
        packet.extend_from_slice(HISTORY.as_bytes());
        packet.extend_from_slice(&[0x82, 0xa4]);
        packet.extend_from_slice(b"room");
        packet.extend_from_slice(&[0xa1, b'a', 0xa6]);
        packet.extend_from_slice(b"before");
        packet.extend_from_slice(&UNDEFINED);
        packet.extend_from_slice(&[0xc8, 0, 2, 0, 5, 6]);

        let normalized = normalize(&packet).unwrap();
        let mut expected = packet[..packet.len() - 9].to_vec();
        expected.extend_from_slice(&[NIL, 0xc5, 0, 2, 5, 6]);
        assert_eq!(normalized, expected);
        assert_eq!(shape(&normalized), (normalized.len() - 5, 1), "the bytes stay binary");
        assert_eq!(normalize(&normalized), None, "normalizing twice changes nothing");
    }
}
