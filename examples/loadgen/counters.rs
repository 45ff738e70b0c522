//! What happened to a fleet's clients: how many are up, how long their
//! handshakes took, and which errors they met.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use hdrhistogram::errors::CreationError;

use crate::connection::ClientError;
use crate::recorder::micros_histogram;

/// How many distinct error messages are kept to show at the end.
const ERROR_SAMPLES: usize = 5;

/// Shared by every client task of a fleet.
pub struct Counters {
    /// Clients that reached the start gate: `storm` counts every arrival;
    /// `loginstorm` counts those connected and waiting there right now.
    pub parked: AtomicUsize,
    /// Clients that completed the handshake, ever.
    pub ready: AtomicUsize,
    /// Clients connected right now.
    pub connected: AtomicUsize,
    /// Handshakes that failed or timed out.
    pub failed: AtomicUsize,
    /// Connections lost after the handshake.
    pub dropped: AtomicUsize,
    /// Handshake durations in µs, from TCP connect to the last ack (from
    /// `add user` to its ack behind a [`crate::fleet::Gate::BeforeLogin`]).
    handshakes: Mutex<Histogram<u64>>,
    /// When the latest handshake completed.
    last_ready: Mutex<Option<Instant>>,
    /// The first few distinct errors, for the operator.
    samples: Mutex<Vec<String>>,
}

impl Counters {
    /// Zeroed counters.
    pub fn new() -> Result<Self, CreationError> {
        Ok(Self {
            parked: AtomicUsize::new(0),
            ready: AtomicUsize::new(0),
            connected: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
            dropped: AtomicUsize::new(0),
            handshakes: Mutex::new(micros_histogram()?),
            last_ready: Mutex::new(None),
            samples: Mutex::new(Vec::new()),
        })
    }

    /// A handshake that took `took` just completed.
    pub fn handshake_done(&self, took: Duration) {
        let now = Instant::now();
        self.handshakes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .saturating_record((took.as_micros() as u64).max(1));
        let mut last = self.last_ready.lock().unwrap_or_else(PoisonError::into_inner);
        *last = Some(last.map_or(now, |seen| seen.max(now)));
        drop(last);
        self.ready.fetch_add(1, Ordering::Relaxed);
        self.connected.fetch_add(1, Ordering::Relaxed);
    }

    /// A handshake failed.
    pub fn handshake_failed(&self, error: &ClientError) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        self.sample(error);
    }

    /// A connected client went away; `error` says why, if it was not asked to.
    pub fn disconnected(&self, error: Option<&ClientError>) {
        self.connected.fetch_sub(1, Ordering::Relaxed);
        if let Some(error) = error {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            self.sample(error);
        }
    }

    /// Handshakes that finished, either way.
    pub fn settled(&self) -> usize {
        self.ready.load(Ordering::Relaxed) + self.failed.load(Ordering::Relaxed)
    }

    /// Every error: failed handshakes and dropped connections.
    pub fn errors(&self) -> usize {
        self.failed.load(Ordering::Relaxed) + self.dropped.load(Ordering::Relaxed)
    }

    /// A copy of the handshake durations.
    pub fn handshakes(&self) -> Histogram<u64> {
        self.handshakes.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// When the latest handshake completed, if any did.
    pub fn last_ready(&self) -> Option<Instant> {
        *self.last_ready.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The first few distinct errors.
    pub fn error_samples(&self) -> Vec<String> {
        self.samples.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn sample(&self, error: &ClientError) {
        let mut samples = self.samples.lock().unwrap_or_else(PoisonError::into_inner);
        let text = error.to_string();
        if samples.len() < ERROR_SAMPLES && !samples.contains(&text) {
            samples.push(text);
        }
    }
}
