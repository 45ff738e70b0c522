// The event contract against two instances sharing a real Redis: each new
// client connects to the other instance than the previous one, so every
// test has its participants spread over both.

import { before, after, afterEach } from "node:test";
import { startServer } from "./lib/server.js";
import { startRedis } from "./lib/redis.js";
import { closeAll } from "./lib/client.js";
import { defineContract, MAX_FILE_BYTES } from "./lib/contract.js";

let redis;
const servers = [];
let turn = 0;

before(async () => {
  redis = await startRedis();
  for (const name of ["js-cluster-a", "js-cluster-b"]) {
    servers.push(await startServer({ REDIS_URL: redis.url, INSTANCE_NAME: name, MAX_FILE_BYTES: String(MAX_FILE_BYTES) }));
  }
  for (const server of servers) {
    for (let i = 0; ; i++) {
      const status = await fetch(`${server.url}/readyz`).then((r) => r.status, () => 0);
      if (status === 200) break;
      if (i > 150) throw new Error(`${server.url} never became ready`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
});
after(async () => {
  for (const server of servers) await server.stop();
  await redis?.stop();
});
afterEach(() => closeAll());

defineContract(() => servers[turn++ % servers.length].url);
