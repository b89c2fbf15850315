// Open-loop load at a fixed offered rate, for latency without coordinated omission: requests are
// scheduled on a clock (rate per second, evenly spaced) and each latency is measured from the
// moment it was due, so a server stall counts against every request it delayed. undici Pool with
// a client certificate; the server certificate is not verified (the bench CA is local).
// Usage: node --import tsx bench/peers/open-loop-client.ts URL CERT KEY RATE DURATION_S CONNECTIONS
// A 1 s warm-up at the same rate (connections, JIT) precedes the DURATION_S measured.
// Prints one JSON line: {sent, ok, errors, p50Ms, p90Ms, p99Ms, maxMs, achievedRps}.
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { Pool } from 'undici';

const [url, certFile, keyFile, rateArg, durationArg, connectionsArg] = process.argv.slice(2);
const rate = Number(rateArg);
const durationMs = Number(durationArg) * 1000;
const target = new URL(url);
const pool = new Pool(target.origin, {
  connections: Number(connectionsArg),
  pipelining: 1,
  keepAliveTimeout: 60_000,
  connect: { cert: readFileSync(certFile), key: readFileSync(keyFile), rejectUnauthorized: false },
});

/** The first second opens the connections (TLS handshakes) and warms the server: not recorded. */
const WARM_UP_MS = 1000;
let recording = false;
const latencies: number[] = [];
let sent = 0;
let errors = 0;
let inFlight = 0;

function fire(dueAt: number): void {
  const recorded = recording;
  if (recorded) sent++;
  inFlight++;
  pool
    .request({ path: target.pathname, method: 'GET' })
    .then(async ({ statusCode, body }) => {
      await body.dump();
      if (!recorded) return;
      if (statusCode === 200) latencies.push(performance.now() - dueAt);
      else errors++;
    })
    .catch(() => {
      if (recorded) errors++;
    })
    .finally(() => inFlight--);
}

/** Sends at `rate` for `ms`, each request stamped with the time it was due. */
function runFor(ms: number): Promise<void> {
  const start = performance.now();
  let issued = 0;
  return new Promise<void>((resolve) => {
    const tick = setInterval(() => {
      const elapsed = Math.min(performance.now() - start, ms);
      const due = Math.floor((elapsed * rate) / 1000);
      while (issued < due) fire(start + (issued++ * 1000) / rate);
      if (elapsed >= ms) {
        clearInterval(tick);
        resolve();
      }
    }, 1);
  });
}

await runFor(WARM_UP_MS);
recording = true;
await runFor(durationMs);
// Let the last requests finish (bounded).
const drainUntil = performance.now() + 10_000;
while (inFlight > 0 && performance.now() < drainUntil) await new Promise((r) => setTimeout(r, 5));
await pool.close();
latencies.sort((a, b) => a - b);
const at = (p: number) => Math.round((latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] ?? NaN) * 100) / 100;
console.log(
  JSON.stringify({
    sent,
    ok: latencies.length,
    errors: errors + Math.max(0, sent - latencies.length - errors),
    p50Ms: at(50),
    p90Ms: at(90),
    p99Ms: at(99),
    maxMs: at(100),
    achievedRps: Math.round(latencies.length / (durationMs / 1000)),
  }),
);
