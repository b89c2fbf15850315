// One measured load run against a started server: ab pinned on the client core, the server's
// CPU read from /proc before and after, so every req/s figure comes with the server's
// utilisation (below ~90% the client, not the server, was the limit).
import { performance } from 'node:perf_hooks';
import { runAb } from '../lib/ab.ts';
import { coreTicks, cpuSeconds, SERVER_CORE } from '../lib/proc.ts';

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
  /**
   * Busy share of the server core NOT used by the server (0..1): other tenants of a shared
   * machine, plus kernel network work not charged to the server. High = a contaminated run.
   */
  serverCoreOtherLoad: number;
  /** Measured again because the first attempt's serverCoreOtherLoad was too high. */
  retried?: boolean;
}

/** Above this share of foreign load on the server core, a run is measured once more. */
export const CONTAMINATED = 0.15;

export interface LoadSpec {
  url: string;
  combinedPem: string;
  keepAlive: boolean;
  concurrency: number;
  durationS: number;
  scratchDir: string;
  /** The cores ab runs on (the client core by default). */
  cores?: number | string;
  /** The cores the server may use, watched for other load (the server core by default). */
  serverCores?: number[];
}

/** Runs `run` while watching the server core (or `cores`): the server's CPU and the foreign load,
 *  in cores' worth (0..number of cores watched). */
export async function onServerCore<T>(
  serverPid: number,
  run: () => Promise<T>,
  cores: number[] = [SERVER_CORE],
): Promise<{ value: T; serverCpuS: number; wallS: number; otherLoad: number }> {
  const ticks = () => cores.map(coreTicks).reduce((a, t) => ({ busy: a.busy + t.busy, total: a.total + t.total }), { busy: 0, total: 0 });
  const t0 = performance.now();
  const core0 = ticks();
  const cpu0 = cpuSeconds(serverPid);
  const value = await run();
  const serverCpuS = cpuSeconds(serverPid) - cpu0;
  const core1 = ticks();
  const wallS = (performance.now() - t0) / 1000;
  const busyShare = core1.total > core0.total ? ((core1.busy - core0.busy) / (core1.total - core0.total)) * cores.length : 0;
  return { value, serverCpuS, wallS, otherLoad: round(Math.max(0, busyShare - serverCpuS / wallS), 3) };
}

/** Measures again if another tenant took the server core the first time; keeps the cleaner attempt. */
export async function cleanest<T extends { serverCoreOtherLoad: number; retried?: boolean }>(attempt: () => Promise<T>): Promise<T> {
  const first = await attempt();
  if (first.serverCoreOtherLoad <= CONTAMINATED) return first;
  const second = await attempt();
  return { ...(second.serverCoreOtherLoad < first.serverCoreOtherLoad ? second : first), retried: true };
}

/** One keep-alive or new-connection run with ab (retried once when contaminated, see `cleanest`). */
export function measure(serverPid: number, spec: LoadSpec): Promise<LoadResult> {
  return spec.durationS < 2 ? measureOnce(serverPid, spec) : cleanest(() => measureOnce(serverPid, spec));
}

/** One run, never retried (a caller that samples the server during the run cannot repeat it). */
export async function measureOnce(serverPid: number, spec: LoadSpec): Promise<LoadResult> {
  const {
    value: ab,
    serverCpuS,
    otherLoad,
  } = await onServerCore(serverPid, () => runAb({ ...spec, maxRequests: Math.max(1000, spec.durationS * 200_000) }), spec.serverCores);
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
    serverCoreOtherLoad: otherLoad,
  };
}

/** The middle value (the mean of the two middle ones for an even count). */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export function round(n: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}
