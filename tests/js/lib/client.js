// socket.io-client helpers: connect like the web client does, and wait for
// acks and events with bounded timeouts.

import { io } from "socket.io-client";

export const WAIT_MS = 5000;

const open = new Set();

/** Options every client of these helpers gets (msgpack.test.js sets a parser). */
export const clientDefaults = {};

/** A connected client (websocket only, no automatic reconnection unless asked). */
export async function connect(url, options = {}) {
  const socket = io(url, { transports: ["websocket"], forceNew: true, reconnection: false, ...clientDefaults, ...options });
  open.add(socket);
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("connect timed out")), WAIT_MS);
    socket.once("connect", () => { clearTimeout(timer); resolve(); });
    socket.once("connect_error", (err) => { clearTimeout(timer); reject(err); });
  });
  socket.received = [];
  socket.onAny((event, ...args) => socket.received.push({ event, args }));
  return socket;
}

/** Emits with an ack and resolves with the ack's argument. */
export function ack(socket, event, ...args) {
  return socket.timeout(WAIT_MS).emitWithAck(event, ...args);
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

/** Asserts that no `event` arrives within `ms`. */
export async function none(socket, event, ms = 300) {
  await new Promise((resolve) => setTimeout(resolve, ms));
  const found = socket.received.find((r) => r.event === event);
  if (found) throw new Error(`unexpected "${event}": ${JSON.stringify(found.args)}`);
}

/** A client logged in as `name`. */
export async function user(url, name) {
  const socket = await connect(url);
  const reply = await ack(socket, "add user", name);
  if (!reply.ok) throw new Error(`login as ${name} refused: ${JSON.stringify(reply)}`);
  await next(socket, "login");
  return socket;
}

/** A client logged in as `name` that joined `room`. */
export async function member(url, name, room) {
  const socket = await user(url, name);
  const reply = await ack(socket, "join", { room });
  if (!reply.ok) throw new Error(`${name} could not join ${room}: ${JSON.stringify(reply)}`);
  return socket;
}

/** Closes every client opened by these helpers. */
export function closeAll() {
  for (const socket of open) socket.close();
  open.clear();
}
