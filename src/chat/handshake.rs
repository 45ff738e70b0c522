//! The handshake: whether a connecting socket may connect, and who it is.
//!
//! A socket that brings a token is logged in before its first event, as
//! `add user` would (it gets `login`, the others `user joined`). The token
//! comes in `auth: { token }`; socket.io-client 2.x (socket.io protocol 4)
//! cannot send `auth`, so for its sockets only, `token` in the handshake
//! URL's query stands in for it.
//!
//! A refused socket never exists: the client gets `connect_error` (2.x:
//! `error`) whose message is the [`Refusal`]'s stable code.

use std::fmt;
use std::time::Duration;

use axum::extract::Query;
use serde::Deserialize;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{SocketRef, State};
use socketioxide::{ParserError, ProtocolVersion, SocketIo};

use super::emit::sign_out;
use super::login::log_in;
use super::queue::InOrder;
use super::socket_state::SocketState;
use super::{Chat, ChatError};
use crate::auth::{AuthError, IdentityKind};
use crate::net::ClientAddr;

/// The handshake's `auth` object.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct HandshakeAuth {
    /// A token from `POST /api/login` (or a guest token from `add user`).
    pub token: Option<String>,
}

/// The part of a 2.x client's handshake URL that chatwire reads
/// (`io(url, { query: { token } })`); the engine's own pairs are ignored.
#[derive(Debug, Default, Deserialize)]
struct HandshakeQuery {
    token: Option<String>,
}

/// How long after refusing a 2.x client's socket the server tells it to
/// disconnect. Under socket.io protocol 4 the root namespace is joined
/// without a CONNECT packet, so socketioxide arms no connect timeout and a
/// refused client would sit on its open connection for good (Node closes it
/// after `connectTimeout`). The wait lets the refusal, which socketioxide
/// sends once the middleware returns, go out first.
const CLOSE_REFUSED_V4_AFTER: Duration = Duration::from_millis(500);

/// Why a handshake was refused. Its `Display` is its [`code`](Self::code):
/// socketioxide sends that as the `connect_error` message, the only field
/// its connect_error packet carries.
#[derive(Debug)]
pub enum Refusal {
    /// `auth` (or a 2.x client's query) is not `{ token }`.
    Malformed,
    /// The address has MAX_CONNECTIONS_PER_ADDRESS sockets open on this instance.
    TooManyConnections(u32),
    /// The token does not stand: forged, malformed, expired, revoked, or
    /// its account gone.
    Auth(AuthError),
    /// A chat rule: guests disabled, a registered name, the store unreachable.
    Chat(ChatError),
}

impl Refusal {
    /// The stable snake_case code the client gets, shared with the ack
    /// error codes (src/chat/error.rs) and the HTTP API where one exists.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Malformed => "invalid_payload",
            Self::TooManyConnections(_) => "too_many_connections",
            Self::Auth(AuthError::BadToken(_) | AuthError::SessionEnded | AuthError::BadCredentials) => {
                "bad_token"
            }
            Self::Auth(AuthError::Revoked) => "token_revoked",
            Self::Auth(AuthError::Unavailable) => "unavailable",
            // Not produced by a token check; kept apart rather than guessed.
            Self::Auth(
                AuthError::Invalid(_)
                | AuthError::AccountExists(_)
                | AuthError::NameInUse(_)
                | AuthError::RateLimited(_)
                | AuthError::Busy(_)
                | AuthError::NotAnAccount
                | AuthError::Conflict,
            ) => "internal",
            Self::Chat(err) => err.code(),
        }
    }

    /// The reason in words, for the log.
    fn reason(&self) -> String {
        match self {
            Self::Malformed => "malformed auth payload: expected { token }".into(),
            Self::TooManyConnections(max) => {
                format!("too many connections from this address (at most {max})")
            }
            Self::Auth(err) => err.to_string(),
            Self::Chat(err) => err.to_string(),
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl From<AuthError> for Refusal {
    fn from(err: AuthError) -> Self {
        Self::Auth(err)
    }
}

/// Admits a connecting socket or says why not: the per-address cap, then
/// the credentials. Remembers who the socket will be for [`on_connect`].
pub async fn admit<A: Adapter>(
    chat: &Chat,
    socket: &SocketRef<A>,
    auth: Result<Option<HandshakeAuth>, ParserError>,
) -> Result<(), Refusal> {
    if let Some(client) = client_addr(socket) {
        let slot = chat
            .0
            .connections
            .acquire(client.key())
            .ok_or(Refusal::TooManyConnections(chat.policy().max_connections_per_address))?;
        SocketState::of(socket).hold_address_slot(slot);
    }
    let Some(token) = token(socket, auth)? else {
        return if chat.policy().allow_guests {
            Ok(())
        } else {
            Err(Refusal::Chat(ChatError::GuestsDisabled))
        };
    };
    let session = chat.auth().verify(&token)?;
    // Revoked, or an account deleted or re-registered by someone else since.
    chat.auth().check(&session).await?;
    if let IdentityKind::Guest(_) = &session.identity.kind {
        // A guest token may reclaim its name, unless the name was registered since.
        if !chat.policy().allow_guests {
            return Err(Refusal::Chat(ChatError::GuestsDisabled));
        }
        let user = &session.identity.user;
        if chat.auth().is_registered(user).await.map_err(AuthError::from)? {
            return Err(Refusal::Chat(ChatError::NameRegistered(user.to_string())));
        }
    }
    SocketState::of(socket).set_pending(session);
    Ok(())
}

/// The token a socket brings, if any: `auth.token`, or for a 2.x client
/// (which connects to `/` without a CONNECT packet, so without `auth`)
/// `token` in its handshake URL's query.
fn token<A: Adapter>(
    socket: &SocketRef<A>,
    auth: Result<Option<HandshakeAuth>, ParserError>,
) -> Result<Option<String>, Refusal> {
    let auth = auth.map_err(|_| Refusal::Malformed)?.unwrap_or_default();
    if socket.protocol() != ProtocolVersion::V4 {
        return Ok(auth.token);
    }
    let Query(query) =
        Query::<HandshakeQuery>::try_from_uri(&socket.req_parts().uri).map_err(|_| Refusal::Malformed)?;
    Ok(auth.token.or(query.token))
}

fn client_addr<A: Adapter>(socket: &SocketRef<A>) -> Option<ClientAddr> {
    socket.req_parts().extensions.get::<ClientAddr>().copied()
}

/// Logs a refusal (at info, with its code) and hands it back for
/// socketioxide to send. A 2.x client's socket is told to disconnect
/// shortly after (see [`CLOSE_REFUSED_V4_AFTER`]).
pub fn refused<A: Adapter>(io: &SocketIo<A>, socket: &SocketRef<A>, refusal: Refusal) -> Refusal {
    let ip = client_addr(socket).map(|client| tracing::field::display(client.0));
    let protocol = socket.protocol() as u8;
    let (code, reason) = (refusal.code(), refusal.reason());
    tracing::info!(sid = %socket.id, ip, protocol, %code, %reason, "refused a socket at the handshake");
    if socket.protocol() == ProtocolVersion::V4 {
        let (io, socket) = (io.clone(), socket.clone());
        tokio::spawn(async move {
            tokio::time::sleep(CLOSE_REFUSED_V4_AFTER).await;
            let sid = socket.id;
            // The client may have connected since with a CONNECT packet of
            // its own, under the same sid. Disconnecting the refused socket
            // would remove that one from the namespace without its
            // disconnect handler (socketioxide removes by sid), leaving its
            // user online for good.
            if io.get_socket(sid).is_some() {
                return tracing::debug!(%sid, "a refused 2.x socket connected since: left alone");
            }
            if let Err(err) = socket.disconnect() {
                tracing::debug!(%sid, error = %err, "a refused socket closed before it was disconnected");
            }
        });
    }
    refusal
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
            sign_out(&socket, &err);
        }
    }
}
