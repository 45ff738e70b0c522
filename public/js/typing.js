// Typing notices: mine (sent while I type, stopped after a pause or when I
// send) and others' (shown under the messages, expiring if their stop is lost).

import { socket } from "./connection.js";
import { state, dmConversation, participantsOf, target } from "./conversations.js";
import { renderTyping } from "./messages-view.js";

const TYPING_IDLE_MS = 2000;
const TYPING_EXPIRY_MS = 6000;

let idleTimer = null;
let typingIn = null;   // key of the conversation I am typing in

/** Call on each keystroke in the composer. */
export function typed() {
  const c = state.conversations.get(state.current);
  if (!c || !socket.connected) return;
  if (typingIn !== c.key) {
    stopTyping();
    typingIn = c.key;
    socket.emit("typing", target(c));
  }
  clearTimeout(idleTimer);
  idleTimer = setTimeout(stopTyping, TYPING_IDLE_MS);
}

/** Tells the others I stopped typing (if I was). */
export function stopTyping() {
  clearTimeout(idleTimer);
  const c = typingIn && state.conversations.get(typingIn);
  typingIn = null;
  if (c && socket.connected) socket.emit("stop typing", target(c));
}

/** The conversation a typing notice is about (bare notices, from the demo, are ignored). */
function conversationOf(notice) {
  if (notice.room) return state.conversations.get(`room:${notice.room}`);
  if (notice.to) return dmConversation(participantsOf({ from: notice.username, to: notice.to }));
  return null;
}

/** Shows others' `typing` / `stop typing` notices. */
export function listenForTyping() {
  for (const event of ["typing", "stop typing"]) {
    socket.on(event, (notice) => {
      const c = conversationOf(notice);
      if (!c) return;
      clearTimeout(c.typing.get(notice.username));
      if (event === "typing") {
        const expire = () => { c.typing.delete(notice.username); renderTyping(); };
        c.typing.set(notice.username, setTimeout(expire, TYPING_EXPIRY_MS));
      } else {
        c.typing.delete(notice.username);
      }
      if (c.key === state.current) renderTyping();
    });
  }
}
