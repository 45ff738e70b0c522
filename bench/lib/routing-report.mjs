// The `routing` scenario's part of docs/BENCHMARKS.md: chatwire's fan-out
// and cross-instance latency namespace-wide (ROUTED_ROOMS=false) against
// room-routed (true), run back to back in one run (issue 18: routing must
// be no worse on either).

import { count, fixed, isNumber, ms, ratio } from "./format.mjs";
import { saturated, saturationThroughput } from "./report.mjs";

/**
 * How much worse the routed design may measure before the check fails: two
 * runs of one build on this machine differ by about this much.
 */
export const NOISE = 0.1;

const sum = (values) => values.reduce((a, b) => a + b, 0);
/** Bytes the instances read from room channels during a scenario. */
const roomBytes = (result) =>
  result?.servers ? sum(result.servers.map((s) => s.receivedBytes?.room ?? 0)) : undefined;

/** The section's method. */
export function routingMethod() {
  return [
    "The fan-out, both latency and the login storm scenarios above, run again for chatwire alone with `ROUTED_ROOMS=false`",
    "(every broadcast on one pub/sub channel per namespace) and `ROUTED_ROOMS=true` (a room's broadcasts on",
    "the room's own sharded channel), the two designs of each scenario back to back on fresh instances.",
    "Each pair runs several times (fan-out and the login storm three, each latency pair five), alternating which",
    "design goes first, and for each design the run with the median figure (saturation, p99, login rate) stands;",
    "the rows \"of each run\" give every run's figure, in the order they ran (the login p99 is that of the run standing by login rate).",
    `The routed design passes when it is no worse than the namespace-wide one beyond ${fixed(NOISE * 100, 0)} % (run-to-run`,
    "noise on this machine): saturation throughput and login rate at least 90 %, p99 at most 110 % (or",
    "within 1 ms). A routed login also subscribes its user's channel before it is answered.",
    "The last row shows the routed instances really read their rooms from room channels.",
  ].join("\n");
}

/** Whether `routed` is no worse than `namespace` (higher or lower better). */
function noWorse(routed, namespace, lowerIsBetter) {
  if (!isNumber(routed) || !isNumber(namespace)) return undefined;
  return lowerIsBetter ? routed <= namespace * (1 + NOISE) || routed - namespace <= 1 : routed >= namespace * (1 - NOISE);
}

/** A row of every run's figure, when the pair ran more than once. */
function eachRun(label, namespace, routed, format) {
  const runs = (result) => (result?.runFigures ?? []).map(format).join(" / ") || "—";
  return namespace?.runFigures?.length > 1 || routed?.runFigures?.length > 1
    ? [[label, runs(namespace), runs(routed), "", ""]]
    : [];
}

const verdict = (pass) => (pass === undefined ? "n/a" : pass ? "**PASS**" : "**FAIL**");

/** The comparison table, and the rows' verdicts (for the summary). */
export function routingSection(routing, fanoutSettings) {
  if (!routing) return "_Not run._";
  const { namespace: n = {}, routed: r = {} } = routing;
  const throughput = (fanout) => {
    const best = saturationThroughput(fanout);
    return isNumber(best) && !saturated(fanout, fanoutSettings) ? `≥ ${count(best)}` : count(best);
  };
  const [satN, satR] = [saturationThroughput(n.fanout), saturationThroughput(r.fanout)];
  const rows = [
    ["fan-out saturation throughput (deliveries/s)", throughput(n.fanout), throughput(r.fanout), ratio(satR, satN, false), verdict(noWorse(satR, satN, false))],
    ...eachRun("saturation of each run (deliveries/s)", n.fanout, r.fanout, count),
  ];
  for (const [key, label] of [["latencyLow", "without background load"], ["latencyHigh", "with background load"]]) {
    const [a, b] = [n[key], r[key]];
    rows.push([`cross-instance p50 (ms), ${label}`, ms(a?.p50_ms), ms(b?.p50_ms), ratio(b?.p50_ms, a?.p50_ms, true), ""]);
    rows.push([`**cross-instance p99 (ms), ${label}**`, ms(a?.p99_ms), ms(b?.p99_ms), ratio(b?.p99_ms, a?.p99_ms, true), verdict(noWorse(b?.p99_ms, a?.p99_ms, true))]);
    rows.push(...eachRun(`p99 of each run (ms), ${label}`, a, b, ms));
    rows.push([`errors, ${label}`, count(a?.errors), count(b?.errors), "", ""]);
  }
  const [a, b] = [n.storm, r.storm];
  rows.push(["logins per second, login storm", count(a?.rate), count(b?.rate), ratio(b?.rate, a?.rate, false), verdict(noWorse(b?.rate, a?.rate, false))]);
  rows.push(...eachRun("logins per second of each run, login storm", a, b, count));
  rows.push(["login p99 (ms), login storm", ms(a?.p99_ms), ms(b?.p99_ms), ratio(b?.p99_ms, a?.p99_ms, true), verdict(noWorse(b?.p99_ms, a?.p99_ms, true))]);
  rows.push(["bytes read from room channels, fan-out (both instances)", count(roomBytes(n.fanout)), count(roomBytes(r.fanout)), "", ""]);
  return [
    "| | namespace-wide | room-routed | routed vs namespace-wide | no worse |",
    "|---|---:|---:|---:|---|",
    ...rows.map((cells) => `| ${cells.join(" | ")} |`),
  ].join("\n");
}
