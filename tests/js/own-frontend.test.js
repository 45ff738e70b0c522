// A frontend of the user's own, served from PUBLIC_DIR, as it ran under Node:
// shaped like socket.io's chat demo page, it loads its script library and a
// stylesheet from another origin (a stand-in CDN on a second loopback port)
// and runs an inline script. With default settings no policy of chatwire's
// breaks it; CONTENT_SECURITY_POLICY sends exactly what it says; the bundled
// client keeps its strict policy.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { mkdtemp, writeFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { startServer } from "./lib/server.js";
import { launch, newPage } from "./lib/browser.js";
import { user, next, closeAll } from "./lib/client.js";

let browser;
let cdn;
let publicDir;

/** The stand-in CDN: a tiny `$` library and a stylesheet, from its own origin. */
async function startCdn() {
  const files = {
    "/lib.js": ["application/javascript", "window.$ = (selector) => document.querySelector(selector);"],
    "/lib.css": ["text/css", "body { background-color: rgb(1, 2, 3); }"],
  };
  const server = http.createServer((req, res) => {
    const file = files[req.url];
    if (!file) return res.writeHead(404).end();
    res.writeHead(200, { "content-type": file[0] }).end(file[1]);
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${server.address().port}`, close: () => new Promise((r) => server.close(r)) };
}

/** The page: the demo's events, the library from the CDN, one inline script. */
function pageFiles(cdnUrl) {
  const index = `<!doctype html>
<html>
<head>
  <meta charset="utf-8">
  <title>My chat</title>
  <link rel="stylesheet" href="${cdnUrl}/lib.css">
</head>
<body>
  <ul id="messages"></ul>
  <script>window.inlineScriptRan = true;</script>
  <script src="${cdnUrl}/lib.js"></script>
  <script src="/socket.io/socket.io.js"></script>
  <script src="/main.js"></script>
</body>
</html>`;
  const main = `
const socket = io({ transports: ["websocket"] });
window.loggedIn = false;
socket.emit("add user", "pageuser");
socket.on("login", () => { window.loggedIn = true; });
socket.on("new message", (data) => {
  const li = document.createElement("li");
  li.textContent = data.username + ": " + data.message;
  $("#messages").appendChild(li);
});
window.send = (text) => socket.emit("new message", text);
`;
  return { "index.html": index, "main.js": main };
}

before(async () => {
  browser = await launch();
  cdn = await startCdn();
  publicDir = await mkdtemp(path.join(tmpdir(), "chatwire-own-frontend-"));
  for (const [name, body] of Object.entries(pageFiles(cdn.url))) await writeFile(path.join(publicDir, name), body);
});
after(async () => {
  closeAll();
  await browser?.close();
  await cdn?.close();
  if (publicDir) await rm(publicDir, { recursive: true, force: true });
});

test("a page of your own that loads from a CDN logs in and chats with default settings", async () => {
  const server = await startServer({ PUBLIC_DIR: publicDir });
  try {
    const response = await fetch(`${server.url}/`);
    assert.equal(response.headers.get("content-security-policy"), null, "no policy of ours on your own page");
    assert.equal(response.headers.get("x-frame-options"), null, "your page may be framed, as under Node");
    assert.equal(response.headers.get("x-content-type-options"), "nosniff", "headers that break nothing stay");
    assert.ok(server.logs.some((line) => line.includes("frontend of your own")), "the start log says which policy");

    const page = await newPage(browser);
    await page.goto(server.url);
    await page.waitForFunction(() => window.loggedIn === true, undefined, { timeout: 10000 });
    assert.equal(await page.evaluate(() => window.inlineScriptRan), true, "inline script ran");
    assert.equal(await page.evaluate(() => typeof window.$), "function", "the CDN's library loaded");
    assert.equal(await page.evaluate(() => getComputedStyle(document.body).backgroundColor), "rgb(1, 2, 3)");

    const node = await user(server.url, "nodeuser");
    node.emit("new message", "hello from node");
    await page.locator("#messages li", { hasText: "nodeuser: hello from node" }).waitFor({ timeout: 5000 });
    await page.evaluate(() => window.send("hello from the page"));
    assert.deepEqual(await next(node, "new message"), { username: "pageuser", message: "hello from the page" });
    assert.deepEqual(page.errors, []);
    await page.context().close();
  } finally {
    closeAll();
    await server.stop();
  }
});

test("CONTENT_SECURITY_POLICY is sent exactly as given, and empty sends none", async () => {
  const policy = `default-src 'self'; script-src 'self' 'unsafe-inline' ${cdn.url}; style-src 'self' ${cdn.url}`;
  const own = await startServer({ PUBLIC_DIR: publicDir, CONTENT_SECURITY_POLICY: policy });
  const bundledNone = await startServer({ CONTENT_SECURITY_POLICY: "" });
  try {
    for (const file of ["/", "/main.js"]) {
      const response = await fetch(`${own.url}${file}`);
      assert.equal(response.headers.get("content-security-policy"), policy, file);
    }
    // The page still works under a policy that lists its CDN.
    const page = await newPage(browser);
    await page.goto(own.url);
    await page.waitForFunction(() => window.loggedIn === true, undefined, { timeout: 10000 });
    assert.deepEqual(page.errors, []);
    await page.context().close();

    const bundled = await fetch(`${bundledNone.url}/`);
    assert.equal(bundled.headers.get("content-security-policy"), null, "empty sends none, bundled client too");
    const api = await fetch(`${own.url}/api/files/x`);
    assert.match(api.headers.get("content-security-policy"), /sandbox/, "API answers keep their own policy");
  } finally {
    closeAll();
    await own.stop();
    await bundledNone.stop();
  }
});

test("the bundled web client keeps its strict policy", async () => {
  const server = await startServer();
  try {
    const headers = (await fetch(`${server.url}/`)).headers;
    const policy = headers.get("content-security-policy");
    assert.match(policy, /script-src 'self'(;|$)/);
    assert.match(policy, /style-src 'self'(;|$)/);
    assert.match(policy, /frame-ancestors 'none'/);
    assert.equal(headers.get("x-frame-options"), "DENY");
    assert.equal(headers.get("referrer-policy"), "no-referrer");
  } finally {
    await server.stop();
  }
});
