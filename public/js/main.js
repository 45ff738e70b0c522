// Wiring: login, the socket's events, and the page's controls.

import { socket, request, connected, savedLogin, saveLogin, forgetLogin } from "./connection.js";
import {
  state, roomConversation, dmConversation, conversationOf, participantsOf, addMessages, addNotice, lastId, recipients,
  target, joinedRooms, isMe,
} from "./conversations.js";
import * as view from "./view.js";

const $ = (id) => document.getElementById(id);
const DEFAULT_ROOM = "general";
const TYPING_IDLE_MS = 2000;
const TYPING_EXPIRY_MS = 6000;
const ROOMS_REFRESH_MS = 15000;

let session = null;        // secret that lets this tab take its name back
let loggedIn = false;

// ---- login and reconnect ----

async function logIn(username) {
  await connected();
  const reply = await request("add user", session ? { username, session } : username);
  state.me = reply.username;
  session = reply.session;
  loggedIn = true;
  remember();
  return reply;
}

function remember() {
  saveLogin({ username: state.me, session, rooms: joinedRooms() });
}

async function start(username, rooms) {
  await logIn(username);
  view.showChat();
  view.setStatus("");
  for (const room of rooms.length ? rooms : [DEFAULT_ROOM]) await joinRoom(room, { open: false });
  const first = joinedRooms()[0];
  if (first && !state.current) open(roomConversation(first).key);
  await Promise.all([refreshUsers(), refreshRooms()]);
}

/** After a reconnect: log in again, rejoin, and fetch exactly what was missed. */
async function resume() {
  const rooms = joinedRooms();
  try {
    await logIn(state.me);
  } catch (err) {
    loggedIn = false;
    forgetLogin();
    view.showLogin(`Reconnected, but could not log back in: ${err.message}`);
    return;
  }
  view.setStatus("");
  view.setComposerEnabled(true);
  for (const room of rooms) await joinRoom(room, { open: false });
  for (const c of state.conversations.values()) {
    if (c.kind === "dm") await catchUp(c, { with: recipients(c) });
  }
  await Promise.all([refreshUsers(), refreshRooms()]);
  view.renderMessages();
}

/** Pages through `history { after }` until the conversation is up to date. */
async function catchUp(conversation, where) {
  for (;;) {
    const after = lastId(conversation);
    const reply = await request("history", after ? { ...where, after } : where);
    const fresh = addMessages(conversation, reply.messages);
    countUnread(conversation, fresh.length);
    if (!after || reply.messages.length === 0 || fresh.length === 0) return;
  }
}

// ---- actions ----

async function joinRoom(room, { open: openIt = true } = {}) {
  const c = roomConversation(room);
  const hadMessages = c.messages.length > 0;
  const reply = await request("join", { room });
  const joined = roomConversation(reply.room);
  joined.joined = true;
  joined.members = reply.members;
  addMessages(joined, reply.history);
  if (hadMessages) await catchUp(joined, { room: reply.room });
  remember();
  if (openIt) open(joined.key);
  else view.renderSidebar(actions);
}

async function leaveRoom() {
  const c = state.conversations.get(state.current);
  if (c?.kind !== "room") return;
  await request("leave", { room: c.room });
  state.conversations.delete(c.key);
  state.current = null;
  remember();
  const next = joinedRooms()[0];
  if (next) open(roomConversation(next).key);
  else redraw();
  refreshRooms();
}

function open(key) {
  state.current = key;
  const c = state.conversations.get(key);
  if (c) c.unread = 0;
  if (c?.kind === "dm" && c.messages.length === 0) {
    catchUp(c, { with: recipients(c) }).then(() => view.renderMessages(), report);
  }
  redraw();
  $("composer-input").focus();
}

function redraw() {
  view.renderSidebar(actions);
  view.renderHeader();
  view.renderMessages();
  view.setComposerEnabled(socket.connected && loggedIn);
}

async function send(text) {
  const c = state.conversations.get(state.current);
  if (!c || !text.trim()) return;
  stopTyping();
  const reply = await request("message", { ...target(c), text });
  addMessages(c, [reply.message]);
  view.renderMessages();
}

async function refreshUsers() {
  const reply = await request("users");
  state.users = reply.users.map((u) => u.username);
  view.renderSidebar(actions);
}

async function refreshRooms() {
  if (!loggedIn) return;
  const reply = await request("rooms");
  state.rooms = reply.rooms;
  for (const { room, members } of reply.rooms) {
    const c = state.conversations.get(`room:${room}`);
    if (c) c.members = members;
  }
  view.renderSidebar(actions);
  view.renderHeader();
}

const actions = { open, joinRoom: (room) => joinRoom(room).catch(report) };

function report(err) {
  view.showError(err.message);
  setTimeout(() => view.showError(""), 6000);
}

function countUnread(conversation, count) {
  if (conversation.key !== state.current || document.hidden) conversation.unread += count;
}

// ---- typing ----

let typingTimer = null;
let typingIn = null;

function typed() {
  const c = state.conversations.get(state.current);
  if (!c || !socket.connected) return;
  if (typingIn !== c.key) {
    stopTyping();
    typingIn = c.key;
    socket.emit("typing", target(c));
  }
  clearTimeout(typingTimer);
  typingTimer = setTimeout(stopTyping, TYPING_IDLE_MS);
}

function stopTyping() {
  clearTimeout(typingTimer);
  const c = typingIn && state.conversations.get(typingIn);
  typingIn = null;
  if (c && socket.connected) socket.emit("stop typing", target(c));
}

/** The conversation a typing notice is about (bare notices, from the demo, are ignored). */
function typingConversation(notice) {
  if (notice.room) return state.conversations.get(`room:${notice.room}`);
  if (notice.to) return dmConversation(participantsOf({ from: notice.username, to: notice.to }));
  return null;
}

// ---- server events ----

socket.on("message", (message) => {
  const c = conversationOf(message);
  c.typing.delete(message.from);
  const fresh = addMessages(c, [message]);
  countUnread(c, fresh.length);
  if (c.key === state.current) view.renderMessages();
  view.renderSidebar(actions);
});

function notice(room, text) {
  const c = state.conversations.get(`room:${room}`);
  if (!c) return;
  addNotice(c, text);
  if (c.key === state.current) view.renderMessages();
}

socket.on("member joined", ({ room, username }) => {
  const c = state.conversations.get(`room:${room}`);
  if (c && !c.members.includes(username)) c.members = [...c.members, username].sort();
  notice(room, `${username} joined #${room}`);
  view.renderHeader();
});

socket.on("member left", ({ room, username }) => {
  const c = state.conversations.get(`room:${room}`);
  if (c) c.members = c.members.filter((m) => m !== username);
  c?.typing.delete(username);
  notice(room, `${username} left #${room}`);
  view.renderHeader();
});

socket.on("users", ({ users }) => {
  state.users = users.map((u) => u.username);
  view.renderSidebar(actions);
});

for (const event of ["typing", "stop typing"]) {
  socket.on(event, (notice) => {
    const c = typingConversation(notice);
    if (!c) return;
    clearTimeout(c.typing.get(notice.username));
    if (event === "typing") {
      c.typing.set(notice.username, setTimeout(() => { c.typing.delete(notice.username); view.renderTyping(); }, TYPING_EXPIRY_MS));
    } else {
      c.typing.delete(notice.username);
    }
    if (c.key === state.current) view.renderTyping();
  });
}

socket.on("chat error", (error) => report(error));

socket.on("disconnect", (reason) => {
  view.setComposerEnabled(false);
  if (reason !== "io client disconnect") view.setStatus("Connection lost. Reconnecting…");
});

socket.on("connect", () => {
  if (loggedIn && state.me) resume().catch(report);
});

// ---- page controls ----

$("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const name = $("login-name").value.trim();
  if (!name) return;
  $("login-button").disabled = true;
  try {
    await start(name, []);
  } catch (err) {
    view.showLogin(err.message);
  }
});

$("composer").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = $("composer-input");
  const text = input.value;
  send(text).then(() => { input.value = ""; }, report);
});

$("composer-input").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey) {
    event.preventDefault();
    $("composer").requestSubmit();
  }
});
$("composer-input").addEventListener("input", typed);

$("new-room-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const room = $("new-room-name").value.trim();
  if (!room) return;
  joinRoom(room).then(() => { $("new-room-name").value = ""; }, report);
});

$("leave-button").addEventListener("click", () => leaveRoom().catch(report));

$("group-button").addEventListener("click", () => {
  const others = state.users.filter((name) => !isMe(name));
  $("group-choices").replaceChildren(
    ...others.map((name) => {
      const label = document.createElement("label");
      const box = document.createElement("input");
      box.type = "checkbox";
      box.value = name;
      label.append(box, ` ${name}`);
      return label;
    }),
  );
  $("group-dialog").showModal();
});

$("group-dialog").addEventListener("close", () => {
  if ($("group-dialog").returnValue !== "start") return;
  const chosen = [...$("group-choices").querySelectorAll("input:checked")].map((box) => box.value);
  if (chosen.length) open(dmConversation(chosen).key);
});

document.addEventListener("visibilitychange", () => {
  const c = state.conversations.get(state.current);
  if (!document.hidden && c) { c.unread = 0; view.renderSidebar(actions); }
});

setInterval(() => { if (socket.connected) refreshRooms().catch(() => {}); }, ROOMS_REFRESH_MS);

// A reload of the tab keeps the name and rooms.
const saved = savedLogin();
if (saved?.username) {
  session = saved.session;
  $("login-name").value = saved.username;
  start(saved.username, saved.rooms ?? []).catch((err) => { forgetLogin(); view.showLogin(err.message); });
} else {
  view.showLogin();
}
