//! `idle`: connect and log in many clients, then read the server's memory.

use std::sync::atomic::Ordering;
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use super::{fleet, limits, print_errors, run_token};
use crate::cli::IdleArgs;
use crate::fleet::{Gate, Member};
use crate::progress::Progress;
use crate::recorder::{LatencySummary, show_ms};
use crate::report::Outcome;
use crate::roles::Role;
use crate::rss;

/// The server counts as idle once it uses under [`QUIET_CPU`] of a core over
/// a whole [`QUIET_WINDOW`]: every login and the broadcasts it caused (each
/// `user joined` goes to everyone) have been delivered.
const QUIET_WINDOW: Duration = Duration::from_secs(2);
/// See [`QUIET_WINDOW`].
const QUIET_CPU: f64 = 0.05;
/// The longest wait for the server to go quiet; memory is read then anyway.
const QUIET_LIMIT: Duration = Duration::from_secs(300);

/// The `idle` result, as written to `--json`.
#[derive(Serialize)]
struct IdleResult {
    scenario: &'static str,
    clients: u64,
    /// Clients started: fewer than `clients` if the login budget ran out.
    attempted: usize,
    connected: usize,
    connect_secs: f64,
    connect_rate: f64,
    rss_before_kb: Option<u64>,
    /// Right after the last login, with the login broadcasts still queued.
    rss_busy_kb: Option<u64>,
    /// Once the server went quiet (the value per client is computed from).
    rss_after_kb: Option<u64>,
    /// How long the server took to go quiet after the last login.
    quiet_secs: Option<f64>,
    /// Whether it went quiet before [`QUIET_LIMIT`].
    quiet: bool,
    rss_per_client_bytes: Option<i64>,
    errors: usize,
}

/// Runs the scenario.
pub async fn run(args: IdleArgs) -> anyhow::Result<Outcome> {
    let rss_before_kb = rss::sample(args.pid);
    let token = run_token();
    let mut fleet = fleet(limits(&args.common, Some(args.concurrency), Gate::None))?;
    let budget = args.login_budget_secs.map(Duration::from_secs);
    let counters = fleet.counters().clone();
    let total = args.clients;
    let progress = Progress::start(move || {
        format!(
            "idle: {}/{total} connected, {} errors",
            counters.connected.load(Ordering::Relaxed),
            counters.errors()
        )
    });
    let started = Instant::now();
    // Clients are started as handshakes finish, so that none is left
    // waiting for a permit when the budget runs out.
    let in_flight = args.concurrency as usize;
    for i in 0..args.clients {
        while fleet.size() - fleet.counters().settled() >= in_flight {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        if let Some(budget) = budget
            && started.elapsed() >= budget
        {
            eprintln!("idle: login budget of {} s spent after {i} clients", budget.as_secs());
            break;
        }
        fleet.spawn(Member {
            target: args.url,
            name: format!("idle-{i}-{token}"),
            room: None,
            role: Role::Idle,
        });
    }
    fleet.wait_settled().await;
    let counters = fleet.counters().clone();
    let connect_secs = counters
        .last_ready()
        .map_or_else(|| started.elapsed(), |last| last.saturating_duration_since(started.into_std()))
        .as_secs_f64();
    let rss_busy_kb = rss::sample(args.pid);
    let (quiet_secs, quiet) = match (args.pid, rss_busy_kb) {
        (Some(pid), Some(_)) => {
            let (waited, quiet) = rss::wait_quiet(pid, QUIET_WINDOW, QUIET_CPU, QUIET_LIMIT).await;
            (Some(waited.as_secs_f64()), quiet)
        }
        _ => (None, false),
    };
    let rss_after_kb = rss::sample(args.pid);
    let connected = counters.connected.load(Ordering::Relaxed);
    let fleet_size = fleet.size();
    progress.finish();
    print_errors(&[&fleet]);
    if args.hold_secs > 0 {
        eprintln!("idle: holding the clients for {} s", args.hold_secs);
        tokio::time::sleep(Duration::from_secs(args.hold_secs)).await;
    }
    fleet.shutdown().await;

    let rss_per_client_bytes = match (rss_before_kb, rss_after_kb) {
        (Some(before), Some(after)) if connected > 0 => {
            Some((after as i64 - before as i64) * 1024 / connected as i64)
        }
        _ => None,
    };
    let result = IdleResult {
        scenario: "idle",
        clients: args.clients,
        attempted: fleet_size,
        connected,
        connect_secs,
        connect_rate: connected as f64 / connect_secs.max(1e-9),
        rss_before_kb,
        rss_busy_kb,
        rss_after_kb,
        quiet_secs,
        quiet,
        rss_per_client_bytes,
        errors: counters.errors(),
    };
    let memory = rss_per_client_bytes.map_or_else(String::new, |bytes| {
        let settled = quiet_secs.map_or_else(String::new, |secs| {
            format!(" ({} after {secs:.0} s)", if quiet { "quiet" } else { "still busy" })
        });
        format!(", {bytes} B/client{settled}")
    });
    let handshake = LatencySummary::of(&counters.handshakes());
    let summary = format!(
        "idle: {connected}/{} logged in in {connect_secs:.2} s ({:.0}/s, handshake p50 {} ms, p99 {} ms){memory}, {} errors",
        args.clients,
        result.connect_rate,
        show_ms(handshake.p50_ms),
        show_ms(handshake.p99_ms),
        result.errors
    );
    Outcome::new(&result, summary)
}
