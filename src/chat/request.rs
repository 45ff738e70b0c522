//! Parsing a request once. Each event's first argument becomes a domain
//! value through one conversion, [`Request::from_wire`]; the handler gets
//! it from the [`Parsed`] extractor and the probe (`chat::probe`) through
//! [`check`], so the probe's verdict is the handler's.
//!
//! Everything that needs only the payload is checked here. What needs the
//! socket, the store or the deployment's settings (being logged in, a room
//! joined, a user online, MAX_FILE_BYTES, the history limit) is the
//! handler's.

use std::convert::Infallible;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use serde::de::{DeserializeOwned, IgnoredAny, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use socketioxide::adapter::Adapter;
use socketioxide::extract::TryData;
use socketioxide::handler::{FromMessageParts, Value};
use socketioxide::socket::Socket;
use socketioxide_core::parser::Parse;
use socketioxide_parser_common::CommonParser;

use super::ChatError;

/// A client → server request: the payload it arrives as, and the domain
/// value it becomes.
pub trait Request: Sized {
    /// The event's first argument as it arrives, in wire names.
    type Wire: DeserializeOwned;

    /// Every check that needs nothing but the payload.
    fn from_wire(wire: Self::Wire) -> Result<Self, ChatError>;

    /// What a missing first argument means: `invalid_payload` for most events.
    fn missing() -> Result<Self, ChatError> {
        Err(Self::malformed(ChatError::invalid_payload("this event needs an argument")))
    }

    /// The answer to a payload of the wrong shape: serde's explanation,
    /// unless the request words it for its sender.
    fn malformed(err: ChatError) -> ChatError {
        err
    }
}

/// For events that take no argument (`rooms`): whatever is sent is ignored.
pub struct NoArguments;

impl Request for NoArguments {
    type Wire = IgnoredAny;

    fn from_wire(_: IgnoredAny) -> Result<Self, ChatError> {
        Ok(Self)
    }

    fn missing() -> Result<Self, ChatError> {
        Ok(Self)
    }
}

/// The one conversion from the decoded first argument (absent, or why it
/// could not be decoded) to the request.
fn from_arg<R: Request>(arg: Result<Option<R::Wire>, String>) -> Result<R, ChatError> {
    match arg {
        Ok(Some(wire)) => R::from_wire(wire),
        Ok(None) => R::missing(),
        Err(error) => Err(R::malformed(ChatError::invalid_payload(describe(&error)))),
    }
}

/// The event's request, or why it was refused. Unlike socketioxide's
/// `Data`, a bad payload still reaches the handler, which answers with its
/// error code instead of staying silent.
pub struct Parsed<R>(pub Result<R, ChatError>);

impl<R: Request, A: Adapter> FromMessageParts<A> for Parsed<R> {
    type Error = Infallible;
    fn from_message_parts(s: &Arc<Socket<A>>, v: &mut Value, ack: &Option<i64>) -> Result<Self, Infallible> {
        if let Value::Bytes(packet) = v
            && let Some(normalized) = super::msgpack::normalize(packet)
        {
            *packet = normalized.into();
        }
        let Ok(TryData(args)) = TryData::<FirstArg<R::Wire>>::from_message_parts(s, v, ack);
        let arg = args.map(|FirstArg(first)| first).map_err(|err| err.to_string());
        Ok(Self(from_arg(arg)))
    }
}

/// Reads an event's request as its handler would, from a value decoded by
/// socket.io's common parser: the probe's verdict on the payload.
pub fn check<R: Request>(value: &mut Value) -> Result<(), ChatError> {
    let arg = CommonParser.decode_value::<FirstArg<R::Wire>>(value, true);
    from_arg::<R>(arg.map(|FirstArg(first)| first).map_err(|err| err.to_string())).map(drop)
}

/// Reads the first socket.io argument, if any, and ignores the rest. It
/// presents itself to serde as a tuple, which makes socketioxide hand it the
/// whole argument list instead of insisting on a first element.
struct FirstArg<T>(Option<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for FirstArg<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ArgsVisitor<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for ArgsVisitor<T> {
            type Value = FirstArg<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of event arguments")
            }
            fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<Self::Value, S::Error> {
                let first = seq.next_element::<T>()?;
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(FirstArg(first))
            }
        }
        deserializer.deserialize_tuple(usize::MAX, ArgsVisitor(PhantomData))
    }
}

/// Longest parser explanation sent back, in characters. serde quotes a
/// string of the wrong type whole, which can be most of a frame.
const MAX_DESCRIPTION_CHARS: usize = 200;

/// A parser error as a client should read it: serde's explanation without
/// the position in the raw packet, which means nothing to the sender, and
/// cut short.
fn describe(error: &str) -> String {
    let error = error.rsplit_once(" at line ").map_or(error, |(head, _)| head);
    match error.char_indices().nth(MAX_DESCRIPTION_CHARS) {
        Some((cut, _)) => format!("malformed payload: {}…", &error[..cut]),
        None => format!("malformed payload: {error}"),
    }
}
