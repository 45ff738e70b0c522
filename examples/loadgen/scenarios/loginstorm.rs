//! `loginstorm`: everyone reconnects at once (a load balancer restarted, a
//! network blip), but the cost is in the logins. Phase 1 opens N idle
//! socket.io connections, not logged in, and reads the server's memory once
//! it is quiet; phase 2 has all N send `add user` at the same moment and
//! measures the login rate, how long the server stays busy after the last
//! login, and its memory once quiet. Both memory figures come from the same
//! run, so the difference is what a login costs; each is read once the
//! memory stopped falling (what the storm's transient buffers and futures
//! leave is handed back to the system within a second or two).

use std::sync::atomic::Ordering;
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use super::{fleet, limits, print_errors, run_token};
use crate::cli::LoginstormArgs;
use crate::fleet::{Gate, Member};
use crate::progress::Progress;
use crate::quiet::CpuSampler;
use crate::recorder::{LatencySummary, show_ms};
use crate::report::Outcome;
use crate::roles::Role;
use crate::rss;

/// The server is quiet once it uses under [`QUIET_CPU`] of one core over a
/// whole [`QUIET_WINDOW`], as in `idle`.
const QUIET_WINDOW: Duration = Duration::from_secs(2);
/// See [`QUIET_WINDOW`].
const QUIET_CPU: f64 = 0.05;
/// Slack on top of the longest phase 1 can take if every handshake times
/// out, before the gate opens for the clients that are connected anyway.
const PARK_SLACK: Duration = Duration::from_secs(30);
/// The longest wait, once quiet, for the memory to stop falling (see
/// [`rss::settled`]).
const RSS_SETTLE_LIMIT: Duration = Duration::from_secs(10);

/// The `loginstorm` result, as written to `--json`. Memory per client
/// divides by N, the clients asked for, whether or not all got in: the
/// counts say how many did, and when some failed the figures are not a
/// cost per connection or per login.
#[derive(Serialize)]
struct LoginstormResult {
    scenario: &'static str,
    clients: u64,
    /// Connected to the namespace (not logged in) when the gate opened.
    connected: usize,
    /// Seconds from the first connection attempt to the last connection.
    connect_secs: f64,
    /// Logins acked with `ok: true`.
    logged_in: usize,
    rss_before_kb: Option<u64>,
    /// Once quiet (and the memory stopped falling) with every client
    /// connected and none logged in.
    rss_connected_kb: Option<u64>,
    /// Once quiet after the logins, and the memory stopped falling.
    rss_logged_in_kb: Option<u64>,
    /// (connected − before) / N.
    connected_per_client_bytes: Option<i64>,
    /// (logged in − before) / N.
    logged_in_per_client_bytes: Option<i64>,
    /// (logged in − connected) / N: what a login adds to a connection.
    login_cost_bytes: Option<i64>,
    /// From the gate opening to the last login ack.
    login_secs: f64,
    /// Logins a second: `logged_in / login_secs`.
    login_rate: f64,
    /// Each login from `add user` to its ack.
    #[serde(flatten)]
    latency: LatencySummary,
    /// How long the server stayed busy after the last login ack: the START
    /// of the first 2 s window in which it used under 5 % of a core (within
    /// 0.1 s), not the end of that window. The time waited when not quiet.
    quiet_secs: f64,
    /// Whether it went quiet within `--quiet-limit-secs`.
    quiet: bool,
    /// Failed connections or logins, and connections lost.
    errors: usize,
}

/// Runs the scenario.
pub async fn run(args: LoginstormArgs) -> anyhow::Result<Outcome> {
    let sampler = CpuSampler::start(args.pid)?;
    let quiet_limit = Duration::from_secs(args.quiet_limit_secs);
    let rss_before_kb = rss::sample(Some(args.pid));
    let token = run_token();
    let mut fleet = fleet(limits(&args.common, Some(args.concurrency), Gate::BeforeLogin))?;
    let counters = fleet.counters().clone();

    // Phase 1: connect everyone, log no one in.
    let progress = {
        let (counters, total) = (counters.clone(), args.clients);
        Progress::start(move || {
            format!(
                "loginstorm: {}/{total} connected, {} errors",
                counters.parked.load(Ordering::Relaxed),
                counters.errors()
            )
        })
    };
    let started = Instant::now();
    for i in 0..args.clients {
        fleet.spawn(Member {
            target: args.url,
            name: format!("login-{i}-{token}"),
            room: None,
            role: Role::Idle,
        });
    }
    let rounds = args.clients.div_ceil(args.concurrency) as u32;
    let handshake = Duration::from_secs(args.common.handshake_timeout_secs);
    fleet.wait_parked(handshake * rounds + PARK_SLACK).await;
    let connect_secs = started.elapsed().as_secs_f64();
    progress.finish();
    let connected_quiet = settle(&sampler, std::time::Instant::now(), quiet_limit).await;
    let rss_connected_kb = rss::settled(args.pid, RSS_SETTLE_LIMIT).await;
    let connected = counters.parked.load(Ordering::Relaxed);
    eprintln!(
        "loginstorm: {connected}/{} connected in {connect_secs:.2} s; {}; logging in",
        args.clients,
        describe_quiet(connected_quiet, quiet_limit)
    );

    // Phase 2: everyone logs in at once.
    let progress = {
        let (counters, total) = (counters.clone(), args.clients);
        Progress::start(move || {
            format!(
                "loginstorm: {}/{total} logged in, {} errors",
                counters.ready.load(Ordering::Relaxed),
                counters.errors()
            )
        })
    };
    let gate = fleet.open_gate().into_std();
    fleet.wait_settled().await;
    let logged_in = counters.ready.load(Ordering::Relaxed);
    let last_login = counters.last_ready().unwrap_or(gate);
    let login_secs = last_login.saturating_duration_since(gate).as_secs_f64();
    progress.finish();
    let quiet_after = settle(&sampler, last_login, quiet_limit).await;
    let rss_logged_in_kb = rss::settled(args.pid, RSS_SETTLE_LIMIT).await;
    print_errors(&[&fleet]);
    let errors = counters.errors();
    let latency = LatencySummary::of(&counters.handshakes());
    if args.hold_secs > 0 {
        eprintln!("loginstorm: holding the clients for {} s", args.hold_secs);
        tokio::time::sleep(Duration::from_secs(args.hold_secs)).await;
    }
    fleet.shutdown().await;

    let per_client = |from_kb: Option<u64>, to_kb: Option<u64>| {
        Some((to_kb? as i64 - from_kb? as i64) * 1024 / args.clients as i64)
    };
    let result = LoginstormResult {
        scenario: "loginstorm",
        clients: args.clients,
        connected,
        connect_secs,
        logged_in,
        rss_before_kb,
        rss_connected_kb,
        rss_logged_in_kb,
        connected_per_client_bytes: per_client(rss_before_kb, rss_connected_kb),
        logged_in_per_client_bytes: per_client(rss_before_kb, rss_logged_in_kb),
        login_cost_bytes: per_client(rss_connected_kb, rss_logged_in_kb),
        login_secs,
        login_rate: logged_in as f64 / login_secs.max(1e-9),
        latency,
        quiet_secs: quiet_after.secs(),
        quiet: quiet_after.quiet,
        errors,
    };
    let summary = summary(&result, quiet_limit);
    Outcome::new(&result, summary)
}

/// How a wait for the server to go quiet ended.
#[derive(Clone, Copy)]
struct Settled {
    /// Seconds from the moment asked about to the start of the quiet window,
    /// or waited in vain.
    waited: Duration,
    /// Whether a quiet window was found.
    quiet: bool,
}

impl Settled {
    /// [`Settled::waited`] in seconds.
    fn secs(self) -> f64 {
        self.waited.as_secs_f64()
    }
}

/// Waits for the server to go quiet after `from`.
async fn settle(sampler: &CpuSampler, from: std::time::Instant, limit: Duration) -> Settled {
    match sampler.quiet_since(from, QUIET_WINDOW, QUIET_CPU, limit).await {
        Some(start) => Settled { waited: start.saturating_duration_since(from), quiet: true },
        None => Settled { waited: from.elapsed(), quiet: false },
    }
}

/// "quiet 1.2 s after", or "still busy after 300 s".
fn describe_quiet(settled: Settled, limit: Duration) -> String {
    if settled.quiet {
        format!("quiet {:.1} s after", settled.secs())
    } else {
        format!("still busy {} s after", limit.as_secs())
    }
}

/// The one-line summary.
fn summary(r: &LoginstormResult, quiet_limit: Duration) -> String {
    let kib =
        |bytes: Option<i64>| bytes.map_or_else(|| "-".to_owned(), |b| format!("{:.1}", b as f64 / 1024.0));
    let quiet = Settled { waited: Duration::from_secs_f64(r.quiet_secs), quiet: r.quiet };
    format!(
        "loginstorm: {}/{} connected ({} KiB/client), {} logged in within {:.2} s ({:.0}/s, p50 {} ms, p99 {} ms), \
         {} KiB/client logged in (a login adds {} KiB), {} the last login, {} errors",
        r.connected,
        r.clients,
        kib(r.connected_per_client_bytes),
        r.logged_in,
        r.login_secs,
        r.login_rate,
        show_ms(r.latency.p50_ms),
        show_ms(r.latency.p99_ms),
        kib(r.logged_in_per_client_bytes),
        kib(r.login_cost_bytes),
        describe_quiet(quiet, quiet_limit),
        r.errors
    )
}
