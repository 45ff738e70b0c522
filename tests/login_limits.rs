//! Login limits under concurrency: counting is atomic (also across
//! instances), an attack does not lock the owner out, and password hashing
//! is bounded in threads and memory. Requests come from several loopback
//! addresses (127.0.0.x) at once, as from several clients.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use chatwire::auth::limits::{
    FAILURES_PER_NAME_AND_ADDRESS, FAILURES_PER_NAME_BEFORE_BACKOFF, FIRST_TRIES_PER_NAME, MAX_BACKOFF,
};
use chatwire::store::{AccountStore, MemoryStore, RedisStore};
use common::process::Process;
use common::redis::RedisServer;
use common::{TestApp, spawn_app, spawn_clustered};
use futures_util::future::join_all;
use futures_util::{StreamExt, stream};
use serde_json::json;
use tokio::time::{Instant, timeout};

/// The password [`TestApp::account`] registers.
const PASSWORD: &str = "password1234";

/// Loopback address 127.0.0.`n`.
fn address(n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, n))
}

/// An HTTP client whose connections come from 127.0.0.`n`.
fn client_from(n: u8) -> reqwest::Client {
    client_at(address(n))
}

/// An HTTP client whose connections come from `ip` (a loopback address).
fn client_at(ip: IpAddr) -> reqwest::Client {
    reqwest::Client::builder().local_address(ip).build().unwrap()
}

/// Sends `guesses` five at a time (fewer than the hashing queue holds, so
/// no guess is turned away as busy and every refusal is the limits' doing);
/// returns the answers and how long they took.
async fn five_at_a_time(
    guesses: impl Iterator<Item = impl Future<Output = Answer>>,
) -> (Vec<Answer>, Duration) {
    let started = Instant::now();
    let answers: Vec<Answer> = stream::iter(guesses).buffer_unordered(5).collect().await;
    (answers, started.elapsed())
}

/// What a login got back.
#[derive(Debug)]
struct Answer {
    status: u16,
    code: String,
    retry_after: Option<u64>,
}

/// Posts a login to `base` (`http://host:port`); fails the test on a hang.
async fn log_in(client: &reqwest::Client, base: &str, name: &str, password: &str) -> Answer {
    let request = client
        .post(format!("{base}/api/login"))
        .json(&json!({ "username": name, "password": password }))
        .send();
    let response = timeout(Duration::from_secs(30), request).await.expect("answered within 30 s").unwrap();
    let status = response.status().as_u16();
    let retry_after =
        response.headers().get("retry-after").map(|value| value.to_str().unwrap().parse().unwrap());
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    Answer { status, code: body["error"]["code"].as_str().unwrap_or_default().to_owned(), retry_after }
}

/// How many answers had `status`.
fn count(answers: &[Answer], status: u16) -> usize {
    answers.iter().filter(|answer| answer.status == status).count()
}

/// Every answer is a checked password (401), a limit (429) or a busy
/// server (503), and each refusal says when to come back.
#[track_caller]
fn assert_only_checks_and_refusals(answers: &[Answer]) {
    for answer in answers {
        match answer.status {
            401 => assert_eq!(answer.code, "bad_credentials"),
            429 => assert_eq!(answer.code, "rate_limited"),
            503 => assert_eq!(answer.code, "busy"),
            _ => panic!("unexpected answer {answer:?}"),
        }
        if answer.status != 401 {
            assert!(answer.retry_after.is_some_and(|secs| secs >= 1), "no Retry-After in {answer:?}");
        }
    }
}

/// Logs in, following `Retry-After` on the statuses in `again`, until the
/// answer is something else; fails if that takes longer than `within`.
async fn log_in_again_on(
    again: &[u16],
    within: Duration,
    (client, base): (&reqwest::Client, &str),
    name: &str,
    password: &str,
) -> Answer {
    let deadline = Instant::now() + within;
    loop {
        let answer = log_in(client, base, name, password).await;
        let Some(wait) = answer.retry_after.filter(|_| again.contains(&answer.status)) else {
            return answer;
        };
        let wait = Duration::from_secs(wait);
        assert!(Instant::now() + wait <= deadline, "told to wait {wait:?} more, past {within:?}: {answer:?}");
        tokio::time::sleep(wait).await;
    }
}

/// 30 wrong passwords for one account from one address at once, half to
/// each instance when there are two: at most ten are checked, and the owner
/// logs in from another address at once. A guess turned away as busy (its
/// password unchecked) tries again when told, so that every guess ends
/// checked or refused by the limit, as in a patient attack.
async fn racing_wrong_passwords_are_checked_at_most_ten_times(apps: &[TestApp]) {
    apps[0].account("victim").await;
    let attacker = client_from(2);
    let urls: Vec<String> = apps.iter().map(|app| app.url("")).collect();
    let guesses = (0..30).map(|i| {
        let target = (&attacker, urls[i % urls.len()].as_str());
        let guess = format!("guess-number-{i}");
        async move { log_in_again_on(&[503], Duration::from_secs(30), target, "victim", &guess).await }
    });
    let answers = join_all(guesses).await;

    assert_only_checks_and_refusals(&answers);
    assert_eq!(count(&answers, 401) + count(&answers, 429), 30, "{answers:?}");
    let checked = count(&answers, 401);
    assert!(checked >= 1, "no password was checked: {answers:?}");
    assert!(
        checked as u64 <= FAILURES_PER_NAME_AND_ADDRESS,
        "{checked} passwords checked, at most {FAILURES_PER_NAME_AND_ADDRESS} allowed: {answers:?}"
    );
    // The address is locked out of the name, even with the right password...
    let locked = log_in(&attacker, &urls[0], "victim", PASSWORD).await;
    assert_eq!(locked.status, 429, "{locked:?}");
    // ...but the owner, elsewhere, is not.
    for (i, base) in urls.iter().enumerate() {
        let owner = log_in(&client_from(3 + i as u8), base, "victim", PASSWORD).await;
        assert_eq!(owner.status, 200, "owner on instance {i}: {owner:?}");
    }
}

/// Backoff admissions possible in `elapsed` with delays 1 s, 2 s, 4 s...
fn backoff_admissions(elapsed: Duration) -> u64 {
    let mut admitted = 1;
    let mut next = 1.0;
    while next <= elapsed.as_secs_f64() {
        admitted += 1;
        next = next * 2.0 + 1.0;
    }
    admitted
}

/// Ten addresses, ten wrong guesses each, against one name: the name's
/// backoff holds the guesses past its ceiling back (without it, all 100
/// would be checked), and only ever for at most [`MAX_BACKOFF`]. The owner
/// still gets in: at once from a new address or a trusted one, within the
/// backoff from an address that already failed.
async fn a_distributed_guess_is_slowed_and_the_owner_still_gets_in(apps: &[TestApp]) {
    apps[0].account("target").await; // from 127.0.0.1, now trusted for the name
    let urls: Vec<String> = apps.iter().map(|app| app.url("")).collect();
    let attackers: Vec<reqwest::Client> = (10..20).map(client_from).collect();
    let guesses = (0..100).map(|i| {
        let (attacker, base) = (&attackers[i % 10], &urls[i % urls.len()]);
        async move { log_in(attacker, base, "target", &format!("guess-number-{i}")).await }
    });
    let (answers, elapsed) = five_at_a_time(guesses).await;

    assert_only_checks_and_refusals(&answers);
    let checked = count(&answers, 401) as u64;
    // The ceiling, each address's first try, and what the backoff let through.
    let bound = FAILURES_PER_NAME_BEFORE_BACKOFF + 10 + backoff_admissions(elapsed);
    assert!(checked <= bound, "{checked} guesses checked in {elapsed:?}, at most {bound} allowed");
    assert!(count(&answers, 429) > 0, "the backoff never held a guess back");
    for answer in answers.iter().filter(|answer| answer.status == 429) {
        assert!(answer.retry_after.unwrap() <= MAX_BACKOFF.as_secs(), "locked, not slowed: {answer:?}");
    }

    let new_place = log_in(&client_from(30), &urls[0], "target", PASSWORD).await;
    assert_eq!(new_place.status, 200, "first try from a new address: {new_place:?}");
    let trusted = log_in(&client_from(1), &urls[urls.len() - 1], "target", PASSWORD).await;
    assert_eq!(trusted.status, 200, "from where the owner logged in before: {trusted:?}");
    let mistyped = client_from(31);
    assert_eq!(log_in(&mistyped, &urls[0], "target", "a-typo-typo").await.status, 401);
    let target = (&mistyped, urls[urls.len() - 1].as_str());
    let retried = log_in_again_on(&[429, 503], MAX_BACKOFF, target, "target", PASSWORD).await;
    assert_eq!(retried.status, 200, "after a typo, within the backoff: {retried:?}");
}

/// 200 addresses, one wrong guess each, against one name: each address's
/// first try passes the backoff by, but only for the first
/// [`FIRST_TRIES_PER_NAME`] addresses; without that cap, as many addresses
/// as an attacker holds (the /64s of an IPv6 /48) would all be checked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_tries_from_many_addresses_do_not_escape_the_backoff() {
    let app = spawn_app().await;
    app.account("target").await;
    let base = app.url("");
    let attackers: Vec<reqwest::Client> =
        (1..=200u8).map(|n| client_at(IpAddr::V4(Ipv4Addr::new(127, 0, 1, n)))).collect();
    let guesses = attackers.iter().enumerate().map(|(i, attacker)| {
        let base = &base;
        async move { log_in(attacker, base, "target", &format!("guess-number-{i}")).await }
    });
    let (answers, elapsed) = five_at_a_time(guesses).await;

    assert_only_checks_and_refusals(&answers);
    let checked = count(&answers, 401) as u64;
    let bound = FAILURES_PER_NAME_BEFORE_BACKOFF + FIRST_TRIES_PER_NAME + backoff_admissions(elapsed);
    assert!(checked <= bound, "{checked} of 200 first tries checked in {elapsed:?}, at most {bound} allowed");
}

/// 120 logins at once from four addresses, each within its limits: every
/// one is answered (checked, or refused as busy with `Retry-After`), and the
/// server answers other requests meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_logins_is_answered_and_the_server_stays_responsive() {
    let app = spawn_app().await;
    app.account("owner").await;
    let base = app.url("");
    let clients: Vec<reqwest::Client> = (40..44).map(client_from).collect();
    let flood = tokio::spawn(async move {
        join_all((0..120).map(|i| {
            let (client, base) = (&clients[i % 4], &base);
            async move { log_in(client, base, &format!("someone-{i}"), "not-the-password").await }
        }))
        .await
    });
    // Until the flood is answered, other requests are answered promptly.
    let mut probes = 0;
    while !flood.is_finished() || probes == 0 {
        let health = timeout(Duration::from_secs(2), reqwest::get(app.url("/healthz"))).await;
        assert_eq!(health.expect("/healthz within 2 s during the flood").unwrap().status(), 200);
        probes += 1;
    }
    let answers = flood.await.unwrap();

    assert_only_checks_and_refusals(&answers);
    assert_eq!(count(&answers, 429), 0, "within every limit: {answers:?}");
    assert!(count(&answers, 401) >= 1, "no password was checked");
    assert!(count(&answers, 503) >= 1, "120 at once should overflow the hashing queue");
    let (owner, base) = (client_from(45), app.url(""));
    let answer = log_in_again_on(&[503], Duration::from_secs(10), (&owner, &base), "owner", PASSWORD).await;
    assert_eq!(answer.status, 200, "{answer:?}");
}

/// The peak resident memory of a process, from /proc (VmHWM), in MiB.
fn peak_rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|line| line.starts_with("VmHWM:")).expect("VmHWM in /proc/pid/status");
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib / 1024
}

/// The memory bound, on the real binary: 120 concurrent logins used to take
/// it from 11 to 425 MiB (argon2 holds 19 MiB per running hash).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_logins_keeps_the_binary_under_256_mib() {
    let server = Process::start(&[("INSTANCE_NAME", "memory-test")]);
    let base = format!("http://{}", server.addr);
    let clients: Vec<reqwest::Client> = (50..54).map(client_from).collect();
    let answers = join_all((0..120).map(|i| {
        let (client, base) = (&clients[i % 4], &base);
        async move { log_in(client, base, &format!("someone-{i}"), "not-the-password").await }
    }))
    .await;

    assert_only_checks_and_refusals(&answers);
    assert!(count(&answers, 401) >= 1, "no password was checked");
    let peak = peak_rss_mib(server.pid());
    eprintln!("peak RSS after 120 concurrent logins: {peak} MiB");
    assert!(peak < 256, "peak RSS {peak} MiB after 120 concurrent logins");
}

/// The counters behind the limits: at most `max` counted, however many
/// race; given back, never below zero nor after the window closed; cleared.
async fn attempt_counters_stop_at_their_max_and_give_back(store: Arc<dyn AccountStore>) {
    let window = Duration::from_secs(60);
    let racing = join_all((0..50).map(|_| store.count_attempt("race", 10, window))).await;
    let mut counts: Vec<u64> =
        racing.iter().map(|a| a.as_ref().unwrap()).filter(|a| a.counted).map(|a| a.count).collect();
    counts.sort_unstable();
    assert_eq!(counts, (1..=10).collect::<Vec<_>>(), "each count seen once, none past the max");
    let refused = store.count_attempt("race", 10, window).await.unwrap();
    assert!(!refused.counted && refused.count == 10, "{refused:?}");
    assert!(refused.resets_in > Duration::from_secs(50) && refused.resets_in <= window, "{refused:?}");

    store.uncount_attempt("race").await.unwrap();
    assert_eq!(store.attempts("race").await.unwrap(), 9);
    assert!(store.count_attempt("race", 10, window).await.unwrap().counted, "a given-back place is free");
    store.clear_attempts("race").await.unwrap();
    assert_eq!(store.attempts("race").await.unwrap(), 0);

    store.uncount_attempt("never").await.unwrap();
    assert_eq!(store.count_attempt("never", 10, window).await.unwrap().count, 1, "not below zero");

    let short = Duration::from_millis(200);
    assert!(store.count_attempt("short", 1, short).await.unwrap().counted);
    let held = store.count_attempt("short", 1, short).await.unwrap();
    assert!(!held.counted && held.resets_in <= short, "{held:?}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while store.attempts("short").await.unwrap() > 0 {
        assert!(Instant::now() < deadline, "the window never closed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    store.uncount_attempt("short").await.unwrap();
    let again = store.count_attempt("short", 1, short).await.unwrap();
    assert!(again.counted && again.count == 1, "a new window after the old one closed: {again:?}");
}

#[tokio::test]
async fn attempt_counters_in_memory() {
    attempt_counters_stop_at_their_max_and_give_back(Arc::new(MemoryStore::new(10))).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attempt_counters_on_redis() {
    let redis = RedisServer::start();
    let target = chatwire::cluster::RedisTarget::parse(&redis.url()).unwrap();
    let client = chatwire::cluster::client_builder(&target).build().unwrap();
    fred::prelude::ClientLike::init(&client).await.unwrap();
    let store = RedisStore::new(client, "counters", "test-instance", 10);
    attempt_counters_stop_at_their_max_and_give_back(Arc::new(store)).await
}

/// Instantiates a scenario in memory and across two instances on Redis.
macro_rules! both_modes {
    ($($scenario:ident),+) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::$scenario(&[super::spawn_app().await]).await
                }
            )+
        }
        mod on_redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    let redis = super::RedisServer::start();
                    let url = redis.url();
                    let prefix = stringify!($scenario);
                    let apps = [
                        super::spawn_clustered(&url, prefix, "a").await,
                        super::spawn_clustered(&url, prefix, "b").await,
                    ];
                    for app in &apps {
                        app.wait_ready(200, std::time::Duration::from_secs(10)).await;
                    }
                    super::$scenario(&apps).await
                }
            )+
        }
    };
}

both_modes!(
    racing_wrong_passwords_are_checked_at_most_ten_times,
    a_distributed_guess_is_slowed_and_the_owner_still_gets_in
);
