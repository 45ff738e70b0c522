// Wiring: the ways in (register, log in, guest, a saved login), logging in
// again after a reconnect, the socket's events, and the page's controls.

import { socket, request, connectAsGuest, connectWithToken, nextLogin, disconnect, connectError } from "./connection.js";
import * as api from "./api.js";
import { currentLogin, restoreLogin, setLogin, clearLogin } from "./session.js";
import { state, dmConversation, isMe } from "./conversations.js";
import * as chat from "./chat.js";
import * as people from "./people.js";
import { initLoginView, showLogin } from "./login-view.js";
import { initComposer, setComposerEnabled } from "./composer.js";
import { typed, listenForTyping } from "./typing.js";
import { uploadAvatar, avatarChanged } from "./avatars.js";
import * as view from "./view.js";
import { $ } from "./dom.js";
import { loadLimits } from "./files.js";

const ROOMS_REFRESH_MS = 15000;

// ---- the ways in ----

async function registerAccount(username, password) {
  await api.register(username, password);
  await logInAccount(username, password);
}

async function logInAccount(username, password) {
  const { token, username: name } = await api.logIn(username, password);
  await connectWithToken(token);
  setLogin({ kind: "account", username: name, token, rooms: [] });
  await chat.enterChat();
}

async function joinAsGuest(name) {
  await connectAsGuest();
  try {
    await logInGuest(name);
  } catch (err) {
    // A registered name: offer the Log in tab, with the name filled in.
    if (err.code === "name_registered") return showLogin(err.message, { tab: "login", name });
    throw err;
  }
  await chat.enterChat();
}

/** `add user` on a connected socket; `session` (from an earlier login) takes the name back. */
async function logInGuest(username, session) {
  const reply = await request("add user", session ? { username, session } : username);
  const rooms = currentLogin()?.username === reply.username ? currentLogin().rooms : [];
  setLogin({ kind: "guest", username: reply.username, token: reply.token, session: reply.session, rooms });
}

/** A reload: back in with the saved login, without asking. */
async function resumeSavedLogin(saved) {
  view.setStatus("Connecting…");
  try {
    if (saved.kind === "account") await connectWithToken(saved.token);
    else await connectAsGuest().then(() => logInGuest(saved.username, saved.session));
    await chat.enterChat();
  } catch (err) {
    if (!unreachable(err)) clearLogin();
    loggedOut(`Could not log back in: ${err.message}`, saved);
  }
}

/** Codes of failures that say nothing against the saved login (try it again later). */
const PASSING = new Set(["timeout", "connect_error", "too_many_connections", "unavailable"]);

/** True if a login failed only for a passing reason, such as an unreachable server (keep the saved login). */
function unreachable(err) {
  return PASSING.has(err.code);
}

/** Back to the login screen, e.g. when a reconnect's login is refused. */
function loggedOut(message, login = currentLogin()) {
  disconnect();
  chat.leaveChat();
  view.setStatus("");
  showLogin(message, { tab: login?.kind === "guest" ? "guest" : "login", name: login?.username ?? "" });
}

async function logOut() {
  const token = currentLogin()?.token;
  clearLogin();
  // Revoke the token first, so a copy of it (another tab, a stolen one)
  // opens nothing, and a guest's cannot take the name back once it is free.
  if (token) await api.logOut(token).catch(() => {});
  loggedOut("", { kind: "account" });
}

// ---- the connection ----

socket.on("connect", () => {
  if (!chat.isLoggedIn()) return;
  const login = currentLogin();
  // An account's token (sent again in the handshake) logs the socket in by itself.
  const back = login.kind === "account" ? nextLogin() : logInGuest(login.username, login.session);
  back.then(
    () => chat.rejoin().catch(chat.report),
    (err) => {
      if (!unreachable(err)) clearLogin();
      loggedOut(`Reconnected, but could not log back in: ${err.message}`, login);
    },
  );
});

socket.on("connect_error", (err) => {
  // `active` is false when the server refused the handshake (a bad or expired token).
  if (chat.isLoggedIn() && !socket.active) {
    const login = currentLogin();
    const refusal = connectError(err);
    if (!unreachable(refusal)) clearLogin();
    loggedOut(`Could not log back in: ${refusal.message}`, login);
  }
});

socket.on("disconnect", (reason) => {
  setComposerEnabled(false);
  if (!chat.isLoggedIn() || reason === "io client disconnect") return;
  view.setStatus("Connection lost. Reconnecting…");
  // socket.io does not retry after the server closed the socket (e.g. it is
  // shutting down); try once more, and the login step decides.
  if (reason === "io server disconnect") socket.connect();
});

socket.on("message", chat.receive);
socket.on("member joined", chat.memberJoined);
socket.on("member left", chat.memberLeft);
// Presence events before the chat is on screen are covered by its first `users`.
const whenIn = (handle) => (event) => { if (chat.isLoggedIn() && event) handle(event); };
socket.on("users", whenIn(({ users }) => people.usersPushed(users)));
socket.on("user joined", whenIn(people.userJoined));
socket.on("user left", whenIn(people.userLeft));
socket.on("presence", whenIn(people.countChanged));
people.onPeopleChange(() => view.renderSidebar(chat.actions));
socket.on("avatar changed", ({ username }) => avatarChanged(username));
socket.on("chat error", (error) => {
  // The token this page stood on was revoked (a logout elsewhere, a
  // password change) or expired: logging back in needs the password.
  if (error?.code === "session_ended" && chat.isLoggedIn()) {
    const login = currentLogin();
    clearLogin();
    loggedOut(error.message, login);
    return;
  }
  chat.report(error);
});
listenForTyping();

// ---- page controls ----

initLoginView({ register: registerAccount, logIn: logInAccount, guest: joinAsGuest });
initComposer({ send: chat.send, typed, fail: chat.report });

$("new-room-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const room = $("new-room-name").value.trim();
  if (!room) return;
  chat.joinRoom(room).then(() => { $("new-room-name").value = ""; }, chat.report);
});

$("user-search").addEventListener("input", () => people.searchSoon($("user-search").value, chat.report));
$("user-search-form").addEventListener("submit", (event) => {
  event.preventDefault();
  people.searchUsers($("user-search").value).catch(chat.report);
});
$("more-users").addEventListener("click", () => people.loadUsers({ more: true }).catch(chat.report));

$("leave-button").addEventListener("click", () => chat.leaveRoom().catch(chat.report));
$("logout-button").addEventListener("click", logOut);

$("avatar-button").addEventListener("click", () => $("avatar-input").click());
$("avatar-input").addEventListener("change", () => {
  const [file] = $("avatar-input").files;
  $("avatar-input").value = "";
  if (file) uploadAvatar(state.me, file).catch(chat.report);
});

$("sidebar-toggle").addEventListener("click", () => {
  view.setSidebarOpen($("sidebar-toggle").getAttribute("aria-expanded") !== "true");
});

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
  if (chosen.length) chat.open(dmConversation(chosen).key);
});

document.addEventListener("visibilitychange", () => {
  const c = state.conversations.get(state.current);
  if (!document.hidden && c) { c.unread = 0; view.renderSidebar(chat.actions); }
});

setInterval(() => { if (socket.connected) chat.refreshRooms().catch(() => {}); }, ROOMS_REFRESH_MS);

// ---- start ----

loadLimits();

const saved = restoreLogin();
if (saved) resumeSavedLogin(saved);
else showLogin("", { tab: "login" });
