// Turns one run's results into docs/BENCHMARKS.md: the machine, the
// versions, one table per scenario with both servers side by side, and the
// issue's targets checked. Every number comes from bench/results/*.json.

import { KiB, comparison, count, fixed, isNumber, ms, ratio } from "./format.mjs";
import { loginstormMethod, loginstormSection, loginstormTargets } from "./loginstorm-report.mjs";
import { routingMethod, routingSection } from "./routing-report.mjs";
import { scaleMethod, scaleSection } from "./scale-report.mjs";

export { ratio };

export const WHAT_CHANGED_HEADING = "## What changed what";
const WHAT_CHANGED_PLACEHOLDER =
  "_To be filled in by the engineers: which change moved which number, with the commit and the before/after figures._";

/** Clients logged in, started (fewer if the login budget ran out) and asked for. */
function started(r) {
  return `${count(r.connected)} / ${count(r.attempted ?? r.clients)} / ${count(r.clients)}`;
}

/** How long a server took to go quiet after the last login ("> N" if it never did). */
function quietTime(r) {
  if (!isNumber(r.quiet_secs)) return "—";
  return r.quiet ? fixed(r.quiet_secs, 0) : `> ${fixed(r.quiet_secs, 0)}`;
}

function idleSection({ chatwire: c = {}, node: n = {} }) {
  const perClient = (r) => (isNumber(r.rss_per_client_bytes) ? r.rss_per_client_bytes / KiB : undefined);
  return comparison([
    ["logged in / started / asked", started(c), started(n), ""],
    ["connect time (s)", fixed(c.connect_secs, 2), fixed(n.connect_secs, 2), ratio(c.connect_secs, n.connect_secs, true)],
    ["connect rate (/s)", count(c.connect_rate), count(n.connect_rate), ratio(c.connect_rate, n.connect_rate, false)],
    ["RSS before (MiB)", fixed(c.rss_before_kb / KiB), fixed(n.rss_before_kb / KiB), ""],
    ["RSS right after the last login (MiB)", fixed(c.rss_busy_kb / KiB), fixed(n.rss_busy_kb / KiB), ""],
    ["time to go quiet (s)", quietTime(c), quietTime(n), ""],
    ["RSS once quiet (MiB)", fixed(c.rss_after_kb / KiB), fixed(n.rss_after_kb / KiB), ""],
    ["**memory per connection (KiB)**", fixed(perClient(c), 2), fixed(perClient(n), 2), ratio(perClient(c), perClient(n), true)],
    ["errors", count(c.errors), count(n.errors), ""],
  ]);
}

/**
 * The step from which a server's p99 stays above 50 ms: a slow step
 * followed by a calm one (a pause while the first steps warm up) is a
 * hiccup, not the knee.
 */
function kneeOf(fanout) {
  const steps = (fanout?.steps ?? []).filter((s) => isNumber(s.p99_ms));
  const lastCalm = steps.findLastIndex((s) => s.p99_ms <= 50);
  return steps[lastCalm + 1];
}

/**
 * The most deliveries per second a server sustained: the best step at which
 * it lost at most 1 %. A step it fell behind in is left out, because
 * deliveries arriving up to 2 s after sending stops count towards the step
 * and would overstate what it can carry.
 */
export function saturationThroughput(fanout) {
  const keptUp = (fanout?.steps ?? []).filter((s) => isNumber(s.deliveries_per_sec) && s.lost <= 0.01 * s.expected);
  return keptUp.length ? Math.max(...keptUp.map((s) => s.deliveries_per_sec)) : undefined;
}

/**
 * Whether the load generator stopped stepping up because the server fell
 * behind (rather than because the rates ran out): only then is the best step
 * the server's limit and not a lower bound.
 */
export function saturated(fanout, { rates, stopP99Ms }) {
  const steps = fanout?.steps ?? [];
  const last = steps.at(-1);
  if (!last) return false;
  return steps.length < rates.length || last.p99_ms > stopP99Ms || last.lost > 0.01 * last.expected;
}

/** The throughput, marked "≥" when the server never saturated. */
function throughput(fanout, settings) {
  const best = saturationThroughput(fanout);
  return isNumber(best) && !saturated(fanout, settings) ? `≥ ${count(best)}` : count(best);
}

function fanoutSection({ chatwire: c, node: n }, settings, offeredDeliveries) {
  const rates = [...new Set([...(c?.steps ?? []), ...(n?.steps ?? [])].map((s) => s.offered_rate))].sort((a, b) => a - b);
  const step = (result, rate) => result?.steps?.find((s) => s.offered_rate === rate) ?? {};
  const lost = (s) => (isNumber(s.expected) && s.expected > 0 ? `${fixed((100 * (s.lost ?? 0)) / s.expected, 1)} %` : "—");
  const lines = [
    "| offered msgs/s | offered deliveries/s | chatwire delivered/s | chatwire p50 / p99 ms | chatwire lost | Node delivered/s | Node p50 / p99 ms | Node lost |",
    "|---:|---:|---:|---:|---:|---:|---:|---:|",
  ];
  for (const rate of rates) {
    const [a, b] = [step(c, rate), step(n, rate)];
    const offered = offeredDeliveries(a.offered_rate !== undefined ? a : b);
    lines.push(
      `| ${count(rate)} | ${count(offered)} | ${count(a.deliveries_per_sec)} | ${ms(a.p50_ms)} / ${ms(a.p99_ms)} | ${lost(a)} ` +
        `| ${count(b.deliveries_per_sec)} | ${ms(b.p50_ms)} / ${ms(b.p99_ms)} | ${lost(b)} |`,
    );
  }
  const [satC, satN] = [saturationThroughput(c), saturationThroughput(n)];
  const summary = comparison([
    ["receivers", count(c?.clients), count(n?.clients), ""],
    ["steps run", count(c?.steps?.length), count(n?.steps?.length), ""],
    ["**saturation throughput (deliveries/s)**", throughput(c, settings), throughput(n, settings), ratio(satC, satN, false)],
    ["errors", count(c?.errors), count(n?.errors), ""],
  ]);
  return `${lines.join("\n")}\n\n${summary}`;
}

function latencySection({ chatwire: c = {}, node: n = {} }) {
  return comparison([
    ["samples", count(c.samples), count(n.samples), ""],
    ["p50 (ms)", ms(c.p50_ms), ms(n.p50_ms), ratio(c.p50_ms, n.p50_ms, true)],
    ["**p99 (ms)**", ms(c.p99_ms), ms(n.p99_ms), ratio(c.p99_ms, n.p99_ms, true)],
    ["max (ms)", ms(c.max_ms), ms(n.max_ms), ratio(c.max_ms, n.max_ms, true)],
    ["errors", count(c.errors), count(n.errors), ""],
  ]);
}

function stormSection({ chatwire: c = {}, node: n = {} }) {
  return comparison([
    ["logged in / attempted", `${count(c.logged_in)} / ${count(c.clients)}`, `${count(n.logged_in)} / ${count(n.clients)}`, ""],
    ["total time (s)", fixed(c.total_secs, 2), fixed(n.total_secs, 2), ratio(c.total_secs, n.total_secs, true)],
    ["**logins per second**", count(c.rate), count(n.rate), ratio(c.rate, n.rate, false)],
    ["login p50 (ms)", ms(c.p50_ms), ms(n.p50_ms), ratio(c.p50_ms, n.p50_ms, true)],
    ["login p99 (ms)", ms(c.p99_ms), ms(n.p99_ms), ratio(c.p99_ms, n.p99_ms, true)],
    ["login max (ms)", ms(c.max_ms), ms(n.max_ms), ratio(c.max_ms, n.max_ms, true)],
    ["errors", count(c.errors), count(n.errors), ""],
  ]);
}

const verdict = (pass) => (pass === undefined ? "n/a" : pass ? "**PASS**" : "**FAIL**");

/** The four targets, each with the numbers it was judged on. */
export function checkTargets(results, fanoutSettings) {
  const { chatwire: c, node: n } = results;
  const rows = [];

  const memC = c.idle?.rss_per_client_bytes;
  const memN = n.idle?.rss_per_client_bytes;
  rows.push({
    target: "memory per idle connection ≤ ¼ of Node's",
    measured: `${fixed(memC / KiB, 2)} KiB vs ${fixed(memN / KiB, 2)} KiB (${ratio(memC, memN, true)}), `
      + `with ${count(c.idle?.connected)} and ${count(n.idle?.connected)} clients logged in`,
    pass: isNumber(memC) && isNumber(memN) && memN > 0 ? memC * 4 <= memN : undefined,
  });

  const [satC, satN] = [saturationThroughput(c.fanout), saturationThroughput(n.fanout)];
  const [limitC, limitN] = [saturated(c.fanout, fanoutSettings), saturated(n.fanout, fanoutSettings)];
  const caveat = !limitN ? "; Node did not saturate: raise the rates"
    : !limitC && satC < 4 * satN ? "; chatwire did not saturate: raise the rates" : "";
  rows.push({
    target: "fan-out saturation throughput ≥ 4× Node's",
    measured: `${throughput(c.fanout, fanoutSettings)} vs ${throughput(n.fanout, fanoutSettings)} deliveries/s (${ratio(satC, satN, false)})${caveat}`,
    pass: isNumber(satC) && isNumber(satN) && limitN && (limitC || satC >= 4 * satN) ? satC >= 4 * satN : undefined,
  });

  const knee = kneeOf(n.fanout);
  const ours = knee && c.fanout?.steps?.find((s) => s.offered_rate === knee.offered_rate);
  rows.push({
    target: "at the rate from which Node's p99 stays over 50 ms, chatwire's p99 < 10 ms",
    measured: knee
      ? `at ${count(knee.offered_rate)} msgs/s: Node ${ms(knee.p99_ms)} ms, chatwire ${ms(ours?.p99_ms)} ms`
      : "Node's p99 stayed under 50 ms at every step",
    pass: knee && isNumber(ours?.p99_ms) ? ours.p99_ms < 10 : undefined,
  });

  for (const [key, label] of [["latencyLow", "without background load"], ["latencyHigh", "with background load"]]) {
    const [pc, pn] = [c[key]?.p99_ms, n[key]?.p99_ms];
    rows.push({
      target: `cross-instance p99 ≤ ½ of Node's, ${label}`,
      measured: `${ms(pc)} ms vs ${ms(pn)} ms (${ratio(pc, pn, true)})`,
      pass: isNumber(pc) && isNumber(pn) ? pc * 2 <= pn : undefined,
    });
  }

  rows.push(...loginstormTargets(c.loginstorm));
  return rows;
}

/** The whole of docs/BENCHMARKS.md. */
export function renderReport({ environment: e, command, profile, results, background, offeredDeliveries, failures, minutes, whatChanged }) {
  const pair = (key) => ({ chatwire: results.chatwire[key], node: results.node[key] });
  const targets = checkTargets(results, profile.fanout);
  const out = [];
  out.push("# Benchmarks: chatwire vs Node.js socket.io");
  out.push("");
  out.push("_Generated by `scripts/bench`; edit only the last section by hand (it is kept when the file is regenerated)._");
  if (profile.name === "quick") out.push("", "> **Smoke run (`--quick`)**: small loads, for checking the harness. Do not quote these numbers.");
  out.push("");
  out.push("Both servers ran as **two instances sharing one Redis** on this machine, with the load generator");
  out.push("(`examples/loadgen`, Rust) on the same machine, everything on loopback. The Node.js baseline is");
  out.push("`bench/node-reference/server.js`: socket.io with `@socket.io/redis-adapter`, websocket only, serving");
  out.push("the same events and payloads (see `bench/README.md`). Every scenario starts on freshly started");
  out.push("instances and an emptied Redis. Ratios are \"how many times better chatwire is\" (lower time,");
  out.push("latency and memory are better; higher rates are better). The load generator shares the CPU with");
  out.push("the servers and Redis: on a machine with few cores, its own limit can cap what both servers show.");
  out.push("");
  out.push("## Machine and versions");
  out.push("");
  out.push("| | |");
  out.push("|---|---|");
  out.push(`| CPU | ${e.cpu}, ${e.cores} cores |`);
  out.push(`| RAM | ${e.ramGiB.toFixed(1)} GiB |`);
  out.push(`| OS | ${e.os} |`);
  out.push(`| load average at the start | ${e.loadAverage.toFixed(2)} (1 minute; should be near 0) |`);
  out.push(`| chatwire | commit \`${e.commit}\`, release build |`);
  out.push(`| Rust | ${e.rustc} |`);
  out.push(`| Node.js | ${e.node} |`);
  out.push(`| socket.io | ${e.socketIo} |`);
  out.push(`| @socket.io/redis-adapter | ${e.redisAdapter} (redis client ${e.redisClient}) |`);
  out.push(`| Redis | ${e.redisServer} |`);
  out.push("");
  out.push(`Command: \`${command}\` (${fixed(minutes, 1)} minutes, ${new Date().toISOString().slice(0, 10)}).`);
  if (failures.length) {
    out.push("", "**Scenarios that failed** (their cells show —):", "");
    for (const f of failures) out.push(`- ${f.kind} ${f.scenario}: ${f.message.split("\n")[0]}`);
  }
  out.push("");
  out.push("## Targets");
  out.push("");
  out.push("| target | measured | result |");
  out.push("|---|---|---|");
  for (const t of targets) out.push(`| ${t.target} | ${t.measured} | ${verdict(t.pass)} |`);
  out.push("");
  out.push(`## Idle connections (${count(profile.idle.clients)} clients on one instance)`);
  out.push("");
  out.push(`Clients connect and log in (${profile.idle.concurrency} handshakes in flight; no new one starts after`);
  out.push(`${count(profile.idle.budgetSecs)} s), then stay idle. Node sends each login's`);
  out.push("`user joined` to everyone already online; chatwire does so up to 1,000 users online, then");
  out.push("gathers logins into one `presence` event a second (`ANNOUNCE_MAX_USERS`, docs/PROTOCOL.md). The");
  out.push("logins queue work the server finishes after the");
  out.push("last one; the load generator waits until the server uses under 5 % of a core over 2 s (at most");
  out.push("300 s), then reads its RSS. Memory per connection is that RSS less the RSS before, divided by the");
  out.push("number of connected clients.");
  out.push("");
  out.push(idleSection(pair("idle")));
  out.push("");
  out.push(`## Fan-out (${count(profile.fanout.clients)} receivers in one room, split over both instances)`);
  out.push("");
  out.push(`Senders post to the room at rising rates (each √2 times the last), ${profile.fanout.stepSecs} s per step, until p99 passes`);
  out.push(`${profile.fanout.stopP99Ms} ms or more than 1 % of deliveries are lost, or the rates run out. Saturation`);
  out.push("throughput is the most deliveries per second at a step where the server lost at most 1 % (deliveries");
  out.push("arriving up to 2 s after a step's sending stops count); \"≥\" marks a server that never fell behind.");
  out.push("");
  out.push("![p99 latency against the offered delivery rate, both servers](benchmarks.svg)");
  out.push("");
  out.push(fanoutSection(pair("fanout"), profile.fanout, offeredDeliveries));
  out.push("");
  out.push(`## Cross-instance latency (${profile.latency.rate} msgs/s from instance 1 to instance 2, ${profile.latency.secs} s)`);
  out.push("");
  out.push("### Without background load");
  out.push("");
  out.push(latencySection(pair("latencyLow")));
  out.push("");
  out.push(`### With background load (${count(profile.latency.backgroundClients)} clients, ${count(background.rate)} msgs/s)`);
  out.push("");
  out.push(`${background.note} Both servers get the same.`);
  out.push("");
  out.push(latencySection(pair("latencyHigh")));
  out.push("");
  out.push(`## Login storm (${count(profile.storm.clients)} clients at once, over both instances)`);
  out.push("");
  out.push(stormSection(pair("storm")));
  out.push("");
  out.push(`## Login storm into idle connections (${count(profile.loginstorm.clients)} clients on one instance)`);
  out.push("");
  out.push(loginstormMethod(profile.loginstorm));
  out.push("");
  out.push(loginstormSection(pair("loginstorm")));
  out.push("");
  out.push("## Room routing: fan-out and latency, namespace-wide and room-routed (chatwire)");
  out.push("");
  out.push(routingMethod());
  out.push("");
  out.push(routingSection(results.chatwire?.routing, profile.fanout));
  out.push("");
  if (profile.scale) {
    out.push("## Scale model: namespace-wide and room-routed delivery (chatwire)");
    out.push("");
    out.push(scaleMethod(profile.scale));
    out.push("");
    out.push(scaleSection(results.chatwire?.scale));
    out.push("");
  }
  out.push(WHAT_CHANGED_HEADING);
  out.push("");
  out.push(whatChanged?.trim() || WHAT_CHANGED_PLACEHOLDER);
  out.push("");
  return out.join("\n");
}

/** The hand-written body of "What changed what" in an earlier report, if any. */
export function keptWhatChanged(previous) {
  const start = previous?.indexOf(WHAT_CHANGED_HEADING) ?? -1;
  if (start < 0) return undefined;
  const body = previous.slice(start + WHAT_CHANGED_HEADING.length).split(/\n## /)[0].trim();
  return body && body !== WHAT_CHANGED_PLACEHOLDER ? body : undefined;
}
