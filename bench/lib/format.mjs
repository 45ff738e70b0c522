// How numbers look in docs/BENCHMARKS.md, and the chatwire-vs-Node table
// every scenario's section is made of. Missing values show as "—".

export const KiB = 1024;

export const isNumber = (v) => typeof v === "number" && Number.isFinite(v);
export const fixed = (v, digits = 1) => (isNumber(v) ? v.toFixed(digits) : "—");
export const count = (v) => (isNumber(v) ? Math.round(v).toLocaleString("en-US") : "—");
export const ms = (v) =>
  isNumber(v) ? (v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : Math.round(v).toLocaleString("en-US")) : "—";
/** Bytes as KiB, one decimal. */
export const kib = (bytes) => fixed(isNumber(bytes) ? bytes / KiB : undefined, 1);

/** "3.2× better" / "1.5× worse", comparing chatwire with Node. */
export function ratio(chatwire, node, lowerIsBetter) {
  if (!isNumber(chatwire) || !isNumber(node) || chatwire <= 0 || node <= 0) return "—";
  const better = lowerIsBetter ? node / chatwire : chatwire / node;
  if (better >= 0.95 && better < 1.05) return "about the same";
  return better >= 1 ? `${better.toFixed(1)}× better` : `${(1 / better).toFixed(1)}× worse`;
}

/** A markdown table of `rows` ([label, chatwire, node, ratio]). */
export function comparison(rows) {
  return [
    "| | chatwire | Node (socket.io) | chatwire vs Node |",
    "|---|---:|---:|---:|",
    ...rows.map((cells) => `| ${cells.join(" | ")} |`),
  ].join("\n");
}
