//! The two ways chatwire runs, and what they share. [`memory`]: one
//! instance, state in this process. [`cluster`]: several instances sharing
//! Redis. Each builds a [`Wiring`] (the router, background tasks, its part
//! of shutdown) from the same pieces, defined here: `services` (the chat
//! and the HTTP API over the mode's stores), `socketio_builder` (socket.io
//! settings) and `router` (HTTP around socket.io). The application (`app`)
//! picks a mode and runs its wiring.

pub mod cluster;
pub mod memory;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use rand::Rng;
use socketioxide::{ParserConfig, SocketIo, SocketIoBuilder, TransportType};
use tokio::task::JoinHandle;

use crate::auth::{Auth, Tokens};
use crate::chat::{self, Chat, Policy};
use crate::config::{Config, PacketParser};
use crate::domain;
use crate::http::{self, Api, ChatNotices, Edge, Limits, Readiness};
use crate::store::Stores;

/// Packets queued for one client before further emits to it fail. A burst in
/// a busy room must not drop messages (socketioxide's default is 128); the
/// queue allocates as it fills, so an idle connection pays nothing for it.
const SEND_QUEUE_PACKETS: usize = 4096;

/// Why the application could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// The configuration is inconsistent.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// Redis could not be set up (a bad URL; an unreachable Redis is not an error).
    #[error("cannot set up Redis: {0}")]
    Redis(String),
}

/// What a mode hands to the application: the router, the background tasks,
/// and the mode's part of shutdown (closing sockets, leaving the cluster).
pub struct Wiring {
    /// The HTTP router, socket.io included.
    pub router: Router,
    /// Tasks to abort at shutdown, after `shutdown` ran.
    pub tasks: Vec<JoinHandle<()>>,
    /// Closes every socket and releases what the instance holds.
    pub shutdown: Pin<Box<dyn Future<Output = ()> + Send>>,
}

/// This instance's identity: the configured name for humans, and a unique
/// id (name plus a random suffix) under which it holds sockets in Redis, so
/// two processes given the same name never mix up their sockets.
#[derive(Debug, Clone)]
pub struct Instance {
    /// INSTANCE_NAME, or the hostname.
    pub name: String,
    /// `name#suffix`, unique per process.
    pub id: String,
}

impl Instance {
    /// The identity of this process, named `name`.
    pub(crate) fn new(name: String) -> Self {
        let id = format!("{name}#{:06x}", rand::rng().random_range(0..0x100_0000u32));
        Self { name, id }
    }
}

/// The HTTP router of either mode, around its socket.io service.
fn router<S>(config: &Config, readiness: Readiness, api: Api, socketio: S) -> Result<Router, StartError>
where
    S: tower::Service<axum::extract::Request, Error = std::convert::Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Response: axum::response::IntoResponse + 'static,
    S::Future: Send + 'static,
{
    let gate = http::EngineGate::new(config.allow_eio3, config.max_connections_per_address);
    Ok(http::router(&config.public_dir, edge(config)?, readiness, api, socketio, gate))
}

/// The request-edge rules, or why the configuration is wrong.
pub fn edge(config: &Config) -> Result<Edge, StartError> {
    Edge::from_config(config).map_err(StartError::Config)
}

/// The chat state and the HTTP API over one backend's stores.
fn services(
    config: &Config,
    instance: &Instance,
    stores: Stores,
    secret: &[u8],
    ghosts: chat::Ghosts,
) -> (Chat, Api) {
    let tokens = Tokens::new(secret, Duration::from_secs(config.token_ttl_secs));
    let auth = Auth::new(tokens, stores.accounts.clone(), stores.state.clone());
    let policy = Policy {
        allow_guests: config.allow_guests,
        max_file_bytes: config.max_file_bytes,
        max_frame_bytes: config.transport_cap(),
        max_text_bytes: config.frame_bytes(),
        event_rate: config.event_rate,
        event_burst: config.event_burst,
        delivery_bytes_per_sec: config.delivery_bytes_per_sec,
        delivery_burst_bytes: config.delivery_burst_bytes,
        file_quota_bytes: config.file_quota_bytes(),
        max_rooms_per_socket: config.max_rooms_per_socket,
        max_sockets_per_user: config.max_sockets_per_user,
        max_connections_per_address: config.max_connections_per_address,
        login_timeout: (config.login_timeout_secs > 0)
            .then(|| Duration::from_secs(config.login_timeout_secs)),
        announce_max_users: config.announce_max_users,
        session_check: std::time::Duration::from_millis(config.session_check_ms),
    };
    let chat = Chat::new(
        stores.clone(),
        auth.clone(),
        policy,
        instance.id.clone(),
        config.history_limit as usize,
        ghosts,
    );
    let limits = Limits {
        allow_guests: config.allow_guests,
        max_file_bytes: config.max_file_bytes,
        max_avatar_bytes: http::MAX_AVATAR_BYTES,
        max_text_chars: domain::MAX_TEXT_CHARS,
        max_username_chars: domain::MAX_USERNAME_CHARS,
        max_room_chars: domain::MAX_ROOM_CHARS,
        max_recipients: chat::MAX_RECIPIENTS,
        history_limit: config.history_limit as usize,
        parser: config.parser.as_str(),
    };
    let api = Api::new(auth, stores, limits, Arc::new(chat.clone()));
    (chat, api)
}

/// The API's notices go to the chat's own methods of the same names.
impl ChatNotices for Chat {
    fn avatar_changed(&self, user: &domain::Username) {
        Chat::avatar_changed(self, user);
    }

    fn sessions_changed(&self) {
        Chat::sessions_changed(self);
    }
}

/// socket.io settings shared by every mode.
///
/// The transport cap ([`Config::transport_cap`]: MAX_FRAME_BYTES, Node's
/// `maxHttpBufferSize`, raised for files) bounds what one client makes us
/// hold: a websocket message, each websocket frame of it (tungstenite would
/// otherwise buffer a single frame of up to 16 MiB before checking the
/// message), a polling body, and a packet's binary attachments together. A
/// file travels as one binary frame, read up to twice MAX_FILE_BYTES so that
/// a file a little over the limit gets a clean `file_too_large`. Anything
/// larger closes the connection; anything smaller is read and handled.
fn socketio_builder(config: &Config) -> SocketIoBuilder {
    let cap = config.transport_cap();
    let parser = ParserConfig::common()
        .max_incoming_binaries(chat::MAX_BINARY_ATTACHMENTS)
        .max_incoming_binary_buf_size(cap)
        .packet_completion_timeout(Duration::from_secs(30));
    // The process's parser, for /metrics and the parser-mismatch warning.
    crate::metrics::metrics().set_parser(config.parser);
    let builder = match config.parser {
        PacketParser::Common => SocketIo::builder().with_parser(parser),
        // Binaries travel inside the MessagePack packet, not as attachments:
        // the attachment limits have no counterpart, the frame caps below bound it.
        PacketParser::Msgpack => SocketIo::builder().with_parser(ParserConfig::msgpack()),
    };
    let builder = builder
        .connect_timeout(Duration::from_secs(config.connect_timeout_secs))
        .ping_interval(Duration::from_millis(config.ping_interval_ms))
        .ping_timeout(Duration::from_millis(config.ping_timeout_ms))
        .max_buffer_size(SEND_QUEUE_PACKETS)
        .ws_max_message_size(cap)
        .ws_max_frame_size(cap)
        .max_payload(cap as u64);
    match (config.websocket_enabled(), config.polling_enabled()) {
        (true, true) => builder.transports([TransportType::Polling, TransportType::Websocket]),
        (false, true) => builder.transports([TransportType::Polling]),
        _ => builder.transports([TransportType::Websocket]),
    }
}
