//! [`Application`]: binds the listener, wires the store, socket.io and HTTP
//! together, and runs until told to stop.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use socketioxide::handler::ConnectHandler;
use socketioxide::{SocketIo, SocketIoBuilder, TransportType};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::chat::{self, Chat};
use crate::config::Config;
use crate::http::{self, Readiness};
use crate::store::MemoryStore;

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
}

/// A built, bound, not yet running chatwire instance.
pub struct Application {
    listener: TcpListener,
    local_addr: SocketAddr,
    router: Router,
    close_sockets: Pin<Box<dyn Future<Output = ()> + Send>>,
    background: Vec<JoinHandle<()>>,
}

impl Application {
    /// Binds the listener (port 0 picks a free one) and builds everything.
    pub async fn build(config: Config) -> Result<Self, StartError> {
        if config.redis_url.is_some() {
            return Err(StartError::Config("REDIS_URL is not supported yet".into()));
        }
        if config.transports.is_empty() {
            return Err(StartError::Config("TRANSPORTS must name at least one transport".into()));
        }
        let addr = SocketAddr::new(config.host, config.port);
        let listener = TcpListener::bind(addr).await.map_err(|source| StartError::Bind { addr, source })?;
        let local_addr = listener.local_addr().map_err(|source| StartError::Bind { addr, source })?;

        let instance = config.instance_name();
        let history_limit = config.history_limit as usize;
        let chat = Chat::new(Arc::new(MemoryStore::new(history_limit)), instance.clone(), history_limit);
        let (socketio, io) = socketio_builder(&config).with_state(chat.clone()).build_svc();
        io.ns("/", chat::on_connect.with(chat::prepare_socket));
        let pusher = chat::spawn_pusher(io.clone(), chat.clone());

        let readiness = Readiness::new(instance.clone(), "memory", true);
        let router = http::router(&config.public_dir, readiness, socketio);
        tracing::info!(
            address = %local_addr,
            instance = %instance,
            mode = "memory",
            transports = ?config.transports,
            "chatwire listening on http://{local_addr}"
        );
        Ok(Self { listener, local_addr, router, close_sockets: close_all(io), background: vec![pusher] })
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
        let (stop_accepting, stopped_accepting) = oneshot::channel::<()>();
        let service = self.router.into_make_service_with_connect_info::<SocketAddr>();
        let server = axum::serve(self.listener, service).with_graceful_shutdown(async {
            let _ = stopped_accepting.await;
        });
        let mut server = tokio::spawn(server.into_future());

        tokio::select! {
            () = shutdown => {}
            finished = &mut server => return finished.map_err(std::io::Error::other)?,
        }
        tracing::info!("shutting down: closing all sockets");
        let _ = stop_accepting.send(());
        if tokio::time::timeout(SHUTDOWN_GRACE, self.close_sockets).await.is_err() {
            tracing::warn!("sockets did not all close within {SHUTDOWN_GRACE:?}");
        }
        for task in &self.background {
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

/// socket.io settings shared by every mode.
fn socketio_builder(config: &Config) -> SocketIoBuilder {
    let builder = SocketIo::builder()
        .max_buffer_size(SEND_QUEUE_PACKETS)
        .ws_max_message_size(config.max_message_bytes)
        .max_payload(config.max_message_bytes as u64);
    match (config.websocket_enabled(), config.polling_enabled()) {
        (true, true) => builder.transports([TransportType::Polling, TransportType::Websocket]),
        (false, true) => builder.transports([TransportType::Polling]),
        _ => builder.transports([TransportType::Websocket]),
    }
}

/// The adapter-typed part of shutdown, erased so [`Application`] need not be generic.
fn close_all<A: socketioxide::adapter::Adapter>(io: SocketIo<A>) -> Pin<Box<dyn Future<Output = ()> + Send>> {
    Box::pin(async move { io.close().await })
}
