//! How many connections the process can hold: one open file each, under
//! the open-files limit (`RLIMIT_NOFILE`).
//!
//! At start the soft limit is raised to the hard one (most systems start
//! processes at 1,024, far below what a chat server holds). Past the limit
//! `accept` itself fails, and new clients would wait unanswered in the
//! kernel's backlog; so connections to the public port are counted, and
//! once all but [`RESERVED_FILES`] of the limit are open, a new one is
//! answered `503` with `Retry-After` and closed at once: a client retries
//! elsewhere (behind a load balancer) or later. The log says so, at most
//! once a minute, and `chatwire_connections_refused_total` counts them.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::sync::Semaphore;

use crate::metrics::metrics;

/// Open files kept for everything but client connections: Redis, the
/// listeners, static files, logs.
pub const RESERVED_FILES: u64 = 64;
/// The fewest connections allowed, whatever the limit says.
const MIN_CONNECTIONS: usize = 16;
/// Refused clients answered at once; past them a refused connection is
/// closed without an answer (each answer holds an open file a moment, and
/// a flood of them must not eat the files kept for Redis and the rest).
const MAX_ANSWERING: usize = 16;
/// How long a refused client may take to read its answer.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(1);
/// The answer to a connection over capacity.
const REFUSAL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
Content-Type: application/json\r\n\
Retry-After: 5\r\n\
Connection: close\r\n\
Content-Length: 89\r\n\
\r\n\
{\"ok\":false,\"error\":{\"code\":\"server_full\",\"message\":\"too many connections, retry later\"}}";

/// Raises the soft open-files limit to the hard one, logs the limit in
/// force, and returns it (`None` where it cannot be read).
pub fn raise_open_files_limit() -> Option<u64> {
    let before = rlimit::getrlimit(rlimit::Resource::NOFILE).ok();
    let limit = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(err) => {
            tracing::warn!(error = %err, "cannot read or raise the open-files limit");
            return before.map(|(soft, _)| soft);
        }
    };
    let connections = Capacity::for_limit(limit).max();
    match before {
        Some((soft, hard)) if soft < limit => {
            tracing::info!(limit, raised_from = soft, hard, connections, "open-files limit raised")
        }
        Some((_, hard)) => tracing::info!(limit, hard, connections, "open-files limit"),
        None => tracing::info!(limit, connections, "open-files limit"),
    }
    metrics().set_open_files_limit(limit);
    Some(limit)
}

/// The connections open on the public port, against the most allowed.
/// Cheap to clone; clones share the count.
#[derive(Clone)]
pub struct Capacity(Arc<Inner>);

struct Inner {
    open: AtomicUsize,
    max: usize,
    /// Refusals being answered.
    answering: Arc<Semaphore>,
    /// When reaching the limit was last logged.
    reported: Mutex<Option<std::time::Instant>>,
}

/// One counted connection; dropping it frees its place.
pub struct Place(Capacity);

/// A connection's stream holding its [`Place`]: an upgraded websocket
/// keeps the stream long after the HTTP exchange ended, so the place must
/// live with the stream, not with the HTTP task.
pub struct Counted<S> {
    stream: S,
    _place: Option<Place>,
}

impl<S> Counted<S> {
    /// `stream`, holding `place` (if counted) until it is dropped.
    pub fn new(stream: S, place: Option<Place>) -> Self {
        Self { stream, _place: place }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Counted<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counted<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        self.0.0.open.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Capacity {
    /// The capacity the process's current open-files limit allows.
    pub fn from_process_limit() -> Self {
        let limit = rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(u64::MAX, |(soft, _)| soft);
        Self::for_limit(limit)
    }

    fn for_limit(limit: u64) -> Self {
        let max = usize::try_from(limit.saturating_sub(RESERVED_FILES)).unwrap_or(usize::MAX);
        Self(Arc::new(Inner {
            open: AtomicUsize::new(0),
            max: max.max(MIN_CONNECTIONS),
            answering: Arc::new(Semaphore::new(MAX_ANSWERING)),
            reported: Mutex::new(None),
        }))
    }

    /// The most connections held at once.
    pub fn max(&self) -> usize {
        self.0.max
    }

    /// Logs that the connection limit was reached, at most once a minute.
    fn report_full(&self) {
        let mut reported = self.0.reported.lock().unwrap_or_else(PoisonError::into_inner);
        if reported.is_none_or(|at| at.elapsed() >= Duration::from_secs(60)) {
            *reported = Some(std::time::Instant::now());
            tracing::warn!(
                connections = self.0.max,
                "connection limit reached (the open-files limit less {RESERVED_FILES}): new connections are answered 503 until some close"
            );
        }
    }

    /// A place for one more connection, if there is room.
    pub fn take(&self) -> Option<Place> {
        let taken = self.0.open.fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
            (open < self.0.max).then_some(open + 1)
        });
        taken.is_ok().then(|| Place(self.clone()))
    }

    /// Answers a connection over capacity with `503` and closes it, in a
    /// task of its own so the accept loop goes on (at most
    /// [`MAX_ANSWERING`] at once; the others are closed at once).
    pub fn refuse<S>(&self, mut stream: S)
    where
        S: AsyncWrite + Unpin + Send + 'static,
    {
        metrics().connection_refused();
        self.report_full();
        let Ok(answering) = self.0.answering.clone().try_acquire_owned() else {
            return; // dropped: closed without an answer
        };
        tokio::spawn(async move {
            let _answering = answering;
            let _ = tokio::time::timeout(REFUSAL_TIMEOUT, async {
                stream.write_all(REFUSAL).await?;
                stream.shutdown().await
            })
            .await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refusal_says_how_long_its_body_is() {
        let text = std::str::from_utf8(REFUSAL).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("Content-Length: {}", body.len())), "{head}");
        serde_json::from_str::<serde_json::Value>(body).unwrap();
    }

    #[test]
    fn places_are_counted_and_given_back() {
        let capacity = Capacity::for_limit(RESERVED_FILES + MIN_CONNECTIONS as u64);
        let places: Vec<Place> = (0..capacity.max()).map(|_| capacity.take().unwrap()).collect();
        assert!(capacity.take().is_none(), "full");
        drop(places);
        assert!(capacity.take().is_some(), "room again");
        assert_eq!(Capacity::for_limit(10).max(), MIN_CONNECTIONS, "never below the minimum");
    }
}
