// Files in messages, as object URLs the page can show. A live message brings
// its bytes; my own message keeps the bytes I sent; a history entry has only
// a `url`, fetched with the bearer token when the message comes into view.

import { token } from "./session.js";
import { fetchFile } from "./api.js";

/**
 * Largest file sent: the server's MAX_FILE_BYTES, read from /api/config at
 * start (the default until then). The page refuses bigger files before
 * sending them: the server would close the connection on a file over twice
 * the limit.
 */
export let maxFileBytes = 5 * 1024 * 1024;

/** Reads the server's limits; keeps the default if they cannot be read. */
export async function loadLimits() {
  try {
    const response = await fetch("/api/config");
    if (response.ok) maxFileBytes = (await response.json()).maxFileBytes ?? maxFileBytes;
  } catch {
    // Offline or an older server: the default stands.
  }
}

const urls = new Map();     // message id → object URL
const loading = new Map();  // message id → Promise of its object URL
let generation = 0;         // bumped on log out, so late downloads are dropped

/** How a file of this MIME type is shown: "image", "audio", "video" or "document". */
export function kindOf(type) {
  const family = String(type).split("/")[0];
  return ["image", "audio", "video"].includes(family) ? family : "document";
}

/** "12 KB", "3.4 MB": a size for people. */
export function sizeLabel(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${Math.round(bytes / 1024)} KB`;
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}

/**
 * Keeps the bytes of a message's file (a live message's `data`, or what I
 * sent) as an object URL, and drops `data` from the message.
 */
export function keepBytes(message, bytes = message.file?.data) {
  if (!message.file) return;
  delete message.file.data;
  if (!bytes || urls.has(message.id)) return;
  urls.set(message.id, URL.createObjectURL(new Blob([bytes], { type: message.file.type })));
}

/** The object URL of a message's file if its bytes are here, else null. */
export function fileUrl(message) {
  return urls.get(message.id) ?? null;
}

/** Downloads a message's file from its `url` (once); resolves with its object URL. */
export function loadFile(message) {
  const { id } = message;
  if (urls.has(id)) return Promise.resolve(urls.get(id));
  if (!loading.has(id)) {
    const started = generation;
    const load = fetchFile(token(), message.file.url).then((blob) => {
      const url = URL.createObjectURL(blob);
      if (started !== generation) { URL.revokeObjectURL(url); throw new Error("logged out"); }
      urls.set(id, url);
      return url;
    });
    loading.set(id, load.finally(() => loading.delete(id)));
  }
  return loading.get(id);
}

/** Releases every file's bytes (log out). */
export function forgetFiles() {
  generation += 1;
  for (const url of urls.values()) URL.revokeObjectURL(url);
  urls.clear();
  loading.clear();
}
