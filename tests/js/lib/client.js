// socket.io-client helpers: connect like the web client does, and wait for
// acks and events with bounded timeouts. Every helper takes a socket of any
// supported client version (see `clients`).

import { io } from "socket.io-client";
import { io as io3 } from "sio3";
import io2 from "sio2";

export const WAIT_MS = 5000;

/**
 * socket.io-client by major version: 4.x (the default), 3.x, and 2.x
 * (Engine.IO 3, socket.io protocol 4: no `auth`, no `onAny`, no
 * `connect_error` for a refusal but `error`).
 */
export const clients = { "4.x": io, "3.x": io3, "2.x": io2 };

const open = new Set();

/** Options every client of these helpers gets (msgpack.test.js sets a parser). */
export const clientDefaults = {};

/**
 * A connected client (websocket only, no automatic reconnection unless
 * asked). `version` picks the socket.io-client (default 4.x). Events are
 * recorded from the first one on, so a `login` right after the handshake
 * is not missed. Rejects with the connect_error (2.x: with an Error whose
 * `data` is what its `error` event carried), its `socket` attached.
 */
export async function connect(url, { version = "4.x", ...options } = {}) {
  const socket = clients[version](url, { transports: ["websocket"], forceNew: true, reconnection: false, ...clientDefaults, ...options, autoConnect: false });
  open.add(socket);
  record(socket);
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("connect timed out")), WAIT_MS);
    const done = (settle, value) => { clearTimeout(timer); socket.off("connect", onConnect); socket.off("connect_error", onError); socket.off("error", onRefused); settle(value); };
    const onConnect = () => done(resolve);
    const onError = (err) => done(reject, Object.assign(err, { socket }));
    const onRefused = (data) => done(reject, Object.assign(new Error(`refused: ${JSON.stringify(data)}`), { data, socket }));
    socket.once("connect", onConnect);
    socket.once("connect_error", onError);
    if (version === "2.x") socket.once("error", onRefused);
    socket.connect();
  });
  return socket;
}

/** Records every event `socket` gets in `socket.received`, for `next` and `none`. */
function record(socket) {
  socket.received = [];
  if (socket.onAny) {
    socket.onAny((event, ...args) => socket.received.push({ event, args }));
    return;
  }
  // 2.x has no onAny: every event goes through onevent before its listeners.
  const onevent = socket.onevent;
  socket.onevent = function (packet) {
    const [event, ...args] = packet.data ?? [];
    socket.received.push({ event, args });
    onevent.call(this, packet);
  };
}

/** Resolves once `condition` (may be async) holds, polling every 50 ms; rejects after `timeoutMs`. */
export async function eventually(condition, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Emits with an ack and resolves with the ack's argument. */
export function ack(socket, event, ...args) {
  if (socket.timeout) return socket.timeout(WAIT_MS).emitWithAck(event, ...args);
  // 3.x and 2.x: no ack timeouts of their own.
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ack for "${event}" within ${WAIT_MS} ms`)), WAIT_MS);
    socket.emit(event, ...args, (reply) => { clearTimeout(timer); resolve(reply); });
  });
}

/** Resolves with the first argument of the next `event` not yet consumed. */
export function next(socket, event, timeoutMs = WAIT_MS) {
  const index = socket.received.findIndex((r) => r.event === event);
  if (index >= 0) return Promise.resolve(socket.received.splice(index, 1)[0].args[0]);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { socket.off(event, handler); reject(new Error(`no "${event}" within ${timeoutMs} ms`)); }, timeoutMs);
    const handler = () => {
      const i = socket.received.findIndex((r) => r.event === event);
      if (i < 0) return;
      clearTimeout(timer);
      socket.off(event, handler);
      resolve(socket.received.splice(i, 1)[0].args[0]);
    };
    // onAny listeners run before the event's own listeners, so the event is already recorded.
    socket.on(event, handler);
  });
}

/**
 * Resolves with the next `event` whose argument `matches`, skipping others
 * (a late `user left` of an earlier test's user, say).
 */
export async function nextMatching(socket, event, matches, timeoutMs = WAIT_MS) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await next(socket, event, Math.max(1, deadline - Date.now()));
    if (matches(value)) return value;
  }
}

/** Asserts that no `event` arrives within `ms`. */
export async function none(socket, event, ms = 300) {
  await new Promise((resolve) => setTimeout(resolve, ms));
  const found = socket.received.find((r) => r.event === event);
  if (found) throw new Error(`unexpected "${event}": ${JSON.stringify(found.args)}`);
}

/** A client logged in as `name`; `options` as for `connect`. */
export async function user(url, name, options = {}) {
  const socket = await connect(url, options);
  const reply = await ack(socket, "add user", name);
  if (!reply.ok) throw new Error(`login as ${name} refused: ${JSON.stringify(reply)}`);
  await next(socket, "login");
  socket.username = reply.username;
  return socket;
}

/** A client logged in as `name` that joined `room`; `options` as for `connect`. */
export async function member(url, name, room, options = {}) {
  const socket = await user(url, name, options);
  const reply = await ack(socket, "join", { room });
  if (!reply.ok) throw new Error(`${name} could not join ${room}: ${JSON.stringify(reply)}`);
  return socket;
}

/** Closes every client opened by these helpers. */
export function closeAll() {
  for (const socket of open) socket.close();
  open.clear();
}
