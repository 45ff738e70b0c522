//! `idle`: connect and log in many clients, then read the server's memory.

use std::sync::atomic::Ordering;
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use super::{fleet, limits, print_errors, run_token};
use crate::cli::IdleArgs;
use crate::fleet::Member;
use crate::progress::Progress;
use crate::recorder::{LatencySummary, show_ms};
use crate::report::Outcome;
use crate::roles::Role;
use crate::rss;

/// How long after the last login memory is read again (the value reported).
const RSS_SETTLE: Duration = Duration::from_secs(2);

/// The `idle` result, as written to `--json`.
#[derive(Serialize)]
struct IdleResult {
    scenario: &'static str,
    clients: u64,
    connected: usize,
    connect_secs: f64,
    connect_rate: f64,
    rss_before_kb: Option<u64>,
    rss_after_kb: Option<u64>,
    rss_per_client_bytes: Option<i64>,
    errors: usize,
}

/// Runs the scenario.
pub async fn run(args: IdleArgs) -> anyhow::Result<Outcome> {
    let rss_before_kb = rss::sample(args.pid);
    let token = run_token();
    let mut fleet = fleet(limits(&args.common, Some(args.concurrency), false))?;
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
    for i in 0..args.clients {
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
    let rss_after_kb = match rss::sample(args.pid) {
        Some(_) => {
            tokio::time::sleep(RSS_SETTLE).await;
            rss::sample(args.pid)
        }
        None => None,
    };
    let connected = counters.connected.load(Ordering::Relaxed);
    progress.finish();
    print_errors(&[&fleet]);
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
        connected,
        connect_secs,
        connect_rate: connected as f64 / connect_secs.max(1e-9),
        rss_before_kb,
        rss_after_kb,
        rss_per_client_bytes,
        errors: counters.errors(),
    };
    let memory = rss_per_client_bytes.map_or_else(String::new, |bytes| format!(", {bytes} B/client"));
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
