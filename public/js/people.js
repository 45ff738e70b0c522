// Who is online, as the sidebar shows it.
//
// In a small deployment: the whole list, kept current by `users` pushes and
// `user joined` / `user left`. Above the server's announce limit only the
// count arrives (`presence { numUsers }`, about once a second), and names
// come a page or a search at a time (`users { after, prefix, limit }`): a
// 10,000-row list redrawn on every login would freeze the page.

import { request } from "./connection.js";
import { state } from "./conversations.js";
import { checkAvatars } from "./avatars.js";

/** Names asked for at a time. */
export const USERS_PAGE = 50;
/** Typing pauses this long before the online list is searched. */
const SEARCH_DELAY_MS = 250;

let changed = () => {};
/** Counts `users` requests (and pushes): a reply to one superseded by a newer one is dropped. */
let asked = 0;
/** Counts the events that carry the count: a reply read before one of them has an older count. */
let counted = 0;
let searchTimer = null;

/** `f` redraws the sidebar after every change of the list or the count. */
export function onPeopleChange(f) {
  changed = f;
}

/**
 * Reads the first page of the online list (only names starting with the
 * search, if any), or with `more` the page after the one shown.
 */
export async function loadUsers({ more = false } = {}) {
  const query = { limit: USERS_PAGE };
  if (state.userSearch) query.prefix = state.userSearch;
  if (more && state.usersNext) query.after = state.usersNext;
  const mine = ++asked;
  const countedBefore = counted;
  const reply = await request("users", query);
  if (mine !== asked) return;
  const names = reply.users.map((u) => u.username);
  if (countedBefore === counted) state.numUsers = reply.numUsers;
  state.usersNext = reply.next ?? null;
  // The whole list only if one unfiltered page held everyone.
  state.usersComplete = !more && !state.userSearch && !reply.next;
  checkAvatars(names);
  state.users = more ? [...state.users, ...names] : names;
  changed();
}

/** Shows only the names starting with `text` (ignoring case); "" shows everyone. */
export function searchUsers(text) {
  clearTimeout(searchTimer);
  state.userSearch = text.trim();
  // No "More" for the previous list while the new one loads.
  state.usersNext = null;
  changed();
  return loadUsers();
}

/** [`searchUsers`] once typing pauses; failures go to `fail`. */
export function searchSoon(text, fail) {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(() => searchUsers(text).catch(fail), SEARCH_DELAY_MS);
}

/** Forgets the list's requests in flight and pending search (log out). */
export function resetPeople() {
  asked++;
  counted++;
  clearTimeout(searchTimer);
}

/** The `users` push: the whole list (small deployments only). */
export function usersPushed(users) {
  counted++;
  state.numUsers = users.length;
  if (state.userSearch) return changed();
  asked++; // a page in flight would be appended to the wrong list
  const before = new Set(state.users);
  state.users = users.map((u) => u.username);
  Object.assign(state, { usersComplete: true, usersNext: null });
  checkAvatars(state.users.filter((name) => !before.has(name)));
  changed();
}

/** `user joined`: the count, and the name if the whole list is shown. */
export function userJoined({ username, numUsers }) {
  counted++;
  if (Number.isInteger(numUsers)) state.numUsers = numUsers;
  if (state.usersComplete && !state.users.includes(username)) {
    const key = username.toLowerCase();
    const at = state.users.findIndex((name) => name.toLowerCase() > key);
    state.users.splice(at === -1 ? state.users.length : at, 0, username);
    checkAvatars([username]);
  }
  changed();
}

/** `user left`: the count, and the name off the list. */
export function userLeft({ username, numUsers }) {
  counted++;
  if (Number.isInteger(numUsers)) state.numUsers = numUsers;
  if (state.usersComplete) state.users = state.users.filter((name) => name !== username);
  changed();
}

/**
 * `presence`: the count, while too many are online for each login to be
 * announced. The names shown stop following; once few enough are online
 * for one page, the whole list is read again.
 */
export function countChanged({ numUsers }) {
  if (!Number.isInteger(numUsers)) return;
  counted++;
  state.numUsers = numUsers;
  // Back under the limit, the push already gave the whole list.
  if (state.usersComplete && numUsers === state.users.length) return changed();
  const wasComplete = state.usersComplete;
  state.usersComplete = false;
  if (!state.userSearch && (wasComplete || numUsers <= USERS_PAGE)) loadUsers().catch(() => {});
  else changed();
}
