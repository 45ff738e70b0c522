// The composer: a text box (Enter sends, Shift+Enter starts a new line), an
// optional attached file shown with a remove button, and the send button.
// Sends go out one after another, in the order they were submitted; the box
// is cleared at once, and given back its text if the send fails.

import { maxFileBytes, sizeLabel } from "./files.js";
import { $ } from "./dom.js";

let attached = null;      // the File to send with the next message
let queue = Promise.resolve();

function attach(file) {
  attached = file;
  $("attachment").hidden = !file;
  $("attachment-name").textContent = file ? `${file.name} (${sizeLabel(file.size)})` : "";
}

/**
 * Wires the composer: `send({ text, file })` returns a promise, `typed()` is
 * called on each keystroke, `fail(err)` shows an error.
 */
export function initComposer({ send, typed, fail }) {
  const input = $("composer-input");
  const picker = $("file-input");

  $("attach-button").addEventListener("click", () => picker.click());
  picker.addEventListener("change", () => {
    const [file] = picker.files;
    picker.value = ""; // so that picking the same file again is noticed
    if (!file) return;
    if (file.size > maxFileBytes) {
      fail(new Error(`${file.name} is ${sizeLabel(file.size)}; files are at most ${sizeLabel(maxFileBytes)}.`));
      return;
    }
    attach(file);
    input.focus();
  });
  $("attachment-remove").addEventListener("click", () => { attach(null); input.focus(); });

  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      $("composer").requestSubmit();
    }
  });
  input.addEventListener("input", typed);

  $("composer").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value;
    const file = attached;
    if (!text.trim() && !file) return;
    input.value = "";
    attach(null);
    queue = queue.then(() => send({ text, file })).catch((err) => {
      if (!input.value) input.value = text;
      if (!attached && file) attach(file);
      fail(err);
    });
  });
}

/** Enables the composer when a conversation is open and the socket is logged in. */
export function setComposerEnabled(usable) {
  for (const id of ["composer-input", "send-button", "attach-button"]) $(id).disabled = !usable;
}

/** Drops the attached file and the draft (log out). */
export function clearComposer() {
  attach(null);
  $("composer-input").value = "";
}
