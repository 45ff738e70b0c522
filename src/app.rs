//! [`Application`]: binds the listener, wires the store, socket.io and HTTP
//! together for the configured mode, and runs until told to stop.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::serve::ListenerExt;
use rand::Rng;
use socketioxide::handler::ConnectHandler;
use socketioxide::{ParserConfig, SocketIo, SocketIoBuilder, TransportType};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::auth::{Auth, Tokens};
use crate::chat::{self, Chat, Policy};
use crate::cluster;
use crate::config::{Config, PacketParser};
use crate::domain;
use crate::http::{self, Api, Capacity, ChatNotices, Edge, Limits, Port, Readiness};
use crate::net::no_delay;
use crate::store::{MemoryStore, Stores};
use crate::tls::{Certificate, TlsListener};

/// Files kept in memory in single-instance mode, at most (oldest go first).
const MEMORY_FILES_MAX_BYTES: usize = 256 * 1024 * 1024;

/// Packets queued for one client before further emits to it fail. A burst in
/// a busy room must not drop messages (socketioxide's default is 128); the
/// queue allocates as it fills, so an idle connection pays nothing for it.
const SEND_QUEUE_PACKETS: usize = 4096;

/// How long shutdown waits for sockets to close and the server to stop.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

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
    fn new(name: String) -> Self {
        let id = format!("{name}#{:06x}", rand::rng().random_range(0..0x100_0000u32));
        Self { name, id }
    }
}

/// A built, bound, not yet running chatwire instance.
pub struct Application {
    listener: TcpListener,
    local_addr: SocketAddr,
    /// Direct TLS on `listener`, if configured.
    tls: Option<Arc<Certificate>>,
    /// The plain-HTTP port that only redirects to https, if configured.
    redirect: Option<(TcpListener, Edge)>,
    /// METRICS_ADDR's listener, if configured.
    metrics: Option<TcpListener>,
    /// HEADER_READ_TIMEOUT_SECS.
    header_read_timeout: Duration,
    wiring: Wiring,
}

impl Application {
    /// Binds the listener (port 0 picks a free one) and builds everything.
    /// With `REDIS_URL` set it returns without waiting for Redis.
    pub async fn build(config: Config) -> Result<Self, StartError> {
        validate(&config)?;
        for warning in config.deprecations() {
            tracing::warn!("{warning}");
        }
        let addr = SocketAddr::new(config.host, config.port);
        let listener = TcpListener::bind(addr).await.map_err(|source| StartError::Bind { addr, source })?;
        let local_addr = listener.local_addr().map_err(|source| StartError::Bind { addr, source })?;
        let instance = Instance::new(config.instance_name());
        let tls = match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => Some(Certificate::load(cert, key).map_err(StartError::Config)?),
            _ => None,
        };
        let redirect = match config.http_redirect_port {
            Some(port) => {
                let addr = SocketAddr::new(config.host, port);
                let listener =
                    TcpListener::bind(addr).await.map_err(|source| StartError::Bind { addr, source })?;
                tracing::info!(address = %listener.local_addr().unwrap_or(addr), "redirecting plain HTTP to https");
                Some((listener, edge(&config)?))
            }
            None => None,
        };
        let metrics = match config.metrics_addr {
            Some(addr) => {
                let listener =
                    TcpListener::bind(addr).await.map_err(|source| StartError::Bind { addr, source })?;
                tracing::info!(address = %listener.local_addr().unwrap_or(addr), "serving /metrics and /readyz");
                Some(listener)
            }
            None => None,
        };
        let header_read_timeout = Duration::from_secs(config.header_read_timeout_secs);

        let (wiring, mode) = match &config.redis_url {
            None => (memory_mode(&config, &instance)?, "memory"),
            Some(url) => (cluster::wire(&config, &instance, url).await?, "redis"),
        };
        tracing::info!(
            address = %local_addr,
            instance = %instance.name,
            instance_id = %instance.id,
            mode,
            transports = ?config.transports,
            max_frame_bytes = config.transport_cap(),
            parser = %config.parser,
            "chatwire listening on {}://{local_addr}",
            if tls.is_some() { "https" } else { "http" }
        );
        Ok(Self { listener, local_addr, tls, redirect, metrics, header_read_timeout, wiring })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.local_addr.port()
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until `shutdown` completes, then drains: stops accepting,
    /// closes every socket (their disconnect handlers run), and returns
    /// within a few seconds.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let Wiring { router, mut tasks, shutdown: close } = self.wiring;
        let (stop_accepting, stopped) = watch::channel(false);
        let timeout = self.header_read_timeout;
        // One count for the public port (plain or TLS, and its redirect port):
        // the monitoring port stays reachable when it is full.
        let capacity = Capacity::from_process_limit();
        if let Some(listener) = self.metrics {
            let monitoring =
                http::serve(listener, router.clone(), Port::Metrics, timeout, None, stopped.clone());
            tasks.push(tokio::spawn(async move {
                if let Ok(Err(err)) = monitoring.await {
                    tracing::error!(error = %err, "the metrics port stopped");
                }
            }));
        }
        let mut server = match self.tls {
            None => {
                let listener = self.listener.tap_io(no_delay);
                http::serve(listener, router, Port::App, timeout, Some(capacity.clone()), stopped.clone())
            }
            Some(certificate) => {
                tasks.push(certificate.spawn_reloader());
                let listener = TlsListener::new(self.listener, certificate)?;
                http::serve(listener, router, Port::App, timeout, Some(capacity.clone()), stopped.clone())
            }
        };
        if let Some((listener, edge)) = self.redirect {
            let redirect = http::redirect_router(edge);
            let listener = listener.tap_io(no_delay);
            let redirecting = http::serve(listener, redirect, Port::App, timeout, Some(capacity), stopped);
            tasks.push(tokio::spawn(async move {
                if let Ok(Err(err)) = redirecting.await {
                    tracing::error!(error = %err, "the redirect port stopped");
                }
            }));
        }

        tokio::select! {
            () = shutdown => {}
            finished = &mut server => return finished.map_err(std::io::Error::other)?,
        }
        tracing::info!("shutting down: closing all sockets");
        let _ = stop_accepting.send(true);
        if tokio::time::timeout(SHUTDOWN_GRACE, close).await.is_err() {
            tracing::warn!("sockets did not all close within {SHUTDOWN_GRACE:?}");
        }
        for task in &tasks {
            task.abort();
        }
        match tokio::time::timeout(SHUTDOWN_GRACE, server).await {
            Ok(finished) => finished.map_err(std::io::Error::other)??,
            Err(_) => tracing::warn!("HTTP connections still open after {SHUTDOWN_GRACE:?}; exiting anyway"),
        }
        tracing::info!("stopped");
        Ok(())
    }
}

/// The HTTP router of either mode, around its socket.io service.
pub fn router<S>(config: &Config, readiness: Readiness, api: Api, socketio: S) -> Result<Router, StartError>
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

fn validate(config: &Config) -> Result<(), StartError> {
    edge(config)?;
    http::SecurityHeaders::log(config);
    if config.http_redirect_port.is_some() && !config.tls_enabled() {
        return Err(StartError::Config("HTTP_REDIRECT_PORT needs TLS_CERT and TLS_KEY".into()));
    }
    if config.transports.is_empty() {
        return Err(StartError::Config("TRANSPORTS must name at least one transport".into()));
    }
    if config.instance_ttl_ms < 2 * config.heartbeat_interval_ms {
        return Err(StartError::Config(
            "INSTANCE_TTL_MS must be at least twice HEARTBEAT_INTERVAL_MS, or live instances get purged"
                .into(),
        ));
    }
    if config.redis_prefix.is_empty() || config.redis_prefix.contains(['{', '}', '#']) {
        return Err(StartError::Config("REDIS_PREFIX must be non-empty, without `{`, `}` or `#`".into()));
    }
    Ok(())
}

/// Single instance: state in memory, socket.io's local adapter.
fn memory_mode(config: &Config, instance: &Instance) -> Result<Wiring, StartError> {
    let history_limit = config.history_limit as usize;
    let store = MemoryStore::new(history_limit)
        .with_file_limits(config.file_ttl(), MEMORY_FILES_MAX_BYTES)
        .with_history_limits(config.history_max_bytes(), config.history_ttl());
    let secret = match config.token_secret().map_err(StartError::Config)? {
        Some(secret) => secret,
        None => {
            tracing::info!("no SECRET set: using a random one; login tokens end when this process does");
            rand::random::<[u8; 32]>().to_vec()
        }
    };
    let (chat, api) = services(config, instance, Stores::of(Arc::new(store)), &secret, chat::Ghosts::none());
    let (socketio, io) = socketio_builder(config).with_state(chat.clone()).build_svc();
    io.ns("/", chat::on_connect.with(chat::prepare_socket));
    let tasks = chat::spawn_tasks(&io, &chat);
    let readiness = Readiness::new(instance.name.clone(), "memory", true);
    Ok(Wiring {
        router: router(config, readiness, api, socketio)?,
        tasks,
        shutdown: Box::pin(async move { io.close().await }),
    })
}

/// The chat state and the HTTP API over one backend's stores.
pub fn services(
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
pub fn socketio_builder(config: &Config) -> SocketIoBuilder {
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
