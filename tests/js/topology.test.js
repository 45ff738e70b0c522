// The docker-compose topology, natively: Redis, three chatwire instances and
// nginx (deploy/nginx.conf) on loopback. Real socket.io-clients connect
// through nginx; one instance is killed; its clients reconnect to the
// others, log in again with their session, catch up with history { after },
// and everyone chats again. Default heartbeat timings: the dead instance's
// users are cleaned up within 30 s.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { io } from "socket.io-client";
import { startServer, waitReady } from "./lib/server.js";
import { startRedis } from "./lib/redis.js";
import { startNginx } from "./lib/nginx.js";
import { ack, eventually, next, WAIT_MS } from "./lib/client.js";

const ROOM = "general";
let redis;
let nginx;
const instances = [];
const clients = [];

before(async () => {
  redis = await startRedis();
  for (let i = 1; i <= 3; i++) {
    instances.push(await startServer({ REDIS_URL: redis.url, INSTANCE_NAME: `chatwire-${i}` }));
  }
  for (const instance of instances) await waitReady(instance.url);
  nginx = await startNginx(instances.map((instance) => instance.port));
});

after(async () => {
  for (const client of clients) client.socket.close();
  await nginx?.stop();
  for (const instance of instances) await instance.stop();
  await redis?.stop();
});

/**
 * A client that does what the web client does on every (re)connect: log in
 * with its session secret, rejoin the room, fetch what it missed.
 */
async function chatClient(url, name) {
  const socket = io(url, { transports: ["websocket"], forceNew: true, reconnectionDelay: 300, reconnectionDelayMax: 1500 });
  const client = { name, socket, session: null, seen: new Map(), deliveries: new Map(), connects: 0, disconnects: 0, ready: null };
  const record = (m) => { if (!client.seen.has(m.id)) client.seen.set(m.id, m); };
  const lastId = () => [...client.seen.keys()].sort().pop();
  socket.on("message", (m) => {
    client.deliveries.set(m.id, (client.deliveries.get(m.id) ?? 0) + 1);
    record(m);
  });
  socket.on("disconnect", () => { client.disconnects++; });
  socket.on("connect", () => {
    client.connects++;
    client.ready = (async () => {
      const login = await ack(socket, "add user", client.session ? { username: name, session: client.session } : name);
      assert.equal(login.ok, true, `${name} logs in: ${JSON.stringify(login)}`);
      client.session = login.session;
      const joined = await ack(socket, "join", { room: ROOM });
      assert.equal(joined.ok, true);
      let after = lastId();
      joined.history.forEach(record);
      while (after) {
        const page = await ack(socket, "history", { room: ROOM, after });
        page.messages.forEach(record);
        if (page.messages.length === 0) break;
        after = page.messages[page.messages.length - 1].id;
      }
    })();
  });
  await new Promise((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("connect_error", reject);
  });
  await client.ready;
  clients.push(client);
  return client;
}

test("clients through nginx keep chatting when an instance is killed", { timeout: 90000 }, async () => {
  const people = [];
  for (const name of ["alice", "bob", "carol", "dave", "erin", "frank"]) people.push(await chatClient(nginx.url, name));

  // Everyone hears everyone, whatever instance nginx picked.
  const hello = await ack(people[0].socket, "message", { room: ROOM, text: "hello everyone" });
  await eventually(() => people.slice(1).every((p) => p.seen.has(hello.message.id)), WAIT_MS, "hello to reach everyone");
  const users = await ack(people[5].socket, "users");
  assert.equal(users.numUsers, 6);

  // A demo-style client (no session, no reconnection) straight on instance 2.
  const ghost = io(instances[1].url, { transports: ["websocket"], forceNew: true, reconnection: false });
  clients.push({ socket: ghost });
  await new Promise((resolve) => ghost.once("connect", resolve));
  assert.equal((await ack(ghost, "add user", "ghost")).ok, true);
  const survivorsWatch = people[0];
  survivorsWatch.socket.received = [];
  survivorsWatch.socket.onAny((event, ...args) => survivorsWatch.socket.received.push({ event, args }));

  // Instance 2 dies without a goodbye.
  const killedAt = Date.now();
  instances[1].process.kill("SIGKILL");
  await eventually(() => people.some((p) => p.disconnects > 0), WAIT_MS, "instance 2's clients to notice");
  const affected = people.filter((p) => p.disconnects > 0);
  const unaffected = people.filter((p) => p.disconnects === 0);
  assert.ok(affected.length >= 1 && unaffected.length >= 1, `nginx spread clients: ${affected.length} affected`);

  // Meanwhile the others keep talking.
  const sender = unaffected[0];
  const during = [];
  for (let i = 0; i < 5; i++) during.push((await ack(sender.socket, "message", { room: ROOM, text: `during ${i}` })).message);

  // The affected clients come back through nginx, log in again and catch up.
  await eventually(() => affected.every((p) => p.connects >= 2), 20000, "affected clients to reconnect");
  await Promise.all(affected.map((p) => p.ready));
  for (const person of people) {
    for (const message of during) assert.ok(person.seen.has(message.id) || person === sender, `${person.name} has "${message.text}"`);
    for (const [id, count] of person.deliveries) assert.equal(count, 1, `${person.name} got ${id} ${count} times`);
  }

  // Everyone chats again, including those who moved.
  const back = await ack(affected[0].socket, "message", { room: ROOM, text: "back again" });
  await eventually(() => people.filter((p) => p !== affected[0]).every((p) => p.seen.has(back.message.id)), WAIT_MS, "back again to reach everyone");

  // The dead instance's users who did not come back are removed within 30 s.
  const left = await next(survivorsWatch.socket, "user left", 30000);
  assert.equal(left.username, "ghost");
  assert.ok(Date.now() - killedAt < 30000, "cleaned up within 30 s");
  await eventually(async () => (await ack(sender.socket, "users")).numUsers === 6, WAIT_MS, "numUsers to be exact again");
  const again = io(nginx.url, { transports: ["websocket"], forceNew: true, reconnection: false });
  clients.push({ socket: again });
  await new Promise((resolve) => again.once("connect", resolve));
  assert.equal((await ack(again, "add user", "ghost")).ok, true, "the dead instance's name is free again");
});
