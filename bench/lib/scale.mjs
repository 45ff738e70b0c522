// The scale model of issue 18: N = 1, 2, 4 and 8 chatwire instances (one
// worker thread each) on one Redis, then on a 3-master Redis Cluster, with
// many small rooms whose members are spread over the instances (loadgen
// `rooms`). Each configuration runs twice, namespace-wide (ROUTED_ROOMS off)
// and room-routed (on), so the two designs are compared in one run. Read
// around the sending phase only (the loadgen prints markers): per instance,
// the bytes its subscriber read from Redis and its CPU time per delivered
// message; per Redis master, the SPUBLISH calls it served.

import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import path from "node:path";
import { startRedis, startRedisCluster, startServer, runLoadgen } from "./processes.mjs";
import { scaleSection } from "./scale-report.mjs";

const CLOCK_TICKS = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;

/** CPU seconds (user + system) the process has used so far. */
function cpuSeconds(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

/** Bytes read from Redis pub/sub by this instance, by kind, from /metrics. */
async function receivedBytes(instance) {
  const text = await (await fetch(`${instance.url}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
  const bytes = {};
  for (const line of text.split("\n")) {
    const match = line.match(/^chatwire_pubsub_received_bytes_total\{kind="([^"]+)"\} (\S+)$/);
    if (match) bytes[match[1]] = Number(match[2]);
  }
  return bytes;
}

/** The SPUBLISH calls a Redis node served since its last CONFIG RESETSTAT. */
function publishes(cli) {
  const match = cli("INFO", "commandstats").match(/cmdstat_spublish:calls=(\d+)/);
  return match ? Number(match[1]) : 0;
}

/** Bytes each of `instances` read from Redis pub/sub since it started, by kind. */
export function readPubsubBytes(instances) {
  return Promise.all(instances.map(async (i) => ({ receivedBytes: await receivedBytes(i) })));
}

async function snapshot(instances) {
  return Promise.all(instances.map(async (i) => ({ cpu: cpuSeconds(i.pid), bytes: await receivedBytes(i) })));
}

const minus = (after, before) =>
  Object.fromEntries(Object.entries(after).map(([kind, value]) => [kind, value - (before[kind] ?? 0)]));

/** One configuration: `count` instances on `redis`, routed or not. */
async function configuration({ root, loadgen, resultsDir, redis, count, routed, load }) {
  redis.flushAll();
  for (const master of redis.masters) master.cli("CONFIG", "RESETSTAT");
  const env = { WORKER_THREADS: "1", ROUTED_ROOMS: routed ? "true" : "false" };
  const instances = [];
  try {
    for (let i = 0; i < count; i += 1) instances.push(await startServer("chatwire", root, redis.url, { sharing: count, env }));
    const file = path.join(resultsDir, `scale-${redis.kind}-${count}-${routed ? "routed" : "namespace"}.json`);
    rmSync(file, { force: true });
    const marks = {};
    const onLine = (line) => {
      if (line.includes("rooms: sending")) marks.before = snapshot(instances);
      if (line.includes("rooms: delivered")) marks.after = snapshot(instances);
    };
    await runLoadgen(loadgen, [
      "rooms", ...instances.flatMap((i) => ["--url", i.url]), "--rooms", String(load.rooms),
      "--room-size", String(load.roomSize), "--rate", String(load.rate), "--secs", String(load.secs), "--json", file,
    ], { timeoutMs: (load.secs + 180) * 1000, onLine });
    for (const instance of instances) instance.assertAlive();
    const [before, after] = await Promise.all([marks.before, marks.after]);
    if (!before || !after) throw new Error("the load generator printed no sending markers");
    const result = JSON.parse(readFileSync(file, "utf8"));
    const perInstance = instances.map((_, i) => ({
      cpuSeconds: after[i].cpu - before[i].cpu,
      receivedBytes: minus(after[i].bytes, before[i].bytes),
    }));
    const cpu = perInstance.reduce((sum, i) => sum + i.cpuSeconds, 0);
    return {
      redis: redis.kind, instances: count, routed, ...result,
      cpuMicrosPerDelivery: result.delivered > 0 ? (cpu * 1e6) / result.delivered : null,
      perInstance,
      publishesPerMaster: redis.masters.map((m) => publishes(m.cli)),
    };
  } finally {
    await Promise.all(instances.map((i) => i.stop()));
  }
}

/** Every configuration; a failed one is recorded in `failures` and skipped. */
export async function runScale({ root, loadgen, resultsDir, load, counts, failures, signal }) {
  const results = [];
  for (const kind of ["redis", "cluster"]) {
    const redis = kind === "redis" ? await startRedis() : await startRedisCluster(3);
    if (kind === "redis") {
      // One node: its own statistics are the only master's.
      const port = new URL(redis.url).port;
      const cli = (...args) => execFileSync("redis-cli", ["-h", "127.0.0.1", "-p", port, ...args], { encoding: "utf8" }).trim();
      redis.masters = [{ port, cli }];
    }
    redis.kind = kind;
    try {
      for (const count of counts) {
        for (const routed of [false, true]) {
          signal.throwIfAborted();
          console.log(`\n== scale: ${count} instance(s) on ${kind}, ${routed ? "room-routed" : "namespace-wide"}`);
          try {
            results.push(await configuration({ root, loadgen, resultsDir, redis, count, routed, load }));
          } catch (err) {
            signal.throwIfAborted();
            console.error(`   FAILED: ${err.message}`);
            failures.push({ kind: "chatwire", scenario: `scale ${kind} ${count} ${routed}`, message: err.message });
          }
        }
      }
    } finally {
      await redis.stop();
    }
  }
  // The servers' side is only here (the loadgen's files hold the clients').
  writeFileSync(path.join(resultsDir, "scale.json"), `${JSON.stringify(results, null, 2)}\n`);
  console.log(`\n${scaleSection(results)}`);
  return results;
}
