#!/usr/bin/env node
// Runs the benchmark scenarios against chatwire and the Node.js socket.io
// baseline, two instances each sharing one Redis, and writes
// docs/BENCHMARKS.md and docs/benchmarks.svg. Raw results go to
// bench/results/<kind>-<scenario>.json. Use scripts/bench, which builds
// everything first; see bench/README.md.
//
//   node bench/run.mjs [--quick] [--kinds chatwire,node] [--scenarios idle,loginstorm] [--background-rate R]
//   node bench/run.mjs --report-only   rewrite the docs from bench/results/run.json

import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { describeEnvironment } from "./lib/environment.mjs";
import { latencyPlot } from "./lib/plot.mjs";
import { startRedis, startServer, runLoadgen, stopAll } from "./lib/processes.mjs";
import { readPubsubBytes, runScale } from "./lib/scale.mjs";
import { keptWhatChanged, renderReport, saturationThroughput } from "./lib/report.mjs";
import { routingSection } from "./lib/routing-report.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const resultsDir = path.join(root, "bench", "results");
/** Everything the report is made from, so that it can be rewritten without rerunning. */
const runFile = path.join(resultsDir, "run.json");
const loadgen = process.env.LOADGEN ?? path.join(root, "target", "release", "examples", "loadgen");

/**
 * Rates from `from` to `to`, each √2 times the last, rounded. Doubling steps
 * placed a saturation point only within a factor of 2, too coarse to judge a
 * ratio between two servers by.
 */
const halfOctaves = (from, to) =>
  Array.from({ length: 2 * Math.log2(to / from) + 1 }, (_, i) => Math.round(from * Math.SQRT2 ** i));

/** The loads of a run. The full profile is what docs/BENCHMARKS.md is made from. */
const PROFILES = {
  full: {
    name: "full",
    // Every login sends `user joined` to everyone online, so 10,000 logins
    // are 50 million deliveries. With 200 handshakes in flight both servers
    // fell behind, timed handshakes out, and the timed-out clients' `user
    // left` made it worse; 20 in flight keeps the queue in the load generator.
    // (The storm scenario measures logins all at once.) Node logs in fewer
    // than 10 clients a second near 10,000 online: after the budget, memory
    // is measured with the clients that got in.
    idle: { clients: 10_000, concurrency: 20, budgetSecs: 1_200 },
    // From 10 messages a second (10,000 deliveries): on a small machine Node
    // falls behind within the first few steps, and the knee is what matters.
    fanout: { clients: 1_000, rates: halfOctaves(10, 10_240), stepSecs: 5, senders: 4, stopP99Ms: 1_000 },
    latency: { secs: 20, rate: 50, backgroundClients: 1_000, defaultBackgroundRate: 20 },
    storm: { clients: 2_000 },
    // Everyone reconnects at once: idle connections first, then all log in
    // together. Node sends each login's `user joined` to everyone connected
    // (10,000 logins are 100 million deliveries), so its logins get 60 s
    // each and it gets 180 s to go quiet; what it reached is reported.
    loginstorm: { clients: 10_000, concurrency: 200, loginTimeoutSecs: 60, quietLimitSecs: 180 },
    // Issue 18's scale model: chatwire alone, namespace-wide against room-routed.
    scale: { rooms: 400, roomSize: 2, rate: 400, secs: 10, counts: [1, 2, 4, 8] },
  },
  quick: {
    name: "quick",
    idle: { clients: 500, concurrency: 20, budgetSecs: 60 },
    fanout: { clients: 200, rates: halfOctaves(50, 400), stepSecs: 3, senders: 2, stopP99Ms: 1_000 },
    latency: { secs: 4, rate: 20, backgroundClients: 200, defaultBackgroundRate: 50 },
    storm: { clients: 200 },
    loginstorm: { clients: 500, concurrency: 200, loginTimeoutSecs: 20, quietLimitSecs: 60 },
    scale: { rooms: 40, roomSize: 2, rate: 100, secs: 3, counts: [1, 2] },
  },
};

/** Every scenario, in the order a run takes them (see runAll). */
const SCENARIOS = ["idle", "fanout", "latency-low", "latency-high", "storm", "loginstorm", "routing", "scale"];

/**
 * The two designs of the `routing` scenario (issue 18). Each reads how many
 * bytes its instances took from room channels, which shows the routed
 * design really routed.
 */
const ROUTING_DESIGNS = [
  { name: "namespace", env: { ROUTED_ROOMS: "false" }, inspect: readPubsubBytes },
  { name: "routed", env: { ROUTED_ROOMS: "true" }, inspect: readPubsubBytes },
];

/**
 * How often each pair of the `routing` scenario runs, and the figure that
 * picks the run standing for a design: the median one. One run of a pair
 * decides nothing on this machine: a busy p99 of 1,000 samples moves by
 * about a millisecond between runs of one build, and the fan-out knee and
 * the login rate by a step or 10 % either way.
 */
const ROUTING_PAIRS = {
  fanout: { repeats: 3, figure: (r) => saturationThroughput(r), lowerIsBetter: false },
  latencyLow: { repeats: 5, figure: (r) => r.p99_ms, lowerIsBetter: true },
  latencyHigh: { repeats: 5, figure: (r) => r.p99_ms, lowerIsBetter: true },
  storm: { repeats: 3, figure: (r) => r.rate, lowerIsBetter: false },
};

/**
 * The median run by `figure` (a failed run counts as the worst), with every
 * run's figure beside it in `runFigures`, in the order they ran.
 */
function medianRun(runs, { figure, lowerIsBetter }) {
  const worst = lowerIsBetter ? Infinity : -Infinity;
  const value = (r) => (r === undefined ? worst : figure(r) ?? worst);
  const sorted = [...runs].sort((a, b) => (lowerIsBetter ? value(a) - value(b) : value(b) - value(a)));
  const median = sorted[Math.floor((sorted.length - 1) / 2)];
  return median && { ...median, runFigures: runs.map((r) => (r === undefined ? null : figure(r) ?? null)) };
}

/** Fan-out steps offer `offered_rate` messages a second, each delivered to every other member. */
const offeredDeliveries = (step) =>
  step.sent > 0 && step.expected > 0 ? step.offered_rate * (step.expected / step.sent) : undefined;

function parseOptions() {
  const { values } = parseArgs({
    options: {
      quick: { type: "boolean", default: false },
      kinds: { type: "string", default: "chatwire,node" },
      scenarios: { type: "string", default: SCENARIOS.join(",") },
      "background-rate": { type: "string" },
      "report-only": { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log(
      "usage: scripts/bench [--quick] [--kinds chatwire,node] [--scenarios " + SCENARIOS.join(",") + "]"
        + " [--background-rate MSGS_PER_SEC] [--report-only]",
    );
    process.exit(0);
  }
  const kinds = values.kinds.split(",").map((k) => k.trim()).filter(Boolean);
  for (const kind of kinds) if (!["chatwire", "node"].includes(kind)) throw new Error(`unknown kind ${kind}`);
  const scenarios = values.scenarios.split(",").map((s) => s.trim()).filter(Boolean);
  for (const name of scenarios) if (!SCENARIOS.includes(name)) throw new Error(`unknown scenario ${name} (known: ${SCENARIOS.join(", ")})`);
  const backgroundRate = values["background-rate"] === undefined ? undefined : Number(values["background-rate"]);
  return {
    profile: values.quick ? PROFILES.quick : PROFILES.full,
    kinds,
    scenarios,
    backgroundRate,
    reportOnly: values["report-only"],
  };
}

/**
 * Runs one scenario for one kind on two fresh instances over an emptied
 * Redis: `args(instances)` builds the loadgen arguments. Returns the parsed
 * JSON, or undefined (recorded in `failures`) if anything went wrong.
 * `design` (chatwire only) names a variant: its `env` is added to the
 * instances' settings, its `name` to the result file's, and its `inspect`
 * reads the instances before they stop, into the result's `servers`.
 */
async function scenario(ctx, kind, name, timeoutSecs, args, design = {}) {
  const label = design.name ? `${kind}-${design.name}` : kind;
  const file = path.join(resultsDir, `${label}-${name}.json`);
  console.log(`\n== ${label}: ${name}`);
  const started = Date.now();
  let instances = [];
  try {
    ctx.signal.throwIfAborted();
    rmSync(file, { force: true }); // never report an earlier run's result
    ctx.redis.flushAll();
    const start = () => startServer(kind, root, ctx.redis.url, { sharing: 2, env: design.env });
    instances = [await start(), await start()];
    console.log(`   instances ${instances.map((i) => `${i.url} (pid ${i.pid})`).join(", ")}`);
    await runLoadgen(loadgen, [...args(instances), "--json", file], { timeoutMs: timeoutSecs * 1000 });
    for (const instance of instances) instance.assertAlive();
    const result = JSON.parse(readFileSync(file, "utf8"));
    if (design.inspect) {
      result.servers = await design.inspect(instances);
      writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
    }
    console.log(`   done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    return result;
  } catch (err) {
    ctx.signal.throwIfAborted();
    console.error(`   FAILED: ${err.message}`);
    ctx.failures.push({ kind, scenario: name, message: err.message });
    return undefined;
  } finally {
    await Promise.all(instances.map((i) => i.stop()));
  }
}

/**
 * Half the highest fan-out rate at which Node kept p99 under 50 ms and lost
 * nothing: busy, but with room for the measured traffic and the background
 * clients' own setup (at the highest calm step itself Node is at its knee).
 */
function busyButNotSaturated(fanout) {
  const calm = (fanout?.steps ?? []).filter((s) => s.p99_ms <= 50 && s.lost === 0);
  return calm.length ? Math.max(...calm.map((s) => s.offered_rate)) / 2 : undefined;
}

async function runAll(ctx, { profile, kinds, scenarios, backgroundRate }) {
  const { idle, fanout, latency, storm, loginstorm } = profile;
  const fanoutArgs = ([a, b]) => [
    "fanout", "--url", a.url, "--url", b.url, "--clients", String(fanout.clients),
    "--rates", fanout.rates.join(","), "--step-secs", String(fanout.stepSecs),
    "--senders", String(fanout.senders), "--stop-p99-ms", String(fanout.stopP99Ms),
  ];
  const stormArgs = ([a, b]) => ["storm", "--url", a.url, "--url", b.url, "--clients", String(storm.clients)];
  const results = { chatwire: {}, node: {} };
  const wanted = (name) => scenarios.includes(name);
  // Idle and fan-out first for both kinds: the background load of the
  // latency scenario is chosen from Node's fan-out results.
  for (const kind of kinds) {
    // The login budget, up to 300 s waiting for the server to go quiet, and closing.
    if (wanted("idle")) results[kind].idle = await scenario(ctx, kind, "idle", idle.budgetSecs + 420, ([a]) =>
      ["idle", "--url", a.url, "--clients", String(idle.clients), "--concurrency", String(idle.concurrency),
        "--login-budget-secs", String(idle.budgetSecs), "--pid", String(a.pid)]);
    if (wanted("fanout")) results[kind].fanout = await scenario(ctx, kind, "fanout", fanout.rates.length * fanout.stepSecs + 300, fanoutArgs);
  }
  const chosen = busyButNotSaturated(results.node.fanout);
  const background = backgroundRate ?? chosen ?? latency.defaultBackgroundRate;
  const backgroundNote =
    backgroundRate !== undefined ? "The background rate was given on the command line (`--background-rate`)."
    : chosen !== undefined ? "The background rate is half the highest fan-out rate at which Node kept p99 under 50 ms and lost nothing (busy, not saturated)."
    : results.node.fanout === undefined ? "Node's fan-out did not run, so the background rate is the profile's default."
    : "Node's fan-out results gave no calm step, so the background rate is the profile's default.";
  if (wanted("latency-high")) {
    console.log(`\nbackground load for the latency scenario: ${latency.backgroundClients} clients, ${background} msgs/s`);
  }
  for (const kind of kinds) {
    const latencyArgs = (clients, rate) => ([a, b]) => [
      "latency", "--from", a.url, "--to", b.url, "--secs", String(latency.secs), "--rate", String(latency.rate),
      "--background-clients", String(clients), "--background-rate", String(rate),
    ];
    if (wanted("latency-low")) results[kind].latencyLow = await scenario(ctx, kind, "latency-low", latency.secs + 300, latencyArgs(0, 0));
    if (wanted("latency-high")) results[kind].latencyHigh = await scenario(ctx, kind, "latency-high", latency.secs + 300,
      latencyArgs(latency.backgroundClients, background));
    // chatwire only: fan-out, latency and the login storm again, namespace-wide against
    // room-routed (ROUTED_ROOMS), each pair back to back.
    if (wanted("routing") && kind === "chatwire") {
      // Each pair runs ROUTING_PAIRS' repeats, alternating which design
      // goes first; the median run of each design stands.
      const runs = [
        ["fanout", "fanout", fanout.rates.length * fanout.stepSecs + 300, fanoutArgs],
        ["latencyLow", "latency-low", latency.secs + 300, latencyArgs(0, 0)],
        ["latencyHigh", "latency-high", latency.secs + 300, latencyArgs(latency.backgroundClients, background)],
        // Each login subscribes its user's channel before it is answered.
        ["storm", "storm", 600, stormArgs],
      ];
      results.chatwire.routing = Object.fromEntries(ROUTING_DESIGNS.map((d) => [d.name, {}]));
      for (const [key, name, secs, args] of runs) {
        const measured = Object.fromEntries(ROUTING_DESIGNS.map((d) => [d.name, []]));
        for (let run = 1; run <= ROUTING_PAIRS[key].repeats; run += 1) {
          const order = run % 2 === 1 ? ROUTING_DESIGNS : [...ROUTING_DESIGNS].reverse();
          for (const design of order) {
            const named = { ...design, name: `${design.name}-${run}` };
            measured[design.name].push(await scenario(ctx, kind, name, secs, args, named));
          }
        }
        for (const design of ROUTING_DESIGNS) {
          results.chatwire.routing[design.name][key] = medianRun(measured[design.name], ROUTING_PAIRS[key]);
        }
      }
      console.log(`\n${routingSection(results.chatwire.routing, fanout)}`);
    }
    if (wanted("storm")) results[kind].storm = await scenario(ctx, kind, "storm", 600, stormArgs);
    // Connecting, the logins, two waits for quiet, and closing.
    const loginstormSecs = loginstorm.loginTimeoutSecs + 2 * loginstorm.quietLimitSecs + 300;
    if (wanted("loginstorm")) results[kind].loginstorm = await scenario(ctx, kind, "loginstorm", loginstormSecs, ([a]) => [
      "loginstorm", "--url", a.url, "--clients", String(loginstorm.clients), "--pid", String(a.pid),
      "--concurrency", String(loginstorm.concurrency), "--quiet-limit-secs", String(loginstorm.quietLimitSecs),
      "--handshake-timeout-secs", String(loginstorm.loginTimeoutSecs),
    ]);
  }
  // chatwire only: its two designs side by side, on instances of its own.
  if (wanted("scale") && kinds.includes("chatwire")) {
    results.chatwire.scale = await runScale({
      root, loadgen, resultsDir, load: profile.scale, counts: profile.scale.counts, failures: ctx.failures, signal: ctx.signal,
    });
  }
  return { results, background: { rate: background, note: backgroundNote } };
}

function writeDocs({ environment, command, profile, results, background, failures, minutes }) {
  const docs = path.join(root, "docs");
  const reportPath = path.join(docs, "BENCHMARKS.md");
  const previous = existsSync(reportPath) ? readFileSync(reportPath, "utf8") : undefined;
  writeFileSync(reportPath, renderReport({
    environment, command, profile, results, background, offeredDeliveries, failures, minutes,
    whatChanged: keptWhatChanged(previous),
  }));
  const points = (fanout) => (fanout?.steps ?? []).map((s) => ({ x: offeredDeliveries(s), y: s.p99_ms }));
  writeFileSync(path.join(docs, "benchmarks.svg"), latencyPlot({
    title: `Fan-out: p99 latency against load (${profile.fanout.clients.toLocaleString("en-US")} receivers, 2 instances)`,
    xLabel: "offered deliveries per second (log scale)",
    yLabel: "p99 latency, ms (log scale)",
    series: [
      { name: "chatwire", color: "#d9480f", points: points(results.chatwire.fanout) },
      { name: "Node socket.io", color: "#1c7ed6", points: points(results.node.fanout) },
    ],
    lines: [{ y: 50, label: "50 ms" }, { y: 10, label: "10 ms" }],
  }));
  console.log(`\nwrote ${path.relative(root, reportPath)} and docs/benchmarks.svg`);
}

async function main() {
  const options = parseOptions();
  if (options.reportOnly) {
    const run = JSON.parse(readFileSync(runFile, "utf8"));
    writeDocs({ ...run, profile: PROFILES[run.profile] });
    return 0;
  }
  if (!existsSync(loadgen)) throw new Error(`no load generator at ${loadgen}: run cargo build --release --example loadgen`);
  mkdirSync(resultsDir, { recursive: true });
  const started = Date.now();
  const environment = describeEnvironment(root);
  const ctx = { redis: await startRedis(), failures: [], signal: interrupted.signal };
  try {
    const { results, background } = await runAll(ctx, options);
    const minutes = (Date.now() - started) / 60_000;
    const command = process.env.BENCH_COMMAND ?? ["node bench/run.mjs", ...process.argv.slice(2)].join(" ");
    const run = { environment, command, profile: options.profile.name, results, background, failures: ctx.failures, minutes };
    if (options.scenarios.length === SCENARIOS.length) {
      writeFileSync(runFile, `${JSON.stringify(run, null, 2)}\n`);
      writeDocs({ ...run, profile: options.profile });
    } else {
      // A report of some scenarios would show the others as missing, and
      // run.json must stay the last full run for --report-only.
      console.log(`\n--scenarios ${options.scenarios.join(",")}: results in bench/results/, docs and run.json left as they were`);
    }
    console.log(`finished in ${minutes.toFixed(1)} minutes${ctx.failures.length ? `, ${ctx.failures.length} scenario(s) failed` : ""}`);
    return ctx.failures.length ? 1 : 0;
  } finally {
    await ctx.redis.stop();
  }
}

// The first Ctrl-C (or SIGTERM) stops every child and lets the run unwind
// without starting anything new; a second one exits at once.
const interrupted = new AbortController();
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => {
    if (interrupted.signal.aborted) process.exit(130);
    console.error(`\n${signal}: stopping every process this run started`);
    interrupted.abort(new Error(`interrupted by ${signal}`));
    stopAll();
  });
}

try {
  process.exitCode = await main();
} catch (err) {
  if (interrupted.signal.aborted) {
    console.error("interrupted: no report written");
    process.exitCode = 130;
  } else {
    console.error(err.stack ?? err);
    process.exitCode = 1;
  }
} finally {
  await stopAll();
}
