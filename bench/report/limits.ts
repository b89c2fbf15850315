// The rate-limiting and request-log sections.
import { r2, table } from './markdown.ts';
import type { BenchResults } from './results.ts';

/** Rate limiting: in-process and Redis against the unlimited gateway, and the limiter alone. */
export function limitsSection(res: BenchResults): string {
  const lim = res.sections.limits;
  if (!lim) return '';
  const s: string[] = [];
  s.push('## Rate limiting (dynamic mTLS, key limited but never refused, keep-alive, ECDSA)\n');
  s.push(
    'The three gateways run at once; the load visits them in turns, in a rotating order, each round. "× unlimited" is the median round (min–max the spread); the other columns are that round\'s.\n',
  );
  s.push(
    table(
      ['limiter', 'req/s', '× unlimited', 'min–max', 'p50 ms', 'p99 ms', 'server µs/req', 'errors', 'Redis round trips/request'],
      lim.endToEnd.map((r) => [
        r.limiter,
        r.load.rps,
        r2(r.ratio),
        r.minRatio === undefined ? '–' : `${r2(r.minRatio)}–${r2(r.maxRatio)}`,
        r.load.p50Ms,
        r.load.p99Ms,
        r.load.serverUsPerRequest,
        r.load.errors,
        r.redisRoundTripsPerRequest ?? '–',
      ]),
    ),
  );
  s.push('');
  if ('scenarios' in lim.micro) {
    s.push('Limiter alone (bench/limits.ts: decisions without TLS or proxy):\n');
    s.push(
      table(
        ['scenario', 'decisions/s', 'p50 µs', 'p99 µs', 'Redis round trips/decision'],
        lim.micro.scenarios.map((x) => [x.name, x.decisionsPerSec, x.p50Us, x.p99Us, x.redisRoundTripsPerDecision ?? '–']),
      ),
    );
  } else s.push(`Limiter micro-benchmark failed: ${lim.micro.error}`);
  s.push('');
  return s.join('\n');
}

/** The request log line alone. */
export function logLineSection(res: BenchResults): string {
  const logLine = res.sections.logLine;
  if (!logLine) return '';
  const s: string[] = [];
  s.push('## The request log line (bench/peers/log-line-probe.ts)\n');
  s.push(
    `${logLine.lines.toLocaleString('en-US')} request lines through the gateway's own logger (batched writes to a file on fd 1, as \`serve > gateway.log\`), against the same loop without them, pinned on the server core; process CPU (main thread and the threads that write): **${logLine.medianUsPerLine} µs per line** (median; rounds ${logLine.roundsUsPerLine.join(', ')}), ${logLine.bytesPerLine} bytes per line.\n`,
  );
  return s.join('\n');
}
