// Avatars: each user's picture as an object URL, or their initial when they
// have none. A user's avatar is fetched when first shown, and revalidated (a
// conditional request, answered 304 while unchanged) when the server says it
// changed (`avatar changed`), when they come online, and when they write: a
// change missed while disconnected shows once that user comes back or writes.

import { token } from "./session.js";
import { uploadAvatar as putAvatar, ApiError } from "./api.js";

/** Largest avatar the server takes. */
const MAX_AVATAR_BYTES = 1024 * 1024;
const AVATAR_TYPES = ["image/png", "image/jpeg", "image/gif", "image/webp", "image/avif"];
/** Two checks of one user's avatar are at least this far apart. */
const MIN_RECHECK_MS = 2000;

// name (lowercase) → { url, etag, checkedAt, inFlight, again, timer }
const known = new Map();

const keyOf = (name) => name.toLowerCase();

function entryOf(name) {
  const key = keyOf(name);
  if (!known.has(key)) known.set(key, { url: null, etag: null, checkedAt: 0, inFlight: false, again: false, timer: null });
  return known.get(key);
}

/** An avatar element for `name`: its picture once known, its initial until then. */
export function avatarElement(name) {
  const node = document.createElement("span");
  node.className = "avatar";
  node.dataset.name = name;
  node.setAttribute("aria-hidden", "true");
  fill(node);
  if (entryOf(name).checkedAt === 0) checkAvatar(name);
  return node;
}

function fill(node) {
  const { name } = node.dataset;
  const { url } = entryOf(name);
  if (url) {
    const img = document.createElement("img");
    img.alt = "";
    img.src = url;
    node.replaceChildren(img);
  } else {
    node.replaceChildren([...name][0]?.toUpperCase() ?? "?");
  }
  node.dataset.shown = url ?? "";
  node.classList.toggle("has-picture", Boolean(url));
}

/**
 * Brings the avatars under `root` up to date: kept elements (messages of a
 * conversation not on screen) miss the changes made while they were away.
 */
export function refreshAvatarsIn(root) {
  for (const node of root.querySelectorAll(".avatar")) {
    if (node.dataset.shown !== (entryOf(node.dataset.name).url ?? "")) fill(node);
  }
}

/**
 * Asks the server whether `name`'s avatar changed. Checks of one user are
 * spaced by MIN_RECHECK_MS; one asked for sooner is postponed, not dropped.
 */
function checkAvatar(name, { now = false } = {}) {
  const entry = entryOf(name);
  if (entry.inFlight) { entry.again = true; return; }
  const wait = now ? 0 : entry.checkedAt + MIN_RECHECK_MS - Date.now();
  if (wait > 0) {
    entry.timer ??= setTimeout(() => { entry.timer = null; checkAvatar(name); }, wait);
    return;
  }
  entry.inFlight = true;
  entry.checkedAt = Date.now();
  revalidate(name, entry).finally(() => {
    entry.inFlight = false;
    if (entry.again) { entry.again = false; checkAvatar(name); }
  });
}

async function revalidate(name, entry) {
  try {
    // "no-cache": the browser revalidates with If-None-Match and, on 304, hands back its copy.
    const response = await fetch(`/api/users/${encodeURIComponent(name)}/avatar`, { cache: "no-cache", signal: AbortSignal.timeout(15000) });
    if (response.status === 404) return replace(entry, null, null);
    if (!response.ok) return;
    const etag = response.headers.get("ETag");
    if (etag && etag === entry.etag) return;
    replace(entry, URL.createObjectURL(await response.blob()), etag);
  } catch {
    // Offline, or the server is busy: keep what we have until the next check.
  }
}

function replace(entry, url, etag) {
  if (entry.url === url) return;
  const old = entry.url;
  Object.assign(entry, { url, etag });
  refreshAvatarsIn(document);
  if (old) URL.revokeObjectURL(old);
}

/** Revalidates the avatars of these users (they came online, or wrote). */
export function checkAvatars(names) {
  for (const name of names) checkAvatar(name);
}

/** `name` changed their picture: fetch it again if it is shown here. */
export function avatarChanged(name) {
  if (typeof name === "string" && known.has(keyOf(name))) checkAvatar(name);
}

/** Uploads my new avatar (an image File), then shows it. Rejects with an ApiError. */
export async function uploadAvatar(me, file) {
  if (file.type && !AVATAR_TYPES.includes(file.type)) {
    throw new ApiError(0, "file_type_not_allowed", "A picture must be a PNG, JPEG, GIF, WebP or AVIF image.");
  }
  if (file.size > MAX_AVATAR_BYTES) {
    throw new ApiError(0, "too_large", `A picture is at most ${MAX_AVATAR_BYTES / 1024} KiB; this one is ${Math.ceil(file.size / 1024)} KiB.`);
  }
  await putAvatar(token(), file);
  checkAvatar(me, { now: true });
}
