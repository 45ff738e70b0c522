// The open conversation: its messages, join/leave notices and who is typing.
// Text always goes through textContent, never innerHTML: a message like
// "<b>hi</b>" shows as those characters. Files show as an inline image, an
// audio or video player, or a download link. Elements are kept per message
// and reused, so a new message does not restart a playing video.

import { state, isMe } from "./conversations.js";
import { avatarElement, refreshAvatarsIn } from "./avatars.js";
import { kindOf, fileUrl, loadFile, sizeLabel } from "./files.js";
import { $, el } from "./dom.js";

const list = $("messages");

const elements = new WeakMap();  // message or notice → its <li>
const loaders = new WeakMap();   // file element waiting to come into view → its loader
let shown = null;                // key of the conversation on screen
let atBottom = true;             // whether the list is scrolled to its end

const timeFormat = new Intl.DateTimeFormat([], { hour: "2-digit", minute: "2-digit" });
const dateTimeFormat = new Intl.DateTimeFormat([], { dateStyle: "medium", timeStyle: "short" });

// History files are downloaded only when their message is (nearly) on screen.
const lazy = new IntersectionObserver((entries) => {
  for (const entry of entries) {
    if (!entry.isIntersecting) continue;
    lazy.unobserve(entry.target);
    loaders.get(entry.target)?.();
  }
}, { root: list, rootMargin: "300px" });

list.addEventListener("scroll", () => { atBottom = nearBottom(); });

function nearBottom() {
  return list.scrollHeight - list.scrollTop - list.clientHeight < 40;
}

function keepAtBottom() {
  if (atBottom) list.scrollTop = list.scrollHeight;
}

/** Redraws the open conversation; `toBottom` scrolls to its end (after I send). */
export function renderMessages({ toBottom = false } = {}) {
  const c = state.conversations.get(state.current);
  const switched = shown !== state.current;
  const stick = toBottom || switched || nearBottom();
  shown = state.current;
  const nodes = c ? c.messages.map(elementOf) : [];
  // Moves only what changed: a node taken out of the page would stop playing.
  nodes.forEach((node, i) => {
    if (list.children[i] !== node) list.insertBefore(node, list.children[i] ?? null);
  });
  while (list.children.length > nodes.length) list.lastElementChild.remove();
  if (switched) refreshAvatarsIn(list);
  if (stick) { list.scrollTop = list.scrollHeight; atBottom = true; }
  renderTyping();
}

function elementOf(message) {
  if (!elements.has(message)) elements.set(message, message.notice ? el("li", "notice", message.notice) : messageItem(message));
  return elements.get(message);
}

function messageItem(message) {
  const item = el("li", `message${isMe(message.from) ? " mine" : ""}`);
  item.dataset.id = message.id;
  const meta = el("div", "meta");
  meta.append(el("span", "from", message.from), timeElement(message.ts));
  if (Array.isArray(message.to)) meta.append(el("span", "hint", ` to ${message.to.join(", ")}`));
  const body = el("div", "body");
  if (message.text) body.append(el("div", "text", message.text));
  if (message.file) body.append(fileElement(message));
  item.append(avatarElement(message.from), meta, body);
  return item;
}

function timeElement(ts) {
  const date = new Date(ts);
  const today = date.toDateString() === new Date().toDateString();
  const time = el("time", "time", today ? timeFormat.format(date) : dateTimeFormat.format(date));
  time.dateTime = date.toISOString();
  time.title = dateTimeFormat.format(date);
  return time;
}

/** A file: its preview or player (if any) and a link to save it. */
function fileElement(message) {
  const { file } = message;
  const kind = kindOf(file.type);
  const figure = el("figure", `file file-${kind}`);
  const media = mediaElement(kind, file.name);
  const link = el("a", "file-link", file.name);
  link.download = file.name;
  const caption = el("figcaption");
  caption.append(link, el("span", "hint", ` · ${sizeLabel(file.size)}`));
  if (media) figure.append(media);
  figure.append(caption);

  const show = (url) => {
    if (media) media.src = url;
    link.href = url;
    figure.classList.remove("loading");
  };
  const failed = (err) => {
    figure.classList.replace("loading", "failed");
    caption.append(el("span", "error", ` (unavailable: ${err.message})`));
  };
  const url = fileUrl(message);
  if (url) {
    show(url);
  } else {
    figure.classList.add("loading");
    loaders.set(figure, () => loadFile(message).then(show, failed));
    lazy.observe(figure);
  }
  return figure;
}

function mediaElement(kind, name) {
  if (kind === "image") {
    const img = el("img");
    img.alt = name;
    img.addEventListener("load", keepAtBottom);
    return img;
  }
  if (kind === "audio" || kind === "video") {
    const player = el(kind);
    player.controls = true;
    player.preload = "metadata";
    player.addEventListener("loadedmetadata", keepAtBottom);
    return player;
  }
  return null;
}

/** "bob is typing…" for the open conversation. */
export function renderTyping() {
  const c = state.conversations.get(state.current);
  const names = c ? [...c.typing.keys()] : [];
  $("typing").textContent =
    names.length === 0 ? "" : names.length === 1 ? `${names[0]} is typing…` : `${names.join(", ")} are typing…`;
}
