// Files in messages end to end, with the real socket.io-client: the bytes
// travel as socket.io binary attachments between two instances sharing a
// real Redis, history links to them, and GET /api/files/{id} serves them to
// the conversation's members only. Limits refuse cleanly and leak nothing.

import { test, describe, before, after, afterEach } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { io } from "socket.io-client";
import { startPair } from "./lib/server.js";
import { startRedis } from "./lib/redis.js";
import { connect, ack, next, none, closeAll, WAIT_MS } from "./lib/client.js";
import { MAX_FILE_BYTES } from "./lib/contract.js";
import { request, account } from "./lib/http.js";

let redis;
let A, B; // the two instances sharing Redis

before(async () => {
  redis = await startRedis();
  [A, B] = await startPair("js-files", redis.url, { MAX_FILE_BYTES: String(MAX_FILE_BYTES) });
});
after(async () => {
  await Promise.all([A?.stop(), B?.stop()]);
  await redis?.stop();
});
// Sockets opened with a token, besides those of lib/client.js.
const withTokens = new Set();
afterEach(() => {
  closeAll();
  for (const socket of withTokens) socket.close();
  withTokens.clear();
});

let counter = 0;
const unique = (prefix) => `${prefix}${++counter}`;


/** A guest logged in with `add user`; `socket.token` is its API token. */
async function guest(server, name) {
  const socket = await connect(server.url);
  const reply = await ack(socket, "add user", name);
  assert.equal(reply.ok, true, `add user ${name}: ${JSON.stringify(reply)}`);
  await next(socket, "login").catch((err) => {
    // Say what did arrive, to tell a lost event from a slow one.
    const seen = socket.received.map((r) => r.event);
    throw new Error(`${err.message} after a successful add user ${name} (connected: ${socket.connected}, other events: ${JSON.stringify(seen)})`);
  });
  socket.username = reply.username;
  socket.token = reply.token;
  return socket;
}

/**
 * A socket logged in at connect with `token`, recording events from the
 * first one (its `login` follows the connect packet closely).
 */
async function withToken(server, token) {
  const socket = io(server.url, { transports: ["websocket"], forceNew: true, reconnection: false, autoConnect: false, auth: { token } });
  withTokens.add(socket);
  socket.received = [];
  socket.onAny((event, ...args) => socket.received.push({ event, args }));
  socket.connect();
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("connect timed out")), WAIT_MS);
    socket.once("connect", () => { clearTimeout(timer); resolve(); });
    socket.once("connect_error", (err) => { clearTimeout(timer); reject(err); });
  });
  await next(socket, "login");
  socket.token = token;
  return socket;
}

/** A guest that joined `room`. */
async function member(server, name, room) {
  const socket = await guest(server, name);
  const reply = await ack(socket, "join", { room });
  assert.equal(reply.ok, true, `${name} joining ${room}: ${JSON.stringify(reply)}`);
  return socket;
}

const sha256 = (bytes) => createHash("sha256").update(bytes).digest("hex");

/** `head` followed by random bytes, `size` in all. */
function media(head, size) {
  const prefix = Buffer.from(head);
  return Buffer.concat([prefix, randomBytes(Math.max(0, size - prefix.length))]);
}

// Minimal headers of each accepted kind; the rest of each file is random.
const ascii = (text) => [...Buffer.from(text, "latin1")];
const KINDS = {
  png: { mime: "image/png", name: "photo.png", head: [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d, ...ascii("IHDR")] },
  jpeg: { mime: "image/jpeg", name: "photo.jpg", head: [0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, ...ascii("JFIF"), 0x00] },
  mp3: { mime: "audio/mpeg", name: "song.mp3", head: [...ascii("ID3"), 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00] },
  ogg: { mime: "audio/ogg", name: "voice.ogg", head: [...ascii("OggS"), 0x00, 0x02, ...Array(22).fill(0)] },
  mp4: { mime: "video/mp4", name: "clip.mp4", head: [0x00, 0x00, 0x00, 0x18, ...ascii("ftypisom"), 0x00, 0x00, 0x02, 0x00, ...ascii("isomiso2")] },
  webm: { mime: "video/webm", name: "clip.webm", head: [0x1a, 0x45, 0xdf, 0xa3, 0x9f, 0x42, 0x86, 0x81, 0x01, 0x42, 0x82, 0x84, ...ascii("webm")] },
  pdf: { mime: "application/pdf", name: "paper.pdf", head: ascii("%PDF-1.7\n%\xe2\xe3\xcf\xd3\n") },
};
const make = (kind, size = 4096) => media(KINDS[kind].head, size);
const PNG = (size = 2048) => make("png", size);

/** GET a file's URL on `server` with `token` (undefined: no Authorization). */
const download = (server, url, token) => request(server.url, url, { token });

/** Asserts a live delivery: the metadata of `sent` (the ack's) plus the exact bytes. */
function assertDelivered(got, sent, bytes) {
  const { data, ...file } = got.file;
  assert.ok(Buffer.isBuffer(data), `data arrives as a Buffer, not ${Object.prototype.toString.call(data)}`);
  assert.ok(data.equals(bytes), `the bytes arrive intact (${data.length} of ${bytes.length})`);
  assert.equal(sha256(data), sha256(bytes));
  assert.deepEqual(file, sent.file);
  const { file: _, ...rest } = got;
  const { file: __, ...sentRest } = sent;
  assert.deepEqual(rest, sentRest);
}

/** Asserts that every (server, token) pair downloads exactly `bytes` as `mime`. */
async function assertFetchable(url, readers, bytes, mime) {
  for (const [server, token] of readers) {
    const response = await download(server, url, token);
    assert.equal(response.status, 200, `${server.url}${url}: ${response.text.slice(0, 200)}`);
    assert.equal(response.headers["content-type"], mime);
    assert.ok(response.bytes.equals(bytes), "the download is byte for byte what was sent");
    assert.equal(sha256(response.bytes), sha256(bytes));
  }
}

/** An ack describing a file message: the file without data, and its URL. */
function assertFileAck(reply, { name, mime, size }) {
  assert.equal(reply.ok, true, JSON.stringify(reply));
  const { message } = reply;
  assert.match(message.id, /^[0-9A-HJKMNP-TV-Z]{26}$/);
  assert.deepEqual(message.file, { name, type: mime, size, url: `/api/files/${message.id}` });
  return message;
}

function assertError(reply, code) {
  assert.equal(reply.ok, false, `expected ${code}, got ${JSON.stringify(reply)}`);
  assert.equal(reply.error.code, code, JSON.stringify(reply));
  assert.ok(reply.error.message.length > 0);
}

function assertHttpError(response, status, code) {
  assert.equal(response.status, status, response.text);
  assert.equal(response.json?.error?.code, code, response.text);
}

describe("every accepted kind crosses instances intact", () => {
  for (const [kind, { mime, name }] of Object.entries(KINDS)) {
    test(`${kind} to a room with members on both instances`, async () => {
      const room = unique("room");
      const alice = await member(A, unique("alice"), room);
      const bob = await member(B, unique("bob"), room);
      const carol = await member(A, unique("carol"), room);
      const outsider = await guest(B, unique("zed"));
      const bytes = make(kind, 3000 + Math.floor(Math.random() * 5000));

      const reply = await ack(alice, "message", { room, file: { name, type: mime, data: bytes } });
      const sent = assertFileAck(reply, { name, mime, size: bytes.length });
      assert.equal(sent.text, undefined, "no text was sent");
      assertDelivered(await next(bob, "message"), sent, bytes);
      assertDelivered(await next(carol, "message"), sent, bytes);
      await none(alice, "message", 100);
      await none(outsider, "message", 0);
      await assertFetchable(sent.file.url, [[B, bob.token], [A, carol.token], [A, alice.token], [B, alice.token]], bytes, mime);
    });
  }

  test("the type comes from the bytes, not from the claim", async () => {
    const room = unique("room");
    const alice = await member(A, unique("alice"), room);
    const bob = await member(B, unique("bob"), room);
    const bytes = make("pdf");
    const reply = await ack(alice, "message", { room, file: { name: "cat.png", type: "image/png", data: bytes } });
    const sent = assertFileAck(reply, { name: "cat.png", mime: "application/pdf", size: bytes.length });
    assertDelivered(await next(bob, "message"), sent, bytes);
    await assertFetchable(sent.file.url, [[A, bob.token]], bytes, "application/pdf");
  });

  test("a file of exactly MAX_FILE_BYTES passes", async () => {
    const room = unique("room");
    const alice = await member(A, unique("alice"), room);
    const bob = await member(B, unique("bob"), room);
    const bytes = make("mp4", MAX_FILE_BYTES);
    const reply = await ack(alice, "message", { room, file: { name: "big.mp4", type: "video/mp4", data: bytes } });
    const sent = assertFileAck(reply, { name: "big.mp4", mime: "video/mp4", size: MAX_FILE_BYTES });
    assertDelivered(await next(bob, "message"), sent, bytes);
    await assertFetchable(sent.file.url, [[A, bob.token]], bytes, "video/mp4");
  });
});

describe("private and multicast files", () => {
  test("a private file from A to B: the recipient and the sender's other tab get it, nobody else", async () => {
    const [a, b] = [unique("alice"), unique("bob")];
    const alice = await guest(A, a);
    const bob = await guest(B, b);
    const carol = await guest(B, unique("carol"));
    // Alice's second tab, on the other instance, logged in with her token.
    const tab = await withToken(B, alice.token);
    const bytes = make("jpeg", 6000);

    const reply = await ack(alice, "message", { to: b, text: "a picture for you", file: { name: "me.jpg", type: "image/jpeg", data: bytes } });
    const sent = assertFileAck(reply, { name: "me.jpg", mime: "image/jpeg", size: bytes.length });
    assert.equal(sent.to, b);
    assert.equal(sent.text, "a picture for you");
    assertDelivered(await next(bob, "message"), sent, bytes);
    assertDelivered(await next(tab, "message"), sent, bytes);
    await none(carol, "message", 100);
    await none(alice, "message", 0);

    for (const [socket, other] of [[alice, b], [bob, a]]) {
      const history = await ack(socket, "history", { with: other });
      assert.equal(history.ok, true, JSON.stringify(history));
      assert.deepEqual(history.messages, [sent], "history carries the file by URL, without data");
    }
    await assertFetchable(sent.file.url, [[A, bob.token], [B, bob.token], [A, alice.token], [B, alice.token]], bytes, "image/jpeg");
    for (const server of [A, B]) assertHttpError(await download(server, sent.file.url, carol.token), 403, "forbidden");
  });

  test("a multicast file reaches each chosen user on either instance, with the full list", async () => {
    const [a, b, c] = [unique("alice"), unique("bob"), unique("Carol")];
    const alice = await guest(A, a);
    const bob = await guest(B, b);
    // Carol has an account (registered on B, logged in on A, token used on A).
    const carol = await withToken(A, await account(B.url, A.url, c, "carol's long password"));
    const dave = await guest(B, unique("dave"));
    const bytes = make("webm", 20000);

    const reply = await ack(alice, "message", { to: [b, c], file: { name: "team.webm", type: "video/webm", data: bytes } });
    const sent = assertFileAck(reply, { name: "team.webm", mime: "video/webm", size: bytes.length });
    assert.deepEqual(sent.to, [b, c]);
    assertDelivered(await next(bob, "message"), sent, bytes);
    assertDelivered(await next(carol, "message"), sent, bytes);
    await none(dave, "message", 100);

    const history = await ack(carol, "history", { with: [a, b] });
    assert.deepEqual(history.messages, [sent]);
    await assertFetchable(sent.file.url, [[A, alice.token], [A, bob.token], [B, carol.token]], bytes, "video/webm");
    assertHttpError(await download(A, sent.file.url, dave.token), 403, "forbidden");
  });
});

describe("room files in history and over HTTP", () => {
  test("history links to the file; members fetch it, others may not", async () => {
    const room = unique("room");
    const alice = await member(A, unique("alice"), room);
    const bob = await member(B, unique("bob"), room);
    const eve = await guest(A, unique("eve"));
    const bytes = make("png", 10000);

    const reply = await ack(alice, "message", { room, text: "look at this", file: { name: "../../photos/cat.png", type: "image/png", data: bytes } });
    const sent = assertFileAck(reply, { name: "cat.png", mime: "image/png", size: bytes.length });
    assert.equal(sent.text, "look at this");
    assertDelivered(await next(bob, "message"), sent, bytes);

    for (const socket of [alice, bob]) {
      const history = await ack(socket, "history", { room });
      assert.deepEqual(history.messages, [sent], "history carries the file by URL, without data");
    }
    await assertFetchable(sent.file.url, [[A, alice.token], [B, alice.token], [A, bob.token], [B, bob.token]], bytes, "image/png");

    for (const server of [A, B]) {
      assertHttpError(await download(server, sent.file.url, eve.token), 403, "forbidden");
      assertHttpError(await download(server, sent.file.url, undefined), 401, "missing_token");
      assertHttpError(await download(server, sent.file.url, "not-a-token"), 401, "bad_token");
      assertHttpError(await download(server, "/api/files/01ARZ3NDEKTSV4RRFFQ69G5FAV", bob.token), 404, "not_found");
      assertHttpError(await download(server, "/api/files/not-an-id", bob.token), 404, "not_found");
    }

    // A late joiner sees it in the join history and may fetch it; after leaving, not any more.
    const joined = await ack(eve, "join", { room });
    assert.deepEqual(joined.history, [sent]);
    await assertFetchable(sent.file.url, [[B, eve.token]], bytes, "image/png");
    assert.equal((await ack(eve, "leave", { room })).ok, true);
    assertHttpError(await download(A, sent.file.url, eve.token), 403, "forbidden");

    // A guest's token ends with its session.
    const token = bob.token;
    bob.close();
    while ((await next(alice, "member left")).username !== bob.username);
    for (let i = 0; ; i++) {
      const response = await download(B, sent.file.url, token);
      if (response.status === 401) break;
      assert.ok(i < 50, `the token still works after the guest left: ${response.status}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  });
});

describe("refused files: a clear code, nobody gets anything, the socket keeps chatting", () => {
  /**
   * Sends `payload` (plus the room) from a fresh sender on A, expects
   * `code`; then a plain text, which must be the next thing the members on
   * both instances see (events of one socket are handled in order, so a
   * leaked file would have come first).
   */
  async function refused(payload, code) {
    const room = unique("room");
    const sender = await member(A, unique("sender"), room);
    const onA = await member(A, unique("witness"), room);
    const onB = await member(B, unique("witness"), room);
    assertError(await ack(sender, "message", { room, ...payload }), code);
    assert.equal(sender.connected, true);
    const after = await ack(sender, "message", { room, text: "still here" });
    assert.equal(after.ok, true, JSON.stringify(after));
    for (const witness of [onA, onB]) assert.deepEqual(await next(witness, "message"), after.message);
    const history = await ack(onB, "history", { room });
    assert.deepEqual(history.messages, [after.message], "nothing refused was kept");
  }

  const file = (name, data, type = "image/png") => ({ file: { name, type, data } });

  test("one byte over MAX_FILE_BYTES → file_too_large", () =>
    refused(file("big.png", PNG(MAX_FILE_BYTES + 1)), "file_too_large"));
  test("too large with text → file_too_large, the text is not sent either", () =>
    refused({ text: "see attached", ...file("big.png", PNG(MAX_FILE_BYTES + 1)) }, "file_too_large"));

  const disguised = [
    ["SVG", Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>')],
    ["SVG with an XML declaration", Buffer.from('<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>')],
    ["ZIP", media([0x50, 0x4b, 0x03, 0x04, 0x14, 0x00], 600)],
    ["plain text", Buffer.from("just some text, not a picture\n".repeat(20))],
    ["HTML", Buffer.from("<!DOCTYPE html><html><body><script>alert(1)</script></body></html>")],
    ["a shell script", Buffer.from("#!/bin/sh\nrm -rf /\n")],
    ["a Windows executable", media(ascii("MZ\x90\x00"), 600)],
    ["random bytes", Buffer.concat([Buffer.from([0x00, 0x01, 0x02, 0x03]), randomBytes(500)])],
    ["an empty file", Buffer.alloc(0)],
  ];
  for (const [what, data] of disguised) {
    test(`${what} claiming image/png → file_type_not_allowed`, () =>
      refused(file("cat.png", data), "file_type_not_allowed"));
  }

  const badNames = [
    ["empty", ""],
    ["blank", "   "],
    ["a directory only", "photos/"],
    ["..", ".."],
    ["a path ending in ..", "a/b/.."],
    ["a NUL character", "cat\u0000.png"],
    ["a newline", "cat\n.png"],
    ["a tab", "cat\t.png"],
    ["DEL", "cat\u007f.png"],
    ["a C1 control character", "cat\u0085.png"],
    ["256 characters", `${"a".repeat(252)}.png`],
    ["256 non-ASCII characters", `${"é".repeat(252)}.png`],
  ];
  for (const [what, name] of badNames) {
    test(`a file name with ${what} → invalid_file_name`, () => refused(file(name, PNG()), "invalid_file_name"));
  }

  const malformed = [
    ["data as a base64 string", file("cat.png", PNG().toString("base64"))],
    ["data as a binary string", file("cat.png", PNG().toString("latin1"))],
    ["data as an array of numbers", file("cat.png", [...PNG(64)])],
    ["data missing", { file: { name: "cat.png", type: "image/png" } }],
    ["data null", file("cat.png", null)],
    ["a numeric name", { file: { name: 42, type: "image/png", data: PNG() } }],
    ["no name", { file: { type: "image/png", data: PNG() } }],
    ["file as a string", { file: "cat.png" }],
  ];
  for (const [what, payload] of malformed) {
    test(`${what} → invalid_payload`, () => refused(payload, "invalid_payload"));
  }
});

describe("file names that are accepted", () => {
  test("directories are dropped; 255 characters and Unicode are kept verbatim", async () => {
    const room = unique("room");
    const alice = await member(A, unique("alice"), room);
    const bob = await member(B, unique("bob"), room);
    const cases = [
      ["C:\\Users\\me\\cat.png", "cat.png"],
      ["../../etc/passwd", "passwd"],
      ["  spaced out.png  ", "spaced out.png"],
      [`${"a".repeat(251)}.png`, `${"a".repeat(251)}.png`],
      [`${"é".repeat(251)}.png`, `${"é".repeat(251)}.png`],
      ["猫 🐈.png", "猫 🐈.png"],
    ];
    for (const [given, shown] of cases) {
      const bytes = PNG(200);
      const reply = await ack(alice, "message", { room, file: { name: given, type: "image/png", data: bytes } });
      const sent = assertFileAck(reply, { name: shown, mime: "image/png", size: bytes.length });
      assertDelivered(await next(bob, "message"), sent, bytes);
      const response = await download(A, sent.file.url, bob.token);
      assert.equal(response.status, 200);
      assert.equal(response.headers["content-disposition"], `inline; filename*=UTF-8''${encodeURIComponent(shown).replace(/[!'()*]/g, (ch) => `%${ch.charCodeAt(0).toString(16).toUpperCase()}`)}`);
    }
  });
});

describe("a file frame beyond twice MAX_FILE_BYTES", () => {
  test("closes only the sender's connection and reaches nobody", async () => {
    const room = unique("room");
    const flooder = await member(A, unique("flooder"), room);
    const bystander = await member(B, unique("bystander"), room);
    const closed = new Promise((resolve) => flooder.once("disconnect", resolve));
    flooder.emit("message", { room, file: { name: "huge.png", type: "image/png", data: PNG(2 * MAX_FILE_BYTES + 1024) } });
    await closed;
    const friend = await member(A, unique("friend"), room);
    const { message } = await ack(friend, "message", { room, text: "still fine" });
    for (;;) {
      const got = await next(bystander, "message");
      assert.equal(got.file, undefined, "the oversized file was never delivered");
      if (got.id === message.id) break;
    }
  });
});
