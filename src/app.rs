//! [`Application`]: binds the listeners, picks the mode ([`crate::mode`])
//! the configuration asks for, and runs until told to stop.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::Config;
use crate::http::{self, Capacity, Edge, Port};
use crate::mode::{self, Instance, Wiring, edge};
use crate::net::no_delay;
use crate::tls::{Certificate, TlsListener};

pub use crate::mode::StartError;

/// How long shutdown waits for sockets to close and the server to stop.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

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
        let listener = crate::net::listen(addr).map_err(|source| StartError::Bind { addr, source })?;
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
                    crate::net::listen(addr).map_err(|source| StartError::Bind { addr, source })?;
                tracing::info!(address = %listener.local_addr().unwrap_or(addr), "redirecting plain HTTP to https");
                Some((listener, edge(&config)?))
            }
            None => None,
        };
        let metrics = match config.metrics_addr {
            Some(addr) => {
                let listener =
                    crate::net::listen(addr).map_err(|source| StartError::Bind { addr, source })?;
                tracing::info!(address = %listener.local_addr().unwrap_or(addr), "serving /metrics and /readyz");
                Some(listener)
            }
            None => None,
        };
        let header_read_timeout = Duration::from_secs(config.header_read_timeout_secs);

        let (wiring, mode) = match &config.redis_url {
            None => (mode::memory::wire(&config, &instance)?, "memory"),
            Some(url) => (mode::cluster::wire(&config, &instance, url).await?, "redis"),
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

/// The checks that span several settings, made before anything is bound.
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
