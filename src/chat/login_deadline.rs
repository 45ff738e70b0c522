//! The login deadline: a socket that has not logged in (`add user`, or a
//! token at connect) within LOGIN_TIMEOUT_SECS gets `chat error`
//! `login_timeout` and is disconnected, so connections that never log in
//! cannot pile up on an instance.

use std::time::Duration;

use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use socketioxide::socket::Sid;

use super::ChatError;
use super::emit::{namespace, sign_out};
use super::socket_state::SocketState;

/// Checks socket `sid` once `timeout` has passed. The waiting task holds
/// only the server handle and the id (not the socket, which would keep a
/// closed socket and its per-address slot alive until the deadline), and
/// costs one timer until then.
pub fn spawn<A: Adapter>(io: SocketIo<A>, sid: Sid, timeout: Duration) {
    tokio::spawn(async move {
        tokio::time::sleep(timeout).await;
        let Some(socket) = namespace(&io).and_then(|namespace| namespace.get_socket(sid)) else { return };
        if SocketState::of(&socket).user().is_some() {
            return;
        }
        tracing::info!(%sid, ?timeout, "disconnecting a socket that did not log in in time");
        sign_out(&socket, &ChatError::LoginTimeout(timeout.as_secs()));
    });
}
