// HTTP/2 keep-alive through mtlsgate against HTTP/1.1 keep-alive through the same gateway,
// client certificates on both, in alternating turns (as the paired section, for the same
// reason: the drift of a shared VM). HTTP/1.1 load: ab. HTTP/2 load: a Node client
// (bench/peers/h2-load-client.ts; ab and wrk speak HTTP/1.x only), whose CPU share on its
// core is reported: near 100% means the client, not the gateway, was the ceiling.
import { join } from 'node:path';
import type { KeyAlg } from '../../cli/pki.ts';
import { mtlsgateStatic } from '../contenders/mtlsgate.ts';
import type { BenchContext } from '../lib/context.ts';
import { benchPki } from '../lib/pki.ts';
import { CLIENT_CORE, runPinned } from '../lib/proc.ts';
import { freePort } from '../../common/listen.ts';
import type { Upstream } from '../upstream.ts';
import { measure, median, onServerCore, round } from './load.ts';
import { API_PATH } from './proxy.ts';

export interface Http2Row {
  protocol: 'HTTP/1.1 (ab)' | 'HTTP/2 (Node client)';
  connections: number;
  concurrency: number;
  medianRps: number;
  medianUsPerRequest: number;
  medianClientCpu: number | null;
  p99Ms: number;
  errors: number;
}

export interface Http2Section {
  alg: KeyAlg;
  rounds: number;
  turnS: number;
  rows: Http2Row[];
}

const SESSIONS = 4;
const STREAMS = 16;

export async function runHttp2Bench(
  ctx: BenchContext,
  upstream: Upstream,
  alg: KeyAlg,
  { rounds, turnS }: { rounds: number; turnS: number },
): Promise<Http2Section> {
  const pki = await benchPki(ctx.dir(), alg);
  const port = await freePort();
  const running = await mtlsgateStatic.start(ctx, { pki, upstream, port, dir: ctx.dir('contenders', `http2-${alg}`) });
  const url = `https://127.0.0.1:${port}${API_PATH}`;
  const listed = pki.files['listed-1'];
  const h1 = { us: [] as number[], rps: [] as number[], p99: [] as number[], client: [] as number[], errors: 0 };
  const h2 = { us: [] as number[], rps: [] as number[], p99: [] as number[], client: [] as number[], errors: 0 };
  const runH2 = async (seconds: number) => {
    const w = await onServerCore(running.proc.pid, () =>
      runPinned(
        CLIENT_CORE,
        process.execPath,
        [...ctx.tsNode, join(ctx.root, 'bench/peers/h2-load-client.ts'), url, listed.cert, listed.key, String(seconds), String(SESSIONS), String(STREAMS)],
        (seconds + 60) * 1000,
        { cwd: ctx.root },
      ),
    );
    const line = w.value.stdout.trim().split('\n').pop() ?? '';
    if (w.value.code !== 0 || !line.startsWith('{')) throw new Error(`h2 load client failed (exit ${w.value.code}): ${w.value.stderr.trim().slice(-300)}`);
    const out = JSON.parse(line) as { complete: number; errors: number; rps: number; p99Ms: number; elapsedS: number };
    return {
      ...out,
      usPerRequest: out.complete ? Math.round((w.serverCpuS * 1e6) / out.complete) : 0,
      clientCpu: w.value.cpuSeconds === null ? null : round(w.value.cpuSeconds / out.elapsedS, 3),
    };
  };
  try {
    const spec = { url, combinedPem: listed.combined, scratchDir: ctx.dir('scratch'), keepAlive: true, concurrency: SESSIONS * STREAMS };
    await measure(running.proc.pid, { ...spec, durationS: 1 }); // warm-up
    await runH2(1);
    for (let r = 0; r < rounds; r++) {
      const order = r % 2 === 0 ? ['h1', 'h2'] : ['h2', 'h1'];
      for (const which of order) {
        if (which === 'h1') {
          const x = await measure(running.proc.pid, { ...spec, durationS: turnS });
          h1.rps.push(x.rps);
          h1.us.push(x.serverUsPerRequest);
          h1.p99.push(x.p99Ms);
          if (x.clientCpu !== null) h1.client.push(x.clientCpu);
          h1.errors += x.errors;
        } else {
          const x = await runH2(turnS);
          h2.rps.push(x.rps);
          h2.us.push(x.usPerRequest);
          h2.p99.push(x.p99Ms);
          if (x.clientCpu !== null) h2.client.push(x.clientCpu);
          h2.errors += x.errors;
        }
      }
      ctx.log(`  http2 ${alg} round ${r + 1}/${rounds}: HTTP/1.1 ${h1.rps[r]} req/s (${h1.us[r]} µs), HTTP/2 ${h2.rps[r]} req/s (${h2.us[r]} µs)`);
    }
  } finally {
    await running.proc.stop();
  }
  const row = (protocol: Http2Row['protocol'], x: typeof h1, connections: number): Http2Row => ({
    protocol,
    connections,
    concurrency: SESSIONS * STREAMS,
    medianRps: Math.round(median(x.rps)),
    medianUsPerRequest: Math.round(median(x.us)),
    medianClientCpu: x.client.length ? round(median(x.client), 2) : null,
    p99Ms: round(median(x.p99), 1),
    errors: x.errors,
  });
  return { alg, rounds, turnS, rows: [row('HTTP/1.1 (ab)', h1, SESSIONS * STREAMS), row('HTTP/2 (Node client)', h2, SESSIONS)] };
}
