// An instance crash that frontends never notice: Redis, three chatwire
// instances and nginx (deploy/nginx.conf), with default heartbeat timings.
// Twelve unmodified socket.io clients of every major version behave like
// socket.io's official chat demo: on every connect they emit `add user`
// with their name, once, with no session and no retry. One instance is
// SIGKILLed. Its clients reconnect through nginx to the other two, and
// their `add user` must win over the names the dead instance still holds:
// all of them are logged in within 3 s of reconnecting, and everyone chats.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { clients as versions, eventually } from "./lib/client.js";
import { startServer, waitReady } from "./lib/server.js";
import { startRedis } from "./lib/redis.js";
import { startNginx } from "./lib/nginx.js";

/** How long a reconnected demo client may take to be logged in again. */
const LOGIN_AFTER_RECONNECT_MS = 3000;

let redis;
let nginx;
const instances = [];
const people = [];

before(async () => {
  redis = await startRedis();
  for (let i = 1; i <= 3; i++) {
    instances.push(await startServer({ REDIS_URL: redis.url, INSTANCE_NAME: `chatwire-${i}` }));
  }
  for (const instance of instances) await waitReady(instance.url);
  // Each instance judges the others by their connections once it has seen them.
  const watchingBoth = (instance) => instance.logs.some((line) => line.includes("watching the other instances' connections instances=2"));
  await eventually(() => instances.every(watchingBoth), 15000, "instances to watch each other");
  nginx = await startNginx(instances.map((instance) => instance.port));
});

after(async () => {
  for (const person of people) person.socket.close();
  await nginx?.stop();
  for (const instance of instances) await instance.stop();
  await redis?.stop();
});

/**
 * The official demo's behaviour: `add user` with the name on every
 * connect, no ack, no session, no retry; `login` says it worked. Default
 * reconnection settings of the client version.
 */
function demoClient(name, version) {
  const socket = versions[version](nginx.url, { transports: ["websocket"], forceNew: true });
  const person = { name, version, socket, connects: [], disconnects: 0, logins: [], errors: [], messages: [], presence: [] };
  socket.on("connect", () => {
    person.connects.push(Date.now());
    socket.emit("add user", name);
  });
  socket.on("disconnect", () => { person.disconnects++; });
  socket.on("login", () => person.logins.push(Date.now()));
  socket.on("chat error", (error) => person.errors.push(error));
  socket.on("new message", (message) => person.messages.push(message));
  socket.on("user joined", ({ username }) => person.presence.push(`joined ${username}`));
  socket.on("user left", ({ username }) => person.presence.push(`left ${username}`));
  people.push(person);
  return person;
}

/** Sends `text` from `sender`; resolves once every other person received it. */
async function everyoneHears(sender, text) {
  sender.socket.emit("new message", text);
  const others = people.filter((p) => p !== sender);
  await eventually(
    () => others.every((p) => p.messages.some((m) => m.username === sender.name && m.message === text)),
    5000,
    `"${text}" from ${sender.name} to reach everyone (missing: ${others.filter((p) => !p.messages.some((m) => m.message === text)).map((p) => p.name)})`,
  );
}

test("clients that only re-emit add user are all back within 3 s after an instance is SIGKILLed", { timeout: 90000 }, async (t) => {
  const order = ["4.x", "3.x", "2.x"];
  for (let i = 0; i < 12; i++) demoClient(`user${i}`, order[i % 3]);
  await eventually(() => people.every((p) => p.logins.length === 1), 10000, "everyone to log in");
  await everyoneHears(people[0], "before the crash");

  const killedAt = Date.now();
  instances[1].process.kill("SIGKILL");
  // Its clients all lose their connection at once; the first reconnects
  // half a second later at the earliest (the clients' reconnection delay).
  await eventually(() => people.some((p) => p.connects.length === 2), 10000, "the dead instance's clients to reconnect");
  const moved = people.filter((p) => p.disconnects > 0);
  // least_conn spread the twelve over the three instances.
  assert.ok(moved.length >= 2 && moved.length <= 8, `nginx spread the clients: ${moved.length} were on the killed instance`);

  // Every one of them is logged in again, each within 3 s of reconnecting.
  await eventually(() => moved.every((p) => p.logins.length === 2), 15000, "the moved clients to log in again");
  for (const person of moved) {
    const reconnected = person.connects[1];
    const loggedIn = person.logins[1];
    assert.ok(
      loggedIn - reconnected <= LOGIN_AFTER_RECONNECT_MS,
      `${person.name} (${person.version}) logged in ${loggedIn - reconnected} ms after reconnecting (${reconnected - killedAt} ms after the kill)`,
    );
    assert.deepEqual(person.errors, [], `${person.name} got no error`);
  }

  const slowest = Math.max(...moved.map((p) => p.logins[1] - p.connects[1]));
  const lastBack = Math.max(...moved.map((p) => p.logins[1] - killedAt));
  t.diagnostic(`${moved.length} moved; slowest login after reconnecting ${slowest} ms; all back ${lastBack} ms after the kill`);

  // The others saw each moved user leave (the dead instance purged), then
  // come back: never back first, which would leave them listed as gone.
  const watchers = people.filter((p) => !moved.includes(p));
  const seen = (watcher, person) => watcher.presence.filter((e) => e.endsWith(` ${person.name}`)).slice(-2).join(", ");
  await eventually(
    () => watchers.every((w) => moved.every((p) => seen(w, p).endsWith(`joined ${p.name}`))),
    5000,
    "everyone to hear the moved users come back",
  );
  for (const watcher of watchers) {
    for (const person of moved) {
      assert.equal(seen(watcher, person), `left ${person.name}, joined ${person.name}`, `${watcher.name} saw ${person.name} leave, then come back`);
    }
  }

  // And everyone chats: all twelve, whichever instance they are on now.
  const users = await new Promise((resolve) => people[0].socket.emit("users", resolve));
  assert.equal(users.numUsers, 12, JSON.stringify(users));
  for (const person of moved) await everyoneHears(person, `${person.name} is back`);
  await everyoneHears(people.find((p) => !moved.includes(p)), "welcome back");
});

test("an instance stopped with SIGTERM hands its clients over just as fast", { timeout: 60000 }, async (t) => {
  // The twelve are on instances 1 and 3 now; stop 3 the orderly way.
  for (const person of people) person.disconnects = 0;
  const logins = new Map(people.map((p) => [p, p.logins.length]));
  const stoppedAt = Date.now();
  const stopped = instances[2].stop();
  await eventually(() => people.some((p) => p.disconnects > 0), 10000, "instance 3's clients to be disconnected");
  await stopped;
  const moved = people.filter((p) => p.disconnects > 0);
  assert.ok(moved.length >= 1, "some clients were on instance 3");
  await eventually(() => moved.every((p) => p.logins.length === logins.get(p) + 1), 10000, "instance 3's clients to log in again");
  for (const person of moved) {
    const reconnected = person.connects.at(-1);
    assert.ok(person.logins.at(-1) - reconnected <= LOGIN_AFTER_RECONNECT_MS, `${person.name} logged in ${person.logins.at(-1) - reconnected} ms after reconnecting`);
    assert.deepEqual(person.errors, [], `${person.name} got no error`);
  }
  t.diagnostic(`${moved.length} moved; all back ${Math.max(...moved.map((p) => p.logins.at(-1) - stoppedAt))} ms after SIGTERM`);
  const users = await new Promise((resolve) => people.find((p) => !moved.includes(p)).socket.emit("users", resolve));
  assert.equal(users.numUsers, 12, JSON.stringify(users));
  for (const person of moved) await everyoneHears(person, `${person.name} moved again`);
});
