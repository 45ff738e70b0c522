// The web client in headless Chromium, as guests: two people chat, markup
// stays text, and a dropped connection catches up on what it missed. Pages
// run under the CSP the server is to send (added by a proxy).

import { test, before, after, beforeEach, afterEach } from "node:test";
import assert from "node:assert/strict";
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { startServer, repoRoot } from "./lib/server.js";
import { launch, newPage, joinAsGuest, say, startProxy, startCspProxy } from "./lib/browser.js";
import { user, closeAll } from "./lib/client.js";

const ARTIFACTS = path.join(repoRoot, "tests", "js", "artifacts");
let browser;
let server;
let site;  // the server behind a proxy that adds the CSP header

before(async () => {
  await mkdir(ARTIFACTS, { recursive: true });
  browser = await launch();
});
after(async () => { await browser?.close(); });
// Each test gets a server of its own, so no history leaks between tests.
beforeEach(async () => {
  server = await startServer({ INSTANCE_NAME: "js-browser" });
  site = await startCspProxy(server.port);
});
afterEach(async () => {
  await site?.close();
  await server?.stop();
});

const messageTexts = (page) => page.locator("#messages .message .text").allTextContents();

test("two pages chat with each other, and HTML in a message shows as text", async () => {
  const alice = await newPage(browser);
  const bob = await newPage(browser);
  await joinAsGuest(alice, site.url, "alice");
  await joinAsGuest(bob, site.url, "bob");

  // Both land in #general; bob appears in alice's online list.
  await alice.locator("#user-list", { hasText: "bob" }).waitFor();
  await alice.locator("#conversation-title", { hasText: "#general" }).waitFor();

  const hostile = `<b>bold?</b> <img src=x onerror="alert('xss')"> & <script>alert(1)</script>`;
  await say(alice, hostile);
  await bob.locator("#messages .message .text", { hasText: "bold?" }).waitFor();
  assert.deepEqual(await messageTexts(bob), [hostile], "the text is shown verbatim");
  assert.equal(await bob.locator("#messages b, #messages img, #messages script").count(), 0, "no markup was rendered");
  assert.equal(await bob.locator("#messages .message .from").first().textContent(), "alice");
  assert.match(await bob.locator("#messages .message time").first().textContent(), /\d/);

  await say(bob, "hi alice");
  await alice.locator("#messages .message .text", { hasText: "hi alice" }).waitFor();

  // A private message: bob picks alice in the online list.
  await bob.locator("#user-list button", { hasText: "alice" }).click();
  await bob.locator("#conversation-title", { hasText: "alice" }).waitFor();
  await say(bob, "just between us");
  await alice.locator("#dm-list button", { hasText: "bob" }).locator(".unread").waitFor();
  await alice.locator("#dm-list button", { hasText: "bob" }).click();
  await alice.locator("#messages .message .text", { hasText: "just between us" }).waitFor();

  // Typing shows up for the other person.
  await alice.fill("#composer-input", "typing something");
  await alice.locator("#composer-input").press("Space");
  await bob.locator("#typing", { hasText: "alice is typing" }).waitFor();

  await alice.screenshot({ path: path.join(ARTIFACTS, "chat-alice.png"), fullPage: true });
  await bob.screenshot({ path: path.join(ARTIFACTS, "chat-bob.png"), fullPage: true });
  assert.deepEqual([...alice.errors, ...bob.errors], []);
  await alice.context().close();
  await bob.context().close();
});

test("after a network drop the page logs in again and shows what it missed", async () => {
  const proxy = await startProxy(Number(new URL(site.url).port));
  const carol = await newPage(browser);
  const dave = await newPage(browser);
  await joinAsGuest(carol, proxy.url, "carol");
  await joinAsGuest(dave, site.url, "dave");
  await say(dave, "before the drop");
  await carol.locator("#messages .message .text", { hasText: "before the drop" }).waitFor();

  proxy.cut();
  await carol.locator("#status", { hasText: "Reconnecting" }).waitFor();
  await dave.locator("#messages .notice", { hasText: "carol left" }).waitFor();
  await say(dave, "while you were away 1");
  await say(dave, "while you were away 2");

  // socket.io reconnects by itself through the proxy; the page logs back in
  // with its session, rejoins #general and fetches history { after }.
  await carol.locator("#status").waitFor({ state: "hidden", timeout: 15000 });
  await carol.locator("#messages .message .text", { hasText: "while you were away 2" }).waitFor();
  const texts = await messageTexts(carol);
  assert.deepEqual(texts, ["before the drop", "while you were away 1", "while you were away 2"], "each message once, in order");
  await carol.locator("#me-name", { hasText: "carol" }).waitFor();

  await say(carol, "back again");
  await dave.locator("#messages .message .text", { hasText: "back again" }).waitFor();
  assert.deepEqual([...carol.errors, ...dave.errors], []);
  await proxy.close();
});

test("rooms: create, join from the list with its history, leave; and a group message", async () => {
  const [alice, bob, carol] = [await newPage(browser), await newPage(browser), await newPage(browser)];
  await joinAsGuest(alice, site.url, "alice");
  await alice.fill("#new-room-name", "design");
  await alice.press("#new-room-name", "Enter");
  await alice.locator("#conversation-title", { hasText: "#design" }).waitFor();
  await say(alice, "spec v1");
  await alice.locator("#messages .message .text", { hasText: "spec v1" }).waitFor();

  // bob finds the room in the list and joins it: its history comes with it.
  await joinAsGuest(bob, site.url, "bob");
  await bob.locator("#room-list button", { hasText: "#design" }).click();
  await bob.locator("#conversation-title", { hasText: "#design" }).waitFor();
  await bob.locator("#messages .message .text", { hasText: "spec v1" }).waitFor();
  await bob.locator("#conversation-members", { hasText: "alice, bob" }).waitFor();
  await alice.locator("#messages .notice", { hasText: "bob joined #design" }).waitFor();

  // alice writes to bob and carol together.
  await joinAsGuest(carol, site.url, "carol");
  await alice.locator("#user-list", { hasText: "carol" }).waitFor();
  await alice.click("#group-button");
  await alice.check("#group-choices input[value='bob']");
  await alice.check("#group-choices input[value='carol']");
  await alice.click("#group-start");
  await alice.locator("#conversation-title", { hasText: "bob, carol" }).waitFor();
  await say(alice, "group hello");
  for (const [page, others] of [[bob, "alice, carol"], [carol, "alice, bob"]]) {
    const thread = page.locator("#dm-list button", { hasText: others });
    await thread.locator(".unread").waitFor();
    await thread.click();
    await page.locator("#messages .message .text", { hasText: "group hello" }).waitFor();
  }

  // bob leaves #design; alice is told.
  await bob.locator("#room-list button", { hasText: "#design" }).click();
  await bob.click("#leave-button");
  await bob.locator("#room-list button", { hasText: "#design" }).locator(".hint").waitFor();
  await alice.locator("#room-list button", { hasText: "#design" }).click();
  await alice.locator("#messages .notice", { hasText: "bob left #design" }).waitFor();
  await alice.locator("#conversation-members", { hasText: "1 member: alice" }).waitFor();
  assert.deepEqual([...alice.errors, ...bob.errors, ...carol.errors], []);
});

test("a taken name is refused on the login form, with a clear message", async () => {
  const first = await newPage(browser);
  const second = await newPage(browser);
  await joinAsGuest(first, site.url, "erin");
  await second.goto(site.url);
  await second.click("#tab-guest");
  await second.fill("#guest-name", "ERIN");
  await second.click("#guest-button");
  await second.locator("#login-error", { hasText: "taken" }).waitFor();
  assert.equal(await second.locator("#chat-view").isVisible(), false);
});

test("over the announce limit, the sidebar shows the count, and searches and pages the online list", async () => {
  const big = await startServer({ INSTANCE_NAME: "js-browser-big", ANNOUNCE_MAX_USERS: "5" });
  const bigSite = await startCspProxy(big.port);
  const names = Array.from({ length: 60 }, (_, i) => `crowd${String(i).padStart(2, "0")}`);
  const buttons = (page) => page.locator("#user-list button .label").allTextContents();
  try {
    const crowd = await Promise.all(names.map((name) => user(big.url, name)));
    const alice = await newPage(browser);
    await joinAsGuest(alice, bigSite.url, "alice");

    // 61 online: one page of names (alice's own not shown), the count, a search, more.
    await alice.locator("#user-count", { hasText: "(61)" }).waitFor();
    await alice.locator("#more-users").waitFor();
    assert.deepEqual(await buttons(alice), names.slice(0, 49));
    await alice.click("#more-users");
    await alice.locator("#more-users").waitFor({ state: "hidden" });
    assert.deepEqual(await buttons(alice), names);

    // The count follows logins and logouts without any name being announced.
    const zed = await user(big.url, "zed");
    await alice.locator("#user-count", { hasText: "(62)" }).waitFor({ timeout: 10000 });
    for (const socket of crowd.slice(0, 3)) socket.close();
    await alice.locator("#user-count", { hasText: "(59)" }).waitFor({ timeout: 10000 });

    // A search shows the names starting with what was typed, whatever the case.
    await alice.fill("#user-search", "CROWD5");
    await alice.locator("#user-list button", { hasText: "crowd50" }).waitFor();
    await alice.locator("#user-list button", { hasText: "crowd49" }).waitFor({ state: "detached" });
    assert.deepEqual(await buttons(alice), names.filter((name) => name.startsWith("crowd5")));
    await alice.fill("#user-search", "z");
    await alice.locator("#user-list button", { hasText: "zed" }).waitFor();
    assert.deepEqual(await buttons(alice), ["zed"]);

    // A name found is someone to talk to.
    await alice.locator("#user-list button", { hasText: "zed" }).click();
    await alice.locator("#conversation-title", { hasText: "zed" }).waitFor();
    const receiving = new Promise((resolve) => zed.once("message", resolve));
    await say(alice, "found you");
    const received = await receiving;
    assert.equal(received.text, "found you");
    assert.deepEqual(alice.errors, []);
    await alice.context().close();
  } finally {
    closeAll();
    await bigSite.close();
    await big.stop();
  }
});
