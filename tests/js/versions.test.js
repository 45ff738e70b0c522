// Every socket.io-client a Node-era frontend may ship, unchanged: 2.x
// (Engine.IO 3, socket.io protocol 4), 3.x and 4.x connect, log in and chat
// with each other, on one instance and across two sharing a real Redis.
// 2.x also over long-polling, with a token in its `query`, through
// heartbeats it drives itself, and not at all with ALLOW_EIO3=false. A
// refused handshake reaches each version with its code.

import { test, describe, before, after, afterEach } from "node:test";
import assert from "node:assert/strict";
import { startServer, startPair } from "./lib/server.js";
import { startRedis } from "./lib/redis.js";
import { connect, ack, next, none, user, closeAll, WAIT_MS } from "./lib/client.js";
import { request, account } from "./lib/http.js";
import { launch, newPage } from "./lib/browser.js";

const VERSIONS = ["2.x", "3.x", "4.x"];
const PASSWORD = "correct horse battery";

let counter = 0;
/** A name no other test uses: the version's major number, then a count. */
const unique = (prefix) => `${prefix}${++counter}`;
const nameFor = (version) => unique(`v${version[0]}user`);

afterEach(() => closeAll());

/** Consumes `event`s until one satisfies `matches`; resolves with it. */
async function nextMatching(socket, event, matches) {
  for (;;) {
    const value = await next(socket, event);
    if (matches(value)) return value;
  }
}

/** Waits until `condition()` holds, polling; fails after `timeoutMs`. */
async function eventually(condition, what, timeoutMs = WAIT_MS) {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * One user per seat ({ version, url, options }) logs in; each sees the later
 * ones arrive; then everyone chats: a `new message` from each to all, a
 * room message from each to the room, and a private message from each to
 * the next seat's user, which nobody else gets.
 */
async function chatAcrossVersions(seats) {
  const people = [];
  for (const seat of seats) {
    const name = nameFor(seat.version);
    const socket = await user(seat.url, name, { version: seat.version, ...seat.options });
    for (const earlier of people) {
      const joined = await nextMatching(earlier.socket, "user joined", (event) => event.username === name);
      assert.equal(typeof joined.numUsers, "number");
    }
    people.push({ ...seat, name, socket });
  }
  const label = (person) => `${person.name} (${person.version})`;

  for (const sender of people) {
    const text = `hello from ${sender.version}, ${sender.name}`;
    assert.deepEqual(await ack(sender.socket, "new message", text), { ok: true });
    for (const other of people.filter((person) => person !== sender)) {
      const got = await nextMatching(other.socket, "new message", (event) => event.message === text);
      assert.deepEqual(got, { username: sender.name, message: text }, `${label(other)} got ${label(sender)}'s new message`);
    }
  }

  const room = unique("versions");
  for (const person of people) {
    const joined = await ack(person.socket, "join", { room });
    assert.equal(joined.ok, true, JSON.stringify(joined));
  }
  for (const sender of people) {
    const text = `to the room from ${sender.name}`;
    const sent = await ack(sender.socket, "message", { room, text });
    assert.equal(sent.ok, true, JSON.stringify(sent));
    for (const other of people.filter((person) => person !== sender)) {
      const got = await nextMatching(other.socket, "message", (message) => message.text === text);
      assert.equal(got.room, room);
      assert.equal(got.from, sender.name, `${label(other)} got ${label(sender)}'s room message`);
      assert.equal(got.id, sent.message.id);
    }
  }

  for (const [i, sender] of people.entries()) {
    const recipient = people[(i + 1) % people.length];
    const text = `psst ${recipient.name}, from ${sender.name}`;
    const sent = await ack(sender.socket, "message", { to: recipient.name, text });
    assert.equal(sent.ok, true, JSON.stringify(sent));
    const got = await nextMatching(recipient.socket, "message", (message) => message.text === text);
    assert.equal(got.from, sender.name);
    assert.equal(got.to, recipient.name, `${label(recipient)} got ${label(sender)}'s private message`);
  }
  // Room and private messages were all consumed above: anything left leaked.
  for (const person of people) await none(person.socket, "message");
  return people;
}

describe("one instance, default settings", () => {
  let server;
  before(async () => { server = await startServer({ INSTANCE_NAME: "js-versions" }); });
  after(async () => { await server?.stop(); });

  test("socket.io-client 2.x, 3.x and 4.x chat with each other", async () => {
    await chatAcrossVersions(VERSIONS.map((version) => ({ version, url: server.url })));
  });

  test("files travel between 2.x and newer clients as binary attachments", async () => {
    const png = Buffer.concat([Buffer.from("89504e470d0a1a0a", "hex"), Buffer.alloc(300, 7)]);
    for (const [from, to] of [["2.x", "4.x"], ["4.x", "2.x"], ["3.x", "2.x"], ["2.x", "3.x"]]) {
      const sender = await user(server.url, nameFor(from), { version: from });
      const recipient = await user(server.url, nameFor(to), { version: to });
      const file = { name: "dot.png", type: "image/png", data: png };
      const sent = await ack(sender, "message", { to: recipient.username, text: "a picture", file });
      assert.equal(sent.ok, true, `${from} → ${to}: ${JSON.stringify(sent)}`);
      const got = await next(recipient, "message");
      assert.equal(got.file.type, "image/png");
      assert.ok(Buffer.from(got.file.data).equals(png), `${from} → ${to}: the bytes arrive intact`);
    }
  });

  test("a 2.x client logs in with the token in its query; 3.x and 4.x query tokens are not read", async () => {
    const name = unique("queryuser");
    const token = await account(server.url, server.url, name, PASSWORD);
    const watcher = await user(server.url, unique("watcher"));

    const old = await connect(server.url, { version: "2.x", query: { token } });
    const login = await next(old, "login");
    assert.equal(typeof login.numUsers, "number");
    const joined = await nextMatching(watcher, "user joined", (event) => event.username === name);
    assert.equal(joined.numUsers, login.numUsers);
    const again = await ack(old, "add user", unique("other"));
    assert.equal(again.error?.code, "already_logged_in", JSON.stringify(again));
    const sent = await ack(old, "message", { to: watcher.username, text: "from a 2.x account" });
    assert.equal(sent.ok, true, JSON.stringify(sent));
    assert.equal((await next(watcher, "message")).from, name);

    // Only protocol 4 sockets (2.x) read the query: a newer client sends `auth`.
    for (const version of ["3.x", "4.x"]) {
      const guest = await connect(server.url, { version, query: { token } });
      await none(guest, "login");
      const reply = await ack(guest, "users");
      assert.equal(reply.ok, false, `a ${version} socket with a query token is not logged in: ${JSON.stringify(reply)}`);
      assert.equal(reply.error.code, "not_logged_in");
    }
  });
});

describe("across two instances on Redis", () => {
  let redis, a, b;
  before(async () => {
    redis = await startRedis();
    [a, b] = await startPair("js-versions", redis.url);
  });
  after(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await redis?.stop();
  });

  test("socket.io-client 2.x, 3.x and 4.x on either instance chat with each other", async () => {
    await chatAcrossVersions([
      { version: "2.x", url: a.url },
      { version: "3.x", url: b.url },
      { version: "4.x", url: a.url },
      { version: "2.x", url: b.url },
      { version: "4.x", url: b.url },
    ]);
  });
});

describe("2.x over long-polling (TRANSPORTS=polling,websocket)", () => {
  let server;
  before(async () => { server = await startServer({ TRANSPORTS: "polling,websocket" }); });
  after(async () => { await server?.stop(); });

  test("2.x on polling only, 2.x upgrading to websocket, and 4.x chat with each other", async () => {
    const [polling, upgrading] = await chatAcrossVersions([
      { version: "2.x", url: server.url, options: { transports: ["polling"] } },
      { version: "2.x", url: server.url, options: { transports: ["polling", "websocket"] } },
      { version: "4.x", url: server.url },
    ]);
    assert.equal(polling.socket.io.engine.transport.name, "polling");
    await eventually(() => upgrading.socket.io.engine.transport.name === "websocket", "the upgrade to websocket");
  });

  test("Engine.IO 3 polling frames each packet with its length", async () => {
    const response = await request(server.url, "/socket.io/?EIO=3&transport=polling");
    assert.equal(response.status, 200, response.text);
    const open = response.text.match(/^(\d+):0(\{.*\})$/);
    assert.ok(open, `a length-prefixed open packet: ${response.text}`);
    assert.equal(Number(open[1]), 1 + open[2].length);
    assert.deepEqual(JSON.parse(open[2]).upgrades, ["websocket"]);
  });
});

/**
 * The packets of an Engine.IO 3 binary polling payload: each is
 * `<0: string | 1: binary> <length, one byte per decimal digit> 0xff <packet>`.
 */
function binaryPayloadPackets(bytes) {
  const packets = [];
  for (let i = 0; i < bytes.length;) {
    const binary = bytes[i++] === 1;
    let length = 0;
    while (bytes[i] !== 0xff) length = length * 10 + bytes[i++];
    const packet = bytes.subarray(i + 1, i + 1 + length);
    packets.push(binary ? { binary: Buffer.from(packet) } : { text: packet.toString("utf8") });
    i += 1 + length;
  }
  return packets;
}

describe("files to a 2.x client on long-polling", () => {
  let server;
  before(async () => { server = await startServer({ TRANSPORTS: "polling,websocket" }); });
  after(async () => { await server?.stop(); });

  // engineioxide 0.17.9 writes a binary attachment into an Engine.IO 3
  // polling payload in the Engine.IO 4 base64 form ("b<base64>" as a string
  // packet, not "b4…" nor a binary packet), and socket.io-client 2.x throws
  // "got plaintext data when reconstructing a packet". Websocket is fine
  // (tested above); sending files from a polling 2.x client works too.
  test("a file reaches it as a binary packet", { todo: "engineioxide 0.17.9 mis-encodes binary attachments for Engine.IO 3 polling" }, async () => {
    const path = "/socket.io/?EIO=3&transport=polling";
    const opened = await request(server.url, path);
    const { sid } = JSON.parse(opened.text.slice(opened.text.indexOf("{")));
    const session = `${path}&sid=${sid}`;
    const name = nameFor("2.x");
    const login = `420["add user","${name}"]`;
    const posted = await request(server.url, session, { method: "POST", body: `${login.length}:${login}` });
    assert.equal(posted.status, 200, posted.text);
    const sender = await user(server.url, nameFor("4.x"));
    const png = Buffer.concat([Buffer.from("89504e470d0a1a0a", "hex"), Buffer.alloc(64, 7)]);
    const sent = await ack(sender, "message", { to: name, file: { name: "x.png", type: "image/png", data: png } });
    assert.equal(sent.ok, true, JSON.stringify(sent));
    const deadline = Date.now() + WAIT_MS;
    for (;;) {
      assert.ok(Date.now() < deadline, "no payload with the message");
      const response = await request(server.url, session);
      if (response.headers["content-type"] !== "application/octet-stream") continue;
      const packets = binaryPayloadPackets(response.bytes);
      const header = packets.findIndex((packet) => packet.text?.startsWith("451-"));
      assert.ok(header >= 0, JSON.stringify(packets));
      assert.deepEqual(packets[header + 1], { binary: Buffer.concat([Buffer.from([4]), png]) });
      break;
    }
  });
});

describe("ALLOW_EIO3=false", () => {
  let server;
  before(async () => { server = await startServer({ ALLOW_EIO3: "false", TRANSPORTS: "polling,websocket" }); });
  after(async () => { await server?.stop(); });

  test("2.x cannot connect, over websocket or polling; 3.x and 4.x can", async () => {
    for (const transports of [["websocket"], ["polling"]]) {
      await assert.rejects(connect(server.url, { version: "2.x", transports }), (err) => {
        assert.notEqual(err.message, "connect timed out", "refused, not left hanging");
        return true;
      });
    }
    for (const version of ["3.x", "4.x"]) {
      const socket = await user(server.url, nameFor(version), { version });
      assert.equal(socket.connected, true);
    }
  });

  test("Engine.IO 3 requests get Node's 400 Unsupported protocol version", async () => {
    for (const [method, query] of [
      ["GET", "EIO=3&transport=polling"],
      ["GET", "EIO=3&transport=websocket"],
      ["POST", "EIO=3&transport=polling&sid=AAAAAAAAAAAAAAAA"],
      ["GET", "EIO=3&EIO=4&transport=polling"],
    ]) {
      const response = await request(server.url, `/socket.io/?${query}`, { method, body: method === "POST" ? "1:6" : undefined });
      assert.equal(response.status, 400, `${method} ${query}: ${response.text}`);
      assert.match(response.headers["content-type"], /^application\/json/);
      assert.deepEqual(response.json, { code: 5, message: "Unsupported protocol version" });
    }
    const v4 = await request(server.url, "/socket.io/?EIO=4&transport=polling");
    assert.equal(v4.status, 200, "Engine.IO 4 still opens");
  });
});

describe("heartbeats (PING_INTERVAL_MS=300, PING_TIMEOUT_MS=300)", () => {
  let server;
  before(async () => {
    server = await startServer({ PING_INTERVAL_MS: "300", PING_TIMEOUT_MS: "300", TRANSPORTS: "polling,websocket" });
  });
  after(async () => { await server?.stop(); });

  test("a 2.x client, which sends the pings itself, stays connected over many heartbeats", async () => {
    const old = await user(server.url, nameFor("2.x"), { version: "2.x" });
    assert.equal(old.io.engine.pingInterval, 300, "the client was told the interval");
    let pongs = 0;
    old.on("pong", () => { pongs++; });
    await eventually(() => pongs >= 6, "six heartbeats", 10 * 300 + WAIT_MS);
    assert.equal(old.connected, true);
    const peer = await user(server.url, nameFor("4.x"));
    assert.deepEqual(await ack(old, "new message", "still here"), { ok: true });
    assert.deepEqual(await next(peer, "new message"), { username: old.username, message: "still here" });
  });

  test("an Engine.IO 3 client that stops pinging is dropped after interval + timeout", async () => {
    const opened = await request(server.url, "/socket.io/?EIO=3&transport=polling");
    assert.equal(opened.status, 200, opened.text);
    const { sid } = JSON.parse(opened.text.slice(opened.text.indexOf("{")));
    const start = Date.now();
    // Long-poll without ever pinging: the server closes the session ("1:1").
    for (;;) {
      const poll = await request(server.url, `/socket.io/?EIO=3&transport=polling&sid=${sid}`);
      if (poll.status !== 200 || poll.text.endsWith("1:1")) break;
      assert.ok(Date.now() - start < WAIT_MS, "the session was not closed");
    }
    const elapsed = Date.now() - start;
    assert.ok(elapsed >= 500 && elapsed < 3000, `closed after ${elapsed} ms (interval + timeout: 600 ms)`);
    const gone = await request(server.url, `/socket.io/?EIO=3&transport=polling&sid=${sid}`);
    assert.equal(gone.status, 400, gone.text);
  });
});

describe("refused handshakes: err.message is the code in every version", () => {
  let server, closed;
  before(async () => {
    [server, closed] = await Promise.all([startServer(), startServer({ ALLOW_GUESTS: "false" })]);
  });
  after(async () => { await Promise.all([server?.stop(), closed?.stop()]); });

  /**
   * How `version` sees a refused handshake: 3.x/4.x a `connect_error`
   * whose `message` is the code; 2.x an `error` event with `{ message }`,
   * then the server disconnects it. Resolves with the code.
   */
  async function refusedCode(version, url, token) {
    const credentials = token === undefined ? {} : version === "2.x" ? { query: { token } } : { auth: { token } };
    let refused;
    try {
      await connect(url, { version, ...credentials });
    } catch (err) {
      refused = err;
    }
    assert.ok(refused, `${version}: the connection was accepted`);
    if (version !== "2.x") {
      // socketioxide 0.18's connect_error packet carries only `message` (see docs/PROTOCOL.md).
      assert.equal(refused.data, undefined);
      return refused.message;
    }
    assert.deepEqual(Object.keys(refused.data), ["message"]);
    const disconnected = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("the refused 2.x socket was not disconnected")), WAIT_MS);
      refused.socket.once("disconnect", (reason) => { clearTimeout(timer); resolve(reason); });
    });
    assert.equal(disconnected, "io server disconnect");
    return refused.data.message;
  }

  test("a bad token: bad_token", async () => {
    for (const version of VERSIONS) {
      assert.equal(await refusedCode(version, server.url, "nonsense"), "bad_token", version);
    }
  });

  test("a revoked token: token_revoked", async () => {
    const token = await account(server.url, server.url, unique("revoked"), PASSWORD);
    const logout = await request(server.url, "/api/logout", { method: "POST", token });
    assert.equal(logout.status, 204, logout.text);
    for (const version of VERSIONS) {
      assert.equal(await refusedCode(version, server.url, token), "token_revoked", version);
    }
  });

  test("no token where guests are disabled: guests_disabled; an account still gets in", async () => {
    for (const version of VERSIONS) {
      assert.equal(await refusedCode(version, closed.url), "guests_disabled", version);
    }
    const name = unique("member");
    const token = await account(closed.url, closed.url, name, PASSWORD);
    const old = await connect(closed.url, { version: "2.x", query: { token } });
    assert.equal(typeof (await next(old, "login")).numUsers, "number");
  });

  test("the web client shows the reason in words", async () => {
    const browser = await launch();
    try {
      const page = await newPage(browser);
      await page.goto(closed.url);
      await page.click("#tab-guest");
      await page.fill("#guest-name", unique("walker"));
      await page.click("#guest-button");
      await page.locator("#login-error", { hasText: "only admits registered accounts" }).waitFor();
      assert.deepEqual(page.errors, []);
    } finally {
      await browser.close();
    }
  });
});
