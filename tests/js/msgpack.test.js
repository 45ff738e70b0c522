// PARSER=msgpack with the real socket.io-client 4 and socket.io-msgpack-parser:
// login, chat, rooms, private messages, files, history, presence, avatars
// and error acks, in the embedded mode and across two instances sharing a
// real Redis, and the whole event contract (lib/contract.js) under it too.
// A client on the other parser than the server's is a clear line in the
// server's log, both ways. The web client works under it in Chromium.

import { test, describe, before, after, afterEach } from "node:test";
import assert from "node:assert/strict";
import { io } from "socket.io-client";
import msgpackParser from "socket.io-msgpack-parser";
import { startServer, startPair } from "./lib/server.js";
import { startRedis } from "./lib/redis.js";
import { clientDefaults, connect, ack, next, nextMatching, none, user, member, closeAll, WAIT_MS } from "./lib/client.js";
import { defineContract, MAX_FILE_BYTES } from "./lib/contract.js";
import { request, account } from "./lib/http.js";
import { launch, newPage, joinAsGuest, say, startCspProxy, loadedImageWidth } from "./lib/browser.js";

// Every client of lib/client.js speaks MessagePack in this file.
clientDefaults.parser = msgpackParser;

const MSGPACK = { PARSER: "msgpack", MAX_FILE_BYTES: String(MAX_FILE_BYTES) };
const PASSWORD = "correct horse battery";

let counter = 0;
const unique = (prefix) => `${prefix}${++counter}`;

/** A PNG: its signature and header chunk, then filler. */
function png(size = 2048) {
  const bytes = Buffer.alloc(size, 0x5a);
  Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d, 0x49, 0x48, 0x44, 0x52]).copy(bytes);
  return bytes;
}

function assertError(reply, code) {
  assert.equal(reply.ok, false, `expected ${code}, got ${JSON.stringify(reply)}`);
  assert.equal(reply.error.code, code, JSON.stringify(reply));
  assert.ok(reply.error.message.length > 0);
}

/** Resolves with the first log line of `server` matching `pattern`, within `ms`. */
async function logLine(server, pattern, ms = WAIT_MS) {
  const deadline = Date.now() + ms;
  for (;;) {
    const line = server.logs.find((l) => pattern.test(l));
    if (line) return line;
    if (Date.now() > deadline) throw new Error(`no log line matching ${pattern} within ${ms} ms:\n${server.logs.join("\n")}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const deployments = {
  embedded: async () => {
    const server = await startServer({ ...MSGPACK, INSTANCE_NAME: "js-msgpack" });
    return { servers: [server], stop: () => server.stop() };
  },
  "two instances on Redis": async () => {
    const redis = await startRedis();
    const servers = await startPair("js-msgpack", redis.url, MSGPACK);
    return {
      servers,
      async stop() {
        await Promise.all(servers.map((server) => server.stop()));
        await redis.stop();
      },
    };
  },
};

for (const [mode, start] of Object.entries(deployments)) {
  describe(`PARSER=msgpack, ${mode}`, () => {
    let deployment;
    let turn = 0;
    // Consecutive clients land on alternate instances.
    const url = () => deployment.servers[turn++ % deployment.servers.length].url;
    before(async () => { deployment = await start(); });
    after(async () => { await deployment?.stop(); });
    afterEach(() => closeAll());

    test("two clients log in, chat and type", async () => {
      const a = unique("alice"), b = unique("bob");
      const alice = await user(url(), a);
      const bob = await user(url(), b);
      assert.equal((await next(alice, "user joined")).username, b);
      alice.emit("new message", "hello in MessagePack");
      assert.deepEqual(await next(bob, "new message"), { username: a, message: "hello in MessagePack" });
      alice.emit("typing");
      assert.deepEqual(await next(bob, "typing"), { username: a });
      const online = await ack(bob, "users");
      assert.ok([a, b].every((name) => online.users.some((u) => u.username === name)), JSON.stringify(online));
      alice.close();
      assert.equal((await nextMatching(bob, "user left", (u) => u.username === a)).username, a);
    });

    test("a room: join, members, a message to its members only", async () => {
      const room = unique("room"), a = unique("alice"), b = unique("bob");
      const alice = await member(url(), a, room);
      const outsider = await user(url(), unique("zed"));
      const bob = await user(url(), b);
      const joined = await ack(bob, "join", { room });
      assert.deepEqual(joined.members, [a, b].sort());
      assert.deepEqual(await next(alice, "member joined"), { room, username: b });
      const { message } = await ack(alice, "message", { room, text: "hi room" });
      assert.deepEqual(await next(bob, "message"), message);
      await none(outsider, "message");
    });

    test("a private message reaches only its recipient; a multicast each one", async () => {
      const a = unique("alice"), b = unique("bob"), c = unique("carol");
      const alice = await user(url(), a);
      const bob = await user(url(), b);
      const carol = await user(url(), c);
      const { message } = await ack(alice, "message", { to: b, text: "psst" });
      assert.equal(message.to, b);
      assert.deepEqual(await next(bob, "message"), message);
      await none(carol, "message");
      const team = (await ack(alice, "message", { to: [b, c], text: "team" })).message;
      assert.deepEqual(await next(bob, "message"), team);
      assert.deepEqual(await next(carol, "message"), team);
    });

    test("files travel as binary, from a Node Buffer and from a typed array as a browser sends", async () => {
      const room = unique("room");
      const alice = await member(url(), unique("alice"), room);
      const bob = await member(url(), unique("bob"), room);
      // socket.io-msgpack-parser writes a Buffer as MessagePack bin, and an
      // ArrayBuffer or typed array (all a browser has) as an extension.
      for (const [kind, data] of [["Buffer", png(3000)], ["Uint8Array", new Uint8Array(png(5000))]]) {
        const reply = await ack(alice, "message", { room, text: kind, file: { name: "cat.png", type: "image/png", data } });
        assert.equal(reply.ok, true, `${kind}: ${JSON.stringify(reply)}`);
        assert.deepEqual(reply.message.file, { name: "cat.png", type: "image/png", size: data.length, url: `/api/files/${reply.message.id}` });
        const got = await next(bob, "message");
        assert.equal(got.text, kind);
        assert.ok(Buffer.isBuffer(got.file.data), `${kind}: data arrives as bytes`);
        assert.ok(got.file.data.equals(Buffer.from(data)), `${kind}: the bytes arrive intact`);
      }
      const tooBig = await ack(alice, "message", { room, file: { name: "big.png", type: "image/png", data: png(MAX_FILE_BYTES + 1) } });
      assertError(tooBig, "file_too_large");
      assert.ok(alice.connected, "a file a little over the limit is answered, not disconnected");
    });

    test("history returns what was said, files as links; undefined fields count as left out", async () => {
      const room = unique("room");
      const alice = await member(url(), unique("alice"), room);
      await ack(alice, "message", { room, text: "first" });
      await ack(alice, "message", { room, text: "second", file: { name: "a.png", data: png() } });
      const bob = await member(url(), unique("bob"), room);
      // JavaScript's undefined is a MessagePack extension here, where JSON leaves the field out.
      const reply = await ack(bob, "history", { room, before: undefined, limit: undefined });
      assert.equal(reply.ok, true, JSON.stringify(reply));
      assert.deepEqual(reply.messages.map((m) => m.text), ["first", "second"]);
      assert.match(reply.messages[1].file.url, /^\/api\/files\//);
      assert.equal(reply.messages[1].file.data, undefined, "history carries links, not bytes");
      const after = await ack(bob, "history", { room, after: reply.messages[0].id });
      assert.deepEqual(after.messages.map((m) => m.text), ["second"]);
    });

    test("refusals: an error ack, or a chat error event without an ack; the socket stays", async () => {
      const alice = await user(url(), unique("alice"));
      assertError(await ack(alice, "join", { room: "" }), "invalid_room");
      assertError(await ack(alice, "join", 5), "invalid_payload");
      assertError(await ack(alice, "history", { room: "general", limit: "ten" }), "invalid_payload");
      alice.emit("message", { to: [], text: "hi" });
      assert.equal((await next(alice, "chat error")).code, "invalid_payload");
      assert.equal((await ack(alice, "join", { room: unique("room") })).ok, true);
    });

    test("a binary in any event but message disconnects, as with the default parser", async () => {
      const alice = await user(url(), unique("alice"));
      const closed = new Promise((resolve) => alice.once("disconnect", resolve));
      alice.emit("typing", { room: "general", junk: Buffer.from([1, 2, 3]) });
      assert.equal(await closed, "io server disconnect");
    });

    test("an account logs in with its token in auth, and hears of avatar changes", async () => {
      const name = unique("Ada");
      const server = url();
      const token = await account(server, server, name, PASSWORD);
      const ada = io(server, { transports: ["websocket"], forceNew: true, reconnection: false, parser: msgpackParser, auth: { token } });
      try {
        const login = new Promise((resolve, reject) => {
          ada.once("login", resolve);
          ada.once("connect_error", reject);
        });
        assert.equal(typeof (await login).numUsers, "number");
        const bob = await user(url(), unique("bob"));
        const put = await request(server, "/api/me/avatar", { method: "PUT", body: png(), token, headers: { "content-type": "image/png" } });
        assert.equal(put.status, 204, put.text);
        assert.deepEqual(await next(bob, "avatar changed"), { username: name });
      } finally {
        ada.close();
      }
    });

    test("a bad token is refused with connect_error", async () => {
      const socket = io(url(), { transports: ["websocket"], forceNew: true, reconnection: false, parser: msgpackParser, auth: { token: "not-a-token" } });
      try {
        const err = await new Promise((resolve) => socket.once("connect_error", resolve));
        assert.ok(err.message.length > 0);
        assert.equal(socket.connected, false);
      } finally {
        socket.close();
      }
    });

    test("auth with an undefined token is a guest, as in JSON where it is left out", async () => {
      const socket = await connect(url(), { auth: { token: undefined } });
      assert.equal((await ack(socket, "add user", unique("guest"))).ok, true);
    });

    defineContract(url);
  });
}

describe("a client on another parser than the server's", () => {
  let server;
  afterEach(async () => {
    closeAll();
    await server?.stop();
  });

  /** Opens a reconnecting client with `parser`; it must never connect. */
  function stubborn(parser) {
    const socket = io(server.url, { transports: ["websocket"], forceNew: true, parser, reconnectionDelay: 50, reconnectionDelayMax: 100 });
    socket.on("connect", () => assert.fail("connected with the wrong parser"));
    return socket;
  }

  test("socket.io-msgpack-parser on a default server: a warning names the setting", async () => {
    server = await startServer({});
    const socket = stubborn(msgpackParser);
    try {
      const line = await logLine(server, /cannot decode/);
      assert.match(line, /WARN/);
      assert.match(line, /PARSER=common cannot decode/);
      assert.match(line, /socket\.io-msgpack-parser needs PARSER=msgpack/);
    } finally {
      socket.close();
    }
  });

  test("the default parser on a PARSER=msgpack server: a warning, once for a reconnect loop", async () => {
    server = await startServer({ PARSER: "msgpack" });
    const socket = stubborn(undefined);
    try {
      assert.match(await logLine(server, /cannot decode/), /PARSER=msgpack cannot decode/);
      const deadline = Date.now() + WAIT_MS;
      const closes = async () => Number((await fetch(`${server.url}/metrics`).then((r) => r.text())).match(/^chatwire_undecodable_packets_total (\d+)$/m)[1]);
      while ((await closes()) < 3) {
        assert.ok(Date.now() < deadline, "the client keeps trying");
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      assert.equal(server.logs.filter((l) => /cannot decode/.test(l)).length, 1, "one warning, not one per attempt");
    } finally {
      socket.close();
    }
  });
});

describe("the web client on a PARSER=msgpack server, in Chromium", () => {
  // A 1×1 PNG.
  const PIXEL = Buffer.from("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==", "base64");
  let browser, server, site;
  before(async () => {
    browser = await launch();
    server = await startServer({ PARSER: "msgpack", INSTANCE_NAME: "js-msgpack-browser" });
    site = await startCspProxy(server.port);
  });
  after(async () => {
    await site?.close();
    await server?.stop();
    await browser?.close();
  });

  test("the page loads the msgpack build; two people chat and share a picture", async () => {
    const alice = await newPage(browser);
    const bob = await newPage(browser);
    await joinAsGuest(alice, site.url, "alice");
    await joinAsGuest(bob, site.url, "bob");
    assert.equal(await alice.locator('script[src="/socket.io/socket.io.msgpack.min.js"]').count(), 1);

    await say(alice, "hello from the msgpack page");
    await bob.locator("#messages .message .text", { hasText: "hello from the msgpack page" }).waitFor();

    await alice.setInputFiles("#file-input", { name: "pixel.png", mimeType: "image/png", buffer: PIXEL });
    await alice.locator("#attachment-name", { hasText: "pixel.png" }).waitFor();
    await say(alice, "a picture");
    const picture = bob.locator("#messages .message").filter({ hasText: "a picture" }).locator(".file img");
    assert.equal(await loadedImageWidth(picture), 1, "the bytes arrived and show");
    assert.deepEqual([...alice.errors, ...bob.errors], [], "no page error, no policy violation");
    assert.equal(server.logs.filter((l) => /cannot decode/.test(l)).length, 0);
  });
});
