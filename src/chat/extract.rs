//! Extractors shared by every event handler: the payload ([`Payload`],
//! [`OptionalPayload`]), the answer ([`Reply`]) and the event's place in
//! its socket's queue ([`InOrder`], with flood control: an event over the
//! socket's allowance (a large packet costs more of it), or whose packet
//! would take the bytes waiting in the queue over the transport cap, is
//! answered `rate_limited` at once and never parsed; a socket that keeps
//! flooding is disconnected, see [`limits`](super::limits)); and the
//! handshake's `auth` ([`ConnectData`]).

use std::convert::Infallible;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use serde::de::{DeserializeOwned, IgnoredAny, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use socketioxide::ParserError;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{AckSender, Event, SocketRef, TryData};
use socketioxide::handler::{FromConnectParts, FromDisconnectParts, FromMessageParts, Value};
use socketioxide::socket::{DisconnectReason, Socket};

use super::ChatError;
use super::events::{CHAT_ERROR, MESSAGE};
use super::limits::{Admission, PacketSize};
use super::queue::InOrder;
use super::socket_state::SocketState;
use crate::metrics::metrics;

/// The event's first argument, or why it could not be read. Unlike
/// socketioxide's `Data`, a bad payload still reaches the handler, which
/// answers with `invalid_payload` instead of staying silent.
pub struct Payload<T>(pub Result<T, ChatError>);

/// Like [`Payload`] for events whose argument may be left out (or `null`).
pub struct OptionalPayload<T>(pub Result<Option<T>, ChatError>);

/// Reads the first socket.io argument, if any, and ignores the rest. It
/// presents itself to serde as a tuple, which makes socketioxide hand it the
/// whole argument list instead of insisting on a first element.
pub(super) struct FirstArg<T>(pub(super) Option<T>);

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

fn first_arg<T: DeserializeOwned, A: Adapter>(
    s: &Arc<Socket<A>>,
    v: &mut Value,
    ack: &Option<i64>,
) -> Result<Option<T>, ChatError> {
    if let Value::Bytes(packet) = v
        && let Some(normalized) = super::msgpack::normalize(packet)
    {
        *packet = normalized.into();
    }
    let Ok(TryData(args)) = TryData::<FirstArg<T>>::from_message_parts(s, v, ack);
    args.map(|FirstArg(first)| first).map_err(|err| ChatError::invalid_payload(describe(&err.to_string())))
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

impl<T: DeserializeOwned, A: Adapter> FromMessageParts<A> for Payload<T> {
    type Error = Infallible;
    fn from_message_parts(s: &Arc<Socket<A>>, v: &mut Value, ack: &Option<i64>) -> Result<Self, Infallible> {
        let arg = first_arg::<T, A>(s, v, ack)
            .and_then(|arg| arg.ok_or_else(|| ChatError::invalid_payload("this event needs an argument")));
        Ok(Self(arg))
    }
}

impl<T: DeserializeOwned, A: Adapter> FromMessageParts<A> for OptionalPayload<T> {
    type Error = Infallible;
    fn from_message_parts(s: &Arc<Socket<A>>, v: &mut Value, ack: &Option<i64>) -> Result<Self, Infallible> {
        Ok(Self(first_arg::<Option<T>, A>(s, v, ack).map(Option::flatten)))
    }
}

/// The handshake's `auth`, or why it could not be read: socketioxide's
/// `TryData`, except that under PARSER=msgpack JavaScript's `undefined` is
/// left out, as JSON leaves it (`auth: { token: undefined }` is a guest).
pub struct ConnectData<T>(pub Result<T, ParserError>);

impl<T: DeserializeOwned, A: Adapter> FromConnectParts<A> for ConnectData<T> {
    type Error = Infallible;
    fn from_connect_parts(s: &Arc<Socket<A>>, auth: &Option<Value>) -> Result<Self, Infallible> {
        let normalized = match auth {
            Some(Value::Bytes(packet)) => {
                super::msgpack::normalize(packet).map(|n| Some(Value::Bytes(n.into())))
            }
            _ => None,
        };
        let Ok(TryData(data)) = TryData::<T>::from_connect_parts(s, normalized.as_ref().unwrap_or(auth));
        Ok(Self(data))
    }
}

/// Answers the event: through the client's ack callback if it gave one,
/// otherwise (for failures only) with a `chat error` event.
pub struct Reply<A: Adapter> {
    socket: SocketRef<A>,
    ack: AckSender<A>,
    wants_ack: bool,
}

impl<A: Adapter> FromMessageParts<A> for Reply<A> {
    type Error = Infallible;
    fn from_message_parts(s: &Arc<Socket<A>>, v: &mut Value, ack: &Option<i64>) -> Result<Self, Infallible> {
        let Ok(socket) = SocketRef::from_message_parts(s, v, ack);
        let Ok(sender) = AckSender::from_message_parts(s, v, ack);
        Ok(Self { socket, ack: sender, wants_ack: ack.is_some() })
    }
}

/// A successful ack: `{ ok: true, ...body }`.
#[derive(Serialize)]
struct Success<T> {
    ok: bool,
    #[serde(flatten)]
    body: T,
}

/// A failed ack: `{ ok: false, error: { code, message } }`.
#[derive(Serialize)]
struct Failure {
    ok: bool,
    error: super::error::ErrorBody,
}

impl<A: Adapter> Reply<A> {
    /// Sends the outcome of the event to the client.
    pub fn send<T: Serialize>(self, result: Result<T, ChatError>) {
        let sent = match result {
            Ok(body) if self.wants_ack => self.ack.send(&Success { ok: true, body }),
            Ok(_) => Ok(()),
            Err(err) => {
                tracing::debug!(sid = %self.socket.id, code = err.code(), error = %err, "request refused");
                if self.wants_ack {
                    self.ack.send(&Failure { ok: false, error: err.body() })
                } else {
                    self.socket.emit(CHAT_ERROR, &err.body())
                }
            }
        };
        if let Err(err) = sent {
            tracing::debug!(sid = %self.socket.id, error = %err, "could not answer a request");
        }
    }
}

/// What a packet weighs, before it is parsed.
/// A packet's size, and how many binaries it carries. Under PARSER=msgpack
/// the whole event is one MessagePack value: its text is what is not a
/// binary, so a long text costs what the same JSON text costs.
fn packet_size(v: &Value) -> (PacketSize, usize) {
    match v {
        Value::Str(text, binaries) => {
            let binary = binaries.iter().flatten().map(bytes::Bytes::len).sum();
            let count = binaries.as_ref().map_or(0, |binaries| binaries.len().max(1));
            (PacketSize { text: text.as_str().len(), binary }, count)
        }
        Value::Bytes(packet) => {
            let (text, count) = super::msgpack::shape(packet);
            (PacketSize { text, binary: packet.len().saturating_sub(text) }, count)
        }
    }
}

/// Only `message` carries binary attachments (a file).
fn accepts_binary<A: Adapter>(s: &Arc<Socket<A>>, v: &mut Value, ack: &Option<i64>) -> bool {
    Event::from_message_parts(s, v, ack).is_ok_and(|Event(event)| event == MESSAGE)
}

/// An event refused by flood control (its handler is skipped).
#[derive(Debug, thiserror::Error)]
#[error("event refused: rate limited")]
pub struct RateLimited;

impl<A: Adapter> FromMessageParts<A> for InOrder {
    type Error = RateLimited;
    fn from_message_parts(s: &Arc<Socket<A>>, v: &mut Value, ack: &Option<i64>) -> Result<Self, RateLimited> {
        if let Ok(Event(event)) = Event::from_message_parts(s, v, ack) {
            metrics().event_in(&event);
        }
        let state = SocketState::of_socket(s);
        // Oversized frames never get here: the transport closed their
        // connection (see `app::socketio_builder`). Anything smaller is
        // handled, and content over a limit answered with its error code.
        let (size, binaries) = packet_size(v);
        if !state.text_fits(size) {
            // A frame over the transport cap for text (see `text_fits`).
            tracing::info!(sid = %s.id, bytes = size.text, "disconnecting a socket that sent a text over MAX_FRAME_BYTES");
            let _ = s.clone().disconnect();
            return Err(RateLimited);
        }
        // The common parser counts attachments as it decodes; a MessagePack
        // value holds any number of binaries, each costing no event token.
        let stray = binaries > super::limits::MAX_BINARY_ATTACHMENTS || !accepts_binary(s, v, ack);
        if binaries > 0 && stray {
            tracing::info!(sid = %s.id, bytes = size.text, binaries, "disconnecting a socket that sent a stray binary message");
            let _ = s.clone().disconnect();
            return Err(RateLimited);
        }
        let admission = state.admit(size);
        if admission == Admission::Admit {
            return Ok(state.queue().enqueue_counted(size.total()));
        }
        metrics().rate_limited();
        let Ok(reply) = Reply::from_message_parts(s, v, ack);
        reply.send::<()>(Err(ChatError::RateLimited));
        if admission == Admission::Disconnect {
            tracing::warn!(sid = %s.id, "disconnecting a socket that keeps flooding");
            let _ = s.clone().disconnect();
        }
        Err(RateLimited)
    }
}

impl<A: Adapter> FromConnectParts<A> for InOrder {
    type Error = Infallible;
    fn from_connect_parts(s: &Arc<Socket<A>>, _: &Option<Value>) -> Result<Self, Infallible> {
        Ok(SocketState::of_socket(s).queue().take_first())
    }
}

impl<A: Adapter> FromDisconnectParts<A> for InOrder {
    type Error = Infallible;
    fn from_disconnect_parts(s: &Arc<Socket<A>>, _: DisconnectReason) -> Result<Self, Infallible> {
        Ok(SocketState::of_socket(s).queue().enqueue())
    }
}
