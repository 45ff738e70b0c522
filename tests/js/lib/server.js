// Starts the real chatwire binary on a free loopback port, and stops it.

import { spawn } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import path from "node:path";

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
/** The token secret of every test deployment (instances of one must share it). */
export const TEST_SECRET = "chatwire-test-secret-0123456789abcdef";

const binary = process.env.CHATWIRE_BIN ?? path.join(repoRoot, "target", "debug", "chatwire");

/**
 * Runs chatwire with `env` added to a loopback, port-0 configuration.
 * Resolves once it logs its address: { url, port, process, logs, stop() }.
 */
export async function startServer(env = {}, { timeoutMs = 15000 } = {}) {
  const child = spawn(binary, [], {
    env: {
      PATH: process.env.PATH,
      HOST: "127.0.0.1",
      PORT: "0",
      PUBLIC_DIR: path.join(repoRoot, "public"),
      RUST_LOG: process.env.CHATWIRE_LOG ?? "info",
      SECRET: TEST_SECRET,
      // Every test client (and nginx) connects from 127.0.0.1, some tests
      // open over a hundred sockets: no per-address cap unless a test sets one.
      MAX_CONNECTIONS_PER_ADDRESS: "0",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const logs = [];
  let resolveAddress;
  const address = new Promise((resolve) => { resolveAddress = resolve; });
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream }).on("line", (line) => {
      logs.push(line);
      if (process.env.CHATWIRE_LOG) console.error(`[chatwire] ${line}`);
      const match = line.match(/listening on https?:\/\/(\S+)/);
      if (match) resolveAddress(match[1]);
    });
  }
  const exited = once(child, "exit").then(([code, signal]) => ({ code, signal }));
  let startTimer;
  const timer = new Promise((_, reject) => {
    startTimer = setTimeout(() => reject(new Error(`chatwire did not start in ${timeoutMs} ms:\n${logs.join("\n")}`)), timeoutMs);
  });
  const early = exited.then(({ code }) => { throw new Error(`chatwire exited early (${code}):\n${logs.join("\n")}`); });
  const hostPort = await Promise.race([address, timer, early]).finally(() => clearTimeout(startTimer));
  const port = Number(hostPort.split(":").pop());
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    process: child,
    logs,
    exited,
    /** SIGTERM, then SIGKILL if it has not exited within `graceMs`. */
    async stop(graceMs = 5000) {
      if (child.exitCode !== null || child.signalCode !== null) return exited;
      child.kill("SIGTERM");
      const killer = setTimeout(() => child.kill("SIGKILL"), graceMs);
      const result = await exited;
      clearTimeout(killer);
      return result;
    },
  };
}

/** Resolves once `url/readyz` answers 200 (in cluster mode: its presence is back in Redis). */
export async function waitReady(url, timeoutMs = 15000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const status = await fetch(`${url}/readyz`).then((r) => r.status, () => 0);
    if (status === 200) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${url} not ready after ${timeoutMs} ms`);
}

/**
 * Two ready instances named `<name>-a` / `<name>-b` sharing the Redis at
 * `redisUrl`, with `env` added: [a, b].
 */
export async function startPair(name, redisUrl, env = {}) {
  const pair = await Promise.all(
    ["a", "b"].map((side) => startServer({ ...env, REDIS_URL: redisUrl, INSTANCE_NAME: `${name}-${side}` })),
  );
  await Promise.all(pair.map((server) => waitReady(server.url)));
  return pair;
}
