// One measured load run against a started server: ab pinned on the client core, the server's
// CPU read from /proc before and after, so every req/s figure comes with the server's
// utilisation (below ~90% the client, not the server, was the limit).
import { runAb, type AbResult } from '../lib/ab.ts';
import { cpuSeconds } from '../lib/proc.ts';

export interface LoadResult {
  rps: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  complete: number;
  /** ab's failed requests (connect, receive, length) plus non-2xx responses. */
  errors: number;
  keepAliveRequests: number;
  tlsProtocol: string;
  /** Server CPU busy share of one core during the run (0..1). */
  serverCpu: number;
  /** Server CPU microseconds per completed request. */
  serverUsPerRequest: number;
  /** Load generator CPU busy share of its core (0..1), when measurable. */
  clientCpu: number | null;
}

export interface LoadSpec {
  url: string;
  combinedPem: string;
  keepAlive: boolean;
  concurrency: number;
  durationS: number;
  scratchDir: string;
}

export async function measure(serverPid: number, spec: LoadSpec): Promise<LoadResult> {
  const before = cpuSeconds(serverPid);
  const ab: AbResult = await runAb({ ...spec, maxRequests: Math.max(1000, spec.durationS * 200_000) });
  const serverCpuS = cpuSeconds(serverPid) - before;
  const wall = ab.elapsedS || spec.durationS;
  return {
    rps: Math.round(ab.rps),
    p50Ms: ab.p50Ms,
    p99Ms: ab.p99Ms,
    maxMs: ab.maxMs,
    complete: ab.complete,
    errors: ab.failed + ab.non2xx,
    keepAliveRequests: ab.keepAliveRequests,
    tlsProtocol: ab.tlsProtocol,
    serverCpu: round(serverCpuS / wall, 3),
    serverUsPerRequest: ab.complete > 0 ? Math.round((serverCpuS * 1e6) / ab.complete) : 0,
    clientCpu: ab.clientCpuS === null ? null : round(ab.clientCpuS / wall, 3),
  };
}

export function round(n: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}
