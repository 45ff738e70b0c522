// The event contract against a single instance (embedded, in-memory mode).

import { before, after, afterEach } from "node:test";
import { startServer } from "./lib/server.js";
import { closeAll } from "./lib/client.js";
import { defineContract, MAX_FILE_BYTES } from "./lib/contract.js";

let server;
before(async () => { server = await startServer({ INSTANCE_NAME: "js-contract", MAX_FILE_BYTES: String(MAX_FILE_BYTES) }); });
after(async () => { await server?.stop(); });
afterEach(() => closeAll());

defineContract(() => server.url);
