// The socket.io connection: requests with acks, and the two ways in. A guest
// connects bare and sends `add user`; an account connects with its token in
// the handshake and is logged in by the server before its first event.

import { io } from "./socket-io.js";

const REQUEST_TIMEOUT_MS = 8000;

let handshakeToken = null;

// `auth` is a function so that every reconnect sends the current token.
export const socket = io({
  transports: ["websocket"],
  autoConnect: false,
  auth: (send) => send(handshakeToken ? { token: handshakeToken } : {}),
});

/** Error answered by the server: `code` is the protocol's error code. */
export class ChatError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

/**
 * What each code of a refused handshake means, in words (the server sends
 * only the code: docs/PROTOCOL.md, "Refused connections").
 */
const REFUSALS = {
  guests_disabled: "This server only admits registered accounts: log in or register.",
  bad_token: "Your login is no longer valid (it expired, or the server does not know it): log in again.",
  token_revoked: "You were logged out (on another device, or the password was changed): log in again.",
  name_registered: "That name now belongs to a registered account: log in to use it.",
  too_many_connections: "Too many connections from your network right now: close some tabs and try again.",
  unavailable: "The server cannot reach its database right now. Try again shortly.",
  invalid_payload: "The server did not understand this page's request: reload the page.",
  internal: "The server ran into a problem. Try again.",
};

/**
 * The ChatError for a `connect_error`: a refusal (the server's code, with
 * its meaning) once socket.io has given up, else the server is unreachable.
 */
export function connectError(err) {
  if (socket.active) return new ChatError("connect_error", `Cannot connect: ${err.message}`);
  const code = err.message;
  return new ChatError(code, REFUSALS[code] ?? `The server refused the connection (${code}).`);
}

/** Emits `event` and resolves with the ack body, or rejects with a ChatError. */
export function request(event, payload, { timeoutMs = REQUEST_TIMEOUT_MS } = {}) {
  const args = payload === undefined ? [] : [payload];
  return new Promise((resolve, reject) => {
    socket.timeout(timeoutMs).emit(event, ...args, (err, reply) => {
      if (err) reject(new ChatError("timeout", "The server did not answer. Check your connection."));
      else if (reply && reply.ok) resolve(reply);
      else reject(new ChatError(reply?.error?.code ?? "unknown", reply?.error?.message ?? "Request failed"));
    });
  });
}

/** Connects without credentials, for a guest's `add user`. */
export function connectAsGuest() {
  if (socket.connected && handshakeToken === null) return Promise.resolve();
  restart(null);
  return new Promise((resolve, reject) => {
    const onConnect = () => { cleanup(); resolve(); };
    const onError = (err) => {
      cleanup();
      const error = connectError(err);
      socket.disconnect();
      reject(error);
    };
    const cleanup = () => { socket.off("connect", onConnect); socket.off("connect_error", onError); };
    socket.once("connect", onConnect);
    socket.once("connect_error", onError);
    socket.connect();
  });
}

/** Connects with an account's token; resolves once the server has logged the socket in. */
export function connectWithToken(token, timeoutMs) {
  restart(token);
  const login = nextLogin(timeoutMs);
  socket.connect();
  return login;
}

/**
 * Resolves on the server's next `login` event (the handshake's token was
 * accepted). Rejects if the server refuses the socket or drops it first;
 * while the server cannot be reached socket.io keeps retrying, and we wait.
 * Call it before the `login` can arrive: before connecting, or in `connect`.
 */
export function nextLogin(timeoutMs = 20000) {
  return new Promise((resolve, reject) => {
    const handlers = {
      login: (body) => settle(resolve, body),
      "chat error": (error) => settle(reject, new ChatError(error?.code ?? "unknown", error?.message ?? "Login refused")),
      connect_error: (err) => { if (!socket.active) settle(reject, connectError(err)); },
      disconnect: (reason) => {
        if (reason === "io server disconnect") settle(reject, new ChatError("refused", "The server closed the connection."));
      },
    };
    const timer = setTimeout(() => {
      socket.disconnect();
      settle(reject, new ChatError("timeout", "Cannot reach the server. Try again later."));
    }, timeoutMs);
    function settle(done, value) {
      clearTimeout(timer);
      for (const [event, handler] of Object.entries(handlers)) socket.off(event, handler);
      done(value);
    }
    for (const [event, handler] of Object.entries(handlers)) socket.on(event, handler);
  });
}

/** Drops any connection (its handshake is over) before connecting with `token`. */
function restart(token) {
  if (socket.connected || socket.active) socket.disconnect();
  handshakeToken = token;
}

/** Closes the connection for good (log out): no reconnect, no token. */
export function disconnect() {
  handshakeToken = null;
  socket.disconnect();
}
