// Rendering. Every user-supplied string goes through textContent, never
// innerHTML: a message like "<b>hi</b>" shows as those characters.

import { state, joinedRooms, roomConversation, dmConversation, dmKey, isMe } from "./conversations.js";

const $ = (id) => document.getElementById(id);

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function avatar(name) {
  const node = el("span", "avatar", [...name][0]?.toUpperCase() ?? "?");
  node.setAttribute("aria-hidden", "true");
  return node;
}

const timeFormat = new Intl.DateTimeFormat([], { hour: "2-digit", minute: "2-digit" });

export function showLogin(error = "") {
  $("chat-view").hidden = true;
  $("login-view").hidden = false;
  $("login-error").textContent = error;
  $("login-button").disabled = false;
  $("login-name").focus();
}

export function showChat() {
  $("login-view").hidden = true;
  $("chat-view").hidden = false;
  $("me-name").textContent = state.me;
  $("me-avatar").textContent = [...state.me][0]?.toUpperCase() ?? "?";
}

export function setStatus(text) {
  $("status").hidden = !text;
  $("status").textContent = text ?? "";
}

export function setComposerEnabled(enabled) {
  const usable = enabled && state.current !== null;
  $("composer-input").disabled = !usable;
  $("send-button").disabled = !usable;
}

export function showError(text) {
  $("chat-error").textContent = text ?? "";
}

function listButton(label, { current = false, unread = 0, hint = "", onClick, name }) {
  const item = el("li");
  const button = el("button");
  button.type = "button";
  if (name) button.append(avatar(name));
  button.append(el("span", "label", label));
  if (hint) button.append(el("span", "hint", hint));
  if (unread > 0) button.append(el("span", "unread", String(unread)));
  button.setAttribute("aria-current", String(current));
  button.addEventListener("click", onClick);
  item.append(button);
  return item;
}

export function renderSidebar(actions) {
  const joined = joinedRooms();
  const known = state.rooms.map((r) => r.room).filter((room) => !joined.includes(room));
  $("room-list").replaceChildren(
    ...joined.map((room) => {
      const c = roomConversation(room);
      return listButton(`#${room}`, { current: state.current === c.key, unread: c.unread, onClick: () => actions.open(c.key) });
    }),
    ...known.map((room) => listButton(`#${room}`, { hint: "join", onClick: () => actions.joinRoom(room) })),
  );

  const others = state.users.filter((name) => !isMe(name));
  $("user-count").textContent = `(${state.users.length})`;
  $("user-list").replaceChildren(
    ...others.map((name) => {
      const unread = state.conversations.get(dmKey([name]))?.unread ?? 0;
      return listButton(name, { name, unread, onClick: () => actions.open(dmConversation([name]).key) });
    }),
  );

  const dms = [...state.conversations.values()].filter((c) => c.kind === "dm");
  $("dm-list").replaceChildren(
    ...dms.map((c) => listButton(c.title, { current: state.current === c.key, unread: c.unread, onClick: () => actions.open(c.key) })),
  );
}

export function renderHeader() {
  const c = state.conversations.get(state.current);
  $("conversation-title").textContent = c ? c.title : "Pick a conversation";
  $("conversation-members").textContent =
    c?.kind === "room" ? `${c.members.length} member${c.members.length === 1 ? "" : "s"}: ${c.members.join(", ")}` : "";
  $("leave-button").hidden = c?.kind !== "room";
}

function messageItem(message) {
  const item = el("li", `message${isMe(message.from) ? " mine" : ""}`);
  item.dataset.id = message.id;
  const meta = el("div", "meta");
  meta.append(el("span", "from", message.from));
  const time = el("time", "time", timeFormat.format(new Date(message.ts)));
  time.dateTime = new Date(message.ts).toISOString();
  meta.append(time);
  if (Array.isArray(message.to)) meta.append(el("span", "hint", ` to ${message.to.join(", ")}`));
  item.append(avatar(message.from), meta, el("div", "text", message.text ?? ""));
  return item;
}

function noticeItem(text) {
  return el("li", "notice", text);
}

/** Redraws the open conversation's messages and notices. */
export function renderMessages() {
  const c = state.conversations.get(state.current);
  const list = $("messages");
  list.replaceChildren(...(c ? c.messages.map((m) => (m.notice ? noticeItem(m.notice) : messageItem(m))) : []));
  list.scrollTop = list.scrollHeight;
  renderTyping();
}

export function renderTyping() {
  const c = state.conversations.get(state.current);
  const names = c ? [...c.typing.keys()] : [];
  $("typing").textContent =
    names.length === 0 ? "" : names.length === 1 ? `${names[0]} is typing…` : `${names.join(", ")} are typing…`;
}
