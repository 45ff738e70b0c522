// The chat once logged in: entering it, rejoining and catching up after a
// reconnect, and the actions behind the page's controls.

import { socket, request } from "./connection.js";
import {
  state, roomConversation, conversationOf, addMessages, addNotice, lastId, recipients, target, joinedRooms, resetState,
} from "./conversations.js";
import { currentLogin, updateLogin } from "./session.js";
import { keepBytes, forgetFiles } from "./files.js";
import { checkAvatars } from "./avatars.js";
import { loadUsers, resetPeople } from "./people.js";
import { renderMessages } from "./messages-view.js";
import { setComposerEnabled, clearComposer } from "./composer.js";
import { stopTyping } from "./typing.js";
import * as view from "./view.js";
import { $ } from "./dom.js";

const DEFAULT_ROOM = "general";
const FILE_TIMEOUT_MS = 60000;
const ERROR_SHOWN_MS = 6000;

let loggedIn = false;
let errorTimer = null;

/** True while the socket is logged in and the chat is on screen. */
export function isLoggedIn() {
  return loggedIn;
}

/** Shows the chat for the login in session.js, joining its rooms (or #general). */
export async function enterChat() {
  const login = currentLogin();
  state.me = login.username;
  loggedIn = true;
  view.showChat({ guest: login.kind === "guest" });
  view.setStatus("");
  for (const room of login.rooms?.length ? login.rooms : [DEFAULT_ROOM]) await joinRoom(room, { open: false });
  const first = joinedRooms()[0];
  if (first && !state.current) open(roomConversation(first).key);
  await Promise.all([loadUsers(), refreshRooms()]);
}

/** After a reconnect (and a new login): rejoin, and fetch exactly what was missed. */
export async function rejoin() {
  const rooms = joinedRooms();
  view.setStatus("");
  for (const room of rooms) await joinRoom(room, { open: false });
  for (const c of state.conversations.values()) {
    if (c.kind === "dm") await catchUp(c, { with: recipients(c) });
  }
  await Promise.all([loadUsers(), refreshRooms()]);
  redraw();
}

/** Forgets the chat (log out, or a login that is no longer accepted). */
export function leaveChat() {
  loggedIn = false;
  stopTyping();
  resetPeople();
  resetState();
  $("user-search").value = "";
  forgetFiles();
  clearComposer();
  renderMessages();
  view.showError("");
  view.hideChat();
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

export async function joinRoom(room, { open: openIt = true } = {}) {
  const hadMessages = roomConversation(room).messages.length > 0;
  const reply = await request("join", { room });
  const joined = roomConversation(reply.room);
  joined.joined = true;
  joined.members = reply.members;
  addMessages(joined, reply.history);
  if (hadMessages) await catchUp(joined, { room: reply.room });
  updateLogin({ rooms: joinedRooms() });
  if (openIt) open(joined.key);
  else view.renderSidebar(actions);
}

export async function leaveRoom() {
  const c = state.conversations.get(state.current);
  if (c?.kind !== "room") return;
  await request("leave", { room: c.room });
  state.conversations.delete(c.key);
  state.current = null;
  updateLogin({ rooms: joinedRooms() });
  const next = joinedRooms()[0];
  if (next) open(roomConversation(next).key);
  else redraw();
  await refreshRooms();
}

/** Opens a conversation: clears its unread count, fetches a private one's history. */
export function open(key) {
  state.current = key;
  const c = state.conversations.get(key);
  if (c) c.unread = 0;
  if (c?.kind === "dm" && c.messages.length === 0) {
    catchUp(c, { with: recipients(c) }).then(() => renderMessages(), report);
  }
  redraw();
  view.collapseSidebarIfNarrow();
  $("composer-input").focus();
}

function redraw() {
  view.renderSidebar(actions);
  view.renderHeader();
  renderMessages();
  setComposerEnabled(socket.connected && loggedIn && state.current !== null);
}

/** Sends a text, a file, or both to the open conversation. */
export async function send({ text, file }) {
  const c = state.conversations.get(state.current);
  if (!c) return;
  stopTyping();
  const message = { ...target(c) };
  if (text.trim()) message.text = text;
  let bytes = null;
  if (file) {
    bytes = await file.arrayBuffer();
    message.file = { name: file.name, data: bytes };
    if (file.type) message.file.type = file.type;
  }
  const reply = await request("message", message, file ? { timeoutMs: FILE_TIMEOUT_MS } : undefined);
  keepBytes(reply.message, bytes);
  addMessages(c, [reply.message]);
  if (c.key === state.current) renderMessages({ toBottom: true });
}

/** Shows a message that arrived from the server. */
export function receive(message) {
  keepBytes(message);
  const c = conversationOf(message);
  c.typing.delete(message.from);
  countUnread(c, addMessages(c, [message]).length);
  if (c.key === state.current) renderMessages();
  view.renderSidebar(actions);
  checkAvatars([message.from]);
}

/** `member joined`: a notice in the room, and its member list updated. */
export function memberJoined({ room, username }) {
  const c = state.conversations.get(`room:${room}`);
  if (!c) return;
  if (!c.members.includes(username)) c.members = [...c.members, username].sort();
  notice(c, `${username} joined #${room}`);
}

/** `member left`: a notice in the room, and its member list updated. */
export function memberLeft({ room, username }) {
  const c = state.conversations.get(`room:${room}`);
  if (!c) return;
  c.members = c.members.filter((m) => m !== username);
  c.typing.delete(username);
  notice(c, `${username} left #${room}`);
}

function notice(conversation, text) {
  addNotice(conversation, text);
  if (conversation.key === state.current) renderMessages();
  view.renderHeader();
}

export async function refreshRooms() {
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

/** What the sidebar's buttons do. */
export const actions = { open, joinRoom: (room) => joinRoom(room).catch(report) };

/** Shows an error on the chat screen for a few seconds. */
export function report(err) {
  view.showError(err.message);
  clearTimeout(errorTimer);
  errorTimer = setTimeout(() => view.showError(""), ERROR_SHOWN_MS);
}

function countUnread(conversation, count) {
  if (conversation.key !== state.current || document.hidden) conversation.unread += count;
}
