//! The handshake: a socket that connects with `auth: { token }` is logged in
//! before its first event, as `add user` would (it gets `login`, the others
//! `user joined`). A bad or expired token is refused with `connect_error`;
//! so is a connection without a token when guests are disabled.

use std::fmt;

use serde::Deserialize;
use socketioxide::ParserError;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{SocketRef, State};

use super::extract::InOrder;
use super::login::log_in;
use super::socket_state::SocketState;
use super::{Chat, ChatError};
use crate::auth::{AuthError, IdentityKind};

/// The handshake's `auth` object.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct HandshakeAuth {
    /// A token from `POST /api/login` (or a guest token from `add user`).
    pub token: Option<String>,
}

/// Why a connection was refused; sent as the `connect_error` message.
#[derive(Debug)]
pub struct Refusal(pub(super) String);

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Checks the handshake's credentials and remembers who the socket will be.
pub async fn authenticate<A: Adapter>(
    chat: &Chat,
    socket: &SocketRef<A>,
    auth: Result<HandshakeAuth, ParserError>,
) -> Result<(), Refusal> {
    let Ok(auth) = auth else { return Err(Refusal("malformed auth payload: expected { token }".into())) };
    let Some(token) = auth.token else {
        return if chat.policy().allow_guests {
            Ok(())
        } else {
            Err(Refusal(ChatError::GuestsDisabled.to_string()))
        };
    };
    let refused = |err: AuthError| Refusal(format!("authentication failed: {err}"));
    let session = chat.auth().verify(&token).map_err(refused)?;
    // Revoked, or an account deleted or re-registered by someone else since.
    chat.auth().check(&session).await.map_err(refused)?;
    if let IdentityKind::Guest(_) = &session.identity.kind {
        // A guest token may reclaim its name, unless the name was registered since.
        if !chat.policy().allow_guests {
            return Err(Refusal(ChatError::GuestsDisabled.to_string()));
        }
        match chat.auth().is_registered(&session.identity.user).await {
            Ok(false) => {}
            Ok(true) => return Err(refused(AuthError::BadCredentials)),
            Err(err) => return Err(refused(AuthError::from(err))),
        }
    }
    SocketState::of(socket).set_pending(session);
    Ok(())
}

/// Connect handler: logs in a socket that brought a token. Runs before the
/// socket's first event (it holds the first place in the socket's queue).
pub async fn on_connect<A: Adapter>(turn: InOrder, State(chat): State<Chat>, socket: SocketRef<A>) {
    let _turn = turn.wait().await;
    let state = SocketState::of(&socket);
    let Some(session) = state.take_pending() else {
        return tracing::debug!(sid = %socket.id, "guest socket connected");
    };
    match log_in(&chat, &socket, &session.identity).await {
        Ok(_) => state.set_session(session),
        Err(err) => {
            tracing::info!(sid = %socket.id, user = %session.identity.user, error = %err, "token login refused");
            let _ = socket.emit("chat error", &err.body());
            let _ = socket.clone().disconnect();
        }
    }
}
