// What a result depends on besides the code: the machine and the versions of
// everything involved, read once at the start of a run.

import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";

function output(command, args, cwd) {
  try {
    return execFileSync(command, args, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
  } catch {
    return "unknown";
  }
}

function cpuModel() {
  try {
    const line = readFileSync("/proc/cpuinfo", "utf8").split("\n").find((l) => l.startsWith("model name"));
    if (line) return line.split(":").slice(1).join(":").trim();
  } catch {
    // not Linux: fall through
  }
  return os.cpus()[0]?.model ?? "unknown";
}

function lockedVersion(root, name) {
  const lock = JSON.parse(readFileSync(path.join(root, "bench", "node-reference", "package-lock.json"), "utf8"));
  return lock.packages?.[`node_modules/${name}`]?.version ?? "unknown";
}

function gitCommit(root) {
  const commit = output("git", ["rev-parse", "--short=12", "HEAD"], root);
  const dirty = output("git", ["status", "--porcelain", "--untracked-files=no"], root);
  return dirty && dirty !== "unknown" ? `${commit} (with uncommitted changes)` : commit;
}

/** The machine and versions, as shown in the report. */
export function describeEnvironment(root) {
  const redis = output("redis-server", ["--version"]).match(/v=(\S+)/)?.[1] ?? "unknown";
  return {
    cpu: cpuModel(),
    cores: os.availableParallelism?.() ?? os.cpus().length,
    ramGiB: os.totalmem() / 2 ** 30,
    os: `${os.type()} ${os.release()}`,
    // Anything else busy on the machine skews every number: show it.
    loadAverage: os.loadavg()[0],
    rustc: output("rustc", ["--version"], root),
    node: process.version,
    socketIo: lockedVersion(root, "socket.io"),
    redisAdapter: lockedVersion(root, "@socket.io/redis-adapter"),
    redisClient: lockedVersion(root, "redis"),
    redisServer: redis,
    commit: gitCommit(root),
  };
}
