// Who this page is logged in as, and how to get back in: kept in
// localStorage so a reload (or another tab) stays logged in until "Log out".
//
// A login is { kind: "account" | "guest", username, token, session?, rooms }:
// accounts reconnect with `token` in the socket handshake; guests send
// `add user { username, session }` again. Both use `token` for the HTTP API.

const KEY = "chatwire.login";

let login = null;

/** The current login, or null. */
export function currentLogin() {
  return login;
}

/** The bearer token for the HTTP API, or null. */
export function token() {
  return login?.token ?? null;
}

/** Reads the login a previous page load saved, if any. */
export function restoreLogin() {
  try {
    const saved = JSON.parse(localStorage.getItem(KEY));
    login = saved?.username && saved?.token ? saved : null;
  } catch {
    login = null;
  }
  return login;
}

/** Replaces the login and saves it. */
export function setLogin(value) {
  login = value;
  localStorage.setItem(KEY, JSON.stringify(login));
}

/** Changes some fields of the current login (e.g. the joined rooms). */
export function updateLogin(fields) {
  if (login) setLogin({ ...login, ...fields });
}

/** Forgets the login, here and in storage. */
export function clearLogin() {
  login = null;
  localStorage.removeItem(KEY);
}
