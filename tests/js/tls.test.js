// TLS only: the real socket.io-client over wss, to chatwire terminating TLS
// itself and through a real nginx that terminates TLS and sets
// X-Forwarded-Proto. Plain HTTP is redirected (308) and plain websockets
// are refused; https answers carry HSTS. The certificate is self-signed,
// made by openssl for this run.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import https from "node:https";
import { tmpdir } from "node:os";
import path from "node:path";
import { io } from "socket.io-client";
import { startServer } from "./lib/server.js";
import { runNginx } from "./lib/nginx.js";
import { freePort } from "./lib/ports.js";
import { connect, ack, next, closeAll, WAIT_MS } from "./lib/client.js";

let dir;
let certPem;
let direct;
let proxied;
let nginx;
let nginxPorts;
const sockets = [];

before(async () => {
  dir = mkdtempSync(path.join(tmpdir(), "chatwire-tls-"));
  execFileSync("openssl", [
    "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
    "-keyout", path.join(dir, "key.pem"), "-out", path.join(dir, "cert.pem"),
  ], { stdio: "ignore" });
  certPem = readFileSync(path.join(dir, "cert.pem"), "utf8");

  const redirectPort = await freePort();
  direct = await startServer({
    TLS_CERT: path.join(dir, "cert.pem"),
    TLS_KEY: path.join(dir, "key.pem"),
    HTTP_REDIRECT_PORT: String(redirectPort),
  });
  direct.redirectPort = redirectPort;

  proxied = await startServer({ TRUST_PROXY: "127.0.0.1", FORCE_HTTPS: "true" });
  const [plain, secure] = [await freePort(), await freePort()];
  nginxPorts = { plain, secure };
  nginx = await runNginx(nginxConfig(plain, secure, proxied.port), secure);
});

after(async () => {
  closeAll();
  for (const socket of sockets) socket.close();
  await nginx?.stop();
  await direct?.stop();
  await proxied?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** nginx terminating TLS on `secure`, plain HTTP on `plain`, both to chatwire. */
function nginxConfig(plain, secure, upstream) {
  const proxy = `
      location / {
        proxy_pass http://127.0.0.1:${upstream};
        proxy_http_version 1.1;
        proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Connection $connection_upgrade;
        proxy_set_header Host $http_host;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto $scheme;
      }`;
  return `
    events {}
    http {
      access_log off;
      map $http_upgrade $connection_upgrade { default upgrade; '' close; }
      server { listen 127.0.0.1:${plain}; ${proxy} }
      server {
        listen 127.0.0.1:${secure} ssl;
        ssl_certificate ${path.join(dir, "cert.pem")};
        ssl_certificate_key ${path.join(dir, "key.pem")};
        ${proxy}
      }
    }`;
}

/** GET over https trusting the test certificate: { status, headers }. */
function httpsGet(url) {
  return new Promise((resolve, reject) => {
    https.get(url, { ca: certPem }, (res) => {
      res.resume();
      res.on("end", () => resolve({ status: res.statusCode, headers: res.headers }));
    }).on("error", reject);
  });
}

/** A logged-in socket.io-client, trusting the test certificate. */
async function user(url, name) {
  const socket = await connect(url, { ca: certPem });
  const reply = await ack(socket, "add user", name);
  assert.equal(reply.ok, true, JSON.stringify(reply));
  return socket;
}

/** The connect_error a plain-websocket client gets. */
function refusedConnect(url) {
  const socket = io(url, { transports: ["websocket"], forceNew: true, reconnection: false });
  sockets.push(socket);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("neither connected nor refused")), WAIT_MS);
    socket.once("connect", () => { clearTimeout(timer); reject(new Error("a plain websocket was accepted")); });
    socket.once("connect_error", (err) => { clearTimeout(timer); resolve(err); });
  });
}

async function chat(a, b) {
  await ack(a, "join", { room: "secure" });
  await ack(b, "join", { room: "secure" });
  const sent = await ack(a, "message", { room: "secure", text: "over TLS" });
  assert.equal(sent.ok, true);
  assert.equal((await next(b, "message")).text, "over TLS");
}

test("socket.io-client chats over wss with chatwire terminating TLS", async () => {
  const url = `https://127.0.0.1:${direct.port}`;
  const page = await httpsGet(`${url}/`);
  assert.equal(page.status, 200);
  assert.match(page.headers["strict-transport-security"], /max-age=\d+/);
  assert.match(page.headers["content-security-policy"], /default-src 'self'/);
  await chat(await user(url, "alice"), await user(url, "bob"));
});

test("the plain-HTTP port beside direct TLS only redirects", async () => {
  const response = await fetch(`http://127.0.0.1:${direct.redirectPort}/some/page?x=1`, { redirect: "manual" });
  assert.equal(response.status, 308);
  assert.equal(response.headers.get("location"), `https://127.0.0.1:${direct.redirectPort}/some/page?x=1`);
  await refusedConnect(`http://127.0.0.1:${direct.redirectPort}`);
});

test("behind nginx: https chats, plain HTTP is redirected, plain websockets are refused", async () => {
  const secure = `https://127.0.0.1:${nginxPorts.secure}`;
  const page = await httpsGet(`${secure}/`);
  assert.equal(page.status, 200, "X-Forwarded-Proto: https from the trusted proxy");
  assert.match(page.headers["strict-transport-security"], /max-age=\d+/);
  await chat(await user(secure, "carol"), await user(secure, "dave"));

  const plain = await fetch(`http://127.0.0.1:${nginxPorts.plain}/rooms?tab=2`, { redirect: "manual" });
  assert.equal(plain.status, 308);
  assert.equal(plain.headers.get("location"), `https://127.0.0.1:${nginxPorts.plain}/rooms?tab=2`);
  assert.equal(plain.headers.get("strict-transport-security"), null, "no HSTS over plain HTTP");
  await refusedConnect(`http://127.0.0.1:${nginxPorts.plain}`);
});

test("a client that is not a trusted proxy cannot fake X-Forwarded-Proto", async () => {
  // Only 10.0.0.1 is trusted; the test talks from 127.0.0.1.
  const server = await startServer({ TRUST_PROXY: "10.0.0.1", FORCE_HTTPS: "true" });
  try {
    const faked = await fetch(`http://127.0.0.1:${server.port}/`, {
      redirect: "manual",
      headers: { "x-forwarded-proto": "https" },
    });
    assert.equal(faked.status, 308, "an untrusted peer's X-Forwarded-Proto is ignored");
    assert.equal(faked.headers.get("strict-transport-security"), null);
  } finally {
    await server.stop();
  }
});
