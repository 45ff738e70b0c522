// Accounts and tokens end to end, with the real socket.io-client: two
// instances sharing a real Redis (accounts, tokens and rate-limit counters
// must hold across them), plus a single in-memory instance with guests
// disabled.

import { test, describe, before, after, afterEach } from "node:test";
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { io } from "socket.io-client";
import { startServer, startPair, TEST_SECRET } from "./lib/server.js";
import { startRedis } from "./lib/redis.js";
import { connect, ack, next, nextMatching, none, closeAll, WAIT_MS } from "./lib/client.js";
import { MAX_FILE_BYTES } from "./lib/contract.js";
import { request, register, login, account, newAddress } from "./lib/http.js";

let redis;
let A, B; // the two instances sharing Redis

before(async () => {
  redis = await startRedis();
  [A, B] = await startPair("js-accounts", redis.url, { MAX_FILE_BYTES: String(MAX_FILE_BYTES) });
});
after(async () => {
  await Promise.all([A?.stop(), B?.stop()]);
  await redis?.stop();
});

// Sockets opened here (with a token) besides those of lib/client.js.
const mine = new Set();
afterEach(() => {
  closeAll();
  for (const socket of mine) socket.close();
  mine.clear();
});

let counter = 0;
/** A name no other test uses (at most 32 characters). */
const unique = (prefix) => `${prefix}${++counter}`;
const PASSWORD = "correct horse battery";


/**
 * A socket connecting with `auth`, recording every event from the very
 * first (the `login` a token earns comes right after the connect packet).
 * Resolves once connected; rejects with the connect_error.
 */
async function connectWith(url, auth) {
  const socket = io(url, { transports: ["websocket"], forceNew: true, reconnection: false, autoConnect: false, auth });
  mine.add(socket);
  socket.received = [];
  socket.onAny((event, ...args) => socket.received.push({ event, args }));
  socket.connect();
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("connect timed out")), WAIT_MS);
    socket.once("connect", () => { clearTimeout(timer); resolve(); });
    socket.once("connect_error", (err) => { clearTimeout(timer); reject(err); });
  });
  return socket;
}

/** The message of the connect_error a connection with `auth` gets. */
async function refusal(url, auth) {
  try {
    await connectWith(url, auth);
  } catch (err) {
    return err.message;
  }
  assert.fail(`a connection with ${JSON.stringify(auth)} was accepted`);
}

/** A guest logged in with `add user`; the socket carries the ack's token. */
async function guest(url, name) {
  const socket = await connect(url);
  const reply = await ack(socket, "add user", name);
  assert.equal(reply.ok, true, `add user ${name}: ${JSON.stringify(reply)}`);
  await next(socket, "login").catch((err) => {
    // Say what did arrive, to tell a lost event from a slow one.
    const seen = socket.received.map((r) => r.event);
    throw new Error(`${err.message} after a successful add user ${name} (connected: ${socket.connected}, other events: ${JSON.stringify(seen)})`);
  });
  socket.token = reply.token;
  socket.username = reply.username;
  socket.session = reply.session;
  return socket;
}

/** Consumes `event`s until one satisfies `matches`; resolves with it. */
function assertError(reply, code) {
  assert.equal(reply.ok, false, `expected ${code}, got ${JSON.stringify(reply)}`);
  assert.equal(reply.error.code, code, JSON.stringify(reply));
  assert.ok(reply.error.message.length > 0);
}

/** An HTTP error: status and { error: { code, message } }. */
function assertHttpError(response, status, code) {
  assert.equal(response.status, status, response.text);
  assert.equal(response.json?.error?.code, code, response.text);
  assert.equal(typeof response.json.error.message, "string");
  assert.ok(response.json.error.message.length > 0);
}

// HS256 tokens made here, to present the server with expired, forged and
// unsigned ones (the test deployment's secret is known: lib/server.js).
const b64 = (value) => Buffer.from(typeof value === "string" ? value : JSON.stringify(value)).toString("base64url");
const HEADER = b64('{"alg":"HS256","typ":"JWT"}');
function sign(claims, secret = TEST_SECRET, header = HEADER) {
  const input = `${header}.${b64(claims)}`;
  return `${input}.${createHmac("sha256", secret).update(input).digest("base64url")}`;
}
const now = () => Math.floor(Date.now() / 1000);

describe("registration and login over HTTP", () => {
  test("register on one instance, log in on the other, any case", async () => {
    const name = unique("Ada");
    const from = newAddress();
    const created = await register(A.url, name, PASSWORD, { from });
    assert.equal(created.status, 201, created.text);
    assert.deepEqual(created.json, { username: name });

    const logged = await login(B.url, name.toLowerCase(), PASSWORD, { from });
    assert.equal(logged.status, 200, logged.text);
    assert.equal(logged.json.username, name, "the name as registered");
    assert.equal(logged.json.expiresIn, 24 * 3600);
    assert.match(logged.json.token, /^[\w-]+\.[\w-]+\.[\w-]+$/);

    const again = await register(B.url, name.toUpperCase(), "another password", { from });
    assertHttpError(again, 409, "name_registered");
  });

  test("bad registrations are 400 with a reason", async () => {
    const from = newAddress();
    const cases = [
      ["not JSON", "{username:", "invalid_json"],
      ["an array", [unique("u"), PASSWORD], "invalid_payload"],
      ["no password", { username: unique("u") }, "invalid_payload"],
      ["a numeric name", { username: 42, password: PASSWORD }, "invalid_payload"],
      ["null", null, "invalid_payload"],
      ["an empty name", { username: "", password: PASSWORD }, "invalid_username"],
      ["a 33-character name", { username: "n".repeat(33), password: PASSWORD }, "invalid_username"],
      ["a control character", { username: "a\u0007b", password: PASSWORD }, "invalid_username"],
      ["a 7-character password", { username: unique("u"), password: "1234567" }, "invalid_password"],
      ["a 1025-character password", { username: unique("u"), password: "p".repeat(1025) }, "invalid_password"],
    ];
    for (const [what, body, code] of cases) {
      const response = await request(A.url, "/api/register", { method: "POST", body, from });
      assert.equal(response.status, 400, `${what}: ${response.text}`);
      assertHttpError(response, 400, code);
    }
  });

  test("a wrong password and an unknown name get the same 401", async () => {
    const name = unique("Bea");
    const from = newAddress();
    assert.equal((await register(A.url, name, PASSWORD, { from })).status, 201);
    const wrong = await login(B.url, name, "wrong password!", { from });
    const unknown = await login(A.url, unique("nobody"), PASSWORD, { from });
    for (const response of [wrong, unknown]) {
      assertHttpError(response, 401, "bad_credentials");
      assert.equal(response.headers["www-authenticate"], "Bearer");
    }
    assert.deepEqual(wrong.json, unknown.json);
  });

  test("racing registrations of one name on two instances: exactly one wins", async () => {
    for (let round = 0; round < 3; round++) {
      const name = unique("Race");
      // Different spellings and passwords, so the winner can be told apart.
      const racers = [
        { url: A.url, username: name, password: "password of the first" },
        { url: B.url, username: name.toUpperCase(), password: "password of the second" },
      ];
      const results = await Promise.all(racers.map((r) => register(r.url, r.username, r.password, { from: newAddress() })));
      const statuses = results.map((r) => r.status).sort();
      assert.deepEqual(statuses, [201, 409], results.map((r) => r.text).join(" | "));
      const winner = results.findIndex((r) => r.status === 201);
      const loser = 1 - winner;
      assertHttpError(results[loser], 409, "name_registered");

      // The loser's password was not stored, on either instance.
      const from = newAddress();
      const good = await login(racers[loser].url, name, racers[winner].password, { from });
      assert.equal(good.status, 200, good.text);
      assert.equal(good.json.username, racers[winner].username);
      assertHttpError(await login(racers[winner].url, name, racers[loser].password, { from }), 401, "bad_credentials");
    }
  });

  test("a name a guest holds online cannot be registered until the guest leaves", async () => {
    const name = unique("Cid");
    const holder = await guest(A.url, name);
    const watcher = await guest(A.url, unique("watcher"));
    const from = newAddress();
    assertHttpError(await register(B.url, name.toLowerCase(), PASSWORD, { from }), 409, "name_in_use");
    holder.close();
    await nextMatching(watcher, "user left", (left) => left.username === name);
    assert.equal((await register(B.url, name, PASSWORD, { from })).status, 201);
  });
});

describe("tokens in the handshake", () => {
  test("an account registered on A logs in with its token on B and chats with a guest on A", async () => {
    const name = unique("Dee"), room = unique("room");
    const token = await account(A.url, B.url, name, PASSWORD);
    const visitor = await guest(A.url, unique("visitor"));
    assert.equal((await ack(visitor, "join", { room })).ok, true);

    const dee = await connectWith(B.url, { token });
    const { numUsers } = await next(dee, "login");
    assert.equal(typeof numUsers, "number");
    assert.ok(numUsers >= 2, `numUsers ${numUsers}`);
    assert.deepEqual(await nextMatching(visitor, "user joined", (u) => u.username === name), { username: name, numUsers });
    assertError(await ack(dee, "add user", unique("other")), "already_logged_in");
    const online = await ack(dee, "users");
    assert.ok(online.users.some((u) => u.username === name));

    // A room, both ways.
    const joined = await ack(dee, "join", { room });
    assert.equal(joined.ok, true, JSON.stringify(joined));
    assert.deepEqual(joined.members, [name, visitor.username].sort());
    const fromDee = await ack(dee, "message", { room, text: "hello from an account" });
    assert.equal(fromDee.message.from, name);
    assert.deepEqual(await next(visitor, "message"), fromDee.message);
    const fromVisitor = await ack(visitor, "message", { room, text: "hello from a guest" });
    assert.deepEqual(await next(dee, "message"), fromVisitor.message);

    // Private, both ways.
    const psst = await ack(visitor, "message", { to: name.toLowerCase(), text: "psst" });
    assert.equal(psst.ok, true, JSON.stringify(psst));
    assert.deepEqual(await next(dee, "message"), psst.message);
    const back = await ack(dee, "message", { to: psst.message.from, text: "psst back" });
    assert.deepEqual(await next(visitor, "message"), back.message);
  });

  test("one account on both instances at once: both sockets get its messages", async () => {
    const name = unique("Eve");
    const token = await account(A.url, A.url, name, PASSWORD);
    const sender = await guest(B.url, unique("sender"));
    const onA = await connectWith(A.url, { token });
    await next(onA, "login");
    await nextMatching(sender, "user joined", (u) => u.username === name);
    const onB = await connectWith(B.url, { token });
    await next(onB, "login");
    const { message } = await ack(sender, "message", { to: name, text: "to every tab" });
    assert.deepEqual(await next(onA, "message"), message);
    assert.deepEqual(await next(onB, "message"), message);
    await none(sender, "user joined", 100);
    const { users } = await ack(sender, "users");
    assert.equal(users.filter((u) => u.username === name).length, 1, "online once");
  });

  test("bad tokens are refused with connect_error and announce nobody", async () => {
    const name = unique("Fay");
    const token = await account(A.url, B.url, name, PASSWORD);
    const witness = await guest(A.url, unique("witness"));
    const [head, payload] = token.split(".");
    const claims = JSON.parse(Buffer.from(payload, "base64url"));
    const cases = [
      ["garbage", "nonsense", /^bad_token$/],
      ["empty", "", /^bad_token$/],
      ["truncated signature", token.slice(0, -4), /^bad_token$/],
      ["signed with another secret", sign(claims, "some-other-deployment-secret-000"), /^bad_token$/],
      ["payload tampered", `${head}.${b64({ ...claims, sub: "mallory", name: "mallory" })}.${token.split(".")[2]}`, /^bad_token$/],
      ["expired", sign({ ...claims, iat: now() - 7200, exp: now() - 60 }), /^bad_token$/],
      ["alg none", `${b64('{"alg":"none","typ":"JWT"}')}.${payload}.`, /^bad_token$/],
      ["an account that does not exist", sign({ ...claims, sub: "ghost1", name: "ghost1" }), /^bad_token$/],
      ["not a string", 42, /^invalid_payload$/],
    ];
    for (const [what, bad, pattern] of cases) {
      for (const server of [A, B]) {
        const message = await refusal(server.url, { token: bad });
        assert.match(message, pattern, `${what}: ${message}`);
      }
    }
    await none(witness, "user joined");
    // The genuine token still works.
    const fay = await connectWith(B.url, { token });
    await next(fay, "login");
  });

  test("without a token (or with auth {}) a socket connects as before and must add user", async () => {
    for (const auth of [undefined, {}]) {
      const socket = await connectWith(A.url, auth);
      await none(socket, "login", 100);
      assertError(await ack(socket, "message", { room: "general", text: "hi" }), "not_logged_in");
      assert.equal((await ack(socket, "add user", unique("anon"))).ok, true);
    }
  });

  test("a guest token takes the name back on the other instance while it is free", async () => {
    const name = unique("Gus");
    const gus = await guest(A.url, name);
    const watcher = await guest(A.url, unique("watcher"));
    // A second tab on B while the first is online: same user.
    const tab = await connectWith(B.url, { token: gus.token });
    await next(tab, "login");
    await none(watcher, "user joined", 100);
    gus.close();
    tab.close();
    await nextMatching(watcher, "user left", (u) => u.username === name);
    // Back after a disconnect: the name was free, the token reclaims it.
    const back = await connectWith(B.url, { token: gus.token });
    await next(back, "login");
    await nextMatching(watcher, "user joined", (u) => u.username === name);
    const { message } = await ack(watcher, "message", { to: name, text: "welcome back" });
    assert.deepEqual(await next(back, "message"), message);
  });

  test("a guest token no longer works once the name was registered", async () => {
    const name = unique("Hal");
    const hal = await guest(A.url, name);
    const watcher = await guest(A.url, unique("watcher"));
    hal.close();
    await nextMatching(watcher, "user left", (u) => u.username === name);
    assert.equal((await register(B.url, name, PASSWORD, { from: newAddress() })).status, 201);
    for (const server of [A, B]) assert.match(await refusal(server.url, { token: hal.token }), /^name_registered$/);
    await none(watcher, "user joined");
  });

  test("a guest token whose name another guest took: chat error name_taken, then disconnected", async () => {
    const name = unique("Ivy");
    const ivy = await guest(A.url, name);
    const watcher = await guest(A.url, unique("watcher"));
    ivy.close();
    await nextMatching(watcher, "user left", (u) => u.username === name);
    await guest(A.url, name);
    await nextMatching(watcher, "user joined", (u) => u.username === name);
    const socket = io(B.url, { transports: ["websocket"], forceNew: true, reconnection: false, auth: { token: ivy.token } });
    mine.add(socket);
    const outcome = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("neither refused nor disconnected")), WAIT_MS);
      let error;
      socket.on("chat error", (body) => { error = body; });
      socket.on("connect_error", (err) => { clearTimeout(timer); resolve({ connectError: err.message }); });
      socket.on("disconnect", (reason) => { clearTimeout(timer); resolve({ error, reason }); });
    });
    assert.equal(outcome.error?.code, "name_taken", JSON.stringify(outcome));
    assert.equal(outcome.reason, "io server disconnect");
    // The HTTP API no longer takes it either: the session it proved is over.
    assertHttpError(await request(A.url, "/api/me/avatar", { method: "PUT", body: Buffer.from("x"), token: ivy.token }), 401, "bad_token");
  });
});

describe("guests and registered names", () => {
  test("a guest cannot take a registered name, whatever the case and the instance", async () => {
    const name = unique("Jo");
    assert.equal((await register(A.url, name, PASSWORD, { from: newAddress() })).status, 201);
    for (const server of [A, B]) {
      for (const attempt of [name, name.toUpperCase(), ` ${name.toLowerCase()} `, { username: name }]) {
        const socket = await connect(server.url);
        assertError(await ack(socket, "add user", attempt), "name_registered");
        const other = await ack(socket, "add user", unique("free"));
        assert.equal(other.ok, true, "the socket stays usable");
      }
    }
  });
});

describe("rate limits", () => {
  test("ten failed logins from one address lock it out of the name on every instance, not the owner elsewhere", async () => {
    const name = unique("Kim");
    assert.equal((await register(A.url, name, PASSWORD, { from: newAddress() })).status, 201);
    // The failures come from one address, through both instances.
    const attacker = newAddress();
    for (let i = 0; i < 10; i++) {
      const response = await login(i % 2 ? A.url : B.url, name, `wrong password ${i}`, { from: attacker });
      assertHttpError(response, 401, "bad_credentials");
    }
    for (const server of [A, B]) {
      const locked = await login(server.url, name, PASSWORD, { from: attacker });
      assertHttpError(locked, 429, "rate_limited");
      const wait = Number(locked.headers["retry-after"]);
      assert.ok(wait > 0 && wait <= 15 * 60, `Retry-After: ${locked.headers["retry-after"]}`);
      const owner = await login(server.url, name, PASSWORD, { from: newAddress() });
      assert.equal(owner.status, 200, "the owner, from another address, is not locked out");
    }
  });

  test("one address gets 30 attempts a minute across both instances", async () => {
    const name = unique("Max");
    const from = newAddress();
    // Cheap attempts (a too-short password is refused before any hashing).
    for (let i = 0; i < 30; i++) {
      const response = await login(i % 2 ? A.url : B.url, name, "short", { from });
      assert.equal(response.status, 401, `attempt ${i + 1}: ${response.text}`);
    }
    for (const [server, send] of [[A, login], [B, register], [B, login]]) {
      const limited = await send(server.url, name, PASSWORD, { from });
      assertHttpError(limited, 429, "rate_limited");
      const wait = Number(limited.headers["retry-after"]);
      assert.ok(wait > 0 && wait <= 60, `Retry-After: ${limited.headers["retry-after"]}`);
    }
    // Another address is not affected.
    assert.equal((await register(A.url, name, PASSWORD, { from: newAddress() })).status, 201);
  });
});

describe("avatars", () => {
  const png = (size) => {
    const bytes = Buffer.alloc(size, 0x5a);
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d, 0x49, 0x48, 0x44, 0x52]).copy(bytes);
    return bytes;
  };

  test("an account sets its avatar on A; anyone fetches it on B", async () => {
    const name = unique("Ned");
    const token = await account(A.url, B.url, name, PASSWORD);
    const image = png(4096);
    const put = (body, auth) => request(A.url, "/api/me/avatar", { method: "PUT", body, token: auth, headers: { "content-type": "image/png" } });

    assertHttpError(await request(B.url, `/api/users/${name}/avatar`), 404, "not_found");
    assert.equal((await put(image, token)).status, 204);
    const got = await request(B.url, `/api/users/${name.toLowerCase()}/avatar`);
    assert.equal(got.status, 200);
    assert.equal(got.headers["content-type"], "image/png");
    assert.ok(got.bytes.equals(image), "the same bytes");
    const etag = got.headers.etag;
    assert.ok(etag);
    assert.equal((await request(A.url, `/api/users/${name}/avatar`, { headers: { "if-none-match": etag } })).status, 304);

    assertHttpError(await put(Buffer.from("%PDF-1.7 not an image"), token), 415, "file_type_not_allowed");
    assert.equal((await put(png(1024 * 1024 + 1), token)).status, 413);
    assertHttpError(await put(image, undefined), 401, "missing_token");
    assertHttpError(await put(image, "nonsense"), 401, "bad_token");
    const visitor = await guest(B.url, unique("visitor"));
    assertHttpError(await put(image, visitor.token), 403, "forbidden");
    assertHttpError(await request(B.url, `/api/users/${unique("nobody")}/avatar`), 404, "not_found");
  });
});

describe("with guests disabled (ALLOW_GUESTS=false, one in-memory instance)", () => {
  let closed;
  before(async () => { closed = await startServer({ INSTANCE_NAME: "js-no-guests", ALLOW_GUESTS: "false" }); });
  after(async () => { await closed?.stop(); });

  test("sockets without a token, and guest tokens, are refused", async () => {
    for (const auth of [undefined, {}]) {
      assert.match(await refusal(closed.url, auth), /^guests_disabled$/);
    }
    // A guest token signed with this deployment's secret (tests share one).
    const visitor = await guest(A.url, unique("visitor"));
    assert.match(await refusal(closed.url, { token: visitor.token }), /^guests_disabled$/);
  });

  test("accounts register, log in and chat with tokens", async () => {
    const [a, b] = [unique("Ola"), unique("Pat")];
    const ola = await connectWith(closed.url, { token: await account(closed.url, closed.url, a, PASSWORD) });
    await next(ola, "login");
    const pat = await connectWith(closed.url, { token: await account(closed.url, closed.url, b, PASSWORD) });
    await next(pat, "login");
    assert.equal((await nextMatching(ola, "user joined", (u) => u.username === b)).username, b);
    assertError(await ack(pat, "add user", unique("guest")), "already_logged_in");
    const { message } = await ack(ola, "message", { to: b, text: "members only" });
    assert.deepEqual(await next(pat, "message"), message);
  });
});
