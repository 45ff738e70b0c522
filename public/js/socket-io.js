// The socket.io browser client, in the build that speaks the server's packet
// parser (PARSER, read from /api/config): socket.io's default build, or the
// one with socket.io-msgpack-parser. Both come from the server itself, so the
// page's policy (`script-src 'self'`) holds.

const BUILDS = {
  common: "/socket.io/socket.io.js",
  msgpack: "/socket.io/socket.io.msgpack.min.js",
};

/** The server's parser; the default if the server cannot say. */
async function serverParser() {
  try {
    const response = await fetch("/api/config");
    if (response.ok) return (await response.json()).parser;
  } catch {
    // Unreachable for now: the default build; socket.io keeps retrying.
  }
  return "common";
}

function loadScript(src) {
  return new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = src;
    script.onload = resolve;
    script.onerror = () => reject(new Error(`cannot load ${src}`));
    document.head.append(script);
  });
}

await loadScript(BUILDS[await serverParser()] ?? BUILDS.common);

/** socket.io's `io()`, from the build just loaded. */
export const io = globalThis.io;
