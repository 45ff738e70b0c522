//! Latency samples from many receivers at once: a sharded histogram, so
//! receivers on different worker threads rarely share a lock, with a
//! measuring window so late deliveries of one step never count in the next.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use hdrhistogram::Histogram;
use hdrhistogram::errors::{AdditionError, CreationError};
use serde::Serialize;

/// Largest latency kept exactly, in microseconds; longer ones count as this.
const HIGHEST_MICROS: u64 = 120_000_000;
/// No window is open: every sample is ignored.
const CLOSED: u64 = u64::MAX;

/// A fresh histogram of microseconds, 3 significant digits.
pub fn micros_histogram() -> Result<Histogram<u64>, CreationError> {
    Histogram::new_with_bounds(1, HIGHEST_MICROS, 3)
}

/// Collects `now - sent` for messages sent since the window opened.
pub struct Recorder {
    /// One histogram per shard; a receiver always uses the same one.
    shards: Box<[Mutex<Histogram<u64>>]>,
    /// Messages sent before this time (unix µs) are not counted.
    window_start: AtomicU64,
    /// Hands out shards round-robin.
    next_seat: AtomicUsize,
}

impl Recorder {
    /// A recorder with a closed window.
    pub fn new() -> Result<Self, CreationError> {
        let threads = std::thread::available_parallelism().map_or(4, |n| n.get());
        let shards = (0..(threads * 4).max(8))
            .map(|_| micros_histogram().map(Mutex::new))
            .collect::<Result<Box<[_]>, _>>()?;
        Ok(Self { shards, window_start: AtomicU64::new(CLOSED), next_seat: AtomicUsize::new(0) })
    }

    /// The shard a new receiver records into.
    pub fn seat(&self) -> usize {
        self.next_seat.fetch_add(1, Ordering::Relaxed) % self.shards.len()
    }

    /// Records a delivery seen at `now` of a message sent at `sent` (unix µs).
    pub fn record(&self, seat: usize, sent: u64, now: u64) {
        if sent < self.window_start.load(Ordering::Relaxed) {
            return;
        }
        if let Some(shard) = self.shards.get(seat) {
            lock(shard).saturating_record(now.saturating_sub(sent).max(1));
        }
    }

    /// Forgets earlier samples and counts messages sent from `start` on.
    pub fn open_window(&self, start: u64) {
        for shard in &self.shards {
            lock(shard).reset();
        }
        self.window_start.store(start, Ordering::Relaxed);
    }

    /// Stops counting and returns what the window collected.
    pub fn close_window(&self) -> Result<Histogram<u64>, AdditionError> {
        self.window_start.store(CLOSED, Ordering::Relaxed);
        self.merged()
    }

    /// Everything recorded so far in the open window.
    pub fn merged(&self) -> Result<Histogram<u64>, AdditionError> {
        let mut merged = Histogram::new_from(&*lock(&self.shards[0]));
        for shard in &self.shards {
            merged.add(&*lock(shard))?;
        }
        Ok(merged)
    }

    /// How many deliveries the open window counted.
    pub fn delivered(&self) -> u64 {
        self.shards.iter().map(|shard| lock(shard).len()).sum()
    }
}

/// A shard's histogram. A panic while one was held cannot leave it
/// inconsistent in a way that matters for a benchmark, so poison is ignored.
fn lock(shard: &Mutex<Histogram<u64>>) -> MutexGuard<'_, Histogram<u64>> {
    shard.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The percentiles every scenario reports, in milliseconds; `null` without samples.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct LatencySummary {
    /// Median.
    pub p50_ms: Option<f64>,
    /// 99th percentile.
    pub p99_ms: Option<f64>,
    /// Largest sample.
    pub max_ms: Option<f64>,
}

impl LatencySummary {
    /// Summarises a histogram of microseconds.
    pub fn of(histogram: &Histogram<u64>) -> Self {
        let ms = |micros: u64| (!histogram.is_empty()).then(|| micros as f64 / 1000.0);
        Self {
            p50_ms: ms(histogram.value_at_quantile(0.5)),
            p99_ms: ms(histogram.value_at_quantile(0.99)),
            max_ms: ms(histogram.max()),
        }
    }
}

/// `12.3` for a value, `-` for none: for progress and summary lines.
pub fn show_ms(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_owned(), |ms| format!("{ms:.1}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_messages_sent_inside_the_window_count() {
        let recorder = Recorder::new().unwrap();
        let seat = recorder.seat();
        recorder.record(seat, 1_000, 2_000);
        recorder.open_window(5_000);
        recorder.record(seat, 4_000, 6_000);
        recorder.record(seat, 5_000, 7_000);
        assert_eq!(recorder.delivered(), 1);
        let histogram = recorder.close_window().unwrap();
        recorder.record(seat, 6_000, 8_000);
        assert_eq!(histogram.len(), 1);
        assert_eq!(LatencySummary::of(&histogram).max_ms, Some(2.0));
    }
}
