//! A progress line on stderr: rewritten in place every 500 ms on a
//! terminal, printed as a plain line every 5 s otherwise (so logs of a
//! benchmark run are not flooded).

use std::io::{IsTerminal, Write};
use std::time::Duration;

use tokio::task::JoinHandle;

/// How often the line is refreshed on a terminal.
const REFRESH: Duration = Duration::from_millis(500);
/// How many refreshes make one printed line when stderr is not a terminal.
const REFRESHES_PER_LOG_LINE: u32 = 10;

/// A running progress line; [`Progress::finish`] ends it.
pub struct Progress {
    /// The task redrawing the line.
    task: JoinHandle<()>,
    /// Whether stderr is a terminal (the line then needs ending).
    terminal: bool,
}

impl Progress {
    /// Shows `status()` until finished.
    pub fn start(mut status: impl FnMut() -> String + Send + 'static) -> Self {
        let terminal = std::io::stderr().is_terminal();
        let task = tokio::spawn(async move {
            let mut ticker = tokio::time::interval(REFRESH);
            ticker.tick().await;
            for refresh in 1u32.. {
                ticker.tick().await;
                let line = status();
                // A progress line that cannot be written is not worth stopping for.
                let mut stderr = std::io::stderr().lock();
                if terminal {
                    let _ = write!(stderr, "\r{line}\x1b[K");
                    let _ = stderr.flush();
                } else if refresh % REFRESHES_PER_LOG_LINE == 0 {
                    let _ = writeln!(stderr, "{line}");
                }
            }
        });
        Self { task, terminal }
    }

    /// Prints a line of its own (a step's result) above the progress line.
    pub fn note(&self, line: &str) {
        if self.terminal {
            eprintln!("\r{line}\x1b[K");
        } else {
            eprintln!("{line}");
        }
    }

    /// Stops redrawing and ends the line.
    pub fn finish(self) {
        self.task.abort();
        if self.terminal {
            eprintln!();
        }
    }
}

/// Messages a second between two readings of a counter.
pub struct RateMeter {
    /// The previous reading.
    last: u64,
    /// When it was taken.
    at: std::time::Instant,
}

impl RateMeter {
    /// A meter starting from zero, now.
    pub fn new() -> Self {
        Self { last: 0, at: std::time::Instant::now() }
    }

    /// The rate since the previous reading (counters that were reset read as 0).
    pub fn rate(&mut self, count: u64) -> f64 {
        let now = std::time::Instant::now();
        let secs = now.duration_since(self.at).as_secs_f64().max(1e-3);
        let rate = count.saturating_sub(self.last) as f64 / secs;
        self.last = count;
        self.at = now;
        rate
    }
}
