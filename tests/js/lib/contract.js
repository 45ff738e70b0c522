// The event contract (docs/PROTOCOL.md) as the real socket.io-client sees it.
// Defined once, run against one instance (contract.test.js) and against two
// instances sharing Redis (contract-cluster.test.js), where consecutive
// clients land on alternate instances.

import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { connect, ack, next, nextMatching, none, user, member } from "./client.js";

/** The file limit the contract suites run servers with (MAX_FILE_BYTES). */
export const MAX_FILE_BYTES = 1024 * 1024;

/** Registers every contract test; `url()` says where the next client connects. */
export function defineContract(url) {
  // Every test uses its own names and rooms, so tests sharing a server never interfere.
  let counter = 0;
  const unique = (prefix) => `${prefix}${++counter}`;

  function assertError(reply, code) {
    assert.equal(reply.ok, false, `expected error ${code}, got ${JSON.stringify(reply)}`);
    assert.equal(reply.error.code, code, JSON.stringify(reply));
    assert.equal(typeof reply.error.message, "string");
    assert.ok(reply.error.message.length > 0);
  }

  describe("socket.io chat demo compatibility", () => {
    test("add user → login to the newcomer, user joined to the others", async () => {
      const a = unique("alice"), b = unique("bob");
      const alice = await user(url(), a);
      const bob = await connect(url());
      bob.emit("add user", b);
      const login = await next(bob, "login");
      assert.equal(typeof login.numUsers, "number");
      const joined = await next(alice, "user joined");
      assert.deepEqual(joined, { username: b, numUsers: login.numUsers });
    });

    test("new message reaches everyone but the sender", async () => {
      const name = unique("alice");
      const alice = await user(url(), name);
      const bob = await user(url(), unique("bob"));
      alice.emit("new message", "hello from the demo");
      assert.deepEqual(await next(bob, "new message"), { username: name, message: "hello from the demo" });
      await none(alice, "new message");
    });

    test("typing and stop typing carry the username", async () => {
      const name = unique("alice");
      const alice = await user(url(), name);
      const bob = await user(url(), unique("bob"));
      alice.emit("typing");
      assert.deepEqual(await next(bob, "typing"), { username: name });
      alice.emit("stop typing");
      assert.deepEqual(await next(bob, "stop typing"), { username: name });
    });

    test("disconnect → user left with the new count", async () => {
      const alice = await user(url(), unique("alice"));
      const name = unique("bob");
      const bob = await user(url(), name);
      const { numUsers } = await ack(alice, "users");
      bob.close();
      const left = await nextMatching(alice, "user left", (u) => u.username === name);
      assert.deepEqual(left, { username: name, numUsers: numUsers - 1 });
    });

    test("an event before add user is refused, never broadcast", async () => {
      const bob = await user(url(), unique("bob"));
      const anonymous = await connect(url());
      anonymous.emit("new message", "who am I?");
      assert.equal((await next(anonymous, "chat error")).code, "not_logged_in");
      await none(bob, "new message");
    });
  });

  describe("login", () => {
    test("the ack carries the name, the count and a session secret", async () => {
      const socket = await connect(url());
      const name = unique("Alice");
      const reply = await ack(socket, "add user", `  ${name}  `);
      assert.equal(reply.ok, true);
      assert.equal(reply.username, name);
      assert.equal(typeof reply.numUsers, "number");
      assert.match(reply.session, /^[0-9a-f]{32}$/);
    });

    test("names are unique among online users, whatever the case", async () => {
      const name = unique("carol");
      await user(url(), name);
      const other = await connect(url());
      assertError(await ack(other, "add user", name.toUpperCase()), "name_taken");
    });

    test("the session secret takes the name back after a reconnect", async () => {
      const name = unique("dave");
      const first = await connect(url());
      const { session } = await ack(first, "add user", name);
      const second = await connect(url());
      const reply = await ack(second, "add user", { username: name, session });
      assert.equal(reply.ok, true, JSON.stringify(reply));
      assert.equal(reply.username, name);
    });

    test("users lists who is online, and is pushed when it changes", async () => {
      const a = unique("erin"), b = unique("frank");
      const erin = await user(url(), a);
      const reply = await ack(erin, "users");
      assert.equal(reply.ok, true);
      assert.ok(reply.users.some((u) => u.username === a));
      assert.equal(reply.numUsers, reply.users.length);
      await user(url(), b);
      for (;;) {
        const pushed = await next(erin, "users");
        if (pushed.users.some((u) => u.username === b)) break;
      }
    });
  });

  describe("rooms", () => {
    test("join → members and history; member joined to the others", async () => {
      const room = unique("room"), a = unique("alice"), b = unique("bob");
      const alice = await member(url(), a, room);
      await ack(alice, "message", { room, text: "before bob" });
      const bob = await user(url(), b);
      const reply = await ack(bob, "join", { room });
      assert.equal(reply.ok, true);
      assert.equal(reply.room, room);
      assert.deepEqual(reply.members, [a, b].sort());
      assert.deepEqual(reply.history.map((m) => m.text), ["before bob"]);
      assert.deepEqual(await next(alice, "member joined"), { room, username: b });
    });

    test("leave → member left; rooms lists rooms and members", async () => {
      const room = unique("room"), a = unique("alice"), b = unique("bob");
      const alice = await member(url(), a, room);
      const bob = await member(url(), b, room);
      const rooms = await ack(alice, "rooms");
      assert.equal(rooms.ok, true);
      assert.deepEqual(rooms.rooms.find((r) => r.room === room), { room, members: [a, b].sort() });
      assert.deepEqual(await ack(bob, "leave", { room }), { ok: true, room });
      assert.deepEqual(await next(alice, "member left"), { room, username: b });
    });
  });

  describe("messages", () => {
    test("a room message reaches the members but not the sender or outsiders", async () => {
      const room = unique("room"), a = unique("alice");
      const alice = await member(url(), a, room);
      const bob = await member(url(), unique("bob"), room);
      const outsider = await user(url(), unique("zed"));
      const reply = await ack(alice, "message", { room, text: "hi room" });
      assert.equal(reply.ok, true);
      const m = reply.message;
      assert.match(m.id, /^[0-9A-HJKMNP-TV-Z]{26}$/);
      assert.equal(typeof m.ts, "number");
      assert.deepEqual({ from: m.from, room: m.room, text: m.text }, { from: a, room, text: "hi room" });
      assert.deepEqual(await next(bob, "message"), m);
      await none(alice, "message");
      await none(outsider, "message", 10);
    });

    test("a private message reaches only the recipient", async () => {
      const a = unique("alice"), b = unique("bob");
      const alice = await user(url(), a);
      const bob = await user(url(), b);
      const carol = await user(url(), unique("carol"));
      const { message } = await ack(alice, "message", { to: b, text: "psst" });
      assert.equal(message.to, b);
      assert.deepEqual(await next(bob, "message"), message);
      await none(carol, "message");
    });

    test("a multicast reaches each chosen user with the full list", async () => {
      const [a, b, c] = [unique("alice"), unique("bob"), unique("carol")];
      const alice = await user(url(), a);
      const bob = await user(url(), b);
      const carol = await user(url(), c);
      const dave = await user(url(), unique("dave"));
      const { message } = await ack(alice, "message", { to: [b, c], text: "team" });
      assert.deepEqual(message.to, [b, c]);
      assert.deepEqual(await next(bob, "message"), message);
      assert.deepEqual(await next(carol, "message"), message);
      await none(dave, "message");
    });

    test("history with after returns exactly what was missed", async () => {
      const room = unique("room");
      const alice = await member(url(), unique("alice"), room);
      const bob = await member(url(), unique("bob"), room);
      const seen = (await ack(alice, "message", { room, text: "seen" })).message;
      await next(bob, "message");
      bob.close();
      for (const text of ["missed 1", "missed 2"]) await ack(alice, "message", { room, text });
      const back = await member(url(), unique("bob"), room);
      const reply = await ack(back, "history", { room, after: seen.id });
      assert.equal(reply.ok, true);
      assert.deepEqual(reply.messages.map((m) => m.text), ["missed 1", "missed 2"]);
    });

    test("private history is shared by the participants", async () => {
      const a = unique("alice"), b = unique("bob");
      const alice = await user(url(), a);
      const bob = await user(url(), b);
      await ack(alice, "message", { to: b, text: "one" });
      await ack(bob, "message", { to: a, text: "two" });
      const mine = await ack(alice, "history", { with: b });
      const theirs = await ack(bob, "history", { with: a });
      assert.deepEqual(mine.messages.map((m) => m.text), ["one", "two"]);
      assert.deepEqual(theirs.messages, mine.messages);
    });
  });

  describe("bad input is refused with a clear code and costs nothing else", () => {
    const cases = [
      // [description, event, payload, expected code]
      ["add user: empty name", "add user", "", "invalid_username"],
      ["add user: blank name", "add user", "   ", "invalid_username"],
      ["add user: 33 characters", "add user", "x".repeat(33), "invalid_username"],
      ["add user: control character", "add user", "a\nb", "invalid_username"],
      ["add user: number", "add user", 42, "invalid_payload"],
      ["add user: null", "add user", null, "invalid_payload"],
      ["add user: array", "add user", ["alice"], "invalid_payload"],
      ["add user: object without username", "add user", { name: "x" }, "invalid_payload"],
      ["add user: malformed session", "add user", { username: "x", session: "nope" }, "invalid_payload"],
    ];
    for (const [description, event, payload, code] of cases) {
      test(description, async () => {
        const socket = await connect(url());
        assertError(await ack(socket, event, payload), code);
        assert.equal((await ack(socket, "add user", unique("ok"))).ok, true, "the socket stays usable");
      });
    }

    const loggedIn = [
      ["join: no argument", "join", undefined, "invalid_payload"],
      ["join: number", "join", 5, "invalid_payload"],
      ["join: missing room", "join", {}, "invalid_payload"],
      ["join: room of wrong type", "join", { room: ["a"] }, "invalid_payload"],
      ["join: empty room", "join", { room: "" }, "invalid_room"],
      ["join: 65-character room", "join", { room: "r".repeat(65) }, "invalid_room"],
      ["join: control character in room", "join", { room: "a\u0000b" }, "invalid_room"],
      ["leave: a room not joined", "leave", { room: "never-joined" }, "not_in_room"],
      ["message: no target", "message", { text: "hi" }, "invalid_payload"],
      ["message: both room and to", "message", { room: "general", to: "x", text: "hi" }, "invalid_payload"],
      ["message: no text", "message", { room: "general" }, "invalid_payload"],
      ["message: empty text", "message", { room: "general", text: "" }, "invalid_text"],
      ["message: blank text", "message", { room: "general", text: " \n\t " }, "invalid_text"],
      ["message: 4001 characters", "message", { room: "general", text: "x".repeat(4001) }, "text_too_long"],
      ["message: text of wrong type", "message", { room: "general", text: { html: "<b>" } }, "invalid_payload"],
      ["message: a room not joined", "message", { room: "elsewhere", text: "hi" }, "not_in_room"],
      ["message: unknown user", "message", { to: "nobody-online", text: "hi" }, "unknown_user"],
      ["message: invalid recipient name", "message", { to: "", text: "hi" }, "invalid_username"],
      ["message: empty recipient list", "message", { to: [], text: "hi" }, "invalid_payload"],
      ["message: recipient list of numbers", "message", { to: [1, 2], text: "hi" }, "invalid_payload"],
      ["message: 51 recipients", "message", { to: Array.from({ length: 51 }, (_, i) => `u${i}`), text: "hi" }, "too_many_recipients"],
      ["message: a string", "message", "hello", "invalid_payload"],
      ["history: no conversation", "history", {}, "invalid_payload"],
      ["history: bad cursor", "history", { room: "general", after: "not-an-id" }, "invalid_payload"],
      ["history: limit 0", "history", { room: "general", limit: 0 }, "invalid_payload"],
      ["history: limit too large", "history", { room: "general", limit: 100000 }, "invalid_payload"],
      ["history: limit of wrong type", "history", { room: "general", limit: "ten" }, "invalid_payload"],
      ["history: a room not joined", "history", { room: "elsewhere" }, "not_in_room"],
      ["typing: unknown user", "typing", { to: "nobody-online" }, "unknown_user"],
      ["typing: wrong type", "typing", 17, "invalid_payload"],
      ["new message: empty", "new message", "", "invalid_text"],
      ["new message: not a string", "new message", { text: "hi" }, "invalid_payload"],
    ];
    for (const [description, event, payload, code] of loggedIn) {
      test(description, async () => {
        const room = unique("room");
        const socket = await member(url(), unique("tester"), "general");
        const witness = await member(url(), unique("witness"), "general");
        const reply = payload === undefined ? await ack(socket, event) : await ack(socket, event, payload);
        assertError(reply, code);
        await none(witness, "message", 50);
        await none(witness, "new message", 0);
        // The socket still works.
        assert.equal((await ack(socket, "join", { room })).ok, true);
      });
    }

    test("without an ack, a refusal arrives as a chat error event", async () => {
      const socket = await user(url(), unique("tester"));
      socket.emit("message", { to: [], text: "hi" });
      const error = await next(socket, "chat error");
      assert.equal(error.code, "invalid_payload");
      assert.equal(typeof error.message, "string");
    });

    test("an oversized websocket message closes only that connection", async () => {
      const room = unique("room");
      const bystander = await member(url(), unique("bystander"), room);
      const flooder = await member(url(), unique("flooder"), room);
      const closed = new Promise((resolve) => flooder.once("disconnect", resolve));
      flooder.emit("message", { room, text: "x".repeat(3 * MAX_FILE_BYTES) });
      await closed;
      const friend = await member(url(), unique("friend"), room);
      await ack(friend, "message", { room, text: "still here" });
      for (;;) {
        const m = await next(bystander, "message");
        assert.notEqual(m.text?.length, 3 * MAX_FILE_BYTES, "the oversized message was never delivered");
        if (m.text === "still here") break;
      }
    });
  });
}
