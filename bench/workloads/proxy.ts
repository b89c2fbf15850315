// The side-by-side run: every contender in turn, per certificate algorithm, with the same
// certificates, upstream and client: the pin check, then keep-alive load, then one new TLS
// connection per request.
import type { KeyAlg } from '../../cli/pki.ts';
import type { Contender } from '../contenders/contender.ts';
import type { BenchContext } from '../lib/context.ts';
import { benchPki, type BenchPki } from '../lib/pki.ts';
import { describeProbe, isAdmitted, isRefused, probe } from '../lib/probe.ts';
import { runOpenLoop, type OpenLoopResult } from '../lib/open-loop.ts';
import { runResumed, type STimeResult } from '../lib/s-time.ts';
import { memKiB, which } from '../lib/proc.ts';
import { freePort } from '../../common/listen.ts';
import type { Upstream } from '../upstream.ts';
import { cleanest, measure, onServerCore, round, type LoadResult } from './load.ts';

export interface PinCheck {
  listed: string;
  unlisted: string;
  otherCa: string;
  ok: boolean;
}

export interface ContenderRun {
  contender: string;
  label: string;
  alg: KeyAlg;
  status: 'ok' | 'not installed' | 'failed';
  error?: string;
  notes: string[];
  check?: PinCheck;
  /** Server RSS after the keep-alive run, MiB. */
  rssMiB?: number;
  keepAlive?: LoadResult;
  newConnection?: LoadResult;
  /** Connections resuming a TLS session (openssl s_time -reuse), one request each. */
  resumed?: STimeResult & { serverCpu: number; serverUsPerConnection: number; serverCoreOtherLoad: number; retried?: boolean; sameAnswer: boolean };
  /** Latency at a fixed offered rate, open loop (no coordinated omission). */
  fixedRate?: OpenLoopResult & { serverCpu: number; serverCoreOtherLoad: number; retried?: boolean };
}

/** Offered rate of the fixed-rate latency run: well under every contender's ceiling. */
const FIXED_RATE_RPS = 2000;
/** Upper bound on its connections (undici opens them as concurrency needs). */
const FIXED_RATE_CONNECTIONS = 16;

export const API_PATH = '/api/bench';

async function pinCheck(c: Contender, url: string, pki: BenchPki): Promise<PinCheck> {
  const listed = await probe(url, pki.files['listed-1']);
  const listed2 = await probe(url, pki.files['listed-2']);
  const unlisted = await probe(url, pki.files.unlisted);
  const otherCa = await probe(url, pki.files.stranger);
  const ok = isAdmitted(listed) && isAdmitted(listed2) && (!c.enforcesPin || (isRefused(unlisted) && isRefused(otherCa)));
  return { listed: describeProbe(listed), unlisted: describeProbe(unlisted), otherCa: describeProbe(otherCa), ok };
}

/** Parallel `openssl s_time -reuse` processes in the resumed-connection run. */
export const RESUME_PROCESSES = 8;

export async function runContender(
  ctx: BenchContext,
  c: Contender,
  alg: KeyAlg,
  upstream: Upstream,
  workloads: { keepAlive: boolean; newConnection: boolean; fixedRate: boolean; resumed: boolean },
): Promise<ContenderRun> {
  const result: ContenderRun = { contender: c.id, label: c.label, alg, status: 'ok', notes: [] };
  if (c.binary && !which(c.binary)) return { ...result, status: 'not installed' };
  const pki = await benchPki(ctx.dir(), alg);
  const port = await freePort();
  const dir = ctx.dir('contenders', `${c.id}-${alg}`);
  const scratchDir = ctx.dir('scratch');
  const url = `https://127.0.0.1:${port}${API_PATH}`;
  let running;
  try {
    running = await c.start(ctx, { pki, upstream, port, dir });
  } catch (err) {
    const error = `start: ${(err as Error).message} (logs in ${dir})`;
    ctx.log(`  ${c.id}/${alg} FAILED: ${error}`);
    return { ...result, status: 'failed', error };
  }
  try {
    result.notes = running.notes;
    result.check = await pinCheck(c, url, pki);
    ctx.log(`  ${c.id}/${alg}: listed ${result.check.listed}, unlisted ${result.check.unlisted}, other CA ${result.check.otherCa}`);
    if (!result.check.ok)
      throw new Error(`pin check failed: listed ${result.check.listed}, unlisted ${result.check.unlisted}, other CA ${result.check.otherCa}`);
    const base = { url, combinedPem: pki.files['listed-1'].combined, scratchDir };
    const { opts } = ctx;
    if (workloads.keepAlive) {
      // Warm-up: JIT, connection pools, session caches.
      await measure(running.proc.pid, { ...base, keepAlive: true, concurrency: opts.connections, durationS: 1 });
      result.keepAlive = await measure(running.proc.pid, { ...base, keepAlive: true, concurrency: opts.connections, durationS: opts.durationS });
      result.rssMiB = Math.round(memKiB(running.proc.pid, 'VmRSS') / 1024);
      ctx.log(`  ${c.id}/${alg} keep-alive: ${fmt(result.keepAlive)}`);
    }
    if (workloads.fixedRate) {
      const spec = {
        root: ctx.root,
        tsNode: ctx.tsNode,
        url,
        cert: pki.files['listed-1'].cert,
        key: pki.files['listed-1'].key,
        rate: FIXED_RATE_RPS,
        durationS: Math.min(opts.durationS, 5),
        connections: FIXED_RATE_CONNECTIONS,
      };
      const ol = await cleanest<NonNullable<ContenderRun['fixedRate']>>(async () => {
        const w = await onServerCore(running.proc.pid, () => runOpenLoop(spec));
        return { ...w.value, serverCpu: round(w.serverCpuS / w.wallS, 3), serverCoreOtherLoad: w.otherLoad };
      });
      result.fixedRate = ol;
      ctx.log(
        `  ${c.id}/${alg} at ${FIXED_RATE_RPS} req/s offered: ${ol.achievedRps} req/s, p50 ${ol.p50Ms} ms, p99 ${ol.p99Ms} ms, max ${ol.maxMs} ms, ${ol.errors} errors, other load on the server core ${Math.round(ol.serverCoreOtherLoad * 100)}%${ol.retried ? ' (retried)' : ''}`,
      );
    }
    if (workloads.newConnection) {
      result.newConnection = await measure(running.proc.pid, {
        ...base,
        keepAlive: false,
        concurrency: opts.handshakeConnections,
        durationS: opts.handshakeDurationS,
      });
      ctx.log(`  ${c.id}/${alg} new connection: ${fmt(result.newConnection)}`);
    }
    if (workloads.resumed) {
      const spec = {
        host: '127.0.0.1',
        port,
        path: API_PATH,
        cert: pki.files['listed-1'].cert,
        key: pki.files['listed-1'].key,
        durationS: opts.handshakeDurationS,
        processes: RESUME_PROCESSES,
      };
      result.resumed = await cleanest<NonNullable<ContenderRun['resumed']>>(async () => {
        const w = await onServerCore(running.proc.pid, () => runResumed(spec));
        const r = w.value;
        return {
          ...r,
          serverCpu: round(w.serverCpuS / w.wallS, 3),
          serverUsPerConnection: r.connections ? Math.round((w.serverCpuS * 1e6) / r.connections) : 0,
          serverCoreOtherLoad: w.otherLoad,
          sameAnswer: r.bytesPerConnection === r.fullHandshakeBytesPerConnection,
        };
      });
      const r = result.resumed;
      ctx.log(
        `  ${c.id}/${alg} resumed connections: ${r.perSecond}/s, server CPU ${Math.round(r.serverCpu * 100)}% (${r.serverUsPerConnection} µs/connection), client CPU ${r.clientCpu === null ? '?' : Math.round(r.clientCpu * 100) + '%'}, ${r.bytesPerConnection} bytes/connection (full handshake: ${r.fullHandshakeBytesPerConnection}), other load on the server core ${Math.round(r.serverCoreOtherLoad * 100)}%`,
      );
      if (!r.sameAnswer)
        throw new Error(
          `resumed connections get a different answer (${r.bytesPerConnection} bytes) than full handshakes (${r.fullHandshakeBytesPerConnection} bytes): the server loses the client certificate on resumption?`,
        );
    }
  } catch (err) {
    result.status = 'failed';
    result.error = (err as Error).message;
    ctx.log(`  ${c.id}/${alg} FAILED: ${result.error}`);
  } finally {
    await running.proc.stop();
  }
  return result;
}

export function fmt(r: LoadResult): string {
  return `${r.rps} req/s, p50 ${r.p50Ms} ms, p99 ${r.p99Ms} ms, server CPU ${Math.round(r.serverCpu * 100)}% (${r.serverUsPerRequest} µs/req), client CPU ${r.clientCpu === null ? '?' : Math.round(r.clientCpu * 100) + '%'}, ${r.complete} done, ${r.keepAliveRequests} keep-alive, ${r.errors} errors, other load on the server core ${Math.round(r.serverCoreOtherLoad * 100)}%${r.retried ? ' (retried)' : ''}`;
}
