// ApacheBench as the load generator: C, one process, presents a client certificate (-E).
// Trap (BENCH-NOTES): ab speaks HTTP/1.0, so a response without Content-Length closes the
// connection and silently turns a keep-alive run into a handshake run; every result therefore
// carries ab's "Keep-Alive requests" count and the caller checks it.
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { CLIENT_CORE, runPinned } from './proc.ts';

export interface AbRun {
  url: string;
  /** Client certificate and key in one PEM file. */
  combinedPem: string;
  concurrency: number;
  durationS: number;
  /** Hard cap on requests, so the load is bounded in count as well as time. */
  maxRequests: number;
  keepAlive: boolean;
  /** Where ab writes its percentile CSV. */
  scratchDir: string;
  /** The cores ab runs on (one core or a taskset list); the client core by default. */
  cores?: number | string;
}

export interface AbResult {
  complete: number;
  failed: number;
  non2xx: number;
  keepAliveRequests: number;
  rps: number;
  /** Total time per request (connect + wait), closed loop, in ms. */
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  tlsProtocol: string;
  elapsedS: number;
  /** CPU seconds ab itself used (its own core's load). */
  clientCpuS: number | null;
}

function num(out: string, re: RegExp, fallback = 0): number {
  const m = re.exec(out);
  return m ? Number(m[1]) : fallback;
}

export async function runAb(run: AbRun): Promise<AbResult> {
  const csv = join(run.scratchDir, `ab-${process.pid}-${Date.now()}.csv`);
  // -t before -n: ab's -t resets the request cap to 50000, a later -n sets ours.
  const args = [
    '-q',
    '-r',
    '-s',
    '30',
    '-f',
    'TLS1.3',
    '-E',
    run.combinedPem,
    '-c',
    String(run.concurrency),
    '-t',
    String(run.durationS),
    '-n',
    String(run.maxRequests),
    '-e',
    csv,
  ];
  if (run.keepAlive) args.push('-k');
  args.push(run.url);
  const r = await runPinned(run.cores ?? CLIENT_CORE, 'ab', args, (run.durationS + 60) * 1000);
  if (r.code !== 0 || !/Complete requests:/.test(r.stdout)) {
    throw new Error(`ab failed (exit ${r.code}): ${(r.stderr || r.stdout).trim().split('\n').slice(-3).join(' | ')}`);
  }
  const out = r.stdout;
  const percentiles = new Map<number, number>();
  for (const line of readFileSync(csv, 'utf8').split('\n').slice(1)) {
    const [p, ms] = line.split(',');
    if (p && ms) percentiles.set(Number(p), Number(ms));
  }
  rmSync(csv, { force: true });
  return {
    complete: num(out, /Complete requests:\s+(\d+)/),
    failed: num(out, /Failed requests:\s+(\d+)/),
    non2xx: num(out, /Non-2xx responses:\s+(\d+)/),
    keepAliveRequests: num(out, /Keep-Alive requests:\s+(\d+)/),
    rps: num(out, /Requests per second:\s+([\d.]+)/),
    p50Ms: percentiles.get(50) ?? NaN,
    p90Ms: percentiles.get(90) ?? NaN,
    p99Ms: percentiles.get(99) ?? NaN,
    maxMs: percentiles.get(100) ?? NaN,
    tlsProtocol: /SSL\/TLS Protocol:\s+(\S+)/.exec(out)?.[1] ?? '?',
    elapsedS: num(out, /Time taken for tests:\s+([\d.]+)/),
    clientCpuS: r.cpuSeconds,
  };
}
