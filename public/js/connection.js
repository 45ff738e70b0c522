// The socket.io connection: requests with acks, login, and what happens on
// reconnect (log in again with the session secret, rejoin, catch up).

/* global io */

const REQUEST_TIMEOUT_MS = 8000;

export const socket = io({ transports: ["websocket"], autoConnect: false });

/** Error answered by the server: `code` is the protocol's error code. */
export class ChatError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

/** Emits `event` and resolves with the ack body, or rejects with a ChatError. */
export function request(event, payload) {
  const args = payload === undefined ? [] : [payload];
  return new Promise((resolve, reject) => {
    socket.timeout(REQUEST_TIMEOUT_MS).emit(event, ...args, (err, reply) => {
      if (err) reject(new ChatError("timeout", "The server did not answer. Check your connection."));
      else if (reply && reply.ok) resolve(reply);
      else reject(new ChatError(reply?.error?.code ?? "unknown", reply?.error?.message ?? "Request failed"));
    });
  });
}

/** Resolves once the socket is connected (connecting it if needed). */
export function connected() {
  if (socket.connected) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const onConnect = () => { cleanup(); resolve(); };
    const onError = (err) => { cleanup(); reject(new ChatError("connect_error", `Cannot connect: ${err.message}`)); };
    const cleanup = () => { socket.off("connect", onConnect); socket.off("connect_error", onError); };
    socket.once("connect", onConnect);
    socket.once("connect_error", onError);
    socket.connect();
  });
}

const SESSION_KEY = "chatwire.session";

/** The saved login of this tab: { username, session, rooms } or null. */
export function savedLogin() {
  try {
    return JSON.parse(sessionStorage.getItem(SESSION_KEY));
  } catch {
    return null;
  }
}

export function saveLogin(login) {
  sessionStorage.setItem(SESSION_KEY, JSON.stringify(login));
}

export function forgetLogin() {
  sessionStorage.removeItem(SESSION_KEY);
}
