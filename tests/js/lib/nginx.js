// nginx on loopback, running the shipped deploy/nginx.conf with only the
// upstream addresses and the listen port rewritten.

import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { repoRoot } from "./server.js";
import { freePort, waitForPort } from "./ports.js";

const NGINX = process.env.NGINX_PATH ?? "/usr/sbin/nginx";

/** Starts nginx in front of `upstreamPorts` (in the order of chatwire-1, -2, -3). */
export async function startNginx(upstreamPorts) {
  const template = await readFile(path.join(repoRoot, "deploy", "nginx.conf"), "utf8");
  const port = await freePort();
  let config = template.replace(/listen 80;/, `listen 127.0.0.1:${port};`);
  upstreamPorts.forEach((upstream, i) => {
    config = config.replace(`server chatwire-${i + 1}:3000`, `server 127.0.0.1:${upstream}`);
  });
  if (/chatwire-\d:3000/.test(config)) throw new Error("deploy/nginx.conf has more upstreams than started instances");
  return { ...(await runNginx(config, port)), url: `http://127.0.0.1:${port}` };
}

/** Runs nginx with the configuration text `config`, which listens on `port`. */
export async function runNginx(config, port) {
  const dir = await mkdtemp(path.join(tmpdir(), "chatwire-nginx-"));
  const file = path.join(dir, "nginx.conf");
  await writeFile(file, config);
  const child = spawn(NGINX, ["-p", dir, "-c", file, "-g", `daemon off; pid ${dir}/nginx.pid; error_log ${dir}/error.log;`], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (chunk) => { stderr += chunk; });
  const exited = once(child, "exit");
  try {
    await waitForPort(port);
  } catch (err) {
    child.kill("SIGKILL");
    throw new Error(`nginx did not start: ${stderr}\n${err.message}`);
  }
  return {
    port,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGQUIT");
        const timer = setTimeout(() => child.kill("SIGKILL"), 3000);
        await exited;
        clearTimeout(timer);
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}
