// The login screen: three tabs (Register, Log in, Guest), each a form. The
// forms hand their values to the handlers main.js gives; a rejected promise
// is shown as the screen's error.

import { $ } from "./dom.js";

const TABS = ["register", "login", "guest"];
const focusOf = { register: "register-name", login: "login-name", guest: "guest-name" };

/** Shows tab `name` (its form), and focuses its first field. */
function selectTab(name, { focus = true } = {}) {
  for (const tab of TABS) {
    const selected = tab === name;
    const button = $(`tab-${tab}`);
    button.setAttribute("aria-selected", String(selected));
    button.tabIndex = selected ? 0 : -1;
    $(`${tab}-form`).hidden = !selected;
  }
  if (focus) $(focusOf[name]).focus();
}

function selectedTab() {
  return TABS.find((tab) => $(`tab-${tab}`).getAttribute("aria-selected") === "true");
}

/**
 * Wires the screen. `handlers` has register(name, password),
 * logIn(name, password) and guest(name), each returning a promise.
 */
export function initLoginView(handlers) {
  for (const tab of TABS) {
    $(`tab-${tab}`).addEventListener("click", () => { showLoginError(""); selectTab(tab); });
  }
  // Arrow keys move between tabs, as in any tab list.
  $("tab-login").parentElement.addEventListener("keydown", (event) => {
    const moves = { ArrowLeft: -1, ArrowRight: 1, Home: -TABS.length, End: TABS.length };
    if (!(event.key in moves)) return;
    event.preventDefault();
    const index = Math.max(0, Math.min(TABS.length - 1, TABS.indexOf(selectedTab()) + moves[event.key]));
    selectTab(TABS[index], { focus: false });
    $(`tab-${TABS[index]}`).focus();
  });

  submit("register-form", () => handlers.register($("register-name").value.trim(), $("register-password").value));
  submit("login-form", () => handlers.logIn($("login-name").value.trim(), $("login-password").value));
  submit("guest-form", () => handlers.guest($("guest-name").value.trim()));
}

function submit(formId, action) {
  $(formId).addEventListener("submit", async (event) => {
    event.preventDefault();
    setBusy(true);
    showLoginError("");
    try {
      await action();
    } catch (err) {
      showLoginError(err.message);
    } finally {
      setBusy(false);
    }
  });
}

function setBusy(busy) {
  for (const tab of TABS) $(`${tab}-form`).querySelector("button[type=submit]").disabled = busy;
}

function showLoginError(text) {
  $("login-error").textContent = text ?? "";
}

/**
 * Shows the login screen with an optional error, on tab `tab` (default: the
 * one already selected), with `name` filled in.
 */
export function showLogin(error = "", { tab = selectedTab(), name = "" } = {}) {
  $("chat-view").hidden = true;
  $("login-view").hidden = false;
  for (const field of ["register-password", "login-password"]) $(field).value = "";
  if (name) for (const field of ["register-name", "login-name", "guest-name"]) $(field).value = name;
  selectTab(tab);
  showLoginError(error);
  setBusy(false);
}
