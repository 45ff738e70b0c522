//! The scenarios, one module each, and what they share: client names,
//! connection limits, and waiting for the last deliveries of a step.

pub mod fanout;
pub mod idle;
pub mod latency;
pub mod loginstorm;
pub mod rooms;
pub mod storm;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::cli::Common;
use crate::counters::Counters;
use crate::fleet::{Fleet, Gate, Limits};
use crate::recorder::Recorder;

/// How long a step waits for deliveries still in flight after sending stops.
const STRAGGLER_WAIT: Duration = Duration::from_secs(2);
/// Pause between setting up and measuring, so the burst of `user joined` /
/// `member joined` events the setup causes has drained.
const SETTLE: Duration = Duration::from_secs(1);

/// A suffix that keeps this run's names apart from any other run's.
fn run_token() -> String {
    format!("{:06x}", rand::random::<u32>() & 0x00ff_ffff)
}

/// Connection limits from the command line.
fn limits(common: &Common, concurrency: Option<u64>, gate: Gate) -> Limits {
    Limits {
        concurrency: concurrency.map(|permits| Arc::new(Semaphore::new(permits as usize))),
        handshake_timeout: Duration::from_secs(common.handshake_timeout_secs),
        gate,
    }
}

/// A fleet with its own counters.
fn fleet(limits: Limits) -> anyhow::Result<Fleet> {
    Ok(Fleet::new(limits, Arc::new(Counters::new()?)))
}

/// Waits until each recorder has counted its expected deliveries, or the
/// straggler wait is over.
async fn wait_for_deliveries(recorders: &[(&Recorder, u64)]) {
    let deadline = Instant::now() + STRAGGLER_WAIT;
    while Instant::now() < deadline
        && recorders.iter().any(|(recorder, expected)| recorder.delivered() < *expected)
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Prints the first few distinct errors of these fleets, if there were any.
fn print_errors(fleets: &[&Fleet]) {
    for fleet in fleets {
        let counters = fleet.counters();
        if counters.errors() > 0 {
            eprintln!(
                "{} failed handshakes, {} dropped connections; first errors: {}",
                counters.failed.load(std::sync::atomic::Ordering::Relaxed),
                counters.dropped.load(std::sync::atomic::Ordering::Relaxed),
                counters.error_samples().join(" | ")
            );
        }
    }
}
