//! What socketioxide hands the chat's handlers before they run: the
//! handshake's `auth` ([`ConnectData`]), and each event's place in its
//! socket's queue ([`InOrder`]), which is where flood control happens. An
//! event over the socket's allowance (a large packet costs more of it), or
//! whose packet would take the bytes waiting in the queue over the
//! transport cap, is answered `rate_limited` at once and never parsed; a
//! socket that keeps flooding is disconnected (see
//! [`limits`](super::limits)). The payload and the answer have extractors
//! of their own: `chat::request::Parsed` and `chat::answer::Reply`.

use std::convert::Infallible;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use socketioxide::ParserError;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{Event, TryData};
use socketioxide::handler::{FromConnectParts, FromDisconnectParts, FromMessageParts, Value};
use socketioxide::socket::{DisconnectReason, Socket};

use super::ChatError;
use super::answer::Reply;
use super::limits::{Admission, PacketSize};
use super::queue::InOrder;
use super::socket_state::SocketState;
use super::table;
use crate::metrics::metrics;

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

/// An event refused by flood control (its handler is skipped).
#[derive(Debug, thiserror::Error)]
#[error("event refused: rate limited")]
pub struct RateLimited;

impl<A: Adapter> FromMessageParts<A> for InOrder {
    type Error = RateLimited;
    fn from_message_parts(s: &Arc<Socket<A>>, v: &mut Value, ack: &Option<i64>) -> Result<Self, RateLimited> {
        let event = Event::from_message_parts(s, v, ack).map(|Event(event)| event);
        if let Ok(event) = &event {
            metrics().event_in(event);
        }
        let state = SocketState::of_socket(s);
        // Oversized frames never get here: the transport closed their
        // connection (see `mode::socketio_builder`). Anything smaller is
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
        let stray = binaries > super::limits::MAX_BINARY_ATTACHMENTS
            || !event.is_ok_and(|event| table::accepts_binary(&event));
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
