// autocannon (npm) as a second load generator: HTTP/1.1, a client certificate via --cert/--key,
// and -R for a fixed offered rate (latency corrected for coordinated omission).
import { join } from 'node:path';
import { CLIENT_CORE, runPinned } from './proc.ts';

export interface AutocannonRun {
  root: string;
  url: string;
  cert: string;
  key: string;
  connections: number;
  durationS: number;
  /** Offered requests per second across all connections; absent = as fast as possible. */
  rate?: number;
}

export interface AutocannonResult {
  rps: number;
  p50Ms: number;
  p99Ms: number;
  complete: number;
  errors: number;
  clientCpu: number | null;
}

export async function runAutocannon(run: AutocannonRun): Promise<AutocannonResult> {
  const args = [
    join(run.root, 'node_modules/autocannon/autocannon.js'),
    '-j',
    '-c',
    String(run.connections),
    '-d',
    String(run.durationS),
    '--cert',
    run.cert,
    '--key',
    run.key,
  ];
  if (run.rate) args.push('-R', String(run.rate));
  args.push(run.url);
  // autocannon does not verify the server certificate unless told to; the bench CA is not in the system store.
  const r = await runPinned(CLIENT_CORE, process.execPath, args, (run.durationS + 60) * 1000, {
    env: { ...process.env, NODE_TLS_REJECT_UNAUTHORIZED: '0', NODE_NO_WARNINGS: '1' },
  });
  const line = r.stdout.trim().split('\n').pop() ?? '';
  let out: {
    requests: { average: number; total: number };
    latency: { p50: number; p99: number };
    non2xx: number;
    errors: number;
    timeouts: number;
    duration: number;
  };
  try {
    out = JSON.parse(line);
  } catch {
    throw new Error(`autocannon failed (exit ${r.code}): ${(r.stderr || r.stdout).trim().slice(-300)}`);
  }
  return {
    rps: Math.round(out.requests.total / out.duration),
    p50Ms: out.latency.p50,
    p99Ms: out.latency.p99,
    complete: out.requests.total,
    errors: out.non2xx + out.errors + out.timeouts,
    clientCpu: r.cpuSeconds === null ? null : Math.round((r.cpuSeconds / out.duration) * 1000) / 1000,
  };
}
