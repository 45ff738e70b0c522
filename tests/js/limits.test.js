// Limits as a Node socket.io server has them, seen by the real
// socket.io-client 4: frames up to the transport cap (Node's
// maxHttpBufferSize, 1,000,000 bytes, raised for files) are read, and
// content over an application limit is answered with its error code while
// the socket stays connected. Only a frame over the cap disconnects.

import { test, describe, before, after, afterEach } from "node:test";
import assert from "node:assert/strict";
import { startServer } from "./lib/server.js";
import { member, ack, next, none, closeAll } from "./lib/client.js";

let server; // default settings
let small; // MAX_FILE_BYTES small enough that the cap is Node's 1,000,000 bytes
before(async () => {
  [server, small] = await Promise.all([
    startServer({ INSTANCE_NAME: "js-limits" }),
    startServer({ INSTANCE_NAME: "js-limits-small", MAX_FILE_BYTES: "65536" }),
  ]);
});
after(async () => { await Promise.all([server?.stop(), small?.stop()]); });
afterEach(() => closeAll());

let counter = 0;
const unique = (prefix) => `${prefix}${++counter}`;

/** Records `socket`'s disconnect reasons. */
function disconnects(socket) {
  const reasons = [];
  socket.on("disconnect", (reason) => reasons.push(reason));
  return reasons;
}

describe("application limits answer; the socket stays", () => {
  test("a 100,000-character message gets text_too_long, and the next one is delivered", async () => {
    const room = unique("room");
    const alice = await member(server.url, unique("alice"), room);
    const bob = await member(server.url, unique("bob"), room);
    const reasons = disconnects(alice);

    const reply = await ack(alice, "message", { room, text: "x".repeat(100_000) });
    assert.equal(reply.ok, false, JSON.stringify(reply));
    assert.equal(reply.error.code, "text_too_long");
    assert.match(reply.error.message, /4000/);

    const { message } = await ack(alice, "message", { room, text: "shorter" });
    assert.equal((await next(bob, "message")).id, message.id, "the next message is delivered");
    assert.equal(alice.connected, true);
    assert.deepEqual(reasons, [], "no disconnect event");
  });

  test("without an ack, the refusal arrives as chat error", async () => {
    const room = unique("room");
    const alice = await member(server.url, unique("alice"), room);
    const bob = await member(server.url, unique("bob"), room);
    const reasons = disconnects(alice);

    alice.emit("message", { room, text: "x".repeat(100_000) });
    assert.equal((await next(alice, "chat error")).code, "text_too_long");
    await none(bob, "message", 100);
    await ack(alice, "message", { room, text: "still here" });
    assert.equal((await next(bob, "message")).text, "still here");
    assert.deepEqual(reasons, []);
  });
});

describe("the transport cap disconnects", () => {
  test("a frame just under 1,000,000 bytes is read; one over it closes the connection", async () => {
    const room = unique("room");
    const alice = await member(small.url, unique("alice"), room);
    const bob = await member(small.url, unique("bob"), room);
    const reasons = disconnects(alice);

    const reply = await ack(alice, "message", { room, text: "x".repeat(999_000) });
    assert.equal(reply.error?.code, "text_too_long", JSON.stringify(reply).slice(0, 200));

    const closed = new Promise((resolve) => alice.once("disconnect", resolve));
    alice.emit("message", { room, text: "x".repeat(1_000_000) });
    // As with Node: the transport is closed, which socket.io-client treats
    // as a connection failure (it reconnects, unlike "io server disconnect").
    assert.equal(await closed, "transport close");
    assert.equal(reasons.length, 1, "disconnected once");
    await none(bob, "message", 100);
  });

  test("MAX_MESSAGE_BYTES, the old name, still sets the cap, with a warning", async () => {
    const old = await startServer({ INSTANCE_NAME: "js-limits-old", MAX_MESSAGE_BYTES: "200000", MAX_FILE_BYTES: "65536" });
    try {
      assert.ok(old.logs.some((line) => /MAX_MESSAGE_BYTES is deprecated/.test(line)), old.logs.join("\n"));
      const room = unique("room");
      const alice = await member(old.url, unique("alice"), room);
      assert.equal((await ack(alice, "message", { room, text: "x".repeat(150_000) })).error?.code, "text_too_long");
      const closed = new Promise((resolve) => alice.once("disconnect", resolve));
      alice.emit("message", { room, text: "x".repeat(250_000) });
      await closed;
    } finally {
      await old.stop();
    }
  });
});
