// The HTTP API under /api: accounts, avatars, and files of past messages.
// Failures become an ApiError carrying the server's { error: { code, message } }.

const TIMEOUT_MS = 15000;
const UPLOAD_TIMEOUT_MS = 60000;

/** A failed API call: `status` is the HTTP status (0 if the server was not reached). */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function call(method, path, { json, body, token, timeoutMs = TIMEOUT_MS } = {}) {
  const headers = {};
  if (json !== undefined) headers["Content-Type"] = "application/json";
  if (token) headers.Authorization = `Bearer ${token}`;
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: json !== undefined ? JSON.stringify(json) : body,
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (err) {
    const timedOut = err.name === "TimeoutError";
    throw new ApiError(0, timedOut ? "timeout" : "network", timedOut ? "The server did not answer in time." : "Cannot reach the server.");
  }
  if (!response.ok) throw await errorOf(response);
  return response;
}

/** The ApiError a failed response describes (its body may not be JSON). */
async function errorOf(response) {
  let error = null;
  try {
    error = (await response.json())?.error;
  } catch {
    // Not JSON: a proxy's page, or a body-limit rejection.
  }
  const fallback = response.status === 413 ? "The file is too large." : `Request failed (HTTP ${response.status}).`;
  return new ApiError(response.status, error?.code ?? `http_${response.status}`, error?.message ?? fallback);
}

/** Creates an account. */
export async function register(username, password) {
  await call("POST", "/api/register", { json: { username, password } });
}

/** Checks a name and password: resolves with { token, username, expiresIn }. */
export async function logIn(username, password) {
  return (await call("POST", "/api/login", { json: { username, password } })).json();
}

/** Revokes `token` on the server (every instance), so it opens nothing any more. */
export async function logOut(token) {
  await call("POST", "/api/logout", { token });
}

/** Replaces the caller's avatar with `image` (a File or Blob). */
export async function uploadAvatar(token, image) {
  await call("PUT", "/api/me/avatar", { body: image, token, timeoutMs: UPLOAD_TIMEOUT_MS });
}

/** Fetches the file of a past message (its `url`) as a Blob. */
export async function fetchFile(token, url) {
  return (await call("GET", url, { token, timeoutMs: UPLOAD_TIMEOUT_MS })).blob();
}
