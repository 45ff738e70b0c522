// Headless Chromium (Debian's package) driven by playwright-core.

import { chromium } from "playwright-core";
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

/** A page in a fresh browser context, failing the test on any page error. */
export async function newPage(browser) {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.errors = [];
  page.on("pageerror", (err) => page.errors.push(err.message));
  page.on("dialog", (dialog) => { page.errors.push(`unexpected dialog: ${dialog.message()}`); dialog.dismiss(); });
  return page;
}

/** Logs in through the page's form and waits until the chat is usable. */
export async function logIn(page, url, name) {
  await page.goto(url);
  await page.fill("#login-name", name);
  await page.click("#login-button");
  await page.waitForSelector("#composer-input:not([disabled])", { timeout: 10000 });
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
