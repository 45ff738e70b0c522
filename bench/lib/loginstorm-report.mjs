// The login storm's part of docs/BENCHMARKS.md: its section (both servers)
// and its two targets (chatwire only). See `loginstorm` in examples/loadgen.

import { KiB, comparison, count, fixed, isNumber, kib, ms, ratio } from "./format.mjs";

/** Seconds to quiet with one decimal ("> N" if the server never went quiet). */
function quietSecs(r) {
  if (!isNumber(r?.quiet_secs)) return "—";
  return r.quiet ? fixed(r.quiet_secs, 1) : `> ${fixed(r.quiet_secs, 0)}`;
}

/** The precision of a time to quiet: CPU time is read every 0.1 s. */
const QUIET_PRECISION_SECS = 0.1;

/**
 * The time-to-quiet ratio: a bound when only Node never went quiet, none
 * when chatwire did not. Times under the precision count as the precision.
 */
function quietRatio(c, n) {
  if (!c.quiet || !isNumber(c.quiet_secs) || !isNumber(n.quiet_secs)) return "—";
  const floor = (secs) => Math.max(secs, QUIET_PRECISION_SECS);
  const r = ratio(floor(c.quiet_secs), floor(n.quiet_secs), true);
  return n.quiet === false && r.endsWith("better") ? `at least ${r}` : r;
}

/** The section's method, for a profile's `loginstorm` settings. */
export function loginstormMethod({ concurrency, loginTimeoutSecs, quietLimitSecs }) {
  return [
    "Everyone reconnects at once, as after a load balancer restarts. The clients first connect without",
    `logging in (${concurrency} at a time); once the server is quiet its RSS is read. Then all of them send`,
    "`add user` at the same moment; the login rate is logins over the time from then to the last ack. Time",
    "to quiet is how long the server stayed busy after the last login: until the start of the first 2 s in",
    "which it used under 5 % of a core (CPU read every 0.1 s). RSS is read again then: the login cost is",
    "memory per connection logged in less memory per connection not logged in, from the same run.",
    "Memory is divided by the clients asked for: when not all of them got in, read it with the counts.",
    `Each login may take ${loginTimeoutSecs} s and each wait for quiet ${quietLimitSecs} s ("> N"): a server that cannot`,
    "finish in time shows what it reached.",
  ].join("\n");
}

/** The table: memory per connection before and after logging in, login rate, time to quiet. */
export function loginstormSection({ chatwire: c = {}, node: n = {} }) {
  const reached = (r) => `${count(r.logged_in)} / ${count(r.connected)} / ${count(r.clients)}`;
  const row = (label, key, show, lowerIsBetter) => [label, show(c[key]), show(n[key]), ratio(c[key], n[key], lowerIsBetter)];
  return comparison([
    ["logged in / connected / asked", reached(c), reached(n), ""],
    row("connected, not logged in (KiB/client)", "connected_per_client_bytes", kib, true),
    row("logged in (KiB/client)", "logged_in_per_client_bytes", kib, true),
    row("**login cost (KiB/client)**", "login_cost_bytes", kib, true),
    row("login rate (/s)", "login_rate", count, false),
    row("login p99 (ms)", "p99_ms", ms, true),
    ["**time to quiet after the last login (s)**", quietSecs(c), quietSecs(n), quietRatio(c, n)],
    ["errors", count(c.errors), count(n.errors), ""],
  ]);
}

/**
 * The two login-storm targets, judged on chatwire's result alone and
 * only with every client logged in: they are set at the profile's number of users.
 */
export function loginstormTargets(storm) {
  const everyone = storm !== undefined && storm.logged_in === storm.clients;
  const short = storm === undefined || everyone ? "" : `; only ${count(storm.logged_in)} of ${count(storm.clients)} logged in`;
  return [
    {
      target: "login storm: quiet within 5 s of the last login (chatwire)",
      measured: `${quietSecs(storm)} s after the last of ${count(storm?.logged_in)} logins${short}`,
      pass: storm === undefined ? undefined : everyone && storm.quiet && storm.quiet_secs <= 5,
    },
    {
      target: "login storm: a login adds at most 4 KiB (chatwire)",
      measured: `${kib(storm?.login_cost_bytes)} KiB per client (${kib(storm?.logged_in_per_client_bytes)} logged in, `
        + `${kib(storm?.connected_per_client_bytes)} connected)${short}`,
      pass: !isNumber(storm?.login_cost_bytes) ? undefined : everyone && storm.login_cost_bytes <= 4 * KiB,
    },
  ];
}
