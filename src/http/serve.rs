//! Serving a router on a listener, in place of `axum::serve`, which cannot
//! bound how long a client takes to send its request headers: a client
//! trickling a header a byte at a time held its connection for as long as
//! it liked. Here hyper closes a connection whose headers are not complete
//! within HEADER_READ_TIMEOUT_SECS of the server starting to wait for them
//! (at the start of the connection, and between keep-alive requests).
//!
//! HTTP/1.1 only, with upgrades (websockets). TLS offers only `http/1.1`
//! (ALPN) and nginx speaks 1.1 upstream, so HTTP/2 would only have been
//! reachable as cleartext prior knowledge, with no such deadline.
//!
//! Every request carries the peer's `ConnectInfo<SocketAddr>` (as
//! `into_make_service_with_connect_info` gave it) and the [`Port`] it
//! arrived on.

use std::net::SocketAddr;
use std::pin::pin;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::serve::Listener;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tower::Service;

use super::capacity::{Capacity, Counted};

/// Which listener a request arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Port {
    /// The public port (and the plain-HTTP redirect port beside TLS).
    App,
    /// METRICS_ADDR: `/metrics` and `/readyz` for the monitoring network.
    Metrics,
}

/// Serves `router` on `listener`, in a task, until `stop` turns true (with
/// `capacity`, a connection over it is answered 503 and closed); then
/// stops accepting and waits for the HTTP requests in progress (upgraded
/// websockets are no longer HTTP and are closed by the chat's own shutdown).
pub fn serve<L>(
    mut listener: L,
    router: Router,
    port: Port,
    header_read_timeout: Duration,
    capacity: Option<Capacity>,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<std::io::Result<()>>
where
    L: Listener<Addr = SocketAddr>,
{
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(header_read_timeout);
    tokio::spawn(async move {
        // Each connection task holds a receiver; all are gone once every
        // connection has finished.
        let (open, _) = watch::channel(());
        loop {
            let (io, peer) = tokio::select! {
                accepted = listener.accept() => accepted,
                () = stopped(&mut stop) => break,
            };
            let place = match &capacity {
                None => None,
                Some(capacity) => match capacity.take() {
                    Some(place) => Some(place),
                    None => {
                        capacity.refuse(io);
                        continue;
                    }
                },
            };
            let router = router.clone();
            let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                request.extensions_mut().insert(port);
                router.clone().call(request)
            });
            let connection =
                http.serve_connection(TokioIo::new(Counted::new(io, place)), service).with_upgrades();
            let (mut stop, counted) = (stop.clone(), open.subscribe());
            tokio::spawn(async move {
                let _counted = counted;
                let mut connection = pin!(connection);
                let result = tokio::select! {
                    result = connection.as_mut() => result,
                    () = stopped(&mut stop) => {
                        connection.as_mut().graceful_shutdown();
                        connection.await
                    }
                };
                match result {
                    Err(err) if err.is_timeout() => {
                        tracing::debug!(%peer, "closed a connection that did not send its headers in time");
                    }
                    Err(err) => tracing::debug!(%peer, error = %err, "connection ended with an error"),
                    Ok(()) => {}
                }
            });
        }
        drop(listener);
        open.closed().await;
        Ok(())
    })
}

/// Completes once `stop` turns true (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}
