// The Node.js baseline for chatwire's benchmarks: a plain socket.io 4 server
// with the official Redis adapter, written the way teams run one today. It
// serves only the events the benchmark scenarios use (`add user`, `join`,
// `message`), with the same payloads and acks as chatwire (docs/PROTOCOL.md),
// so the load generator drives both servers unchanged.
//
//   PORT       port to listen on; 0 picks a free one (default 3000)
//   HOST       address to bind (default 127.0.0.1)
//   REDIS_URL  redis://host:port to share rooms between instances; unset = one instance

import { createServer } from "node:http";
import { Server } from "socket.io";
import { createAdapter } from "@socket.io/redis-adapter";
import { createClient } from "redis";

const PORT = Number(process.env.PORT ?? 3000);
const HOST = process.env.HOST || "127.0.0.1";
const REDIS_URL = process.env.REDIS_URL;

const MAX_NAME_CHARS = 32;
const MAX_ROOM_CHARS = 64;
const MAX_TEXT_CHARS = 4000;

/** Builds the `adapter` option: Redis pub/sub as the adapter's README shows, or none. */
async function redisAdapter(url) {
  const pubClient = createClient({ url });
  const subClient = pubClient.duplicate();
  for (const client of [pubClient, subClient]) {
    client.on("error", (err) => console.error(`redis: ${err.message}`));
  }
  await Promise.all([pubClient.connect(), subClient.connect()]);
  return createAdapter(pubClient, subClient);
}

/** A string of 1..max characters (code points), or undefined. */
function boundedString(value, max) {
  if (typeof value !== "string") return undefined;
  const trimmed = value.trim();
  const length = [...trimmed].length;
  return length >= 1 && length <= max ? trimmed : undefined;
}

function refuse(ack, code, message) {
  if (typeof ack === "function") ack({ ok: false, error: { code, message } });
}

// Message ids sort by time as strings: zero-padded milliseconds, then a
// per-process sequence (the pid keeps two instances' ids apart).
let sequence = 0;
function messageId() {
  sequence = (sequence + 1) % 1e6;
  return `${String(Date.now()).padStart(15, "0")}-${process.pid}-${String(sequence).padStart(6, "0")}`;
}

// numUsers counts the logged-in sockets of this instance only: a
// deployment-wide count would need shared state beyond what the adapter
// gives, and a typical app of this size does not keep one.
let numUsers = 0;

function onConnection(socket) {
  socket.on("add user", (name, ack) => {
    if (socket.data.username) return refuse(ack, "already_logged_in", "this socket is logged in");
    const username = boundedString(name, MAX_NAME_CHARS);
    if (!username) return refuse(ack, "invalid_username", `a name is 1-${MAX_NAME_CHARS} characters`);
    socket.data.username = username;
    socket.join(`user:${username}`);
    numUsers += 1;
    socket.emit("login", { numUsers });
    socket.broadcast.emit("user joined", { username, numUsers });
    if (typeof ack === "function") ack({ ok: true, username, numUsers });
  });

  socket.on("join", (payload, ack) => {
    if (!socket.data.username) return refuse(ack, "not_logged_in", "send add user first");
    const room = boundedString(payload?.room, MAX_ROOM_CHARS);
    if (!room || room.startsWith("user:")) return refuse(ack, "invalid_room", `a room is 1-${MAX_ROOM_CHARS} characters`);
    socket.join(room);
    // No member list or history: the baseline keeps no state beyond the adapter's.
    if (typeof ack === "function") ack({ ok: true, room, members: [], history: [] });
  });

  socket.on("message", (payload, ack) => {
    const from = socket.data.username;
    if (!from) return refuse(ack, "not_logged_in", "send add user first");
    const text = boundedString(payload?.text, MAX_TEXT_CHARS);
    if (!text) return refuse(ack, "invalid_text", `a text is 1-${MAX_TEXT_CHARS} characters`);
    const message = { id: messageId(), ts: Date.now(), from };
    if (payload.room !== undefined && payload.to === undefined) {
      const room = boundedString(payload.room, MAX_ROOM_CHARS);
      if (!room || !socket.rooms.has(room)) return refuse(ack, "not_in_room", "join the room first");
      message.room = room;
      message.text = text;
      socket.to(room).emit("message", message);
    } else if (payload.to !== undefined && payload.room === undefined) {
      const to = boundedString(payload.to, MAX_NAME_CHARS);
      if (!to) return refuse(ack, "invalid_username", `a name is 1-${MAX_NAME_CHARS} characters`);
      message.to = to;
      message.text = text;
      // The recipient's sockets and the sender's other tabs, as chatwire does.
      socket.to([`user:${to}`, `user:${from}`]).emit("message", message);
    } else {
      return refuse(ack, "invalid_payload", "give exactly one of room and to");
    }
    if (typeof ack === "function") ack({ ok: true, message });
  });

  socket.on("disconnect", () => {
    const username = socket.data.username;
    if (!username) return;
    numUsers -= 1;
    socket.broadcast.emit("user left", { username, numUsers });
  });
}

const httpServer = createServer();
const io = new Server(httpServer, {
  transports: ["websocket"],
  adapter: REDIS_URL ? await redisAdapter(REDIS_URL) : undefined,
});
io.on("connection", onConnection);

httpServer.listen(PORT, HOST, () => {
  const { port } = httpServer.address();
  console.log(`listening on http://${HOST}:${port}`);
});

for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => {
    io.close();
    process.exit(0);
  });
}
