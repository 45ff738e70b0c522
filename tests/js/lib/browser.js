// Headless Chromium (Debian's package) driven by playwright-core.

import { chromium } from "playwright-core";
import http from "node:http";
import net from "node:net";

export const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

export function launch() {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
  });
}

/**
 * The Content-Security-Policy the server is to send. Tests add it with
 * startCspProxy, so that the client is known to work under it: no inline
 * scripts or styles, no eval, no outside hosts.
 */
export const CSP =
  "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; style-src 'self'; " +
  "script-src 'self'; connect-src 'self'; frame-ancestors 'none'";

/**
 * A page in a fresh browser context, failing the test on any page error or
 * CSP violation (collected in `page.errors`).
 */
export async function newPage(browser, { viewport } = {}) {
  const context = await browser.newContext(viewport ? { viewport } : {});
  context.setDefaultTimeout(15000);
  const page = await context.newPage();
  page.errors = [];
  page.on("pageerror", (err) => page.errors.push(err.message));
  page.on("dialog", (dialog) => { page.errors.push(`unexpected dialog: ${dialog.message()}`); dialog.dismiss(); });
  page.on("console", (message) => {
    if (/Content Security Policy/i.test(message.text())) page.errors.push(`CSP: ${message.text()}`);
  });
  return page;
}

/** Waits until the chat screen is usable. */
export async function chatReady(page) {
  await page.waitForSelector("#composer-input:not([disabled])", { timeout: 10000 });
}

/** Joins as a guest through the Guest tab and waits until the chat is usable. */
export async function joinAsGuest(page, url, name) {
  await page.goto(url);
  await page.click("#tab-guest");
  await page.fill("#guest-name", name);
  await page.click("#guest-button");
  await chatReady(page);
}

/** Creates an account through the Register tab (which logs in too). */
export async function registerInPage(page, url, name, password) {
  await page.goto(url);
  await page.click("#tab-register");
  await page.fill("#register-name", name);
  await page.fill("#register-password", password);
  await page.click("#register-button");
  await chatReady(page);
}

/** Logs in with a password through the Log in tab. */
export async function logInInPage(page, url, name, password) {
  await page.goto(url);
  await page.click("#tab-login");
  await page.fill("#login-name", name);
  await page.fill("#login-password", password);
  await page.click("#login-button");
  await chatReady(page);
}

/** Waits until the image `locator` points at has loaded; returns its naturalWidth (> 0). */
export async function loadedImageWidth(locator, timeout = 10000) {
  const deadline = Date.now() + timeout;
  await locator.waitFor({ timeout });
  for (;;) {
    const width = await locator.evaluate((img) => (img.complete ? img.naturalWidth : 0), undefined, { timeout });
    if (width > 0) return width;
    if (Date.now() > deadline) throw new Error(`image not loaded after ${timeout} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Types and sends a message through the composer. */
export async function say(page, text) {
  await page.fill("#composer-input", text);
  await page.press("#composer-input", "Enter");
}

/**
 * A loopback TCP proxy whose connections the test can cut, to simulate a
 * network drop between a browser and the server.
 */
export async function startProxy(targetPort) {
  const sockets = new Set();
  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, "127.0.0.1");
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
      s.on("error", () => {});
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    /** Drops every open connection (new ones are accepted again). */
    cut() { for (const s of sockets) s.destroy(); },
    close() { this.cut(); return new Promise((resolve) => server.close(resolve)); },
  };
}

/**
 * A loopback HTTP proxy to `targetPort` that adds the CSP header to HTML
 * responses, and passes websocket upgrades through untouched. (page.route
 * could add the header, but Chromium then treats the document as public and
 * its Local Network Access checks block the loopback websocket.)
 */
export async function startCspProxy(targetPort) {
  const sockets = new Set();
  const track = (s) => { sockets.add(s); s.on("close", () => sockets.delete(s)); s.on("error", () => {}); };
  const server = http.createServer((req, res) => {
    const upstream = http.request({ host: "127.0.0.1", port: targetPort, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      const headers = { ...answer.headers };
      if (String(headers["content-type"]).startsWith("text/html")) headers["content-security-policy"] = CSP;
      res.writeHead(answer.statusCode, headers);
      answer.pipe(res);
    });
    upstream.on("error", () => res.destroy());
    req.pipe(upstream);
  });
  server.on("connection", track);
  server.on("upgrade", (req, client, head) => {
    const upstream = net.connect(targetPort, "127.0.0.1", () => {
      const lines = [`${req.method} ${req.url} HTTP/1.1`];
      for (let i = 0; i < req.rawHeaders.length; i += 2) lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
      upstream.write(`${lines.join("\r\n")}\r\n\r\n`);
      upstream.write(head);
      client.pipe(upstream).pipe(client);
    });
    track(upstream);
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    close() {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}
