// A small hand-written SVG line plot: p99 latency (log scale) against the
// offered delivery rate (log scale), one line per server. No dependencies, so
// the report can be regenerated anywhere Node runs.

const WIDTH = 760;
const HEIGHT = 460;
const MARGIN = { left: 78, right: 150, top: 48, bottom: 62 };

const escapeXml = (text) => String(text).replace(/[<>&"]/g, (c) => ({ "<": "&lt;", ">": "&gt;", "&": "&amp;", '"': "&quot;" })[c]);

/** 1500 → "1.5k", 2000000 → "2M". */
export function shortNumber(value) {
  const units = [[1e9, "G"], [1e6, "M"], [1e3, "k"]];
  for (const [size, suffix] of units) {
    if (Math.abs(value) >= size) return `${+(value / size).toPrecision(3)}${suffix}`;
  }
  return `${+value.toPrecision(3)}`;
}

/** A log scale mapping [min, max] onto [from, to]. */
function logScale(min, max, from, to) {
  const [lo, hi] = [Math.log10(min), Math.log10(max)];
  return (value) => from + ((Math.log10(value) - lo) / (hi - lo || 1)) * (to - from);
}

/** Powers of ten from the one at or below `min` to the one at or above `max`. */
function decades(min, max) {
  const out = [];
  for (let e = Math.floor(Math.log10(min)); e <= Math.ceil(Math.log10(max)); e += 1) out.push(10 ** e);
  return out;
}

/** Ticks 1, 2, 5 × 10^k inside [min, max]. */
function ticks125(min, max) {
  return decades(min, max).flatMap((d) => [d, 2 * d, 5 * d]).filter((v) => v >= min * 0.999 && v <= max * 1.001);
}

/**
 * Renders `series` ([{ name, color, points: [{ x, y }] }]) as an SVG
 * document. `lines` are horizontal reference lines ([{ y, label }]).
 */
export function latencyPlot({ title, xLabel, yLabel, series, lines = [] }) {
  const points = series.flatMap((s) => s.points).filter((p) => p.x > 0 && p.y > 0);
  const xs = points.map((p) => p.x);
  const ys = points.map((p) => p.y).concat(lines.map((l) => l.y));
  const xMin = points.length ? Math.min(...xs) / 1.3 : 1e3;
  const xMax = points.length ? Math.max(...xs) * 1.3 : 1e6;
  const yMin = 10 ** Math.floor(Math.log10(points.length ? Math.min(...ys) : 1));
  const yMax = 10 ** Math.ceil(Math.log10(points.length ? Math.max(...ys) : 1000));
  const [x0, x1, y0, y1] = [MARGIN.left, WIDTH - MARGIN.right, HEIGHT - MARGIN.bottom, MARGIN.top];
  const sx = logScale(xMin, xMax, x0, x1);
  const sy = logScale(yMin, yMax, y0, y1);
  const f = (n) => n.toFixed(1);

  const out = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${WIDTH}" height="${HEIGHT}" fill="#ffffff"/>`);
  out.push(`<text x="${f((x0 + x1) / 2)}" y="26" text-anchor="middle" font-size="15" font-weight="bold">${escapeXml(title)}</text>`);

  // Grid and tick labels.
  for (const y of ticks125(yMin, yMax).filter((v) => !decades(yMin, yMax).includes(v))) {
    out.push(`<line x1="${x0}" y1="${f(sy(y))}" x2="${x1}" y2="${f(sy(y))}" stroke="#f0f0f0"/>`);
  }
  for (const y of decades(yMin, yMax).filter((v) => v >= yMin && v <= yMax)) {
    out.push(`<line x1="${x0}" y1="${f(sy(y))}" x2="${x1}" y2="${f(sy(y))}" stroke="#dddddd"/>`);
    out.push(`<text x="${x0 - 8}" y="${f(sy(y) + 4)}" text-anchor="end">${shortNumber(y)}</text>`);
  }
  for (const x of ticks125(xMin, xMax)) {
    out.push(`<line x1="${f(sx(x))}" y1="${y0}" x2="${f(sx(x))}" y2="${y1}" stroke="#eeeeee"/>`);
    out.push(`<text x="${f(sx(x))}" y="${y0 + 18}" text-anchor="middle">${shortNumber(x)}</text>`);
  }
  out.push(`<rect x="${x0}" y="${y1}" width="${x1 - x0}" height="${y0 - y1}" fill="none" stroke="#444444"/>`);
  out.push(`<text x="${f((x0 + x1) / 2)}" y="${HEIGHT - 18}" text-anchor="middle">${escapeXml(xLabel)}</text>`);
  out.push(`<text transform="translate(22 ${f((y0 + y1) / 2)}) rotate(-90)" text-anchor="middle">${escapeXml(yLabel)}</text>`);

  // Reference lines.
  for (const line of lines.filter((l) => l.y >= yMin && l.y <= yMax)) {
    out.push(`<line x1="${x0}" y1="${f(sy(line.y))}" x2="${x1}" y2="${f(sy(line.y))}" stroke="#888888" stroke-dasharray="5 4"/>`);
    out.push(`<text x="${x1 - 4}" y="${f(sy(line.y) - 4)}" text-anchor="end" fill="#666666">${escapeXml(line.label)}</text>`);
  }

  // One polyline with markers per series, and the legend.
  series.forEach((s, i) => {
    const visible = s.points.filter((p) => p.x > 0 && p.y > 0);
    const coords = visible.map((p) => `${f(sx(p.x))},${f(sy(p.y))}`);
    if (coords.length > 1) out.push(`<polyline points="${coords.join(" ")}" fill="none" stroke="${s.color}" stroke-width="2"/>`);
    for (const p of visible) {
      out.push(`<circle cx="${f(sx(p.x))}" cy="${f(sy(p.y))}" r="3.5" fill="${s.color}"><title>${escapeXml(`${s.name}: ${shortNumber(p.x)}/s → p99 ${p.y} ms`)}</title></circle>`);
    }
    const ly = y1 + 14 + i * 22;
    out.push(`<line x1="${x1 + 14}" y1="${ly}" x2="${x1 + 40}" y2="${ly}" stroke="${s.color}" stroke-width="2"/>`);
    out.push(`<circle cx="${x1 + 27}" cy="${ly}" r="3.5" fill="${s.color}"/>`);
    out.push(`<text x="${x1 + 46}" y="${ly + 4}">${escapeXml(s.name)}</text>`);
  });
  out.push("</svg>");
  return `${out.join("\n")}\n`;
}
