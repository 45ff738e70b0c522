// Presence with the real socket.io clients (2.x, 3.x, 4.x), on one instance
// and on two sharing a real Redis: the demo's `user joined` / `user left` up
// to ANNOUNCE_MAX_USERS, only the count above it, and a newcomer learning
// who is online a page or a search at a time.

import { test, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, startPair } from "./lib/server.js";
import { startRedis } from "./lib/redis.js";
import { user, ack, nextMatching, none, closeAll, clients } from "./lib/client.js";

const LIMIT = 3;
const versions = Object.keys(clients);

after(() => closeAll());

/** Resolves once `socket` hears `presence` telling `count`. */
const countTold = (socket, count) => nextMatching(socket, "presence", (e) => e.numUsers === count, 8000);

/** Every name online, page by page, `limit` a page. */
async function everyone(socket, limit) {
  const names = [];
  let request = { limit };
  for (;;) {
    const page = await ack(socket, "users", request);
    assert.equal(page.ok, true, JSON.stringify(page));
    assert.ok(page.users.length <= limit);
    names.push(...page.users.map((u) => u.username));
    if (!page.next) return names;
    request = { limit, after: page.next };
  }
}

/** The scenario, with `urlOf(i)` the instance the i-th client connects to. */
async function presenceAcrossTheLimit(urlOf) {
  // Up to the limit: the demo's events, with every client version.
  const first = await user(urlOf(0), "first", { version: versions[0] });
  const early = [first];
  for (let i = 1; i < LIMIT; i++) {
    early.push(await user(urlOf(i), `early${i}`, { version: versions[i % versions.length] }));
    assert.deepEqual(await nextMatching(first, "user joined", (e) => e.username === `early${i}`), { username: `early${i}`, numUsers: i + 1 });
  }

  // Past it: no names pushed, only the count, to every version.
  const late = [];
  for (let i = 0; i < 6; i++) late.push(await user(urlOf(LIMIT + i), `late${i}`, { version: versions[i % versions.length] }));
  const online = LIMIT + late.length;
  await Promise.all([...early, ...late].map((socket) => countTold(socket, online)));
  await none(first, "user joined", 10);

  // A newcomer learns who is online: pages, a search.
  const newcomer = await user(urlOf(0), "Zoe", { version: "2.x" });
  const expected = ["early1", "early2", "first", "late0", "late1", "late2", "late3", "late4", "late5", "Zoe"];
  assert.deepEqual(await everyone(newcomer, 4), expected);
  const found = await ack(newcomer, "users", { prefix: "LATE" });
  assert.deepEqual(found.users.map((u) => u.username), expected.filter((n) => n.startsWith("late")));
  assert.equal(found.numUsers, online + 1);

  // Logouts racing each other: the last count anyone hears is exact.
  for (const socket of late.slice(0, 4)) socket.close();
  await countTold(first, online + 1 - 4);
  await countTold(newcomer, online + 1 - 4);
  await none(first, "user left", 10);
  for (const socket of late.slice(4)) socket.close();
  await countTold(first, LIMIT + 1);
  // Back at the limit: the count once more, then the demo's `user left` again.
  newcomer.close();
  await countTold(first, LIMIT);
  early[2].close();
  assert.deepEqual(await nextMatching(first, "user left", (e) => e.username === "early2", 8000), { username: "early2", numUsers: LIMIT - 1 });
}

test("one instance: demo events up to the limit, counts above it, names on demand", async () => {
  const server = await startServer({ INSTANCE_NAME: "js-presence", ANNOUNCE_MAX_USERS: String(LIMIT) });
  try {
    await presenceAcrossTheLimit(() => server.url);
  } finally {
    closeAll();
    await server.stop();
  }
});

test("two instances on Redis: the same, with users spread over both", async () => {
  const redis = await startRedis();
  const pair = await startPair("js-presence", redis.url, { ANNOUNCE_MAX_USERS: String(LIMIT) });
  try {
    await presenceAcrossTheLimit((i) => pair[i % 2].url);
  } finally {
    closeAll();
    await Promise.all(pair.map((server) => server.stop()));
    await redis.stop();
  }
});
