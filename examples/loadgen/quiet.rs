//! When a server went quiet: its CPU time sampled in the background, and
//! the first window in which it used under a share of one core.
//!
//! [`crate::rss::wait_quiet`] answers "is it quiet yet?" in whole windows
//! from when it is called, which is enough before reading memory. Telling
//! how long a server stayed busy after some moment needs finer steps and
//! samples taken from before that moment: this module gives both.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use crate::rss;

/// How often the CPU time is read: the precision of a quiet window's start.
const SAMPLE_EVERY: Duration = Duration::from_millis(100);
/// Linux counts CPU time in ticks of 1/100 s (USER_HZ).
const TICKS_PER_SEC: f64 = 100.0;

/// One reading: when, and the process's user plus system CPU ticks then.
type Sample = (Instant, u64);

/// Reads a process's CPU time every [`SAMPLE_EVERY`] until dropped, or
/// until the process is gone.
pub struct CpuSampler {
    /// Every reading so far, oldest first.
    samples: Arc<Mutex<Vec<Sample>>>,
    /// The task taking them.
    task: JoinHandle<()>,
}

impl CpuSampler {
    /// Starts sampling process `pid`; the first reading is taken at once.
    pub fn start(pid: u32) -> std::io::Result<Self> {
        let first = (Instant::now(), rss::cpu_ticks(pid)?);
        let samples = Arc::new(Mutex::new(vec![first]));
        let task = tokio::spawn({
            let samples = samples.clone();
            async move {
                let mut ticker = tokio::time::interval(SAMPLE_EVERY);
                ticker.tick().await;
                loop {
                    ticker.tick().await;
                    let Ok(ticks) = rss::cpu_ticks(pid) else { return };
                    samples.lock().unwrap_or_else(PoisonError::into_inner).push((Instant::now(), ticks));
                }
            }
        });
        Ok(Self { samples, task })
    }

    /// Waits for the first window of at least `window`, starting at `from`
    /// or later, in which the process used under `busy` of one core, and
    /// returns the START of that window: the moment the process stopped
    /// being busy, give or take [`SAMPLE_EVERY`]. `None` if no such window
    /// had ended `limit` after `from`, or the process is gone.
    pub async fn quiet_since(
        &self,
        from: Instant,
        window: Duration,
        busy: f64,
        limit: Duration,
    ) -> Option<Instant> {
        loop {
            let found = {
                let samples = self.samples.lock().unwrap_or_else(PoisonError::into_inner);
                first_quiet_window(&samples, from, window, busy)
            };
            if found.is_some() {
                return found;
            }
            if self.task.is_finished() || Instant::now() >= from + limit {
                return None;
            }
            tokio::time::sleep(SAMPLE_EVERY).await;
        }
    }
}

impl Drop for CpuSampler {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The time of the first sample at or after `from` that opens a quiet
/// window: by the first sample at least `window` later, the process had
/// used under `busy` of one core on average.
fn first_quiet_window(samples: &[Sample], from: Instant, window: Duration, busy: f64) -> Option<Instant> {
    let first = samples.partition_point(|(at, _)| *at < from);
    for (i, &(start, ticks)) in samples.iter().enumerate().skip(first) {
        let rest = &samples[i..];
        let end = rest.partition_point(|(at, _)| at.duration_since(start) < window);
        let &(end_at, end_ticks) = rest.get(end)?;
        let used = end_ticks.saturating_sub(ticks) as f64 / TICKS_PER_SEC;
        if used < busy * end_at.duration_since(start).as_secs_f64() {
            return Some(start);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Samples every 100 ms from `t0`, with these tick counts.
    fn samples(t0: Instant, ticks: &[u64]) -> Vec<Sample> {
        ticks.iter().enumerate().map(|(i, &t)| (t0 + Duration::from_millis(100 * i as u64), t)).collect()
    }

    #[test]
    fn the_quiet_window_starts_when_the_busy_spell_ends() {
        let t0 = Instant::now();
        // A full core for 1 s (10 ticks per sample), then 1 tick a second.
        let mut ticks: Vec<u64> = (0..=10).map(|i| i * 10).collect();
        ticks.extend((1..=40).map(|i| 100 + i / 10));
        let samples = samples(t0, &ticks);
        let window = Duration::from_secs(2);
        let start = first_quiet_window(&samples, t0, window, 0.05);
        // From 1 s on, a 2 s window holds 2 ticks; from 0.9 s on, 11: over
        // the 10 ticks (0.1 s of CPU) that 5 % of 2 s allows.
        assert_eq!(start, Some(t0 + Duration::from_secs(1)));
        // Asked from later, the answer is no earlier than asked.
        let later = t0 + Duration::from_millis(1500);
        assert_eq!(first_quiet_window(&samples, later, window, 0.05), Some(later));
    }

    #[test]
    fn no_window_is_quiet_until_a_whole_one_has_been_sampled() {
        let t0 = Instant::now();
        let samples = samples(t0, &[0; 15]);
        assert_eq!(first_quiet_window(&samples, t0, Duration::from_secs(2), 0.05), None);
        let busy: Vec<u64> = (0..40).map(|i| i * 10).collect();
        let samples = self::samples(t0, &busy);
        assert_eq!(first_quiet_window(&samples, t0, Duration::from_secs(2), 0.05), None);
    }
}
