// The scale model's part of docs/BENCHMARKS.md (chatwire only: the
// namespace-wide design against the room-routed one). See bench/lib/scale.mjs.

import { count, fixed, ms } from "./format.mjs";

const sum = (values) => values.reduce((a, b) => a + b, 0);
/** Bytes an instance read from Redis pub/sub, all kinds together. */
const bytesOf = (instance) => sum(Object.values(instance.receivedBytes ?? {}));

/** The section's method, for a profile's `scale` settings. */
export function scaleMethod({ rooms, roomSize, rate, secs, counts }) {
  return [
    `${count(rooms)} rooms of ${roomSize} members each (a room of two is what a private conversation costs), every`,
    "room's members spread over the instances and each room with a sender of its own, together sending",
    `${count(rate)} messages a second for ${secs} s. ${counts.join(", ")} instances with one worker thread each,`,
    "on one Redis and then on a 3-master Redis Cluster, each configuration once namespace-wide",
    "(`ROUTED_ROOMS=false`: every broadcast on one channel per namespace) and once room-routed",
    "(`ROUTED_ROOMS=true`: on a channel per room). Read just around sending: the bytes each instance read",
    "from Redis pub/sub (`chatwire_pubsub_received_bytes_total`), the CPU the instances used per delivered",
    "message, and the SPUBLISH calls each Redis master served.",
  ].join("\n");
}

/** One table row per configuration. */
export function scaleSection(results) {
  if (!results?.length) return "_Not run._";
  const rows = [
    "| Redis | instances | design | delivered / expected | p99 | CPU µs per delivery | bytes read per instance (max / min) | SPUBLISH per master |",
    "|---|---:|---|---:|---:|---:|---:|---|",
  ];
  for (const r of results) {
    const bytes = (r.perInstance ?? []).map(bytesOf);
    const spread = bytes.length ? `${count(Math.max(...bytes))} / ${count(Math.min(...bytes))}` : "—";
    rows.push(
      `| ${r.redis === "cluster" ? "Cluster (3)" : "single"} | ${r.instances} | ${r.routed ? "room-routed" : "namespace-wide"} `
        + `| ${count(r.delivered)} / ${count(r.expected)} | ${ms(r.p99_ms)} | ${fixed(r.cpuMicrosPerDelivery, 0)} `
        + `| ${spread} | ${(r.publishesPerMaster ?? []).map(count).join(" / ")} |`,
    );
  }
  return rows.join("\n");
}
