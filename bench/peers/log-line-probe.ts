// What the request log line costs: CPU per line through the gateway's own logger
// (runtime/log.ts: createLogger + logRequest, batched asynchronous writes to fd 1), measured
// as process CPU (main thread and the libuv threads that write) with the line against the same
// loop without it. Run by bench/workloads/log-line.ts, pinned on the server core.
//
// usage: node log-line-probe.mjs LOGFILE LINES ROUNDS; one JSON result on stderr.
// fd 1 is reopened on LOGFILE first (a gateway run as `serve > gateway.log`), so the lines
// are really written, and the result goes to stderr.
import { closeSync, openSync } from 'node:fs';
import type { RequestRecord } from '../../runtime/gateway.ts';
import { createLogger, logRequest } from '../../runtime/log.ts';

const [logFile, linesArg, roundsArg] = process.argv.slice(2);
closeSync(1);
if (openSync(logFile, 'w') !== 1) throw new Error('log-line-probe: fd 1 was not reopened on the log file');
const lines = Number(linesArg ?? 100_000);
const rounds = Number(roundsArg ?? 5);
const logger = createLogger();

// Lines as a gateway writes them: dynamic mTLS, a query string cut, durations that vary.
const fingerprint = 'a3'.repeat(32);
function record(i: number): RequestRecord {
  return {
    api: 'orders-api',
    key: i % 3 === 0 ? null : 'partner-acme',
    cert: fingerprint,
    status: i % 17 === 0 ? 403 : 200,
    code: i % 17 === 0 ? 'auth.key_not_allowed' : null,
    method: 'GET',
    path: `/orders/${i % 1000}?page=2`,
    durationMs: 0.5 + (i % 97) / 1000,
    remote: '127.0.0.1',
  };
}

let sink = 0;
/** `lines` records in turns of 64 (about what one event-loop turn serves under load), logged or not; CPU µs spent until every line is written. */
async function run(log: boolean): Promise<number> {
  const before = process.cpuUsage();
  for (let i = 0; i < lines; i += 64) {
    for (let j = i; j < Math.min(lines, i + 64); j++) {
      const r = record(j);
      if (log) logRequest(logger, r);
      else sink += r.status;
    }
    await new Promise<void>((done) => setImmediate(done));
  }
  await new Promise<void>((done, fail) => logger.flush((err) => (err ? fail(err) : done())));
  const used = process.cpuUsage(before);
  return used.user + used.system;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

await run(true); // warm-up: JIT, the batch's buffers, the file's first pages
await run(false);
const perLine: number[] = [];
for (let r = 0; r < rounds; r++) {
  // Alternate the order so drift favours neither side.
  const [a, b] = r % 2 === 0 ? [await run(true), await run(false)] : [await run(false), await run(true)].reverse();
  perLine.push((a - b) / lines);
}
process.stderr.write(`${JSON.stringify({ lines, rounds, usPerLine: perLine, medianUsPerLine: median(perLine), sink: sink > 0 })}\n`);
