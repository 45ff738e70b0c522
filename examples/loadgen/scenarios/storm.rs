//! `storm`: every client connects and logs in at the same moment.

use std::sync::atomic::Ordering;
use std::time::Duration;

use serde::Serialize;

use super::{fleet, limits, print_errors, run_token};
use crate::cli::StormArgs;
use crate::fleet::{Gate, Member};
use crate::progress::Progress;
use crate::recorder::{LatencySummary, show_ms};
use crate::report::Outcome;
use crate::roles::Role;

/// How long spawning the clients may take before the gate opens anyway.
const PARK_WAIT: Duration = Duration::from_secs(30);

/// The `storm` result, as written to `--json`.
#[derive(Serialize)]
struct StormResult {
    scenario: &'static str,
    clients: u64,
    instances: usize,
    logged_in: usize,
    total_secs: f64,
    rate: f64,
    #[serde(flatten)]
    latency: LatencySummary,
    errors: usize,
}

/// Runs the scenario.
pub async fn run(args: StormArgs) -> anyhow::Result<Outcome> {
    let token = run_token();
    let mut fleet = fleet(limits(&args.common, None, Gate::BeforeConnect))?;
    let urls = &args.urls;
    for i in 0..args.clients as usize {
        fleet.spawn(Member {
            target: urls[i % urls.len()],
            name: format!("storm-{i}-{token}"),
            room: None,
            role: Role::Idle,
        });
    }
    // Every task is spawned and waiting before the clock starts, so the
    // storm is not spread over the time spawning takes.
    fleet.wait_parked(PARK_WAIT).await;
    let counters = fleet.counters().clone();
    let progress = {
        let (counters, total) = (counters.clone(), args.clients);
        Progress::start(move || {
            format!(
                "storm: {}/{total} logged in, {} errors",
                counters.ready.load(Ordering::Relaxed),
                counters.errors()
            )
        })
    };
    let started = fleet.open_gate();
    fleet.wait_settled().await;
    let logged_in = counters.ready.load(Ordering::Relaxed);
    let total_secs = counters
        .last_ready()
        .map_or_else(|| started.elapsed(), |last| last.saturating_duration_since(started.into_std()))
        .as_secs_f64();
    progress.finish();
    print_errors(&[&fleet]);
    let errors = counters.errors();
    fleet.shutdown().await;

    let latency = LatencySummary::of(&counters.handshakes());
    let result = StormResult {
        scenario: "storm",
        clients: args.clients,
        instances: urls.len(),
        logged_in,
        total_secs,
        rate: logged_in as f64 / total_secs.max(1e-9),
        latency,
        errors,
    };
    let summary = format!(
        "storm: {logged_in}/{} logged in within {total_secs:.2} s ({:.0}/s), p50 {} ms, p99 {} ms, max {} ms, {errors} errors",
        args.clients,
        result.rate,
        show_ms(latency.p50_ms),
        show_ms(latency.p99_ms),
        show_ms(latency.max_ms)
    );
    Outcome::new(&result, summary)
}
