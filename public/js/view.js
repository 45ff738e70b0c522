// The chat screen's frame: who I am, the sidebar (rooms, people online,
// private conversations, unread badges), the conversation header, the
// status bar and the error line. User-supplied strings are set as text.

import { state, joinedRooms, roomConversation, dmConversation, dmKey, isMe, totalUnread } from "./conversations.js";
import { avatarElement } from "./avatars.js";
import { $, el } from "./dom.js";

const narrow = window.matchMedia("(max-width: 700px)");

/** Shows the chat screen for the logged-in user (`guest`: no avatar upload). */
export function showChat({ guest }) {
  $("login-view").hidden = true;
  $("chat-view").hidden = false;
  $("me-name").textContent = state.me;
  $("me-kind").textContent = guest ? "guest" : "";
  $("me-avatar").replaceChildren(avatarElement(state.me));
  $("avatar-button").disabled = guest;
  $("avatar-button").title = guest ? "Register an account to set a picture" : "Change your picture";
}

export function hideChat() {
  $("chat-view").hidden = true;
}

export function setStatus(text) {
  $("status").hidden = !text;
  $("status").textContent = text ?? "";
}

export function showError(text) {
  $("chat-error").textContent = text ?? "";
}

/** Opens or closes the sidebar's lists (they collapse on narrow screens only). */
export function setSidebarOpen(open) {
  $("chat-view").classList.toggle("sidebar-collapsed", !open);
  $("sidebar-toggle").setAttribute("aria-expanded", String(open));
}

/** After picking a conversation on a narrow screen, make room for it. */
export function collapseSidebarIfNarrow() {
  if (narrow.matches) setSidebarOpen(false);
}

function listButton(label, { current = false, unread = 0, hint = "", onClick, name }) {
  const item = el("li");
  const button = el("button");
  button.type = "button";
  if (name) button.append(avatarElement(name));
  button.append(el("span", "label", label));
  if (hint) button.append(el("span", "hint", hint));
  if (unread > 0) {
    const badge = el("span", "unread", String(unread));
    badge.title = `${unread} unread`;
    button.append(badge);
  }
  button.setAttribute("aria-current", String(current));
  if (unread > 0) button.setAttribute("aria-label", `${label}, ${unread} unread`);
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
  $("user-count").textContent = `(${state.usersComplete ? state.users.length : state.numUsers})`;
  // A list too long for one page: search it, page through it.
  $("user-search-form").hidden = state.usersComplete && !state.userSearch;
  $("more-users").hidden = !state.usersNext;
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
  const unread = totalUnread();
  document.title = unread > 0 ? `(${unread}) chatwire` : "chatwire";
}

export function renderHeader() {
  const c = state.conversations.get(state.current);
  $("conversation-title").textContent = c ? c.title : "Pick a conversation";
  $("conversation-members").textContent =
    c?.kind === "room" ? `${c.members.length} member${c.members.length === 1 ? "" : "s"}: ${c.members.join(", ")}` : "";
  $("leave-button").hidden = c?.kind !== "room";
}
