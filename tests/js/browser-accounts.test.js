// Accounts, files and avatars in headless Chromium, over two instances that
// share a real Redis: alice registers in a page on one instance, bob logs in
// on the other; they chat in a room, share an image, write privately, and
// alice sets a picture that bob sees. Pages run under the CSP the server is
// to send. A reload keeps alice logged in; "Log out" does not.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { deflateSync } from "node:zlib";
import path from "node:path";
import { startServer, repoRoot } from "./lib/server.js";
import { startRedis } from "./lib/redis.js";
import { eventually } from "./lib/client.js";
import {
  launch, newPage, startCspProxy, startProxy, registerInPage, logInInPage, joinAsGuest, chatReady, say, loadedImageWidth,
} from "./lib/browser.js";

const ARTIFACTS = path.join(repoRoot, "tests", "js", "artifacts");
const PASSWORD = "correct horse battery";
const TEST_TIMEOUT_MS = 90000;

let redis;
let browser;
const servers = [];
const sites = [];  // each instance behind a proxy that adds the CSP header

before(async () => {
  redis = await startRedis();
  for (const name of ["js-browser-a", "js-browser-b"]) {
    const server = await startServer({ REDIS_URL: redis.url, INSTANCE_NAME: name });
    servers.push(server);
    await waitUntilReady(server.url);
    sites.push(await startCspProxy(server.port));
  }
  browser = await launch();
});

after(async () => {
  await browser?.close();
  for (const site of sites) await site.close();
  for (const server of servers) await server.stop();
  await redis?.stop();
});

async function waitUntilReady(url, timeoutMs = 15000) {
  const deadline = Date.now() + timeoutMs;
  while ((await fetch(`${url}/readyz`).then((r) => r.status, () => 0)) !== 200) {
    if (Date.now() > deadline) throw new Error(`${url} never became ready`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

// ---- a small valid PNG, made here ----

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes) {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type, data) {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, "ascii"), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([length, body, crc]);
}

/** A `width` × `height` PNG of one RGB colour. */
function png(width, height, [r, g, b]) {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.set([8, 2, 0, 0, 0], 8); // 8-bit RGB, no interlace
  const row = Buffer.concat([Buffer.from([0]), Buffer.from(Array.from({ length: width }, () => [r, g, b]).flat())]);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", header),
    chunk("IDAT", deflateSync(Buffer.concat(Array.from({ length: height }, () => row)))),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}

/** A short silent WAV (8 kHz, 8-bit mono). */
function wav(samples = 800) {
  const header = Buffer.alloc(44);
  header.write("RIFF", 0, "ascii");
  header.writeUInt32LE(36 + samples, 4);
  header.write("WAVEfmt ", 8, "ascii");
  header.writeUInt32LE(16, 16);      // fmt chunk size
  header.writeUInt16LE(1, 20);       // PCM
  header.writeUInt16LE(1, 22);       // mono
  header.writeUInt32LE(8000, 24);    // sample rate
  header.writeUInt32LE(8000, 28);    // byte rate
  header.writeUInt16LE(1, 32);       // block align
  header.writeUInt16LE(8, 34);       // bits per sample
  header.write("data", 36, "ascii");
  header.writeUInt32LE(samples, 40);
  return Buffer.concat([header, Buffer.alloc(samples, 128)]);
}

// ---- helpers ----

const messages = (page) => page.locator("#messages .message");
const inUserList = (page, name) => page.locator("#user-list button", { hasText: name });

async function joinRoom(page, room) {
  await page.fill("#new-room-name", room);
  await page.press("#new-room-name", "Enter");
  await page.locator("#conversation-title", { hasText: `#${room}` }).waitFor();
}

async function registerThroughApi(url, username, password) {
  const response = await fetch(`${url}/api/register`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ username, password }),
    signal: AbortSignal.timeout(10000),
  });
  assert.equal(response.status, 201, `registering ${username}: ${await response.text()}`);
}

// ---- tests ----

test("accounts on two instances: chat, an image, a private message, an avatar; reload and log out", { timeout: TEST_TIMEOUT_MS }, async () => {
  const alice = await newPage(browser);
  const bob = await newPage(browser);
  // Bob's clock can be run ahead (below), and his checks of alice's avatar
  // are watched, so the test waits for them instead of for the time they take.
  await bob.clock.install();
  let aliceAvatarChecks = 0;
  const isAliceAvatar = (request) => request.url().endsWith("/api/users/alice/avatar");
  bob.on("request", (request) => { if (isAliceAvatar(request)) aliceAvatarChecks++; });
  const checkEnded = (request) => { if (isAliceAvatar(request)) aliceAvatarChecks--; };
  bob.on("requestfinished", checkEnded);
  bob.on("requestfailed", checkEnded);

  // alice registers in the page (on instance 1); bob's account is made
  // through the API and he logs in with the form (on instance 2).
  await registerInPage(alice, sites[0].url, "alice", PASSWORD);
  await alice.locator("#me-name", { hasText: "alice" }).waitFor();
  await registerThroughApi(servers[1].url, "bob", PASSWORD);
  await logInInPage(bob, sites[1].url, "bob", PASSWORD);
  await bob.locator("#me-name", { hasText: "bob" }).waitFor();
  assert.equal(await bob.locator("#me-kind").textContent(), "", "an account is not labelled guest");

  // Both join #team and talk.
  await joinRoom(alice, "team");
  await joinRoom(bob, "team");
  await alice.locator("#messages .notice", { hasText: "bob joined #team" }).waitFor();
  await say(alice, "hello bob");
  await bob.locator("#messages .message .text", { hasText: "hello bob" }).waitFor();
  await say(bob, "hi alice");
  await alice.locator("#messages .message .text", { hasText: "hi alice" }).waitFor();

  // alice attaches a file, removes it, attaches the image, and sends it.
  const picture = png(32, 24, [30, 120, 220]);
  await alice.setInputFiles("#file-input", { name: "wrong.png", mimeType: "image/png", buffer: picture });
  await alice.locator("#attachment-name", { hasText: "wrong.png" }).waitFor();
  await alice.click("#attachment-remove");
  await alice.locator("#attachment").waitFor({ state: "hidden" });
  await alice.setInputFiles("#file-input", { name: "blue.png", mimeType: "image/png", buffer: picture });
  await alice.locator("#attachment-name", { hasText: "blue.png" }).waitFor();
  await alice.fill("#composer-input", "a picture");
  await alice.press("#composer-input", "Enter");
  await alice.locator("#attachment").waitFor({ state: "hidden" });

  // bob sees it inline (from the bytes that came with the message).
  const bobsImage = messages(bob).filter({ hasText: "a picture" }).locator(".file img");
  assert.equal(await loadedImageWidth(bobsImage), 32);
  assert.equal(await bobsImage.getAttribute("alt"), "blue.png");
  assert.match(await bobsImage.getAttribute("src"), /^blob:/);
  assert.equal(await loadedImageWidth(messages(alice).filter({ hasText: "a picture" }).locator(".file img")), 32);

  // A sound gets a player, a PDF a download link.
  await alice.setInputFiles("#file-input", { name: "beep.wav", mimeType: "audio/wav", buffer: wav() });
  await alice.click("#send-button");
  const player = messages(bob).filter({ hasText: "beep.wav" }).locator(".file audio");
  await player.waitFor();
  assert.equal(await player.getAttribute("controls"), "");
  await bob.waitForFunction((audio) => audio.readyState >= 1 && audio.duration > 0, await player.elementHandle(), { timeout: 10000 });
  await alice.setInputFiles("#file-input", { name: "notes.pdf", mimeType: "application/pdf", buffer: Buffer.from("%PDF-1.4\n%%EOF\n") });
  await alice.click("#send-button");
  const link = messages(bob).filter({ hasText: "notes.pdf" }).locator("a.file-link");
  await link.waitFor();
  assert.equal(await link.getAttribute("download"), "notes.pdf");
  assert.match(await link.getAttribute("href"), /^blob:/);

  // A private message: bob sees a badge on alice until he opens it.
  await inUserList(alice, "bob").click();
  await alice.locator("#conversation-title", { hasText: "bob" }).waitFor();
  await say(alice, "just between us");
  const thread = bob.locator("#dm-list button", { hasText: "alice" });
  assert.equal(await thread.locator(".unread").textContent(), "1");
  assert.equal(await inUserList(bob, "alice").locator(".unread").textContent(), "1");
  await thread.click();
  await bob.locator("#messages .message .text", { hasText: "just between us" }).waitFor();
  await thread.locator(".unread").waitFor({ state: "detached" });

  // Avatar errors are shown: too large (checked in the page), and not an image (refused by the server).
  await alice.setInputFiles("#avatar-input", { name: "huge.png", mimeType: "image/png", buffer: Buffer.alloc(1024 * 1024 + 1) });
  await alice.locator("#chat-error", { hasText: "at most" }).waitFor();
  await alice.setInputFiles("#avatar-input", { name: "fake.png", mimeType: "image/png", buffer: Buffer.from("%PDF-1.7\nnot a picture") });
  await alice.locator("#chat-error", { hasText: "application/pdf" }).waitFor();

  // alice sets a picture; bob sees it in the online list at once (the
  // server announces the change; bob is on the other instance), and beside
  // what she writes next. Bob checks alice's avatar again after each of her
  // messages, at most once every 2 s: those checks run out first (his clock
  // jumps past the spacing, and the postponed check is awaited), so that
  // only the announcement can show him the change.
  await bob.clock.fastForward(2500);
  await eventually(() => aliceAvatarChecks === 0, 10000, "bob's checks of alice's avatar to finish");
  await alice.setInputFiles("#avatar-input", { name: "me.png", mimeType: "image/png", buffer: png(40, 40, [220, 60, 60]) });
  assert.equal(await loadedImageWidth(alice.locator("#me-avatar .avatar img")), 40);
  assert.equal(await loadedImageWidth(inUserList(bob, "alice").locator(".avatar img")), 40);
  await say(alice, "new picture");
  await bob.locator("#messages .message .text", { hasText: "new picture" }).waitFor();
  assert.equal(await loadedImageWidth(messages(bob).filter({ hasText: "new picture" }).locator(".avatar img")), 40);

  // A reload keeps alice logged in, in her rooms; the image comes back from
  // history (fetched with her token).
  assert.ok(await alice.evaluate(() => JSON.parse(localStorage.getItem("chatwire.login"))?.token), "token saved");
  await alice.reload();
  await chatReady(alice);
  await alice.locator("#me-name", { hasText: "alice" }).waitFor();
  await alice.locator("#room-list button", { hasText: "#team" }).click();
  const fromHistory = messages(alice).filter({ hasText: "a picture" }).locator(".file img");
  assert.equal(await loadedImageWidth(fromHistory), 32);
  assert.match(await fromHistory.getAttribute("src"), /^blob:/);
  await say(alice, "back after a reload");
  await bob.locator("#room-list button", { hasText: "#team" }).locator(".unread").waitFor();
  await bob.locator("#room-list button", { hasText: "#team" }).click();
  await bob.locator("#messages .message .text", { hasText: "back after a reload" }).waitFor();
  // Messages drawn before alice changed her picture show the new one too.
  assert.equal(await loadedImageWidth(messages(bob).filter({ hasText: "hello bob" }).locator(".avatar img")), 40);
  await alice.screenshot({ path: path.join(ARTIFACTS, "accounts-alice.png"), fullPage: true });
  await bob.screenshot({ path: path.join(ARTIFACTS, "accounts-bob.png"), fullPage: true });

  // Log out: the token is gone, and a reload shows the login screen.
  await alice.click("#logout-button");
  await alice.locator("#login-view").waitFor();
  assert.equal(await alice.evaluate(() => localStorage.getItem("chatwire.login")), null);
  await alice.reload();
  await alice.locator("#login-form").waitFor();
  assert.equal(await alice.locator("#chat-view").isVisible(), false);
  await inUserList(bob, "alice").waitFor({ state: "detached" });

  assert.deepEqual([...alice.errors, ...bob.errors], []);
  await alice.context().close();
  await bob.context().close();
});

test("a guest cannot take a registered name; wrong passwords and taken names are explained", { timeout: TEST_TIMEOUT_MS }, async () => {
  await registerThroughApi(servers[0].url, "carol", PASSWORD);
  const page = await newPage(browser);
  await page.goto(sites[1].url);

  await page.click("#tab-guest");
  await page.fill("#guest-name", "Carol");
  await page.click("#guest-button");
  // The page moves to the Log in tab, with the name filled in.
  await page.locator("#login-error", { hasText: "registered" }).waitFor();
  assert.equal(await page.locator("#tab-login").getAttribute("aria-selected"), "true");
  assert.equal(await page.inputValue("#login-name"), "Carol");

  await page.fill("#login-password", "not the password");
  await page.click("#login-button");
  await page.locator("#login-error", { hasText: "wrong name or password" }).waitFor();

  await page.click("#tab-register");
  await page.fill("#register-name", "carol");
  await page.fill("#register-password", PASSWORD);
  await page.click("#register-button");
  await page.locator("#login-error", { hasText: "registered already" }).waitFor();

  await page.click("#tab-login");
  await page.fill("#login-password", PASSWORD);
  await page.click("#login-button");
  await chatReady(page);
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

test("a guest has no avatar button, and on a narrow screen the sidebar folds away", { timeout: TEST_TIMEOUT_MS }, async () => {
  const page = await newPage(browser, { viewport: { width: 390, height: 800 } });
  await joinAsGuest(page, sites[0].url, "dave");
  assert.equal(await page.locator("#me-kind").textContent(), "guest");
  assert.equal(await page.locator("#avatar-button").isDisabled(), true);

  const toggle = page.locator("#sidebar-toggle");
  await toggle.waitFor();
  assert.equal(await page.locator("#room-list").isVisible(), false, "opening #general folded the lists");
  await toggle.click();
  await page.locator("#room-list").waitFor();
  assert.equal(await toggle.getAttribute("aria-expanded"), "true");
  await page.locator("#room-list button", { hasText: "#general" }).click();
  await page.locator("#room-list").waitFor({ state: "hidden" });

  // The keyboard alone: Enter sends, Shift+Enter makes a new line.
  await page.focus("#composer-input");
  await page.keyboard.type("line one");
  await page.keyboard.press("Shift+Enter");
  await page.keyboard.type("line two");
  await page.keyboard.press("Enter");
  await page.locator("#messages .message .text", { hasText: "line two" }).waitFor();
  assert.equal(await page.locator("#messages .message .text").last().textContent(), "line one\nline two");
  await page.screenshot({ path: path.join(ARTIFACTS, "accounts-narrow.png"), fullPage: true });
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

test("after a network drop an account logs back in with its token and catches up", { timeout: TEST_TIMEOUT_MS }, async () => {
  await registerThroughApi(servers[0].url, "erin", PASSWORD);
  const proxy = await startProxy(Number(new URL(sites[0].url).port));
  const erin = await newPage(browser);
  const frank = await newPage(browser);
  try {
    await logInInPage(erin, proxy.url, "erin", PASSWORD);
    await joinAsGuest(frank, sites[1].url, "frank");
    // A room of this test's own: the deployment is shared by every test here.
    await joinRoom(erin, "ops");
    await joinRoom(frank, "ops");
    await say(frank, "before the drop");
    await erin.locator("#messages .message .text", { hasText: "before the drop" }).waitFor();

    proxy.cut();
    await erin.locator("#status", { hasText: "Reconnecting" }).waitFor();
    await frank.locator("#messages .notice", { hasText: "erin left #ops" }).waitFor();
    await say(frank, "while you were away");

    await erin.locator("#status").waitFor({ state: "hidden" });
    await erin.locator("#messages .message .text", { hasText: "while you were away" }).waitFor();
    assert.deepEqual(await erin.locator("#messages .message .text").allTextContents(), ["before the drop", "while you were away"]);
    await say(erin, "back with my token");
    await frank.locator("#messages .message .text", { hasText: "back with my token" }).waitFor();
    assert.deepEqual([...erin.errors, ...frank.errors], []);
  } finally {
    await erin.context().close();
    await frank.context().close();
    await proxy.close();
  }
});
