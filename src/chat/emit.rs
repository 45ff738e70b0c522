//! Sending to clients beyond an event's own answer: who can be reached
//! ([`namespace`], [`online`]), what a failed emit means ([`log_emit`]),
//! and signing a socket out ([`sign_out`]).

use std::fmt::Display;

use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use socketioxide::extract::SocketRef;
use socketioxide::operators::BroadcastOperators;

use super::events::CHAT_ERROR;
use super::{ChatError, channels};
use crate::metrics::metrics;

/// Broadcast operators on the chat's namespace, or `None` once the server
/// has closed it. Disconnect handlers still run during shutdown, after the
/// namespace is gone, and socketioxide's `io.to()` panics then: every one of
/// 10,000 sockets closed by a shutdown logged a panic.
pub fn namespace<A: Adapter>(io: &SocketIo<A>) -> Option<BroadcastOperators<A>> {
    let operators = io.of("/");
    if operators.is_none() {
        tracing::debug!("the namespace is closed (shutting down): nothing is broadcast");
    }
    operators
}

/// Broadcast operators on every logged-in socket of the deployment, or
/// `None` once the namespace is closed (see [`namespace`]).
pub(super) fn online<A: Adapter>(io: &SocketIo<A>) -> Option<BroadcastOperators<A>> {
    namespace(io).map(|namespace| namespace.to(channels::ONLINE))
}

/// Signs a socket out, whoever asks (its token fell, its login deadline
/// passed, its name belongs to someone else): tells it why with `chat
/// error`, then disconnects it; its disconnect handler logs it out. The
/// caller logs why, with what it knows.
pub fn sign_out<A: Adapter>(socket: &SocketRef<A>, why: &ChatError) {
    log_emit(CHAT_ERROR, socket.emit(CHAT_ERROR, &why.body()));
    if let Err(err) = socket.clone().disconnect() {
        tracing::debug!(sid = %socket.id, error = %err, "the socket closed before it was signed out");
    }
}

/// Logs a failed emit. The request that caused it still succeeded: a
/// recipient that vanished mid-send is not the sender's problem.
pub(super) fn log_emit<E: Display>(event: &str, result: Result<(), E>) {
    metrics().event_out(event);
    let Err(err) = result else { return };
    let err = err.to_string();
    // A broadcast failing for some recipients lists one error per socket:
    // count them instead of logging the list (it can hold thousands).
    let closed = err.matches("Closed").count();
    let full = err.matches("InternalChannelFull").count();
    match (closed, full) {
        (0, 0) => tracing::warn!(event, error = %err, "emit failed"),
        (closed, 0) => tracing::debug!(event, closed, "emit reached sockets that were closing"),
        (closed, full) => {
            tracing::warn!(
                event,
                closed,
                full,
                "emit dropped for sockets whose send queue is full (slow clients)"
            )
        }
    }
}
