// HTTP requests to chatwire's /api, with bounded timeouts, from a chosen
// loopback source address.
//
// Registration and login are rate limited per client address (and the
// counters are shared by every instance through Redis), so each test that
// uses them takes its own source address with `newAddress()`: all of
// 127.0.0.0/8 is local on Linux, and the server sees each as a different
// client. Tests then never use up each other's allowance.

import http from "node:http";
import { WAIT_MS } from "./client.js";

let addresses = 0;

/** A loopback address no other caller of this function got (127.88.x.y). */
export function newAddress() {
  addresses += 1;
  return `127.88.${Math.floor(addresses / 250)}.${(addresses % 250) + 1}`;
}

/**
 * `method path` against `base`. `body` is sent as is if it is a Buffer or a
 * string, as JSON otherwise; `token` becomes `Authorization: Bearer`.
 * Resolves with { status, headers, bytes, text, json } (json undefined
 * unless the body parses). A fresh connection per request (no keep-alive),
 * so nothing lingers when a server stops.
 */
export function request(base, path, { method = "GET", body, token, headers = {}, from, timeoutMs = WAIT_MS } = {}) {
  const url = new URL(path, base);
  const head = { ...headers };
  if (token !== undefined) head.authorization = `Bearer ${token}`;
  let payload = body;
  if (body !== undefined && typeof body !== "string" && !Buffer.isBuffer(body)) {
    payload = JSON.stringify(body);
    head["content-type"] ??= "application/json";
  }
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers: head, localAddress: from, agent: false }, (res) => {
      const chunks = [];
      res.on("data", (chunk) => chunks.push(chunk));
      res.on("error", reject);
      res.on("end", () => {
        const bytes = Buffer.concat(chunks);
        const text = bytes.toString("utf8");
        let json;
        try { json = JSON.parse(text); } catch { json = undefined; }
        resolve({ status: res.statusCode, headers: res.headers, bytes, text, json });
      });
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`${method} ${url} timed out after ${timeoutMs} ms`)));
    req.on("error", reject);
    req.end(payload);
  });
}

/** `POST /api/register` { username, password }. */
export function register(base, username, password, options = {}) {
  return request(base, "/api/register", { method: "POST", body: { username, password }, ...options });
}

/** `POST /api/login` { username, password }. */
export function login(base, username, password, options = {}) {
  return request(base, "/api/login", { method: "POST", body: { username, password }, ...options });
}

/** Registers `username` and logs in, from a fresh address; resolves with the token. */
export async function account(registerAt, loginAt, username, password) {
  const from = newAddress();
  const created = await register(registerAt, username, password, { from });
  if (created.status !== 201) throw new Error(`registering ${username}: ${created.status} ${created.text}`);
  const logged = await login(loginAt, username, password, { from });
  if (logged.status !== 200) throw new Error(`logging in ${username}: ${logged.status} ${logged.text}`);
  return logged.json.token;
}
