// The processes a benchmark run starts: redis-server, the two kinds of chat
// server, and the load generator. Every child is tracked so that `stopAll`
// can end them, whatever went wrong.

import { spawn, execFileSync } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { createInterface } from "node:readline";
import net from "node:net";
import path from "node:path";
import { randomBytes } from "node:crypto";

const running = new Set();

/** Spawns a child and tracks it until it exits. */
function spawnTracked(command, args, options) {
  const child = spawn(command, args, options);
  const exited = once(child, "exit").then(([code, signal]) => ({ code, signal }));
  const entry = { child, exited };
  running.add(entry);
  exited.then(() => running.delete(entry));
  child.on("error", () => running.delete(entry));
  return entry;
}

function isRunning(child) {
  return child.exitCode === null && child.signalCode === null;
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the child is gone. */
async function stopChild({ child, exited }, graceMs = 3000) {
  if (!isRunning(child)) return;
  child.kill("SIGTERM");
  const killer = setTimeout(() => isRunning(child) && child.kill("SIGKILL"), graceMs);
  await exited;
  clearTimeout(killer);
}

/** Ends every child this run started. */
export async function stopAll() {
  await Promise.all([...running].map((entry) => stopChild(entry)));
}

/** A loopback port nothing listens on right now. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** A redis-server on a free loopback port, without persistence. */
export async function startRedis() {
  const port = await freePort();
  const dir = mkdtempSync(path.join(tmpdir(), "chatwire-bench-redis-"));
  const entry = spawnTracked(
    "redis-server",
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir],
    { stdio: "ignore" },
  );
  const cli = (...args) => execFileSync("redis-cli", ["-h", "127.0.0.1", "-p", String(port), ...args], { encoding: "utf8" }).trim();
  for (let tries = 0; ; tries += 1) {
    try {
      if (cli("PING") === "PONG") break;
    } catch {
      // not up yet
    }
    if (tries > 100 || !isRunning(entry.child)) throw new Error(`redis-server did not start on port ${port}`);
    await sleep(50);
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    flushAll: () => cli("FLUSHALL"),
    async stop() {
      await stopChild(entry);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A free loopback port whose cluster bus port (port + 10000) is free too. */
async function freeClusterPort() {
  for (;;) {
    const port = await freePort();
    if (port > 55535) continue;
    const bus = await new Promise((resolve) => {
      const server = net.createServer();
      server.once("error", () => resolve(false));
      server.listen(port + 10000, "127.0.0.1", () => server.close(() => resolve(true)));
    });
    if (bus) return port;
  }
}

/**
 * A Redis Cluster of `masters` masters (no replicas) on free loopback
 * ports, without persistence: { url, masters: [{ port, cli }], flushAll, stop }.
 */
export async function startRedisCluster(masters = 3) {
  const nodes = [];
  for (let i = 0; i < masters; i += 1) {
    const port = await freeClusterPort();
    const dir = mkdtempSync(path.join(tmpdir(), "chatwire-bench-cluster-"));
    const entry = spawnTracked("redis-server", [
      "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir,
      "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000",
    ], { stdio: "ignore" });
    const cli = (...args) => execFileSync("redis-cli", ["-h", "127.0.0.1", "-p", String(port), ...args], { encoding: "utf8" }).trim();
    nodes.push({ port, dir, entry, cli });
  }
  for (const node of nodes) {
    for (let tries = 0; ; tries += 1) {
      try {
        if (node.cli("PING") === "PONG") break;
      } catch {
        // not up yet
      }
      if (tries > 100 || !isRunning(node.entry.child)) throw new Error(`redis-server did not start on port ${node.port}`);
      await sleep(50);
    }
  }
  execFileSync("redis-cli", ["--cluster", "create", ...nodes.map((n) => `127.0.0.1:${n.port}`),
    "--cluster-replicas", "0", "--cluster-yes"], { encoding: "utf8" });
  for (let tries = 0; ; tries += 1) {
    if (nodes.every((n) => n.cli("CLUSTER", "INFO").includes("cluster_state:ok"))) break;
    if (tries > 200) throw new Error("the Redis Cluster did not become ready");
    await sleep(50);
  }
  return {
    url: `redis-cluster://${nodes.map((n) => `127.0.0.1:${n.port}`).join(",")}`,
    masters: nodes.map(({ port, cli }) => ({ port, cli })),
    flushAll: () => nodes.forEach((n) => n.cli("FLUSHALL")),
    async stop() {
      await Promise.all(nodes.map((n) => stopChild(n.entry)));
      for (const n of nodes) rmSync(n.dir, { recursive: true, force: true });
    },
  };
}

/** How to run each kind of server, given the repository root and the Redis URL. */
function serverCommand(kind, root, redisUrl, sharing, extraEnv = {}) {
  const env = { PATH: process.env.PATH, HOST: "127.0.0.1", PORT: "0", REDIS_URL: redisUrl };
  if (kind === "chatwire") {
    // Each instance gets its share of the cores, as a deployment of several
    // instances on one machine would (a Node instance runs one event loop).
    const workers = Math.max(1, Math.floor(availableParallelism() / sharing));
    return {
      command: path.join(root, "target", "release", "chatwire"),
      args: [],
      env: {
        ...env,
        SECRET: randomBytes(16).toString("hex"),
        // The benchmark measures the server, not its flood protection; and
        // its ten thousand clients all connect from 127.0.0.1.
        EVENT_RATE: "1000000",
        EVENT_BURST: "1000000",
        DELIVERY_BYTES_PER_SEC: "1000000000000",
        DELIVERY_BURST_BYTES: "1000000000000",
        MAX_CONNECTIONS_PER_ADDRESS: "0",
        WORKER_THREADS: String(workers),
        // The address line is logged at info by chatwire::app; the rest stays quiet.
        RUST_LOG: "warn,chatwire::app=info",
        LOG_FORMAT: "text",
        NO_COLOR: "1",
        ...extraEnv,
      },
    };
  }
  return { command: process.execPath, args: [path.join(root, "bench", "node-reference", "server.js")], env };
}

/**
 * Starts one server of `kind` ("chatwire" or "node") sharing `redisUrl`, one
 * of `sharing` instances on this machine.
 * Resolves once it prints its address: { kind, url, pid, stop(), assertAlive() }.
 */
export async function startServer(kind, root, redisUrl, { sharing = 1, timeoutMs = 20000, env: extraEnv } = {}) {
  const { command, args, env } = serverCommand(kind, root, redisUrl, sharing, extraEnv);
  const started = Date.now();
  const entry = spawnTracked(command, args, { cwd: root, env, stdio: ["ignore", "pipe", "pipe"] });
  const logs = [];
  const address = new Promise((resolve) => {
    for (const stream of [entry.child.stdout, entry.child.stderr]) {
      createInterface({ input: stream }).on("line", (raw) => {
        const line = raw.replace(/\x1b\[[0-9;]*m/g, "");
        logs.push(line);
        if (logs.length > 2000) logs.shift();
        const match = line.match(/listening on https?:\/\/[^\s:]+:(\d+)/);
        if (match) resolve(Number(match[1]));
      });
    }
  });
  const describe = () => `${kind} (pid ${entry.child.pid}); last output:\n${logs.slice(-20).join("\n")}`;
  const early = entry.exited.then(({ code, signal }) => {
    throw new Error(`${kind} exited early (${code ?? signal}): ${describe()}`);
  });
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${kind} did not print its address in ${timeoutMs} ms: ${describe()}`)), timeoutMs);
  });
  try {
    const port = await Promise.race([address, early, timeout]);
    const url = `http://127.0.0.1:${port}`;
    // The Node server connects its adapter before it listens; chatwire
    // listens at once and reports ready once its presence is in Redis.
    if (kind === "chatwire") await Promise.race([waitReady(url, started + timeoutMs), early, timeout]);
    early.catch(() => {}); // an exit after startup is reported by assertAlive
    return {
      kind,
      url,
      pid: entry.child.pid,
      stop: () => stopChild(entry),
      /** Its last 2,000 lines of output. */
      recentLogs: () => [...logs],
      assertAlive() {
        if (!isRunning(entry.child)) throw new Error(`${kind} died during the scenario: ${describe()}`);
      },
    };
  } catch (err) {
    early.catch(() => {});
    await stopChild(entry);
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

/** Resolves once `url`/readyz answers 200; gives up at `deadline` (ms since the epoch). */
async function waitReady(url, deadline) {
  while (Date.now() < deadline) {
    try {
      const response = await fetch(`${url}/readyz`);
      await response.body?.cancel();
      if (response.ok) return;
    } catch {
      // not answering yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${url}/readyz did not answer 200 in time`);
}

/**
 * Runs the load generator with `args`, echoing its output with a prefix.
 * Rejects if it fails or runs longer than `timeoutMs`.
 */
export async function runLoadgen(binary, args, { timeoutMs, onLine }) {
  const entry = spawnTracked(binary, args, { stdio: ["ignore", "pipe", "pipe"] });
  const tail = [];
  for (const stream of [entry.child.stdout, entry.child.stderr]) {
    createInterface({ input: stream }).on("line", (line) => {
      console.log(`    loadgen | ${line}`);
      onLine?.(line);
      tail.push(line);
      if (tail.length > 30) tail.shift();
    });
  }
  const timer = setTimeout(() => {
    console.log(`    loadgen ran over ${Math.round(timeoutMs / 1000)} s; stopping it`);
    stopChild(entry);
  }, timeoutMs);
  const { code, signal } = await entry.exited;
  clearTimeout(timer);
  if (code !== 0) {
    throw new Error(`loadgen ${args[0]} failed (${code ?? signal}):\n${tail.join("\n")}`);
  }
}
